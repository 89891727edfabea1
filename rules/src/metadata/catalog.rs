//! The schema catalog: per-topic entries, read from TOML data files, that say where a
//! message's people, packages, groups and agent are and how to write its summary and link.
//! Entries are compiled at load and indexed by application, so deriving metadata is a
//! hash lookup, a few pattern comparisons and the entry's expressions.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use toml::Spanned;

use super::expr::{Expr, Scope};
use super::fallback;
use super::source::{self, CatalogError, RawEntry, RawItem, RawValue};
use super::template::{self, Template};
use super::{Metadata, Severity};
use crate::Message;

/// The shipped catalog files, embedded at build time.
const SHIPPED: &[(&str, &str)] = &[
    (
        "schemas/fedora.toml",
        include_str!("../../../schemas/fedora.toml"),
    ),
    (
        "schemas/bodhi.toml",
        include_str!("../../../schemas/bodhi.toml"),
    ),
    (
        "schemas/koji.toml",
        include_str!("../../../schemas/koji.toml"),
    ),
    (
        "schemas/compose.toml",
        include_str!("../../../schemas/compose.toml"),
    ),
    (
        "schemas/pagure.toml",
        include_str!("../../../schemas/pagure.toml"),
    ),
    (
        "schemas/packaging.toml",
        include_str!("../../../schemas/packaging.toml"),
    ),
    ("schemas/ci.toml", include_str!("../../../schemas/ci.toml")),
    (
        "schemas/apps.toml",
        include_str!("../../../schemas/apps.toml"),
    ),
    (
        "schemas/fedmsg-apps.toml",
        include_str!("../../../schemas/fedmsg-apps.toml"),
    ),
    (
        "schemas/fm-packaging.toml",
        include_str!("../../../schemas/fm-packaging.toml"),
    ),
    (
        "schemas/fm-community.toml",
        include_str!("../../../schemas/fm-community.toml"),
    ),
];

/// A compiled schema catalog.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<Entry>,
    /// The candidate entries of a topic by its first (application) segment: the app's own
    /// entries and those whose pattern starts with a wildcard, most specific first, with
    /// entries shadowed by a more specific one of the same pattern left out.
    by_app: HashMap<String, Vec<usize>>,
    /// The candidates of a topic whose application has no entries of its own: the
    /// wildcard entries, most specific first, shadowed ones left out.
    wildcard: Vec<usize>,
    /// Other names of apps: a file whose entries are all about one app, named otherwise
    /// (`koji.toml`, all `buildsys.*`), names it.
    aliases: std::collections::BTreeMap<String, String>,
    /// The matching entries of each topic seen (without `prefix.env`), per bus: topics
    /// repeat, so the patterns are matched once per topic, not once per message. At most
    /// [`MAX_CACHED_TOPICS`] per bus; topics beyond that are matched each time.
    chains: std::sync::Arc<[Chains; 2]>,
}

/// Topic → the indexes of its matching entries, most specific first.
type Chains = std::sync::RwLock<HashMap<String, std::sync::Arc<[usize]>>>;

/// How many topics' entry chains a catalog remembers per bus.
const MAX_CACHED_TOPICS: usize = 8192;

#[derive(Debug, Clone)]
struct Entry {
    pattern: Pattern,
    /// The bus generation the entry is for; `None` is both.
    bus: Option<Bus>,
    app: Option<Template>,
    severity: Option<Template>,
    agent: Option<Expr>,
    usernames: Option<Vec<Expr>>,
    packages: Option<Vec<Expr>>,
    groups: Option<Vec<Expr>>,
    objects: Option<Vec<Expr>>,
    summary: Vec<Template>,
    url: Vec<Template>,
    details: Vec<Template>,
}

/// A bus generation. Its messages may share a topic and a body's shape and still be
/// described differently: fedmsg_meta wrote fedmsg's summaries, the apps' schema packages
/// write fedora-messaging's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bus {
    /// fedmsg (ZeroMQ) envelopes, and messages carried over AMQP without a schema of their
    /// own (`fedora_messaging_schema` missing or `base.message`, as Fedora's fedmsg→AMQP
    /// bridge published them).
    Fedmsg,
    /// fedora-messaging messages with an app's own schema (`fedora_messaging_schema` header).
    FedoraMessaging,
}

impl Bus {
    fn parse(text: &str) -> Option<Bus> {
        match text {
            "fedmsg" => Some(Bus::Fedmsg),
            "fedora-messaging" => Some(Bus::FedoraMessaging),
            _ => None,
        }
    }

    /// The generation a message belongs to, from its headers.
    pub(super) fn of(message: &Message) -> Bus {
        match message
            .headers
            .get("fedora_messaging_schema")
            .and_then(|v| v.as_str())
        {
            Some(schema) if schema != "base.message" => Bus::FedoraMessaging,
            _ => Bus::Fedmsg,
        }
    }
}

/// A topic pattern over the topic without its `prefix.env` (`bodhi.update.*`): `*` is one
/// segment, `**` any number of segments (also none).
#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    segments: Vec<Seg>,
    /// (for one bus only, literal segments, -`**` count, load order): higher is more
    /// specific. An entry for the message's own bus comes before every entry for both.
    rank: (bool, usize, isize, usize),
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Lit(String),
    One,
    Any,
}

const KEYS: &str =
    "topic, bus, app, severity, agent, usernames, packages, groups, objects, summary, url, details";

impl Catalog {
    /// Compiles catalog files given as `(file name, TOML text)`, in order: for the same
    /// topic pattern, a later file's entry replaces an earlier one. Entries that cannot be
    /// used are skipped and reported; the rest load.
    pub fn load(sources: &[(String, String)]) -> (Catalog, Vec<CatalogError>) {
        let mut catalog = Catalog::default();
        let mut errors = Vec::new();
        for (file, text) in sources {
            let raw = match source::parse_file(file, text) {
                Ok(raw) => raw,
                Err(err) => {
                    errors.push(err);
                    continue;
                }
            };
            let first = catalog.entries.len();
            for entry in raw {
                let order = catalog.entries.len();
                match Entry::compile(entry, order) {
                    Ok(entries) => catalog.entries.extend(entries),
                    Err((offset, reason)) => errors.push(source::error_at(
                        file,
                        text,
                        offset,
                        format!("entry skipped: {reason}"),
                    )),
                }
            }
            // The file's one app, if all its entries are about one.
            let apps: std::collections::BTreeSet<Option<&str>> = catalog.entries[first..]
                .iter()
                .map(|e| match e.pattern.segments.first() {
                    Some(Seg::Lit(app)) => Some(app.as_str()),
                    _ => None,
                })
                .collect();
            let stem = std::path::Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if let (1, Some(Some(app))) = (apps.len(), apps.first()) {
                if *app != stem && !stem.is_empty() {
                    catalog.aliases.insert(stem.to_string(), app.to_string());
                }
            }
        }
        catalog.build_index();
        let known = &catalog.by_app;
        catalog.aliases.retain(|stem, _| !known.contains_key(stem));
        (catalog, errors)
    }

    /// The apps the catalog has entries for, and their other names, for warnings about
    /// filters that name an app no message comes from.
    pub fn app_names(&self) -> crate::condition::AppNames {
        let mut topics: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for entry in &self.entries {
            if let Some(Seg::Lit(app)) = entry.pattern.segments.first() {
                let text: Vec<&str> = entry
                    .pattern
                    .segments
                    .iter()
                    .map(|s| match s {
                        Seg::Lit(l) => l.as_str(),
                        Seg::One => "*",
                        Seg::Any => "**",
                    })
                    .collect();
                topics
                    .entry(app.clone())
                    .or_default()
                    .insert(text.join("."));
            }
        }
        // Apps are topic's first segments, and the names entries give them (`Koji`).
        let mut apps: std::collections::BTreeSet<String> = self.by_app.keys().cloned().collect();
        apps.extend(
            self.entries
                .iter()
                .filter_map(|e| e.app.as_ref()?.fixed_text())
                .filter(|app| !app.is_empty())
                .map(str::to_lowercase),
        );
        crate::condition::AppNames {
            apps,
            aliases: self.aliases.clone(),
            topics,
        }
    }

    /// The catalog files shipped with Tidings, as `(file name, TOML text)`, for callers
    /// that merge them with an admin's own files.
    pub fn shipped_sources() -> Vec<(String, String)> {
        SHIPPED
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect()
    }

    /// The shipped catalog. Its files are tested to load without errors.
    pub fn shipped() -> Catalog {
        Catalog::load(&Catalog::shipped_sources()).0
    }

    /// How many topic patterns the catalog holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the catalog has no entries (only the generic fallback applies).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The metadata of a message: every entry whose pattern matches the topic, most
    /// specific first; each key comes from the most specific entry that sets it (a broader
    /// pattern such as `bodhi.**` supplies what `bodhi.update.comment` leaves out), then the
    /// generic fallback; AMQP header flags are added on top.
    pub fn derive(&self, message: &Message) -> Metadata {
        let scope = Scope::new(message);
        let bus = Bus::of(message);
        let topic = &scope.segments[scope.prefix_len..];
        let short = match scope.prefix_len {
            0 => message.topic.as_str(),
            n => message.topic.splitn(n + 1, '.').last().unwrap_or_default(),
        };
        let cache = &self.chains[bus as usize];
        let cached = cache.read().ok().and_then(|c| c.get(short).cloned());
        let ids = match cached {
            Some(ids) => ids,
            None => {
                let ids: std::sync::Arc<[usize]> = self.lookup(topic, bus).into();
                if let Ok(mut c) = cache.write() {
                    if c.len() < MAX_CACHED_TOPICS {
                        c.insert(short.to_string(), ids.clone());
                    }
                }
                ids
            }
        };
        let chain: Vec<&Entry> = ids.iter().map(|&i| &self.entries[i]).collect();
        let mut meta = Entry::apply(&chain, &scope);
        fallback::apply_headers(message, &mut meta);
        meta
    }

    /// The matching entries, most specific first (those for the message's bus before those
    /// for both). Of entries with the same pattern and bus only the one loaded last counts,
    /// so an admin's repeated pattern replaces a shipped entry.
    fn lookup(&self, topic: &[&str], bus: Bus) -> Vec<usize> {
        let candidates = topic
            .first()
            .and_then(|app| self.by_app.get(*app))
            .unwrap_or(&self.wildcard);
        candidates
            .iter()
            .copied()
            .filter(|&i| {
                let e = &self.entries[i];
                e.bus.is_none_or(|b| b == bus) && e.pattern.matches(topic)
            })
            .collect()
    }

    fn build_index(&mut self) {
        let mut by_app: HashMap<String, Vec<usize>> = HashMap::new();
        let mut wildcard = Vec::new();
        for (i, entry) in self.entries.iter().enumerate() {
            match entry.pattern.segments.first() {
                Some(Seg::Lit(app)) => by_app.entry(app.clone()).or_default().push(i),
                _ => wildcard.push(i),
            }
        }
        let entries = &self.entries;
        // Stable: entries of equal rank keep their order, an app's own before wildcards.
        let by_rank =
            |a: &usize, b: &usize| entries[*b].pattern.rank.cmp(&entries[*a].pattern.rank);
        // Of entries with the same pattern, only the first (most specific) ever counts.
        let unshadowed = |ids: Vec<usize>| -> Vec<usize> {
            let mut kept: Vec<usize> = Vec::with_capacity(ids.len());
            for i in ids {
                if !kept.iter().any(|&k| {
                    entries[k].pattern.segments == entries[i].pattern.segments
                        && entries[k].bus == entries[i].bus
                }) {
                    kept.push(i);
                }
            }
            kept
        };
        wildcard.sort_by(by_rank);
        for ids in by_app.values_mut() {
            ids.sort_by(by_rank);
            ids.extend_from_slice(&wildcard);
            ids.sort_by(by_rank);
            *ids = unshadowed(std::mem::take(ids));
        }
        self.wildcard = unshadowed(wildcard);
        self.by_app = by_app;
    }
}

type Failure = (usize, String);

impl Entry {
    /// One entry per topic pattern (an entry may list several).
    fn compile(raw: RawEntry, order: usize) -> Result<Vec<Entry>, Failure> {
        let mut fields = raw.fields;
        if let Some((key, value)) = fields
            .iter()
            .find(|(k, _)| !KEYS.split(", ").any(|x| x == *k))
        {
            return Err((
                value.span().start,
                format!("unknown key `{key}` (expected one of {KEYS})"),
            ));
        }
        let Some(topic) = fields.remove("topic") else {
            return Err((raw.span.start, "missing key `topic`".to_string()));
        };
        let one = |fields: &mut std::collections::BTreeMap<_, Spanned<RawValue>>, key: &str| {
            fields.remove(key).map(|v| texts(key, v, false)).transpose()
        };
        let many = |fields: &mut std::collections::BTreeMap<_, Spanned<RawValue>>, key: &str| {
            fields.remove(key).map(|v| texts(key, v, true)).transpose()
        };
        let exprs = |list: Option<Vec<(usize, String)>>| -> Result<Option<Vec<Expr>>, Failure> {
            list.map(|l| {
                l.into_iter()
                    .map(|(at, s)| compile_with(at, &s, Expr::parse))
                    .collect()
            })
            .transpose()
        };
        let templates = |list: Option<Vec<(usize, String)>>| -> Result<Vec<Template>, Failure> {
            list.unwrap_or_default()
                .into_iter()
                .map(|(at, s)| compile_with(at, &s, Template::parse))
                .collect()
        };
        let single = |list: Option<Vec<(usize, String)>>| list.and_then(|l| l.into_iter().next());
        let bus = single(one(&mut fields, "bus")?)
            .map(|(at, s)| {
                Bus::parse(&s).ok_or((
                    at,
                    format!("bus `{s}` is not one of fedmsg, fedora-messaging"),
                ))
            })
            .transpose()?;
        let severity = single(one(&mut fields, "severity")?)
            .map(|(at, s)| {
                let t = compile_with(at, &s, Template::parse)?;
                match t.fixed_text() {
                    Some(name) if Severity::parse(name).is_none() => Err((
                        at,
                        format!("severity `{name}` is not one of debug, info, warning, error"),
                    )),
                    _ => Ok(t),
                }
            })
            .transpose()?;
        let template = Entry {
            pattern: Pattern {
                segments: Vec::new(),
                rank: (false, 0, 0, 0),
            },
            bus,
            app: single(one(&mut fields, "app")?)
                .map(|(at, s)| compile_with(at, &s, Template::parse))
                .transpose()?,
            severity,
            agent: single(one(&mut fields, "agent")?)
                .map(|(at, s)| compile_with(at, &s, Expr::parse))
                .transpose()?,
            usernames: exprs(many(&mut fields, "usernames")?)?,
            packages: exprs(many(&mut fields, "packages")?)?,
            groups: exprs(many(&mut fields, "groups")?)?,
            objects: exprs(many(&mut fields, "objects")?)?,
            summary: templates(many(&mut fields, "summary")?)?,
            url: templates(many(&mut fields, "url")?)?,
            details: templates(many(&mut fields, "details")?)?,
        };
        texts("topic", topic, true)?
            .into_iter()
            .map(|(at, text)| {
                let mut pattern = Pattern::parse(&text, order).map_err(|reason| (at, reason))?;
                pattern.rank.0 = bus.is_some();
                Ok(Entry {
                    pattern,
                    ..template.clone()
                })
            })
            .collect()
    }

    /// The metadata from a chain of matching entries, most specific first: each key from
    /// the first entry that sets it; summary and url from the first template that renders,
    /// trying the most specific entry's list first. Keys no entry sets (or whose template
    /// does not render) come from the generic fallback, computed only for those keys.
    fn apply(chain: &[&Entry], scope: &Scope<'_>) -> Metadata {
        let message = scope.message;
        let body = &message.body;
        let set = |exprs: &[Expr]| -> BTreeSet<String> {
            exprs
                .iter()
                .flat_map(|e| e.eval(scope))
                .filter(|v| !v.is_empty())
                .map(Cow::into_owned)
                .collect()
        };
        fn pick<'e, T: ?Sized>(
            chain: &[&'e Entry],
            f: impl Fn(&'e Entry) -> Option<&'e T>,
        ) -> Option<&'e T> {
            chain.iter().find_map(|e| f(e))
        }
        // App names are kept in lower case: a schema's `Koji` is the filters' `koji`.
        let app = pick(chain, |e| e.app.as_ref())
            .and_then(|t| t.render(scope))
            .or_else(|| {
                let app = scope.segments.get(scope.prefix_len)?;
                (!app.is_empty()).then(|| app.to_string())
            })
            .map(|app| {
                if app.bytes().any(|b| b.is_ascii_uppercase()) {
                    app.to_lowercase()
                } else {
                    app
                }
            });
        let severity = pick(chain, |e| e.severity.as_ref())
            .and_then(|t| t.render(scope))
            .and_then(|s| Severity::parse(&s))
            .unwrap_or_default();
        let summary = chain
            .iter()
            .find_map(|e| template::render_first(&e.summary, scope));
        let agent_expr = pick(chain, |e| e.agent.as_ref());
        // The generic summary names the generic agent, whatever agent an entry sets.
        let generic_agent = (agent_expr.is_none() || summary.is_none())
            .then(|| fallback::generic_agent(body))
            .flatten();
        let summary = match summary {
            Some(summary) => summary,
            None => fallback::generic_summary(&message.topic, generic_agent.as_deref()),
        };
        let agent = match agent_expr {
            Some(expr) => expr
                .eval(scope)
                .into_iter()
                .find(|a| !a.is_empty())
                .map(Cow::into_owned),
            None => generic_agent,
        };
        let usernames = match pick(chain, |e| e.usernames.as_deref()) {
            Some(exprs) => set(exprs),
            None => fallback::generic_usernames(body),
        };
        let packages = match pick(chain, |e| e.packages.as_deref()) {
            Some(exprs) => set(exprs),
            None => fallback::generic_packages(body),
        };
        let groups = pick(chain, |e| e.groups.as_deref())
            .map(set)
            .unwrap_or_default();
        let objects = pick(chain, |e| e.objects.as_deref())
            .map(|exprs| {
                exprs
                    .iter()
                    .flat_map(|e| e.eval(scope))
                    .filter(|v| !v.is_empty())
                    .map(Cow::into_owned)
                    .collect()
            })
            .unwrap_or_default();
        // A url template that renders empty (`url = ""`) says "no link": broader entries
        // (e.g. another bus generation's) are not consulted.
        let url = chain
            .iter()
            .find_map(|e| template::render_first(&e.url, scope))
            .filter(|url| !url.is_empty());
        let details = chain
            .iter()
            .find_map(|e| template::render_first(&e.details, scope))
            .map(|text| bounded(text.trim(), super::MAX_DETAILS))
            .filter(|text| !text.is_empty());
        Metadata {
            topic: message.topic.clone(),
            app,
            agent,
            usernames,
            packages,
            groups,
            severity,
            summary,
            url,
            objects,
            details,
        }
    }
}

/// At most `max` bytes of `text`, cut on a character boundary, with `…` when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

/// The strings of a value (with their offsets); `list` says whether an array is allowed.
fn texts(key: &str, value: Spanned<RawValue>, list: bool) -> Result<Vec<(usize, String)>, Failure> {
    let start = value.span().start;
    let want = if list {
        "a string or an array of strings"
    } else {
        "a string"
    };
    match value.into_inner() {
        RawValue::Text(s) => Ok(vec![(start, s)]),
        RawValue::List(items) if list => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let at = item.span().start;
                match item.into_inner() {
                    RawItem::Text(s) => Ok((at, s)),
                    RawItem::Other(found) => Err((
                        at,
                        format!("`{key}` item {} must be a string, found {found}", i + 1),
                    )),
                }
            })
            .collect(),
        RawValue::List(_) => Err((start, format!("`{key}` must be {want}, found an array"))),
        RawValue::Other(found) => Err((start, format!("`{key}` must be {want}, found {found}"))),
    }
}

/// Compiles a string; the error's offset points past the string's opening quote.
fn compile_with<T>(at: usize, text: &str, f: fn(&str) -> Result<T, String>) -> Result<T, Failure> {
    f(text).map_err(|reason| (at, format!("in `{text}`: {reason}")))
}

impl Pattern {
    fn parse(text: &str, order: usize) -> Result<Pattern, String> {
        let mut segments = Vec::new();
        for seg in text.split('.') {
            segments.push(match seg {
                "" => return Err(format!("topic pattern `{text}` has an empty segment")),
                "*" => Seg::One,
                "**" => Seg::Any,
                s if s.contains('*') => {
                    return Err(format!(
                        "topic pattern `{text}`: `*` and `**` must be whole segments"
                    ))
                }
                s => Seg::Lit(s.to_string()),
            });
        }
        let literals = segments.iter().filter(|s| matches!(s, Seg::Lit(_))).count();
        let anys = segments.iter().filter(|s| matches!(s, Seg::Any)).count();
        Ok(Pattern {
            segments,
            rank: (false, literals, -(anys as isize), order),
        })
    }

    fn matches(&self, topic: &[&str]) -> bool {
        fn go(pat: &[Seg], topic: &[&str]) -> bool {
            match pat.split_first() {
                None => topic.is_empty(),
                Some((Seg::Any, rest)) => (0..=topic.len()).any(|i| go(rest, &topic[i..])),
                Some((seg, rest)) => match topic.split_first() {
                    Some((t, trest)) => {
                        let hit = match seg {
                            Seg::Lit(l) => l == t,
                            _ => true,
                        };
                        hit && go(rest, trest)
                    }
                    None => false,
                },
            }
        }
        go(&self.segments, topic)
    }
}
