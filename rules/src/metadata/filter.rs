//! Filters: the transforms an expression applies after `|` (`lower`, `nvr`,
//! `strip_prefix('user:')`, `mentions`, `map('1=done', '*=state {}')`, …). Each maps a list
//! of values to a list of values, so a filter on a list applies item by item.

use std::borrow::Cow;

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
    /// fedmsg_meta's title cut: a text of this many characters or more keeps that many and
    /// gets `...` appended.
    Ellipsis(usize),
    /// The first line of a text.
    FirstLine,
    /// Replaces every occurrence of a text.
    Replace(String, String),
    /// Drops empty values.
    NonEmpty,
    /// Drops values that start with a text (e.g. organisation pseudo-accounts).
    RejectPrefix(String),
    /// Drops values that contain a text (e.g. e-mail addresses where a user name belongs).
    RejectContaining(String),
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
            | "default" | "join" | "prefix" | "suffix" | "reject_prefix" | "reject_containing" => {
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
                    "reject_containing" => Filter::RejectContaining(arg),
                    _ => Filter::Suffix(arg),
                }
            }
            "truncate" | "ellipsis" => {
                arity(1)?;
                let n = one(&args)
                    .parse()
                    .map_err(|_| format!("filter `{name}` takes a whole number{at}"))?;
                if name == "truncate" {
                    Filter::Truncate(n)
                } else {
                    Filter::Ellipsis(n)
                }
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

    /// Applies the filter to a list of values. Values that a filter only narrows (a prefix
    /// stripped, a first line taken) keep borrowing from the message.
    pub fn apply<'a>(&'a self, values: Vec<Cow<'a, str>>) -> Vec<Cow<'a, str>> {
        fn each<'a>(
            values: Vec<Cow<'a, str>>,
            f: impl FnMut(Cow<'a, str>) -> Option<Cow<'a, str>>,
        ) -> Vec<Cow<'a, str>> {
            values.into_iter().filter_map(f).collect()
        }
        /// Each value narrowed to a part of itself.
        fn narrow<'a>(
            values: Vec<Cow<'a, str>>,
            f: impl for<'x> Fn(&'x str) -> Option<&'x str>,
        ) -> Vec<Cow<'a, str>> {
            each(values, |v| match v {
                Cow::Borrowed(s) => f(s).map(Cow::Borrowed),
                Cow::Owned(s) => f(&s).map(|part| Cow::Owned(part.to_string())),
            })
        }
        match self {
            Filter::Lower => each(values, |v| {
                Some(
                    if v.is_ascii() && !v.bytes().any(|b| b.is_ascii_uppercase()) {
                        v
                    } else {
                        Cow::Owned(v.to_lowercase())
                    },
                )
            }),
            Filter::Upper => each(values, |v| {
                Some(
                    if v.is_ascii() && !v.bytes().any(|b| b.is_ascii_lowercase()) {
                        v
                    } else {
                        Cow::Owned(v.to_uppercase())
                    },
                )
            }),
            Filter::Trim => narrow(values, |v| Some(v.trim())),
            Filter::Nvr => narrow(values, |v| Some(nvr_name(v))),
            Filter::StripPrefix(p) => {
                narrow(values, |v| Some(v.strip_prefix(p.as_str()).unwrap_or(v)))
            }
            Filter::StripSuffix(s) => {
                narrow(values, |v| Some(v.strip_suffix(s.as_str()).unwrap_or(v)))
            }
            Filter::Before(sep) => narrow(values, |v| {
                Some(v.split(sep.as_str()).next().unwrap_or_default())
            }),
            Filter::After(sep) => narrow(values, |v| v.split_once(sep.as_str()).map(|(_, b)| b)),
            Filter::AfterLast(sep) => narrow(values, |v| {
                Some(v.rsplit(sep.as_str()).next().unwrap_or_default())
            }),
            Filter::Split(sep) => {
                let mut out = Vec::with_capacity(values.len());
                for v in values {
                    fn pieces<'x>(s: &'x str, sep: &'x str) -> impl Iterator<Item = &'x str> {
                        s.split(sep).map(str::trim).filter(|p| !p.is_empty())
                    }
                    match v {
                        Cow::Borrowed(s) => out.extend(pieces(s, sep).map(Cow::Borrowed)),
                        Cow::Owned(s) => {
                            out.extend(pieces(&s, sep).map(|p| Cow::Owned(p.to_string())))
                        }
                    }
                }
                out
            }
            Filter::First => values.into_iter().take(1).collect(),
            Filter::Last => values.into_iter().last().into_iter().collect(),
            Filter::Mentions => {
                let mut out = Vec::new();
                for v in &values {
                    for name in mentions(v) {
                        out.push(match v {
                            Cow::Borrowed(s) => Cow::Borrowed(sub_of(s, name)),
                            Cow::Owned(_) => Cow::Owned(name.to_string()),
                        });
                    }
                }
                out
            }
            Filter::Map(pairs) => each(values, |v| {
                let hit = pairs.iter().find(|(from, _)| *from == v);
                let hit = hit.or_else(|| pairs.iter().find(|(from, _)| from == "*"));
                hit.map(|(_, to)| {
                    if to.contains("{}") {
                        Cow::Owned(to.replace("{}", &v))
                    } else {
                        Cow::Borrowed(to.as_str())
                    }
                })
            }),
            Filter::Default(d) if values.is_empty() => vec![Cow::Borrowed(d.as_str())],
            Filter::Default(_) => values,
            Filter::Join(_) | Filter::JoinAnd if values.len() <= 1 => values,
            Filter::Join(sep) => vec![Cow::Owned(values.join(sep))],
            Filter::JoinAnd => vec![Cow::Owned(join_and(&values))],
            Filter::Count => vec![Cow::Owned(values.len().to_string())],
            Filter::Unique => {
                let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(values.len());
                for v in values {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                out
            }
            Filter::Prefix(p) => each(values, |v| Some(Cow::Owned(format!("{p}{v}")))),
            Filter::Suffix(s) => each(values, |v| Some(Cow::Owned(format!("{v}{s}")))),
            Filter::Truncate(n) => narrow(values, |v| {
                Some(match v.char_indices().nth(*n) {
                    Some((end, _)) => &v[..end],
                    None => v,
                })
            }),
            Filter::Ellipsis(n) => each(values, |v| {
                Some(if v.chars().count() >= *n {
                    let end = v.char_indices().nth(*n).map_or(v.len(), |(end, _)| end);
                    Cow::Owned(format!("{}...", &v[..end]))
                } else {
                    v
                })
            }),
            Filter::FirstLine => narrow(values, |v| Some(v.lines().next().unwrap_or_default())),
            Filter::Replace(a, b) => each(values, |v| {
                Some(if v.contains(a.as_str()) {
                    Cow::Owned(v.replace(a.as_str(), b))
                } else {
                    v
                })
            }),
            Filter::NonEmpty => each(values, |v| (!v.is_empty()).then_some(v)),
            Filter::RejectPrefix(p) => each(values, |v| (!v.starts_with(p.as_str())).then_some(v)),
            Filter::RejectContaining(p) => each(values, |v| (!v.contains(p.as_str())).then_some(v)),
        }
    }
}

/// `part` (a slice of `whole`'s own text) as a slice of `whole` with its lifetime.
fn sub_of<'a>(whole: &'a str, part: &str) -> &'a str {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    &whole[start..start + part.len()]
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
fn mentions(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        if c == '@' && !prev.is_some_and(|p| p.is_alphanumeric() || p == '_' || p == '.') {
            let rest = &text[i + 1..];
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .unwrap_or(rest.len());
            let name = rest[..len].trim_end_matches(['.', '-']);
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
        prev = Some(c);
    }
    out
}

fn join_and(values: &[Cow<'_, str>]) -> String {
    match values {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(filter: &str, values: &[&str]) -> Vec<String> {
        let f = Filter::parse(&mut Cursor::new(filter)).expect("parses");
        let values = values.iter().map(|s| Cow::Borrowed(*s)).collect();
        f.apply(values).into_iter().map(Cow::into_owned).collect()
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
