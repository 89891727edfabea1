//! How deep a condition nests, measured in one place. The parser, the JSON reader and
//! [`Condition::to_checked_json`] (what the store writes) all refuse a tree deeper than
//! [`MAX_DEPTH`], so whatever parses also stores, and whatever is stored also loads.
//!
//! Why 48: the canonical JSON form nests two levels for each `and` or `or` (an object
//! holding an array), one for each `not` (an object), and at most five inside a predicate
//! (`{"body":{"path":…,"test":{"in":[{"var":"me"}]}}}`). A tree 48 deep is therefore at most
//! 2 × 48 + 5 = 101 levels of JSON ([`MAX_JSON_DEPTH`]): inside serde_json's recursion
//! limit of 128, with room to spare for a document that embeds a condition.

use super::{Condition, ConditionError};

/// How many `and`, `or` and `not` may nest inside one another (and, in the text form, how
/// deep `not` and parentheses may nest while it is read).
pub const MAX_DEPTH: usize = 48;

/// The deepest the canonical JSON of a condition within [`MAX_DEPTH`] can nest.
pub const MAX_JSON_DEPTH: usize = 2 * MAX_DEPTH + 5;

// serde_json refuses a document nested 128 levels deep.
const _: () = assert!(MAX_JSON_DEPTH < 128);

/// What the parser, the JSON reader and the store say about a tree deeper than
/// [`MAX_DEPTH`].
pub(super) fn too_deep(what: &str) -> String {
    format!("{what} nest deeper than {MAX_DEPTH} levels: expected a simpler condition")
}

/// The words for what nests, in the tree.
pub(super) const TREE: &str = "`and`, `or` and `not`";

impl Condition {
    /// How many `and`, `or` and `not` nest on the deepest path: 0 for a lone predicate,
    /// 1 for `a and b` or `not a`, 2 for `(a or b) and c`.
    pub fn depth(&self) -> usize {
        // An explicit stack: a tree built in code may be deeper than any that parses, and
        // measuring it must not overflow the call stack.
        let mut deepest = 0;
        let mut pending = vec![(self, 0)];
        while let Some((node, depth)) = pending.pop() {
            deepest = deepest.max(depth);
            match node {
                Condition::And(parts) | Condition::Or(parts) => {
                    pending.extend(parts.iter().map(|p| (p, depth + 1)));
                }
                Condition::Not(inner) => pending.push((inner, depth + 1)),
                _ => {}
            }
        }
        deepest
    }

    /// The canonical JSON form, checked the way the JSON reader will check it: refused
    /// when the tree nests deeper than [`MAX_DEPTH`], or when the JSON would not read back
    /// to this same tree (a condition built in code can break rules the parser enforces,
    /// such as a one-part `and`). This is what a store should write.
    pub fn to_checked_json(&self) -> Result<String, ConditionError> {
        if self.depth() > MAX_DEPTH {
            return Err(ConditionError {
                line: 1,
                column: 1,
                message: too_deep(TREE),
            });
        }
        let json = self.to_json();
        match Condition::from_json(&json) {
            Ok(read) if read == *self => Ok(json),
            Ok(_) => Err(ConditionError {
                line: 1,
                column: 1,
                message: "the condition does not read back to itself from its JSON form".into(),
            }),
            Err(err) => Err(err),
        }
    }
}

/// Whether a node's parts leave it within [`MAX_DEPTH`]: checked as each `and`, `or` or
/// `not` is built, so an error names the node that crossed the limit.
pub(super) fn check_node<'a>(parts: impl IntoIterator<Item = &'a Condition>) -> Result<(), String> {
    let depth = 1 + parts.into_iter().map(Condition::depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        Err(too_deep(TREE))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::condition::{BodyPath, BodyTest, Literal, Operand, SetField, Variable};

    /// How deep a JSON text nests (objects and arrays), counted the way serde_json does.
    fn json_depth(json: &str) -> usize {
        let value: serde_json::Value = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(err) => panic!("{json}: {err}"),
        };
        fn depth(v: &serde_json::Value) -> usize {
            match v {
                serde_json::Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
                serde_json::Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        depth(&value)
    }

    /// The predicates whose JSON nests deepest.
    fn deepest_leaves() -> Vec<Condition> {
        let path = BodyPath::parse("a.b").unwrap_or_else(|e| panic!("{e:?}"));
        vec![
            Condition::Body {
                path,
                test: BodyTest::In(vec![
                    Literal::Bool(true),
                    Literal::Var { var: Variable::Me },
                ]),
            },
            Condition::Body {
                path: BodyPath::parse("c").unwrap_or_else(|e| panic!("{e:?}")),
                test: BodyTest::Eq(Literal::Var {
                    var: Variable::FollowedUsers,
                }),
            },
        ]
    }

    #[test]
    fn predicates_nest_at_most_five_json_levels() {
        for leaf in deepest_leaves() {
            assert!(json_depth(&leaf.to_json()) <= 5, "{leaf}");
        }
        assert_eq!(json_depth(&deepest_leaves()[0].to_json()), 5);
        let has_any = Condition::HasAny {
            field: SetField::Usernames,
            values: vec![Operand::Var(Variable::Me)],
        };
        assert_eq!(json_depth(&has_any.to_json()), 4);
    }

    /// The bound the limit rests on: each level of the tree adds at most two JSON levels.
    #[test]
    fn the_deepest_tree_stays_inside_serde_jsons_limit() {
        for leaf in deepest_leaves().into_iter().take(1) {
            let mut c = leaf.clone();
            for level in 0..MAX_DEPTH {
                let part = if level % 2 == 0 {
                    Condition::And(vec![leaf.clone(), c])
                } else {
                    Condition::Or(vec![leaf.clone(), c])
                };
                c = part;
            }
            assert_eq!(c.depth(), MAX_DEPTH);
            let json = c.to_checked_json().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(json_depth(&json), MAX_JSON_DEPTH);
        }
    }

    #[test]
    fn depth_counts_and_or_not() {
        let leaf = || Condition::TopicIs("a".into());
        assert_eq!(leaf().depth(), 0);
        assert_eq!(Condition::Not(Box::new(leaf())).depth(), 1);
        let or = Condition::Or(vec![leaf(), leaf()]);
        assert_eq!(or.depth(), 1);
        assert_eq!(
            Condition::And(vec![leaf(), Condition::Not(Box::new(or))]).depth(),
            3
        );
    }

    #[test]
    fn checked_json_refuses_what_would_not_load() {
        let mut c = Condition::TopicIs("a".into());
        for _ in 0..=MAX_DEPTH {
            c = Condition::Not(Box::new(c));
        }
        let err = c.to_checked_json().expect_err("too deep");
        assert!(err.message.contains("nest deeper than 48"), "{err}");
        let one_part = Condition::And(vec![Condition::TopicIs("a".into())]);
        let err = one_part.to_checked_json().expect_err("one-part and");
        assert!(err.message.contains("at least two parts"), "{err}");
    }
}
