//! Validation shared by both forms. The parser checks as it reads, pointing at tokens;
//! JSON is read into [`RawCondition`] (the same shape, unchecked) and checked node by
//! node, so a bad node fails inside `serde_json` and its error carries line and column.

use serde::Deserialize;

use super::depth::check_node;
use super::pattern::check_topic_glob;
use super::{BodyPath, BodyTest, CmpOp, Condition, Literal, Operand, SetField, VariableKind};
use crate::Severity;

/// Where an operand is used, which decides the variables it may name.
#[derive(Debug, Clone, Copy)]
pub(super) enum OperandUse {
    /// In `usernames/packages/groups has …`, or `agent in …` (as usernames).
    Set(SetField),
    /// After `agent ==` or `agent !=`: a single username.
    Agent,
}

/// Why an operand does not fit where it is used, if it does not.
pub(super) fn check_operand(usage: OperandUse, operand: &Operand) -> Result<(), String> {
    let Operand::Var(var) = operand else {
        return Ok(());
    };
    match usage {
        OperandUse::Agent if !var.is_single() => Err(format!(
            "`${}` is a set of {}: `agent ==` and `agent !=` expect a string or $me (use `agent in ${}`)",
            var.name(),
            var.kind().noun(),
            var.name()
        )),
        OperandUse::Agent => Ok(()),
        OperandUse::Set(field) => {
            let kind: VariableKind = field.variable_kind();
            if var.kind() == kind {
                Ok(())
            } else {
                Err(format!(
                    "`${}` holds {}, but `{}` holds {}: expected a string or one of {}",
                    var.name(),
                    var.kind().noun(),
                    field.name(),
                    kind.noun(),
                    kind.variables()
                ))
            }
        }
    }
}

fn check_operands(usage: OperandUse, operands: &[Operand], what: &str) -> Result<(), String> {
    if operands.is_empty() {
        return Err(format!(
            "{what} has an empty list: expected at least one value"
        ));
    }
    operands.iter().try_for_each(|o| check_operand(usage, o))
}

/// The JSON shape of [`Condition`] before it is checked. Children are [`Condition`]s, so
/// they are checked as they are read.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum RawCondition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    TopicIs(String),
    TopicGlob(String),
    AppIn(Vec<String>),
    Severity {
        op: CmpOp,
        value: Severity,
    },
    Has {
        field: SetField,
        value: Operand,
    },
    HasAny {
        field: SetField,
        values: Vec<Operand>,
    },
    HasAll {
        field: SetField,
        values: Vec<Operand>,
    },
    AgentIs(Operand),
    AgentIsNot(Operand),
    AgentIn(Vec<Operand>),
    Body {
        path: BodyPath,
        test: BodyTest,
    },
}

impl TryFrom<RawCondition> for Condition {
    type Error = String;

    fn try_from(raw: RawCondition) -> Result<Condition, String> {
        Ok(match raw {
            RawCondition::And(parts) if parts.len() < 2 => {
                return Err("`and` needs at least two parts".into())
            }
            RawCondition::Or(parts) if parts.len() < 2 => {
                return Err("`or` needs at least two parts".into())
            }
            RawCondition::And(parts) => {
                check_node(&parts)?;
                Condition::And(parts)
            }
            RawCondition::Or(parts) => {
                check_node(&parts)?;
                Condition::Or(parts)
            }
            RawCondition::Not(inner) => {
                check_node([&*inner])?;
                Condition::Not(inner)
            }
            RawCondition::TopicIs(topic) => Condition::TopicIs(topic),
            RawCondition::TopicGlob(glob) => {
                check_topic_glob(&glob)?;
                Condition::TopicGlob(glob)
            }
            RawCondition::AppIn(apps) if apps.is_empty() => {
                return Err("`app_in` has an empty list: expected at least one app".into())
            }
            RawCondition::AppIn(apps) => Condition::AppIn(apps),
            RawCondition::Severity { op, value } => Condition::Severity { op, value },
            RawCondition::Has { field, value } => {
                check_operand(OperandUse::Set(field), &value)?;
                Condition::Has { field, value }
            }
            RawCondition::HasAny { field, values } => {
                check_operands(OperandUse::Set(field), &values, "`has_any`")?;
                Condition::HasAny { field, values }
            }
            RawCondition::HasAll { field, values } => {
                check_operands(OperandUse::Set(field), &values, "`has_all`")?;
                Condition::HasAll { field, values }
            }
            RawCondition::AgentIs(value) => {
                check_operand(OperandUse::Agent, &value)?;
                Condition::AgentIs(value)
            }
            RawCondition::AgentIsNot(value) => {
                check_operand(OperandUse::Agent, &value)?;
                Condition::AgentIsNot(value)
            }
            RawCondition::AgentIn(values) => {
                check_operands(OperandUse::Set(SetField::Usernames), &values, "`agent_in`")?;
                Condition::AgentIn(values)
            }
            RawCondition::Body { path, test } => {
                check_body_test(&test)?;
                Condition::Body { path, test }
            }
        })
    }
}

fn check_body_test(test: &BodyTest) -> Result<(), String> {
    match test {
        BodyTest::Lt(lit) | BodyTest::Le(lit) | BodyTest::Gt(lit) | BodyTest::Ge(lit)
            if !matches!(lit, Literal::Number(_) | Literal::String(_)) =>
        {
            Err("an ordering test (lt, le, gt, ge) expects a number or a string (not true, false, null or a variable)".into())
        }
        BodyTest::In(lits) if lits.is_empty() => {
            Err("`in` has an empty list: expected at least one literal".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Condition;

    #[test]
    fn json_errors_carry_position_and_reason() {
        let err = Condition::from_json(r#"{"and": [{"topic_is": "a"}]}"#).expect_err("bad");
        assert!(err.message.contains("at least two parts"), "{err}");
        assert_eq!(err.line, 1);
        let err = Condition::from_json(
            "{\"has\": {\"field\": \"packages\",\n \"value\": {\"var\": \"me\"}}}",
        )
        .expect_err("bad");
        assert!(err.message.contains("`$me` holds usernames"), "{err}");
        assert_eq!(err.line, 2);
        let err = Condition::from_json(r#"{"body": {"path": "a", "test": {"regex": "("}}}"#)
            .expect_err("bad");
        assert!(err.message.contains("invalid regex"), "{err}");
        let err = Condition::from_json(r#"{"topic_glob": "a.b*"}"#).expect_err("bad");
        assert!(err.message.contains("whole segments"), "{err}");
        let err = Condition::from_json(r#"{"nope": 1}"#).expect_err("bad");
        assert!(err.message.contains("unknown variant `nope`"), "{err}");
    }
}
