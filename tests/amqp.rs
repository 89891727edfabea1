//! Issue 12: today's Fedora bus, fedora-messaging over AMQP on a real RabbitMQ. The corpus's
//! fedora-messaging messages, published with their headers by `tidings publish --amqp` (a
//! real AMQP client, lapin), are
//! archived whole and matched like fedmsg ones (a `fedora_messaging_user_*` header makes
//! `usernames has $me` hold, and mail goes out); each is acknowledged once archived (the
//! queue ends empty), a message heard twice is archived once, and malformed ones are
//! recorded as rejected and dead-lettered to `<queue>.dead`, never redelivered.

use std::time::{Duration, Instant};

use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use tidings_rules::{Envelope, Message};

use crate::support::{message_id, wait_for, Broker, Hub, PgDatabase, RabbitServer, Smtp};

/// The corpus's fedora-messaging messages as fedora-messaging publishes them: JSON lines
/// in the form `fedora-messaging publish` reads.
pub(crate) fn corpus() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/corpus/fedora-messaging/messages.jsonl"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the fedora-messaging corpus {path}: {e}"));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).expect("corpus line");
            // Only what travels on the bus: the rest is what Fedora's code derived.
            let map = value.as_object_mut().expect("an object");
            map.retain(|key, _| ["topic", "headers", "id", "body"].contains(&key.as_str()));
            value.to_string()
        })
        .collect()
}

fn wait_stats(
    hub: &Hub,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_stats_for(hub, what, Duration::from_secs(60), done)
}

/// Polls `tidings outbox stats` until `done` holds or `limit` passes; fails with the last
/// figures and serve's log.
pub(crate) fn wait_stats_for(
    hub: &Hub,
    what: &str,
    limit: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let stats = hub.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {stats}\nlog:\n{}",
            hub.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn fedora_messaging_over_amqp_is_archived_matched_acknowledged_and_dead_lettered() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let broker = Broker::start("ingest");
    let mut hub = Hub::new(Some(&smtp), None);
    hub.user_with_filter("alice", "alice@example.org", "usernames has $me");
    broker.start_hub(&mut hub);

    let lines = corpus();
    assert!(lines.len() > 200, "{}", lines.len());
    let distinct: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|line| {
            Envelope::from_json(line.as_bytes())
                .expect("a corpus message")
                .message
                .id
        })
        .collect();
    let expected = distinct.len() + 1;
    let mut about_alice = Message::new(
        "tidings-amqp-alice-1",
        "org.fedoraproject.prod.tidings.test.happened",
        serde_json::json!({"what": "a test for alice"}),
    );
    about_alice.headers.insert(
        "fedora_messaging_user_alice".into(),
        serde_json::json!(true),
    );
    about_alice.headers.insert(
        "fedora_messaging_schema".into(),
        serde_json::json!("base.message"),
    );
    about_alice.sent_at = Some(1_735_732_800_000);
    // The corpus through `tidings publish --amqp`, alice's through the library it uses.
    broker.publish_file(&hub, "fedora-messaging", &lines);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime
        .block_on(tidings_notifier::bus::amqp::publish(
            &broker.url,
            &broker.exchange,
            std::slice::from_ref(&about_alice),
        ))
        .expect("publishing alice's");
    // Two a broken publisher sends: a body that is not JSON, and one that is not an object.
    let mut headers = FieldTable::default();
    headers.insert(
        "sent-at".into(),
        AMQPValue::LongString(LongString::from("2025-01-01T12:00:00+00:00")),
    );
    broker.publish_raw(
        "org.fedoraproject.prod.broken.one",
        b"{not json",
        BasicProperties::default()
            .with_message_id("broken-1".into())
            .with_headers(headers),
    );
    broker.publish_raw(
        "org.fedoraproject.prod.broken.two",
        b"[1, 2]",
        BasicProperties::default().with_message_id("broken-2".into()),
    );

    let stats = wait_stats(&hub, "every message archived or rejected", |s| {
        s["messages"] == expected && s["rejected"] == 2
    });
    assert_eq!(stats["messages"], expected, "{stats}");
    let rejected = hub.run(&["outbox", "rejected"]);
    assert!(
        rejected.contains("the AMQP body is not JSON at line 1, column 2"),
        "{rejected}"
    );
    assert!(rejected.contains("`body` must be an object"), "{rejected}");

    // Matched as fedmsg messages are: the header names alice.
    let mails = smtp.wait_mails(1, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&mails[0]).to_string();
    assert!(
        text.contains("org.fedoraproject.prod.tidings.test.happened"),
        "{text}"
    );

    // Heard again: archived once, acknowledged all the same.
    runtime
        .block_on(tidings_notifier::bus::amqp::publish(
            &broker.url,
            &broker.exchange,
            std::slice::from_ref(&about_alice),
        ))
        .expect("publishing again");
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.waiting(&broker.queue) > 0 {
        assert!(Instant::now() < deadline, "the queue never emptied");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(hub.stats()["messages"], expected);
    assert_eq!(smtp.mails().len(), 1, "one mail, not one per delivery");

    // The malformed ones wait in the dead-letter queue, nowhere else.
    let dead = format!("{}.dead", broker.queue);
    assert_eq!(broker.waiting(&dead), 2);
    let (topic, body) = broker.take(&dead).expect("a dead letter");
    assert_eq!(topic, "org.fedoraproject.prod.broken.one");
    assert_eq!(body, b"{not json");
    assert_eq!(broker.waiting(&broker.queue), 0);
}

/// `count` messages about nobody in particular, ids `{prefix}-0`, `{prefix}-1`, ...
fn numbered(prefix: &str, count: usize) -> Vec<Message> {
    (0..count)
        .map(|n| {
            let mut message = Message::new(
                format!("{prefix}-{n}"),
                "org.fedoraproject.prod.tidings.test.numbered",
                serde_json::json!({"n": n}),
            );
            message.sent_at = Some(1_735_732_800_000);
            message
        })
        .collect()
}

/// The broker goes away under a running hub and comes back: the hub keeps running, connects
/// again by itself, and every message — those published before, and those that waited in
/// the durable queue while it was reconnecting — is archived once.
#[test]
fn a_broker_restart_loses_nothing_and_the_hub_connects_again() {
    let mut server = RabbitServer::start();
    let broker = Broker::at(&server.url(), "restart");
    let mut hub = Hub::new(None, None);
    broker.start_hub(&mut hub);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let publish = |messages: &[Message]| {
        runtime
            .block_on(tidings_notifier::bus::amqp::publish(
                &server.url(),
                &broker.exchange,
                messages,
            ))
            .expect("publishing");
    };
    publish(&numbered("before", 50));
    wait_stats(&hub, "the first 50 archived", |s| s["messages"] == 50);

    server.stop();
    hub.wait_log_line(
        "the hub to notice the broker is gone",
        Duration::from_secs(30),
        &["AMQP", "again"],
    );
    std::thread::sleep(Duration::from_secs(2));
    hub.assert_running();
    server.restart();
    // Published at once: they wait in the durable queue until the hub is back.
    let url = server.url();
    runtime
        .block_on(tidings_notifier::bus::amqp::publish(
            &url,
            &broker.exchange,
            &numbered("after", 50),
        ))
        .expect("publishing after the restart");
    let stats = wait_stats(&hub, "all 100 archived after the restart", |s| {
        s["messages"] == 100
    });
    assert_eq!(stats["rejected"], 0, "{stats}");
    let connected = hub.log().matches("AMQP consumer connected").count();
    assert!(
        connected >= 2,
        "connected {connected} time(s):\n{}",
        hub.log()
    );
    hub.assert_running();
}

/// `count` messages about alice (her `fedora_messaging_user_*` header), ids `{prefix}-n`.
pub(crate) fn about_alice(prefix: &str, count: usize) -> Vec<Message> {
    let mut messages = numbered(prefix, count);
    for message in &mut messages {
        message.headers.insert(
            "fedora_messaging_user_alice".into(),
            serde_json::json!(true),
        );
    }
    messages
}

/// Competing consumers on PostgreSQL: three notifier processes share the queue (each
/// message goes to one of them, and more than one does the work); one is killed with
/// SIGKILL mid-burst, and the messages it had taken but not acknowledged come again to the
/// others. Every message is archived once and becomes one mail.
#[test]
fn notifiers_share_the_queue_and_a_killed_one_loses_nothing() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let broker = Broker::start("compete");
    let mut hub = Hub::new(Some(&smtp), Some(&db.url));
    broker.configure(&mut hub);
    // A small window, so that messages are spread over the consumers.
    hub.env
        .insert("TIDINGS_BUS__AMQP__PREFETCH".into(), "10".into());
    hub.run(&["migrate"]);
    hub.user_with_filter("alice", "alice@example.org", "usernames has $me");
    let mut notifiers = hub.spawn_amqp_notifiers(3);
    let _sender = hub.spawn_role("sender", "sender-1", &[]);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let publish = |messages: Vec<Message>| {
        runtime
            .block_on(tidings_notifier::bus::amqp::publish(
                &broker.url,
                &broker.exchange,
                &messages,
            ))
            .expect("publishing");
    };
    const HALF: usize = 150;
    publish(about_alice("first", HALF));
    // Mid-burst: the first notifier has taken some, and is killed.
    wait_for(
        "the first notifier to ingest",
        Duration::from_secs(30),
        || (notifiers[0].counter(INGESTED) > 0).then_some(()),
    );
    notifiers[0].kill();
    publish(about_alice("second", HALF));

    let stats = wait_stats(&hub, "every message archived once", |s| {
        s["messages"] == 2 * HALF
    });
    assert_eq!(stats["rejected"], 0, "{stats}");
    let survivors: Vec<u64> = notifiers[1..].iter().map(|n| n.counter(INGESTED)).collect();
    assert!(
        survivors.iter().all(|&n| n > 0),
        "both remaining notifiers took messages: {survivors:?}"
    );
    let mails = smtp.wait_mails(2 * HALF, Duration::from_secs(120));
    let distinct: std::collections::HashSet<String> = mails.iter().map(|m| message_id(m)).collect();
    assert_eq!(distinct.len(), 2 * HALF, "one mail per message");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(smtp.mails().len(), 2 * HALF, "and none twice");
    assert_eq!(broker.waiting(&broker.queue), 0);
}

const INGESTED: &str = "tidings_messages_ingested_total";

/// The first record of `topic` in a corpus (`path` under corpus/), whole.
fn corpus_record(path: &str, topic: &str) -> serde_json::Value {
    let path = format!("{}/corpus/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("the corpus {path}: {e}"));
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("corpus line"))
        .find(|r| r["topic"].as_str().or(r["message"]["topic"].as_str()) == Some(topic))
        .unwrap_or_else(|| panic!("no {topic} in {path}"))
}

/// Issue 13: a mail about a message of either bus generation has the summary Fedora's own
/// code wrote for it as its subject (fedmsg_meta's for fedmsg, the schema package's for
/// fedora-messaging), its link, and the event's own words (the comment) in its body.
#[test]
fn mails_of_both_bus_generations_carry_a_subject_a_link_and_the_event_s_words() {
    use mailparse::MailHeaderMap as _;

    let topic = "org.fedoraproject.prod.bodhi.update.comment";
    let fedmsg = corpus_record("fedmsg-meta/messages.jsonl", topic);
    let amqp = corpus_record("fedora-messaging/messages.jsonl", topic);
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let broker = Broker::start("generations");
    let mut hub = Hub::new(Some(&smtp), None);
    hub.user_with_filter(
        "alice",
        "alice@example.org",
        r#"topic ~ "**.bodhi.update.comment""#,
    );
    broker.start_hub(&mut hub);

    hub.publish("fedmsg", &[fedmsg["message"].to_string()]);
    let mut line = amqp.clone();
    let map = line.as_object_mut().expect("an object");
    map.retain(|key, _| ["topic", "headers", "id", "body"].contains(&key.as_str()));
    broker.publish_file(&hub, "generations", &[line.to_string()]);

    let mails = smtp.wait_mails(2, Duration::from_secs(60));
    let mails: Vec<_> = mails
        .iter()
        .map(|raw| mailparse::parse_mail(raw).expect("parsable mail"))
        .collect();
    for (want_subject, want_link, words) in [
        (
            &fedmsg["expected"]["subti"],
            &fedmsg["expected"]["link"],
            &fedmsg["message"]["msg"]["comment"]["text"],
        ),
        (
            &amqp["expected"]["summary"],
            &amqp["expected"]["url"],
            &amqp["body"]["comment"]["text"],
        ),
    ] {
        let want_subject: String = want_subject
            .as_str()
            .expect("a summary")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mail = mails
            .iter()
            .find(|m| m.headers.get_first_value("Subject").as_deref() == Some(&want_subject))
            .unwrap_or_else(|| {
                let subjects: Vec<_> = mails
                    .iter()
                    .map(|m| m.headers.get_first_value("Subject"))
                    .collect();
                panic!("no mail with the subject {want_subject:?}: {subjects:?}")
            });
        let text = mail.subparts[0].get_body().expect("text body");
        let link = want_link.as_str().expect("a link");
        assert!(text.contains(link), "{link} not in {text}");
        let first_line = words
            .as_str()
            .expect("the comment")
            .lines()
            .find(|l| !l.trim().is_empty())
            .expect("words")
            .trim();
        assert!(text.contains(first_line), "{first_line:?} not in {text}");
    }
}
