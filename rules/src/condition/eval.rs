//! Evaluation: whether one message satisfies one condition for one owner. This is the
//! reference semantics; the index only decides which conditions to evaluate. It never
//! fails: a missing field makes its predicate false.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use serde_json::Value;

use super::{BodyTest, CmpOp, Condition, Literal, Operand, Variables};
use crate::{Message, Metadata};

pub(super) fn matches(c: &Condition, message: &Message, meta: &Metadata, vars: &Variables) -> bool {
    match c {
        Condition::And(parts) => parts.iter().all(|p| matches(p, message, meta, vars)),
        Condition::Or(parts) => parts.iter().any(|p| matches(p, message, meta, vars)),
        Condition::Not(inner) => !matches(inner, message, meta, vars),
        Condition::TopicIs(topic) => message.topic == *topic,
        Condition::TopicGlob(glob) => super::topic_glob_matches(glob, &message.topic),
        Condition::AppIn(apps) => meta.app.as_ref().is_some_and(|app| apps.contains(app)),
        Condition::Severity { op, value } => op.holds(meta.severity.cmp(value)),
        Condition::Has { field, value } => contains_any(field.of(meta), value, vars),
        Condition::HasAny { field, values } => {
            let set = field.of(meta);
            values.iter().any(|v| contains_any(set, v, vars))
        }
        Condition::HasAll { field, values } => {
            let set = field.of(meta);
            // "All of nothing" would match every message when a variable is empty; a
            // filter about my packages must not fire because I own none.
            let mut seen_any = false;
            for value in values.iter().flat_map(|v| resolve(v, vars)) {
                seen_any = true;
                if !set.contains(value) {
                    return false;
                }
            }
            seen_any
        }
        Condition::AgentIs(value) => meta
            .agent
            .as_deref()
            .is_some_and(|agent| resolve(value, vars).any(|v| v == agent)),
        Condition::AgentIsNot(value) => meta
            .agent
            .as_deref()
            .is_some_and(|agent| !resolve(value, vars).any(|v| v == agent)),
        Condition::AgentIn(values) => meta.agent.as_deref().is_some_and(|agent| {
            values
                .iter()
                .any(|value| operand_contains(value, agent, vars))
        }),
        Condition::Body { path, test } => {
            path.any(&message.body, &mut |v| body_test(test, v, vars))
        }
    }
}

fn resolve<'a>(operand: &'a Operand, vars: &'a Variables) -> impl Iterator<Item = &'a str> + 'a {
    let (literal, variable) = match operand {
        Operand::Literal(s) => (Some(s.as_str()), None),
        Operand::Var(var) => (None, Some(vars.resolve(*var))),
    };
    literal.into_iter().chain(variable.into_iter().flatten())
}

/// Whether the operand stands for `value`.
fn operand_contains(operand: &Operand, value: &str, vars: &Variables) -> bool {
    match operand {
        Operand::Literal(s) => s == value,
        Operand::Var(var) => match vars.set(*var) {
            Some(set) => set.contains(value),
            None => vars.me == value,
        },
    }
}

/// Whether `set` holds any value of the operand. Walks the smaller side: a message names
/// a few packages, an owner may own hundreds.
fn contains_any(set: &BTreeSet<String>, operand: &Operand, vars: &Variables) -> bool {
    match operand {
        Operand::Literal(s) => set.contains(s),
        Operand::Var(var) => match vars.set(*var) {
            None => set.contains(&vars.me),
            Some(values) if values.len() < set.len() => values.iter().any(|v| set.contains(v)),
            Some(values) => set.iter().any(|v| values.contains(v)),
        },
    }
}

fn body_test(test: &BodyTest, value: &Value, vars: &Variables) -> bool {
    match test {
        BodyTest::Eq(lit) => equals(value, lit, vars),
        BodyTest::Ne(lit) => !equals(value, lit, vars),
        BodyTest::Lt(lit) => compare(value, lit, CmpOp::Lt),
        BodyTest::Le(lit) => compare(value, lit, CmpOp::Le),
        BodyTest::Gt(lit) => compare(value, lit, CmpOp::Gt),
        BodyTest::Ge(lit) => compare(value, lit, CmpOp::Ge),
        BodyTest::In(lits) => lits.iter().any(|lit| equals(value, lit, vars)),
        BodyTest::Prefix(prefix) => value
            .as_str()
            .is_some_and(|s| s.starts_with(prefix.as_str())),
        BodyTest::Glob(glob) => value.as_str().is_some_and(|s| glob.is_match(s)),
        BodyTest::Regex(regex) => value.as_str().is_some_and(|s| regex.is_match(s)),
        BodyTest::Exists => !value.is_null(),
    }
}

fn equals(value: &Value, lit: &Literal, vars: &Variables) -> bool {
    match (value, lit) {
        (Value::String(a), Literal::Var { var }) => match vars.set(*var) {
            Some(set) => set.contains(a),
            None => vars.me == *a,
        },
        (Value::Null, Literal::Null) => true,
        (Value::Bool(a), Literal::Bool(b)) => a == b,
        (Value::String(a), Literal::String(b)) => a == b,
        (Value::Number(a), Literal::Number(b)) => {
            super::order::number_order(a, b) == Some(Ordering::Equal)
        }
        _ => false,
    }
}

/// Orders as [`super::order`] says; values that do not compare make the test false, as
/// a missing field does, rather than an error at match time.
fn compare(value: &Value, lit: &Literal, op: CmpOp) -> bool {
    super::order(value, lit).is_some_and(|o| op.holds(o))
}
