//! The filter builder (issue 11): the common cases as a form — apps and their topics, whose
//! messages (mine, my groups', followed), severity, not my own actions, one body test —
//! written as condition text, and read back from a condition when it has the builder's
//! shape. The shape, parts joined by `and` in this order, each optional:
//!
//! ```text
//! app in ["bodhi", "buildsys"]
//! topic ~ "**.bodhi.update.comment" (or several joined by `or`)
//! (packages has $my_packages or groups has $my_groups or packages has $followed_packages
//!  or usernames has $me or usernames has $followed_users)   (those ticked)
//! severity >= warning
//! not agent == $me
//! body.<path> <op> <value>
//! ```
//!
//! Anything else opens in the text mode, with the part that does not fit named.

use super::{BodyPath, BodyTest, CmpOp, Condition, Literal, Operand, SetField, Variable};
use crate::Severity;

/// Whose messages a builder filter wants (any of those ticked).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Whose {
    /// `packages has $my_packages`: packages I own, or my groups own.
    pub my_packages: bool,
    /// `groups has $my_groups`: messages about my groups.
    pub my_groups: bool,
    /// `packages has $followed_packages`.
    pub followed_packages: bool,
    /// `usernames has $me`: events about me.
    pub me: bool,
    /// `usernames has $followed_users`: people I follow.
    pub followed_users: bool,
}

/// One body field test.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyField {
    /// The path after `body.`.
    pub path: String,
    /// `==`, `!=`, `<`, `<=`, `>`, `>=`.
    pub op: CmpOp,
    /// The value as typed: a number, `true`, `false`, `null`, `$me`, else a string.
    pub value: String,
}

/// What the builder form holds (the `/api/v1/builder` body, as JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Builder {
    /// Apps (`app in [..]`); none: any app.
    pub apps: Vec<String>,
    /// Topic patterns as the catalog writes them (`bodhi.update.comment`), matched under
    /// any `<prefix>.<env>.`; none: any topic.
    pub topics: Vec<String>,
    /// Whose messages.
    pub whose: Whose,
    /// `severity >= …`.
    pub severity: Option<Severity>,
    /// `not agent == $me`.
    pub not_mine: bool,
    /// One body test.
    pub body: Option<BodyField>,
}

/// Why a builder form does not make a condition, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BuilderError {
    /// The form field.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> BuilderError {
    BuilderError {
        field,
        message: message.into(),
    }
}

impl Builder {
    /// The condition the form describes. A form with nothing chosen is refused: it would
    /// match every message.
    pub fn condition(&self) -> Result<Condition, BuilderError> {
        let mut parts = Vec::new();
        if !self.apps.is_empty() {
            parts.push(Condition::AppIn(self.apps.clone()));
        }
        if !self.topics.is_empty() {
            let mut globs = Vec::new();
            for topic in &self.topics {
                let glob = format!("**.{topic}");
                super::pattern::check_topic_glob(&glob).map_err(|e| err("topic", e))?;
                globs.push(Condition::TopicGlob(glob));
            }
            parts.push(Condition::any(globs));
        }
        let w = self.whose;
        let mut whose = Vec::new();
        for (on, field, var) in [
            (w.my_packages, SetField::Packages, Variable::MyPackages),
            (w.my_groups, SetField::Groups, Variable::MyGroups),
            (
                w.followed_packages,
                SetField::Packages,
                Variable::FollowedPackages,
            ),
            (w.me, SetField::Usernames, Variable::Me),
            (
                w.followed_users,
                SetField::Usernames,
                Variable::FollowedUsers,
            ),
        ] {
            if on {
                whose.push(Condition::Has {
                    field,
                    value: Operand::Var(var),
                });
            }
        }
        if !whose.is_empty() {
            parts.push(Condition::any(whose));
        }
        if let Some(value) = self.severity {
            parts.push(Condition::Severity {
                op: CmpOp::Ge,
                value,
            });
        }
        if self.not_mine {
            parts.push(Condition::Not(Box::new(Condition::AgentIs(Operand::Var(
                Variable::Me,
            )))));
        }
        if let Some(body) = &self.body {
            let path = BodyPath::parse(body.path.trim())
                .map_err(|(at, message)| err("body_path", format!("at {}: {message}", at + 1)))?;
            let value = literal(body.value.trim());
            let ordering = !matches!(body.op, CmpOp::Eq | CmpOp::Ne);
            if ordering && !matches!(value, Literal::Number(_) | Literal::String(_)) {
                return Err(err(
                    "body_value",
                    format!(
                        "`{}` compares numbers, versions or text, not {}",
                        body.op.symbol(),
                        body.value.trim()
                    ),
                ));
            }
            let test = match body.op {
                CmpOp::Eq => BodyTest::Eq(value),
                CmpOp::Ne => BodyTest::Ne(value),
                CmpOp::Lt => BodyTest::Lt(value),
                CmpOp::Le => BodyTest::Le(value),
                CmpOp::Gt => BodyTest::Gt(value),
                CmpOp::Ge => BodyTest::Ge(value),
            };
            parts.push(Condition::Body { path, test });
        }
        if parts.is_empty() || (parts.len() == 1 && self.not_mine) {
            return Err(err(
                "apps",
                "choose at least one app, topic, whose messages, severity or body test: as it is, \
                 this filter would match (nearly) every message",
            ));
        }
        Ok(Condition::all(parts))
    }

    /// The form for a condition, when it has the builder's shape; otherwise why not,
    /// naming the part that does not fit.
    pub fn read(condition: &Condition) -> Result<Builder, String> {
        let parts: Vec<&Condition> = match condition {
            Condition::And(parts) => parts.iter().collect(),
            other => vec![other],
        };
        let mut b = Builder::default();
        // Each kind of part once, in the builder's order (stages 1 to 6; 0 fits nowhere).
        let mut stage = 1;
        for part in parts {
            let (at, fits) = b.take(part);
            if !fits || at < stage {
                return Err(format!(
                    "`{part}` has no place in the form (it holds apps, topics, whose messages, \
                     severity, not my own actions and one body test, once each)"
                ));
            }
            stage = at + 1;
        }
        Ok(b)
    }

    /// Takes one part into the form: its stage in the builder's order, and whether it fit.
    fn take(&mut self, part: &Condition) -> (usize, bool) {
        match part {
            Condition::AppIn(apps) => {
                self.apps = apps.clone();
                (1, true)
            }
            Condition::TopicGlob(_) => (2, self.take_topics(std::slice::from_ref(part))),
            Condition::Or(globs) if globs.iter().all(|g| matches!(g, Condition::TopicGlob(_))) => {
                (2, self.take_topics(globs))
            }
            Condition::Has { .. } => (3, self.take_whose(std::slice::from_ref(part))),
            Condition::Or(parts) if parts.iter().all(|p| matches!(p, Condition::Has { .. })) => {
                (3, self.take_whose(parts))
            }
            Condition::Severity {
                op: CmpOp::Ge,
                value,
            } => {
                self.severity = Some(*value);
                (4, true)
            }
            Condition::Not(inner) if **inner == Condition::AgentIs(Operand::Var(Variable::Me)) => {
                self.not_mine = true;
                (5, true)
            }
            Condition::Body { path, test } => {
                let (op, lit) = match test {
                    BodyTest::Eq(l) => (CmpOp::Eq, l),
                    BodyTest::Ne(l) => (CmpOp::Ne, l),
                    BodyTest::Lt(l) => (CmpOp::Lt, l),
                    BodyTest::Le(l) => (CmpOp::Le, l),
                    BodyTest::Gt(l) => (CmpOp::Gt, l),
                    BodyTest::Ge(l) => (CmpOp::Ge, l),
                    _ => return (6, false),
                };
                let value = match lit {
                    Literal::String(s) if literal(s) == *lit => s.clone(),
                    Literal::String(_) => return (6, false),
                    other => other.to_string(),
                };
                self.body = Some(BodyField {
                    path: path.as_str().to_string(),
                    op,
                    value,
                });
                (6, true)
            }
            _ => (0, false),
        }
    }

    fn take_topics(&mut self, globs: &[Condition]) -> bool {
        for glob in globs {
            match glob {
                Condition::TopicGlob(g) => match g.strip_prefix("**.") {
                    Some(topic) if !topic.starts_with("**") => self.topics.push(topic.to_string()),
                    _ => return false,
                },
                _ => return false,
            }
        }
        true
    }

    fn take_whose(&mut self, parts: &[Condition]) -> bool {
        for part in parts {
            let Condition::Has {
                field,
                value: Operand::Var(var),
            } = part
            else {
                return false;
            };
            let slot = match (field, var) {
                (SetField::Packages, Variable::MyPackages) => &mut self.whose.my_packages,
                (SetField::Groups, Variable::MyGroups) => &mut self.whose.my_groups,
                (SetField::Packages, Variable::FollowedPackages) => {
                    &mut self.whose.followed_packages
                }
                (SetField::Usernames, Variable::Me) => &mut self.whose.me,
                (SetField::Usernames, Variable::FollowedUsers) => &mut self.whose.followed_users,
                _ => return false,
            };
            if *slot {
                return false;
            }
            *slot = true;
        }
        // The builder writes them in its own order: another order would not read back
        // the same.
        self.condition_whose() == parts
    }

    fn condition_whose(&self) -> Vec<Condition> {
        let w = self.whose;
        [
            (w.my_packages, SetField::Packages, Variable::MyPackages),
            (w.my_groups, SetField::Groups, Variable::MyGroups),
            (
                w.followed_packages,
                SetField::Packages,
                Variable::FollowedPackages,
            ),
            (w.me, SetField::Usernames, Variable::Me),
            (
                w.followed_users,
                SetField::Usernames,
                Variable::FollowedUsers,
            ),
        ]
        .into_iter()
        .filter(|(on, _, _)| *on)
        .map(|(_, field, var)| Condition::Has {
            field,
            value: Operand::Var(var),
        })
        .collect()
    }
}

/// A typed value as a literal: a JSON number, `true`, `false`, `null`, a variable
/// (`$me`), else the text as a string.
fn literal(text: &str) -> Literal {
    match text {
        "true" => return Literal::Bool(true),
        "false" => return Literal::Bool(false),
        "null" => return Literal::Null,
        _ => {}
    }
    if let Some(var) = text.strip_prefix('$').and_then(Variable::from_name) {
        return Literal::Var { var };
    }
    // A number only when it prints back as typed: `1.10` stays text, a version.
    match serde_json::from_str::<serde_json::Number>(text) {
        Ok(n) if n.to_string() == text => Literal::Number(n),
        _ => Literal::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(b: &Builder) -> String {
        let c = b.condition().unwrap_or_else(|e| panic!("{e}"));
        let text = c.to_string();
        let parsed = Condition::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(Builder::read(&parsed).as_ref(), Ok(b), "{text}");
        text
    }

    #[test]
    fn the_form_writes_text_that_reads_back_into_the_same_form() {
        let full = Builder {
            apps: vec!["bodhi".into(), "buildsys".into()],
            topics: vec![
                "bodhi.update.comment".into(),
                "buildsys.build.state.change".into(),
            ],
            whose: Whose {
                my_packages: true,
                me: true,
                ..Whose::default()
            },
            severity: Some(Severity::Warning),
            not_mine: true,
            body: Some(BodyField {
                path: "release".into(),
                op: CmpOp::Ge,
                value: "40".into(),
            }),
        };
        assert_eq!(
            round_trip(&full),
            r#"app in ["bodhi", "buildsys"] and (topic ~ "**.bodhi.update.comment" or topic ~ "**.buildsys.build.state.change") and (packages has $my_packages or usernames has $me) and severity >= warning and not agent == $me and body.release >= 40"#
        );
        let small = Builder {
            whose: Whose {
                followed_users: true,
                ..Whose::default()
            },
            ..Builder::default()
        };
        assert_eq!(round_trip(&small), "usernames has $followed_users");
        let text_value = Builder {
            apps: vec!["bodhi".into()],
            body: Some(BodyField {
                path: "update.status".into(),
                op: CmpOp::Eq,
                value: "stable".into(),
            }),
            ..Builder::default()
        };
        assert_eq!(
            round_trip(&text_value),
            r#"app == "bodhi" and body.update.status == "stable""#
        );
        let me = Builder {
            body: Some(BodyField {
                path: "user".into(),
                op: CmpOp::Eq,
                value: "$me".into(),
            }),
            ..Builder::default()
        };
        assert_eq!(round_trip(&me), "body.user == $me");
    }

    #[test]
    fn what_does_not_fit_opens_in_text_mode_and_says_why() {
        for text in [
            r#"app == "bodhi" or usernames has $me"#,
            r#"usernames has "ralph""#,
            r#"topic ~ "org.fedoraproject.*.bodhi.**""#,
            r#"severity >= warning and app == "bodhi""#,
            r#"app == "a" and app == "b""#,
            r#"body.a ~ "x*""#,
            r#"body.a == "40""#,
        ] {
            let c = Condition::parse(text).unwrap_or_else(|e| panic!("{e}"));
            let why = Builder::read(&c).expect_err(text);
            assert!(why.contains("has no place in the form"), "{text}: {why}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            Builder::default().condition().map_err(|e| e.field),
            Err("apps")
        );
        let bad = Builder {
            body: Some(BodyField {
                path: "a..b".into(),
                op: CmpOp::Eq,
                value: "1".into(),
            }),
            ..Builder::default()
        };
        assert_eq!(bad.condition().map_err(|e| e.field), Err("body_path"));
        let bad = Builder {
            body: Some(BodyField {
                path: "a".into(),
                op: CmpOp::Gt,
                value: "true".into(),
            }),
            ..Builder::default()
        };
        assert_eq!(bad.condition().map_err(|e| e.field), Err("body_value"));
    }
}
