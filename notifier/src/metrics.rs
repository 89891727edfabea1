//! Counters the notifier keeps, served at `/metrics` and logged at shutdown.

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Messages accepted and archived.
    pub ingested: AtomicU64,
    /// Messages heard again (same id) and dropped.
    pub duplicates: AtomicU64,
    /// Inputs refused as malformed.
    pub rejected: AtomicU64,
    /// Messages matched.
    pub matched: AtomicU64,
    /// Notifications queued.
    pub queued: AtomicU64,
    /// Sends the channel accepted.
    pub sent: AtomicU64,
    /// Sends that failed and will be retried.
    pub retried: AtomicU64,
    /// Notifications that failed for good.
    pub dead: AtomicU64,
    /// Sends a channel asked to postpone (rate limits).
    pub rate_limited: AtomicU64,
    /// Outcomes dropped because their claim was lost (the lease ran out first).
    pub leases_lost: AtomicU64,
    /// Filters the matcher found unreadable and set aside.
    pub quarantined: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters in Prometheus text format.
    pub fn render(&self) -> String {
        let rows = [
            ("tidings_messages_ingested_total", &self.ingested),
            ("tidings_messages_duplicate_total", &self.duplicates),
            ("tidings_messages_rejected_total", &self.rejected),
            ("tidings_messages_matched_total", &self.matched),
            ("tidings_notifications_queued_total", &self.queued),
            ("tidings_notifications_sent_total", &self.sent),
            ("tidings_notifications_retried_total", &self.retried),
            ("tidings_notifications_dead_total", &self.dead),
            (
                "tidings_notifications_rate_limited_total",
                &self.rate_limited,
            ),
            ("tidings_outbox_leases_lost_total", &self.leases_lost),
            ("tidings_filters_quarantined_total", &self.quarantined),
        ];
        rows.iter()
            .map(|(name, value)| {
                format!(
                    "# TYPE {name} counter\n{name} {}\n",
                    value.load(Ordering::Relaxed)
                )
            })
            .collect()
    }
}
