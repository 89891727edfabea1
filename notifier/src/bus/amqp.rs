//! AMQP 0-9-1 ingest (issue 12): today's Fedora bus, fedora-messaging on RabbitMQ.
//!
//! A durable queue is declared and bound to the configured exchange (`amq.topic`) with the
//! configured routing keys; messages are consumed with a prefetch window and read whole —
//! routing key as topic, `message_id`, the JSON body, the AMQP headers
//! (`fedora_messaging_schema`, `fedora_messaging_severity`, `sent-at`,
//! `fedora_messaging_user_*`, ...). Through the one accept path ([`super::run`]) each is
//! acknowledged only after the transaction that archived it committed: a stored message
//! or a duplicate is acked; a malformed one is recorded as rejected and then rejected
//! without requeueing, which RabbitMQ dead-letters through the fanout exchange
//! `<queue>.dead` to the queue `<queue>.dead` (both declared here), its topic kept, so it
//! is never redelivered forever. Messages not yet settled when the connection drops or the
//! process stops are redelivered by the broker (a redelivered message that was archived is
//! a duplicate, acked).
//!
//! A connection that fails, or cannot be made, is made again with backoff (1 s doubling to
//! 30 s) until shutdown; every network call has a time limit. Several processes consuming
//! the same queue share its messages (competing consumers): each message goes to one.
//!
//! TLS (`amqps://`) is set up as fedora-messaging's `[tls]` section does it ([`AmqpTls`]):
//! the broker's certificate is checked against `ca_cert` (and the system's roots), and with
//! a client certificate and key the connection authenticates as the certificate's subject
//! (SASL EXTERNAL), as Fedora's broker requires, unless the URL names another
//! `auth_mechanism`.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;

use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::uri::{AMQPScheme, AMQPUri, SASLMechanism};
use lapin::{Acker, BasicProperties, Connect as _, Connection, ConnectionProperties, Consumer};
use serde_json::{Map, Value};
use std::sync::Arc;
use tidings_rules::Message;
use tidings_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Accept, Accepted, Raw, RunSettings, Source, Wire};
use crate::{Derive, Metrics, NotifierError};

/// Messages archived in one transaction at most (and the default prefetch).
pub const BATCH: usize = 256;
/// The longest any one call to the broker may take.
const CALL_LIMIT: Duration = Duration::from_secs(15);
/// The first wait before connecting again; doubled per failure up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// The longest wait before connecting again.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Where AMQP ingest connects and what it consumes (the `[bus.amqp]` section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpIngest {
    /// The broker: `amqp://user:password@host:5672/%2f` (or `amqps://…`).
    pub url: String,
    /// The exchange the queue is bound to (fedora-messaging publishes to `amq.topic`).
    pub exchange: String,
    /// The queue: durable, shared by every Tidings process (competing consumers).
    pub queue: String,
    /// Routing keys (topics, `#` and `*` as AMQP topic patterns) bound to the queue.
    pub routing_keys: Vec<String>,
    /// Messages delivered ahead of their acknowledgement.
    pub prefetch: u16,
    /// The longest wait between attempts while the database is unavailable.
    pub retry_max: Duration,
    /// TLS settings for `amqps://`.
    pub tls: AmqpTls,
}

/// TLS to the broker, fedora-messaging's `[tls]` keys (`[bus.amqp.tls]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmqpTls {
    /// PEM file of the CA(s) the broker's certificate is checked against, besides the
    /// system's roots.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate (and its chain), sent when the broker asks.
    pub certfile: Option<PathBuf>,
    /// PEM file of its private key.
    pub keyfile: Option<PathBuf>,
}

impl AmqpTls {
    /// As lapin takes it: files read now, an unreadable one named by its setting.
    fn config(&self) -> Result<OwnedTLSConfig, NotifierError> {
        let read = |path: &PathBuf, field: &'static str| {
            std::fs::read(path).map_err(|e| NotifierError::Config {
                field,
                reason: format!("cannot read {}: {e}", path.display()),
            })
        };
        let mut config = OwnedTLSConfig::default();
        if let Some(path) = &self.ca_cert {
            let pem = read(path, "bus.amqp.tls.ca_cert")?;
            config.cert_chain =
                Some(String::from_utf8(pem).map_err(|_| NotifierError::Config {
                    field: "bus.amqp.tls.ca_cert",
                    reason: format!("{} is not a PEM file", path.display()),
                })?);
        }
        match (&self.certfile, &self.keyfile) {
            (Some(cert), Some(key)) => {
                config.identity = Some(OwnedIdentity::PKCS8 {
                    pem: read(cert, "bus.amqp.tls.certfile")?,
                    key: read(key, "bus.amqp.tls.keyfile")?,
                });
            }
            (None, None) => {}
            _ => {
                return Err(NotifierError::Config {
                    field: "bus.amqp.tls",
                    reason: "certfile and keyfile go together; set both or neither".into(),
                })
            }
        }
        Ok(config)
    }

    /// What to set when the broker refused the connection for what looks like a TLS
    /// reason.
    fn hint(&self, error: &str) -> Option<&'static str> {
        let error = error.to_ascii_lowercase();
        if error.contains("unknownissuer")
            || error.contains("invalid peer certificate")
            || error.contains("notvalidforname")
        {
            return Some(if self.ca_cert.is_none() {
                "the broker's certificate is not trusted: set bus.amqp.tls.ca_cert to the CA \
                 that signed it"
            } else {
                "the broker's certificate is not trusted by bus.amqp.tls.ca_cert (or is not \
                 for this host name)"
            });
        }
        if error.contains("certificaterequired") {
            return Some(
                "the broker requires a client certificate: set bus.amqp.tls.certfile and \
                 bus.amqp.tls.keyfile",
            );
        }
        let tls = [
            "alert",
            "certificate",
            "handshake",
            "tls",
            "reset",
            "closed",
            "eof",
        ];
        if tls.iter().any(|word| error.contains(word)) {
            return Some(if self.certfile.is_none() {
                "the broker may require a client certificate: set bus.amqp.tls.certfile and \
                 bus.amqp.tls.keyfile"
            } else {
                "the broker may not accept the client certificate in bus.amqp.tls.certfile \
                 (not signed by a CA it trusts, expired, or no user named by its subject)"
            });
        }
        None
    }
}

/// Connects to the broker at `url` with `tls` (for `amqps://`): with a client certificate,
/// as its subject (SASL EXTERNAL) unless the URL names an `auth_mechanism`.
pub async fn connect(url: &str, tls: &AmqpTls) -> Result<Connection, NotifierError> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e| failed("connecting", format!("bus.amqp.url does not parse: {e}")))?;
    let config = tls.config()?;
    let over_tls = uri.scheme == AMQPScheme::AMQPS;
    if over_tls && config.identity.is_some() && uri.query.auth_mechanism.is_none() {
        uri.query.auth_mechanism = Some(SASLMechanism::External);
    }
    let runtime = lapin::runtime::default_runtime().map_err(|e| failed("connecting", e))?;
    let connecting = uri.connect_with_config(ConnectionProperties::default(), config, runtime);
    match tokio::time::timeout(CALL_LIMIT, connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(err)) => {
            let text = err.to_string();
            Err(match (over_tls, tls.hint(&text)) {
                (true, Some(hint)) => failed("connecting", format!("{text} ({hint})")),
                _ => failed("connecting", text),
            })
        }
        Err(_) => Err(failed(
            "connecting",
            format!("no answer within {} s", CALL_LIMIT.as_secs()),
        )),
    }
}

impl AmqpIngest {
    /// The dead-letter queue malformed messages go to.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }

    /// The URL without its password, for logs and the archive's `source`.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("***"));
                }
                url.to_string()
            }
            Err(_) => "(an AMQP URL that does not parse)".into(),
        }
    }
}

/// A broker failure, named by what was being done.
fn failed(what: &str, err: impl std::fmt::Display) -> NotifierError {
    NotifierError::Bus {
        what: format!("AMQP {what}: {err}"),
    }
}

/// `call`, or a failure once [`CALL_LIMIT`] passed.
pub(super) async fn limited<T, E: std::fmt::Display>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, NotifierError> {
    match tokio::time::timeout(CALL_LIMIT, call).await {
        Ok(result) => result.map_err(|e| failed(what, e)),
        Err(_) => Err(failed(
            what,
            format!("no answer within {} s", CALL_LIMIT.as_secs()),
        )),
    }
}

/// Connects, declares the queue (and its dead-letter queue), binds it and starts
/// consuming.
async fn consume(bus: &AmqpIngest) -> Result<(Connection, Consumer), NotifierError> {
    let connection = connect(&bus.url, &bus.tls).await?;
    let channel = limited("opening a channel", connection.create_channel()).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    // Dead letters go through a fanout exchange of the same name to their queue, keeping
    // their routing key (the topic), so that they can be looked at and published again.
    let dead = bus.dead_letter_queue();
    limited(
        "declaring the dead-letter exchange",
        channel.exchange_declare(
            dead.as_str().into(),
            lapin::ExchangeKind::Fanout,
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..lapin::options::ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await?;
    limited(
        "declaring the dead-letter queue",
        channel.queue_declare(dead.as_str().into(), durable, FieldTable::default()),
    )
    .await?;
    limited(
        "binding the dead-letter queue",
        channel.queue_bind(
            dead.as_str().into(),
            dead.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from(dead.as_str())),
    );
    limited(
        "declaring the queue (one declared before with other arguments must be deleted)",
        channel.queue_declare(bus.queue.as_str().into(), durable, arguments),
    )
    .await?;
    for key in &bus.routing_keys {
        limited(
            "binding the queue",
            channel.queue_bind(
                bus.queue.as_str().into(),
                bus.exchange.as_str().into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    }
    limited(
        "setting the prefetch",
        channel.basic_qos(bus.prefetch.max(1), BasicQosOptions::default()),
    )
    .await?;
    let consumer = limited(
        "starting to consume",
        channel.basic_consume(
            bus.queue.as_str().into(),
            "tidings".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    Ok((connection, consumer))
}

/// Connects to `bus`'s broker and checks that its exchange is there, changing nothing
/// (`tidings doctor`).
pub async fn check(bus: &AmqpIngest) -> Result<(), NotifierError> {
    let connection = connect(&bus.url, &bus.tls).await?;
    let channel = limited("opening a channel", connection.create_channel()).await?;
    limited(
        &format!("looking for the exchange {:?}", bus.exchange),
        channel.exchange_declare(
            bus.exchange.as_str().into(),
            lapin::ExchangeKind::Topic,
            lapin::options::ExchangeDeclareOptions {
                passive: true,
                ..lapin::options::ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        ),
    )
    .await?;
    let _ = limited("closing", connection.close(200, "checked".into())).await;
    Ok(())
}

/// Deletes `bus`'s queue, its dead-letter queue and exchange, whatever they hold (for
/// benchmarks that declared a queue of their own).
pub async fn delete_queues(bus: &AmqpIngest) -> Result<(), NotifierError> {
    let connection = connect(&bus.url, &bus.tls).await?;
    let channel = limited("opening a channel", connection.create_channel()).await?;
    let dead = bus.dead_letter_queue();
    for queue in [bus.queue.as_str(), dead.as_str()] {
        limited(
            &format!("deleting the queue {queue:?}"),
            channel.queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default()),
        )
        .await?;
    }
    limited(
        "deleting the dead-letter exchange",
        channel.exchange_delete(
            dead.as_str().into(),
            lapin::options::ExchangeDeleteOptions::default(),
        ),
    )
    .await?;
    let _ = limited("closing", connection.close(200, "done".into())).await;
    Ok(())
}

/// An AMQP header value as JSON (byte strings as text where they are UTF-8).
fn json_of(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(f) => Value::from(f64::from(*f)),
        AMQPValue::Double(f) => Value::from(*f),
        AMQPValue::DecimalValue(d) => {
            Value::from(f64::from(d.value) / 10f64.powi(i32::from(d.scale)))
        }
        AMQPValue::ShortString(s) => Value::String(s.as_str().to_string()),
        AMQPValue::LongString(s) => Value::String(String::from_utf8_lossy(s.as_bytes()).into()),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into()),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(json_of).collect())
        }
        AMQPValue::FieldTable(table) => Value::Object(headers_json(table)),
        AMQPValue::Void => Value::Null,
    }
}

/// AMQP headers as a JSON object.
pub fn headers_json(table: &FieldTable) -> Map<String, Value> {
    table
        .into_iter()
        .map(|(key, value)| (key.as_str().to_string(), json_of(value)))
        .collect()
}

/// A JSON header value as AMQP (what fedora-messaging's own client sends).
fn amqp_of(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => AMQPValue::LongLongInt(i),
            (None, Some(f)) => AMQPValue::Double(f),
            (None, None) => AMQPValue::Void,
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_str())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(amqp_of).collect::<Vec<_>>(),
        )),
        Value::Object(map) => AMQPValue::FieldTable(headers_table(map)),
    }
}

fn headers_table(map: &Map<String, Value>) -> FieldTable {
    let mut table = FieldTable::default();
    for (key, value) in map {
        // Keys past 255 bytes cannot be sent; fedora-messaging's never are.
        if let Ok(key) = ShortString::try_new(key.as_str()) {
            table.insert(key, amqp_of(value));
        }
    }
    table
}

/// Publishes `messages` as fedora-messaging does (see [`AmqpPublisher::send`]) on a
/// connection of its own, closed afterwards.
pub async fn publish(url: &str, exchange: &str, messages: &[Message]) -> Result<(), NotifierError> {
    publish_with(url, &AmqpTls::default(), exchange, messages).await
}

/// [`publish`] with TLS settings (`tidings publish --amqp` takes `[bus.amqp.tls]`).
pub async fn publish_with(
    url: &str,
    tls: &AmqpTls,
    exchange: &str,
    messages: &[Message],
) -> Result<(), NotifierError> {
    let publisher = AmqpPublisher::connect(url, tls, exchange).await?;
    let sent = publisher.send(messages).await;
    publisher.close().await;
    sent
}

/// The most publishes awaiting the broker's confirmation at once.
const CONFIRM_WINDOW: usize = 512;

/// A connection publishing to one exchange with publisher confirms.
pub struct AmqpPublisher {
    connection: Connection,
    channel: lapin::Channel,
    exchange: String,
}

impl AmqpPublisher {
    /// Connects to the broker at `url` (with `tls`) to publish to `exchange`.
    pub async fn connect(
        url: &str,
        tls: &AmqpTls,
        exchange: &str,
    ) -> Result<AmqpPublisher, NotifierError> {
        let connection = connect(url, tls).await?;
        let channel = limited("opening a channel", connection.create_channel()).await?;
        limited(
            "turning on publisher confirms",
            channel.confirm_select(lapin::options::ConfirmSelectOptions::default()),
        )
        .await?;
        Ok(AmqpPublisher {
            connection,
            channel,
            exchange: exchange.to_string(),
        })
    }

    /// Publishes `messages` as fedora-messaging does: the topic as routing key, JSON body,
    /// `message_id`, persistent, and its headers (`sent-at` added when the message has a
    /// send time and no such header). Up to [`CONFIRM_WINDOW`] wait for their
    /// confirmation at once; returns once the broker confirmed every one.
    pub async fn send(&self, messages: &[Message]) -> Result<(), NotifierError> {
        let mut waiting = std::collections::VecDeque::with_capacity(CONFIRM_WINDOW);
        for message in messages {
            let (topic, body, properties) = outgoing(message)?;
            let confirm = limited(
                "publishing",
                self.channel.basic_publish(
                    self.exchange.as_str().into(),
                    topic,
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                ),
            )
            .await?;
            waiting.push_back(confirm);
            if waiting.len() >= CONFIRM_WINDOW {
                if let Some(confirm) = waiting.pop_front() {
                    confirmed(confirm).await?;
                }
            }
        }
        for confirm in waiting {
            confirmed(confirm).await?;
        }
        Ok(())
    }

    /// Closes the connection (within the call limit).
    pub async fn close(self) {
        let _ = limited("closing", self.connection.close(200, "done".into())).await;
    }
}

/// Waits for the broker's answer to one publish: an error if it refused it (a nack).
async fn confirmed(confirm: lapin::PublisherConfirm) -> Result<(), NotifierError> {
    let confirmation = limited("waiting for the broker's confirmation", confirm).await?;
    if confirmation.is_nack() {
        return Err(failed(
            "publishing",
            "the broker refused the message (nack)",
        ));
    }
    Ok(())
}

/// The headers `message` is published with: its own, and `sent-at` when it has a send
/// time and no such header.
pub fn published_headers(message: &Message) -> Map<String, Value> {
    let mut headers: Map<String, Value> = message.headers.clone().into_iter().collect();
    if let (Some(ms), false) = (message.sent_at, headers.contains_key("sent-at")) {
        if let Some(at) = chrono::DateTime::from_timestamp_millis(ms) {
            headers.insert("sent-at".into(), Value::String(at.to_rfc3339()));
        }
    }
    headers
}

/// A message as fedora-messaging puts it on the wire: routing key, body, properties.
pub(super) fn outgoing(
    message: &Message,
) -> Result<(ShortString, Vec<u8>, BasicProperties), NotifierError> {
    let headers = published_headers(message);
    let body = serde_json::to_vec(&message.body).map_err(|e| failed("writing a body", e))?;
    let topic = ShortString::try_new(message.topic.as_str())
        .map_err(|e| failed("publishing", format!("topic {:?}: {e}", message.topic)))?;
    let id = ShortString::try_new(message.id.as_str())
        .map_err(|e| failed("publishing", format!("id {:?}: {e}", message.id)))?;
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_content_encoding("utf-8".into())
        .with_delivery_mode(2)
        .with_message_id(id)
        .with_headers(headers_table(&headers));
    Ok((topic, body, properties))
}

/// Consumes `bus` and archives what arrives until `shutdown`, in batches of what is ready
/// (one transaction each). Wakes the matcher after each batch that stored a message.
pub async fn run_amqp(
    bus: AmqpIngest,
    store: Store,
    derive: Derive,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    tracing::info!(
        broker = %bus.redacted_url(),
        exchange = %bus.exchange,
        queue = %bus.queue,
        routing_keys = ?bus.routing_keys,
        "consuming fedora-messaging messages over AMQP"
    );
    tokio::spawn(watch_queue(
        bus.clone(),
        metrics.clone(),
        shutdown.child_token(),
    ));
    let accept = Accept::new(store, derive, metrics, wake);
    let settings = RunSettings {
        batch: usize::from(bus.prefetch.max(1)).min(BATCH),
        retry_max: bus.retry_max,
    };
    let source = AmqpSource::new(bus);
    super::run(source, &accept, settings, &shutdown).await;
    Ok(())
}

/// How often [`watch_queue`] reads the queue's depth.
const QUEUE_READ_EVERY: Duration = Duration::from_secs(5);

/// Reads how many messages wait in `bus`'s queue into the `amqp_queue` gauge every
/// [`QUEUE_READ_EVERY`] until `shutdown`, on a connection of its own (so the figure is
/// fresh while ingest waits for the database, when the queue grows). While the broker is
/// unreachable the gauge says -1.
async fn watch_queue(bus: AmqpIngest, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut open: Option<(Connection, lapin::Channel)> = None;
    loop {
        if open.is_none() {
            let connected = async {
                let connection = connect(&bus.url, &bus.tls).await?;
                let channel = limited("opening a channel", connection.create_channel()).await?;
                Ok::<_, NotifierError>((connection, channel))
            };
            open = connected.await.ok();
        }
        let depth = match &open {
            Some((_, channel)) => limited(
                "reading the queue's depth",
                channel.queue_declare(
                    bus.queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                ),
            )
            .await
            .map(|queue| i64::from(queue.message_count())),
            None => Err(failed("reading the queue's depth", "not connected")),
        };
        match depth {
            Ok(depth) => {
                metrics.amqp_queue.set(depth);
            }
            Err(err) => {
                tracing::debug!(error = %err, "the AMQP queue's depth is unknown");
                metrics.amqp_queue.set(-1);
                // A passive declare of a missing queue closes the channel: start over.
                open = None;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(QUEUE_READ_EVERY) => {}
        }
    }
    if let Some((connection, _)) = open {
        let _ = limited("closing", connection.close(200, "done".into())).await;
    }
}

/// The consuming connection, made again whenever it fails.
pub(super) struct AmqpSource {
    bus: AmqpIngest,
    origin: String,
    live: Option<(Connection, Consumer)>,
    backoff: Duration,
}

impl AmqpSource {
    /// A source consuming `bus`'s queue; it connects on the first receive.
    pub(super) fn new(bus: AmqpIngest) -> AmqpSource {
        AmqpSource {
            origin: format!("amqp:{}/{}", bus.redacted_url(), bus.queue),
            bus,
            live: None,
            backoff: RECONNECT_FIRST,
        }
    }

    /// The consumer, connecting (again) first if there is none; waits out failures.
    async fn consumer(&mut self) -> &mut Consumer {
        loop {
            if self.live.is_some() {
                break;
            }
            match consume(&self.bus).await {
                Ok(live) => {
                    tracing::info!(queue = %self.bus.queue, "AMQP consumer connected");
                    self.live = Some(live);
                    self.backoff = RECONNECT_FIRST;
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_s = self.backoff.as_secs(), "AMQP broker unavailable; connecting again");
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(RECONNECT_MAX);
                }
            }
        }
        match &mut self.live {
            Some((_, consumer)) => consumer,
            None => unreachable!("connected above"),
        }
    }

    fn raw(&self, delivery: &lapin::message::Delivery) -> Raw {
        let properties = &delivery.properties;
        Raw {
            origin: self.origin.clone(),
            wire: Wire::Amqp {
                topic: delivery.routing_key.as_str().to_string(),
                id: properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.as_str().to_string()),
                headers: properties
                    .headers()
                    .as_ref()
                    .map(headers_json)
                    .unwrap_or_default(),
                body: delivery.data.clone(),
            },
        }
    }
}

impl Source for AmqpSource {
    type Ack = Acker;

    async fn receive(&mut self, max: usize) -> Option<Vec<(Raw, Acker)>> {
        loop {
            let consumer = self.consumer().await;
            let first = match consumer.next().await {
                Some(Ok(delivery)) => delivery,
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "AMQP connection lost; connecting again");
                    self.live = None;
                    continue;
                }
                None => {
                    tracing::warn!("AMQP consumer cancelled by the broker; consuming again");
                    self.live = None;
                    continue;
                }
            };
            let mut ready = vec![(self.raw(&first), first.acker)];
            // What else has already arrived, without waiting.
            while ready.len() < max {
                let Some((_, consumer)) = &mut self.live else {
                    break;
                };
                match futures_util::FutureExt::now_or_never(consumer.next()) {
                    Some(Some(Ok(delivery))) => {
                        let raw = self.raw(&delivery);
                        ready.push((raw, delivery.acker));
                    }
                    _ => break,
                }
            }
            return Some(ready);
        }
    }

    async fn settled(&mut self, ack: Acker, accepted: &Accepted) {
        let done = match accepted {
            Accepted::Stored { .. } | Accepted::Duplicate(_) => {
                limited("acknowledging", ack.ack(BasicAckOptions::default())).await
            }
            // Dead-lettered to `<queue>.dead`, never redelivered.
            Accepted::Rejected(_) => {
                limited(
                    "rejecting",
                    ack.reject(BasicRejectOptions { requeue: false }),
                )
                .await
            }
        };
        if let Err(err) = done {
            // Its fate is in the store; the broker redelivers it on the next connection,
            // and it is then a duplicate (or rejected again).
            tracing::warn!(error = %err, "an AMQP acknowledgement failed; the message comes again");
            self.live = None;
        }
    }

    async fn close(&mut self) {
        if let Some((connection, _)) = self.live.take() {
            // Closing the connection ends the consumer; the broker puts what it delivered
            // ahead (prefetch) and was not acknowledged back in the queue, in order.
            match limited("closing", connection.close(200, "shutting down".into())).await {
                Ok(()) => {
                    tracing::info!(queue = %self.bus.queue, "AMQP consumer closed; unacknowledged messages are back in the queue")
                }
                Err(err) => {
                    tracing::warn!(error = %err, "closing the AMQP connection failed; the broker returns its messages once it sees the connection gone")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_go_both_ways() {
        let headers = serde_json::json!({
            "fedora_messaging_schema": "bodhi.update.comment.v1",
            "fedora_messaging_severity": 20,
            "fedora_messaging_user_alice": true,
            "sent-at": "2025-01-01T12:00:00+00:00",
            "nested": {"a": [1, 2.5, null]},
        });
        let Value::Object(map) = headers else {
            panic!("an object")
        };
        assert_eq!(headers_json(&headers_table(&map)), map);
    }

    #[test]
    fn passwords_stay_out_of_logs() {
        let bus = AmqpIngest {
            url: "amqp://tidings:s3cret@broker:5672/%2f".into(),
            exchange: "amq.topic".into(),
            queue: "q".into(),
            routing_keys: vec!["#".into()],
            prefetch: 10,
            retry_max: Duration::from_secs(1),
            tls: AmqpTls::default(),
        };
        assert!(
            !bus.redacted_url().contains("s3cret"),
            "{}",
            bus.redacted_url()
        );
        assert_eq!(bus.dead_letter_queue(), "q.dead");
    }
}
