//! `tidings bench e2e --flood-max N`: a mass rebuild against flood limits (issue 10). Every
//! package owner's destination keeps a flood limit of N immediate notifications per window
//! (`--flood-window-minutes`, short so that the summaries go out within the run). The burst
//! is `--messages` Koji build messages over `--flood-packages` packages, each package owned
//! by `--owners / --flood-packages` people: each message matches that many people and each
//! person gets `--messages / --flood-packages` notifications, far past the limit.
//!
//! What is checked, from the store's tables once everything is sent (and from the mailbox
//! folder): no destination got more than N notifications at once in any of its windows
//! (windows rebuilt from when each was queued, as the planner counts them); every matched
//! (message, destination) pair was sent, at once or with a digest that was sent; nothing
//! is left pending, collected or dead. The times: from the first publish until every
//! immediate notification was sent, and until every summary was (those wait for the
//! window's end).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tidings_notifier::matcher::Matcher;
use tidings_notifier::{roles, Metrics};
use tidings_rules::{Condition, Envelope};
use tidings_store::{
    ChannelKind, Delivery, DeliveryPolicy, FilterInput, ImportMode, OwnershipData, PackageOwners,
    StoredMessage,
};
use tokio_util::sync::CancellationToken;

use crate::bench_e2e::{E2eArgs, Publisher, CLASSIC};
use crate::config::Config;
use crate::serve;

/// Build message `i` of the mass rebuild: the corpus's first Koji build state change, for
/// package `flood-pkg-<i % packages>`, under the fresh id `flood-<i>`.
fn rebuild(template: &Value, i: usize, packages: usize) -> Value {
    let mut envelope = template.clone();
    envelope["msg_id"] = json!(format!("flood-{i}"));
    envelope["msg"]["name"] = json!(format!("flood-pkg-{}", i % packages));
    envelope["msg"]["build_id"] = json!(i);
    envelope["msg"]["task_id"] = json!(i);
    envelope
}

/// Runs the flood scenario on a prepared config (see [`crate::bench_e2e::run`]).
pub(crate) async fn flood(
    config: &Config,
    args: &E2eArgs,
    endpoint: &str,
) -> anyhow::Result<Value> {
    if args.channel != crate::bench_e2e::BenchChannel::Email {
        bail!("the flood scenario sends mail (webhooks are never collected into summaries)");
    }
    let packages = args.flood_packages.max(1);
    let window_ms = i64::from(args.flood_window_minutes) * 60_000;
    let policy = DeliveryPolicy::Immediate {
        flood_max: args.flood_max,
        flood_window_minutes: args.flood_window_minutes,
    };
    let store = serve::open_store(config).await?;
    if store.message_counts().await? != (0, 0) {
        bail!("the bench needs an empty database; this one has messages");
    }
    let corpus = crate::bench_e2e::load(&args.corpus)?;
    let template = corpus
        .iter()
        .find(|e| {
            e["topic"]
                .as_str()
                .is_some_and(|t| t.ends_with("buildsys.build.state.change"))
        })
        .cloned()
        .context("the corpus has no Koji build state change to rebuild with")?;

    // The owners: FMN's classic defaults, one package each, the flood limit on their mail.
    let setup = Instant::now();
    let classic: Vec<Condition> = CLASSIC
        .iter()
        .map(|c| Condition::parse(c).map_err(|e| anyhow::anyhow!("{c}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let mut owned: BTreeMap<String, PackageOwners> = BTreeMap::new();
    let mut addresses: HashMap<String, i64> = HashMap::new();
    for u in 0..args.owners {
        let name = format!("owner{u}");
        let address = format!("{name}@bench.example.org");
        let (user_id, destination) =
            crate::bench_send::confirmed_user_on(&store, &name, ChannelKind::Email, &address)
                .await?;
        store.set_delivery(user_id, destination, &policy).await?;
        for (n, condition) in classic.iter().enumerate() {
            store
                .create_filter(
                    user_id,
                    &FilterInput {
                        name: format!("default {n}"),
                        condition: condition.clone(),
                        destination_ids: vec![destination],
                        delivery: Delivery::Instant,
                        enabled: true,
                    },
                )
                .await?;
        }
        owned
            .entry(format!("flood-pkg-{}", u % packages))
            .or_default()
            .users
            .insert(name);
        addresses.insert(address, destination);
    }
    store
        .import_ownership(
            &OwnershipData {
                groups: BTreeMap::new(),
                packages: owned,
            },
            ImportMode::Replace,
        )
        .await?;
    let setup_s = setup.elapsed().as_secs_f64();

    // What the burst must cause, by the match index.
    let derive = serve::derive(config);
    let metrics = Arc::new(Metrics::default());
    let oracle = Matcher::load(&store, metrics.clone()).await?;
    let mut expected = 0usize;
    for i in 0..args.messages {
        let e = Envelope::from_value(rebuild(&template, i, packages))
            .map_err(|e| anyhow::anyhow!("the rebuild message does not decode: {e}"))?;
        let metadata = derive(&e.message);
        expected += oracle
            .notifications(&StoredMessage {
                id: 0,
                message: e.message,
                metadata,
                source: String::new(),
                received_at: 0,
            })
            .len();
    }
    drop(oracle);

    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(roles::notifier(
        store.clone(),
        serve::notifier_settings(config, &metrics, derive.clone())?,
        shutdown.clone(),
    ));
    tasks.spawn(roles::sender(
        store.clone(),
        serve::sender_settings(config, &metrics)?,
        shutdown.clone(),
    ));

    let publisher = Publisher::bind(endpoint, Duration::from_secs(30))?;
    let count = args.messages;
    let started = Instant::now();
    let start_ms = tidings_store::now_ms();
    let published = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
        for i in 0..count {
            publisher.send(&rebuild(&template, i, packages))?;
        }
        let took = started.elapsed().as_secs_f64();
        // Linger: the socket flushes before it is dropped.
        drop(publisher);
        Ok(took)
    });

    // Watch until everything is matched and nothing is left to send.
    let limit = Duration::from_secs(args.timeout_secs);
    let messages = args.messages as i64;
    let (mut ingested, mut matched, mut finished) = (None, None, None);
    let mut polls = 0u64;
    loop {
        let now = started.elapsed().as_secs_f64();
        if ingested.is_none()
            && store.last_message_id().await? >= messages
            && store.message_counts().await?.0 >= messages
        {
            ingested = Some(now);
        }
        let backlog = store.backlog().await?;
        if backlog.dead {
            shutdown.cancel();
            bail!("some notifications are dead");
        }
        if ingested.is_some() && matched.is_none() && !backlog.unmatched {
            matched = Some(now);
        }
        // A full count every half second: the outbox is a few hundred thousand rows.
        if matched.is_some() && polls % 10 == 0 {
            let tally = store.outbox_tally().await?;
            let open = tally
                .iter()
                .filter(|(_, status, ..)| status != "sent" && status != "dead")
                .map(|(.., n, _, _)| n)
                .sum::<i64>();
            if open == 0 {
                finished = Some(now);
                break;
            }
        }
        if started.elapsed() > limit {
            break;
        }
        polls += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let publish_s = published.await.context("publisher thread")??;
    shutdown.cancel();
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(err)) = ended {
            tracing::error!(error = %err, "a role stopped with an error");
        }
    }

    // The counts, from the tables.
    let tally = store.outbox_tally().await?;
    let pick = |kind: &str, status: &str, claimed: Option<bool>| {
        tally
            .iter()
            .filter(|(k, s, c, ..)| k == kind && s == status && claimed.is_none_or(|x| x == *c))
            .fold((0i64, None::<i64>, None::<i64>), |(n, first, last), r| {
                (
                    n + r.3,
                    match (first, r.4) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    },
                    last.max(r.5),
                )
            })
    };
    let (at_once, first_at_once, last_at_once) = pick("notification", "sent", Some(true));
    let (digested, _, _) = pick("notification", "sent", Some(false));
    let (summaries, first_summary, last_summary) = pick("digest", "sent", None);
    let (summaries_dead, ..) = pick("digest", "dead", None);
    let left: i64 = tally
        .iter()
        .filter(|(_, s, ..)| s != "sent")
        .map(|r| r.3)
        .sum();
    let notification_rows: i64 = tally
        .iter()
        .filter(|(k, ..)| k == "notification")
        .map(|r| r.3)
        .sum();
    let by_status: BTreeMap<String, i64> =
        tally
            .iter()
            .fold(BTreeMap::new(), |mut m, (k, s, c, n, ..)| {
                let key = match (k.as_str(), s.as_str(), *c) {
                    ("notification", "sent", true) => "notification sent at once".to_string(),
                    ("notification", "sent", false) => "notification sent in a summary".to_string(),
                    _ => format!("{k} {s}"),
                };
                *m.entry(key).or_default() += n;
                m
            });

    // The flood limit, per destination and window: windows rebuilt as the planner opens
    // them (one starts with the first notification after the last one ended).
    let mut windows = 0usize;
    let mut over = 0usize;
    let mut most = 0usize;
    let mut per_destination: HashMap<i64, (usize, usize)> = HashMap::new();
    let sent = store.sent_at_once().await?;
    let mut i = 0;
    while i < sent.len() {
        let destination = sent[i].0;
        let start = sent[i].1;
        let mut n = 0;
        while i < sent.len() && sent[i].0 == destination && sent[i].1 < start + window_ms {
            n += 1;
            i += 1;
        }
        windows += 1;
        most = most.max(n);
        if n > args.flood_max as usize {
            over += 1;
        }
        let entry = per_destination.entry(destination).or_default();
        entry.0 += 1;
        entry.1 += n;
    }
    store.close().await;

    // The mailbox, read back: mails per recipient, summaries apart.
    let mailbox = config.mailbox_dir();
    let (mut mails, mut summary_mails) = (0usize, 0usize);
    let mut immediate_mails: HashMap<String, usize> = HashMap::new();
    for entry in
        std::fs::read_dir(&mailbox).with_context(|| format!("reading {}", mailbox.display()))?
    {
        let path = entry?.path();
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let head = String::from_utf8_lossy(&text);
        let head = head.split("\r\n\r\n").next().unwrap_or_default();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        mails += 1;
        if header("Subject:").starts_with("Tidings: And ") {
            summary_mails += 1;
        } else {
            *immediate_mails.entry(header("To:")).or_default() += 1;
        }
    }
    // Each recipient's immediate mails against its limit times its windows.
    let mailbox_over = immediate_mails
        .iter()
        .filter(|(to, n)| {
            let windows = addresses
                .iter()
                .find(|(a, _)| to.contains(a.as_str()))
                .and_then(|(_, d)| per_destination.get(d))
                .map_or(1, |w| w.0);
            **n > windows * args.flood_max as usize
        })
        .count();

    let complete = finished.is_some();
    let rel = |at: Option<i64>| at.map(|t| (t - start_ms) as f64 / 1000.0);
    let nothing_lost = complete
        && left == 0
        && notification_rows == expected as i64
        && at_once + digested == expected as i64;
    let within_limits = over == 0 && mailbox_over == 0;
    let backend = match config.database_url().starts_with("sqlite:") {
        true => "sqlite",
        false => "postgres",
    };
    Ok(json!({
        "scenario": "flood",
        "backend": backend,
        "channel": match config.email().smtp_url.is_some() {
            true => "smtp",
            false => "mailbox folder",
        },
        "sender_concurrency": config
            .sender
            .concurrency
            .unwrap_or_else(|| tidings_notifier::email::parallelism(config.email())),
        "owners": args.owners,
        "packages": packages,
        "flood_max": args.flood_max,
        "flood_window_minutes": args.flood_window_minutes,
        "messages": args.messages,
        "setup_s": setup_s,
        "publish_s": publish_s,
        "notifications_expected": expected,
        "complete": complete,
        "ingest_s": ingested,
        "match_s": matched,
        "finished_s": finished,
        "sent_at_once": at_once,
        "sent_in_summaries": digested,
        "summaries_sent": summaries,
        "summaries_dead": summaries_dead,
        "rows_left_unsent": left,
        "outbox": by_status,
        "first_immediate_sent_s": rel(first_at_once),
        "all_immediate_sent_s": rel(last_at_once),
        "first_summary_sent_s": rel(first_summary),
        "all_summaries_sent_s": rel(last_summary),
        "flood_windows": windows,
        "most_at_once_in_a_window": most,
        "windows_over_limit": over,
        "mailbox_files": mails,
        "mailbox_summaries": summary_mails,
        "mailbox_recipients_over_limit": mailbox_over,
        "within_flood_limits": within_limits,
        "nothing_lost": nothing_lost,
        "peak_rss_mb": crate::bench_match::peak_rss_mb(),
    }))
}
