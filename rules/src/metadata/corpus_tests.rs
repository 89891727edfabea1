//! The shipped catalog against both corpora: per field, the share of messages whose derived
//! value equals what Fedora's own code derived — fedmsg_meta for the fedmsg corpus, the
//! apps' schema packages for the fedora-messaging corpus. The recorded shares are floors:
//! the test fails if a change to the engine or catalog makes any of them worse (issues 5
//! and 13).
//!
//! `TIDINGS_CORPUS_MISMATCHES=1 cargo test -p tidings-rules corpus -- --nocapture` prints
//! every mismatch, for catalog work (`TIDINGS_CORPUS_FIELD=summary` narrows it to a field).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Catalog, Metadata};
use crate::Envelope;

const FEDMSG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/fedmsg-meta/messages.jsonl"
);
const FEDORA_MESSAGING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/fedora-messaging/messages.jsonl"
);

/// fedmsg corpus floors, in percent, as recorded in docs/schemas.md.
const FEDMSG_FLOORS: &[(&str, f64)] = &[
    ("usernames", 96.7),
    ("named", 97.3),
    ("packages", 99.6),
    ("link", 98.8),
    ("summary", 98.5),
];

/// fedora-messaging corpus floors, in percent, as recorded in docs/schemas.md (`text` is
/// the long text against `details`); `groups` and `severity` are reported.
const FEDORA_MESSAGING_FLOORS: &[(&str, f64)] = &[
    ("usernames", 100.0),
    ("packages", 100.0),
    ("url", 100.0),
    ("summary", 100.0),
    ("agent", 100.0),
    ("app", 100.0),
    ("text", 86.0),
];

/// Which corpus a record comes from: where its message is and what its fields are called.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Corpus {
    /// `{"message": envelope, "expected": {usernames, packages, link, subti}}`
    Fedmsg,
    /// `{"topic", "headers", "id", "body", "expected": {...}}`
    FedoraMessaging,
}

impl Corpus {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Corpus::Fedmsg => &["usernames", "named", "packages", "link", "summary"],
            Corpus::FedoraMessaging => &[
                "usernames",
                "packages",
                "url",
                "summary",
                "agent",
                "app",
                "groups",
                "severity",
                "text",
            ],
        }
    }

    fn message(self, record: &Value) -> Value {
        match self {
            Corpus::Fedmsg => record["message"].clone(),
            Corpus::FedoraMessaging => {
                let mut m = serde_json::Map::new();
                for key in ["topic", "headers", "id", "body"] {
                    if let Some(v) = record.get(key) {
                        m.insert(key.to_string(), v.clone());
                    }
                }
                Value::Object(m)
            }
        }
    }

    /// The expected value's key for a field.
    fn key(self, field: &str) -> &str {
        match (self, field) {
            (Corpus::Fedmsg, "summary") => "subti",
            (_, "named") => "usernames",
            _ => field,
        }
    }
}

/// (field, matched, counted) per field.
pub(super) fn score(
    catalog: &Catalog,
    corpus: Corpus,
    text: &str,
    verbose: Option<&str>,
) -> Vec<(&'static str, usize, usize)> {
    let mut tally: Vec<(&'static str, usize, usize)> =
        corpus.fields().iter().map(|f| (*f, 0, 0)).collect();
    for (n, line) in text.lines().enumerate() {
        let record = serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("corpus line {}: {e}", n + 1));
        let envelope = Envelope::from_value(corpus.message(&record))
            .unwrap_or_else(|e| panic!("corpus line {}: {e}", n + 1));
        let meta = catalog.derive(&envelope.message);
        let expected = &record["expected"];
        let errors = expected.get("errors");
        for (field, matched, counted) in tally.iter_mut() {
            let key = corpus.key(field);
            let Some(want) = expected.get(key) else {
                continue;
            };
            // A property that raised, and an app a schema does not name, are not counted.
            if errors.and_then(|e| e.get(key)).is_some() || (*field == "app" && want.is_null()) {
                continue;
            }
            *counted += 1;
            // The schema packages list other dist-git namespaces' packages apart
            // (`modules`, `containers`, `flatpaks`); Tidings names them `modules/php`
            // among the packages, as ownership does.
            let folded;
            let want = if corpus == Corpus::FedoraMessaging && *field == "packages" {
                let mut all: Vec<Value> = want.as_array().cloned().unwrap_or_default();
                for (key, namespace) in [
                    ("modules", "modules"),
                    ("containers", "container"),
                    ("flatpaks", "flatpaks"),
                ] {
                    for name in expected[key].as_array().into_iter().flatten() {
                        if let Some(name) = name.as_str() {
                            all.push(Value::String(format!("{namespace}/{name}")));
                        }
                    }
                }
                folded = Value::Array(all);
                &folded
            } else {
                want
            };
            let (ok, got) = compare(field, want, &meta);
            if ok {
                *matched += 1;
            } else if verbose.is_some_and(|v| v.is_empty() || v == *field) {
                println!(
                    "line {} {} {field}: want {want} got {got}",
                    n + 1,
                    meta.topic
                );
            }
        }
    }
    tally
}

fn compare(field: &str, want: &Value, meta: &Metadata) -> (bool, String) {
    // Lists are compared as sets; a `null` in them (a class's missing user) is nobody.
    let as_set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    match field {
        "usernames" => (
            as_set(want) == meta.usernames,
            format!("{:?}", meta.usernames),
        ),
        "packages" => (
            as_set(want) == meta.packages,
            format!("{:?}", meta.packages),
        ),
        // Everyone the reference names is named (Tidings adds the ticket's or pull request's
        // author and the people a comment mentions, where fedmsg_meta named the agent only).
        "named" => (
            as_set(want).is_subset(&meta.usernames),
            format!("{:?}", meta.usernames),
        ),
        "groups" => (as_set(want) == meta.groups, format!("{:?}", meta.groups)),
        "link" | "url" => (text(want) == meta.url, format!("{:?}", meta.url)),
        "agent" => (text(want) == meta.agent, format!("{:?}", meta.agent)),
        "app" => (
            text(want).map(|a| a.to_lowercase()) == meta.app.as_ref().map(|a| a.to_lowercase()),
            format!("{:?}", meta.app),
        ),
        "severity" => {
            let got = match meta.severity {
                super::Severity::Debug => 10,
                super::Severity::Info => 20,
                super::Severity::Warning => 30,
                super::Severity::Error => 40,
            };
            (want.as_i64() == Some(got), got.to_string())
        }
        "text" => (
            text(want).map(|t| t.trim().to_string())
                == meta.details.as_ref().map(|d| d.trim().to_string()),
            format!("{:?}", meta.details),
        ),
        _ => (
            want.as_str() == Some(meta.summary.as_str()),
            format!("{:?}", meta.summary),
        ),
    }
}

fn check(corpus: Corpus, path: &str, floors: &[(&str, f64)]) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the corpus must be at {path} (see corpus/README.md): {e}"));
    let verbose = std::env::var_os("TIDINGS_CORPUS_MISMATCHES")
        .map(|_| std::env::var("TIDINGS_CORPUS_FIELD").unwrap_or_default());
    let tally = score(&Catalog::shipped(), corpus, &text, verbose.as_deref());
    println!("{path}");
    println!("| field | matched | counted | share |");
    println!("|---|---:|---:|---:|");
    let share = |matched: usize, counted: usize| 100.0 * matched as f64 / counted.max(1) as f64;
    for (field, matched, counted) in &tally {
        println!(
            "| {field} | {matched} | {counted} | {:.1}% |",
            share(*matched, *counted)
        );
    }
    for (field, floor) in floors {
        let (_, matched, counted) = tally
            .iter()
            .find(|(f, _, _)| f == field)
            .unwrap_or_else(|| panic!("no field {field}"));
        let share = share(*matched, *counted);
        assert!(
            share >= *floor,
            "{field}: {share:.1}% is below the recorded {floor}%"
        );
    }
}

#[test]
fn fedmsg_corpus_accuracy_does_not_regress() {
    check(Corpus::Fedmsg, FEDMSG, FEDMSG_FLOORS);
}

#[test]
fn fedora_messaging_corpus_accuracy_does_not_regress() {
    check(
        Corpus::FedoraMessaging,
        FEDORA_MESSAGING,
        FEDORA_MESSAGING_FLOORS,
    );
}
