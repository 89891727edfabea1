//! The condition language: a tree of predicates over a message, its metadata and the
//! filter owner's variables, with a readable text form and a canonical JSON form that
//! convert both ways without loss.
//!
//! ```text
//! topic ~ "org.fedoraproject.*.bodhi.**" and (usernames has $me or packages has $my_packages)
//! ```
//!
//! The types here are the JSON form (serde, externally tagged). Reading either form
//! validates it: a condition value that exists has compiled patterns, known variables of
//! the right kind and no empty lists, so matching never fails.

mod builder;
mod depth;
mod eval;
mod explain;
mod lexer;
mod lint;
mod order;
mod parser;
mod path;
mod pattern;
mod printer;
mod shape;
mod validate;
mod variables;

use serde::{Deserialize, Serialize};

pub use builder::{BodyField, Builder, BuilderError, Whose};
pub use depth::{MAX_DEPTH, MAX_JSON_DEPTH};
pub use explain::{Explanation, Reason};
pub use lint::AppNames;
pub use order::{order, rpm_version_cmp};
pub use path::{BodyPath, Step};
pub use pattern::{topic_glob_matches, Glob, Regex};
pub use shape::BodyShape;
pub use variables::{Variable, VariableKind, Variables};

use crate::{Message, Metadata, Severity};

/// A set-valued metadata field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetField {
    /// People the message concerns.
    Usernames,
    /// Packages the message concerns.
    Packages,
    /// Groups the message concerns.
    Groups,
}

impl SetField {
    /// The field's name as written in conditions.
    pub fn name(self) -> &'static str {
        match self {
            SetField::Usernames => "usernames",
            SetField::Packages => "packages",
            SetField::Groups => "groups",
        }
    }

    /// The field's values in a message's metadata.
    pub fn of(self, metadata: &Metadata) -> &std::collections::BTreeSet<String> {
        match self {
            SetField::Usernames => &metadata.usernames,
            SetField::Packages => &metadata.packages,
            SetField::Groups => &metadata.groups,
        }
    }

    /// The kind of variable that may stand for this field's values.
    pub fn variable_kind(self) -> VariableKind {
        match self {
            SetField::Usernames => VariableKind::Users,
            SetField::Packages => VariableKind::Packages,
            SetField::Groups => VariableKind::Groups,
        }
    }
}

/// A literal or a variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// A literal string.
    Literal(String),
    /// A variable, resolved per filter owner.
    Var(Variable),
}

/// A JSON scalar a body field is compared with, or a variable standing for strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A JSON number; integers and floats compare by value.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// A variable (`$me`, `$followed_users`, …), resolved per filter owner: a string
    /// equal to it (to one of its values, for a set). JSON form `{"var": "me"}`. Only in
    /// `==`, `!=` and `in`.
    Var {
        /// The variable.
        var: Variable,
    },
}

/// A comparison between a value and a literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written in conditions.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `left op right` holds, given how `left` orders against `right`.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }
}

/// What a body field must satisfy. With `[*]` in the path, some element must satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyTest {
    /// Equal to the literal (numbers by value).
    Eq(Literal),
    /// Present and not equal to the literal.
    Ne(Literal),
    /// Less than a number or string literal: numbers, versions or text, as
    /// [`order`] says.
    Lt(Literal),
    /// Less than or equal.
    Le(Literal),
    /// Greater than.
    Gt(Literal),
    /// Greater than or equal.
    Ge(Literal),
    /// Equal to one of the literals.
    In(Vec<Literal>),
    /// A string starting with this.
    Prefix(String),
    /// A string matching this glob (`*` within a `/`-separated part, `**` across parts).
    Glob(Glob),
    /// A string matching this regular expression (unanchored, linear time).
    Regex(Regex),
    /// Present and not `null`.
    Exists,
}

impl BodyTest {
    /// Whether the test names a variable (`body.user == $me`).
    pub fn uses_variables(&self) -> bool {
        match self {
            BodyTest::Eq(lit) | BodyTest::Ne(lit) => matches!(lit, Literal::Var { .. }),
            BodyTest::In(lits) => lits.iter().any(|l| matches!(l, Literal::Var { .. })),
            _ => false,
        }
    }
}

/// A condition tree. Its serde form is the canonical JSON stored with a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "validate::RawCondition")]
pub enum Condition {
    /// Every part holds (at least two parts).
    And(Vec<Condition>),
    /// Some part holds (at least two parts).
    Or(Vec<Condition>),
    /// The part does not hold.
    Not(Box<Condition>),
    /// The topic equals this exactly.
    TopicIs(String),
    /// The topic matches this glob: `*` is one segment, `**` any number of segments.
    TopicGlob(String),
    /// The app is one of these.
    AppIn(Vec<String>),
    /// The severity compares so with this one (`debug < info < warning < error`).
    Severity {
        /// The comparison.
        op: CmpOp,
        /// The severity compared with.
        value: Severity,
    },
    /// A metadata set contains the operand (any of its values, for a set variable).
    Has {
        /// The set searched.
        field: SetField,
        /// What it must contain.
        value: Operand,
    },
    /// A metadata set contains at least one of the operands' values.
    HasAny {
        /// The set searched.
        field: SetField,
        /// The candidates.
        values: Vec<Operand>,
    },
    /// A metadata set contains every one of the operands' values (and there is at least one).
    HasAll {
        /// The set searched.
        field: SetField,
        /// What it must all contain.
        values: Vec<Operand>,
    },
    /// The agent (who acted) is this one.
    AgentIs(Operand),
    /// There is an agent and it is not this one.
    AgentIsNot(Operand),
    /// The agent is one of the operands' values.
    AgentIn(Vec<Operand>),
    /// A body field, by path, passes a test.
    Body {
        /// Where in the body.
        path: BodyPath,
        /// What the value there must satisfy.
        test: BodyTest,
    },
}

/// A condition that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ConditionError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (in characters) of the offending text.
    pub column: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl Condition {
    /// Parses and validates the text form.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        parser::parse(text)
    }

    /// Reads and validates the canonical JSON form. A tree nested deeper than
    /// [`MAX_DEPTH`] is refused, however it was written.
    pub fn from_json(json: &str) -> Result<Condition, ConditionError> {
        serde_json::from_str(json).map_err(|e| {
            // A node's check fails after serde_json has read the node, so the position is
            // the node's end; for the outermost node serde_json gives none (line 0), and
            // its end is the end of the text.
            let (line, column) = if e.line() == 0 {
                end_of(json)
            } else {
                (e.line(), e.column())
            };
            let message = e.to_string();
            let message = match message.rsplit_once(" at line ") {
                // JSON nested past serde_json's limit is a tree past ours: say so in the
                // same words as for a tree that is merely too deep.
                Some(("recursion limit exceeded", _)) => depth::too_deep(depth::TREE),
                Some((reason, _)) => reason.to_string(),
                None => message,
            };
            ConditionError {
                line,
                column,
                message,
            }
        })
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Every part must hold; a single part stands alone (the canonical form has no
    /// one-part `and`).
    pub fn all(mut parts: Vec<Condition>) -> Condition {
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        }
    }

    /// Some part must hold; a single part stands alone.
    pub fn any(mut parts: Vec<Condition>) -> Condition {
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        }
    }

    /// Whether the condition reads the message body (has a `body.…` test). One that does
    /// not can be matched against metadata and topic alone, so a preview need not read
    /// archived bodies.
    pub fn uses_body(&self) -> bool {
        match self {
            Condition::And(parts) | Condition::Or(parts) => parts.iter().any(Condition::uses_body),
            Condition::Not(inner) => inner.uses_body(),
            Condition::Body { .. } => true,
            _ => false,
        }
    }

    /// Whether a message satisfies the condition for an owner with these variables.
    /// A missing field makes its predicate false; matching never fails.
    pub fn matches(&self, message: &Message, metadata: &Metadata, vars: &Variables) -> bool {
        eval::matches(self, message, metadata, vars)
    }
}

/// The line and column of the last character that is not white space.
fn end_of(text: &str) -> (usize, usize) {
    let trimmed = text.trim_end();
    let line = trimmed.matches('\n').count() + 1;
    let last_line = trimmed.rsplit('\n').next().unwrap_or_default();
    (line, last_line.chars().count().max(1))
}
