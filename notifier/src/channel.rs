//! The channel seam: a [`Channel`] sends one [`Rendered`] notification to one destination
//! and says what happened as a [`SendResult`]; the [`Registry`] holds one channel per
//! [`ChannelKind`]. Rendering (`render`) is separate from transport: a channel turns the
//! channel-neutral rendering into its own wire format (MIME for email, a JSON body for a
//! webhook, a line for IRC).
//!
//! Adding a channel is one module implementing [`Channel`], its template, its config
//! section and one [`Registry::register`] line (see `docs/architecture.md`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tidings_store::{ChannelKind, Destination};

use crate::render::Rendered;

/// What one send came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendResult {
    /// The channel accepted it.
    Sent,
    /// A temporary failure: try again, no sooner than `after` if the channel said so. Counts
    /// toward `sender.max_attempts`.
    Retry {
        /// The least wait the channel asked for (an SMTP 4xx does not say; HTTP
        /// `Retry-After` does).
        after: Option<Duration>,
        /// What went wrong.
        reason: String,
    },
    /// The channel asked to slow down: try again no sooner than this. Does not count toward
    /// `sender.max_attempts`: nothing was wrong with the notification.
    RateLimited(Duration),
    /// A refusal that trying again cannot change (no such mailbox): the row is dead.
    Permanent(String),
    /// Sent, and the far end proved it received a confirmation by answering with its
    /// token (a webhook's challenge): the destination is confirmed, no link to follow.
    Confirmed,
    /// The destination is gone for good (a webhook's 410 Gone): the row is dead and the
    /// destination disabled until its owner confirms it again.
    Gone(String),
}

/// A boxed send, so that channels of every kind sit behind one `dyn Channel`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendResult> + Send + 'a>>;

/// A delivery transport.
pub trait Channel: Send + Sync {
    /// The kind of destination it serves.
    fn kind(&self) -> ChannelKind;

    /// The most one send may take. The sender cuts a send off after it (a retry), and
    /// refuses to start with a lease that is not longer, so a slow send can never outlive
    /// its claim.
    fn timeout(&self) -> Duration;

    /// How many sends it does well at once: the sender's concurrency when
    /// `sender.concurrency` is unset is the largest of these. A network channel says about
    /// as many as it keeps connections; a local one more, since a larger claim costs the
    /// database less per row.
    fn parallelism(&self) -> usize;

    /// Sends `rendered` to `to` (a confirmed destination of this kind, or any destination of
    /// this kind for its confirmation message).
    fn send<'a>(&'a self, to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a>;
}

/// The channels a sender sends through, one per kind.
#[derive(Clone, Default)]
pub struct Registry {
    channels: HashMap<ChannelKind, Arc<dyn Channel>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `channel` for its kind (replacing any other of that kind).
    pub fn register(mut self, channel: Arc<dyn Channel>) -> Registry {
        self.channels.insert(channel.kind(), channel);
        self
    }

    /// The channel for `kind`, if one is configured.
    pub fn get(&self, kind: ChannelKind) -> Option<&Arc<dyn Channel>> {
        self.channels.get(&kind)
    }

    /// The longest send timeout of any registered channel.
    pub fn longest_timeout(&self) -> Option<Duration> {
        self.channels.values().map(|c| c.timeout()).max()
    }

    /// The most sends any registered channel does well at once (64 when none is).
    pub fn parallelism(&self) -> usize {
        self.channels
            .values()
            .map(|c| c.parallelism())
            .max()
            .unwrap_or(64)
    }

    /// Every registered channel.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.channels.values()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.channels.keys()).finish()
    }
}
