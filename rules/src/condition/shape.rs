//! The part of a message body a condition can look at, and a JSON reader that builds only
//! that part. Previews (issue 11) evaluate one condition against a week of archived
//! bodies: building every body as a whole `serde_json::Value` (every string and map
//! allocated) was most of a body test's cost. Read through a [`BodyShape`], a body keeps
//! only the values on the condition's paths (and everything under the value a path ends
//! at); the rest is skipped by the parser without being built.
//!
//! Every path of the condition walks the kept body exactly as it walks the whole one:
//! objects keep the keys a path names, arrays keep every element (so indexes stay right)
//! shaped by whatever a path does below them (`[n]`, `[*]`, or a key of digits, which
//! indexes an array), and a path's last value is kept whole.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{BodyPath, Condition, Step};

/// What of a body to keep; see the module's documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyShape {
    /// Keep this value whole.
    whole: bool,
    /// An object's keys to keep, and what of each.
    keys: BTreeMap<String, BodyShape>,
    /// An array's elements: each kept, shaped so; none: no path goes into them.
    items: Option<Box<BodyShape>>,
}

impl BodyShape {
    /// The shape of every body path in `condition` (nothing when it has none).
    pub fn of(condition: &Condition) -> BodyShape {
        let mut shape = BodyShape::default();
        shape.add_condition(condition);
        shape
    }

    /// A shape that keeps the whole body.
    pub fn whole() -> BodyShape {
        BodyShape {
            whole: true,
            ..BodyShape::default()
        }
    }

    fn add_condition(&mut self, condition: &Condition) {
        match condition {
            Condition::And(parts) | Condition::Or(parts) => {
                parts.iter().for_each(|p| self.add_condition(p))
            }
            Condition::Not(inner) => self.add_condition(inner),
            Condition::Body { path, .. } => self.add_path(path),
            _ => {}
        }
    }

    /// Keeps what `path` walks through and everything where it ends.
    pub fn add_path(&mut self, path: &BodyPath) {
        self.add_steps(path.steps());
    }

    fn add_steps(&mut self, steps: &[Step]) {
        if self.whole {
            return;
        }
        let Some((step, rest)) = steps.split_first() else {
            *self = BodyShape::whole();
            return;
        };
        match step {
            Step::Key(key) => {
                self.keys.entry(key.clone()).or_default().add_steps(rest);
                // On an array, a key of digits indexes it.
                if !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()) {
                    self.items.get_or_insert_default().add_steps(rest);
                }
            }
            Step::Index(_) | Step::Each => self.items.get_or_insert_default().add_steps(rest),
        }
    }

    /// Reads `text` (JSON) keeping what this shape keeps. Errors as `serde_json`'s for
    /// text that is not JSON.
    pub fn read(&self, text: &str) -> Result<Value, serde_json::Error> {
        let mut reader = serde_json::Deserializer::from_str(text);
        let value = self.deserialize(&mut reader)?;
        reader.end()?;
        Ok(value)
    }
}

impl<'de> DeserializeSeed<'de> for &BodyShape {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.whole {
            return serde::Deserialize::deserialize(deserializer);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for &BodyShape {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Some(items) = &self.items else {
            // No path goes into the elements: none is built.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(Value::Array(Vec::new()));
        };
        let mut kept = Vec::new();
        while let Some(item) = seq.next_element_seed(&**items)? {
            kept.push(item);
        }
        Ok(Value::Array(kept))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(KeyOf(self))? {
            match key {
                Some((name, shape)) => {
                    let value = map.next_value_seed(shape)?;
                    kept.insert(name, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }
}

/// An object's key, looked up among those a shape keeps: the name (copied only then) and
/// the shape of its value, or nothing for a key to skip.
struct KeyOf<'s>(&'s BodyShape);

impl<'de, 's> DeserializeSeed<'de> for KeyOf<'s> {
    type Value = Option<(String, &'s BodyShape)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 's> Visitor<'de> for KeyOf<'s> {
    type Value = Option<(String, &'s BodyShape)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.keys.get(key).map(|shape| (key.to_string(), shape)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, Metadata, Variables};
    use proptest::prelude::*;

    const BODY: &str = r#"{
        "release": "40", "big": {"x": [1, 2, {"y": "z"}], "s": "long text"},
        "update": {"builds": [{"nvr": "a-1"}, {"nvr": "b-2", "extra": [1]}], "title": "t",
                   "user": {"name": "alice"}},
        "list": [[1, 2], [3]], "n": null, "f": 1.5, "escaped": "a\"b"
    }"#;

    fn kept(condition: &str) -> Value {
        let c = Condition::parse(condition).unwrap();
        BodyShape::of(&c).read(BODY).unwrap()
    }

    #[test]
    fn only_the_paths_are_built() {
        assert_eq!(
            kept("body.release == 40"),
            serde_json::json!({"release": "40"})
        );
        assert_eq!(
            kept(r#"body.update.builds[*].nvr == "b-2""#),
            serde_json::json!({"update": {"builds": [{"nvr": "a-1"}, {"nvr": "b-2"}]}})
        );
        assert_eq!(
            kept(r#"body.update.user == "x" or body.list[1][0] == 3"#),
            serde_json::json!({"update": {"user": {"name": "alice"}}, "list": [[1, 2], [3]]})
        );
        // A key of digits indexes an array.
        assert_eq!(
            kept("body.list.0.1 == 2"),
            serde_json::json!({"list": [[1, 2], [3]]})
        );
        assert_eq!(
            kept(r#"body.update.builds[*].extra == 1"#),
            serde_json::json!({"update": {"builds": [{}, {"extra": [1]}]}})
        );
        assert_eq!(kept(r#"app == "x""#), serde_json::json!({}));
    }

    #[test]
    fn not_json_is_an_error() {
        let shape = BodyShape::whole();
        assert!(shape.read("{").is_err());
        assert!(shape.read("{} x").is_err());
        assert!(BodyShape::default().read("[1,").is_err());
    }

    /// A JSON value of a few levels, with the keys conditions below name.
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-50i64..50).prop_map(Value::from),
            "[a-c0-9]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c0-2]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const CONDITIONS: &[&str] = &[
        "body.a == 1",
        r#"body.a.b == "a""#,
        "body.a[*].b >= 2",
        "body.a[1] == true",
        "body.a.1.c != null",
        r#"body.b in [1, "b", null] and not body.c[*][*] == 3"#,
        r#"body.a.b.c == "c" or body.b[0] < 0 or body.0 == 1"#,
        "body.c != 1",
    ];

    proptest! {
        /// A condition decides the same on the kept body as on the whole one.
        #[test]
        fn a_kept_body_decides_as_the_whole(body in json()) {
            let text = body.to_string();
            let vars = Variables::default();
            for condition in CONDITIONS {
                let c = Condition::parse(condition).unwrap();
                let whole = Message::new("m", "t", body.clone());
                let part = Message::new("m", "t", BodyShape::of(&c).read(&text).unwrap());
                prop_assert_eq!(
                    c.matches(&whole, &Metadata::default(), &vars),
                    c.matches(&part, &Metadata::default(), &vars),
                    "{} on {}", condition, text
                );
            }
        }
    }
}
