//! Bus ingest over ZeroMQ: a SUB socket connected to every configured fedmsg endpoint, on
//! its own thread (libzmq is blocking), feeding an async task that decodes, derives
//! metadata, de-duplicates and archives. Bad input is logged, counted, kept in the
//! rejected table, and skipped; ingest goes on.

use std::sync::Arc;
use std::time::Duration;

use tidings_rules::Envelope;
use tidings_store::Store;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::{Derive, Metrics, NotifierError};

/// Failed attempts to store one message before it counts as poison.
const POISON_AFTER: u32 = 5;

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
            tracing::warn!(%source, %reason, "malformed bus message skipped");
            Metrics::bump(&metrics.rejected);
            let raw = frames.join(&b"\n"[..]);
            store.reject_message(source, &reason, &raw).await?;
            Ok(Accepted::Rejected(reason))
        }
    }
}

/// Subscribes to every endpoint and archives what arrives until `shutdown`. Wakes the
/// matcher after each stored message.
pub async fn run_zmq(
    endpoints: Vec<String>,
    store: Store,
    derive: Derive,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    if endpoints.is_empty() {
        shutdown.cancelled().await;
        return Ok(());
    }
    let (tx, mut rx) = mpsc::channel::<Vec<Vec<u8>>>(1024);
    let socket = subscriber(&endpoints)?;
    let stop = shutdown.clone();
    let reader = std::thread::Builder::new()
        .name("zmq-sub".into())
        .spawn(move || read_frames(socket, tx, stop))
        .map_err(|e| NotifierError::Zmq {
            what: format!("starting reader thread: {e}"),
            source: zmq::Error::EFAULT,
        })?;
    let source = format!("zmq:{}", endpoints.join(","));
    tracing::info!(endpoints = ?endpoints, "listening for fedmsg messages over ZeroMQ");
    while let Some(frames) = rx.recv().await {
        // A store failure must not lose the message: retry until it is archived. One the
        // database keeps refusing while it accepts a rejected row is poison: keep it as
        // rejected and go on, so one message cannot stall the bus.
        let mut failures = 0;
        loop {
            let error = match accept(&store, &derive, &metrics, &source, &frames).await {
                Ok(Accepted::Stored(_)) => {
                    wake.notify_one();
                    break;
                }
                Ok(_) => break,
                Err(err) => err,
            };
            failures += 1;
            tracing::error!(error = %error, failures, "archiving a bus message failed; retrying");
            if failures >= POISON_AFTER {
                let reason = format!("could not be stored: {error}");
                if store
                    .reject_message(&source, &reason, &frames.join(&b"\n"[..]))
                    .await
                    .is_ok()
                {
                    Metrics::bump(&metrics.rejected);
                    break;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
    let _ = reader.join();
    Ok(())
}

fn subscriber(endpoints: &[String]) -> Result<zmq::Socket, NotifierError> {
    let ctx = zmq::Context::new();
    let socket = ctx
        .socket(zmq::SUB)
        .map_err(NotifierError::zmq("creating SUB socket"))?;
    socket
        .set_subscribe(b"")
        .map_err(NotifierError::zmq("subscribing"))?;
    socket
        .set_rcvtimeo(200)
        .map_err(NotifierError::zmq("setting receive timeout"))?;
    socket
        .set_reconnect_ivl(100)
        .map_err(NotifierError::zmq("setting reconnect interval"))?;
    socket
        .set_reconnect_ivl_max(2_000)
        .map_err(NotifierError::zmq("setting reconnect interval"))?;
    socket
        .set_tcp_keepalive(1)
        .map_err(NotifierError::zmq("setting TCP keepalive"))?;
    socket
        .set_rcvhwm(100_000)
        .map_err(NotifierError::zmq("setting receive high-water mark"))?;
    for endpoint in endpoints {
        socket
            .connect(endpoint)
            .map_err(NotifierError::zmq(format!("connecting to {endpoint}")))?;
    }
    Ok(socket)
}

fn read_frames(socket: zmq::Socket, tx: mpsc::Sender<Vec<Vec<u8>>>, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match socket.recv_multipart(0) {
            Ok(frames) => {
                if tx.blocking_send(frames).is_err() {
                    return;
                }
            }
            Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => {}
            Err(err) => {
                tracing::error!(error = %err, "ZeroMQ receive failed");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}
