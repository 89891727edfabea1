//! The lexer: text into tokens, each with the line and column (in characters) it starts
//! at, so every later error can point at it.

use std::fmt;

use super::path::is_key_char;
use super::ConditionError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// A keyword, field name or body path (`body.a.b[*].c`).
    Word(String),
    /// A decoded string literal.
    Str(String),
    /// A number, kept as written for `serde_json` to read.
    Num(serde_json::Number),
    /// `$name`
    Var(String),
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`, `~`
    Op(&'static str),
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(w) => write!(f, "`{w}`"),
            Kind::Str(s) => write!(f, "the string {}", super::printer::quote(s)),
            Kind::Num(n) => write!(f, "the number {n}"),
            Kind::Var(v) => write!(f, "`${v}`"),
            Kind::Op(op) => write!(f, "`{op}`"),
            Kind::Open => f.write_str("`(`"),
            Kind::Close => f.write_str("`)`"),
            Kind::OpenList => f.write_str("`[`"),
            Kind::CloseList => f.write_str("`]`"),
            Kind::Comma => f.write_str("`,`"),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub kind: Kind,
    pub line: usize,
    pub column: usize,
    /// Line and column just past the token, where "found the end" points.
    pub end: (usize, usize),
}

impl Token {
    pub fn error(&self, message: impl Into<String>) -> ConditionError {
        self.error_at(0, message)
    }

    /// An error `offset` characters into the token (tokens never span lines, except
    /// strings, whose errors point at their start).
    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> ConditionError {
        ConditionError {
            line: self.line,
            column: self.column + offset,
            message: message.into(),
        }
    }
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    line: usize,
    column: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn bump(&mut self) -> Option<(usize, char)> {
        let next = self.chars.next();
        if let Some((_, c)) = next {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        next
    }

    fn take_while(&mut self, text: &mut String, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|c| keep(*c)) {
            text.push(c);
            self.bump();
        }
    }
}

pub(super) fn lex(text: &str) -> Result<Vec<Token>, ConditionError> {
    let mut tokens = Vec::new();
    let mut cur = Cursor {
        chars: text.char_indices().peekable(),
        line: 1,
        column: 1,
    };
    while let Some(c) = cur.peek() {
        let (line, column) = (cur.line, cur.column);
        let err = |message: String| ConditionError {
            line,
            column,
            message,
        };
        let mut single = |kind: Kind| {
            cur.bump();
            kind
        };
        let kind = match c {
            c if c.is_whitespace() => {
                cur.bump();
                continue;
            }
            '(' => single(Kind::Open),
            ')' => single(Kind::Close),
            '[' => single(Kind::OpenList),
            ']' => single(Kind::CloseList),
            ',' => single(Kind::Comma),
            '~' => single(Kind::Op("~")),
            '=' | '!' | '<' | '>' => {
                cur.bump();
                let with_eq = cur.peek() == Some('=');
                if with_eq {
                    cur.bump();
                }
                match (c, with_eq) {
                    ('=', true) => Kind::Op("=="),
                    ('!', true) => Kind::Op("!="),
                    ('<', true) => Kind::Op("<="),
                    ('>', true) => Kind::Op(">="),
                    ('<', false) => Kind::Op("<"),
                    ('>', false) => Kind::Op(">"),
                    ('!', false) => {
                        return Err(err(
                            "expected `!=`, found a lone `!`: write `not` to negate".into(),
                        ))
                    }
                    _ => return Err(err("expected `==`, found a single `=`".into())),
                }
            }
            '"' => Kind::Str(string(&mut cur, text).map_err(err)?),
            '$' => {
                cur.bump();
                let mut name = String::new();
                cur.take_while(&mut name, |c| c.is_alphanumeric() || c == '_');
                Kind::Var(name)
            }
            c if c.is_ascii_digit() || c == '-' => {
                let mut number = String::new();
                cur.take_while(&mut number, |c| {
                    c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')
                });
                match serde_json::from_str::<serde_json::Number>(&number) {
                    Ok(n) => Kind::Num(n),
                    Err(_) => {
                        return Err(err(format!(
                            "`{number}` is not a number: expected digits like 3, -1 or 2.5"
                        )))
                    }
                }
            }
            c if c.is_alphabetic() || c == '_' => Kind::Word(word(&mut cur)),
            other => return Err(err(format!("unexpected character `{other}`"))),
        };
        tokens.push(Token {
            kind,
            line,
            column,
            end: (cur.line, cur.column),
        });
    }
    Ok(tokens)
}

/// A word, which for body paths includes dots and `[…]` steps written without spaces
/// (checked by the path parser, which knows what is allowed); after other words a `[`
/// starts a list (`in["a"]`) unless `*` or a digit follows.
fn word(cur: &mut Cursor<'_>) -> String {
    let mut word = String::new();
    loop {
        cur.take_while(&mut word, |c| is_key_char(c) || c == '.');
        if cur.peek() != Some('[') {
            return word;
        }
        let mut ahead = cur.chars.clone();
        ahead.next();
        match ahead.next() {
            Some((_, c)) if word.starts_with("body.") || c == '*' || c.is_ascii_digit() => {
                cur.take_while(&mut word, |c| c != ']' && !c.is_whitespace());
                if cur.peek() == Some(']') {
                    word.push(']');
                    cur.bump();
                } else {
                    // Let the path parser report the unclosed `[` with its position.
                    return word;
                }
            }
            _ => return word,
        }
    }
}

/// A string literal in JSON syntax, so every string the printer writes reads back.
fn string(cur: &mut Cursor<'_>, text: &str) -> Result<String, String> {
    let start = cur.bump().map_or(0, |(i, _)| i);
    loop {
        match cur.bump() {
            None => return Err("string is not closed: expected `\"`".into()),
            Some((end, '"')) => {
                let raw = &text[start..=end];
                return serde_json::from_str::<String>(raw).map_err(|e| {
                    let reason = e.to_string();
                    let reason = reason.split(" at line").next().unwrap_or_default();
                    format!("invalid string ({reason}): expected JSON escapes like \\\" \\\\ \\n \\u00e9")
                });
            }
            Some((_, '\\')) => {
                cur.bump();
            }
            Some(_) => {}
        }
    }
}
