//! Ordering comparisons on body fields: numbers as numbers and versions as versions,
//! whichever side is quoted; and variables in body tests.

use std::cmp::Ordering;

use proptest::prelude::*;
use serde_json::json;
use tidings_rules::condition::{order, rpm_version_cmp, Literal};
use tidings_rules::{Condition, Message, Metadata, Variables};

fn version() -> impl Strategy<Value = String> {
    "[0-9]{1,3}([._+~^-]{0,1}[0-9a-z]{0,3}){0,4}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn integers_compare_by_value_quoted_or_not(a in -100_000i64..100_000, b in -100_000i64..100_000) {
        let want = Some(a.cmp(&b));
        prop_assert_eq!(order(&json!(a.to_string()), &Literal::String(b.to_string())), want);
        prop_assert_eq!(order(&json!(a), &Literal::String(b.to_string())), want);
        prop_assert_eq!(order(&json!(a.to_string()), &Literal::Number(b.into())), want);
        prop_assert_eq!(order(&json!(a), &Literal::Number(b.into())), want);
    }

    #[test]
    fn versions_are_a_total_order(a in version(), b in version(), c in version()) {
        prop_assert_eq!(rpm_version_cmp(&a, &a), Ordering::Equal);
        prop_assert_eq!(rpm_version_cmp(&a, &b), rpm_version_cmp(&b, &a).reverse());
        let (ab, bc) = (rpm_version_cmp(&a, &b), rpm_version_cmp(&b, &c));
        if ab == bc {
            prop_assert_eq!(rpm_version_cmp(&a, &c), ab, "{} {} {}", a, b, c);
        }
    }

    #[test]
    fn dotted_versions_compare_part_by_part(parts_a in prop::collection::vec(0u32..200, 1..4), parts_b in prop::collection::vec(0u32..200, 1..4)) {
        let text = |p: &[u32]| p.iter().map(u32::to_string).collect::<Vec<_>>().join(".");
        let (a, b) = (text(&parts_a), text(&parts_b));
        prop_assert_eq!(order(&json!(a), &Literal::String(b.clone())), Some(parts_a.cmp(&parts_b)));
    }
}

fn matches(condition: &str, body: serde_json::Value, vars: &Variables) -> bool {
    let c = Condition::parse(condition).unwrap_or_else(|e| panic!("{condition}: {e}"));
    let message = Message::new(
        "m",
        "org.fedoraproject.prod.bodhi.updates.fedora.sync",
        body,
    );
    let metadata = Metadata::derive(&message);
    c.matches(&message, &metadata, vars)
}

#[test]
fn the_documented_release_example_compares_numbers() {
    let vars = Variables::for_user("alice");
    let c = r#"body.release >= "40""#;
    assert!(!matches(c, json!({"release": "9"}), &vars), "9 < 40");
    assert!(matches(c, json!({"release": "40"}), &vars));
    assert!(matches(c, json!({"release": 41}), &vars));
    assert!(!matches(c, json!({"release": "rawhide"}), &vars));
    assert!(matches(
        r#"body.version > "1.9""#,
        json!({"version": "1.10"}),
        &vars
    ));
    assert!(matches(
        "body.version > 1.9",
        json!({"version": "1.10"}),
        &vars
    ));
    assert!(matches(r#"body.name < "b""#, json!({"name": "abc"}), &vars));
}

#[test]
fn variables_stand_for_their_values_in_body_tests() {
    let mut vars = Variables::for_user("alice");
    vars.followed_users.insert("bob".into());
    let body = json!({"user": {"name": "alice"}, "owners": ["carol", "bob"], "n": 1});
    assert!(matches("body.user.name == $me", body.clone(), &vars));
    assert!(!matches("body.user.name != $me", body.clone(), &vars));
    assert!(matches(
        r#"body.user.name in ["x", $me]"#,
        body.clone(),
        &vars
    ));
    assert!(matches(
        "body.owners[*] in $followed_users",
        body.clone(),
        &vars
    ));
    assert!(!matches("body.n == $me", body.clone(), &vars));
    assert!(!matches("body.missing != $me", body.clone(), &vars));
    let bob = Variables::for_user("bob");
    assert!(!matches("body.user.name == $me", body.clone(), &bob));
    assert!(matches("body.user.name != $me", body, &bob));
    // Round trip: text, JSON, text.
    let c =
        Condition::parse("body.user.name == $me and body.owners[*] in [$followed_users, \"x\"]")
            .expect("valid");
    assert!(c.to_json().contains(r#"{"var":"me"}"#), "{}", c.to_json());
    assert_eq!(Condition::from_json(&c.to_json()).expect("json"), c);
    assert_eq!(Condition::parse(&c.to_string()).expect("text"), c);
    // Not where an order is asked for.
    let err = Condition::parse("body.release >= $me").expect_err("refused");
    assert_eq!(err.column, 17, "{err}");
    assert!(err.message.contains("expected a number"), "{err}");
}

#[test]
fn conditions_say_whether_they_read_the_body() {
    for (text, reads) in [
        ("usernames has $me", false),
        (r#"app == "bodhi" or not body.a exists"#, true),
        ("not (usernames has $me and body.x == $me)", true),
    ] {
        let c = Condition::parse(text).expect("valid");
        assert_eq!(c.uses_body(), reads, "{text}");
    }
}
