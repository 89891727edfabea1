//! Patterns: topic globs (by dotted segment), body globs and regular expressions. Body
//! patterns are compiled once, when a condition is read, and carried compiled in the tree,
//! so matching never compiles and never fails.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How large a compiled pattern may grow: user-written patterns must not eat the notifier.
const SIZE_LIMIT: usize = 1 << 20;

/// A compiled regular expression with its source; equal when the sources are equal.
#[derive(Clone)]
pub struct Regex {
    source: String,
    regex: regex::Regex,
}

/// A compiled body glob with its source: `*` matches within one `/`-separated part, `**`
/// matches across parts, `?` one character; everything else is literal.
#[derive(Clone)]
pub struct Glob {
    source: String,
    regex: regex::Regex,
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "the regex is too large once compiled".to_string(),
            // The syntax error's own text is a multi-line picture; one line reads better
            // inside our "line, column" error.
            other => other.to_string().replace('\n', " "),
        })
}

impl Regex {
    /// Compiles a regular expression (Rust `regex` syntax, unanchored).
    pub fn new(source: &str) -> Result<Regex, String> {
        let regex = compile(source).map_err(|e| format!("invalid regex: {e}"))?;
        Ok(Regex {
            source: source.to_string(),
            regex,
        })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the text matches somewhere.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl Glob {
    /// Compiles a body glob.
    pub fn new(source: &str) -> Result<Glob, String> {
        let mut pattern = String::from("^");
        let mut chars = source.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    if chars.peek() == Some(&'*') {
                        return Err(format!(
                            "invalid glob {source:?}: expected `*` or `**`, found `***`"
                        ));
                    }
                    pattern.push_str(".*");
                }
                '*' => pattern.push_str("[^/]*"),
                '?' => pattern.push_str("[^/]"),
                other => pattern.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
        }
        pattern.push('$');
        let regex = compile(&pattern).map_err(|e| format!("invalid glob {source:?}: {e}"))?;
        Ok(Glob {
            source: source.to_string(),
            regex,
        })
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole text matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

macro_rules! by_source {
    ($ty:ident, $what:literal) => {
        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.source == other.source
            }
        }
        impl Eq for $ty {}
        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.source.hash(state);
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", $what, self.source)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.source)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let source = String::deserialize(deserializer)?;
                $ty::new(&source).map_err(serde::de::Error::custom)
            }
        }
    };
}

by_source!(Regex, "Regex");
by_source!(Glob, "Glob");

/// Why a topic glob is refused, if it is: segments must be non-empty and `*`/`**` must be
/// whole segments (`org.*.bodhi.**`, not `org.fedora*`).
pub fn check_topic_glob(glob: &str) -> Result<(), String> {
    for segment in glob.split('.') {
        if segment.is_empty() {
            return Err(format!(
                "topic glob {glob:?} has an empty segment: expected dotted segments like \"org.*.bodhi.**\""
            ));
        }
        if segment.contains('*') && segment != "*" && segment != "**" {
            return Err(format!(
                "topic glob {glob:?} has segment {segment:?}: `*` and `**` must be whole segments"
            ));
        }
    }
    Ok(())
}

/// The segment starting at byte `pos`, and where the next one starts; `None` past the end.
fn segment(text: &str, pos: usize) -> Option<(&str, usize)> {
    let rest = text.get(pos..)?;
    match rest.find('.') {
        Some(dot) => Some((&rest[..dot], pos + dot + 1)),
        None => Some((rest, text.len() + 1)),
    }
}

/// Whether `topic` matches a segment glob (`*` one segment, `**` zero or more).
///
/// The classic greedy wildcard walk with one backtrack point, over segments: time is at
/// most segments(glob) × segments(topic) however many `**` a user writes, and it never
/// allocates.
pub fn topic_glob_matches(glob: &str, topic: &str) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `**`: (glob position after it, topic position it
    // has absorbed up to).
    let mut star: Option<(usize, usize)> = None;
    loop {
        match segment(glob, p) {
            Some(("**", next)) => {
                star = Some((next, t));
                p = next;
                continue;
            }
            Some((want, next_p)) => {
                if let Some((have, next_t)) = segment(topic, t) {
                    if want == "*" || want == have {
                        p = next_p;
                        t = next_t;
                        continue;
                    }
                }
            }
            None if segment(topic, t).is_none() => return true,
            None => {}
        }
        // Mismatch: let the last `**` absorb one more topic segment, or fail.
        let Some((star_p, star_t)) = star else {
            return false;
        };
        let Some((_, next_t)) = segment(topic, star_t) else {
            return false;
        };
        star = Some((star_p, next_t));
        p = star_p;
        t = next_t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_globs_match_by_segment() {
        assert!(topic_glob_matches(
            "org.*.bodhi.**",
            "org.fp.bodhi.update.comment"
        ));
        assert!(topic_glob_matches("org.*.bodhi.**", "org.fp.bodhi"));
        assert!(!topic_glob_matches("org.*.bodhi", "org.fp.x.bodhi"));
        assert!(topic_glob_matches("**.comment", "a.b.comment"));
        assert!(topic_glob_matches("**", "a"));
        assert!(topic_glob_matches("a.**.b.**.c", "a.x.b.y.z.c"));
        assert!(!topic_glob_matches("a.**.b.**.c", "a.x.c.b"));
        assert!(!topic_glob_matches("a.*", "a"));
        assert!(topic_glob_matches("a.b", "a.b"));
        assert!(!topic_glob_matches("a.b", "a.b.c"));
    }

    #[test]
    fn many_double_stars_stay_fast() {
        let glob = "**.a.".repeat(40) + "b";
        let topic = "a.".repeat(60) + "c";
        assert!(!topic_glob_matches(&glob, &topic));
    }

    #[test]
    fn topic_globs_are_checked() {
        assert!(check_topic_glob("org.*.bodhi.**").is_ok());
        let err = check_topic_glob("org.fedora*").expect_err("partial star");
        assert!(err.contains("must be whole segments"), "{err}");
        assert!(check_topic_glob("org..bodhi").is_err());
    }

    #[test]
    fn body_globs_respect_slashes() {
        let g = Glob::new("/pub/fedora/linux/updates/**").expect("glob");
        assert!(g.is_match("/pub/fedora/linux/updates/40/x86_64/repodata"));
        assert!(!g.is_match("/pub/fedora/linux/releases/40"));
        let g = Glob::new("/pub/*/linux").expect("glob");
        assert!(g.is_match("/pub/epel/linux"));
        assert!(!g.is_match("/pub/a/b/linux"));
        assert!(Glob::new("a***").is_err());
        assert!(Regex::new("(").is_err());
    }
}
