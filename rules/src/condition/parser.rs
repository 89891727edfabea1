//! The parser: tokens into a validated [`Condition`]. `or` binds looser than `and`, `not`
//! tighter than both; every predicate starts with its field's name. Each error names what
//! was found, what was expected, and where.

use super::depth::{check_node, too_deep, MAX_DEPTH};
use super::lexer::{lex, Kind, Token};
use super::pattern::check_topic_glob;
use super::validate::{check_operand, OperandUse};
use super::{BodyPath, BodyTest, CmpOp, Condition, ConditionError, Glob, Literal, Operand};
use super::{Regex, SetField, Variable};
use crate::Severity;

const FIELDS: &str = "topic, app, severity, agent, usernames, packages, groups or body.<path>";

pub(super) fn parse(text: &str) -> Result<Condition, ConditionError> {
    let mut parser = Parser {
        tokens: lex(text)?,
        pos: 0,
        depth: 0,
    };
    let condition = parser.or()?;
    match parser.peek() {
        None => Ok(condition),
        Some(t) => Err(t.error(format!("expected `and`, `or` or the end, found {}", t.kind))),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
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
                let (line, column) = self.tokens.last().map_or((1, 1), |t| t.end);
                Err(ConditionError {
                    line,
                    column,
                    message: format!("expected {expected}, found the end"),
                })
            }
        }
    }

    fn at(&self, kind: &Kind) -> bool {
        self.peek().is_some_and(|t| t.kind == *kind)
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w == word)
    }

    fn or(&mut self) -> Result<Condition, ConditionError> {
        let parts = self.joined("or", Self::and)?;
        Ok(Condition::any(parts))
    }

    fn and(&mut self) -> Result<Condition, ConditionError> {
        let parts = self.joined("and", Self::unary)?;
        Ok(Condition::all(parts))
    }

    /// Parts joined by `word`. When there are several, they become one node, which must
    /// stay within [`MAX_DEPTH`]; a node too deep is reported at its first `word`.
    fn joined(
        &mut self,
        word: &str,
        mut part: impl FnMut(&mut Self) -> Result<Condition, ConditionError>,
    ) -> Result<Vec<Condition>, ConditionError> {
        let mut parts = vec![part(self)?];
        let mut first = None;
        while self.at_word(word) {
            first = first.or_else(|| self.peek().cloned());
            self.pos += 1;
            parts.push(part(self)?);
        }
        if let Some(first) = first {
            check_node(&parts).map_err(|e| first.error(e))?;
        }
        Ok(parts)
    }

    fn unary(&mut self) -> Result<Condition, ConditionError> {
        let token = self.next("a predicate, `not` or `(`")?;
        let nests = matches!(&token.kind, Kind::Open) || token.kind == Kind::Word("not".into());
        if nests {
            self.depth += 1;
            // Reading recurses once per level: this keeps it off the stack's edge even
            // where the tree itself would not be too deep, as in `((((a))))`.
            if self.depth > MAX_DEPTH {
                return Err(token.error(too_deep("`not` and parentheses")));
            }
        }
        let result = match &token.kind {
            Kind::Word(w) if w == "not" => self.unary().and_then(|c| {
                check_node([&c]).map_err(|e| token.error(e))?;
                Ok(Condition::Not(Box::new(c)))
            }),
            Kind::Open => {
                let inner = self.or()?;
                let close = self.next("`)`")?;
                if close.kind != Kind::Close {
                    return Err(close.error(format!("expected `)`, found {}", close.kind)));
                }
                Ok(inner)
            }
            Kind::Word(w) => self.predicate(&token, w),
            other => Err(token.error(format!(
                "expected a field ({FIELDS}), `not` or `(`, found {other}"
            ))),
        };
        if nests {
            self.depth -= 1;
        }
        result
    }

    fn predicate(&mut self, token: &Token, field: &str) -> Result<Condition, ConditionError> {
        match field {
            "topic" => {
                let op = self.next("`==` or `~` after `topic`")?;
                let (value, at) = self.string()?;
                match &op.kind {
                    Kind::Op("==") => Ok(Condition::TopicIs(value)),
                    Kind::Op("~") => {
                        check_topic_glob(&value).map_err(|e| at.error(e))?;
                        Ok(Condition::TopicGlob(value))
                    }
                    other => Err(op.error(format!("expected `==` or `~` after `topic`, found {other}"))),
                }
            }
            "app" => {
                let op = self.next("`==` or `in` after `app`")?;
                match &op.kind {
                    // App names are kept in lower case (`Koji` and `koji` are one app).
                    Kind::Op("==") => Ok(Condition::AppIn(vec![self.string()?.0.to_lowercase()])),
                    Kind::Word(w) if w == "in" => {
                        let apps =
                            self.list("a string", |p| p.string().map(|(s, _)| s.to_lowercase()))?;
                        Ok(Condition::AppIn(apps))
                    }
                    other => Err(op.error(format!("expected `==` or `in` after `app`, found {other}"))),
                }
            }
            "severity" => {
                let op = self.cmp_op("severity")?;
                let value = self.next("a severity (debug, info, warning, error)")?;
                let severity = match &value.kind {
                    Kind::Word(w) | Kind::Str(w) => Severity::parse(w),
                    _ => None,
                };
                match severity {
                    Some(value) => Ok(Condition::Severity { op, value }),
                    None => Err(value.error(format!(
                        "expected a severity (debug, info, warning, error), found {}",
                        value.kind
                    ))),
                }
            }
            "usernames" | "packages" | "groups" => self.has(field),
            "agent" => {
                let op = self.next("`==`, `!=` or `in` after `agent`")?;
                match &op.kind {
                    Kind::Op("==") => Ok(Condition::AgentIs(self.operand(OperandUse::Agent)?)),
                    Kind::Op("!=") => Ok(Condition::AgentIsNot(self.operand(OperandUse::Agent)?)),
                    Kind::Word(w) if w == "in" => {
                        Ok(Condition::AgentIn(self.operands(OperandUse::Set(SetField::Usernames))?))
                    }
                    other => Err(op.error(format!(
                        "expected `==`, `!=` or `in` after `agent`, found {other}"
                    ))),
                }
            }
            _ => match field.strip_prefix("body.") {
                Some(path) => {
                    let path = BodyPath::parse(path)
                        .map_err(|(at, message)| token.error_at(5 + at, message))?;
                    let test = self.body_test()?;
                    Ok(Condition::Body { path, test })
                }
                None if field == "body" => Err(token.error(
                    "expected a path after `body.`, like body.comment.karma or body.update.builds[*].nvr",
                )),
                None => Err(token.error(format!("unknown field `{field}`: expected {FIELDS}"))),
            },
        }
    }

    fn has(&mut self, name: &str) -> Result<Condition, ConditionError> {
        let field = match name {
            "usernames" => SetField::Usernames,
            "packages" => SetField::Packages,
            _ => SetField::Groups,
        };
        let has = self.next("`has`")?;
        if has.kind != Kind::Word("has".into()) {
            return Err(has.error(format!("expected `has` after `{name}`, found {}", has.kind)));
        }
        let usage = OperandUse::Set(field);
        if self.at_word("any") || self.at_word("all") {
            let any = self.at_word("any");
            self.pos += 1;
            let values = self.operands(usage)?;
            return Ok(if any {
                Condition::HasAny { field, values }
            } else {
                Condition::HasAll { field, values }
            });
        }
        let value = self.operand(usage)?;
        Ok(Condition::Has { field, value })
    }

    fn cmp_op(&mut self, after: &str) -> Result<CmpOp, ConditionError> {
        let op = self.next("a comparison (==, !=, <, <=, >, >=)")?;
        Ok(match &op.kind {
            Kind::Op("==") => CmpOp::Eq,
            Kind::Op("!=") => CmpOp::Ne,
            Kind::Op("<") => CmpOp::Lt,
            Kind::Op("<=") => CmpOp::Le,
            Kind::Op(">") => CmpOp::Gt,
            Kind::Op(">=") => CmpOp::Ge,
            other => {
                return Err(op.error(format!(
                    "expected a comparison (==, !=, <, <=, >, >=) after `{after}`, found {other}"
                )))
            }
        })
    }

    fn body_test(&mut self) -> Result<BodyTest, ConditionError> {
        const EXPECTED: &str =
            "an operator (==, !=, <, <=, >, >=, in, prefix, ~, matches, exists) after the body path";
        let op = self.next(EXPECTED)?;
        match &op.kind {
            Kind::Op("==") => Ok(BodyTest::Eq(self.literal()?.0)),
            Kind::Op("!=") => Ok(BodyTest::Ne(self.literal()?.0)),
            Kind::Op(sym @ ("<" | "<=" | ">" | ">=")) => {
                let (value, at) = self.literal()?;
                if !matches!(value, Literal::Number(_) | Literal::String(_)) {
                    return Err(at.error(format!(
                        "expected a number or a string after `{sym}`, found {}",
                        at.kind
                    )));
                }
                Ok(match *sym {
                    "<" => BodyTest::Lt(value),
                    "<=" => BodyTest::Le(value),
                    ">" => BodyTest::Gt(value),
                    _ => BodyTest::Ge(value),
                })
            }
            Kind::Op("~") => {
                let (source, at) = self.string()?;
                Ok(BodyTest::Glob(Glob::new(&source).map_err(|e| at.error(e))?))
            }
            Kind::Word(w) => match w.as_str() {
                "in" if matches!(
                    self.peek(),
                    Some(Token {
                        kind: Kind::Var(_),
                        ..
                    })
                ) =>
                {
                    Ok(BodyTest::In(vec![self.literal()?.0]))
                }
                "in" => Ok(BodyTest::In(
                    self.list("a literal", |p| p.literal().map(|(l, _)| l))?,
                )),
                "prefix" => Ok(BodyTest::Prefix(self.string()?.0)),
                "matches" => {
                    let (source, at) = self.string()?;
                    Ok(BodyTest::Regex(
                        Regex::new(&source).map_err(|e| at.error(e))?,
                    ))
                }
                "exists" => Ok(BodyTest::Exists),
                _ => Err(op.error(format!("expected {EXPECTED}, found {}", op.kind))),
            },
            other => Err(op.error(format!("expected {EXPECTED}, found {other}"))),
        }
    }

    fn string(&mut self) -> Result<(String, Token), ConditionError> {
        let token = self.next("a string")?;
        match &token.kind {
            Kind::Str(s) => Ok((s.clone(), token.clone())),
            other => Err(token.error(format!("expected a string in double quotes, found {other}"))),
        }
    }

    fn literal(&mut self) -> Result<(Literal, Token), ConditionError> {
        let token = self.next("a literal (string, number, true, false, null, $me, …)")?;
        let literal = match &token.kind {
            Kind::Str(s) => Literal::String(s.clone()),
            Kind::Var(name) => match Variable::from_name(name) {
                Some(var) => Literal::Var { var },
                None => return Err(token.error(unknown_variable(name))),
            },
            Kind::Num(n) => Literal::Number(n.clone()),
            Kind::Word(w) if w == "true" => Literal::Bool(true),
            Kind::Word(w) if w == "false" => Literal::Bool(false),
            Kind::Word(w) if w == "null" => Literal::Null,
            other => {
                return Err(token.error(format!(
                    "expected a literal (string, number, true, false, null, or a variable like $me), found {other}"
                )))
            }
        };
        Ok((literal, token))
    }

    fn operand(&mut self, usage: OperandUse) -> Result<Operand, ConditionError> {
        let token = self.next("a string or a variable")?;
        let operand = match &token.kind {
            Kind::Str(s) => Operand::Literal(s.clone()),
            Kind::Var(name) => match Variable::from_name(name) {
                Some(var) => Operand::Var(var),
                None => return Err(token.error(unknown_variable(name))),
            },
            other => {
                return Err(token.error(format!("expected a string or a variable, found {other}")))
            }
        };
        check_operand(usage, &operand).map_err(|e| token.error(e))?;
        Ok(operand)
    }

    /// `[a, $b, …]`, or a lone variable standing for its whole set.
    fn operands(&mut self, usage: OperandUse) -> Result<Vec<Operand>, ConditionError> {
        if matches!(
            self.peek(),
            Some(Token {
                kind: Kind::Var(_),
                ..
            })
        ) {
            return Ok(vec![self.operand(usage)?]);
        }
        self.list("a string or a variable", |p| p.operand(usage))
    }

    /// `[item, item, …]` with at least one item.
    fn list<T>(
        &mut self,
        what: &str,
        mut item: impl FnMut(&mut Self) -> Result<T, ConditionError>,
    ) -> Result<Vec<T>, ConditionError> {
        let open = self.next("`[`")?;
        if open.kind != Kind::OpenList {
            return Err(open.error(format!(
                "expected a list like [\"a\", \"b\"], found {}",
                open.kind
            )));
        }
        if self.at(&Kind::CloseList) {
            return Err(open.error(format!("empty list: expected at least {what}")));
        }
        let mut items = vec![item(self)?];
        loop {
            let token = self.next("`,` or `]`")?;
            match &token.kind {
                Kind::Comma => items.push(item(self)?),
                Kind::CloseList => return Ok(items),
                other => return Err(token.error(format!("expected `,` or `]`, found {other}"))),
            }
        }
    }
}

fn unknown_variable(name: &str) -> String {
    format!(
        "unknown variable `${name}`: expected one of $me, $my_groups, $my_packages, $followed_users, $followed_packages"
    )
}
