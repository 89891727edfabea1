//! What every process measures, served at `/metrics` (OpenMetrics text, with
//! `prometheus-client`) on the private `metrics.listen` address and logged at shutdown.
//!
//! - Counters: messages ingested, duplicate, rejected and matched; notifications queued,
//!   sent, retried, rate limited and dead; leases lost; filters quarantined; ownership
//!   syncs written, and their fetches not used by source and fault.
//! - Histograms: ingest lag (publisher's send time to archived), notifications per matched
//!   message, and delivery latency by channel (archived to accepted by the channel).
//! - Gauges, read from the store every few seconds by [`Metrics::watch`] (the store is
//!   shared, so every process reports the same values): the matcher's backlog, the outbox
//!   by state; and, in a process consuming AMQP, the messages waiting in its queue.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tidings_store::Store;
use tokio_util::sync::CancellationToken;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A delivery channel's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    /// `email`, `webhook`, `ntfy`, `matrix`, `irc`.
    pub channel: String,
}

/// An outbox state's label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `pending` (due or waiting: held, collected for a digest), `sending`, `dead`.
    pub state: &'static str,
}

/// An ownership sync fault's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncFaultLabel {
    /// What was read: `owners` (the owner map) or `groups` (a group's members).
    pub source: &'static str,
    /// Why it was not used: `request`, `timeout`, `status`, `too_large`, `malformed`,
    /// `empty`, `shrunk`.
    pub fault: &'static str,
}

/// Everything a process measures. Cheap to update from any task; shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    /// Messages accepted and archived.
    pub ingested: Counter,
    /// Messages heard again (same id) and dropped.
    pub duplicates: Counter,
    /// Inputs refused as malformed.
    pub rejected: Counter,
    /// Messages matched.
    pub matched: Counter,
    /// Notifications queued.
    pub queued: Counter,
    /// Sends the channel accepted.
    pub sent: Counter,
    /// Sends that failed and will be retried.
    pub retried: Counter,
    /// Notifications that failed for good.
    pub dead: Counter,
    /// Sends a channel asked to postpone (rate limits).
    pub rate_limited: Counter,
    /// Outcomes dropped because their claim was lost (the lease ran out first).
    pub leases_lost: Counter,
    /// Filters the matcher found unreadable and set aside.
    pub quarantined: Counter,
    /// Seconds from the publisher's send time (`sent-at`, fedmsg `timestamp`) to archived.
    pub ingest_lag: Histogram,
    /// Notifications queued per matched message.
    pub matches_per_message: Histogram,
    /// Seconds from a message archived to its notification accepted, by channel.
    pub delivery_latency: Family<ChannelLabel, Histogram>,
    /// Ownership syncs written (`[ownership.sync]`).
    pub ownership_syncs: Counter,
    /// Ownership sync fetches not used (the old data kept), by source and fault.
    pub ownership_sync_failures: Family<SyncFaultLabel, Counter>,
    /// Archived messages not matched yet.
    pub matcher_backlog: Gauge,
    /// Outbox rows by state.
    pub outbox: Family<StateLabel, Gauge>,
    /// Messages ready in the AMQP queue this process consumes (-1 until read).
    pub amqp_queue: Gauge,
    registry: Registry,
}

/// Bucket bounds in seconds for lags and latencies: 5 ms doubling to about 11 minutes.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.005, 2.0, 18)
}

fn latency_histogram() -> Histogram {
    Histogram::new(seconds_buckets())
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tidings");
        let metrics = Metrics {
            ingested: Counter::default(),
            duplicates: Counter::default(),
            rejected: Counter::default(),
            matched: Counter::default(),
            queued: Counter::default(),
            sent: Counter::default(),
            retried: Counter::default(),
            dead: Counter::default(),
            rate_limited: Counter::default(),
            leases_lost: Counter::default(),
            quarantined: Counter::default(),
            ingest_lag: latency_histogram(),
            matches_per_message: Histogram::new([
                0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0, 1000.0,
            ]),
            delivery_latency: Family::new_with_constructor(latency_histogram),
            ownership_syncs: Counter::default(),
            ownership_sync_failures: Family::default(),
            matcher_backlog: Gauge::default(),
            outbox: Family::default(),
            amqp_queue: Gauge::default(),
            registry: Registry::default(),
        };
        let counters = [
            (
                "messages_ingested",
                "Messages accepted and archived",
                &metrics.ingested,
            ),
            (
                "messages_duplicate",
                "Messages heard again (same id) and dropped",
                &metrics.duplicates,
            ),
            (
                "messages_rejected",
                "Bus inputs refused as malformed and recorded",
                &metrics.rejected,
            ),
            (
                "messages_matched",
                "Messages matched against every filter",
                &metrics.matched,
            ),
            (
                "notifications_queued",
                "Notifications queued in the outbox",
                &metrics.queued,
            ),
            (
                "notifications_sent",
                "Sends the channel accepted",
                &metrics.sent,
            ),
            (
                "notifications_retried",
                "Sends that failed and will be retried",
                &metrics.retried,
            ),
            (
                "notifications_dead",
                "Notifications that failed for good",
                &metrics.dead,
            ),
            (
                "notifications_rate_limited",
                "Sends a channel asked to postpone",
                &metrics.rate_limited,
            ),
            (
                "outbox_leases_lost",
                "Outcomes dropped because their claim had run out",
                &metrics.leases_lost,
            ),
            (
                "filters_quarantined",
                "Filters found unreadable and set aside",
                &metrics.quarantined,
            ),
            (
                "ownership_syncs",
                "Ownership syncs written ([ownership.sync])",
                &metrics.ownership_syncs,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "ingest_lag_seconds",
            "Seconds from the publisher's send time to the message archived",
            metrics.ingest_lag.clone(),
        );
        registry.register(
            "matches_per_message",
            "Notifications queued per matched message",
            metrics.matches_per_message.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Seconds from a message archived to its notification accepted by the channel",
            metrics.delivery_latency.clone(),
        );
        registry.register(
            "ownership_sync_failures",
            "Ownership sync fetches not used, the last synced data kept, by source and fault",
            metrics.ownership_sync_failures.clone(),
        );
        registry.register(
            "matcher_backlog_messages",
            "Archived messages not matched yet",
            metrics.matcher_backlog.clone(),
        );
        registry.register(
            "outbox_rows",
            "Outbox rows by state (pending includes held and collected for a digest)",
            metrics.outbox.clone(),
        );
        registry.register(
            "amqp_queue_messages",
            "Messages ready in the AMQP queue this process consumes (-1: not consuming or not read yet)",
            metrics.amqp_queue.clone(),
        );
        metrics.amqp_queue.set(-1);
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// Adds one to a counter.
    pub fn bump(counter: &Counter) {
        counter.inc();
    }

    /// Records that `count` messages were matched and queued `queued` notifications each.
    pub fn matched_messages(&self, queued: impl IntoIterator<Item = usize>) {
        for n in queued {
            self.matched.inc();
            self.queued.inc_by(n as u64);
            self.matches_per_message.observe(n as f64);
        }
    }

    /// Records a message archived now that its publisher sent at `sent_at_ms`.
    pub fn archived(&self, sent_at_ms: Option<i64>, now_ms: i64) {
        if let Some(sent) = sent_at_ms {
            // Clocks differ between hosts: a message "from the future" lagged zero.
            let lag = (now_ms - sent).max(0) as f64 / 1000.0;
            self.ingest_lag.observe(lag);
        }
    }

    /// Records a notification accepted by `channel` now, of a message archived at
    /// `received_at_ms`.
    pub fn delivered(&self, channel: &str, received_at_ms: i64, now_ms: i64) {
        let latency = (now_ms - received_at_ms).max(0) as f64 / 1000.0;
        self.delivery_latency
            .get_or_create(&ChannelLabel {
                channel: channel.to_string(),
            })
            .observe(latency);
    }

    /// Everything in OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "encoding the metrics failed");
        }
        text
    }

    /// Reads the store's gauges (matcher backlog, outbox by state) every `every` until
    /// `shutdown`. A read that fails leaves the last values (and is logged at debug: the
    /// roles report outages themselves).
    pub async fn watch(
        self: Arc<Self>,
        store: Store,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            match store.pipeline_gauges().await {
                Ok(gauges) => {
                    self.matcher_backlog.set(gauges.unmatched);
                    for (state, value) in [
                        ("pending", gauges.pending),
                        ("sending", gauges.sending),
                        ("dead", gauges.dead),
                    ] {
                        self.outbox.get_or_create(&StateLabel { state }).set(value);
                    }
                }
                Err(err) => tracing::debug!(error = %err, "reading the pipeline's gauges failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_are_rendered_with_their_names() {
        let metrics = Metrics::default();
        Metrics::bump(&metrics.ingested);
        metrics.matched_messages([0, 3]);
        metrics.archived(Some(1_000), 3_500);
        metrics.delivered("email", 1_000, 1_020);
        metrics
            .outbox
            .get_or_create(&StateLabel { state: "dead" })
            .set(4);
        let text = metrics.render();
        for line in [
            "tidings_messages_ingested_total 1",
            "tidings_messages_matched_total 2",
            "tidings_notifications_queued_total 3",
            "tidings_matches_per_message_sum 3.0",
            "tidings_matches_per_message_count 2",
            "tidings_ingest_lag_seconds_sum 2.5",
            "tidings_delivery_latency_seconds_count{channel=\"email\"} 1",
            "tidings_delivery_latency_seconds_bucket{le=\"0.02\",channel=\"email\"} 1",
            "tidings_outbox_rows{state=\"dead\"} 4",
            "tidings_amqp_queue_messages -1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
    }
}
