//! Issue 8 item 2: the nesting limit agrees end to end. The parser accepted 64 levels of
//! nesting whose stored JSON then went past serde_json's recursion limit, so a filter was
//! saved that could never be loaded. Now every condition that parses round-trips through
//! its JSON form, and one level more is refused by both readers, with a clear message.

use proptest::prelude::*;
use tidings_rules::condition::{MAX_DEPTH, MAX_JSON_DEPTH};
use tidings_rules::Condition;

use crate::strategies::condition;

/// A predicate whose JSON nests as deep as any (four levels).
const LEAF: &str = "body.update.builds[*].nvr in [\"a\", 1]";

/// How deep a JSON text nests, counting objects and arrays as serde_json does.
fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for c in json.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, ..) => {}
            (false, _, '"') => in_string = true,
            (false, _, '{' | '[') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, '}' | ']') => depth -= 1,
            _ => {}
        }
    }
    deepest
}

/// One level of nesting around `inner`.
#[derive(Debug, Clone, Copy)]
enum Level {
    And,
    Or,
    Not,
}

fn wrap(levels: &[Level], leaf: &Condition) -> Condition {
    levels
        .iter()
        .fold(leaf.clone(), |inner, level| match level {
            Level::And => Condition::And(vec![leaf.clone(), inner]),
            Level::Or => Condition::Or(vec![inner, leaf.clone()]),
            Level::Not => Condition::Not(Box::new(inner)),
        })
}

fn leaf() -> Condition {
    Condition::parse(LEAF).unwrap_or_else(|e| panic!("{LEAF}: {e}"))
}

/// `and` and `or` alternating: the most JSON per level, as deep as `depth`.
fn alternating(depth: usize) -> Condition {
    let levels: Vec<Level> = (0..depth)
        .map(|i| if i % 2 == 0 { Level::And } else { Level::Or })
        .collect();
    wrap(&levels, &leaf())
}

fn round_trips(c: &Condition) -> Result<(), String> {
    let text = c.to_string();
    let parsed = Condition::parse(&text).map_err(|e| format!("parse: {e}"))?;
    let json = c
        .to_checked_json()
        .map_err(|e| format!("to_checked_json: {e}"))?;
    let read = Condition::from_json(&json).map_err(|e| format!("from_json: {e}"))?;
    if parsed != *c || read != *c {
        return Err("changed on the way".into());
    }
    if json_depth(&json) > MAX_JSON_DEPTH {
        return Err(format!("JSON nests {} levels", json_depth(&json)));
    }
    Ok(())
}

#[test]
fn the_deepest_accepted_condition_round_trips() {
    let deepest = alternating(MAX_DEPTH);
    assert_eq!(deepest.depth(), MAX_DEPTH);
    round_trips(&deepest).unwrap_or_else(|e| panic!("{e}"));
    // serde_json's own limit is 128 levels.
    assert!(json_depth(&deepest.to_json()) < 128);
    let nots = wrap(&[Level::Not; MAX_DEPTH], &leaf());
    round_trips(&nots).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn one_level_more_is_refused_by_both_readers() {
    let too_deep = alternating(MAX_DEPTH + 1);
    let text = too_deep.to_string();
    let err = Condition::parse(&text).expect_err("too deep to parse");
    assert_eq!(
        err.message,
        "`and`, `or` and `not` nest deeper than 48 levels: expected a simpler condition"
    );
    // The outermost node crossed the limit: the error points at its `and`.
    assert!(text.starts_with(&format!("{LEAF} and (")), "{text}");
    assert_eq!((err.line, err.column), (1, LEAF.len() + 2), "{text}");

    let err = Condition::from_json(&too_deep.to_json()).expect_err("too deep to read");
    assert!(err.message.contains("nest deeper than 48 levels"), "{err}");
    let err = too_deep.to_checked_json().expect_err("too deep to store");
    assert!(err.message.contains("nest deeper than 48 levels"), "{err}");

    let nots = "not ".repeat(MAX_DEPTH + 1) + LEAF;
    let err = Condition::parse(&nots).expect_err("too many nots");
    assert!(err.message.contains("nest deeper than 48 levels"), "{err}");
    assert_eq!(
        (err.line, err.column),
        (1, 4 * MAX_DEPTH + 1),
        "the 49th `not`"
    );
}

/// What the issue reported: 64 levels of parentheses and `not` parsed, and the stored
/// form went past serde_json's limit. It is refused when typed now, and a stored form
/// nested past serde_json's limit is refused in the same words.
#[test]
fn the_reported_condition_is_refused_when_typed() {
    let text = "(usernames has $me or not ".repeat(63) + "usernames has $me" + &")".repeat(63);
    let err = Condition::parse(&text).expect_err("too deep");
    assert!(err.message.contains("nest deeper than 48 levels"), "{err}");
    let json = "{\"not\":".repeat(200) + "{\"topic_is\":\"a\"}" + &"}".repeat(200);
    let err = Condition::from_json(&json).expect_err("past serde_json's limit");
    assert_eq!(
        err.message,
        "`and`, `or` and `not` nest deeper than 48 levels: expected a simpler condition"
    );
    assert_eq!(err.line, 1);
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::And), Just(Level::Or), Just(Level::Not)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any mix of levels up to the limit, around any predicate, stores and loads; one more
    /// level and the parser, the JSON reader and the store all refuse it.
    #[test]
    fn the_limit_holds_in_every_form(
        levels in prop::collection::vec(level(), 0..=MAX_DEPTH),
        extra in level(),
        inner in condition(),
    ) {
        let mut levels = levels;
        levels.truncate(MAX_DEPTH - inner.depth());
        let within = wrap(&levels, &inner);
        round_trips(&within).map_err(TestCaseError::fail)?;

        let mut more: Vec<Level> = levels.clone();
        more.extend(std::iter::repeat_n(extra, MAX_DEPTH + 1 - within.depth()));
        let beyond = wrap(&more, &inner);
        prop_assert!(beyond.depth() > MAX_DEPTH);
        prop_assert!(Condition::parse(&beyond.to_string()).is_err());
        prop_assert!(Condition::from_json(&beyond.to_json()).is_err());
        prop_assert!(beyond.to_checked_json().is_err());
    }

    /// Each level of the tree adds at most two levels of JSON, and a predicate at most five:
    /// the bound the limit rests on.
    #[test]
    fn json_nests_at_most_two_levels_per_tree_level(c in condition()) {
        prop_assert!(json_depth(&c.to_json()) <= 2 * c.depth() + 5, "{}", c.to_json());
    }
}
