//! `fedmsg.encoding.dumps`: the text fedmsg signs, Python's `json.dumps(value,
//! sort_keys=True, separators=(',', ':'))` with its defaults (`ensure_ascii`, floats as
//! `repr`). [`canonical_text`] writes it from the envelope's own text, so every number is
//! read as Python reads it (integers of any size kept, floats rounded correctly);
//! [`canonical`] writes it from a parsed value.

use std::fmt::Write as _;

use serde_json::Value;

/// `fedmsg.encoding.dumps` of the JSON object `text` without its top-level keys `skip`,
/// read from the text: integers kept digit for digit (Python's are of any size), floats
/// rounded correctly (serde_json's default float parsing is best-effort, and one unit off
/// would change Python's `repr`), a repeated key's last value kept (as Python's dict
/// does). `None` if `text` is not one JSON object; the caller then falls back to
/// [`canonical`]. Nesting is as deep as the caller's JSON parser allowed (serde_json: 128).
pub fn canonical_text(text: &str, skip: &[&str]) -> Option<String> {
    let mut scanner = Scanner { text, at: 0 };
    scanner.space();
    if scanner.peek()? != b'{' {
        return None;
    }
    let out = scanner.value(skip)?;
    scanner.space();
    (scanner.at == text.len()).then_some(out)
}

/// A cursor over JSON text that writes what it reads in fedmsg's form.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.space();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// One value; `skip` applies to the keys of this value if it is an object.
    fn value(&mut self, skip: &[&str]) -> Option<String> {
        self.space();
        match self.peek()? {
            b'{' => self.object(skip),
            b'[' => self.array(),
            b'"' => {
                let mut out = String::new();
                write_string(&mut out, &self.string()?);
                Some(out)
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &str) -> Option<String> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| {
            self.at = end;
            word.to_string()
        })
    }

    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => break,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        serde_json::from_str(self.text.get(start..self.at)?).ok()
    }

    fn number(&mut self) -> Option<String> {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.at += 1;
        }
        let lexeme = self.text.get(start..self.at)?;
        if lexeme.contains(['.', 'e', 'E']) {
            return lexeme.parse::<f64>().ok().map(python_float);
        }
        let digits = lexeme.strip_prefix('-').unwrap_or(lexeme);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Python's int: `-0` is 0.
        Some(match digits.bytes().all(|b| b == b'0') {
            true => "0".to_string(),
            false => lexeme.to_string(),
        })
    }

    fn array(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = String::from("[");
        self.space();
        if self.peek()? == b']' {
            self.at += 1;
            return Some("[]".into());
        }
        loop {
            out.push_str(&self.value(&[])?);
            self.space();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    out.push(',');
                }
                b']' => {
                    self.at += 1;
                    out.push(']');
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, skip: &[&str]) -> Option<String> {
        self.at += 1;
        let mut members: Vec<(String, String)> = Vec::new();
        self.space();
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                self.space();
                let key = self.string()?;
                self.eat(b':')?;
                let value = self.value(&[])?;
                if !skip.contains(&key.as_str()) {
                    members.retain(|(k, _)| *k != key);
                    members.push((key, value));
                }
                self.space();
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        members.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::from("{");
        for (i, (key, value)) in members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_string(&mut out, key);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        Some(out)
    }
}

/// `fedmsg.encoding.dumps`: Python's `json.dumps(value, sort_keys=True, separators=(',',
/// ':'))`, the text fedmsg signs. Keys sorted by code point, no spaces, every character
/// outside printable ASCII escaped (`\n` style where JSON has one, else `\u00XX`, and
/// surrogate pairs past the BMP), floats as Python's `repr`.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value);
    out
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => {
                let _ = write!(out, "{u}");
            }
            (None, Some(i), _) => {
                let _ = write!(out, "{i}");
            }
            (None, None, Some(f)) => out.push_str(&python_float(f)),
            (None, None, None) => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                if let Some(value) = map.get(key) {
                    write_canonical(out, value);
                }
            }
            out.push('}');
        }
    }
}

/// A string as Python's `json` writes it with `ensure_ascii` (its default).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// A float as Python's `repr`: the shortest digits that read back the same, positional
/// from 1e-4 up to below 1e16 (always with a fraction: `1.0`), else scientific with a
/// signed exponent of at least two digits (`1e+16`, `1.5e-07`).
fn python_float(f: f64) -> String {
    if !f.is_finite() {
        // Python writes these, though they are not JSON; serde_json never reads them.
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // Rust's `{:e}` is the shortest round-trip form: `-1.2345e-7`.
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        if point <= 0 {
            let zeros = "0".repeat(usize::try_from(-point).unwrap_or(0));
            format!("{sign}0.{zeros}{digits}")
        } else {
            let point = usize::try_from(point).unwrap_or(0);
            let whole = if digits.len() > point {
                digits[..point].to_string()
            } else {
                format!("{digits:0<point$}")
            };
            let fraction = digits.get(point..).filter(|f| !f.is_empty()).unwrap_or("0");
            format!("{sign}{whole}.{fraction}")
        }
    } else {
        let mantissa = match digits.split_at(1) {
            (first, "") => first.to_string(),
            (first, rest) => format!("{first}.{rest}"),
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both writers agree on every envelope of both corpora (which have no number they
    /// would read differently).
    #[test]
    fn text_and_value_agree_on_the_corpora() {
        let mut checked = 0;
        for corpus in ["fedmsg-meta", "fedora-messaging"] {
            let path = format!(
                "{}/../corpus/{corpus}/messages.jsonl",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let value: Value = serde_json::from_str(line).unwrap_or_default();
                let Some(Value::Object(mut map)) = value.get("message").or(Some(&value)).cloned()
                else {
                    panic!("not an object: {line}")
                };
                let json = Value::Object(map.clone()).to_string();
                map.remove("signature");
                assert_eq!(
                    canonical_text(&json, &["signature"]).as_deref(),
                    Some(canonical(&Value::Object(map)).as_str()),
                    "{line}"
                );
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked}");
    }

    /// What Python reads and serde_json (without `arbitrary_precision`) cannot: an integer
    /// past 64 bits, and spacing, `-0`, a repeated key, an escaped key.
    #[test]
    fn the_text_is_read_as_python_reads_it() {
        // json.dumps(json.loads(text), sort_keys=True, separators=(',', ':')) in Python 3.11.
        let text = r#" { "b" : [ 123456789012345678901234567890 , -0 , 1E2, 2.50 ] ,
            "signature": "x", "a\u00e9": {"k": 1, "k": 2, "signature": "kept"} , "e": [] , "o": {} } "#;
        assert_eq!(
            canonical_text(text, &["signature"]).as_deref(),
            Some(
                r#"{"a\u00e9":{"k":2,"signature":"kept"},"b":[123456789012345678901234567890,0,100.0,2.5],"e":[],"o":{}}"#
            )
        );
        assert_eq!(canonical_text("[1]", &[]), None);
        assert_eq!(canonical_text("{\"a\": 1} x", &[]), None);
    }

    #[test]
    fn floats_read_as_python_writes_them() {
        for (f, python) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (1234.5, "1234.5"),
            (1_700_000_000.123_456, "1700000000.123456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-2.5e-300, "-2.5e-300"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(python_float(f), python, "{f:e}");
        }
    }

    #[test]
    fn canonical_json_is_fedmsgs() {
        // json.dumps(v, sort_keys=True, separators=(',', ':')) in Python 3.11 wrote this.
        let value: Value = serde_json::from_str(
            r#"{"topic": "org.x", "msg": {"b": [1, 2.0, null, true], "a": "é\u2603 😀\n\t\"\\/\u007f\u0001"},
                "i": 1, "timestamp": 1357010450, "Z": -3}"#,
        )
        .unwrap_or_default();
        assert_eq!(
            canonical(&value),
            r#"{"Z":-3,"i":1,"msg":{"a":"\u00e9\u2603 \ud83d\ude00\n\t\"\\/\u007f\u0001","b":[1,2.0,null,true]},"timestamp":1357010450,"topic":"org.x"}"#
        );
    }
}
