//! The ZeroMQ side of a test: a publisher where a hub subscribes.

/// A ZeroMQ publisher bound where a hub subscribes (XPUB, so it knows when the hub has
/// subscribed).
pub struct Publisher {
    _ctx: zmq::Context,
    pub socket: zmq::Socket,
}

impl Publisher {
    /// Binds `endpoint` and waits for the hub's subscription.
    pub fn bind(endpoint: &str) -> Publisher {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::XPUB).expect("XPUB");
        socket.bind(endpoint).expect("bind");
        socket.set_rcvtimeo(30_000).expect("timeout");
        socket.set_linger(1_000).expect("linger");
        let publisher = Publisher { _ctx: ctx, socket };
        publisher.wait_subscribed();
        publisher
    }

    /// Waits until the hub (re)subscribes: XPUB hands subscriptions up as messages starting
    /// with 1.
    pub fn wait_subscribed(&self) {
        loop {
            let message = self.socket.recv_bytes(0).expect("the hub subscribes");
            if message.first() == Some(&1) {
                return;
            }
        }
    }

    pub fn send(&self, frames: &[Vec<u8>]) {
        self.socket.send_multipart(frames.iter(), 0).expect("send");
    }

    /// A fedmsg message: [topic, envelope].
    pub fn send_envelope(&self, envelope: &str) {
        let topic = serde_json::from_str::<serde_json::Value>(envelope)
            .ok()
            .and_then(|v| v["topic"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.send(&[topic.into_bytes(), envelope.as_bytes().to_vec()]);
    }
}
