//! `tidings bench match`: how fast the compiled index matches real bus messages against
//! many users' filters, compared with the naive evaluator (every filter, every message).
//!
//! Users get FMN-like default filters (my packages, events about me, my builds failed,
//! comments on my updates, people and packages I follow) and a few topic-specific and
//! field conditions; each owns 1–50 packages drawn from the corpus's package names plus
//! synthetic ones. The corpus messages are replayed with generic metadata plus the
//! usernames and packages the corpus says fedmsg_meta found.
//!
//! With `--population FILE` the users are given instead (a name and the packages each
//! owns), each with FMN's three classic defaults only, so that matches per message can be
//! set beside FMN's for identical users.

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tidings_rules::Variables;
use tidings_rules::{Condition, Envelope, Index, IndexedFilter, Message, Metadata, NaiveIndex};

/// FMN's classic defaults, given to every user of a population file: events on my
/// packages, events about me, failed builds of my packages (the first three of
/// [`DEFAULTS`]).
const CLASSIC: usize = 3;

/// Who the benchmark's users are.
pub enum Population {
    /// Generated users (see the module comment), `filters_per_user` filters each.
    Generated {
        /// How many.
        users: usize,
        /// Filters each.
        filters_per_user: usize,
    },
    /// Users read from a file, with FMN's classic defaults.
    Given {
        /// The file, for the report.
        file: String,
        /// Each user's name and packages.
        users: Vec<GivenUser>,
    },
}

/// One user of a population file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenUser {
    name: String,
    #[serde(default)]
    packages: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PopulationFile {
    users: Vec<GivenUser>,
}

impl Population {
    /// Reads `{"users": [{"name": "alice", "packages": ["gtk3", …]}, …]}`.
    pub fn from_file(path: &Path) -> anyhow::Result<Population> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the population {}", path.display()))?;
        let file: PopulationFile = serde_json::from_str(&text)
            .with_context(|| format!("parsing the population {}", path.display()))?;
        anyhow::ensure!(!file.users.is_empty(), "no user in {}", path.display());
        Ok(Population::Given {
            file: path.display().to_string(),
            users: file.users,
        })
    }
}

/// The one-line summaries FMN users start with, plus rarer hand-written ones.
const DEFAULTS: [&str; 5] = [
    // My packages.
    "packages has $my_packages",
    // Events about me.
    "usernames has $me",
    // My builds failed (koji state 3 = FAILED).
    r#"topic ~ "org.fedoraproject.*.buildsys.build.state.change" and packages has $my_packages and body.new == 3"#,
    // Comments on my updates by others.
    r#"topic ~ "org.fedoraproject.*.bodhi.update.comment" and usernames has $me and not agent == $me"#,
    // People and packages I follow.
    "packages has any $followed_packages or usernames has any $followed_users",
];
const NEGATIVE_KARMA: &str = r#"topic ~ "org.fedoraproject.*.bodhi.update.comment" and body.comment.karma < 0 and packages has $my_packages"#;
const MIRROR: &str =
    r#"topic ~ "org.fedoraproject.*.bodhi.updates.*.sync" and body.repo prefix "updates""#;
const GROUPS: [&str; 5] = ["packager", "provenpackager", "qa", "infra", "design"];

/// splitmix64: a seeded, dependency-free generator, so every run builds the same users.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The corpus replayed: each message with its metadata (`tidings bench feed` archives it).
pub(crate) struct Corpus {
    pub(crate) messages: Vec<(Message, Metadata)>,
    packages: Vec<String>,
    pub(crate) usernames: Vec<String>,
    topics: Vec<String>,
}

/// Reads the corpus at `path` (see the module comment).
pub(crate) fn load(path: &Path) -> anyhow::Result<Corpus> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut corpus = Corpus {
        messages: Vec::new(),
        packages: Vec::new(),
        usernames: Vec::new(),
        topics: Vec::new(),
    };
    for line in text.lines() {
        let Ok(mut entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Ok(envelope) = Envelope::from_value(entry["message"].take()) else {
            continue;
        };
        let message = envelope.message;
        let mut metadata = Metadata::derive(&message);
        let names = |key: &str| -> Vec<String> {
            entry["expected"][key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        metadata.usernames.extend(names("usernames"));
        metadata.packages.extend(names("packages"));
        corpus.packages.extend(metadata.packages.iter().cloned());
        corpus.usernames.extend(metadata.usernames.iter().cloned());
        corpus.topics.push(message.topic.clone());
        corpus.messages.push((message, metadata));
    }
    for list in [
        &mut corpus.packages,
        &mut corpus.usernames,
        &mut corpus.topics,
    ] {
        list.sort();
        list.dedup();
    }
    anyhow::ensure!(
        !corpus.messages.is_empty(),
        "no message in {}",
        path.display()
    );
    Ok(corpus)
}

/// One user's variables and filters; the same seed gives the same user.
fn user<'t>(
    u: usize,
    k: usize,
    corpus: &Corpus,
    pool: usize,
    templates: &'t Templates,
    rng: &mut Rng,
) -> (Variables, Vec<Cow<'t, Condition>>) {
    let name = corpus
        .usernames
        .get(u)
        .cloned()
        .unwrap_or_else(|| format!("user{u}"));
    let mut vars = Variables::for_user(name);
    let package = |rng: &mut Rng| {
        let n = rng.below(pool + corpus.packages.len());
        corpus
            .packages
            .get(n)
            .cloned()
            .unwrap_or_else(|| format!("pkg{n}"))
    };
    for _ in 0..1 + rng.below(50) {
        vars.my_packages.insert(package(rng));
    }
    for _ in 0..rng.below(6) {
        vars.followed_packages.insert(package(rng));
        let other = rng.below(pool);
        vars.followed_users.insert(
            corpus
                .usernames
                .get(other)
                .cloned()
                .unwrap_or_else(|| format!("user{other}")),
        );
    }
    for _ in 0..rng.below(3) {
        vars.my_groups
            .insert(GROUPS[rng.below(GROUPS.len())].to_string());
    }
    let mut filters: Vec<Cow<'t, Condition>> = (0..k)
        .map(|j| Cow::Borrowed(&templates.defaults[j % DEFAULTS.len()]))
        .collect();
    if let Some(last) = filters.last_mut() {
        let roll = rng.below(1000);
        if roll < 10 {
            *last = Cow::Owned(Condition::TopicIs(
                corpus.topics[rng.below(corpus.topics.len())].clone(),
            ));
        } else if roll < 11 {
            *last = Cow::Borrowed(&templates.mirror);
        } else if roll < 111 {
            *last = Cow::Borrowed(&templates.negative_karma);
        }
    }
    (vars, filters)
}

struct Templates {
    defaults: Vec<Condition>,
    negative_karma: Condition,
    mirror: Condition,
}

fn parse(text: &str) -> anyhow::Result<Condition> {
    Condition::parse(text).map_err(|e| anyhow::anyhow!("{text}: {e}"))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// Nanoseconds this thread has spent on a CPU: on a shared machine, wall time also counts
/// the time other processes held the cores.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Per-message latencies of `matches` over `messages`, repeated until `budget` is spent
/// or `passes` passes are done (at least one message).
fn replay(
    messages: &[(Message, Metadata)],
    budget: Duration,
    passes: usize,
    mut matches: impl FnMut(&Message, &Metadata) -> usize,
) -> (Vec<Duration>, usize) {
    let (mut times, mut found) = (Vec::new(), 0);
    let start = Instant::now();
    for (message, metadata) in messages.iter().cycle() {
        let t = Instant::now();
        found += matches(message, metadata);
        times.push(t.elapsed());
        if start.elapsed() >= budget || times.len() >= passes * messages.len() {
            break;
        }
    }
    (times, found)
}

fn figures(times: &mut [Duration], found: usize) -> Value {
    let total: f64 = times.iter().map(Duration::as_secs_f64).sum();
    times.sort_unstable();
    json!({
        "messages": times.len(),
        "seconds": total,
        "messages_per_s": times.len() as f64 / total.max(1e-9),
        "p50_us": percentile(times, 0.50),
        "p99_us": percentile(times, 0.99),
        "matches_per_message": found as f64 / times.len().max(1) as f64,
    })
}

/// Runs the benchmark and returns its figures as one JSON object.
pub fn run(population: &Population, corpus: &Path) -> anyhow::Result<Value> {
    let corpus = load(corpus)?;
    let templates = Templates {
        defaults: DEFAULTS
            .iter()
            .map(|t| parse(t))
            .collect::<anyhow::Result<_>>()?,
        negative_karma: parse(NEGATIVE_KARMA)?,
        mirror: parse(MIRROR)?,
    };
    let (corpus, templates) = (&corpus, &templates);
    let owners = || -> Vec<(Variables, Vec<Cow<'_, Condition>>)> {
        match population {
            Population::Generated {
                users,
                filters_per_user,
            } => {
                // About as many packages as Fedora has, or more for more users, so a
                // package has tens of owners, as in a real distribution, rather than
                // thousands.
                let pool = (*users).max(25_000);
                let mut rng = Rng(7);
                (0..*users)
                    .map(|u| user(u, *filters_per_user, corpus, pool, templates, &mut rng))
                    .collect()
            }
            Population::Given { users, .. } => users
                .iter()
                .map(|given| {
                    let mut vars = Variables::for_user(given.name.clone());
                    vars.my_packages.extend(given.packages.iter().cloned());
                    let filters = templates.defaults[..CLASSIC]
                        .iter()
                        .map(Cow::Borrowed)
                        .collect();
                    (vars, filters)
                })
                .collect(),
        }
    };
    let (users, filters_per_user, source) = match population {
        Population::Generated {
            users,
            filters_per_user,
        } => (*users, *filters_per_user, json!("generated")),
        Population::Given { file, users } => (users.len(), CLASSIC, json!(file)),
    };

    // Users are made first so that the build is timed alone; their conditions borrow the
    // templates until the index takes its own copy, as the notifier would from the store.
    let made = owners();
    let mut index = Index::default();
    let start = Instant::now();
    let cpu = thread_cpu_ns().unwrap_or(0);
    for (u, (vars, filters)) in made.into_iter().enumerate() {
        let owner = u as i64;
        index.set_variables(owner, vars);
        for (j, condition) in filters.into_iter().enumerate() {
            index.upsert(IndexedFilter {
                id: owner * 100 + j as i64,
                owner,
                condition: condition.into_owned(),
            });
        }
    }
    let build_cpu_ns = thread_cpu_ns().unwrap_or(0).saturating_sub(cpu);
    let build = start.elapsed();
    let cpu = thread_cpu_ns().unwrap_or(0);
    // Two seconds of replay at least: a pass over the corpus takes about a millisecond, and
    // the 50 passes this once stopped at (0.05-0.12 s) gave 155,000-420,000 messages/s from
    // one run to the next on the same build, as caches and the CPU's clock settled.
    let (mut times, found) = replay(
        &corpus.messages,
        Duration::from_secs(2),
        usize::MAX,
        |m, d| index.matches(m, d).len(),
    );
    let replay_cpu_s = thread_cpu_ns().unwrap_or(0).saturating_sub(cpu) as f64 / 1e9;
    let mut indexed = figures(&mut times, found);
    indexed["messages_per_cpu_s"] = json!(times.len() as f64 / replay_cpu_s.max(1e-9));
    let peak_index = peak_rss_mb();

    let mut naive = NaiveIndex::default();
    for (u, (vars, filters)) in owners().into_iter().enumerate() {
        let owner = u as i64;
        naive.set_variables(owner, vars);
        for (j, condition) in filters.into_iter().enumerate() {
            naive.upsert(IndexedFilter {
                id: owner * 100 + j as i64,
                owner,
                condition: condition.into_owned(),
            });
        }
    }
    let (mut naive_times, naive_found) =
        replay(&corpus.messages, Duration::from_secs(5), 50, |m, d| {
            naive.matches(m, d).len()
        });
    // The naive run is a sample; the index must return exactly the same on it.
    let sample = naive_times.len().min(corpus.messages.len());
    let agree = corpus.messages[..sample]
        .iter()
        .all(|(m, d)| index.matches(m, d) == naive.matches(m, d));
    let naive_figures = figures(&mut naive_times, naive_found);
    let speedup = indexed["messages_per_s"].as_f64().unwrap_or(0.0)
        / naive_figures["messages_per_s"].as_f64().unwrap_or(f64::MAX);
    Ok(json!({
        "population": source,
        "users": users,
        "filters_per_user": filters_per_user,
        "filters": index.len(),
        "scan_filters": index.scan_len(),
        "corpus_messages": corpus.messages.len(),
        "index_build_ms": build.as_secs_f64() * 1e3,
        "index_build_cpu_ms": build_cpu_ns as f64 / 1e6,
        "indexed": indexed,
        "naive": naive_figures,
        "speedup": speedup,
        "agree_on_naive_sample": agree,
        "peak_rss_mb_index": peak_index,
        "peak_rss_mb_with_naive": peak_rss_mb(),
    }))
}
