//! Reading catalog files: TOML text into raw entries that remember where each value was
//! written, so a mistake is reported as `file:line:column: reason`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A catalog entry or file that could not be used, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    /// The file name the caller gave with the text.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong, and what was skipped because of it.
    pub reason: String,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.reason
        )
    }
}

impl std::error::Error for CatalogError {}

/// A catalog file as written: its entries, each a table of spanned values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    entry: Vec<Spanned<BTreeMap<String, Spanned<RawValue>>>>,
}

/// One raw entry: its position and its keys.
pub struct RawEntry {
    /// Where the entry's table is.
    pub span: Range<usize>,
    /// Its keys and values.
    pub fields: BTreeMap<String, Spanned<RawValue>>,
}

/// A value in an entry: a text, a list of texts, or something an entry never holds.
#[derive(Debug)]
pub enum RawValue {
    /// A string.
    Text(String),
    /// An array; items keep their positions.
    List(Vec<Spanned<RawItem>>),
    /// Anything else, by type name (reported as an error).
    Other(&'static str),
}

/// An item of an array.
#[derive(Debug)]
pub enum RawItem {
    /// A string.
    Text(String),
    /// Anything else, by type name.
    Other(&'static str),
}

/// Parses one file; a syntax error skips the whole file.
pub fn parse_file(file: &str, text: &str) -> Result<Vec<RawEntry>, CatalogError> {
    match toml::from_str::<RawFile>(text) {
        Ok(raw) => Ok(raw
            .entry
            .into_iter()
            .map(|e| RawEntry {
                span: e.span(),
                fields: e.into_inner(),
            })
            .collect()),
        Err(err) => Err(error_at(
            file,
            text,
            err.span().map_or(0, |s| s.start),
            format!("file skipped: {}", err.message().trim_end()),
        )),
    }
}

/// An error at a byte offset of `text`.
pub fn error_at(file: &str, text: &str, offset: usize, reason: String) -> CatalogError {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    CatalogError {
        file: file.to_string(),
        line,
        column,
        reason,
    }
}

macro_rules! other_types {
    ($ctor:path) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($ctor("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($ctor("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($ctor("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($ctor("a number"))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($ctor("a table"))
        }
    };
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawValue, E> {
                Ok(RawValue::Text(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<RawItem>>()? {
                    items.push(item);
                }
                Ok(RawValue::List(items))
            }
            other_types!(RawValue::Other);
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RawItem, E> {
                Ok(RawItem::Text(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawItem, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawItem::Other("an array"))
            }
            other_types!(RawItem::Other);
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_lines_and_characters() {
        let text = "a\nbé = 1\n";
        let e = error_at("f.toml", text, 6, "x".into());
        assert_eq!((e.line, e.column), (2, 4));
        assert_eq!(e.to_string(), "f.toml:2:4: x");
        let e = error_at("f.toml", text, 999, "x".into());
        assert_eq!(e.line, 3);
    }

    #[test]
    fn entries_keep_value_spans() {
        let text = "[[entry]]\ntopic = \"a.b\"\nusernames = [\"x\", 3]\nsummary = true\n";
        let entries = parse_file("f", text).expect("parses");
        assert_eq!(entries.len(), 1);
        let topic = &entries[0].fields["topic"];
        assert_eq!(
            error_at("f", text, topic.span().start, String::new()).line,
            2
        );
        let RawValue::List(items) = entries[0].fields["usernames"].get_ref() else {
            panic!("list expected");
        };
        assert!(matches!(items[1].get_ref(), RawItem::Other("a number")));
        let pos = error_at("f", text, items[1].span().start, String::new());
        assert_eq!((pos.line, pos.column), (3, 19));
        assert!(matches!(
            entries[0].fields["summary"].get_ref(),
            RawValue::Other("a boolean")
        ));
    }

    #[test]
    fn syntax_errors_skip_the_file_with_a_position() {
        let err = parse_file("bad.toml", "[[entry]]\ntopic = \n")
            .err()
            .expect("fails");
        assert_eq!((err.file.as_str(), err.line), ("bad.toml", 2));
        assert!(err.reason.starts_with("file skipped: "), "{}", err.reason);
        let err = parse_file("bad.toml", "[[entri]]\n").err().expect("fails");
        assert!(err.reason.contains("entri"), "{}", err.reason);
    }
}
