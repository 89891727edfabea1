//! Body paths: `comment.karma`, `update.builds[*].nvr`, `builds[0]`. Written after `body.`
//! in the text form and stored as the same string in JSON.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One step of a body path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// An object key; on an array, a key made of digits indexes it (as `Message::body_path`).
    Key(String),
    /// `[n]`: one array element.
    Index(usize),
    /// `[*]`: every array element; the test must hold for at least one.
    Each,
}

/// A parsed body path; equal when the text is equal.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BodyPath {
    text: String,
    steps: Vec<Step>,
}

/// Characters a key may hold without quoting. Keys with other characters (dots, spaces)
/// cannot be named; fedmsg bodies use identifier-like keys.
pub fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl BodyPath {
    /// Parses a path; the error carries the 0-based character offset of the fault.
    pub fn parse(text: &str) -> Result<BodyPath, (usize, String)> {
        let chars: Vec<char> = text.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        let expected_key = |i: usize, found: Option<&char>| {
            let found = found.map_or("the end".to_string(), |c| format!("`{c}`"));
            (
                i,
                format!(
                    "expected a key (letters, digits, `_`, `-`) in the body path, found {found}"
                ),
            )
        };
        loop {
            // A key, unless this is the start of a `[...]` step right after another step.
            if chars.get(i) != Some(&'[') || steps.is_empty() {
                let start = i;
                while chars.get(i).is_some_and(|c| is_key_char(*c)) {
                    i += 1;
                }
                if i == start {
                    return Err(expected_key(i, chars.get(i)));
                }
                steps.push(Step::Key(chars[start..i].iter().collect()));
            }
            while chars.get(i) == Some(&'[') {
                let start = i;
                i += 1;
                let inner_start = i;
                while chars.get(i).is_some_and(|c| *c != ']') {
                    i += 1;
                }
                if chars.get(i) != Some(&']') {
                    return Err((start, "`[` is not closed: expected `[*]` or `[n]`".into()));
                }
                let inner: String = chars[inner_start..i].iter().collect();
                i += 1;
                if inner == "*" {
                    steps.push(Step::Each);
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else {
                    return Err((
                        start,
                        format!("expected `[*]` or `[n]` with a number n, found `[{inner}]`"),
                    ));
                }
            }
            match chars.get(i) {
                None => break,
                Some('.') => i += 1,
                Some(other) => {
                    return Err((
                        i,
                        format!("expected `.`, `[` or the end of the body path, found `{other}`"),
                    ))
                }
            }
        }
        Ok(BodyPath {
            text: text.to_string(),
            steps,
        })
    }

    /// The path as written (without `body.`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether some value the path reaches in `body` satisfies `test`. A path that
    /// reaches nothing satisfies nothing.
    pub fn any<'a>(&self, body: &'a Value, test: &mut impl FnMut(&'a Value) -> bool) -> bool {
        walk(&self.steps, body, test)
    }
}

fn walk<'a>(steps: &[Step], value: &'a Value, test: &mut impl FnMut(&'a Value) -> bool) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return test(value);
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => map.get(key).is_some_and(|v| walk(rest, v, test)),
        (Step::Key(key), Value::Array(items)) => key
            .parse::<usize>()
            .ok()
            .and_then(|n| items.get(n))
            .is_some_and(|v| walk(rest, v, test)),
        (Step::Index(n), Value::Array(items)) => items.get(*n).is_some_and(|v| walk(rest, v, test)),
        (Step::Each, Value::Array(items)) => items.iter().any(|v| walk(rest, v, test)),
        _ => false,
    }
}

impl fmt::Debug for BodyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BodyPath({:?})", self.text)
    }
}

impl fmt::Display for BodyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for BodyPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for BodyPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        BodyPath::parse(&text).map_err(|(at, message)| {
            serde::de::Error::custom(format!(
                "body path {text:?}, character {}: {message}",
                at + 1
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_parse_and_walk() {
        let p = BodyPath::parse("update.builds[*].nvr").expect("path");
        assert_eq!(p.steps().len(), 4);
        let body = json!({"update": {"builds": [{"nvr": "a-1"}, {"nvr": "kernel-6"}]}});
        assert!(p.any(&body, &mut |v| v == "kernel-6"));
        assert!(!p.any(&body, &mut |v| v == "b"));
        let p = BodyPath::parse("update.builds.1.nvr").expect("path");
        assert!(p.any(&body, &mut |v| v == "kernel-6"));
        let p = BodyPath::parse("update.builds[0]").expect("path");
        assert!(p.any(&body, &mut |v| v["nvr"] == "a-1"));
    }

    #[test]
    fn bad_paths_point_at_the_fault() {
        assert_eq!(BodyPath::parse("a..b").expect_err("bad").0, 2);
        assert_eq!(BodyPath::parse("a[x]").expect_err("bad").0, 1);
        assert_eq!(BodyPath::parse("a[*").expect_err("bad").0, 1);
        assert_eq!(BodyPath::parse("").expect_err("bad").0, 0);
        assert!(BodyPath::parse("[0]").is_err());
    }
}
