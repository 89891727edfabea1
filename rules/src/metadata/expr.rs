//! Field expressions of the schema catalog: where in a message a value lives and how to
//! clean it up, e.g. `update.builds[].nvr | nvr` or `comment.text | mentions`.
//!
//! An expression is one or more alternatives separated by `||`; the first alternative that
//! yields a value wins. Each alternative is a source (a body path, `$topic[3]`, `$env`,
//! `$header.name` or a quoted literal) followed by `| filter` steps. Expressions are parsed
//! once at catalog load; evaluation never fails, it just yields fewer values.

use std::borrow::Cow;

use serde_json::Value;

use super::filter::Filter;
use super::syntax::Cursor;
use crate::Message;

/// A parsed field expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    alternatives: Vec<Chain>,
}

#[derive(Debug, Clone, PartialEq)]
struct Chain {
    source: Source,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq)]
enum Source {
    Body(Vec<Step>),
    Literal(String),
    /// `$topic` (None) or one segment of it, counted from the end when negative.
    Topic(Option<i64>),
    /// The segment after the application, e.g. `prod`.
    Env,
    Header(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    /// `[]` or `*`: every item of an array, every value of an object.
    Each,
    /// `~`: every key of an object.
    Keys,
    /// `[key='value']`: the items of an array whose `key` is that value.
    Where(String, String),
}

/// What a message looks like to expressions: the message and its topic split once.
pub struct Scope<'a> {
    /// The message.
    pub message: &'a Message,
    /// The topic's dot-separated segments.
    pub segments: Vec<&'a str>,
    /// How many leading segments are `prefix.env` (0 or 3).
    pub prefix_len: usize,
}

impl<'a> Scope<'a> {
    /// Splits the topic of `message`.
    pub fn new(message: &'a Message) -> Scope<'a> {
        let segments: Vec<&str> = message.topic.split('.').collect();
        let prefix_len = super::fallback::prefix_len(segments.len());
        Scope {
            message,
            segments,
            prefix_len,
        }
    }
}

impl Expr {
    /// Parses an expression; the error says what was expected and at which character.
    pub fn parse(text: &str) -> Result<Expr, String> {
        let mut cursor = Cursor::new(text);
        let expr = Expr::parse_at(&mut cursor)?;
        cursor.skip_ws();
        if !cursor.at_end() {
            return Err(cursor.error("expected `|`, `||` or the end of the expression"));
        }
        Ok(expr)
    }

    /// Parses an expression up to a character it cannot use (e.g. a template's `}`).
    pub fn parse_at(cursor: &mut Cursor<'_>) -> Result<Expr, String> {
        let mut alternatives = vec![Chain::parse(cursor)?];
        loop {
            cursor.skip_ws();
            if cursor.eat("||") {
                alternatives.push(Chain::parse(cursor)?);
            } else {
                return Ok(Expr { alternatives });
            }
        }
    }

    /// Every value the expression yields for the message, as text. Values borrow from the
    /// message (or the catalog) where no filter had to build a new text.
    pub fn eval<'a>(&'a self, scope: &Scope<'a>) -> Vec<Cow<'a, str>> {
        for chain in &self.alternatives {
            let mut values = chain.source.eval(scope);
            for filter in &chain.filters {
                values = filter.apply_in(values, scope);
            }
            if !values.is_empty() {
                return values;
            }
        }
        Vec::new()
    }
}

impl Chain {
    fn parse(cursor: &mut Cursor<'_>) -> Result<Chain, String> {
        cursor.skip_ws();
        let source = Source::parse(cursor)?;
        let mut filters = Vec::new();
        loop {
            cursor.skip_ws();
            if cursor.peek_str("||") || !cursor.eat("|") {
                return Ok(Chain { source, filters });
            }
            cursor.skip_ws();
            filters.push(Filter::parse(cursor)?);
        }
    }
}

impl Source {
    fn parse(cursor: &mut Cursor<'_>) -> Result<Source, String> {
        if let Some(text) = cursor.quoted()? {
            return Ok(Source::Literal(text));
        }
        if cursor.eat("$") {
            let name = cursor.ident();
            return match name {
                "topic" if cursor.eat("[") => {
                    let n = cursor.integer()?;
                    cursor.expect("]")?;
                    Ok(Source::Topic(Some(n)))
                }
                "topic" => Ok(Source::Topic(None)),
                "env" => Ok(Source::Env),
                "header" => {
                    cursor.expect(".")?;
                    let key = cursor.key();
                    if key.is_empty() {
                        return Err(cursor.error("expected a header name after `$header.`"));
                    }
                    Ok(Source::Header(key.to_string()))
                }
                _ => Err(cursor.error("expected `$topic`, `$topic[N]`, `$env` or `$header.NAME`")),
            };
        }
        let mut steps = Vec::new();
        loop {
            if cursor.eat("*") {
                steps.push(Step::Each);
            } else if cursor.eat("~") {
                steps.push(Step::Keys);
            } else {
                let key = cursor.key();
                if key.is_empty() {
                    return Err(cursor.error("expected a field name, `$topic`, or a 'quoted' text"));
                }
                steps.push(match key.parse::<usize>() {
                    Ok(i) => Step::Index(i),
                    Err(_) => Step::Key(key.to_string()),
                });
            }
            while cursor.eat("[") {
                if cursor.eat("]") {
                    steps.push(Step::Each);
                } else if !cursor
                    .rest()
                    .starts_with(|c: char| c.is_ascii_digit() || c == '-')
                {
                    let rest = cursor.rest();
                    let len = rest.find(['=', ']']).unwrap_or(rest.len());
                    let key = rest[..len].trim().to_string();
                    cursor.advance(len);
                    if key.is_empty() || !cursor.eat("=") {
                        return Err(cursor.error("expected `[]`, `[N]` or `[key='value']`"));
                    }
                    cursor.skip_ws();
                    let Some(value) = cursor.quoted()? else {
                        return Err(cursor.error("expected a 'quoted' value after `=`"));
                    };
                    cursor.skip_ws();
                    cursor.expect("]")?;
                    steps.push(Step::Where(key, value));
                } else {
                    let n = cursor.integer()?;
                    cursor.expect("]")?;
                    let index = usize::try_from(n)
                        .map_err(|_| cursor.error("an index must not be negative"))?;
                    steps.push(Step::Index(index));
                }
            }
            if !cursor.eat(".") {
                return Ok(Source::Body(steps));
            }
        }
    }

    fn eval<'a>(&'a self, scope: &Scope<'a>) -> Vec<Cow<'a, str>> {
        match self {
            Source::Literal(text) => vec![Cow::Borrowed(text.as_str())],
            Source::Topic(None) => vec![Cow::Borrowed(scope.message.topic.as_str())],
            Source::Topic(Some(n)) => {
                let len = scope.segments.len() as i64;
                let i = if *n < 0 { len + n } else { *n };
                usize::try_from(i)
                    .ok()
                    .and_then(|i| scope.segments.get(i))
                    .map(|s| vec![Cow::Borrowed(*s)])
                    .unwrap_or_default()
            }
            Source::Env => match scope.prefix_len {
                0 => Vec::new(),
                n => vec![Cow::Borrowed(scope.segments[n - 1])],
            },
            Source::Header(key) => {
                let mut out = Vec::new();
                if let Some(value) = scope.message.headers.get(key) {
                    collect_text(value, &mut out);
                }
                out
            }
            Source::Body(steps) => {
                let mut out = Vec::new();
                walk(&scope.message.body, steps, &mut out);
                out
            }
        }
    }
}

fn walk<'a>(value: &'a Value, steps: &[Step], out: &mut Vec<Cow<'a, str>>) {
    let Some((step, rest)) = steps.split_first() else {
        collect_text(value, out);
        return;
    };
    match (step, value) {
        (Step::Key(key), Value::Object(map)) => {
            if let Some(v) = map.get(key) {
                walk(v, rest, out);
            }
        }
        (Step::Index(i), Value::Array(items)) => {
            if let Some(v) = items.get(*i) {
                walk(v, rest, out);
            }
        }
        (Step::Index(i), Value::Object(map)) => {
            if let Some(v) = map.get(&i.to_string()) {
                walk(v, rest, out);
            }
        }
        (Step::Each, Value::Array(items)) => items.iter().for_each(|v| walk(v, rest, out)),
        (Step::Where(key, want), Value::Array(items)) => {
            for item in items {
                let mut found = Vec::new();
                if let Some(v) = item.get(key) {
                    collect_text(v, &mut found);
                }
                if found.first().is_some_and(|v| v == want) {
                    walk(item, rest, out);
                }
            }
        }
        (Step::Each, Value::Object(map)) => map.values().for_each(|v| walk(v, rest, out)),
        (Step::Keys, Value::Object(map)) if rest.is_empty() => {
            out.extend(map.keys().map(|k| Cow::Borrowed(k.as_str())));
        }
        _ => {}
    }
}

/// Strings, numbers and booleans are values; arrays contribute their items; `null` and
/// objects contribute nothing (a path must go on into an object).
fn collect_text<'a>(value: &'a Value, out: &mut Vec<Cow<'a, str>>) {
    match value {
        Value::String(s) => out.push(Cow::Borrowed(s.as_str())),
        Value::Number(n) => out.push(Cow::Owned(n.to_string())),
        Value::Bool(true) => out.push(Cow::Borrowed("true")),
        Value::Bool(false) => out.push(Cow::Borrowed("false")),
        Value::Array(items) => items.iter().for_each(|v| match v {
            Value::Array(_) | Value::Object(_) | Value::Null => {}
            other => collect_text(other, out),
        }),
        Value::Null | Value::Object(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, topic: &str, body: Value) -> Vec<String> {
        let message = Message::new("1", topic, body);
        let expr = Expr::parse(expr).expect("parses");
        let values = expr.eval(&Scope::new(&message));
        values.into_iter().map(Cow::into_owned).collect()
    }

    #[test]
    fn paths_lists_and_alternatives() {
        let body = json!({"update": {"builds": [{"nvr": "a-1-1"}, {"nvr": "b-2-1.fc30"}]},
                          "acls": {"x": 1, "y": 2}, "n": null, "list": ["p", "q"]});
        let t = "org.fedoraproject.prod.bodhi.update.comment";
        assert_eq!(
            eval("update.builds[].nvr | nvr", t, body.clone()),
            ["a", "b"]
        );
        assert_eq!(
            eval("update.builds[1].nvr", t, body.clone()),
            ["b-2-1.fc30"]
        );
        assert_eq!(eval("update.builds.0.nvr", t, body.clone()), ["a-1-1"]);
        assert_eq!(eval("acls.~", t, body.clone()), ["x", "y"]);
        assert_eq!(eval("acls.*", t, body.clone()), ["1", "2"]);
        assert_eq!(eval("list", t, body.clone()), ["p", "q"]);
        assert_eq!(eval("n || missing || 'dflt'", t, body.clone()), ["dflt"]);
        assert_eq!(eval("$topic[3]", t, body.clone()), ["bodhi"]);
        assert_eq!(eval("$topic[-1]", t, body.clone()), ["comment"]);
        assert_eq!(eval("$env", t, body.clone()), ["prod"]);
        assert!(eval("$env", "a.b.c", body).is_empty());
    }

    #[test]
    fn filters_on_borrowed_and_built_values_agree() {
        let body = json!({"who": "Hi @Ann and @bob.", "list": "A, b,,C", "n": 7,
                          "text": "ÉtÉ\nsecond", "user": "user:Zed"});
        let t = "org.fedoraproject.prod.app.x";
        assert_eq!(eval("who | mentions", t, body.clone()), ["Ann", "bob"]);
        assert_eq!(
            eval("who | lower | mentions", t, body.clone()),
            ["ann", "bob"]
        );
        assert_eq!(eval("list | split(',')", t, body.clone()), ["A", "b", "C"]);
        assert_eq!(
            eval("list | lower | split(',')", t, body.clone()),
            ["a", "b", "c"]
        );
        assert_eq!(eval("text | first_line | lower", t, body.clone()), ["été"]);
        assert_eq!(eval("text | truncate(2)", t, body.clone()), ["Ét"]);
        assert_eq!(eval("text | upper | truncate(2)", t, body.clone()), ["ÉT"]);
        assert_eq!(
            eval("user | upper | strip_prefix('USER:')", t, body.clone()),
            ["ZED"]
        );
        assert_eq!(eval("user | after(':') | lower", t, body.clone()), ["zed"]);
        assert_eq!(
            eval("n | prefix('#') | after_last('#')", t, body.clone()),
            ["7"]
        );
        assert_eq!(
            eval("user | replace('q', 'r')", t, body.clone()),
            ["user:Zed"]
        );
        assert_eq!(eval("n | map('7=seven')", t, body.clone()), ["seven"]);
        assert_eq!(
            eval("list | split(',') | join('+')", t, body.clone()),
            ["A+b+C"]
        );
        assert_eq!(eval("list | join('+')", t, body), ["A, b,,C"]);
    }

    #[test]
    fn parse_errors_say_where() {
        let err = Expr::parse("a.b | nosuch").expect_err("unknown filter");
        assert!(err.contains("unknown filter `nosuch`"), "{err}");
        assert!(err.contains("character 7"), "{err}");
        let err = Expr::parse("a..b").expect_err("empty key");
        assert!(err.contains("expected a field name"), "{err}");
        assert!(Expr::parse("$nope").is_err());
        assert!(Expr::parse("a[x]").is_err());
        assert!(Expr::parse("'unterminated").is_err());
    }
}
