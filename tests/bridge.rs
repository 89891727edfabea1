//! Issue 12: `tidings bridge` on a real RabbitMQ and real ZeroMQ sockets. The corpus's fedmsg
//! envelopes go from ZeroMQ to AMQP translated (topic, id, body, fedora-messaging headers);
//! the corpus's fedora-messaging messages go from AMQP to ZeroMQ as fedmsg envelopes, where
//! a Tidings hub archives every one; and with both directions on the same exchange and
//! endpoints, nothing comes back the way it went.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use lapin::options::{
    BasicGetOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{json, Value};
use tidings_rules::{Envelope, Message};

use crate::support::{free_port, wait_for, Broker, Hub, Publisher};

/// One message as a queue on the AMQP side received it.
#[derive(Debug)]
struct Received {
    topic: String,
    id: Option<String>,
    content_type: Option<String>,
    persistent: bool,
    headers: serde_json::Map<String, Value>,
    body: Value,
}

/// A queue of the test's own bound to everything on the broker's exchange, and the
/// bridge's queues to delete afterwards.
struct Observer {
    runtime: tokio::runtime::Runtime,
    connection: Connection,
    channel: Channel,
    queue: String,
    bridge_queue: String,
}

impl Observer {
    fn bind(broker: &Broker) -> Observer {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let queue = format!("{}.observer", broker.queue);
        let (connection, channel) = runtime.block_on(async {
            let connection = tokio::time::timeout(
                Duration::from_secs(10),
                Connection::connect(&broker.url, ConnectionProperties::default()),
            )
            .await
            .expect("RabbitMQ answers")
            .expect("RabbitMQ connection");
            let channel = connection.create_channel().await.expect("channel");
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("observer queue");
            channel
                .queue_bind(
                    queue.as_str().into(),
                    broker.exchange.as_str().into(),
                    "#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("binding the observer queue");
            (connection, channel)
        });
        Observer {
            runtime,
            connection,
            channel,
            queue,
            bridge_queue: bridge_queue(broker),
        }
    }

    /// Takes what has arrived until `count` did (or `limit` passed: then fails).
    fn take(&self, count: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        while out.len() < count {
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages arrived on the AMQP side",
                out.len()
            );
            match self.get() {
                Some(received) => out.push(received),
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        out
    }

    /// What arrives within `wait` (at most 1,000: a loop would never end).
    fn rest(&self, wait: Duration) -> Vec<Received> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while Instant::now() < deadline && out.len() < 1_000 {
            match self.get() {
                Some(received) => out.push(received),
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        out
    }

    fn get(&self) -> Option<Received> {
        self.runtime.block_on(async {
            let message = self
                .channel
                .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")?;
            let delivery = &message.delivery;
            let properties = &delivery.properties;
            Some(Received {
                topic: delivery.routing_key.as_str().to_string(),
                id: properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.as_str().to_string()),
                content_type: properties
                    .content_type()
                    .as_ref()
                    .map(|c| c.as_str().to_string()),
                persistent: *properties.delivery_mode() == Some(2),
                headers: properties
                    .headers()
                    .as_ref()
                    .map(tidings_notifier::bus::amqp::headers_json)
                    .unwrap_or_default(),
                body: serde_json::from_slice(&delivery.data).expect("a JSON body"),
            })
        })
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        let dead = format!("{}.dead", self.bridge_queue);
        self.runtime.block_on(async {
            for queue in [&self.queue, &self.bridge_queue, &dead] {
                let _ = self
                    .channel
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
            let _ = self
                .channel
                .exchange_delete(dead.as_str().into(), ExchangeDeleteOptions::default())
                .await;
            let _ = self.connection.close(200, "done".into()).await;
        });
    }
}

/// The bridge's own queue in a test: named after the test's broker.
fn bridge_queue(broker: &Broker) -> String {
    format!("{}.bridge", broker.queue)
}

/// Settings for `tidings bridge` on `broker`: its exchange both ways, its own queue.
fn bridge_settings(hub: &mut Hub, broker: &Broker, zmq_endpoints: &[&str], publish: &str) {
    broker.configure(hub);
    let endpoints: Vec<String> = zmq_endpoints.iter().map(|e| format!("\"{e}\"")).collect();
    for (key, value) in [
        (
            "TIDINGS_BRIDGE__ZMQ_ENDPOINTS",
            format!("[{}]", endpoints.join(",")),
        ),
        ("TIDINGS_BRIDGE__EXCHANGE", broker.exchange.clone()),
        ("TIDINGS_BRIDGE__PUBLISH_ENDPOINT", publish.to_string()),
        ("TIDINGS_BRIDGE__QUEUE", bridge_queue(broker)),
    ] {
        hub.env.insert(key.into(), value);
    }
}

/// The corpus's fedmsg envelopes (JSON text each).
fn fedmsg_corpus() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/corpus/fedmsg-meta/messages.jsonl"
    );
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("the fedmsg corpus {path}: {e}"));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("corpus line");
            value["message"].to_string()
        })
        .collect()
}

/// A SUB socket on `endpoint`, subscribed to everything.
fn subscriber(endpoint: &str) -> (zmq::Context, zmq::Socket) {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::SUB).expect("SUB");
    socket.set_subscribe(b"").expect("subscribe");
    socket.set_rcvtimeo(200).expect("timeout");
    socket.connect(endpoint).expect("connect");
    (ctx, socket)
}

/// What `socket` receives until `count` arrived (failing after `limit`), then for `more`.
fn receive(
    socket: &zmq::Socket,
    count: usize,
    limit: Duration,
    more: Duration,
) -> Vec<[Vec<u8>; 2]> {
    let mut out = Vec::new();
    let deadline = Instant::now() + limit;
    let mut until = deadline;
    loop {
        if out.len() >= count && until == deadline {
            until = Instant::now() + more;
        }
        // A loop would never end: a bound on what is kept.
        if Instant::now() >= until || out.len() > 10 * count + 100 {
            break;
        }
        match socket.recv_multipart(0) {
            Ok(frames) => match <[Vec<u8>; 2]>::try_from(frames) {
                Ok(pair) => out.push(pair),
                Err(frames) => panic!("a fedmsg message has two frames, not {}", frames.len()),
            },
            Err(zmq::Error::EAGAIN) => {}
            Err(err) => panic!("receiving: {err}"),
        }
    }
    assert!(
        out.len() >= count,
        "{} of {count} arrived on ZeroMQ",
        out.len()
    );
    out
}

/// What `tidings inspect` derives for each envelope: usernames, packages, groups.
fn derived(hub: &Hub, envelopes: &[String]) -> Vec<Value> {
    // From a file: a pipe written whole before reading would fill up both ways.
    let input = hub.dir.path().join("inspect.jsonl");
    std::fs::write(&input, envelopes.join("\n")).expect("inspect input");
    let out = hub
        .command(&["inspect"])
        .stdin(std::fs::File::open(&input).expect("inspect input"))
        .output()
        .expect("running tidings inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("inspect's JSON"))
        .collect()
}

/// ZeroMQ -> AMQP: every corpus envelope arrives on the exchange once, routing key = topic,
/// `message_id` = its id, body = `msg`, persistent JSON, with the headers fedora-messaging
/// sets (`fedora_messaging_schema`, `sent-at` from `timestamp`, severity, and a
/// `fedora_messaging_user_*` / `_rpm_*` / `_group_*` flag for each username, package and
/// group Tidings derives for it).
#[test]
fn the_bridge_carries_fedmsg_envelopes_to_amqp() {
    let broker = Broker::start("bridge-to-amqp");
    let observer = Observer::bind(&broker);
    let mut hub = Hub::new(None, None);
    let from = format!("tcp://127.0.0.1:{}", free_port());
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    bridge_settings(&mut hub, &broker, &[&from], &publish);
    let bridge = hub.spawn_role("bridge", "bridge", &[]);
    let publisher = Publisher::bind(&from);

    let corpus = fedmsg_corpus();
    assert!(corpus.len() > 300, "{}", corpus.len());
    for envelope in &corpus {
        publisher.send_envelope(envelope);
    }
    // The corpus holds envelopes Fedora's own AMQP->ZeroMQ bridge sent (`username`
    // `amqp-bridge`): those stay on ZeroMQ, as Fedora's ZeroMQ->AMQP bridge kept them.
    let (echoes, envelopes): (Vec<String>, Vec<String>) =
        corpus.into_iter().partition(|e| is_bridged(e));
    assert!(!echoes.is_empty(), "the corpus has bridged envelopes");
    let received = observer.take(envelopes.len(), Duration::from_secs(60));
    let extra = observer.rest(Duration::from_millis(500));
    assert!(extra.is_empty(), "more than sent: {extra:?}");
    let metadata = derived(&hub, &envelopes);
    for ((envelope, got), meta) in envelopes.iter().zip(&received).zip(&metadata) {
        let sent = Envelope::from_json(envelope.as_bytes())
            .expect("a corpus envelope")
            .message;
        assert_eq!(got.topic, sent.topic);
        assert_eq!(got.id.as_deref(), Some(sent.id.as_str()), "{envelope}");
        assert_eq!(got.body, sent.body);
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        assert!(got.persistent, "{envelope}");
        let h = &got.headers;
        assert_eq!(h["fedora_messaging_schema"], json!("base.message"));
        assert_eq!(h["x-tidings-bridged-from"], json!("zmq"));
        let level = h["fedora_messaging_severity"].as_i64().unwrap_or_default();
        assert!([10, 20, 30, 40].contains(&level), "{h:?}");
        // `sent-at` is RFC 3339, to the second, as fedora-messaging writes it.
        let read = Envelope::from_fedora_messaging(
            got.topic.clone(),
            got.id.clone(),
            h.clone(),
            got.body.clone(),
        )
        .expect("a fedora-messaging message");
        let at = read.message.sent_at.expect("sent-at");
        assert_eq!(at % 1000, 0, "{h:?}");
        if let Some(ms) = sent.sent_at {
            assert_eq!(at, ms.div_euclid(1000) * 1000, "{envelope}");
        }
        let mut flags: BTreeSet<String> = h
            .keys()
            .filter(|k| {
                ["user", "rpm", "group"]
                    .iter()
                    .any(|kind| k.starts_with(&format!("fedora_messaging_{kind}_")))
            })
            .cloned()
            .collect();
        for (kind, field) in [
            ("user", "usernames"),
            ("rpm", "packages"),
            ("group", "groups"),
        ] {
            for name in meta[field].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                assert!(
                    flags.remove(&format!("fedora_messaging_{kind}_{name}")),
                    "{kind} {name} of {envelope} not in {h:?}"
                );
            }
        }
        assert!(flags.is_empty(), "flags nobody derived: {flags:?}");
    }
    assert!(
        received.iter().any(|r| r
            .headers
            .keys()
            .any(|k| k.starts_with("fedora_messaging_user_"))),
        "some corpus message names a user"
    );
    assert_eq!(
        bridge.counter("tidings_bridge_to_amqp_total"),
        envelopes.len() as u64
    );
    assert_eq!(
        bridge.counter("tidings_bridge_loops_dropped_total"),
        echoes.len() as u64
    );
}

/// Whether an envelope came from an AMQP->ZeroMQ bridge (Fedora's mark).
fn is_bridged(envelope: &str) -> bool {
    serde_json::from_str::<Value>(envelope).is_ok_and(|e| e["username"] == json!("amqp-bridge"))
}

/// AMQP -> ZeroMQ: the corpus's fedora-messaging messages, published with their headers,
/// arrive on the bridge's endpoint as fedmsg envelopes (id with fedmsg's year prefix,
/// `timestamp` from `sent-at`, `username` `amqp-bridge`, the headers kept); a Tidings hub
/// subscribed there archives every one, and the bridge's queue ends empty (each acked).
#[test]
fn the_bridge_carries_fedora_messaging_to_zeromq_where_a_hub_archives_it() {
    let broker = Broker::start("bridge-to-zmq");
    let observer = Observer::bind(&broker);
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    let mut bridge_hub = Hub::new(None, None);
    bridge_settings(&mut bridge_hub, &broker, &[], &publish);
    let bridge = bridge_hub.spawn_role("bridge", "bridge", &[]);
    let mut hub = Hub::new(None, None);
    hub.env.insert(
        "TIDINGS_BUS__ZMQ_ENDPOINTS".into(),
        format!("[\"{publish}\"]"),
    );
    hub.start();
    let (_ctx, sub) = subscriber(&publish);
    bridge.wait_log(
        "both subscribers",
        &["subscribed to the bridge", "subscriptions=2"],
    );
    bridge.wait_log("its AMQP consumer", &["AMQP consumer connected"]);

    // The corpus's fedora-messaging messages, in the form `fedora-messaging publish` reads.
    let lines = crate::amqp::corpus();
    let sent: Vec<Message> = lines
        .iter()
        .map(|line| {
            Envelope::from_json(line.as_bytes())
                .expect("corpus")
                .message
        })
        .collect();
    broker.publish_file(&hub, "fedora-messaging", &lines);
    let got = receive(
        &sub,
        sent.len(),
        Duration::from_secs(60),
        Duration::from_millis(500),
    );
    assert_eq!(got.len(), sent.len(), "each once");
    // The publisher also saw them on AMQP, untouched.
    assert_eq!(
        observer.take(sent.len(), Duration::from_secs(10)).len(),
        sent.len()
    );
    for (message, [topic, envelope]) in sent.iter().zip(&got) {
        assert_eq!(topic, message.topic.as_bytes());
        let envelope: Value = serde_json::from_slice(envelope).expect("JSON envelope");
        assert_eq!(envelope["topic"], json!(message.topic));
        assert_eq!(envelope["msg"], message.body);
        assert_eq!(envelope["username"], json!("amqp-bridge"));
        let sent_at = message.sent_at.expect("the corpus sets sent-at");
        assert_eq!(envelope["timestamp"], json!(sent_at.div_euclid(1000)));
        // The year of `sent-at` (which starts with it) before the bare UUID.
        let year = message.headers["sent-at"]
            .as_str()
            .and_then(|at| at.get(..4));
        assert_eq!(
            envelope["msg_id"],
            json!(format!("{}-{}", year.expect("a year"), message.id))
        );
        let headers: BTreeMap<String, Value> =
            serde_json::from_value(envelope["headers"].clone()).expect("headers object");
        assert_eq!(headers, message.headers);
    }
    let ids: BTreeSet<&str> = sent.iter().map(|m| m.id.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = hub.stats();
        if stats["messages"] == ids.len() {
            assert_eq!(stats["rejected"], 0, "{stats}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hub archived {stats}\n{}",
            hub.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for(
        "the bridge's queue to empty",
        Duration::from_secs(30),
        || (broker.waiting(&bridge_queue(&broker)) == 0).then_some(()),
    );
    assert_eq!(
        bridge.counter("tidings_bridge_to_zmq_total"),
        sent.len() as u64
    );
}

/// Issue 12: both directions on the same exchange and the same endpoints (the bridge
/// subscribes to its own publishing endpoint too). Every message is seen once on each side
/// it belongs to, none comes back, and the bridge counts each echo it dropped.
#[test]
fn both_directions_on_one_exchange_and_endpoint_never_loop() {
    const N: usize = 40;
    let broker = Broker::start("bridge-loop");
    let observer = Observer::bind(&broker);
    let from = format!("tcp://127.0.0.1:{}", free_port());
    let publish = format!("tcp://127.0.0.1:{}", free_port());
    let mut hub = Hub::new(None, None);
    bridge_settings(&mut hub, &broker, &[&from, &publish], &publish);
    let bridge = hub.spawn_role("bridge", "bridge", &[]);
    let (_ctx, sub) = subscriber(&publish);
    bridge.wait_log(
        "its own and the test's subscription",
        &["subscribed to the bridge", "subscriptions=2"],
    );
    bridge.wait_log("its AMQP consumer", &["AMQP consumer connected"]);
    let publisher = Publisher::bind(&from);

    // N from ZeroMQ (corpus bodies, ids of their own), N from AMQP.
    let corpus = fedmsg_corpus();
    let fresh = corpus.iter().filter(|e| !is_bridged(e));
    for (n, envelope) in fresh.take(N).enumerate() {
        let mut envelope: Value = serde_json::from_str(envelope).expect("envelope");
        envelope["msg_id"] = json!(format!("2026-from-zmq-{n}"));
        publisher.send_envelope(&envelope.to_string());
    }
    let from_amqp: Vec<Message> = (0..N)
        .map(|n| {
            let mut message = Message::new(
                format!("from-amqp-{n}"),
                "org.fedoraproject.prod.tidings.test.loop",
                json!({"n": n}),
            );
            message.sent_at = Some(1_735_732_800_000);
            message
        })
        .collect();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(tidings_notifier::bus::amqp::publish(
            &broker.url,
            &broker.exchange,
            &from_amqp,
        ))
        .expect("publishing to AMQP");

    // The AMQP side: the N originals and the N bridged from ZeroMQ, once each.
    let mut seen = observer.take(2 * N, Duration::from_secs(60));
    seen.extend(observer.rest(Duration::from_secs(2)));
    let ids: Vec<String> = seen.iter().filter_map(|r| r.id.clone()).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), distinct.len()),
        (2 * N, 2 * N),
        "each message once on AMQP: {ids:?}"
    );
    // The ZeroMQ side: the N from AMQP, once each, and none of those that came from it.
    let got = receive(&sub, N, Duration::from_secs(60), Duration::from_secs(2));
    let zmq_ids: Vec<String> = got
        .iter()
        .map(|[_, envelope]| {
            let envelope: Value = serde_json::from_slice(envelope).expect("JSON");
            envelope["msg_id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    let expected: Vec<String> = (0..N).map(|n| format!("2025-from-amqp-{n}")).collect();
    assert_eq!(zmq_ids, expected, "each message from AMQP once on ZeroMQ");
    // It heard its own N on ZeroMQ, and the N it sent to AMQP came to its queue: 2N echoes.
    wait_for("the echoes counted", Duration::from_secs(10), || {
        (bridge.counter("tidings_bridge_loops_dropped_total") == 2 * N as u64).then_some(())
    });
    assert_eq!(bridge.counter("tidings_bridge_to_amqp_total"), N as u64);
    assert_eq!(bridge.counter("tidings_bridge_to_zmq_total"), N as u64);
}
