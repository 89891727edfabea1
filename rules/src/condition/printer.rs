//! The printer: the canonical text form. Parsing what it prints gives back the same tree,
//! so text → JSON → text loses nothing: nested `and`/`or` keep their parentheses, and
//! strings are written in JSON syntax, which the lexer reads.

use std::fmt::{self, Display, Formatter, Write};

use super::{BodyTest, Condition, Literal, Operand};

/// A string in double quotes with JSON escapes.
pub(super) fn quote(s: &str) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

impl Display for Operand {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Literal(s) => f.write_str(&quote(s)),
            Operand::Var(var) => write!(f, "${}", var.name()),
        }
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::String(s) => f.write_str(&quote(s)),
            Literal::Var { var } => write!(f, "${}", var.name()),
        }
    }
}

fn list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_char('[')?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_char(']')
}

/// A lone variable stands for its whole set, so it needs no brackets.
fn operands(f: &mut Formatter<'_>, items: &[Operand]) -> fmt::Result {
    match items {
        [var @ Operand::Var(_)] => write!(f, "{var}"),
        _ => list(f, items),
    }
}

impl Display for BodyTest {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            BodyTest::Eq(lit) => write!(f, "== {lit}"),
            BodyTest::Ne(lit) => write!(f, "!= {lit}"),
            BodyTest::Lt(lit) => write!(f, "< {lit}"),
            BodyTest::Le(lit) => write!(f, "<= {lit}"),
            BodyTest::Gt(lit) => write!(f, "> {lit}"),
            BodyTest::Ge(lit) => write!(f, ">= {lit}"),
            BodyTest::In(lits) => {
                f.write_str("in ")?;
                match lits.as_slice() {
                    // A lone variable stands for its whole set, as in `has any`.
                    [var @ Literal::Var { .. }] => write!(f, "{var}"),
                    _ => list(f, lits),
                }
            }
            BodyTest::Prefix(p) => write!(f, "prefix {}", quote(p)),
            BodyTest::Glob(g) => write!(f, "~ {}", quote(g.as_str())),
            BodyTest::Regex(r) => write!(f, "matches {}", quote(r.as_str())),
            BodyTest::Exists => f.write_str("exists"),
        }
    }
}

fn join(f: &mut Formatter<'_>, parts: &[Condition], word: &str) -> fmt::Result {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            write!(f, " {word} ")?;
        }
        match part {
            Condition::And(_) | Condition::Or(_) => write!(f, "({part})")?,
            _ => write!(f, "{part}")?,
        }
    }
    Ok(())
}

impl Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Condition::And(parts) => join(f, parts, "and"),
            Condition::Or(parts) => join(f, parts, "or"),
            Condition::Not(inner) => match **inner {
                Condition::And(_) | Condition::Or(_) => write!(f, "not ({inner})"),
                _ => write!(f, "not {inner}"),
            },
            Condition::TopicIs(t) => write!(f, "topic == {}", quote(t)),
            Condition::TopicGlob(g) => write!(f, "topic ~ {}", quote(g)),
            Condition::AppIn(apps) => match apps.as_slice() {
                [app] => write!(f, "app == {}", quote(app)),
                _ => {
                    f.write_str("app in ")?;
                    let quoted: Vec<String> = apps.iter().map(|a| quote(a)).collect();
                    f.write_char('[')?;
                    f.write_str(&quoted.join(", "))?;
                    f.write_char(']')
                }
            },
            Condition::Severity { op, value } => write!(f, "severity {} {value}", op.symbol()),
            Condition::Has { field, value } => write!(f, "{} has {value}", field.name()),
            Condition::HasAny { field, values } => {
                write!(f, "{} has any ", field.name())?;
                operands(f, values)
            }
            Condition::HasAll { field, values } => {
                write!(f, "{} has all ", field.name())?;
                operands(f, values)
            }
            Condition::AgentIs(value) => write!(f, "agent == {value}"),
            Condition::AgentIsNot(value) => write!(f, "agent != {value}"),
            Condition::AgentIn(values) => {
                f.write_str("agent in ")?;
                operands(f, values)
            }
            Condition::Body { path, test } => write!(f, "body.{path} {test}"),
        }
    }
}
