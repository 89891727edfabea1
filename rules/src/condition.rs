//! The condition language: a tree of predicates over a message, its metadata and the
//! filter owner's variables, with a readable text form and a canonical JSON form.
//!
//! ```text
//! topic ~ "org.fedoraproject.*.bodhi.**" and (usernames has $me or packages has $my_packages)
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Message, Metadata};

/// The values a filter's variables take for its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables {
    /// `$me`: the owner's username.
    pub me: String,
    /// `$my_groups`
    pub my_groups: BTreeSet<String>,
    /// `$my_packages`: owned by the owner or by the owner's groups.
    pub my_packages: BTreeSet<String>,
    /// `$followed_users`
    pub followed_users: BTreeSet<String>,
    /// `$followed_packages`
    pub followed_packages: BTreeSet<String>,
}

impl Variables {
    /// Variables for a user who owns and follows nothing yet.
    pub fn for_user(me: impl Into<String>) -> Variables {
        Variables {
            me: me.into(),
            ..Variables::default()
        }
    }

    fn resolve(&self, variable: Variable) -> Vec<&str> {
        match variable {
            Variable::Me => vec![self.me.as_str()],
            Variable::MyGroups => self.my_groups.iter().map(String::as_str).collect(),
            Variable::MyPackages => self.my_packages.iter().map(String::as_str).collect(),
            Variable::FollowedUsers => self.followed_users.iter().map(String::as_str).collect(),
            Variable::FollowedPackages => {
                self.followed_packages.iter().map(String::as_str).collect()
            }
        }
    }
}

/// A variable a condition may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// `$me`
    Me,
    /// `$my_groups`
    MyGroups,
    /// `$my_packages`
    MyPackages,
    /// `$followed_users`
    FollowedUsers,
    /// `$followed_packages`
    FollowedPackages,
}

impl Variable {
    const ALL: [Variable; 5] = [
        Variable::Me,
        Variable::MyGroups,
        Variable::MyPackages,
        Variable::FollowedUsers,
        Variable::FollowedPackages,
    ];

    /// The name without `$`.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Me => "me",
            Variable::MyGroups => "my_groups",
            Variable::MyPackages => "my_packages",
            Variable::FollowedUsers => "followed_users",
            Variable::FollowedPackages => "followed_packages",
        }
    }
}

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
    fn name(self) -> &'static str {
        match self {
            SetField::Usernames => "usernames",
            SetField::Packages => "packages",
            SetField::Groups => "groups",
        }
    }

    fn of(self, metadata: &Metadata) -> &BTreeSet<String> {
        match self {
            SetField::Usernames => &metadata.usernames,
            SetField::Packages => &metadata.packages,
            SetField::Groups => &metadata.groups,
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

/// A condition tree. Its serde form is the canonical JSON stored with a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Every part holds.
    And(Vec<Condition>),
    /// Some part holds.
    Or(Vec<Condition>),
    /// The part does not hold.
    Not(Box<Condition>),
    /// The topic equals this exactly.
    TopicIs(String),
    /// The topic matches this glob: `*` is one segment, `**` any number of segments.
    TopicGlob(String),
    /// A metadata set contains the operand (any of its values, for a set variable).
    Has {
        /// The set searched.
        field: SetField,
        /// What it must contain.
        value: Operand,
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
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        let mut parser = Parser {
            tokens: lex(text)?,
            pos: 0,
        };
        let condition = parser.or()?;
        match parser.peek() {
            None => Ok(condition),
            Some(t) => Err(t.error(format!("expected `and`, `or` or the end, found {}", t.kind))),
        }
    }

    /// Reads the canonical JSON form.
    pub fn from_json(json: &str) -> Result<Condition, ConditionError> {
        serde_json::from_str(json).map_err(|e| ConditionError {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether a message satisfies the condition for an owner with these variables.
    /// A missing field makes its predicate false; matching never fails.
    pub fn matches(&self, message: &Message, metadata: &Metadata, vars: &Variables) -> bool {
        match self {
            Condition::And(parts) => parts.iter().all(|c| c.matches(message, metadata, vars)),
            Condition::Or(parts) => parts.iter().any(|c| c.matches(message, metadata, vars)),
            Condition::Not(inner) => !inner.matches(message, metadata, vars),
            Condition::TopicIs(topic) => &message.topic == topic,
            Condition::TopicGlob(glob) => topic_glob_matches(glob, &message.topic),
            Condition::Has { field, value } => {
                let set = field.of(metadata);
                match value {
                    Operand::Literal(v) => set.contains(v),
                    Operand::Var(var) => vars.resolve(*var).iter().any(|v| set.contains(*v)),
                }
            }
        }
    }
}

/// Whether `topic` matches a segment glob (`*` one segment, `**` zero or more).
pub fn topic_glob_matches(glob: &str, topic: &str) -> bool {
    fn go(pattern: &[&str], topic: &[&str]) -> bool {
        match pattern.split_first() {
            None => topic.is_empty(),
            Some((&"**", rest)) => (0..=topic.len()).any(|skip| go(rest, &topic[skip..])),
            Some((seg, rest)) => match topic.split_first() {
                Some((t, trest)) => (*seg == "*" || seg == t) && go(rest, trest),
                None => false,
            },
        }
    }
    let pattern: Vec<&str> = glob.split('.').collect();
    let topic: Vec<&str> = topic.split('.').collect();
    go(&pattern, &topic)
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, parts: &[Condition], word: &str) -> fmt::Result {
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
        match self {
            Condition::And(parts) => join(f, parts, "and"),
            Condition::Or(parts) => join(f, parts, "or"),
            Condition::Not(inner) => match **inner {
                Condition::And(_) | Condition::Or(_) => write!(f, "not ({inner})"),
                _ => write!(f, "not {inner}"),
            },
            Condition::TopicIs(t) => write!(f, "topic == {}", quote(t)),
            Condition::TopicGlob(g) => write!(f, "topic ~ {}", quote(g)),
            Condition::Has { field, value } => {
                write!(f, "{} has ", field.name())?;
                match value {
                    Operand::Literal(v) => f.write_str(&quote(v)),
                    Operand::Var(var) => write!(f, "${}", var.name()),
                }
            }
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Word(String),
    Str(String),
    Var(String),
    Op(&'static str),
    Open,
    Close,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Word(w) => write!(f, "`{w}`"),
            Kind::Str(s) => write!(f, "the string {}", quote(s)),
            Kind::Var(v) => write!(f, "`${v}`"),
            Kind::Op(op) => write!(f, "`{op}`"),
            Kind::Open => f.write_str("`(`"),
            Kind::Close => f.write_str("`)`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    line: usize,
    column: usize,
}

impl Token {
    fn error(&self, message: String) -> ConditionError {
        ConditionError {
            line: self.line,
            column: self.column,
            message,
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, ConditionError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut column) = (1, 1);
    while let Some(&c) = chars.peek() {
        let (tline, tcol) = (line, column);
        let err = |message: String| ConditionError {
            line: tline,
            column: tcol,
            message,
        };
        let mut bump = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            let c = chars.next();
            if c == Some('\n') {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
            c
        };
        let kind = match c {
            c if c.is_whitespace() => {
                bump(&mut chars);
                continue;
            }
            '(' => {
                bump(&mut chars);
                Kind::Open
            }
            ')' => {
                bump(&mut chars);
                Kind::Close
            }
            '~' => {
                bump(&mut chars);
                Kind::Op("~")
            }
            '=' => {
                bump(&mut chars);
                if chars.peek() == Some(&'=') {
                    bump(&mut chars);
                    Kind::Op("==")
                } else {
                    return Err(err("expected `==`, found a single `=`".into()));
                }
            }
            '"' => {
                bump(&mut chars);
                let mut value = String::new();
                loop {
                    match bump(&mut chars) {
                        None => return Err(err("string is not closed: expected `\"`".into())),
                        Some('"') => break,
                        Some('\\') => match bump(&mut chars) {
                            Some('"') => value.push('"'),
                            Some('\\') => value.push('\\'),
                            Some('n') => value.push('\n'),
                            Some(other) => {
                                return Err(err(format!("unknown escape `\\{other}` in string")))
                            }
                            None => return Err(err("string is not closed: expected `\"`".into())),
                        },
                        Some(c) => value.push(c),
                    }
                }
                Kind::Str(value)
            }
            '$' => {
                bump(&mut chars);
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                        bump(&mut chars);
                    } else {
                        break;
                    }
                }
                Kind::Var(name)
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '.' {
                        word.push(c);
                        bump(&mut chars);
                    } else {
                        break;
                    }
                }
                Kind::Word(word)
            }
            other => return Err(err(format!("unexpected character `{other}`"))),
        };
        tokens.push(Token {
            kind,
            line: tline,
            column: tcol,
        });
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self, expected: &str) -> Result<Token, ConditionError> {
        match self.tokens.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => {
                let (line, column) = self.end();
                Err(ConditionError {
                    line,
                    column,
                    message: format!("expected {expected}, found the end"),
                })
            }
        }
    }

    fn end(&self) -> (usize, usize) {
        self.tokens
            .last()
            .map_or((1, 1), |t| (t.line, t.column + 1))
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w == word)
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.and()?];
        while self.at_word("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.unary()?];
        while self.at_word("and") {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Condition, ConditionError> {
        let token = self.next("a predicate, `not` or `(`")?;
        match &token.kind {
            Kind::Word(w) if w == "not" => Ok(Condition::Not(Box::new(self.unary()?))),
            Kind::Open => {
                let inner = self.or()?;
                let close = self.next("`)`")?;
                if close.kind != Kind::Close {
                    return Err(close.error(format!("expected `)`, found {}", close.kind)));
                }
                Ok(inner)
            }
            Kind::Word(w) if w == "topic" => {
                let op = self.next("`==` or `~`")?;
                let value = self.string()?;
                match &op.kind {
                    Kind::Op("==") => Ok(Condition::TopicIs(value)),
                    Kind::Op("~") => {
                        if value.split('.').any(|s| s.is_empty()) {
                            return Err(op.error(format!("topic glob {} has an empty segment", quote(&value))));
                        }
                        Ok(Condition::TopicGlob(value))
                    }
                    other => Err(op.error(format!("expected `==` or `~` after `topic`, found {other}"))),
                }
            }
            Kind::Word(w) if ["usernames", "packages", "groups"].contains(&w.as_str()) => {
                let field = match w.as_str() {
                    "usernames" => SetField::Usernames,
                    "packages" => SetField::Packages,
                    _ => SetField::Groups,
                };
                let has = self.next("`has`")?;
                if has.kind != Kind::Word("has".into()) {
                    return Err(has.error(format!("expected `has` after `{w}`, found {}", has.kind)));
                }
                let value = self.next("a string or a variable")?;
                match &value.kind {
                    Kind::Str(s) => Ok(Condition::Has { field, value: Operand::Literal(s.clone()) }),
                    Kind::Var(name) => match Variable::ALL.into_iter().find(|v| v.name() == name.as_str()) {
                        Some(var) => Ok(Condition::Has { field, value: Operand::Var(var) }),
                        None => Err(value.error(format!(
                            "unknown variable `${name}`: expected one of $me, $my_groups, $my_packages, $followed_users, $followed_packages"
                        ))),
                    },
                    other => Err(value.error(format!("expected a string or a variable, found {other}"))),
                }
            }
            other => Err(token.error(format!(
                "expected a predicate (topic, usernames, packages, groups), `not` or `(`, found {other}"
            ))),
        }
    }

    fn string(&mut self) -> Result<String, ConditionError> {
        let token = self.next("a string")?;
        match &token.kind {
            Kind::Str(s) => Ok(s.clone()),
            other => Err(token.error(format!("expected a string in double quotes, found {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_json() {
        let text = r#"topic ~ "org.*.bodhi.**" and (usernames has $me or packages has "kernel") and not topic == "a.b""#;
        let c = Condition::parse(text).expect("valid");
        assert_eq!(c.to_string(), text);
        assert_eq!(Condition::from_json(&c.to_json()).expect("json"), c);
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let err = Condition::parse("topic ~ \"a.*\" and\n  usernames has $you").expect_err("bad");
        assert_eq!((err.line, err.column), (2, 17));
        assert!(err.message.contains("unknown variable `$you`"), "{err}");
        let err = Condition::parse("topic ~ ").expect_err("bad");
        assert!(
            err.message.contains("expected a string, found the end"),
            "{err}"
        );
    }

    #[test]
    fn globs_match_by_segment() {
        assert!(topic_glob_matches(
            "org.*.bodhi.**",
            "org.fp.bodhi.update.comment"
        ));
        assert!(topic_glob_matches("org.*.bodhi.**", "org.fp.bodhi"));
        assert!(!topic_glob_matches("org.*.bodhi", "org.fp.x.bodhi"));
    }
}
