//! The shipped catalog against the fedmsg-meta corpus: per field, the share of messages whose
//! derived value equals what Fedora's fedmsg_meta derived. The recorded shares are floors:
//! the test fails if a change to the engine or catalog makes any of them worse (issue 5).
//!
//! `TIDINGS_CORPUS_MISMATCHES=1 cargo test -p tidings-rules corpus -- --nocapture` prints
//! every mismatch, for catalog work.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Catalog, Metadata};
use crate::Envelope;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/fedmsg-meta/messages.jsonl"
);

/// Floors, in percent, as recorded in docs/schemas.md.
const FLOORS: [(&str, f64); 4] = [
    ("usernames", 95.5),
    ("packages", 96.4),
    ("link", 92.4),
    ("summary", 83.9),
];

/// (field, matched, counted) per field.
pub(super) fn score(
    catalog: &Catalog,
    text: &str,
    verbose: bool,
) -> Vec<(&'static str, usize, usize)> {
    let mut tally = [
        ("usernames", 0, 0),
        ("packages", 0, 0),
        ("link", 0, 0),
        ("summary", 0, 0),
    ];
    for (n, line) in text.lines().enumerate() {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Ok(envelope) = Envelope::from_value(record["message"].clone()) else {
            continue;
        };
        let meta = catalog.derive(&envelope.message);
        let expected = &record["expected"];
        for (field, matched, counted) in tally.iter_mut() {
            let key = match *field {
                "link" => "link",
                "summary" => "subti",
                other => other,
            };
            let Some(want) = expected.get(key) else {
                continue;
            };
            *counted += 1;
            let (ok, got) = compare(field, want, &meta);
            if ok {
                *matched += 1;
            } else if verbose {
                println!(
                    "line {} {} {field}: want {want} got {got}",
                    n + 1,
                    meta.topic
                );
            }
        }
    }
    tally.to_vec()
}

fn compare(field: &str, want: &Value, meta: &Metadata) -> (bool, String) {
    let as_set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match field {
        "usernames" => (
            as_set(want) == meta.usernames,
            format!("{:?}", meta.usernames),
        ),
        "packages" => (
            as_set(want) == meta.packages,
            format!("{:?}", meta.packages),
        ),
        "link" => {
            let want = want.as_str().filter(|s| !s.is_empty());
            (want == meta.url.as_deref(), format!("{:?}", meta.url))
        }
        _ => (
            want.as_str() == Some(meta.summary.as_str()),
            format!("{:?}", meta.summary),
        ),
    }
}

#[test]
fn corpus_accuracy_does_not_regress() {
    let text = std::fs::read_to_string(CORPUS)
        .unwrap_or_else(|e| panic!("the corpus must be at {CORPUS} (see corpus/README.md): {e}"));
    let verbose = std::env::var_os("TIDINGS_CORPUS_MISMATCHES").is_some();
    let tally = score(&Catalog::shipped(), &text, verbose);
    println!("| field | matched | counted | share |");
    println!("|---|---:|---:|---:|");
    for (field, matched, counted) in &tally {
        let share = 100.0 * *matched as f64 / (*counted).max(1) as f64;
        println!("| {field} | {matched} | {counted} | {share:.1}% |");
    }
    for ((field, matched, counted), (_, floor)) in tally.iter().zip(FLOORS) {
        let share = 100.0 * *matched as f64 / (*counted).max(1) as f64;
        assert!(
            share >= floor,
            "{field}: {share:.1}% is below the recorded {floor}%"
        );
    }
}
