//! A tiny cursor for the catalog's expression and template mini-languages: positions are
//! reported as 1-based character offsets so an admin can find the mistake in the string.

/// A read position in an expression or template string.
pub struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

/// Characters that end a field name inside a path.
const KEY_END: &[char] = &[
    '.', '[', ']', '|', '{', '}', '(', ')', ',', '\'', '"', ' ', '\t', '\n', '\r', '$', '*', '~',
];

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`.
    pub fn new(text: &'a str) -> Cursor<'a> {
        Cursor { text, pos: 0 }
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Whether everything has been read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    /// Moves past `n` bytes (callers pass lengths of prefixes of `rest()`).
    pub fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.text.len());
    }

    /// An error message pointing at the current position.
    pub fn error(&self, what: &str) -> String {
        let column = self.text[..self.pos].chars().count() + 1;
        format!("{what} at character {column}")
    }

    /// Skips spaces and tabs.
    pub fn skip_ws(&mut self) {
        let rest = self.rest();
        self.advance(rest.len() - rest.trim_start().len());
    }

    /// Whether the rest starts with `s`.
    pub fn peek_str(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    /// Consumes `s` if the rest starts with it.
    pub fn eat(&mut self, s: &str) -> bool {
        if self.peek_str(s) {
            self.advance(s.len());
            true
        } else {
            false
        }
    }

    /// Consumes `s` or fails saying it was expected.
    pub fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.error(&format!("expected `{s}`")))
        }
    }

    /// Reads a name made of letters, digits and `_`.
    pub fn ident(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.advance(len);
        &rest[..len]
    }

    /// Reads a field name: anything up to punctuation the languages use.
    pub fn key(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find(KEY_END).unwrap_or(rest.len());
        self.advance(len);
        &rest[..len]
    }

    /// Reads a possibly negative integer.
    pub fn integer(&mut self) -> Result<i64, String> {
        let rest = self.rest();
        let sign = usize::from(rest.starts_with('-'));
        let digits = rest[sign..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - sign);
        match rest[..sign + digits].parse::<i64>() {
            Ok(n) if digits > 0 => {
                self.advance(sign + digits);
                Ok(n)
            }
            _ => Err(self.error("expected a whole number")),
        }
    }

    /// Reads a `'single'` or `"double"` quoted text with `\` escapes, if one starts here.
    pub fn quoted(&mut self) -> Result<Option<String>, String> {
        let Some(quote) = self
            .rest()
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
        else {
            return Ok(None);
        };
        let start = self.error("unterminated quoted text");
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            if c == quote {
                self.advance(i + 1);
                return Ok(Some(out));
            }
            if c == '\\' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, other)) => out.push(other),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pieces_and_reports_character_positions() {
        let mut c = Cursor::new("a.b-c[2] 'x\\'y' -3");
        assert_eq!(c.key(), "a");
        assert!(c.eat("."));
        assert_eq!(c.key(), "b-c");
        assert!(c.eat("["));
        assert_eq!(c.integer(), Ok(2));
        c.expect("]").expect("bracket");
        c.skip_ws();
        assert_eq!(c.quoted(), Ok(Some("x'y".to_string())));
        c.skip_ws();
        assert_eq!(c.integer(), Ok(-3));
        assert!(c.at_end());
        let mut c = Cursor::new("é 'open");
        c.advance(3);
        assert_eq!(
            c.quoted(),
            Err("unterminated quoted text at character 3".to_string())
        );
    }
}
