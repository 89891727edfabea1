//! The one accept path every bus goes through, and the seam a bus plugs into.
//!
//! A [`Source`] yields raw input (bytes in its wire's shape, and where they came from) in
//! batches of whatever it has ready, and is told what became of each one once that is
//! settled. [`Accept`] is the pipeline: decode, derive metadata, archive (de-duplicated by
//! message id, rejected input recorded) in one transaction per batch, count, wake the
//! matcher. [`run`] drives a source through it until shutdown.
//!
//! The rules every source gets from here:
//! - an input is acknowledged only after the transaction that stored it committed;
//! - malformed input is recorded as rejected, counted, and skipped; it never fails the
//!   rest of its batch;
//! - a message heard again (same id) is dropped as a duplicate, and acknowledged;
//! - a database outage is not bad input: the batch waits and is tried again for as long as
//!   it takes, and nothing is acknowledged meanwhile.
//!
//! ZeroMQ ([`zmq`]) is a pulled source; the HTTP API pushes one input per request through
//! [`Accept::one`] and acknowledges with its `202`; AMQP ([`amqp`]) is a pulled source with
//! acknowledgements. Adding a bus is one module implementing [`Source`]; see
//! `docs/architecture.md`.

pub mod amqp;
pub mod bridge;
pub mod live;
pub mod trust;
pub mod zmq;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tidings_rules::{Envelope, Message, Metadata};
use tidings_store::{Arrival, Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::outage::patiently;
use crate::{Derive, Metrics, NotifierError};

pub use self::amqp::{AmqpIngest, AmqpTls};
pub use self::trust::{Trust, TrustConfig};
pub use self::zmq::ZmqIngest;

/// Failed attempts to store one message, for a reason that is neither an outage nor a
/// refusal, before it counts as poison and is rejected, so it cannot stall the bus.
const POISON_AFTER: u32 = 5;

/// Raw input from a bus, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// Where it came from (`zmq:tcp://…`, `http:token-name`), as archived with it.
    pub origin: String,
    /// The input in its wire's shape.
    pub wire: Wire,
}

/// The shapes input arrives in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wire {
    /// fedmsg over ZeroMQ: a topic frame and a JSON envelope frame.
    Frames(Vec<Vec<u8>>),
    /// One JSON envelope (the HTTP API): a fedmsg envelope or fedora-messaging's JSON form.
    Json(Vec<u8>),
    /// A fedora-messaging message from AMQP: routing key, `message_id`, headers, body.
    Amqp {
        /// The routing key: the topic.
        topic: String,
        /// The `message_id` property, if set.
        id: Option<String>,
        /// The AMQP headers, as JSON.
        headers: serde_json::Map<String, serde_json::Value>,
        /// The body: JSON.
        body: Vec<u8>,
    },
    /// Input the source already refused (too large, a dropped connection): the reason and
    /// what of it is kept for the record.
    Refused {
        /// Why.
        reason: String,
        /// Its first bytes.
        head: Vec<u8>,
    },
}

impl Wire {
    /// The bytes kept when the input is rejected.
    fn raw(&self) -> Vec<u8> {
        match self {
            Wire::Frames(frames) => frames.join(&b"\n"[..]),
            Wire::Json(bytes) => bytes.clone(),
            Wire::Amqp { topic, body, .. } => [topic.as_bytes(), b"\n", body].concat(),
            Wire::Refused { head, .. } => head.clone(),
        }
    }

    fn decode(&self) -> Result<Envelope, String> {
        match self {
            Wire::Frames(frames) => Envelope::from_frames(frames).map_err(|e| e.to_string()),
            Wire::Json(bytes) => Envelope::from_json(bytes).map_err(|e| e.to_string()),
            Wire::Amqp {
                topic,
                id,
                headers,
                body,
            } => {
                let body = serde_json::from_slice(body).map_err(|e| {
                    format!(
                        "the AMQP body is not JSON at line {}, column {}: {e}",
                        e.line(),
                        e.column()
                    )
                })?;
                Envelope::from_fedora_messaging(topic.clone(), id.clone(), headers.clone(), body)
                    .map_err(|e| e.to_string())
            }
            Wire::Refused { reason, .. } => Err(reason.clone()),
        }
    }

    /// Checks the signature of a fedmsg envelope (ZeroMQ frames, or JSON over HTTP) that
    /// decoded; fedora-messaging messages carry none (their trust is the broker's TLS).
    fn verify(&self, trust: &Trust) -> Result<(), String> {
        let json = match self {
            Wire::Frames(frames) => frames.get(1),
            Wire::Json(bytes) => Some(bytes),
            Wire::Amqp { .. } | Wire::Refused { .. } => None,
        };
        let Some(json) = json else { return Ok(()) };
        match serde_json::from_slice::<Value>(json) {
            // The fedora-messaging JSON form (no `msg`, a `body`) is not fedmsg's.
            Ok(Value::Object(map)) if map.contains_key("msg") || !map.contains_key("body") => {
                trust.check(&map, json)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(format!("envelope is not JSON: {e}")),
        }
    }
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Archived.
    Stored {
        /// Its row id.
        row: i64,
        /// The message's own id.
        id: String,
    },
    /// Heard before (this message id); dropped.
    Duplicate(String),
    /// Malformed or refused; recorded as rejected with this reason.
    Rejected(String),
}

/// A bus: yields raw input and is told what became of each input once it is settled.
pub trait Source: Send {
    /// What the source needs to acknowledge one input (a delivery tag; `()` for a bus
    /// without acknowledgements).
    type Ack: Send;

    /// The input ready now: waits for at least one, returns at most `max`. `None` when
    /// the source has ended.
    fn receive(&mut self, max: usize)
        -> impl Future<Output = Option<Vec<(Raw, Self::Ack)>>> + Send;

    /// Called once per input after its fate is committed to the store: stored, duplicate
    /// or rejected. Never called for input that was not settled (shutdown, a crash): the
    /// bus redelivers that.
    fn settled(&mut self, ack: Self::Ack, accepted: &Accepted) -> impl Future<Output = ()> + Send;

    /// Called once when [`run`] ends (shutdown, or the source ended): hands back what was
    /// delivered and not settled. An AMQP connection closed cleanly returns its
    /// unacknowledged messages to the queue at once, for another consumer to take.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Where the accept path reports outcomes: the notifier's counters, or the web's.
pub trait Tally: Send + Sync {
    /// Counts one settled input.
    fn tally(&self, accepted: &Accepted);

    /// Notes a message archived at `now_ms` that its publisher sent at `sent_at_ms`.
    fn archived(&self, _sent_at_ms: Option<i64>, _now_ms: i64) {}
}

impl Tally for Metrics {
    fn archived(&self, sent_at_ms: Option<i64>, now_ms: i64) {
        Metrics::archived(self, sent_at_ms, now_ms);
    }

    fn tally(&self, accepted: &Accepted) {
        Metrics::bump(match accepted {
            Accepted::Stored { .. } => &self.ingested,
            Accepted::Duplicate(_) => &self.duplicates,
            Accepted::Rejected(_) => &self.rejected,
        });
    }
}

/// The accept pipeline: decode, metadata, archive, count, wake. Cheap to clone.
#[derive(Clone)]
pub struct Accept {
    store: Store,
    derive: Derive,
    tally: Arc<dyn Tally>,
    wake: Arc<Notify>,
    trust: Option<Arc<Trust>>,
}

/// One input, decoded with its metadata, or why it is malformed.
type Decoded = Result<(Message, Metadata), String>;

impl Accept {
    /// A pipeline into `store` that derives metadata with `derive`, reports to `tally` and
    /// pokes `wake` (the matcher) after each batch that stored a message.
    pub fn new(store: Store, derive: Derive, tally: Arc<dyn Tally>, wake: Arc<Notify>) -> Accept {
        Accept {
            store,
            derive,
            tally,
            wake,
            trust: None,
        }
    }

    /// The same pipeline, refusing fedmsg envelopes whose signature `trust` does not
    /// accept (`bus.verify_signatures`); `None` accepts them unchecked.
    pub fn verifying(mut self, trust: Option<Arc<Trust>>) -> Accept {
        self.trust = trust;
        self
    }

    fn decode(&self, raw: &Raw) -> Decoded {
        let envelope = raw.wire.decode()?;
        if let Some(trust) = &self.trust {
            raw.wire.verify(trust)?;
        }
        let metadata = (self.derive)(&envelope.message);
        Ok((envelope.message, metadata))
    }

    /// Archives a batch in one transaction and reports each input's fate, in order. On
    /// error nothing of the batch is stored.
    pub async fn batch(&self, inputs: &[Raw]) -> Result<Vec<Accepted>, NotifierError> {
        let decoded: Vec<Decoded> = inputs.iter().map(|raw| self.decode(raw)).collect();
        let kept: Vec<Vec<u8>> = inputs
            .iter()
            .zip(&decoded)
            .map(|(raw, d)| match d {
                Err(_) => raw.wire.raw(),
                Ok(_) => Vec::new(),
            })
            .collect();
        let arrivals: Vec<Arrival<'_>> = inputs
            .iter()
            .zip(&decoded)
            .zip(&kept)
            .map(|((raw, d), kept)| match d {
                Ok((message, metadata)) => Arrival::Message {
                    message,
                    metadata,
                    source: &raw.origin,
                },
                Err(reason) => Arrival::Rejected {
                    source: &raw.origin,
                    reason,
                    raw: kept,
                },
            })
            .collect();
        let ids = self.store.archive(&arrivals).await?;
        let (at, listening) = (tidings_store::now_ms(), live::listening());
        for (d, id) in decoded.iter().zip(&ids) {
            if let (Ok((message, metadata)), Some(_)) = (d, id) {
                self.tally.archived(message.sent_at, at);
                if listening {
                    live::publish(live::LiveEvent {
                        topic: message.topic.clone(),
                        app: metadata.app.clone(),
                        summary: metadata.summary.clone(),
                        at,
                    });
                }
            }
        }
        let accepted: Vec<Accepted> = decoded
            .into_iter()
            .zip(ids)
            .map(|(d, id)| match (d, id) {
                (Err(reason), _) => Accepted::Rejected(reason),
                (Ok((message, _)), Some(row)) => Accepted::Stored {
                    row,
                    id: message.id,
                },
                (Ok((message, _)), None) => Accepted::Duplicate(message.id),
            })
            .collect();
        self.settle(inputs, &accepted);
        Ok(accepted)
    }

    /// Archives one input. Input the database refuses for its own sake (too long, not
    /// storable) is recorded as rejected like malformed input; any other error is returned.
    pub async fn one(&self, raw: Raw) -> Result<Accepted, NotifierError> {
        match self.batch(std::slice::from_ref(&raw)).await {
            Err(NotifierError::Store(StoreError::Refused { reason })) => {
                let reason = format!("the message cannot be stored: {reason}");
                self.reject(&raw, &reason).await?;
                Ok(Accepted::Rejected(reason))
            }
            done => done?.pop().ok_or_else(|| NotifierError::Bus {
                what: format!("archiving input from {}: no outcome", raw.origin),
            }),
        }
    }

    /// Records `raw` as rejected, for a reason found after decoding, and counts it.
    async fn reject(&self, raw: &Raw, reason: &str) -> Result<(), NotifierError> {
        self.store
            .reject_message(&raw.origin, reason, &raw.wire.raw())
            .await?;
        let accepted = Accepted::Rejected(reason.to_string());
        self.settle(std::slice::from_ref(raw), std::slice::from_ref(&accepted));
        Ok(())
    }

    /// Logs rejections, counts every outcome, and wakes the matcher if anything was stored.
    fn settle(&self, inputs: &[Raw], accepted: &[Accepted]) {
        let mut stored = false;
        for (raw, accepted) in inputs.iter().zip(accepted) {
            match accepted {
                Accepted::Stored { .. } => stored = true,
                Accepted::Duplicate(id) => {
                    tracing::debug!(source = %raw.origin, msg_id = %id, "duplicate message dropped")
                }
                Accepted::Rejected(reason) => {
                    tracing::warn!(source = %raw.origin, %reason, "bus input rejected and skipped")
                }
            }
            self.tally.tally(accepted);
        }
        if stored {
            self.wake.notify_one();
        }
    }

    /// Settles a batch, waiting out outages. When the batch as a whole fails for another
    /// reason (one message the database refuses), it is settled one input at a time, so the
    /// others are stored and only the bad one is rejected. `None` on shutdown.
    async fn settle_patiently(
        &self,
        inputs: &[Raw],
        retry_max: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Vec<Accepted>> {
        let what = match inputs.len() {
            1 => "archiving a bus message",
            _ => "archiving bus messages",
        };
        match patiently(what, retry_max, shutdown, || self.batch(inputs)).await? {
            Ok(accepted) => return Some(accepted),
            Err(err) if inputs.len() > 1 => tracing::warn!(
                error = %err,
                messages = inputs.len(),
                "archiving a batch failed; archiving its messages one by one"
            ),
            Err(_) => {}
        }
        let mut accepted = Vec::with_capacity(inputs.len());
        for raw in inputs {
            accepted.push(self.one_patiently(raw, retry_max, shutdown).await?);
        }
        Some(accepted)
    }

    /// Archives one input, waiting out outages and rejecting poison. `None` on shutdown.
    async fn one_patiently(
        &self,
        raw: &Raw,
        retry_max: Duration,
        shutdown: &CancellationToken,
    ) -> Option<Accepted> {
        let mut failures = 0;
        loop {
            let error = match patiently("archiving a bus message", retry_max, shutdown, || {
                self.one(raw.clone())
            })
            .await?
            {
                Ok(accepted) => return Some(accepted),
                Err(err) => err,
            };
            failures += 1;
            tracing::error!(error = %error, failures, "archiving a bus message failed");
            // A few more tries before the message counts as poison and is rejected.
            if failures >= POISON_AFTER {
                let reason = format!("could not be stored: {error}");
                let recorded = patiently("recording rejected input", retry_max, shutdown, || {
                    self.reject(raw, &reason)
                })
                .await?;
                if let Err(err) = recorded {
                    // Logged at least; the input cannot be kept.
                    tracing::error!(source = %raw.origin, %reason, error = %err, "recording rejected input failed");
                }
                return Some(Accepted::Rejected(reason));
            }
            if !crate::outage::pause(shutdown, Duration::from_millis(500)).await {
                return None;
            }
        }
    }
}

/// How [`run`] groups and waits.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    /// The most inputs archived in one transaction.
    pub batch: usize,
    /// The longest wait between attempts while the database is unavailable.
    pub retry_max: Duration,
}

/// Drives `source` through `accept` until `shutdown` or the source ends: each batch of
/// ready input is archived in one transaction, then each input is acknowledged.
pub async fn run<S: Source>(
    mut source: S,
    accept: &Accept,
    settings: RunSettings,
    shutdown: &CancellationToken,
) {
    loop {
        let received = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            received = source.receive(settings.batch.max(1)) => received,
        };
        let Some(received) = received else { break };
        let (inputs, acks): (Vec<Raw>, Vec<S::Ack>) = received.into_iter().unzip();
        // A batch being archived when shutdown comes is finished and acknowledged; only
        // a wait for the database is cut short (the batch then goes back unacknowledged).
        let Some(accepted) = accept
            .settle_patiently(&inputs, settings.retry_max, shutdown)
            .await
        else {
            break;
        };
        for (ack, accepted) in acks.into_iter().zip(&accepted) {
            source.settled(ack, accepted).await;
        }
    }
    source.close().await;
}
