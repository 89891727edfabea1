//! The bridge between the two buses (issue 12, `tidings bridge`): fedmsg over ZeroMQ to
//! fedora-messaging over AMQP, and back, translated the way Fedora's own bridges
//! (fedmsg-migration-tools) did.
//!
//! ZeroMQ → AMQP: a SUB socket on the configured fedmsg endpoints (the ingest [`Reader`]);
//! each envelope becomes a fedora-messaging message — routing key = topic, `message_id` =
//! `msg_id`, body = `msg`, headers as fedora-messaging sets them (`fedora_messaging_schema`
//! `base.message`, `sent-at` from `timestamp`, `fedora_messaging_severity` and the
//! `fedora_messaging_user_*` / `_rpm_*` / `_group_*` flags from the metadata Tidings derives,
//! `priority`), plus an envelope's own `headers` object — published persistent with
//! publisher confirms. While the broker is away, envelopes wait in a bounded buffer (then in
//! libzmq's queue, then the publisher drops them: PUB/SUB has no acknowledgements).
//!
//! AMQP → ZeroMQ: a durable queue of the bridge's own, bound to the exchange fedora-messaging
//! publishes to; each message becomes a fedmsg envelope (`topic`, `msg` = body, `msg_id`
//! with fedmsg's year prefix, `timestamp` from `sent-at`, `i`, `username` `amqp-bridge`, and
//! the AMQP `headers`) sent on an XPUB socket bound to the configured endpoint, and is
//! acknowledged only after that. Consuming starts once a subscriber has subscribed, so what
//! is published before anyone listens waits in the queue.
//!
//! Loops: envelopes with `username` `amqp-bridge` (Fedora's mark for what its AMQP→ZeroMQ
//! bridge sent) are not carried to AMQP, and messages with the [`BRIDGED_HEADER`] header
//! (this bridge's mark for what it carried from ZeroMQ) are not carried to ZeroMQ, so both
//! directions can run on the same exchange and endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use serde_json::{json, Map, Value};
use tidings_rules::{Envelope, Message, Severity};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::amqp::{limited, outgoing, AmqpIngest, AmqpSource};
use super::zmq::{Input, Reader};
use super::{Accepted, Source};
use crate::{Derive, NotifierError};

/// The `username` Fedora's AMQP→ZeroMQ bridge put in every envelope it sent, and by which
/// its ZeroMQ→AMQP bridge knew them (fedmsg-migration-tools); this bridge does the same.
pub const BRIDGE_USERNAME: &str = "amqp-bridge";

/// The header on every message this bridge carries from ZeroMQ to AMQP (value `"zmq"`), by
/// which it does not carry them back. (Fedora kept them apart by exchange instead:
/// `zmq.topic`, the default of `bridge.exchange`.)
pub const BRIDGED_HEADER: &str = "x-tidings-bridged-from";

/// The schema fedora-messaging names a message of its base class, as Fedora's bridge sent.
const BASE_SCHEMA: &str = "base.message";

/// Messages handled per round, each way.
const BATCH: usize = 256;
/// The first wait before publishing again after a broker failure; doubled up to the next.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long messages already taken from ZeroMQ may take to reach the broker at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// What the bridge does (the `[bridge]` section and the broker of `[bus.amqp]`).
#[derive(Clone)]
pub struct BridgeSettings {
    /// The broker; its exchange, queue, routing keys and prefetch are what AMQP → ZeroMQ
    /// consumes.
    pub amqp: AmqpIngest,
    /// fedmsg endpoints to subscribe to (ZeroMQ → AMQP); empty: that direction is off.
    pub zmq_endpoints: Vec<String>,
    /// The exchange ZeroMQ → AMQP publishes to.
    pub exchange: String,
    /// Where AMQP → ZeroMQ binds its publishing socket; none: that direction is off.
    pub publish_endpoint: Option<String>,
    /// fedmsg messages held while the broker is unavailable.
    pub buffer: usize,
    /// The largest ZeroMQ message taken, in bytes.
    pub max_message_bytes: usize,
    /// Metadata for the filter headers (`fedora_messaging_user_*`, ...).
    pub derive: Derive,
}

/// The bridge's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct BridgeCounts {
    /// fedmsg messages published to AMQP (confirmed by the broker).
    pub to_amqp: AtomicU64,
    /// AMQP messages sent as fedmsg.
    pub to_zmq: AtomicU64,
    /// Messages not carried back the way they came.
    pub loops: AtomicU64,
    /// Input that could not be translated (logged; on AMQP dead-lettered).
    pub refused: AtomicU64,
}

impl BridgeCounts {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter in Prometheus text format.
    pub fn render(&self) -> String {
        [
            ("tidings_bridge_to_amqp_total", &self.to_amqp),
            ("tidings_bridge_to_zmq_total", &self.to_zmq),
            ("tidings_bridge_loops_dropped_total", &self.loops),
            ("tidings_bridge_refused_total", &self.refused),
        ]
        .iter()
        .map(|(name, value)| {
            format!(
                "# TYPE {name} counter\n{name} {}\n",
                value.load(Ordering::Relaxed)
            )
        })
        .collect()
    }
}

/// The fedora-messaging severity level (10, 20, 30, 40).
fn level(severity: Severity) -> i64 {
    match severity {
        Severity::Debug => 10,
        Severity::Info => 20,
        Severity::Warning => 30,
        Severity::Error => 40,
    }
}

/// A fedmsg ZeroMQ message as the fedora-messaging message to publish; `Ok(None)` for one
/// Fedora's or this AMQP→ZeroMQ bridge sent (a loop).
pub fn fedmsg_to_amqp(frames: &[Vec<u8>], derive: &Derive) -> Result<Option<Message>, String> {
    let mut message = Envelope::from_frames(frames)
        .map_err(|e| e.to_string())?
        .message;
    if message.headers.get("username").and_then(Value::as_str) == Some(BRIDGE_USERNAME) {
        return Ok(None);
    }
    let metadata = derive(&message);
    // What fedmsg's envelope carried besides the message (`i`, `username`, a signature)
    // has no place in fedora-messaging; a `headers` object does (Fedora's bridge kept it).
    // The decoded message has that object's entries among the envelope's extras: it is
    // read from the envelope itself.
    let nested = frames
        .last()
        .and_then(|json| serde_json::from_slice::<Map<String, Value>>(json).ok())
        .and_then(|mut envelope| envelope.remove("headers"));
    let mut headers = match nested {
        Some(Value::Object(headers)) => headers,
        _ => Map::new(),
    };
    headers
        .entry("fedora_messaging_schema")
        .or_insert_with(|| json!(BASE_SCHEMA));
    let sent_at = message
        .sent_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_else(chrono::Utc::now);
    headers
        .entry("sent-at")
        .or_insert_with(|| json!(sent_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)));
    headers
        .entry("fedora_messaging_severity")
        .or_insert_with(|| json!(level(metadata.severity)));
    headers.entry("priority").or_insert_with(|| json!(0));
    for (kind, names) in [
        ("user", &metadata.usernames),
        ("rpm", &metadata.packages),
        ("group", &metadata.groups),
    ] {
        for name in names {
            headers.insert(format!("fedora_messaging_{kind}_{name}"), json!(true));
        }
    }
    headers.insert(BRIDGED_HEADER.into(), json!("zmq"));
    message.headers = headers.into_iter().collect();
    Ok(Some(message))
}

/// A fedora-messaging message as a fedmsg ZeroMQ message (`[topic, envelope]`), `i` its
/// sequence number; `None` for one this bridge carried from ZeroMQ (a loop).
pub fn amqp_to_fedmsg(message: &Message, i: u64) -> Option<[Vec<u8>; 2]> {
    if message.headers.contains_key(BRIDGED_HEADER) {
        return None;
    }
    let sent_at = message
        .sent_at
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_else(chrono::Utc::now);
    // fedmsg ids start with the year; fedora-messaging's are bare UUIDs. Fedora's bridge
    // prefixed the current year; the send time's gives the same id each time it is bridged.
    let id = &message.id;
    let dated = id
        .as_bytes()
        .get(..5)
        .is_some_and(|head| head[..4].iter().all(u8::is_ascii_digit) && head[4] == b'-');
    let msg_id = match dated {
        true => id.clone(),
        false => format!("{}-{id}", chrono::Datelike::year(&sent_at)),
    };
    let headers: Map<String, Value> = message.headers.clone().into_iter().collect();
    let envelope = json!({
        "topic": message.topic,
        "msg": message.body,
        "msg_id": msg_id,
        "timestamp": sent_at.timestamp(),
        "i": i,
        "username": BRIDGE_USERNAME,
        "headers": headers,
    });
    Some([
        message.topic.clone().into_bytes(),
        envelope.to_string().into_bytes(),
    ])
}

/// Runs the directions `settings` turns on until `shutdown`. Returns early only on a fatal
/// error (an endpoint that cannot be bound or connected to).
pub async fn run(
    settings: BridgeSettings,
    counts: Arc<BridgeCounts>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let to_amqp = async {
        match settings.zmq_endpoints.is_empty() {
            true => Ok(()),
            false => zmq_to_amqp(&settings, &counts, &shutdown).await,
        }
    };
    let to_zmq = async {
        match &settings.publish_endpoint {
            None => Ok(()),
            Some(endpoint) => amqp_to_zmq(&settings.amqp, endpoint, &counts, &shutdown).await,
        }
    };
    let (a, b) = tokio::join!(to_amqp, to_zmq);
    a.and(b)
}

/// ZeroMQ → AMQP: a reader thread fills the bounded buffer; each round publishes what is
/// ready and waits for the broker's confirmations, publishing again (after a pause, on a
/// new connection) what was not confirmed.
async fn zmq_to_amqp(
    settings: &BridgeSettings,
    counts: &BridgeCounts,
    shutdown: &CancellationToken,
) -> Result<(), NotifierError> {
    let (tx, mut rx) = mpsc::channel::<Input>(settings.buffer.max(1));
    let reader = Reader::connect(&settings.zmq_endpoints, settings.max_message_bytes)?;
    let stop = shutdown.clone();
    let reader = std::thread::Builder::new()
        .name("bridge-zmq-sub".into())
        .spawn(move || reader.run(tx, stop))
        .map_err(|e| NotifierError::Bus {
            what: format!("starting the bridge's ZeroMQ reader: {e}"),
        })?;
    tracing::info!(endpoints = ?settings.zmq_endpoints, exchange = %settings.exchange, "bridging fedmsg from ZeroMQ to AMQP");
    let mut publisher = Publisher {
        bus: &settings.amqp,
        exchange: &settings.exchange,
        channel: None,
    };
    // Publishing gives up only some time after shutdown: what was taken from ZeroMQ goes
    // on if the broker lets it.
    let drain = CancellationToken::new();
    let (stopped, timer) = (shutdown.clone(), drain.clone());
    tokio::spawn(async move {
        stopped.cancelled().await;
        tokio::time::sleep(DRAIN).await;
        timer.cancel();
    });
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            input = rx.recv() => input,
        };
        let Some(first) = first else { break };
        let mut inputs = vec![first];
        while inputs.len() < BATCH {
            match rx.try_recv() {
                Ok(input) => inputs.push(input),
                Err(_) => break,
            }
        }
        let messages = translate(inputs, &settings.derive, counts);
        publisher.publish_all(messages, counts, &drain).await;
    }
    // The reader stops on shutdown; what it had handed over still goes.
    let mut left = Vec::new();
    while let Ok(input) = rx.try_recv() {
        left.push(input);
    }
    let messages = translate(left, &settings.derive, counts);
    if !messages.is_empty() {
        tracing::info!(
            messages = messages.len(),
            "publishing what was taken from ZeroMQ before stopping"
        );
        publisher.publish_all(messages, counts, &drain).await;
    }
    drop(rx);
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    Ok(())
}

/// The fedmsg input of one round as messages to publish; the rest is logged and counted.
fn translate(inputs: Vec<Input>, derive: &Derive, counts: &BridgeCounts) -> Vec<Message> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        match input {
            Input::Message(frames) => match fedmsg_to_amqp(&frames, derive) {
                Ok(Some(message)) => out.push(message),
                Ok(None) => BridgeCounts::bump(&counts.loops),
                Err(reason) => {
                    tracing::warn!(%reason, "a fedmsg message could not be bridged; skipped");
                    BridgeCounts::bump(&counts.refused);
                }
            },
            Input::TooLarge { bytes, .. } => {
                tracing::warn!(
                    bytes,
                    "a fedmsg message over bus.max_message_bytes was not bridged"
                );
                BridgeCounts::bump(&counts.refused);
            }
            Input::Dropped { endpoint } => {
                tracing::warn!(%endpoint, "ZeroMQ dropped a publisher (a frame over bus.max_message_bytes?); connected again");
                BridgeCounts::bump(&counts.refused);
            }
        }
    }
    out
}

/// A confirming channel to the broker, opened again whenever it fails.
struct Publisher<'a> {
    bus: &'a AmqpIngest,
    exchange: &'a str,
    channel: Option<(Connection, Channel)>,
}

impl Publisher<'_> {
    async fn open(&self) -> Result<(Connection, Channel), NotifierError> {
        let connection = super::amqp::connect(&self.bus.url, &self.bus.tls).await?;
        let channel = limited("opening a channel", connection.create_channel()).await?;
        // `amq.*` exchanges are the broker's own and cannot be declared, only looked for.
        let options = ExchangeDeclareOptions {
            durable: true,
            passive: self.exchange.starts_with("amq."),
            ..ExchangeDeclareOptions::default()
        };
        limited(
            &format!("declaring the exchange {:?}", self.exchange),
            channel.exchange_declare(
                self.exchange.into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            ),
        )
        .await?;
        limited(
            "turning on publisher confirms",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        Ok((connection, channel))
    }

    /// Publishes every message and waits until the broker confirmed each, trying again
    /// with backoff (on a new connection) for as long as it takes, or until `stop`.
    async fn publish_all(
        &mut self,
        mut messages: Vec<Message>,
        counts: &BridgeCounts,
        stop: &CancellationToken,
    ) {
        let mut pause = RETRY_FIRST;
        while !messages.is_empty() {
            match self.try_publish(&messages).await {
                Ok(confirmed) => {
                    let mut confirmed = confirmed.into_iter();
                    messages.retain(|_| {
                        let done = confirmed.next().unwrap_or(false);
                        if done {
                            BridgeCounts::bump(&counts.to_amqp);
                        }
                        !done
                    });
                    if messages.is_empty() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, waiting = messages.len(), retry_in_ms = pause.as_millis() as u64, "the AMQP broker is unavailable; publishing again")
                }
            }
            // Refused, unconfirmed or cut off: a pause, then a new connection.
            self.channel = None;
            tokio::select! {
                biased;
                _ = stop.cancelled() => {
                    tracing::error!(lost = messages.len(), "stopped with fedmsg messages the broker never confirmed");
                    return;
                }
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// One attempt: publishes each message, then waits for each confirmation. Which were
    /// confirmed, in order; an error if the connection failed first.
    async fn try_publish(&mut self, messages: &[Message]) -> Result<Vec<bool>, NotifierError> {
        if self.channel.is_none() {
            self.channel = Some(self.open().await?);
        }
        let Some((_, channel)) = &self.channel else {
            return Err(NotifierError::Bus {
                what: "AMQP channel: not open".into(),
            });
        };
        let mut pending = Vec::with_capacity(messages.len());
        for message in messages {
            let (topic, body, properties) = outgoing(message)?;
            let confirm = limited(
                "publishing",
                channel.basic_publish(
                    self.exchange.into(),
                    topic,
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                ),
            )
            .await?;
            pending.push(confirm);
        }
        let mut confirmed = Vec::with_capacity(pending.len());
        for (confirm, message) in pending.into_iter().zip(messages) {
            let ok = match limited("waiting for the broker's confirmation", confirm).await {
                Ok(confirmation) => confirmation.is_ack(),
                Err(err) => {
                    tracing::warn!(error = %err, msg_id = %message.id, "not confirmed");
                    false
                }
            };
            if !ok {
                tracing::warn!(msg_id = %message.id, "the broker did not confirm a bridged message; publishing it again");
            }
            confirmed.push(ok);
        }
        Ok(confirmed)
    }
}

/// AMQP → ZeroMQ: binds the XPUB socket, waits for a first subscriber, then consumes the
/// queue and sends each message on, acknowledging it once handed to the socket.
async fn amqp_to_zmq(
    bus: &AmqpIngest,
    endpoint: &str,
    counts: &BridgeCounts,
    shutdown: &CancellationToken,
) -> Result<(), NotifierError> {
    let ctx = zmq::Context::new();
    let socket = ctx
        .socket(zmq::XPUB)
        .map_err(NotifierError::zmq("creating the XPUB socket"))?;
    // Every subscriber's subscription comes up, not only the first of each topic.
    socket
        .set_xpub_verbose(true)
        .map_err(NotifierError::zmq("setting XPUB verbose"))?;
    socket
        .set_sndhwm(100_000)
        .map_err(NotifierError::zmq("setting the send high-water mark"))?;
    socket
        .set_linger(2_000)
        .map_err(NotifierError::zmq("setting linger"))?;
    socket
        .bind(endpoint)
        .map_err(NotifierError::zmq(format!("binding {endpoint}")))?;
    tracing::info!(%endpoint, exchange = %bus.exchange, queue = %bus.queue, "bridging fedora-messaging from AMQP to ZeroMQ; waiting for a subscriber");
    let mut subscribers = 0u64;
    loop {
        subscriptions(&socket, &mut subscribers);
        if subscribers > 0 {
            break;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    let mut source = AmqpSource::new(bus.clone());
    let mut i = 0u64;
    // Subscriptions are read (and logged) while waiting for the broker too.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        let received = {
            let receiving = source.receive(BATCH);
            tokio::pin!(receiving);
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break None,
                    received = &mut receiving => break received,
                    _ = tick.tick() => subscriptions(&socket, &mut subscribers),
                }
            }
        };
        let Some(received) = received else { break };
        for (raw, ack) in received {
            let fate = match raw.wire.decode() {
                Err(reason) => {
                    tracing::warn!(%reason, "an AMQP message could not be bridged; dead-lettered");
                    BridgeCounts::bump(&counts.refused);
                    Accepted::Rejected(reason)
                }
                Ok(envelope) => {
                    let message = envelope.message;
                    match amqp_to_fedmsg(&message, i + 1) {
                        None => {
                            BridgeCounts::bump(&counts.loops);
                            Accepted::Duplicate(message.id)
                        }
                        Some(frames) => {
                            socket
                                .send_multipart(frames, 0)
                                .map_err(NotifierError::zmq(format!("sending on {endpoint}")))?;
                            i += 1;
                            BridgeCounts::bump(&counts.to_zmq);
                            Accepted::Stored {
                                row: 0,
                                id: message.id,
                            }
                        }
                    }
                }
            };
            // Stored and duplicate are acknowledged, rejected is dead-lettered.
            source.settled(ack, &fate).await;
        }
    }
    Ok(())
}

/// Reads the subscriptions XPUB hands up (1 + topic prefix) and counts them.
fn subscriptions(socket: &zmq::Socket, subscribers: &mut u64) {
    while let Ok(event) = socket.recv_bytes(zmq::DONTWAIT) {
        if event.first() == Some(&1) {
            *subscribers += 1;
            tracing::info!(
                subscriptions = *subscribers,
                "a ZeroMQ subscriber subscribed to the bridge"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive() -> Derive {
        Arc::new(|message: &Message| tidings_rules::Metadata {
            usernames: ["alice".to_string()].into(),
            packages: ["tidings".to_string()].into(),
            topic: message.topic.clone(),
            ..tidings_rules::Metadata::default()
        })
    }

    fn frames(envelope: Value) -> Vec<Vec<u8>> {
        let topic = envelope["topic"].as_str().unwrap_or_default().to_string();
        vec![topic.into_bytes(), envelope.to_string().into_bytes()]
    }

    #[test]
    fn a_fedmsg_envelope_becomes_a_fedora_messaging_message() {
        let envelope = json!({"topic": "org.fedoraproject.prod.bodhi.update.comment",
            "msg": {"comment": {"karma": 1}}, "msg_id": "2019-abc", "timestamp": 1_735_732_800.4,
            "i": 3, "username": "apache", "headers": {"x": 1}});
        let Ok(Some(message)) = fedmsg_to_amqp(&frames(envelope), &derive()) else {
            panic!("translated")
        };
        assert_eq!(message.id, "2019-abc");
        assert_eq!(message.topic, "org.fedoraproject.prod.bodhi.update.comment");
        assert_eq!(message.body, json!({"comment": {"karma": 1}}));
        let h = &message.headers;
        assert_eq!(h["sent-at"], json!("2025-01-01T12:00:00+00:00"));
        assert_eq!(h["fedora_messaging_schema"], json!("base.message"));
        assert_eq!(h["fedora_messaging_severity"], json!(20));
        assert_eq!(h["fedora_messaging_user_alice"], json!(true));
        assert_eq!(h["fedora_messaging_rpm_tidings"], json!(true));
        assert_eq!(h["x"], json!(1));
        assert_eq!(h[BRIDGED_HEADER], json!("zmq"));
        assert!(!h.contains_key("username") && !h.contains_key("i"), "{h:?}");
    }

    #[test]
    fn a_fedora_messaging_message_becomes_a_fedmsg_envelope() {
        let mut message = Message::new(
            "90066146-493d-58b0-8be8-58d2d5a10b0a",
            "org.fedoraproject.prod.bodhi.update.comment",
            json!({"comment": {"karma": 1}}),
        );
        message.sent_at = Some(1_735_732_800_000);
        message
            .headers
            .insert("fedora_messaging_user_alice".into(), json!(true));
        let Some([topic, envelope]) = amqp_to_fedmsg(&message, 7) else {
            panic!("translated")
        };
        assert_eq!(topic, message.topic.as_bytes());
        let envelope: Value = serde_json::from_slice(&envelope).unwrap_or_default();
        assert_eq!(
            envelope["msg_id"],
            json!("2025-90066146-493d-58b0-8be8-58d2d5a10b0a")
        );
        assert_eq!(envelope["timestamp"], json!(1_735_732_800));
        assert_eq!(envelope["i"], json!(7));
        assert_eq!(envelope["username"], json!(BRIDGE_USERNAME));
        assert_eq!(envelope["msg"], message.body);
        assert_eq!(
            envelope["headers"]["fedora_messaging_user_alice"],
            json!(true)
        );
        // Already dated: kept as it is.
        message.id = "2019-abc".into();
        let Some([_, envelope]) = amqp_to_fedmsg(&message, 8) else {
            panic!("translated")
        };
        assert!(String::from_utf8_lossy(&envelope).contains("\"msg_id\":\"2019-abc\""));
    }

    /// Issue 12: what one direction sent is never carried back by the other.
    #[test]
    fn bridged_messages_are_not_carried_back() {
        let mut message = Message::new("id-1", "a.b", json!({}));
        let Some([_, envelope]) = amqp_to_fedmsg(&message, 1) else {
            panic!("translated")
        };
        let back = fedmsg_to_amqp(&[b"a.b".to_vec(), envelope], &derive());
        assert_eq!(back, Ok(None), "AMQP -> ZeroMQ -> AMQP");
        let Ok(Some(bridged)) = fedmsg_to_amqp(
            &frames(json!({"topic": "a.b", "msg": {}, "msg_id": "2020-x"})),
            &derive(),
        ) else {
            panic!("translated")
        };
        assert!(
            amqp_to_fedmsg(&bridged, 1).is_none(),
            "ZeroMQ -> AMQP -> ZeroMQ"
        );
        message.headers.insert("username".into(), json!("someone"));
        assert!(amqp_to_fedmsg(&message, 1).is_some());
    }

    #[test]
    fn broken_envelopes_say_why() {
        let err = fedmsg_to_amqp(&[b"a.b".to_vec(), b"{\"topic\": 1}".to_vec()], &derive());
        assert!(
            matches!(&err, Err(reason) if reason.contains("`topic`")),
            "{err:?}"
        );
    }
}
