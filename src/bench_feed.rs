//! `tidings bench feed`: how long one filter's Atom feed takes to build (issue 10). It
//! archives `messages` corpus messages (the corpus replayed with fresh ids) into a fresh
//! SQLite store (or the database given), then builds the feed of three filters `rounds`
//! times each, as a request without `If-None-Match` does (`tidings_web::build_feed`: the
//! token check, the filter, its owner's variables, the archive scan, the XML):
//!
//! - `broad`: matches every message, so the scan stops after 50 entries (the cheapest);
//! - `me`: `usernames has $me` for the corpus's most frequent username (typical);
//! - `none`: matches nothing, so all 5,000 newest messages are read and evaluated (the
//!   most one feed can cost).
//!
//! It also times the check a poll with a matching `If-None-Match` costs
//! (`Store::feed_head`: one query, then the 304).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use tidings_rules::{Condition, Message};
use tidings_store::{Arrival, Delivery, FilterInput, Store};

use crate::bench_match;

/// What to measure.
pub struct Options {
    /// Messages to archive.
    pub messages: usize,
    /// Builds timed per filter.
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
    let url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/bench-feed.db?mode=rwc", dir.path().display()));
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening {}", tidings_store::redact(&url)))?;

    // The most frequent username in the corpus is the user whose `$me` is tested.
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
                message.id = format!("bench-feed-{run_id}-{i}-{}", message.id);
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

    let user = match store.user_by_name(&me).await? {
        Some(user) => user,
        None => store.create_user(&me, None, false).await?,
    };
    let base_url = "http://127.0.0.1:8080";
    let mut report = json!({
        "messages_archived": options.messages,
        "fill_s": round(fill_s),
        "rounds": options.rounds,
        "database": options.database_url.as_deref().map(tidings_store::redact)
            .unwrap_or_else(|| "sqlite (temp file)".into()),
        "me": me,
        "bounds": {
            "entries": tidings_web::FEED_ENTRIES,
            "scan": tidings_web::FEED_SCAN,
            "window_days": tidings_web::FEED_WINDOW_MS / 86_400_000,
        },
    });
    for (name, condition) in [
        ("broad", r#"topic ~ "**""#),
        ("me", "usernames has $me"),
        ("none", r#"topic == "org.example.never.published""#),
    ] {
        let input = FilterInput {
            name: format!("bench-{name}-{run_id}"),
            condition: Condition::parse(condition).map_err(|e| anyhow::anyhow!("{e}"))?,
            destination_ids: vec![],
            delivery: Delivery::Instant,
            enabled: true,
        };
        let filter = store.create_filter(user.id, &input).await?;
        let token = store.feed_token(user.id, filter.id).await?;
        let mut times = Vec::with_capacity(options.rounds);
        let mut last = None;
        for _ in 0..options.rounds.max(1) {
            let start = Instant::now();
            let feed = tidings_web::build_feed(&store, base_url, &token)
                .await
                .map_err(|e| anyhow::anyhow!("building the feed: {e}"))?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            last = Some(feed);
        }
        let mut polls = Vec::with_capacity(options.rounds);
        for _ in 0..options.rounds.max(1) {
            let start = Instant::now();
            store.feed_head(&token).await?;
            polls.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let feed = last.context("no round ran")?;
        report[name] = json!({
            "condition": condition,
            "entries": feed.entries,
            "scanned": feed.scanned,
            "bytes": feed.xml.len(),
            "build_ms": stats(&mut times),
            "not_modified_check_ms": stats(&mut polls),
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
