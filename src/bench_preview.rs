//! `tidings bench preview`: how long a filter preview takes (issue 11: "in the last 7 days
//! this filter would have sent you N notifications", under a second for a busy week). It
//! archives `messages` corpus messages (the corpus replayed with fresh ids; Fedora's bus
//! carries roughly 100,000 a week) into a fresh SQLite store (or the database given), then
//! previews four conditions `rounds` times each, as the web page does
//! (`tidings_web::preview`: the window on the `received_at` index, the archive read in id
//! ranges two at a time, every message evaluated, all matches counted, the newest listed):
//!
//! - `me`: `usernames has $me` for the corpus's most frequent username (typical);
//! - `broad`: every message matches (the most listed and counted);
//! - `body`: a body test on every message (`body.release >= 40`: no anchor);
//! - `none`: matches nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use tidings_rules::{Condition, Message};
use tidings_store::{Arrival, Store};

use crate::bench_match;

/// What to measure.
pub struct Options {
    /// Messages to archive.
    pub messages: usize,
    /// Previews timed per condition.
    pub rounds: usize,
    /// The corpus.
    pub corpus: PathBuf,
    /// The database to fill; default: a fresh SQLite file.
    pub database_url: Option<String>,
}

/// Messages archived per transaction while filling.
const BATCH: usize = 500;

/// Runs the benchmark and returns its JSON report.
pub async fn run(options: Options) -> anyhow::Result<Value> {
    let corpus = bench_match::load(&options.corpus)?;
    let dir = tempfile::tempdir().context("a temporary folder")?;
    let url = options.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}/bench-preview.db?mode=rwc",
            dir.path().display()
        )
    });
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening {}", tidings_store::redact(&url)))?;

    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (_, metadata) in &corpus.messages {
        for name in &metadata.usernames {
            *counts.entry(name.as_str()).or_default() += 1;
        }
    }
    let me = counts
        .iter()
        .max_by_key(|(name, n)| (**n, std::cmp::Reverse(**name)))
        .map(|(name, _)| name.to_string())
        .unwrap_or_else(|| "bench".into());

    let started = Instant::now();
    let run_id = tidings_store::secret::new_token()[..8].to_string();
    let mut filled = 0;
    while filled < options.messages {
        let count = BATCH.min(options.messages - filled);
        let messages: Vec<(Message, &tidings_rules::Metadata)> = (filled..filled + count)
            .map(|i| {
                let (message, metadata) = &corpus.messages[i % corpus.messages.len()];
                let mut message = message.clone();
                message.id = format!("bench-preview-{run_id}-{i}-{}", message.id);
                (message, metadata)
            })
            .collect();
        let arrivals: Vec<Arrival<'_>> = messages
            .iter()
            .map(|(message, metadata)| Arrival::Message {
                message,
                metadata,
                source: "bench",
            })
            .collect();
        store.archive(&arrivals).await?;
        filled += count;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let variables = store
        .variables_for_username(&me)
        .await
        .unwrap_or_else(|_| tidings_rules::Variables::for_user(me.clone()));

    let mut report = json!({
        "messages_archived": options.messages,
        "fill_s": round(fill_s),
        "rounds": options.rounds,
        "database": options.database_url.as_deref().map(tidings_store::redact)
            .unwrap_or_else(|| "sqlite (temp file)".into()),
        "me": me,
        "window_days": tidings_web::PREVIEW_WINDOW_MS / 86_400_000,
        "listed_at_most": tidings_web::PREVIEW_LISTED,
    });
    for (name, condition) in [
        ("me", "usernames has $me"),
        ("broad", r#"topic ~ "**""#),
        ("body", "body.release >= 40"),
        ("none", r#"topic == "org.example.never.published""#),
    ] {
        let condition_value = Condition::parse(condition).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut times = Vec::with_capacity(options.rounds);
        let mut last = None;
        for _ in 0..options.rounds.max(1) {
            let start = Instant::now();
            let found = tidings_web::preview(
                &store,
                condition_value.clone(),
                variables.clone(),
                tidings_store::now_ms(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("previewing: {e}"))?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            last = Some(found);
        }
        let found = last.context("no round ran")?;
        report[name] = json!({
            "condition": condition,
            "count": found.count,
            "scanned": found.scanned,
            "listed": found.latest.len(),
            "preview_ms": stats(&mut times),
        });
    }
    store.close().await;
    Ok(report)
}

/// Median, fastest and slowest of some times (ms).
fn stats(times: &mut [f64]) -> Value {
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    json!({
        "median": round(median),
        "min": round(times.first().copied().unwrap_or_default()),
        "max": round(times.last().copied().unwrap_or_default()),
    })
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
