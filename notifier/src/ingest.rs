//! Bus ingest: what the ZeroMQ reader (`zmq_source`) hands over is decoded, its metadata
//! derived, de-duplicated and archived. Bad input is logged, counted, kept in the rejected
//! table, and skipped; ingest goes on.
//!
//! A database outage is not bad input: while the store is unavailable, ingest waits and
//! tries again with capped backoff for as long as it takes, and stops reading meanwhile
//! (libzmq queues). Only what the store refuses for the message's own sake is rejected.

use std::sync::Arc;
use std::time::Duration;

use tidings_rules::Envelope;
use tidings_store::{Store, StoreError};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::outage::{patiently, widen};
use crate::zmq_source::{Input, Reader};
use crate::{Derive, Metrics, NotifierError};

/// Failed attempts to store one message, for a reason that is neither an outage nor a
/// refusal, before it counts as poison and is rejected, so it cannot stall the bus.
const POISON_AFTER: u32 = 5;

/// Where ingest listens and what it accepts (from the `[bus]` and `[database]` settings).
#[derive(Debug, Clone)]
pub struct ZmqIngest {
    /// ZeroMQ endpoints to SUB-connect to (fedmsg publishers).
    pub endpoints: Vec<String>,
    /// The largest message accepted, in bytes (all frames together; libzmq refuses any
    /// one frame over it before buffering it).
    pub max_message_bytes: usize,
    /// The longest wait between attempts while the database is unavailable.
    pub retry_max: Duration,
}

/// What one ZeroMQ message became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Archived under this row id.
    Stored(i64),
    /// Heard before; dropped.
    Duplicate,
    /// Malformed; recorded as rejected with this reason.
    Rejected(String),
}

/// Archives one raw input (the frames of a ZeroMQ message) and says what became of it.
pub async fn accept(
    store: &Store,
    derive: &Derive,
    metrics: &Metrics,
    source: &str,
    frames: &[Vec<u8>],
) -> Result<Accepted, NotifierError> {
    match Envelope::from_frames(frames) {
        Ok(envelope) => {
            let metadata = derive(&envelope.message);
            match store
                .insert_message(&envelope.message, &metadata, source)
                .await?
            {
                Some(id) => {
                    Metrics::bump(&metrics.ingested);
                    Ok(Accepted::Stored(id))
                }
                None => {
                    Metrics::bump(&metrics.duplicates);
                    tracing::debug!(msg_id = %envelope.message.id, "duplicate message dropped");
                    Ok(Accepted::Duplicate)
                }
            }
        }
        Err(err) => {
            let reason = err.to_string();
            let raw = frames.join(&b"\n"[..]);
            store.reject_message(source, &reason, &raw).await?;
            tracing::warn!(%source, %reason, "malformed bus message skipped");
            Metrics::bump(&metrics.rejected);
            Ok(Accepted::Rejected(reason))
        }
    }
}

/// Subscribes to every endpoint and archives what arrives until `shutdown`. Wakes the
/// matcher after each stored message.
pub async fn run_zmq(
    bus: ZmqIngest,
    store: Store,
    derive: Derive,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    if bus.endpoints.is_empty() {
        shutdown.cancelled().await;
        return Ok(());
    }
    // Small: each entry may hold up to the cap, and libzmq queues behind it anyway.
    let (tx, mut rx) = mpsc::channel::<Input>(64);
    let reader = Reader::connect(&bus.endpoints, bus.max_message_bytes)?;
    let stop = shutdown.clone();
    let reader = std::thread::Builder::new()
        .name("zmq-sub".into())
        .spawn(move || reader.run(tx, stop))
        .map_err(|e| NotifierError::Zmq {
            what: format!("starting reader thread: {e}"),
            source: zmq::Error::EFAULT,
        })?;
    let ingest = Ingest {
        source: format!("zmq:{}", bus.endpoints.join(",")),
        bus,
        store,
        derive,
        metrics,
        shutdown,
    };
    tracing::info!(endpoints = ?ingest.bus.endpoints, "listening for fedmsg messages over ZeroMQ");
    while let Some(input) = rx.recv().await {
        let done = match input {
            Input::Message(frames) => ingest.archive(&frames).await.map(|accepted| {
                if matches!(accepted, Accepted::Stored(_)) {
                    wake.notify_one();
                }
            }),
            Input::TooLarge {
                bytes,
                frames,
                head,
            } => {
                let reason = format!(
                    "message of {bytes} bytes in {frames} frames exceeds bus.max_message_bytes ({} bytes)",
                    ingest.bus.max_message_bytes
                );
                ingest.refuse(&ingest.source, &reason, &head).await
            }
            Input::Dropped { endpoint } => {
                let reason = format!(
                    "ZeroMQ refused a frame from {endpoint} over bus.max_message_bytes ({} bytes), \
                     or a protocol error, and dropped the connection; connected again",
                    ingest.bus.max_message_bytes
                );
                ingest
                    .refuse(&format!("zmq:{endpoint}"), &reason, b"")
                    .await
            }
        };
        if done.is_none() {
            break;
        }
    }
    drop(rx);
    let _ = reader.join();
    Ok(())
}

/// One ingest loop's settings and handles.
struct Ingest {
    bus: ZmqIngest,
    source: String,
    store: Store,
    derive: Derive,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Ingest {
    /// Archives one message, waiting out any outage. `None` on shutdown.
    async fn archive(&self, frames: &[Vec<u8>]) -> Option<Accepted> {
        let mut failures = 0;
        loop {
            let attempt = patiently(
                "archiving a bus message",
                self.bus.retry_max,
                &self.shutdown,
                || {
                    accept(
                        &self.store,
                        &self.derive,
                        &self.metrics,
                        &self.source,
                        frames,
                    )
                },
            )
            .await?;
            let error = match attempt {
                Ok(accepted) => return Some(accepted),
                Err(err) => err,
            };
            failures += 1;
            // Refused for its own sake (too long, not storable): a retry cannot help. Any
            // other failure gets a few more tries before the message counts as poison.
            let refused = matches!(error, NotifierError::Store(StoreError::Refused { .. }));
            tracing::error!(error = %error, failures, "archiving a bus message failed");
            if refused || failures >= POISON_AFTER {
                let reason = format!("could not be stored: {error}");
                return self
                    .refuse(&self.source, &reason, &frames.join(&b"\n"[..]))
                    .await
                    .map(|()| Accepted::Rejected(reason));
            }
            if !crate::outage::pause(&self.shutdown, Duration::from_millis(500)).await {
                return None;
            }
        }
    }

    /// Records refused input as rejected (waiting out any outage) and counts it. `None` on
    /// shutdown.
    async fn refuse(&self, source: &str, reason: &str, raw: &[u8]) -> Option<()> {
        let recorded = patiently(
            "recording rejected input",
            self.bus.retry_max,
            &self.shutdown,
            || async { widen(self.store.reject_message(source, reason, raw).await) },
        )
        .await?;
        match recorded {
            Ok(()) => {
                tracing::warn!(%source, %reason, "bus input rejected");
                Metrics::bump(&self.metrics.rejected);
            }
            // Logged at least; the input cannot be kept.
            Err(err) => {
                tracing::error!(%source, %reason, error = %err, "recording rejected input failed")
            }
        }
        Some(())
    }
}
