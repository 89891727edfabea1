//! Issue 12, operations: every process serves `/metrics` with its histograms and gauges,
//! and a process told to stop (SIGTERM) finishes what it has in hand and gives the rest
//! back: the notifier archives and acknowledges the batch it holds and returns what the
//! broker delivered ahead to the queue; the sender finishes its sends in flight and records
//! them, so that nothing it sent is sent again by whoever comes next.

use std::collections::HashSet;
use std::time::Duration;

use tidings_rules::Message;

use crate::support::{envelope, http_get, message_id, wait_for, Broker, Hub, PgDatabase, Smtp};

/// `count` messages about alice (her `fedora_messaging_user_*` header), ids `{prefix}-n`.
fn about_alice(prefix: &str, count: usize) -> Vec<Message> {
    (0..count)
        .map(|n| {
            let mut message = Message::new(
                format!("{prefix}-{n}"),
                "org.fedoraproject.prod.tidings.test.numbered",
                serde_json::json!({"n": n}),
            );
            message.sent_at = Some(tidings_store::now_ms());
            message.headers.insert(
                "fedora_messaging_user_alice".into(),
                serde_json::json!(true),
            );
            message
        })
        .collect()
}

fn publish(broker: &Broker, messages: &[Message]) {
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(tidings_notifier::bus::amqp::publish(
            &broker.url,
            &broker.exchange,
            messages,
        ))
        .expect("publishing");
}

/// The value of the series `key` (a name with its labels, as printed) in `text`.
fn series(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == key).then(|| value.parse().ok())?
    })
}

/// Waits until `/metrics` on `port` has `key` at `want`.
fn wait_series(port: u16, key: &str, want: f64) -> String {
    wait_for(
        &format!("{key} to be {want} on :{port}"),
        Duration::from_secs(30),
        || {
            let text = http_get(port, "/metrics")?;
            (series(&text, key) == Some(want)).then_some(text)
        },
    )
}

/// A notifier process and a sender process on PostgreSQL, each with its own `/metrics`:
/// the notifier's shows ingest lag, matches per message, the AMQP queue's depth and the
/// outbox waiting for a sender; the sender's shows delivery latency by channel and the
/// outbox drained.
#[test]
fn every_process_serves_histograms_and_gauges() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let broker = Broker::start("metrics");
    let mut hub = Hub::new(Some(&smtp), Some(&db.url));
    broker.configure(&mut hub);
    hub.run(&["migrate"]);
    hub.user_with_filter("alice", "alice@example.org", "usernames has $me");
    let notifier = hub.spawn_role("notifier", "notifier", &[]);
    notifier.wait_log("its AMQP consumer", &["AMQP consumer connected"]);
    const COUNT: usize = 20;
    publish(&broker, &about_alice("metrics", COUNT));

    // No sender yet: the notifications wait in the outbox, and every process says so.
    let text = wait_series(
        notifier.metrics_port,
        r#"tidings_outbox_rows{state="pending"}"#,
        COUNT as f64,
    );
    for (key, want) in [
        ("tidings_messages_ingested_total", COUNT as f64),
        ("tidings_ingest_lag_seconds_count", COUNT as f64),
        ("tidings_matches_per_message_count", COUNT as f64),
        ("tidings_matches_per_message_sum", COUNT as f64),
        ("tidings_matcher_backlog_messages", 0.0),
        (r#"tidings_outbox_rows{state="dead"}"#, 0.0),
    ] {
        assert_eq!(series(&text, key), Some(want), "{key} in\n{text}");
    }
    // Histograms come with their buckets: every lag here is under a minute.
    assert!(
        text.contains("tidings_ingest_lag_seconds_bucket{le=\"81.92\"} 20"),
        "{text}"
    );
    // Read on a connection of its own every few seconds: the queue is empty.
    wait_series(notifier.metrics_port, "tidings_amqp_queue_messages", 0.0);

    let sender = hub.spawn_role("sender", "sender", &[]);
    smtp.wait_count(COUNT, Duration::from_secs(60));
    let text = wait_series(
        sender.metrics_port,
        r#"tidings_outbox_rows{state="pending"}"#,
        0.0,
    );
    for (key, want) in [
        ("tidings_notifications_sent_total", COUNT as f64),
        (
            r#"tidings_delivery_latency_seconds_count{channel="email"}"#,
            COUNT as f64,
        ),
        // Not a consumer: no queue to read.
        ("tidings_amqp_queue_messages", -1.0),
        ("tidings_messages_ingested_total", 0.0),
    ] {
        assert_eq!(series(&text, key), Some(want), "{key} in\n{text}");
    }
    wait_series(
        notifier.metrics_port,
        r#"tidings_outbox_rows{state="pending"}"#,
        0.0,
    );
}

/// SIGTERM mid-burst: the hub exits cleanly within seconds; what it archived it had
/// acknowledged, and everything else is back in the queue (archived + waiting = published,
/// exactly). Started again, it archives the rest, none of it twice.
#[test]
fn a_terminated_notifier_returns_what_it_has_not_archived_to_the_queue() {
    let broker = Broker::start("terminate");
    let mut hub = Hub::new(None, None);
    // Declares the queue, then stops: the burst waits in it.
    broker.start_hub(&mut hub);
    let (status, _) = hub.terminate(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "{}", hub.log());
    const COUNT: usize = 20_000;
    let messages: Vec<Message> = (0..COUNT)
        .map(|n| {
            Message::new(
                format!("burst-{n}"),
                "org.fedoraproject.prod.tidings.test.burst",
                serde_json::json!({"n": n}),
            )
        })
        .collect();
    publish(&broker, &messages);
    assert_eq!(broker.waiting(&broker.queue) as usize, COUNT);

    hub.start();
    wait_for(
        "the hub to archive some of the burst",
        Duration::from_secs(60),
        || (hub.stats()["messages"].as_u64() > Some(0)).then_some(()),
    );
    let (status, took) = hub.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?} after {took:?}:\n{}",
        hub.log()
    );
    let archived = hub.stats()["messages"].as_u64().expect("messages") as usize;
    let waiting = broker.waiting(&broker.queue) as usize;
    assert!(archived < COUNT, "stopped mid-burst: {archived} archived");
    assert_eq!(
        archived + waiting,
        COUNT,
        "{archived} archived and {waiting} back in the queue:\n{}",
        hub.log()
    );
    assert!(
        hub.log()
            .contains("unacknowledged messages are back in the queue"),
        "{}",
        hub.log()
    );

    hub.start();
    wait_for("the rest of the burst", Duration::from_secs(120), || {
        (hub.stats()["messages"].as_u64() == Some(COUNT as u64)).then_some(())
    });
    let text = http_get(hub.metrics_port, "/metrics").expect("metrics");
    assert_eq!(
        series(&text, "tidings_messages_ingested_total"),
        Some(waiting as f64),
        "{text}"
    );
    assert_eq!(
        series(&text, "tidings_messages_duplicate_total"),
        Some(0.0),
        "nothing archived came again: {text}"
    );
    assert_eq!(broker.waiting(&broker.queue), 0);
}

/// SIGTERM while mails are in flight to a slow SMTP server (each answered a second after it
/// is stored): the sender finishes and records them before it exits, so that the next
/// start sends only what was never sent, and no mail arrives twice. (With no time to finish,
/// `sender.shutdown_grace_secs = 0`, this fails: the four sends in flight are left to their
/// leases, unrecorded, and sent again.)
#[test]
fn a_terminated_sender_finishes_its_sends_and_none_is_sent_twice() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start_slow(tmp.path(), Duration::from_secs(1));
    let mut hub = Hub::new(Some(&smtp), None);
    for (key, value) in [
        ("TIDINGS_SENDER__LEASE_SECS", "3"),
        ("TIDINGS_CHANNELS__EMAIL__TIMEOUT_SECS", "2"),
        // Four at a time: the burst takes ten seconds, and is stopped within the first.
        ("TIDINGS_SENDER__CONCURRENCY", "4"),
    ] {
        hub.env.insert(key.into(), value.into());
    }
    hub.user_with_filter("lea", "lea@example.org", r#"topic ~ "org.test.**""#);
    hub.start();
    const COUNT: usize = 40;
    let lines: Vec<String> = (0..COUNT)
        .map(|n| {
            envelope(
                &format!("term-{n}"),
                "org.test.prod.term",
                serde_json::json!({"n": n}),
            )
        })
        .collect();
    hub.publish("burst", &lines);
    smtp.wait_count(1, Duration::from_secs(60));
    let (status, took) = hub.terminate(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?} after {took:?}:\n{}",
        hub.log()
    );
    let delivered = smtp.count();
    let stats = hub.stats();
    assert!(delivered < COUNT, "stopped mid-burst: {stats}");
    assert_eq!(
        stats["outbox"]["sent"].as_u64(),
        Some(delivered as u64),
        "every mail the server took is recorded as sent: {stats}\n{}",
        hub.log()
    );
    assert_eq!(stats["outbox"]["sending"], 0, "no claim left: {stats}");

    hub.start();
    smtp.wait_count(COUNT, Duration::from_secs(120));
    // Long enough for a send left to its lease to come again.
    std::thread::sleep(Duration::from_secs(4));
    let all = smtp.mails();
    let distinct: HashSet<String> = all.iter().map(|m| message_id(m)).collect();
    assert_eq!(distinct.len(), COUNT, "one mail per message");
    assert_eq!(all.len(), COUNT, "and none twice");
}
