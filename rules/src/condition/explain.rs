//! Why a condition matches a message or not: the predicates that decided, where they are
//! in the condition's canonical text, and what the message (and the owner's variables)
//! held for them. The answer to "I didn't get a notification for X".
//!
//! What decided: for `and` that holds, every part; for `and` that does not, its first part
//! that does not; for `or` that holds, its first part that does; for `or` that does not,
//! every part; `not` passes on its part's reasons. The verdict is always
//! [`Condition::matches`]'s.

use std::fmt::Write as _;

use serde_json::Value;

use super::{BodyTest, Condition, Literal, Operand, Variable, Variables};
use crate::{Message, Metadata};

/// Why a condition matches a message or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Whether the condition matches.
    pub matched: bool,
    /// The condition's canonical text, which the reasons' spans point into.
    pub text: String,
    /// The predicates that decided, in the order they appear in `text`.
    pub reasons: Vec<Reason>,
}

/// One predicate that decided, and what it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// The predicate as written in the canonical text.
    pub predicate: String,
    /// Its byte range in [`Explanation::text`].
    pub span: std::ops::Range<usize>,
    /// Whether the predicate itself held (under a `not`, holding is what failed).
    pub held: bool,
    /// What the message and the variables held for it, in words.
    pub seen: String,
}

/// The most values of a set or a body field shown in a reason.
const SHOWN: usize = 12;
/// The most characters of one body value shown.
const VALUE_CHARS: usize = 80;

impl Condition {
    /// Whether the condition matches the message for an owner with these variables, and
    /// which predicates decided.
    pub fn explain(&self, message: &Message, metadata: &Metadata, vars: &Variables) -> Explanation {
        let text = self.to_string();
        // Leaves are printed in order, each one whole: find each after the one before.
        let mut spans = Vec::new();
        let mut cursor = 0;
        leaves(self, &mut |leaf| {
            let printed = leaf.to_string();
            let start = text[cursor..]
                .find(&printed)
                .map_or(cursor, |at| cursor + at);
            cursor = (start + printed.len()).min(text.len());
            spans.push(start..cursor);
        });
        let mut walk = Walk {
            message,
            metadata,
            vars,
            spans: &spans,
            leaf: 0,
            text: &text,
            reasons: Vec::new(),
        };
        let matched = walk.decide(self);
        let reasons = walk.reasons;
        Explanation {
            matched,
            text,
            reasons,
        }
    }
}

fn leaves<'a>(c: &'a Condition, visit: &mut impl FnMut(&'a Condition)) {
    match c {
        Condition::And(parts) | Condition::Or(parts) => {
            parts.iter().for_each(|p| leaves(p, visit));
        }
        Condition::Not(inner) => leaves(inner, visit),
        leaf => visit(leaf),
    }
}

fn count(c: &Condition) -> usize {
    let mut n = 0;
    leaves(c, &mut |_| n += 1);
    n
}

struct Walk<'a> {
    message: &'a Message,
    metadata: &'a Metadata,
    vars: &'a Variables,
    spans: &'a [std::ops::Range<usize>],
    leaf: usize,
    text: &'a str,
    reasons: Vec<Reason>,
}

impl Walk<'_> {
    fn holds(&self, c: &Condition) -> bool {
        c.matches(self.message, self.metadata, self.vars)
    }

    /// Evaluates `c`, recording the reasons of the parts that decided and skipping the
    /// leaves of the others.
    fn decide(&mut self, c: &Condition) -> bool {
        match c {
            Condition::And(parts) | Condition::Or(parts) => {
                let is_and = matches!(c, Condition::And(_));
                let values: Vec<bool> = parts.iter().map(|p| self.holds(p)).collect();
                let whole = if is_and {
                    values.iter().all(|v| *v)
                } else {
                    values.iter().any(|v| *v)
                };
                // All parts decide when every one had to be looked at (`and` that holds,
                // `or` that does not); otherwise the first that settled it.
                let all = whole == is_and;
                let mut decided = false;
                for (part, value) in parts.iter().zip(values) {
                    if all || (!decided && value != is_and) {
                        decided = true;
                        self.decide(part);
                    } else {
                        self.leaf += count(part);
                    }
                }
                whole
            }
            Condition::Not(inner) => !self.decide(inner),
            leaf => {
                let held = self.holds(leaf);
                let span = self.spans.get(self.leaf).cloned().unwrap_or(0..0);
                self.leaf += 1;
                let predicate = self.text.get(span.clone()).unwrap_or_default().to_string();
                let seen = self.seen(leaf);
                self.reasons.push(Reason {
                    predicate,
                    span,
                    held,
                    seen,
                });
                held
            }
        }
    }

    /// What the message held for a predicate, in words.
    fn seen(&self, c: &Condition) -> String {
        let meta = self.metadata;
        let mut out = match c {
            Condition::TopicIs(_) | Condition::TopicGlob(_) => {
                format!("topic is {}", quote(&self.message.topic))
            }
            Condition::AppIn(_) => match &meta.app {
                Some(app) => format!("app is {}", quote(app)),
                None => "the message has no app".to_string(),
            },
            Condition::Severity { .. } => format!("severity is {}", meta.severity.as_str()),
            Condition::Has { field, .. }
            | Condition::HasAny { field, .. }
            | Condition::HasAll { field, .. } => set(field.name(), field.of(meta)),
            Condition::AgentIs(_) | Condition::AgentIsNot(_) | Condition::AgentIn(_) => {
                match &meta.agent {
                    Some(agent) => format!("agent is {}", quote(agent)),
                    None => "the message has no agent".to_string(),
                }
            }
            Condition::Body { path, .. } => {
                let mut values = Vec::new();
                path.any(&self.message.body, &mut |v: &Value| {
                    values.push(short(v));
                    false
                });
                match values.as_slice() {
                    [] => format!("body.{path} is missing"),
                    [one] => format!("body.{path} is {one}"),
                    many => format!("body.{path} is {}", list(many)),
                }
            }
            Condition::And(_) | Condition::Or(_) | Condition::Not(_) => String::new(),
        };
        for var in variables(c) {
            let _ = match self.vars.set(var) {
                None => write!(out, ", ${} is {}", var.name(), quote(&self.vars.me)),
                Some(values) if values.is_empty() => write!(out, ", ${} is empty", var.name()),
                Some(values) => write!(out, ", ${} is {}", var.name(), names(values)),
            };
        }
        out
    }
}

/// The variables a leaf names, each once, in order.
fn variables(c: &Condition) -> Vec<Variable> {
    let mut found: Vec<Variable> = Vec::new();
    let mut add = |v: Variable| {
        if !found.contains(&v) {
            found.push(v);
        }
    };
    match c {
        Condition::Has { value, .. } | Condition::AgentIs(value) | Condition::AgentIsNot(value) => {
            if let Operand::Var(v) = value {
                add(*v);
            }
        }
        Condition::HasAny { values, .. }
        | Condition::HasAll { values, .. }
        | Condition::AgentIn(values) => {
            for value in values {
                if let Operand::Var(v) = value {
                    add(*v);
                }
            }
        }
        Condition::Body { test, .. } => {
            let lits: &[Literal] = match test {
                BodyTest::Eq(lit) | BodyTest::Ne(lit) => std::slice::from_ref(lit),
                BodyTest::In(lits) => lits,
                _ => &[],
            };
            for lit in lits {
                if let Literal::Var { var } = lit {
                    add(*var);
                }
            }
        }
        _ => {}
    }
    found
}

fn quote(s: &str) -> String {
    super::printer::quote(s)
}

fn set(name: &str, values: &std::collections::BTreeSet<String>) -> String {
    if values.is_empty() {
        format!("{name} is empty")
    } else {
        format!("{name} are {}", names(values))
    }
}

fn names(values: &std::collections::BTreeSet<String>) -> String {
    let shown: Vec<String> = values.iter().map(|v| quote(v)).collect();
    list(&shown)
}

fn list(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        let _ = write!(out, " and {} more", items.len() - SHOWN);
    }
    format!("[{out}]")
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= VALUE_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(VALUE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn explain(text: &str, body: Value, meta: Metadata, vars: &Variables) -> Explanation {
        let c = Condition::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let message = Message::new("m-1", meta.topic.clone(), body);
        let e = c.explain(&message, &meta, vars);
        assert_eq!(e.matched, c.matches(&message, &meta, vars), "{text}");
        for r in &e.reasons {
            assert_eq!(&e.text[r.span.clone()], r.predicate, "{text}");
        }
        e
    }

    fn meta(app: &str, usernames: &[&str]) -> Metadata {
        Metadata {
            topic: format!("org.fedoraproject.prod.{app}.x"),
            app: Some(app.into()),
            usernames: usernames.iter().map(|s| s.to_string()).collect(),
            ..Metadata::default()
        }
    }

    #[test]
    fn a_failed_and_names_its_first_failing_part() {
        let vars = Variables::for_user("ralph");
        let e = explain(
            r#"app == "bodhi" and usernames has $me"#,
            json!({}),
            meta("buildsys", &["ralph"]),
            &vars,
        );
        assert!(!e.matched);
        assert_eq!(e.reasons.len(), 1, "{e:?}");
        assert_eq!(e.reasons[0].predicate, r#"app == "bodhi""#);
        assert_eq!(e.reasons[0].span, 0..14);
        assert!(!e.reasons[0].held);
        assert_eq!(e.reasons[0].seen, r#"app is "buildsys""#);
    }

    #[test]
    fn a_failed_or_names_every_part_with_the_values_seen() {
        let mut vars = Variables::for_user("ralph");
        vars.my_packages.insert("kernel".into());
        let e = explain(
            r#"usernames has $me or packages has $my_packages"#,
            json!({}),
            meta("bodhi", &["alice", "bob"]),
            &vars,
        );
        assert!(!e.matched);
        assert_eq!(e.reasons.len(), 2);
        assert_eq!(
            e.reasons[0].seen,
            r#"usernames are ["alice", "bob"], $me is "ralph""#
        );
        assert_eq!(
            e.reasons[1].seen,
            r#"packages is empty, $my_packages is ["kernel"]"#
        );
        assert_eq!(e.reasons[1].span.start, 21);
    }

    #[test]
    fn a_match_names_what_made_it_and_not_turns_it_round() {
        let vars = Variables::for_user("ralph");
        let e = explain(
            r#"(app == "x" or usernames has $me) and not agent == $me and body.release >= "40""#,
            json!({"release": "41"}),
            Metadata {
                agent: Some("bob".into()),
                ..meta("bodhi", &["ralph"])
            },
            &vars,
        );
        assert!(e.matched);
        let said: Vec<(&str, bool)> = e
            .reasons
            .iter()
            .map(|r| (r.predicate.as_str(), r.held))
            .collect();
        assert_eq!(
            said,
            [
                ("usernames has $me", true),
                ("agent == $me", false),
                (r#"body.release >= "40""#, true)
            ]
        );
        assert_eq!(e.reasons[1].seen, r#"agent is "bob", $me is "ralph""#);
        assert_eq!(e.reasons[2].seen, r#"body.release is "41""#);
        let e = explain(
            "body.builds[*].nvr exists",
            json!({"builds": []}),
            meta("bodhi", &[]),
            &vars,
        );
        assert_eq!(e.reasons[0].seen, "body.builds[*].nvr is missing");
    }
}
