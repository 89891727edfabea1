//! Publishing a message on the ZeroMQ bus, reliably: bind an XPUB socket and wait until a
//! subscriber's subscription arrives before sending, so the message cannot fall into the
//! gap between "socket bound" and "subscriber connected" (ZeroMQ's slow-joiner problem);
//! then close with a linger, so it is flushed to the subscriber before we exit.

use std::time::{Duration, Instant};

use crate::NotifierError;

/// Binds `endpoint`, waits up to `timeout` for a subscriber whose subscription covers the
/// topics, then sends every `(topic, envelope JSON)` pair in order.
pub fn publish(
    endpoint: &str,
    messages: &[(String, Vec<u8>)],
    timeout: Duration,
) -> Result<(), NotifierError> {
    let ctx = zmq::Context::new();
    let socket = ctx
        .socket(zmq::XPUB)
        .map_err(NotifierError::zmq("creating XPUB socket"))?;
    socket
        .set_linger(10_000)
        .map_err(NotifierError::zmq("setting linger"))?;
    socket
        .set_sndhwm(1_000_000)
        .map_err(NotifierError::zmq("setting send high-water mark"))?;
    socket
        .bind(endpoint)
        .map_err(NotifierError::zmq(format!("binding {endpoint}")))?;
    let deadline = Instant::now() + timeout;
    let mut prefixes: Vec<Vec<u8>> = Vec::new();
    let covered = |prefixes: &[Vec<u8>]| {
        messages
            .iter()
            .all(|(topic, _)| prefixes.iter().any(|p| topic.as_bytes().starts_with(p)))
    };
    while !covered(&prefixes) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(NotifierError::NoSubscriber {
                endpoint: endpoint.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        socket
            .set_rcvtimeo(left.as_millis().min(i32::MAX as u128) as i32)
            .map_err(NotifierError::zmq("setting receive timeout"))?;
        match socket.recv_bytes(0) {
            // A subscription is 0x01 followed by the topic prefix.
            Ok(event) if event.first() == Some(&1) => prefixes.push(event[1..].to_vec()),
            Ok(_) | Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => {}
            Err(err) => {
                return Err(NotifierError::Zmq {
                    what: "waiting for a subscriber".into(),
                    source: err,
                })
            }
        }
    }
    for (topic, envelope) in messages {
        socket
            .send_multipart([topic.as_bytes(), envelope.as_slice()], 0)
            .map_err(NotifierError::zmq("sending"))?;
    }
    Ok(())
}
