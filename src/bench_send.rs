//! `tidings bench send`: how fast the real sender drains a full outbox. It fills a fresh
//! SQLite store (or the database given) with `rows` notifications spread over
//! `destinations` confirmed destinations, then runs the sender against (a) the local
//! mailbox folder and, when `--smtp host:port` is given, (b) that SMTP server, timing each
//! drain from the first claim to the last recorded outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tidings_notifier::sender::{self, Channels};
use tidings_notifier::{EmailConfig, Metrics, SenderConfig};
use tidings_rules::{Message, Metadata};
use tidings_store::{ChannelKind, NewDestination, Notification, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What to measure.
pub struct Options {
    /// Outbox rows to fill and drain.
    pub rows: usize,
    /// Destinations they are spread over.
    pub destinations: usize,
    /// The sender's concurrency.
    pub concurrency: usize,
    /// A local SMTP server (`host:port`) to send to as well.
    pub smtp: Option<String>,
    /// The database to fill; default: a fresh SQLite file per drain.
    pub database_url: Option<String>,
}

/// Runs the benchmark and returns its JSON report.
pub async fn run(options: Options) -> anyhow::Result<Value> {
    let mut report = json!({
        "rows": options.rows,
        "destinations": options.destinations,
        "concurrency": options.concurrency,
        "database": options.database_url.as_deref().map(tidings_store::redact).unwrap_or_else(|| "sqlite (temp file)".into()),
    });
    let tmp = tempfile::tempdir().context("creating a temp folder")?;
    let mailbox = EmailConfig {
        mailbox_dir: Some(tmp.path().join("mailbox")),
        ..EmailConfig::default()
    };
    report["mailbox"] = drain(&options, &tmp, "mailbox", &mailbox).await?;
    // What the file system allows one thread, measured after the drain: the mailbox
    // channel cannot be faster.
    report["mailbox"]["folder_files_per_s_one_thread"] = json!(round(
        crate::bench_e2e::file_creation_rate(&mailbox.mailbox(), 20_000)?
    ));
    if let Some(server) = &options.smtp {
        let smtp = EmailConfig {
            smtp_url: Some(format!("smtp://{server}")),
            max_connections: u32::try_from(options.concurrency).unwrap_or(u32::MAX),
            ..EmailConfig::default()
        };
        report["smtp"] = drain(&options, &tmp, "smtp", &smtp).await?;
    }
    Ok(report)
}

/// Fills a store and drains it through `email`.
async fn drain(
    options: &Options,
    tmp: &tempfile::TempDir,
    name: &str,
    email: &EmailConfig,
) -> anyhow::Result<Value> {
    let url = match &options.database_url {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}?mode=rwc",
            tmp.path().join(format!("{name}.db")).display()
        ),
    };
    let store = Store::open(&url)
        .await
        .with_context(|| format!("opening {}", tidings_store::redact(&url)))?;
    let started = Instant::now();
    let already = store.outbox_counts().await?.2;
    fill(&store, options, name).await?;
    let filled = started.elapsed();

    let config = SenderConfig {
        concurrency: Some(options.concurrency),
        ..SenderConfig::default()
    };
    let channels = Channels::from_config(email, "http://127.0.0.1:8080")?;
    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(sender::run(
        store.clone(),
        config,
        channels,
        metrics.clone(),
        Arc::new(Notify::new()),
        Duration::from_secs(1),
        shutdown.clone(),
    ));
    // The sender's counters say when every send is done (counting the outbox each time
    // would load the database the sender is using); the outbox then says when every
    // outcome is recorded.
    let target = already + options.rows as i64;
    let finished = || metrics.sent.get() + metrics.dead.get();
    while finished() < options.rows as u64 && !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (mut sent, mut dead) = (0, 0);
    while sent + dead < target && !running.is_finished() {
        let counts = store.outbox_counts().await?;
        (sent, dead) = (counts.2, counts.3);
        if sent + dead < target {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    running.await.context("the sender panicked")??;
    store.close().await;
    let done = (sent - already).max(0);
    Ok(json!({
        "fill_secs": round(filled.as_secs_f64()),
        "elapsed_secs": round(elapsed.as_secs_f64()),
        "sent": done,
        "dead": dead,
        "rate_per_sec": round(done as f64 / elapsed.as_secs_f64().max(1e-9)),
        "leases_lost": metrics.leases_lost.get(),
    }))
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A new user `name` with one confirmed email destination `address`: (user id,
/// destination id). Benchmarks skip the confirmation mail.
pub(crate) async fn confirmed_user(
    store: &Store,
    name: &str,
    address: &str,
) -> anyhow::Result<(i64, i64)> {
    confirmed_user_on(store, name, ChannelKind::Email, address).await
}

/// A new user with one confirmed destination of `channel` at `address`; (user id,
/// destination id).
pub(crate) async fn confirmed_user_on(
    store: &Store,
    name: &str,
    channel: ChannelKind,
    address: &str,
) -> anyhow::Result<(i64, i64)> {
    let user = store.create_user(name, None, false).await?;
    let destination = store
        .add_destination(NewDestination {
            user_id: user.id,
            channel,
            address,
            confirmed: true,
        })
        .await?;
    Ok((user.id, destination.id))
}

/// Queues `rows` notifications, one message per round of destinations.
async fn fill(store: &Store, options: &Options, name: &str) -> anyhow::Result<()> {
    let destinations = options.destinations.max(1);
    let mut ids = Vec::with_capacity(destinations);
    let run = tidings_store::now_ms();
    for d in 0..destinations {
        let (_, destination) = confirmed_user(
            store,
            &format!("b{run}{name}{d}"),
            &format!("bench{d}@example.org"),
        )
        .await?;
        ids.push(destination);
    }
    let mut queued = 0;
    let mut n = 0;
    while queued < options.rows {
        let message = Message::new(
            format!("bench-{run}-{name}-{n}"),
            "org.fedoraproject.prod.bench.send",
            json!({"n": n}),
        );
        let metadata = Metadata {
            summary: format!("bench message {n}"),
            ..Metadata::default()
        };
        n += 1;
        let Some(id) = store.insert_message(&message, &metadata, "bench").await? else {
            continue;
        };
        let take = (options.rows - queued).min(ids.len());
        let notifications: Vec<Notification> = ids[..take]
            .iter()
            .map(|&destination_id| Notification {
                destination_id,
                filters: vec![(1, "bench".into())],
                digest: None,
            })
            .collect();
        store.complete_message(id, &notifications).await?;
        queued += take;
    }
    Ok(())
}
