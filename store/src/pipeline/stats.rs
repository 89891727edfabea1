//! What the admin's charts draw: messages per hour by app, notifications per hour by
//! channel, and how long notifications waited between being queued and being sent. Every
//! query is bounded by time (an index on `messages.received_at` and one on
//! `outbox.created_at`, migration 0022), so a busy archive costs what its last hours hold.

use crate::db::with_pool;
use crate::{Result, Store};

/// An hour, as milliseconds since the epoch divided by this.
pub const HOUR_MS: i64 = 3_600_000;

/// The most sent notifications whose waiting times are read for one chart.
pub const LATENCY_ROWS: i64 = 200_000;

/// A count per hour and key (an app, a channel).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct HourlyCount {
    /// The hour: milliseconds since the epoch / [`HOUR_MS`].
    pub hour: i64,
    /// What was counted: the app (`""` when the catalog gave none) or the channel.
    pub key: String,
    /// How many.
    pub count: i64,
}

/// Waiting times of the notifications sent in one hour (by when they were queued).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HourlyLatency {
    /// The hour: milliseconds since the epoch / [`HOUR_MS`].
    pub hour: i64,
    /// How many were sent.
    pub count: usize,
    /// Median time from queued to sent, in ms.
    pub p50_ms: i64,
    /// 99th percentile, in ms.
    pub p99_ms: i64,
}

/// The value below which `q` (0–1) of the sorted `values` lie (nearest rank).
fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the pipeline holds now, for the `/metrics` gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PipelineGauges {
    /// Archived messages not matched yet.
    pub unmatched: i64,
    /// Outbox rows waiting: due, held by flood control or collected for a digest.
    pub pending: i64,
    /// Outbox rows claimed by a sender.
    pub sending: i64,
    /// Outbox rows that failed for good.
    pub dead: i64,
}

impl Store {
    /// The pipeline's gauges, each counted on its partial index (cheap however large the
    /// archive and the outbox are; what is counted is what waits).
    pub async fn pipeline_gauges(&self) -> Result<PipelineGauges> {
        let sql = "SELECT \
            (SELECT COUNT(*) FROM messages WHERE processed_at IS NULL), \
            (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'held', 'collected')), \
            (SELECT COUNT(*) FROM outbox WHERE status = 'sending'), \
            (SELECT COUNT(*) FROM outbox WHERE status = 'dead')";
        let (unmatched, pending, sending, dead) =
            with_pool!(self, |pool| sqlx::query_as::<_, (i64, i64, i64, i64)>(sql)
                .fetch_one(pool)
                .await?);
        Ok(PipelineGauges {
            unmatched,
            pending,
            sending,
            dead,
        })
    }

    /// Archived messages per hour and app, received since `since` (ms).
    pub async fn messages_per_hour(&self, since: i64) -> Result<Vec<HourlyCount>> {
        let app = self.json_text("metadata", "app");
        let sql = self
            .sql(&format!(
            "SELECT received_at / {HOUR_MS} AS hour, {app} AS key, COUNT(*) AS count FROM messages \
             WHERE received_at >= $1 GROUP BY 1, 2 ORDER BY 1, 2"
        ))
            .into_owned();
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, HourlyCount>(
            &sql
        )
        .bind(since)
        .fetch_all(pool)
        .await?))
    }

    /// Notifications and digests queued per hour and channel since `since` (ms), whatever
    /// became of them (confirmations are not counted).
    pub async fn notifications_per_hour(&self, since: i64) -> Result<Vec<HourlyCount>> {
        let sql = self
            .sql(&format!(
                "SELECT o.created_at / {HOUR_MS} AS hour, d.channel AS key, COUNT(*) AS count \
             FROM outbox o JOIN destinations d ON d.id = o.destination_id \
             WHERE o.created_at >= $1 AND o.kind <> 'confirmation' GROUP BY 1, 2 ORDER BY 1, 2"
            ))
            .into_owned();
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, HourlyCount>(
            &sql
        )
        .bind(since)
        .fetch_all(pool)
        .await?))
    }

    /// p50 and p99 of the time from queued to sent, per hour queued, of the notifications
    /// queued since `since` (ms) and sent (the newest [`LATENCY_ROWS`] at most).
    pub async fn delivery_latency(&self, since: i64) -> Result<Vec<HourlyLatency>> {
        let sql = self.sql(
            "SELECT created_at, sent_at - created_at FROM outbox \
             WHERE created_at >= $1 AND kind = 'notification' AND status = 'sent' AND sent_at IS NOT NULL \
             ORDER BY created_at DESC LIMIT $2",
        );
        let rows: Vec<(i64, i64)> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(since)
            .bind(LATENCY_ROWS)
            .fetch_all(pool)
            .await?);
        let mut by_hour: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for (created, waited) in rows {
            by_hour
                .entry(created.div_euclid(HOUR_MS))
                .or_default()
                .push(waited.max(0));
        }
        Ok(by_hour
            .into_iter()
            .map(|(hour, mut waits)| {
                waits.sort_unstable();
                HourlyLatency {
                    hour,
                    count: waits.len(),
                    p50_ms: percentile(&waits, 0.5),
                    p99_ms: percentile(&waits, 0.99),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
