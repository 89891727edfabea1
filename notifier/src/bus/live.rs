//! The live bus view's feed: every message the accept path archives in this process is
//! offered to a broadcast channel that the admin's live page (`/admin/live`) listens to.
//!
//! The channel is process-wide and bounded ([`CAPACITY`] events): sending never waits, so a
//! slow listener cannot slow ingest; a listener that falls that far behind loses the oldest
//! events and is told how many (`RecvError::Lagged`). Nothing is built while nobody
//! listens. On a deployment of several processes, a page shows what the process serving it
//! ingests: the ZeroMQ ingest when it runs in the same process (`tidings serve`), and the
//! messages posted to its own API.

use std::sync::OnceLock;

use tokio::sync::broadcast;

/// Events a listener may fall behind by before it loses the oldest.
pub const CAPACITY: usize = 1024;

/// One archived message, as the live view shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveEvent {
    /// The topic.
    pub topic: String,
    /// The app the catalog derived, if any.
    pub app: Option<String>,
    /// The one-line summary.
    pub summary: String,
    /// When it was archived (ms since the epoch).
    pub at: i64,
}

fn hub() -> &'static broadcast::Sender<LiveEvent> {
    static HUB: OnceLock<broadcast::Sender<LiveEvent>> = OnceLock::new();
    HUB.get_or_init(|| broadcast::channel(CAPACITY).0)
}

/// Starts listening: every message archived from now on, in order.
pub fn subscribe() -> broadcast::Receiver<LiveEvent> {
    hub().subscribe()
}

/// Whether anyone listens (events are only built then).
pub fn listening() -> bool {
    hub().receiver_count() > 0
}

/// Offers an event to the listeners; never waits.
pub fn publish(event: LiveEvent) {
    // An error only says that nobody listens.
    let _ = hub().send(event);
}
