//! Filters: the transforms an expression applies after `|` (`lower`, `nvr`,
//! `strip_prefix('user:')`, `mentions`, `map('1=done', '*=state {}')`, …). Each maps a list
//! of values to a list of values, so a filter on a list applies item by item.

use super::syntax::Cursor;

/// One parsed filter with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Lower-cases.
    Lower,
    /// Upper-cases.
    Upper,
    /// Trims surrounding white space.
    Trim,
    /// `name-version-release` → `name`.
    Nvr,
    /// Removes a leading text where present.
    StripPrefix(String),
    /// Removes a trailing text where present.
    StripSuffix(String),
    /// The text before the first separator (all of it when absent).
    Before(String),
    /// The text after the first separator (nothing when absent).
    After(String),
    /// The text after the last separator (all of it when absent).
    AfterLast(String),
    /// Splits each value on a separator, dropping empty pieces.
    Split(String),
    /// Keeps the first value.
    First,
    /// Keeps the last value.
    Last,
    /// `@name` mentions found in free text.
    Mentions,
    /// Maps values through a table; `*` is the default, `{}` in a result is the value.
    Map(Vec<(String, String)>),
    /// A value to use when there is none.
    Default(String),
    /// Joins all values with a separator into one.
    Join(String),
    /// Joins as `a, b and c`.
    JoinAnd,
    /// The number of values.
    Count,
    /// Drops repeated values, keeping the first.
    Unique,
    /// Prepends a text to each value.
    Prefix(String),
    /// Appends a text to each value.
    Suffix(String),
    /// Keeps at most this many characters.
    Truncate(usize),
    /// The first line of a text.
    FirstLine,
    /// Replaces every occurrence of a text.
    Replace(String, String),
    /// Drops empty values.
    NonEmpty,
    /// Drops values that start with a text (e.g. organisation pseudo-accounts).
    RejectPrefix(String),
}

impl Filter {
    /// Parses `name` or `name(arg, …)` at the cursor.
    pub fn parse(cursor: &mut Cursor<'_>) -> Result<Filter, String> {
        let at = cursor.error("");
        let name = cursor.ident();
        let mut args: Vec<String> = Vec::new();
        if cursor.eat("(") {
            loop {
                cursor.skip_ws();
                if cursor.eat(")") {
                    break;
                }
                match cursor.quoted()? {
                    Some(text) => args.push(text),
                    None => args.push(cursor.integer()?.to_string()),
                }
                cursor.skip_ws();
                if !cursor.eat(",") {
                    cursor.expect(")")?;
                    break;
                }
            }
        }
        let arity = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "filter `{name}` takes {n} argument(s), got {}{at}",
                    args.len()
                ))
            }
        };
        let one = |args: &[String]| args.first().cloned().unwrap_or_default();
        let filter = match name {
            "lower" | "upper" | "trim" | "nvr" | "first" | "last" | "mentions" | "join_and"
            | "count" | "unique" | "first_line" | "nonempty" => {
                arity(0)?;
                match name {
                    "lower" => Filter::Lower,
                    "upper" => Filter::Upper,
                    "trim" => Filter::Trim,
                    "nvr" => Filter::Nvr,
                    "first" => Filter::First,
                    "last" => Filter::Last,
                    "mentions" => Filter::Mentions,
                    "join_and" => Filter::JoinAnd,
                    "count" => Filter::Count,
                    "unique" => Filter::Unique,
                    "first_line" => Filter::FirstLine,
                    _ => Filter::NonEmpty,
                }
            }
            "strip_prefix" | "strip_suffix" | "before" | "after" | "after_last" | "split"
            | "default" | "join" | "prefix" | "suffix" | "reject_prefix" => {
                arity(1)?;
                let arg = one(&args);
                if arg.is_empty() && matches!(name, "split" | "before" | "after" | "after_last") {
                    return Err(format!("filter `{name}` needs a non-empty separator{at}"));
                }
                match name {
                    "strip_prefix" => Filter::StripPrefix(arg),
                    "strip_suffix" => Filter::StripSuffix(arg),
                    "before" => Filter::Before(arg),
                    "after" => Filter::After(arg),
                    "after_last" => Filter::AfterLast(arg),
                    "split" => Filter::Split(arg),
                    "default" => Filter::Default(arg),
                    "join" => Filter::Join(arg),
                    "prefix" => Filter::Prefix(arg),
                    "reject_prefix" => Filter::RejectPrefix(arg),
                    _ => Filter::Suffix(arg),
                }
            }
            "truncate" => {
                arity(1)?;
                let n = one(&args)
                    .parse()
                    .map_err(|_| format!("filter `truncate` takes a whole number{at}"))?;
                Filter::Truncate(n)
            }
            "replace" => {
                arity(2)?;
                if args[0].is_empty() {
                    return Err(format!(
                        "filter `replace` needs a non-empty text to replace{at}"
                    ));
                }
                Filter::Replace(args[0].clone(), args[1].clone())
            }
            "map" => {
                if args.is_empty() {
                    return Err(format!(
                        "filter `map` needs at least one 'from=to' pair{at}"
                    ));
                }
                let mut pairs = Vec::new();
                for arg in &args {
                    let Some((from, to)) = arg.split_once('=') else {
                        return Err(format!("`map` argument '{arg}' is not 'from=to'{at}"));
                    };
                    pairs.push((from.to_string(), to.to_string()));
                }
                Filter::Map(pairs)
            }
            "" => return Err(cursor.error("expected a filter name after `|`")),
            other => return Err(format!("unknown filter `{other}`{at}")),
        };
        Ok(filter)
    }

    /// Applies the filter to a list of values.
    pub fn apply(&self, values: Vec<String>) -> Vec<String> {
        let each = |f: &dyn Fn(String) -> Option<String>| -> Vec<String> {
            values.iter().cloned().filter_map(f).collect()
        };
        match self {
            Filter::Lower => each(&|v| Some(v.to_lowercase())),
            Filter::Upper => each(&|v| Some(v.to_uppercase())),
            Filter::Trim => each(&|v| Some(v.trim().to_string())),
            Filter::Nvr => each(&|v| Some(nvr_name(&v).to_string())),
            Filter::StripPrefix(p) => {
                each(&|v| Some(v.strip_prefix(p.as_str()).unwrap_or(&v).to_string()))
            }
            Filter::StripSuffix(s) => {
                each(&|v| Some(v.strip_suffix(s.as_str()).unwrap_or(&v).to_string()))
            }
            Filter::Before(sep) => {
                each(&|v| Some(v.split(sep.as_str()).next().unwrap_or_default().to_string()))
            }
            Filter::After(sep) => each(&|v| v.split_once(sep.as_str()).map(|(_, b)| b.to_string())),
            Filter::AfterLast(sep) => each(&|v| {
                Some(
                    v.rsplit(sep.as_str())
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                )
            }),
            Filter::Split(sep) => values
                .iter()
                .flat_map(|v| {
                    v.split(sep.as_str())
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                })
                .map(str::to_string)
                .collect(),
            Filter::First => values.into_iter().take(1).collect(),
            Filter::Last => values.into_iter().last().into_iter().collect(),
            Filter::Mentions => values.iter().flat_map(|v| mentions(v)).collect(),
            Filter::Map(pairs) => each(&|v| {
                let hit = pairs.iter().find(|(from, _)| *from == v);
                let hit = hit.or_else(|| pairs.iter().find(|(from, _)| from == "*"));
                hit.map(|(_, to)| to.replace("{}", &v))
            }),
            Filter::Default(d) if values.is_empty() => vec![d.clone()],
            Filter::Default(_) => values,
            Filter::Join(_) | Filter::JoinAnd if values.is_empty() => values,
            Filter::Join(sep) => vec![values.join(sep)],
            Filter::JoinAnd => vec![join_and(&values)],
            Filter::Count => vec![values.len().to_string()],
            Filter::Unique => {
                let mut out: Vec<String> = Vec::with_capacity(values.len());
                for v in values {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                out
            }
            Filter::Prefix(p) => each(&|v| Some(format!("{p}{v}"))),
            Filter::Suffix(s) => each(&|v| Some(format!("{v}{s}"))),
            Filter::Truncate(n) => each(&|v| Some(v.chars().take(*n).collect())),
            Filter::FirstLine => each(&|v| Some(v.lines().next().unwrap_or_default().to_string())),
            Filter::Replace(a, b) => each(&|v| Some(v.replace(a.as_str(), b))),
            Filter::NonEmpty => each(&|v| (!v.is_empty()).then_some(v)),
            Filter::RejectPrefix(p) => each(&|v| (!v.starts_with(p.as_str())).then_some(v)),
        }
    }
}

/// `fedmsg-1.0-1.fc30` → `fedmsg`: the name is everything before the last two dashes.
pub fn nvr_name(nvr: &str) -> &str {
    let mut parts = nvr.rsplitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(name)) if !name.is_empty() => name,
        _ => nvr,
    }
}

/// `@name` words in free text, where `@` does not follow a word character (not e-mail).
fn mentions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        if c == '@' && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.') {
            let name: String = text[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .collect();
            let name = name.trim_end_matches(['.', '-']);
            if !name.is_empty() && !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        prev = Some(c);
    }
    out
}

fn join_and(values: &[String]) -> String {
    match values {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(filter: &str, values: &[&str]) -> Vec<String> {
        let f = Filter::parse(&mut Cursor::new(filter)).expect("parses");
        f.apply(values.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn transforms() {
        assert_eq!(run("nvr", &["fedmsg-1.0-1.fc30", "odd"]), ["fedmsg", "odd"]);
        assert_eq!(run("nvr", &["python-foo-bar-1.0-1"]), ["python-foo-bar"]);
        assert_eq!(
            run("strip_prefix('user:')", &["user:Bob", "x"]),
            ["Bob", "x"]
        );
        assert_eq!(run("lower", &["Bob"]), ["bob"]);
        assert_eq!(run("split(',')", &["a, b,,c"]), ["a", "b", "c"]);
        assert_eq!(
            run("mentions", &["hi @alice, mail bob@x.org; @carol."]),
            ["alice", "carol"]
        );
        assert_eq!(
            run("map('1=done', '*=state {}')", &["1", "7"]),
            ["done", "state 7"]
        );
        assert!(run("map('1=done')", &["2"]).is_empty());
        assert_eq!(run("join_and", &["a", "b", "c"]), ["a, b and c"]);
        assert_eq!(run("count", &["a", "b"]), ["2"]);
        assert_eq!(run("default('x')", &[]), ["x"]);
        assert_eq!(run("truncate(3)", &["abcdef"]), ["abc"]);
        assert_eq!(run("after_last('/')", &["a/b/c"]), ["c"]);
        assert_eq!(run("replace('-', ' ')", &["a-b"]), ["a b"]);
        assert_eq!(
            run("reject_prefix('github_org_')", &["github_org_x", "ralph"]),
            ["ralph"]
        );
    }

    #[test]
    fn argument_errors() {
        let err = |s: &str| Filter::parse(&mut Cursor::new(s)).expect_err(s);
        assert!(err("lower('x')").contains("takes 0 argument(s), got 1"));
        assert!(err("map('nope')").contains("is not 'from=to'"));
        assert!(err("split('')").contains("non-empty separator"));
        assert!(err("frob").contains("unknown filter `frob`"));
        assert!(err("truncate(").contains("expected a whole number"));
    }
}
