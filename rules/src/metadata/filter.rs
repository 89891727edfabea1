//! Filters: the transforms an expression applies after `|` (`lower`, `nvr`,
//! `strip_prefix('user:')`, `mentions`, `map('1=done', '*=state {}')`, …). Each maps a list
//! of values to a list of values, so a filter on a list applies item by item.

use std::borrow::Cow;

use super::expr::{Expr, Scope};
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
    /// Joins as `a and b`, `a, b, and c` (with the serial comma).
    JoinOxford,
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
    /// Drops values that contain a text (e.g. e-mail addresses where a user name belongs).
    RejectContaining(String),
    /// Pads with leading zeros to this many characters (`%08d`).
    ZeroPad(usize),
    /// fedmsg's `list_to_series`: sorted, without repeats, `a`, `a and b`, `a, b, and c`,
    /// `a, b, and 7 others`.
    Series,
    /// Keeps only the values ending with a text, that text removed (Fedora addresses →
    /// account names: `only_suffix('@fedoraproject.org')`).
    OnlySuffix(String),
    /// Reads each value as JSON text and yields what is at a dotted path in it (`''`: the
    /// whole document); arrays there give their items (e.g. IPA's `IPA_API_PARAMS`).
    Json(Vec<String>),
    /// Cuts values of this many characters or more to that many and a mark, `…` unless
    /// given (bodhi's `truncate`: 40 characters or more become the first 40 and `…`;
    /// fedmsg_meta's `ellipsis(40, '...')`).
    Ellipsis(usize, String),
    /// Cuts values longer than this many characters to that many and a mark
    /// (`shorten(40, '...')`, as bugzilla2fedmsg does).
    Shorten(usize, String),
    /// An ISO 8601 time (`2023-06-09T07:16:27.8+00:00`) written with a strftime format;
    /// `%Z` is written as Python writes it (`UTC`, `UTC+02:00`; nothing for a naive time).
    /// Values that are not such a time are dropped.
    Strftime(String),
    /// Drops values equal to the first value of another expression of the same message
    /// (`update.user.name | unless_same('agent')`: the owner, unless the owner acted).
    UnlessSame(Box<Expr>),
    /// `when('expr', 'a', …)` keeps the values only when another expression's first value
    /// is one of those listed (with none listed: when it has a value at all); `unless(…)`
    /// (`negate`) drops them then. `repo.name | when('repo.namespace', 'rpms')`.
    When {
        other: Box<Expr>,
        among: Vec<String>,
        negate: bool,
    },
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
            | "count" | "unique" | "first_line" | "nonempty" | "series" | "join_oxford" => {
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
                    "series" => Filter::Series,
                    "join_oxford" => Filter::JoinOxford,
                    _ => Filter::NonEmpty,
                }
            }
            "strip_prefix" | "strip_suffix" | "before" | "after" | "after_last" | "split"
            | "default" | "join" | "prefix" | "suffix" | "reject_prefix" | "json"
            | "only_suffix" | "reject_containing" => {
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
                    "only_suffix" => Filter::OnlySuffix(arg),
                    "reject_containing" => Filter::RejectContaining(arg),
                    "json" => Filter::Json(
                        arg.split('.')
                            .filter(|k| !k.is_empty())
                            .map(str::to_string)
                            .collect(),
                    ),
                    _ => Filter::Suffix(arg),
                }
            }
            "truncate" | "zero_pad" => {
                arity(1)?;
                let n = one(&args)
                    .parse()
                    .map_err(|_| format!("filter `{name}` takes a whole number{at}"))?;
                if name == "truncate" {
                    Filter::Truncate(n)
                } else {
                    Filter::ZeroPad(n)
                }
            }
            "ellipsis" => {
                if !(1..=2).contains(&args.len()) {
                    return Err(format!(
                        "filter `ellipsis` takes a whole number and an optional mark{at}"
                    ));
                }
                let n = one(&args)
                    .parse()
                    .map_err(|_| format!("filter `ellipsis` takes a whole number{at}"))?;
                Filter::Ellipsis(n, args.get(1).cloned().unwrap_or_else(|| "…".into()))
            }
            "shorten" => {
                arity(2)?;
                let n = args[0]
                    .parse()
                    .map_err(|_| format!("filter `shorten` takes a whole number first{at}"))?;
                Filter::Shorten(n, args[1].clone())
            }
            "strftime" => {
                arity(1)?;
                let format = one(&args);
                let checked = format.replace("%Z", "");
                if chrono::format::StrftimeItems::new(&checked)
                    .any(|item| matches!(item, chrono::format::Item::Error))
                {
                    return Err(format!("filter `strftime`: bad format '{format}'{at}"));
                }
                Filter::Strftime(format)
            }
            "unless_same" => {
                arity(1)?;
                let other = Expr::parse(&one(&args))
                    .map_err(|e| format!("filter `unless_same`: {e}{at}"))?;
                Filter::UnlessSame(Box::new(other))
            }
            "when" | "unless" => {
                let Some((first, among)) = args.split_first() else {
                    return Err(format!("filter `{name}` needs an expression{at}"));
                };
                let other = Expr::parse(first).map_err(|e| format!("filter `{name}`: {e}{at}"))?;
                Filter::When {
                    other: Box::new(other),
                    among: among.to_vec(),
                    negate: name == "unless",
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

    /// Applies the filter to a list of values of a message (filters that look at another
    /// part of the message, such as `unless_same`, need it).
    pub fn apply_in<'a>(
        &'a self,
        mut values: Vec<Cow<'a, str>>,
        scope: &Scope<'a>,
    ) -> Vec<Cow<'a, str>> {
        match self {
            Filter::UnlessSame(other) => {
                if let Some(other) = other.eval(scope).into_iter().next() {
                    values.retain(|v| *v != other);
                }
                values
            }
            Filter::When {
                other,
                among,
                negate,
            } => {
                let hit = match other.eval(scope).first() {
                    Some(v) => among.is_empty() || among.iter().any(|a| a == v),
                    None => false,
                };
                if hit != *negate {
                    values
                } else {
                    Vec::new()
                }
            }
            _ => self.apply(values),
        }
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
            Filter::JoinOxford => match values.len() {
                0..=2 => vec![Cow::Owned(join_and(&values))],
                n => vec![Cow::Owned(format!(
                    "{}, and {}",
                    values[..n - 1].join(", "),
                    values[n - 1]
                ))],
            },
            Filter::Series => series(values).into_iter().map(Cow::Owned).collect(),
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
            Filter::ZeroPad(n) => each(values, |v| {
                Some(if v.chars().count() < *n {
                    Cow::Owned(format!("{v:0>n$}", n = *n))
                } else {
                    v
                })
            }),
            Filter::OnlySuffix(s) => each(values, |v| match v {
                Cow::Borrowed(b) => b.strip_suffix(s.as_str()).map(Cow::Borrowed),
                Cow::Owned(o) => o
                    .strip_suffix(s.as_str())
                    .map(|t| Cow::Owned(t.to_string())),
            }),
            Filter::Json(path) => {
                let mut out = Vec::new();
                for v in &values {
                    let Ok(doc) = serde_json::from_str::<serde_json::Value>(v) else {
                        continue;
                    };
                    let found = path.iter().try_fold(&doc, |at, key| at.get(key.as_str()));
                    let scalar = |x: &serde_json::Value| match x {
                        serde_json::Value::String(s) => Some(s.clone()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        serde_json::Value::Bool(b) => Some(b.to_string()),
                        _ => None,
                    };
                    match found {
                        Some(serde_json::Value::Array(items)) => {
                            out.extend(items.iter().filter_map(scalar).map(Cow::Owned))
                        }
                        Some(x) => out.extend(scalar(x).map(Cow::Owned)),
                        None => {}
                    }
                }
                out
            }
            Filter::Ellipsis(n, mark) => each(values, |v| match v.char_indices().nth(*n) {
                Some((end, _)) => Some(Cow::Owned(format!("{}{mark}", &v[..end]))),
                None if v.chars().count() == *n => Some(Cow::Owned(format!("{v}{mark}"))),
                None => Some(v),
            }),
            Filter::Shorten(n, mark) => each(values, |v| match v.char_indices().nth(*n) {
                Some((end, _)) => Some(Cow::Owned(format!("{}{mark}", &v[..end]))),
                None => Some(v),
            }),
            Filter::Strftime(format) => each(values, |v| strftime(&v, format).map(Cow::Owned)),
            // Needs the message: applied by `apply_in`; on its own it keeps every value.
            Filter::UnlessSame(_) | Filter::When { .. } => values,
        }
    }
}

/// `value` (ISO 8601, with or without an offset) written with `format`, `%Z` as Python's.
fn strftime(value: &str, format: &str) -> Option<String> {
    use chrono::{DateTime, NaiveDateTime};
    let (naive, zone) = match DateTime::parse_from_rfc3339(value) {
        Ok(t) => {
            let secs = t.offset().local_minus_utc();
            let zone = if secs == 0 {
                "UTC".to_string()
            } else {
                let sign = if secs < 0 { '-' } else { '+' };
                let secs = secs.unsigned_abs();
                format!("UTC{sign}{:02}:{:02}", secs / 3600, secs % 3600 / 60)
            };
            (t.naive_local(), zone)
        }
        Err(_) => (
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").ok()?,
            String::new(),
        ),
    };
    // The format was checked at load (`%Z` aside), so writing it cannot fail.
    Some(
        naive
            .format(&format.replace("%Z", &zone.replace('%', "%%")))
            .to_string(),
    )
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

/// fedmsg's `BaseConglomerator.list_to_series(items, N=3, oxford_comma=True)`; nothing
/// for no items.
fn series(values: Vec<Cow<'_, str>>) -> Option<String> {
    let mut items: Vec<Cow<'_, str>> = values;
    items.sort();
    items.dedup();
    let mut items: Vec<String> = items.into_iter().map(Cow::into_owned).collect();
    match items.len() {
        0 => return None,
        1 => return items.pop(),
        n if n > 3 => {
            items.truncate(2);
            items.push(format!("{} others", n - 2));
        }
        _ => {}
    }
    let last = items.pop().unwrap_or_default();
    let conjunction = if items.len() > 1 { ", and " } else { " and " };
    Some(format!("{}{conjunction}{last}", items.join(", ")))
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
        assert_eq!(run("join_oxford", &["a", "b"]), ["a and b"]);
        assert_eq!(run("join_oxford", &["a", "b", "c"]), ["a, b, and c"]);
        assert_eq!(run("series", &["b", "a", "b"]), ["a and b"]);
        assert_eq!(run("series", &["c", "a", "b"]), ["a, b, and c"]);
        assert_eq!(
            run("series", &["d", "c", "a", "b", "e"]),
            ["a, b, and 3 others"]
        );
        assert!(run("series", &[]).is_empty());
        assert_eq!(
            run(
                "only_suffix('@fedoraproject.org')",
                &["ann@fedoraproject.org", "b@x.org"]
            ),
            ["ann"]
        );
        assert_eq!(
            run("shorten(3, '...')", &["abcdef", "abc"]),
            ["abc...", "abc"]
        );
        assert_eq!(
            run("ellipsis(3, '...')", &["abcdef", "abc", "ab"]),
            ["abc...", "abc...", "ab"]
        );
        assert_eq!(
            run("zero_pad(8)", &["100", "123456789"]),
            ["00000100", "123456789"]
        );
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
