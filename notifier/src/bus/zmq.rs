//! fedmsg over ZeroMQ as a bus [`Source`]: a SUB socket connected to every fedmsg endpoint,
//! read on its own thread (libzmq is blocking), with input capped at `bus.max_message_bytes`.
//! PUB/SUB has no acknowledgements: what is on the wire when the hub dies is gone (the HTTP
//! API is the acknowledged way in).
//!
//! libzmq refuses a frame over the cap as soon as its length arrives (`ZMQ_MAXMSGSIZE`), so
//! a huge frame is never buffered, and drops that connection for good: it counts as a
//! protocol error, which libzmq does not reconnect after. A socket monitor sees the drop (a
//! disconnect that no reconnect attempt follows); the reader reports it, so it is counted
//! and recorded, and connects to the endpoint again. A message whose frames are each within
//! the cap but together exceed it is read part by part and reported without being kept.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings_store::Store;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::{Accept, Accepted, Raw, RunSettings, Source, Wire};
use crate::{Derive, Metrics, NotifierError};

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
    /// Signatures are checked with this (`bus.verify_signatures`); none: not checked.
    pub trust: Option<Arc<super::Trust>>,
}

/// Messages read ahead of ingest, and the most archived in one transaction. Small enough
/// that the read-ahead stays bounded (each may be up to the cap; libzmq queues behind it),
/// large enough that a burst is committed in few transactions.
pub const BATCH: usize = 256;

/// Subscribes to every endpoint and archives what arrives until `shutdown`, in batches of
/// whatever is ready (one transaction each). Wakes the matcher after each batch that stored
/// a message.
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
    let (tx, rx) = mpsc::channel::<Input>(BATCH);
    let reader = Reader::connect(&bus.endpoints, bus.max_message_bytes)?;
    let stop = shutdown.clone();
    let reader = std::thread::Builder::new()
        .name("zmq-sub".into())
        .spawn(move || reader.run(tx, stop))
        .map_err(|e| NotifierError::Zmq {
            what: format!("starting reader thread: {e}"),
            source: zmq::Error::EFAULT,
        })?;
    let source = ZmqSource {
        origin: format!("zmq:{}", bus.endpoints.join(",")),
        cap: bus.max_message_bytes,
        rx,
    };
    tracing::info!(endpoints = ?bus.endpoints, "listening for fedmsg messages over ZeroMQ");
    let accept = Accept::new(store, derive, metrics, wake).verifying(bus.trust.clone());
    let settings = RunSettings {
        batch: BATCH,
        retry_max: bus.retry_max,
    };
    // The source (and its queue) is dropped when this returns, which also ends a reader
    // waiting on a full queue.
    super::run(source, &accept, settings, &shutdown).await;
    let _ = reader.join();
    Ok(())
}

/// What the reader thread hands over, as a [`Source`].
struct ZmqSource {
    origin: String,
    cap: usize,
    rx: mpsc::Receiver<Input>,
}

impl ZmqSource {
    fn raw(&self, input: Input) -> Raw {
        match input {
            Input::Message(frames) => Raw {
                origin: self.origin.clone(),
                wire: Wire::Frames(frames),
            },
            Input::TooLarge {
                bytes,
                frames,
                head,
            } => Raw {
                origin: self.origin.clone(),
                wire: Wire::Refused {
                    reason: format!(
                        "message of {bytes} bytes in {frames} frames exceeds bus.max_message_bytes ({} bytes)",
                        self.cap
                    ),
                    head,
                },
            },
            Input::Dropped { endpoint } => Raw {
                origin: format!("zmq:{endpoint}"),
                wire: Wire::Refused {
                    reason: format!(
                        "ZeroMQ refused a frame from {endpoint} over bus.max_message_bytes ({} bytes), \
                         or a protocol error, and dropped the connection; connected again",
                        self.cap
                    ),
                    head: Vec::new(),
                },
            },
        }
    }
}

impl Source for ZmqSource {
    type Ack = ();

    async fn receive(&mut self, max: usize) -> Option<Vec<(Raw, ())>> {
        let first = self.rx.recv().await?;
        let mut ready = vec![(self.raw(first), ())];
        while ready.len() < max {
            match self.rx.try_recv() {
                Ok(input) => ready.push((self.raw(input), ())),
                Err(_) => break,
            }
        }
        Some(ready)
    }

    /// PUB/SUB has nothing to acknowledge to.
    async fn settled(&mut self, (): (), _: &Accepted) {}
}

/// What the reader hands to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The frames of one message, within the cap.
    Message(Vec<Vec<u8>>),
    /// A message whose frames together exceed the cap: its size, its frame count, and its
    /// first bytes (the frames joined by newlines, at most 64 KiB) for the record.
    TooLarge {
        /// Total bytes.
        bytes: usize,
        /// Frames.
        frames: usize,
        /// The start of it.
        head: Vec<u8>,
    },
    /// libzmq dropped the connection to this endpoint: the publisher sent a frame over the
    /// cap (or broke the protocol). It has been connected again.
    Dropped {
        /// The endpoint as configured.
        endpoint: String,
    },
}

/// How long after a disconnect libzmq has to schedule its reconnect (it does so at once)
/// before the disconnect counts as a drop it will not recover from.
const RECONNECT_GRACE: Duration = Duration::from_secs(1);

/// The most of an oversized message kept for the rejected record.
const HEAD_BYTES: usize = 64 * 1024;

/// Monitor endpoints are in-process names; each reader gets its own.
static MONITORS: AtomicUsize = AtomicUsize::new(0);

/// A subscriber connected to the configured endpoints, and its monitor.
pub struct Reader {
    socket: zmq::Socket,
    monitor: zmq::Socket,
    endpoints: Vec<String>,
    cap: usize,
}

impl Reader {
    /// Subscribes to everything on every endpoint, refusing frames over `cap` bytes.
    pub fn connect(endpoints: &[String], cap: usize) -> Result<Reader, NotifierError> {
        let ctx = zmq::Context::new();
        let socket = ctx
            .socket(zmq::SUB)
            .map_err(NotifierError::zmq("creating SUB socket"))?;
        socket
            .set_subscribe(b"")
            .map_err(NotifierError::zmq("subscribing"))?;
        socket
            .set_maxmsgsize(i64::try_from(cap).unwrap_or(i64::MAX))
            .map_err(NotifierError::zmq("setting the message size cap"))?;
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
        let name = format!(
            "inproc://tidings-ingest-monitor-{}",
            MONITORS.fetch_add(1, Ordering::Relaxed)
        );
        let events = zmq::SocketEvent::DISCONNECTED as i32
            | zmq::SocketEvent::CONNECT_RETRIED as i32
            | zmq::SocketEvent::CONNECTED as i32;
        socket
            .monitor(&name, events)
            .map_err(NotifierError::zmq("monitoring the SUB socket"))?;
        let monitor = ctx
            .socket(zmq::PAIR)
            .map_err(NotifierError::zmq("creating the monitor socket"))?;
        monitor
            .connect(&name)
            .map_err(NotifierError::zmq("connecting the monitor socket"))?;
        for endpoint in endpoints {
            socket
                .connect(endpoint)
                .map_err(NotifierError::zmq(format!("connecting to {endpoint}")))?;
        }
        Ok(Reader {
            socket,
            monitor,
            endpoints: endpoints.to_vec(),
            cap,
        })
    }

    /// Reads until `shutdown` or until ingest hangs up. Blocks (while ingest is busy, say
    /// waiting out a database outage) when `tx` is full; libzmq queues meanwhile.
    pub fn run(self, tx: mpsc::Sender<Input>, shutdown: CancellationToken) {
        let mut disconnected: Vec<(String, Instant)> = Vec::new();
        while !shutdown.is_cancelled() {
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.monitor.as_poll_item(zmq::POLLIN),
            ];
            if let Err(err) = zmq::poll(&mut items, 200) {
                if err != zmq::Error::EINTR {
                    tracing::error!(error = %err, "ZeroMQ poll failed");
                    std::thread::sleep(Duration::from_millis(200));
                }
                continue;
            }
            let (data, events) = (items[0].is_readable(), items[1].is_readable());
            if events {
                self.read_events(&mut disconnected);
            }
            if data {
                match self.receive() {
                    Ok(Some(input)) => {
                        if tx.blocking_send(input).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        tracing::error!(error = %err, "ZeroMQ receive failed");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
            let now = Instant::now();
            let (dropped, waiting): (Vec<_>, Vec<_>) = disconnected
                .drain(..)
                .partition(|(_, at)| now.duration_since(*at) >= RECONNECT_GRACE);
            disconnected = waiting;
            for (endpoint, _) in dropped {
                for endpoint in self.reconnect(&endpoint) {
                    if tx.blocking_send(Input::Dropped { endpoint }).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// One message, part by part: parts past the cap are counted, not kept.
    fn receive(&self) -> Result<Option<Input>, zmq::Error> {
        let (mut frames, mut bytes, mut count) = (Vec::new(), 0usize, 0usize);
        let mut head: Option<Vec<u8>> = None;
        loop {
            let part = match self.socket.recv_msg(zmq::DONTWAIT) {
                Ok(part) => part,
                Err(zmq::Error::EAGAIN) if count == 0 => return Ok(None),
                Err(err) => return Err(err),
            };
            count += 1;
            bytes += part.len();
            match &mut head {
                None if bytes > self.cap => {
                    let mut start = frames.join(&b"\n"[..]);
                    frames.clear();
                    if count > 1 {
                        start.push(b'\n');
                    }
                    start.extend_from_slice(&part[..part.len().min(HEAD_BYTES)]);
                    start.truncate(HEAD_BYTES);
                    head = Some(start);
                }
                None => frames.push(part.to_vec()),
                Some(start) if start.len() < HEAD_BYTES => {
                    start.push(b'\n');
                    let room = HEAD_BYTES.saturating_sub(start.len());
                    start.extend_from_slice(&part[..part.len().min(room)]);
                }
                Some(_) => {}
            }
            if !part.get_more() {
                break;
            }
        }
        Ok(Some(match head {
            None => Input::Message(frames),
            Some(head) => Input::TooLarge {
                bytes,
                frames: count,
                head,
            },
        }))
    }

    /// Notes disconnects, and forgets those libzmq follows with a reconnect attempt.
    fn read_events(&self, disconnected: &mut Vec<(String, Instant)>) {
        while let Ok(frames) = self.monitor.recv_multipart(zmq::DONTWAIT) {
            let [event, endpoint] = frames.as_slice() else {
                continue;
            };
            let Some(id) = event.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]])) else {
                continue;
            };
            let endpoint = String::from_utf8_lossy(endpoint).into_owned();
            match zmq::SocketEvent::from_raw(id) {
                zmq::SocketEvent::DISCONNECTED => disconnected.push((endpoint, Instant::now())),
                zmq::SocketEvent::CONNECT_RETRIED | zmq::SocketEvent::CONNECTED => {
                    disconnected.retain(|(e, _)| !same_endpoint(e, &endpoint));
                }
                _ => {}
            }
        }
    }

    /// Connects again to the configured endpoints the monitor's `seen` stands for (the
    /// monitor names resolved addresses); to all of them when none matches.
    fn reconnect(&self, seen: &str) -> Vec<String> {
        let matching: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| same_endpoint(e, seen))
            .cloned()
            .collect();
        let targets = if matching.is_empty() {
            self.endpoints.clone()
        } else {
            matching
        };
        for endpoint in &targets {
            tracing::warn!(%endpoint, cap = self.cap, "ZeroMQ dropped the publisher (a frame over bus.max_message_bytes?); connecting again");
            let _ = self.socket.disconnect(endpoint);
            if let Err(err) = self.socket.connect(endpoint) {
                tracing::error!(%endpoint, error = %err, "connecting again failed");
            }
        }
        targets
    }
}

/// The same endpoint, or at least the same port (a host name resolves to an address).
fn same_endpoint(a: &str, b: &str) -> bool {
    let port = |e: &str| e.rsplit_once(':').map(|(_, port)| port.to_string());
    a == b || (port(a).is_some() && port(a) == port(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_match_by_text_or_port() {
        assert!(same_endpoint(
            "tcp://127.0.0.1:9940",
            "tcp://127.0.0.1:9940"
        ));
        assert!(same_endpoint(
            "tcp://hub.example.org:9940",
            "tcp://10.0.0.5:9940"
        ));
        assert!(!same_endpoint(
            "tcp://127.0.0.1:9940",
            "tcp://127.0.0.1:9941"
        ));
    }
}
