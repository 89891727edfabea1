//! The outbox: notifications (and destination confirmations) still to send. A sender claims
//! due rows under a lease, sends, and records the outcome; a row whose lease ran out (its
//! sender died) is claimed again, with the same `uid`, so a resend is recognisable.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::FromRow;

use crate::db::with_pool;
use crate::pipeline::digests::{DigestContents, DigestReason, DIGEST_ITEMS};
use crate::pipeline::messages::{
    placeholders, value_rows, MessageRow, CHUNK_ROWS, MESSAGE_COLUMNS,
};
use crate::preferences::destinations::DestinationRow;
use crate::{now_ms, secret, Destination, Result, ServerKey, Store, StoreError, StoredMessage};

/// A fresh identity for an outbox row: the base of its Message-ID (and later webhook-id,
/// Matrix txnId). 32 alphanumeric characters: the time in milliseconds (8, base 62, so uids
/// sort by time) and 24 random ones (142 bits). Time first, so that a burst's rows are
/// added at the end of the `uid` index instead of all over it (a random key costs a page
/// read per insert once the index outgrows the cache).
pub(crate) fn new_uid() -> String {
    use rand::Rng;
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut time = [b'0'; 8];
    let mut ms = u64::try_from(now_ms()).unwrap_or(0);
    for digit in time.iter_mut().rev() {
        *digit = DIGITS[(ms % 62) as usize];
        ms /= 62;
    }
    let mut rng = rand::thread_rng();
    let random = (0..24).map(|_| DIGITS[rng.gen_range(0..DIGITS.len())]);
    time.into_iter().chain(random).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_alphanumeric_unique_and_sort_by_time() {
        let first = new_uid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let uids: Vec<String> = (0..1000).map(|_| new_uid()).collect();
        for uid in &uids {
            assert_eq!(uid.len(), 32, "{uid}");
            assert!(uid.bytes().all(|b| b.is_ascii_alphanumeric()), "{uid}");
            assert!(uid[..8] > first[..8], "{uid} after {first}");
        }
        let distinct: std::collections::HashSet<&String> = uids.iter().collect();
        assert_eq!(distinct.len(), uids.len());
    }
}

/// One decision of the matcher: this destination gets the message, because of these filters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// Where it goes.
    pub destination_id: i64,
    /// Every filter that matched, as (id, name).
    pub filters: Vec<(i64, String)>,
    /// Set when every filter that matched gathers a digest of its own: the first of them
    /// (lowest id) and its settings. The notification waits for that digest instead of
    /// going by the destination's rules.
    pub digest: Option<(i64, tidings_rules::delivery::DeliveryPolicy)>,
}

/// What an outbox row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// A matched bus message.
    Notification,
    /// The confirmation link for a new destination.
    Confirmation,
    /// The notifications collected for a destination (its digest, its owner's quiet hours,
    /// a flood), sent as one.
    Digest,
    /// A word to a destination's owner from the hub itself: another of their destinations
    /// was paused.
    Notice,
}

/// Where an outbox row is in its life, as stored in its `status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    /// Waiting for its time.
    Pending,
    /// Claimed by a sender.
    Sending,
    /// Accepted by the channel.
    Sent,
    /// Failed for good.
    Dead,
    /// Waiting behind an earlier notification to the same destination, whose channel
    /// delivers in order; made pending once that one is sent or dead.
    Held,
    /// Kept for the destination's next digest (see `digests`).
    Collected,
}

impl OutboxStatus {
    pub(crate) fn parse(s: &str) -> Result<OutboxStatus> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sending" => Ok(OutboxStatus::Sending),
            "sent" => Ok(OutboxStatus::Sent),
            "dead" => Ok(OutboxStatus::Dead),
            "held" => Ok(OutboxStatus::Held),
            "collected" => Ok(OutboxStatus::Collected),
            other => Err(StoreError::corrupt("outbox status", other)),
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
            OutboxStatus::Held => "held",
            OutboxStatus::Collected => "collected",
        }
    }
}

/// What an outbox row carries besides its message, stored as JSON with its kind and
/// version in the tag (`{"kind": "confirmation/1", "token": …}`): a changed shape is a new
/// variant beside the old, so rows queued by an older release still read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum OutboxPayload {
    /// A destination's confirmation mail, version 1: the link's one-time token.
    #[serde(rename = "confirmation/1")]
    ConfirmationV1 {
        /// The secret of the confirmation link (wiped once the row is finished).
        token: String,
    },
    /// A digest, version 1: why its notifications were collected, and once claimed the
    /// last collected row it holds (they are marked with it when it is recorded).
    #[serde(rename = "digest/1")]
    DigestV1 {
        /// Why.
        reason: crate::pipeline::digests::DigestReason,
        /// The newest collected row it holds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        up_to: Option<i64>,
        /// The filter whose own digest it is (none: the destination's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filter: Option<i64>,
    },
    /// A notice, version 1: another destination of the owner's was paused, and why.
    #[serde(rename = "notice/1")]
    PausedV1 {
        /// The paused destination's channel and address.
        channel: String,
        /// Its address.
        address: String,
        /// Why it was paused.
        reason: String,
    },
}

impl OutboxPayload {
    /// The stored form.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| StoreError::corrupt("outbox payload", e))
    }

    /// Reads the stored form.
    pub fn from_json(json: &str) -> Result<OutboxPayload> {
        serde_json::from_str(json).map_err(|e| StoreError::corrupt("outbox payload", e))
    }
}

/// A claimed row, with everything a sender needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Outbox row id.
    pub id: i64,
    /// What it carries.
    pub kind: OutboxKind,
    /// Stable identity across resends.
    pub uid: String,
    /// This attempt's number, from 1.
    pub attempt: i64,
    /// This claim's token, written on the row: an outcome is recorded only while the row
    /// still carries it (see [`Store::record`]).
    pub claim_token: String,
    /// Where it goes.
    pub destination: Destination,
    /// The owner's username.
    pub username: String,
    /// The message, for notifications: shared by every row of one claim that carries it.
    pub message: Option<Arc<StoredMessage>>,
    /// The filters that matched, as (id, name).
    pub filters: Vec<(i64, String)>,
    /// Kind-specific data (the confirmation token).
    pub payload: Option<OutboxPayload>,
    /// For notifications: the secret of its unsubscribe link (see [`unsubscribe_token`]).
    pub unsubscribe_token: Option<String>,
    /// For a digest: the notifications it holds.
    pub digest: Option<crate::pipeline::digests::DigestContents>,
}

impl Claimed {
    /// The confirmation link's token, for a confirmation.
    pub fn confirmation_token(&self) -> Option<&str> {
        match &self.payload {
            Some(OutboxPayload::ConfirmationV1 { token }) => Some(token),
            Some(OutboxPayload::DigestV1 { .. } | OutboxPayload::PausedV1 { .. }) | None => None,
        }
    }
}

/// The rows of one destination taken by one claim, oldest first: what a digest will be
/// made of.
#[derive(Debug, Clone)]
pub struct ClaimBatch {
    /// Where they go.
    pub destination: Destination,
    /// The rows.
    pub rows: Vec<Claimed>,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The channel accepted it.
    Sent,
    /// Failed; try again at this time (ms since the epoch).
    Retry {
        /// Why it failed.
        error: String,
        /// When to try again.
        at: i64,
    },
    /// The channel asked to wait: not sent, and the attempt does not count toward the
    /// most attempts allowed.
    RateLimited {
        /// What the channel said.
        error: String,
        /// When to try again.
        at: i64,
    },
    /// Failed for good.
    Dead {
        /// Why.
        error: String,
    },
}

/// Whether a recorded outcome counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The row still carried this claim's token: the outcome is the row's.
    Current,
    /// The claim had been lost (its lease ran out and the row was claimed again, or
    /// another outcome was recorded): nothing was written.
    LeaseLost,
}

/// What one [`Store::record_and_claim`] did.
#[derive(Debug)]
pub struct Cycle {
    /// One answer per outcome, in order.
    pub recorded: Vec<Recorded>,
    /// The rows claimed, by destination; an error if they could not be read after the
    /// commit (the outcomes are recorded all the same, and those rows wait for their
    /// leases to run out).
    pub claimed: Result<Vec<ClaimBatch>>,
}

/// A claimed row with everything a sender needs; `message` is its message as read (none
/// for a confirmation, or when it is missing).
fn hydrate(
    row: ClaimRow,
    message: Option<Result<Arc<StoredMessage>>>,
    destination: &Destination,
    username: &str,
    key: Option<&ServerKey>,
) -> Result<Claimed> {
    let message = match (row.message_id, message) {
        (Some(_), Some(message)) => Some(message?),
        (Some(id), None) => return Err(StoreError::corrupt("outbox message", id)),
        (None, _) => None,
    };
    let kind = match row.kind.as_str() {
        "notification" => OutboxKind::Notification,
        "confirmation" => OutboxKind::Confirmation,
        "digest" => OutboxKind::Digest,
        "notice" => OutboxKind::Notice,
        other => return Err(StoreError::corrupt("outbox kind", other)),
    };
    let unsubscribe_token = match kind {
        OutboxKind::Notification => key.map(|key| unsubscribe_token(key, &row.uid)),
        OutboxKind::Confirmation | OutboxKind::Digest | OutboxKind::Notice => None,
    };
    Ok(Claimed {
        unsubscribe_token,
        id: row.id,
        kind,
        uid: row.uid,
        attempt: row.attempts,
        claim_token: row.claim_token,
        destination: destination.clone(),
        username: username.to_string(),
        message,
        filters: serde_json::from_str(&row.filters)
            .map_err(|e| StoreError::corrupt("outbox filters", e))?,
        payload: row
            .payload
            .as_deref()
            .map(OutboxPayload::from_json)
            .transpose()?,
        digest: None,
    })
}

/// A notification as its owner sees it in the web UI.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct NotificationView {
    /// Outbox row id.
    pub id: i64,
    /// Message topic.
    pub topic: String,
    /// The message's bus id (the why-page asks for it).
    pub msg_id: String,
    /// The message's one-line summary (from its metadata).
    #[sqlx(skip)]
    pub summary: String,
    #[serde(skip)]
    metadata: String,
    /// Where it went.
    pub address: String,
    /// Filters that matched, JSON `[[id, name], …]`.
    pub filters: String,
    /// pending, sending, sent, dead.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// When it was sent.
    pub sent_at: Option<i64>,
}

/// An outbox row that failed for good, as operators list them.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct DeadNotification {
    /// Outbox row id.
    pub id: i64,
    /// `notification` (a matched message) or `confirmation` (a destination's link).
    pub kind: String,
    /// The destination's channel.
    pub channel: String,
    /// The destination's address.
    pub address: String,
    /// Whose destination it is.
    pub username: String,
    /// The message's topic; none for a confirmation.
    pub topic: Option<String>,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last one failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
}

/// One attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct DeliveryRecord {
    /// Outbox row.
    pub outbox_id: i64,
    /// Attempt number.
    pub attempt: i64,
    /// When.
    pub at: i64,
    /// sent, retry, dead.
    pub outcome: String,
    /// Error text, if any.
    pub detail: Option<String>,
}

#[derive(FromRow)]
struct OwnedDestinationRow {
    #[sqlx(flatten)]
    destination: DestinationRow,
    username: String,
}

#[derive(FromRow)]
struct ClaimRow {
    id: i64,
    kind: String,
    uid: String,
    attempts: i64,
    filters: String,
    payload: Option<String>,
    message_id: Option<i64>,
    destination_id: i64,
    claim_token: String,
}

/// The most notification rows [`Store::sent_per_filter`] reads.
pub const FILTER_COUNT_ROWS: i64 = 100_000;

/// Notifications sent per filter (see [`Store::sent_per_filter`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SentPerFilter {
    /// Filter id → notifications sent.
    pub by_filter: std::collections::HashMap<i64, u64>,
    /// Whether the count stopped at [`FILTER_COUNT_ROWS`] rows.
    pub capped: bool,
}

/// Dead notifications in a row, none sent between, that pause a destination.
pub const PAUSE_AFTER: i64 = 3;

/// A notification or digest whose outcome is recorded: sent (`dead` none) or dead.
struct Ended {
    row: i64,
    destination: i64,
    dead: Option<String>,
}

/// Inside transaction `$tx`: disables destination `$id` if it is confirmed (unconfirmed,
/// with `$reason` shown to its owner), and queues a notice saying so to another of the
/// owner's confirmed destinations (mail first; never a webhook, which is a machine).
macro_rules! pause_destination {
    ($store:expr, $tx:ident, $id:expr, $reason:expr, $now:expr) => {{
        let pause = $store.sql(
            "UPDATE destinations SET confirmed_at = NULL, disabled_reason = $1 \
             WHERE id = $2 AND confirmed_at IS NOT NULL RETURNING user_id, channel, address",
        );
        let paused: Option<(i64, String, String)> = sqlx::query_as(&pause)
            .bind($reason)
            .bind($id)
            .fetch_optional(&mut *$tx)
            .await?;
        if let Some((user_id, channel, address)) = paused {
            tracing::warn!(destination = $id, %address, reason = %$reason, "destination paused");
            let other = $store.sql(
                "SELECT id FROM destinations WHERE user_id = $1 AND id <> $2 \
                 AND confirmed_at IS NOT NULL AND channel <> 'webhook' \
                 ORDER BY CASE WHEN channel = 'email' THEN 0 ELSE 1 END, id LIMIT 1",
            );
            let to: Option<i64> = sqlx::query_scalar(&other)
                .bind(user_id)
                .bind($id)
                .fetch_optional(&mut *$tx)
                .await?;
            if let Some(to) = to {
                let payload = $crate::pipeline::outbox::OutboxPayload::PausedV1 {
                    channel,
                    address,
                    reason: String::from($reason),
                }
                .to_json()?;
                let notice = $store.sql(
                    "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at, ordered) \
                     VALUES ('notice', NULL, $1, '[]', $2, $3, 'pending', $4, $4, 0)",
                );
                sqlx::query(&notice)
                    .bind(to)
                    .bind(payload)
                    .bind($crate::pipeline::outbox::new_uid())
                    .bind($now)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}
pub(crate) use pause_destination;

/// A digest being recorded: its row, destination, the newest collected row it holds, why
/// it was collected, and the error if it is dead.
struct Digested {
    row: i64,
    destination: i64,
    /// The filter whose digest it is; 0 for the destination's.
    filter: i64,
    up_to: i64,
    reason: DigestReason,
    dead: Option<String>,
}

/// Makes the oldest `held` row of each of these destinations (ids, a slice) pending, where
/// none of theirs is pending or being sent, inside transaction `$tx`: the next notification
/// in line for a destination that takes them in order.
macro_rules! promote_heads {
    ($store:expr, $tx:ident, $destinations:expr) => {
        for chunk in $destinations.chunks(CHUNK_ROWS) {
            let sql = format!(
                "UPDATE outbox SET status = 'pending' WHERE status = 'held' AND id IN ( \
                   SELECT MIN(id) FROM outbox WHERE ordered = 1 \
                   AND status IN ('pending', 'sending', 'held') \
                   AND destination_id IN ({}) GROUP BY destination_id)",
                placeholders(1, chunk.len())
            );
            let sql = $store.sql(&sql);
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.execute(&mut *$tx).await?;
        }
    };
}
pub(crate) use promote_heads;

impl Store {
    /// Claims up to `limit` due rows for `lease_ms` (see [`Store::claim_batches`]), oldest
    /// first.
    pub async fn claim(&self, limit: i64, lease_ms: i64) -> Result<Vec<Claimed>> {
        let mut rows: Vec<Claimed> = self
            .claim_batches(limit, lease_ms)
            .await?
            .into_iter()
            .flat_map(|batch| batch.rows)
            .collect();
        rows.sort_by_key(|c| c.id);
        Ok(rows)
    }

    /// Claims up to `limit` due rows for `lease_ms`: pending rows whose time has come, and
    /// rows whose sender's lease ran out, grouped by destination. Every claim writes a
    /// fresh claim token on its rows. Concurrent senders never claim the same row.
    pub async fn claim_batches(&self, limit: i64, lease_ms: i64) -> Result<Vec<ClaimBatch>> {
        self.record_and_claim(&[], limit, lease_ms).await?.claimed
    }

    /// A sender's round trip: records `outcomes` as [`Store::record_many`] does and claims
    /// up to `limit` rows as [`Store::claim_batches`] does, in one transaction. One
    /// transaction where there were two halves what a sender costs the database: on SQLite,
    /// whose one writer serves ingest, matching and sending, a separate recorder and
    /// claimer also queued behind each other for its lock.
    pub async fn record_and_claim(
        &self,
        outcomes: &[(&Claimed, &Outcome)],
        limit: i64,
        lease_ms: i64,
    ) -> Result<Cycle> {
        // Destinations that take their notifications in order and whose oldest row is done:
        // the next one in line is made pending in the same transaction.
        let mut next_in_line: Vec<i64> = outcomes
            .iter()
            .filter(|(c, o)| {
                c.destination.channel.delivers_in_order()
                    && matches!(o, Outcome::Sent | Outcome::Dead { .. })
            })
            .map(|(c, _)| c.destination.id)
            .collect();
        next_in_line.sort_unstable();
        next_in_line.dedup();
        // Digests recorded sent or dead: what they hold is marked with them.
        let digests: Vec<Digested> = outcomes
            .iter()
            .filter_map(|(c, o)| match (&c.payload, o) {
                (
                    Some(OutboxPayload::DigestV1 {
                        reason,
                        up_to: Some(up_to),
                        filter,
                    }),
                    Outcome::Sent | Outcome::Dead { .. },
                ) => Some(Digested {
                    row: c.id,
                    destination: c.destination.id,
                    filter: filter.unwrap_or(0),
                    up_to: *up_to,
                    reason: *reason,
                    dead: match o {
                        Outcome::Dead { error } => Some(error.clone()),
                        _ => None,
                    },
                }),
                _ => None,
            })
            .collect();
        // Notifications and digests that ended: a destination's run of dead ones is counted,
        // and any sent ends it (see `pause_failing`).
        let ended: Vec<Ended> = outcomes
            .iter()
            .filter(|(c, _)| matches!(c.kind, OutboxKind::Notification | OutboxKind::Digest))
            .filter_map(|(c, o)| match o {
                Outcome::Sent => Some(Ended {
                    row: c.id,
                    destination: c.destination.id,
                    dead: None,
                }),
                Outcome::Dead { error } => Some(Ended {
                    row: c.id,
                    destination: c.destination.id,
                    dead: Some(error.clone()),
                }),
                _ => None,
            })
            .collect();
        let outcomes: Vec<(i64, i64, &str, &Outcome)> = outcomes
            .iter()
            .map(|(c, o)| (c.id, c.attempt, c.claim_token.as_str(), *o))
            .collect();
        let (recorded, rows) = self
            .cycle(&outcomes, &next_in_line, &digests, &ended, limit, lease_ms)
            .await?;
        Ok(Cycle {
            recorded,
            claimed: self.hydrate_claims(rows).await,
        })
    }

    /// Records `outcomes` (fenced by their claim tokens) and claims up to `limit` rows, in
    /// one transaction; the claimed rows as stored.
    async fn cycle(
        &self,
        outcomes: &[(i64, i64, &str, &Outcome)],
        next_in_line: &[i64],
        digests: &[Digested],
        ended: &[Ended],
        limit: i64,
        lease_ms: i64,
    ) -> Result<(Vec<Recorded>, Vec<ClaimRow>)> {
        let now = now_ms();
        let token = new_uid();
        // Two statements, each answered by an index in order (`outbox_sending`, then
        // `outbox_due`): rows whose sender's lease ran out first, then due pending rows.
        // One statement with `OR` had to collect and sort every due row before its LIMIT,
        // which made each claim cost as much as the whole queue (400,000 rows in a burst).
        // Rows of a destination that takes its notifications in order wait `held` behind
        // the oldest (see `promote_heads`), so a claim never sees them.
        let claim = |status: &str, due: &str| -> String {
            let sql = format!(
                "UPDATE outbox SET status = 'sending', lease_until = $1, attempts = attempts + 1, claim_token = $4 \
                 WHERE id IN ( \
                   SELECT id FROM outbox WHERE status = '{status}' AND {due} <= $2 \
                   ORDER BY {due}, id LIMIT $3 {}) \
                 RETURNING id, kind, uid, attempts, filters, payload, message_id, destination_id, claim_token",
                self.skip_locked()
            );
            self.sql(&sql).into_owned()
        };
        let expired = claim("sending", "lease_until");
        let due = claim("pending", "next_attempt_at");
        let mark_digested = self.sql(
            "UPDATE outbox SET status = $1, sent_at = CASE WHEN $1 = 'sent' THEN $2 ELSE NULL END, \
             last_error = $3 WHERE destination_id = $4 AND status = 'collected' AND id <= $5 \
             AND digest_filter = $6",
        );
        let collected_after = self.sql(
            "SELECT COUNT(*) FROM outbox WHERE destination_id = $1 AND status = 'collected' \
             AND id > $2 AND digest_filter = $3",
        );
        let follow_up = self.sql(
            "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at, ordered, digest_filter) \
             VALUES ('digest', NULL, $1, '[]', $2, $3, 'pending', $4, $5, 0, $6) ON CONFLICT DO NOTHING",
        );
        let newest_collected = self.sql(
            "SELECT MAX(id) FROM outbox WHERE destination_id = $1 AND status = 'collected' \
             AND digest_filter = $2",
        );
        let nothing_to_send = self.sql(
            "UPDATE outbox SET status = 'sent', sent_at = $1, lease_until = NULL, claim_token = NULL \
             WHERE id = $2",
        );
        let hold_up_to = self.sql("UPDATE outbox SET payload = $1 WHERE id = $2");
        let count_failure = self.sql(
            "UPDATE destinations SET failures = failures + 1 WHERE id = $1 RETURNING failures",
        );
        let limit = limit.max(0);
        let relaxed = self.relaxed_commit();
        let mut changed = std::collections::HashSet::new();
        let rows = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(sql) = relaxed {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            // Outcomes first: they free rows (and, on SQLite, the write comes first).
            for chunk in outcomes.chunks(CHUNK_ROWS) {
                let update = self.record_sql(chunk.len());
                let mut query = sqlx::query_scalar::<_, i64>(&update).bind(now);
                for &(id, _, claim_token, outcome) in chunk {
                    let (status, detail, next, uncount) = outcome_row(outcome, now);
                    query = query
                        .bind(id)
                        .bind(claim_token)
                        .bind(status.as_str())
                        .bind(detail)
                        .bind(next)
                        .bind(uncount);
                }
                changed.extend(query.fetch_all(&mut *tx).await?);
                // Failed attempts only: a sent row is its own record of the attempt that
                // sent it (`deliveries` reads it back), which spares a row per notification.
                let logged: Vec<_> = chunk
                    .iter()
                    .filter(|(id, .., outcome)| {
                        changed.contains(id) && !matches!(outcome, Outcome::Sent)
                    })
                    .collect();
                if logged.is_empty() {
                    continue;
                }
                let log = self.log_sql(logged.len());
                let mut query = sqlx::query(&log);
                for &&(id, attempt, _, outcome) in &logged {
                    let (_, detail, ..) = outcome_row(outcome, now);
                    query = query
                        .bind(id)
                        .bind(attempt)
                        .bind(now)
                        .bind(outcome_name(outcome))
                        .bind(detail);
                }
                query.execute(&mut *tx).await?;
            }
            promote_heads!(self, tx, next_in_line);
            for digest in digests.iter().filter(|d| changed.contains(&d.row)) {
                let (status, error) = match &digest.dead {
                    None => ("sent", None),
                    Some(error) => (
                        "dead",
                        Some(format!("in a digest that could not be sent: {error}")),
                    ),
                };
                sqlx::query(&mark_digested)
                    .bind(status)
                    .bind(now)
                    .bind(error)
                    .bind(digest.destination)
                    .bind(digest.up_to)
                    .bind(digest.filter)
                    .execute(&mut *tx)
                    .await?;
                // What was collected while it was sent goes in a digest of its own.
                let left: i64 = sqlx::query_scalar(&collected_after)
                    .bind(digest.destination)
                    .bind(digest.up_to)
                    .bind(digest.filter)
                    .fetch_one(&mut *tx)
                    .await?;
                if left > 0 {
                    let payload = OutboxPayload::DigestV1 {
                        reason: digest.reason,
                        up_to: None,
                        filter: (digest.filter != 0).then_some(digest.filter),
                    }
                    .to_json()?;
                    sqlx::query(&follow_up)
                        .bind(digest.destination)
                        .bind(payload)
                        .bind(new_uid())
                        .bind(now + crate::pipeline::digests::FOLLOW_UP_MS)
                        .bind(now)
                        .bind(digest.filter)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // A sent one ends its destination's run of failures; dead ones lengthen it, and
            // a run of PAUSE_AFTER pauses the destination and tells its owner.
            let mut sent_to: Vec<i64> = ended
                .iter()
                .filter(|e| e.dead.is_none() && changed.contains(&e.row))
                .map(|e| e.destination)
                .collect();
            sent_to.sort_unstable();
            sent_to.dedup();
            for chunk in sent_to.chunks(CHUNK_ROWS) {
                let sql = format!(
                    "UPDATE destinations SET failures = 0 WHERE failures > 0 AND id IN ({})",
                    placeholders(1, chunk.len())
                );
                let sql = self.sql(&sql);
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await?;
            }
            for failed in ended.iter().filter(|e| changed.contains(&e.row)) {
                let Some(error) = &failed.dead else { continue };
                let failures: i64 = sqlx::query_scalar(&count_failure)
                    .bind(failed.destination)
                    .fetch_one(&mut *tx)
                    .await?;
                if failures == PAUSE_AFTER {
                    let reason = format!(
                        "paused after {PAUSE_AFTER} notifications in a row could not be \
                         delivered; the last: {error}"
                    );
                    pause_destination!(self, tx, failed.destination, &reason, now);
                }
            }
            let mut rows = Vec::new();
            if limit > 0 {
                rows = sqlx::query_as::<_, ClaimRow>(&expired)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(limit)
                    .bind(&token)
                    .fetch_all(&mut *tx)
                    .await?;
                let left = limit - rows.len() as i64;
                if left > 0 {
                    rows.extend(
                        sqlx::query_as::<_, ClaimRow>(&due)
                            .bind(now + lease_ms)
                            .bind(now)
                            .bind(left)
                            .bind(&token)
                            .fetch_all(&mut *tx)
                            .await?,
                    );
                }
            }
            // A digest holds what was collected up to its claim; one with nothing left to
            // hold (all retried or deleted meanwhile) is done.
            let mut held = Vec::with_capacity(rows.len());
            for mut row in rows {
                if row.kind != "digest" {
                    held.push(row);
                    continue;
                }
                let (reason, filter) = match row.payload.as_deref().map(OutboxPayload::from_json) {
                    Some(Ok(OutboxPayload::DigestV1 { reason, filter, .. })) => (reason, filter),
                    _ => (DigestReason::Digest, None),
                };
                let up_to: Option<i64> = sqlx::query_scalar(&newest_collected)
                    .bind(row.destination_id)
                    .bind(filter.unwrap_or(0))
                    .fetch_one(&mut *tx)
                    .await?;
                let Some(up_to) = up_to else {
                    sqlx::query(&nothing_to_send)
                        .bind(now)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                    continue;
                };
                let payload = OutboxPayload::DigestV1 {
                    reason,
                    up_to: Some(up_to),
                    filter,
                }
                .to_json()?;
                sqlx::query(&hold_up_to)
                    .bind(&payload)
                    .bind(row.id)
                    .execute(&mut *tx)
                    .await?;
                row.payload = Some(payload);
                held.push(row);
            }
            let rows = held;
            tx.commit().await?;
            rows
        });
        let recorded = outcomes
            .iter()
            .map(|(id, ..)| {
                if changed.contains(id) {
                    Recorded::Current
                } else {
                    Recorded::LeaseLost
                }
            })
            .collect();
        Ok((recorded, rows))
    }

    /// The statement that records `rows` outcomes: a fenced `UPDATE … FROM (VALUES …)` that
    /// returns the rows it changed.
    fn record_sql(&self, rows: usize) -> String {
        let values = value_rows(
            rows,
            2,
            "(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), \
             CAST(? AS BIGINT), CAST(? AS BIGINT))",
        );
        // VALUES names its columns column1… on both backends: id, claim token, status,
        // error, next attempt, attempts to give back.
        let update = format!(
            "UPDATE outbox SET status = v.column3, last_error = v.column4, \
             next_attempt_at = v.column5, lease_until = NULL, \
             sent_at = CASE WHEN v.column3 = 'sent' THEN $1 ELSE outbox.sent_at END, \
             payload = CASE WHEN v.column3 = 'pending' THEN outbox.payload ELSE NULL END, \
             attempts = outbox.attempts - v.column6, claim_token = NULL \
             FROM (VALUES {values}) AS v \
             WHERE outbox.id = v.column1 AND outbox.claim_token = v.column2 \
             AND outbox.status = 'sending' RETURNING outbox.id"
        );
        self.sql(&update).into_owned()
    }

    /// The multi-row insert of `rows` failed attempts into the attempt log.
    fn log_sql(&self, rows: usize) -> String {
        // The time per row too: each parameter once, in order (see `Store::sql`).
        let log = format!(
            "INSERT INTO deliveries (outbox_id, attempt, at, outcome, detail) VALUES {}",
            value_rows(rows, 1, "(?, ?, ?, ?, ?)")
        );
        self.sql(&log).into_owned()
    }

    /// Claimed rows as a sender needs them, grouped by destination, oldest first in each.
    /// A row that cannot be read is recorded dead, with the reason, and left out.
    async fn hydrate_claims(&self, mut rows: Vec<ClaimRow>) -> Result<Vec<ClaimBatch>> {
        rows.sort_by_key(|r| (r.destination_id, r.id));
        let key = if rows.iter().any(|r| r.kind == "notification") {
            Some(self.server_key(UNSUBSCRIBE_KEY).await?)
        } else {
            None
        };
        let messages = self
            .messages_by_id(rows.iter().filter_map(|r| r.message_id))
            .await?;
        let owners = self
            .destinations_and_owners(rows.iter().map(|r| r.destination_id))
            .await?;
        let mut batches: Vec<ClaimBatch> = Vec::new();
        for row in rows {
            let (id, attempt) = (row.id, row.attempts);
            let claim_token = row.claim_token.clone();
            let hydrated = match owners.get(&row.destination_id) {
                Some(Ok((destination, username))) => {
                    let message = row.message_id.and_then(|id| messages.get(&id)).map(|m| {
                        m.clone()
                            .map_err(|reason| StoreError::corrupt("stored message", reason))
                    });
                    hydrate(row, message, destination, username, key.as_ref())
                }
                Some(Err(reason)) => Err(StoreError::corrupt("destination", reason)),
                None => Err(StoreError::NotFound),
            };
            let hydrated = match hydrated {
                Ok(mut claimed) => match claimed.payload {
                    Some(OutboxPayload::DigestV1 {
                        reason,
                        up_to: Some(up_to),
                        filter,
                    }) => {
                        let contents = self
                            .digest_contents(claimed.destination.id, reason, up_to, filter)
                            .await?;
                        claimed.digest = Some(contents);
                        Ok(claimed)
                    }
                    _ => Ok(claimed),
                },
                Err(err) => Err(err),
            };
            match hydrated {
                Ok(claimed) => match batches.last_mut() {
                    Some(batch) if batch.destination.id == claimed.destination.id => {
                        batch.rows.push(claimed)
                    }
                    _ => batches.push(ClaimBatch {
                        destination: claimed.destination.clone(),
                        rows: vec![claimed],
                    }),
                },
                // A row that cannot be read can never be sent: it is dead, with the reason,
                // and the rest of the batch (other people's mail) goes on.
                Err(err @ StoreError::Corrupt { .. }) => {
                    tracing::error!(outbox = id, %err, "an outbox row cannot be read; it is dead");
                    let error = format!("cannot be sent: {err}");
                    self.record_attempt(id, attempt, &claim_token, &Outcome::Dead { error })
                        .await?;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(batches)
    }

    /// What a digest of `destination` holds: the collected rows up to `up_to`, counted, and
    /// the newest [`DIGEST_ITEMS`] of them with their messages (oldest first). A message
    /// that cannot be read is left out of the list, and still counted.
    async fn digest_contents(
        &self,
        destination: i64,
        reason: DigestReason,
        up_to: i64,
        filter: Option<i64>,
    ) -> Result<DigestContents> {
        let count = self.sql(
            "SELECT COUNT(*) FROM outbox WHERE destination_id = $1 AND status = 'collected' \
             AND id <= $2 AND digest_filter = $3",
        );
        let newest = self.sql(
            "SELECT message_id, filters FROM outbox WHERE destination_id = $1 \
             AND status = 'collected' AND id <= $2 AND digest_filter = $3 \
             ORDER BY id DESC LIMIT $4",
        );
        let group = filter.unwrap_or(0);
        let (total, mut rows) = with_pool!(self, |pool| {
            let total: i64 = sqlx::query_scalar(&count)
                .bind(destination)
                .bind(up_to)
                .bind(group)
                .fetch_one(pool)
                .await?;
            let rows: Vec<(Option<i64>, String)> = sqlx::query_as(&newest)
                .bind(destination)
                .bind(up_to)
                .bind(group)
                .bind(DIGEST_ITEMS)
                .fetch_all(pool)
                .await?;
            (total, rows)
        });
        rows.reverse();
        let messages = self
            .messages_by_id(rows.iter().filter_map(|(id, _)| *id))
            .await?;
        let items: Vec<crate::pipeline::digests::DigestItem> = rows
            .into_iter()
            .filter_map(|(id, filters)| {
                let message = messages.get(&id?)?.as_ref().ok()?.clone();
                let filters = serde_json::from_str(&filters).unwrap_or_default();
                Some((message, filters))
            })
            .collect();
        // A filter's digest is named after it, as each of its items names it.
        let filter = filter.map(|id| {
            let name = items
                .iter()
                .flat_map(|(_, filters)| filters.iter())
                .find(|(f, _)| *f == id)
                .map_or_else(|| format!("filter {id}"), |(_, name)| name.clone());
            (id, name)
        });
        Ok(DigestContents {
            reason,
            total,
            items,
            filter,
        })
    }

    /// The destinations with these ids and their owners' usernames, in one query.
    async fn destinations_and_owners(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, std::result::Result<(Destination, String), String>>> {
        let mut ids: Vec<i64> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        // Ids are integers read from the outbox: nothing here comes from outside.
        let sql = format!(
            "SELECT d.id, d.user_id, d.channel, d.address, d.settings, d.confirmed_at, d.created_at, d.disabled_reason, d.delivery, u.username \
             FROM destinations d JOIN users u ON u.id = d.user_id WHERE d.id IN ({})",
            list.join(",")
        );
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, OwnedDestinationRow>(&sql)
            .fetch_all(pool)
            .await?);
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = row.destination.id;
                let username = row.username;
                let found = Destination::try_from(row.destination)
                    .map(|d| (d, username))
                    .map_err(|e| e.to_string());
                (id, found)
            })
            .collect())
    }

    /// The messages with these ids, each read on its own (one unreadable row spoils only
    /// its own notification), in one query.
    async fn messages_by_id(
        &self,
        ids: impl Iterator<Item = i64>,
    ) -> Result<HashMap<i64, std::result::Result<Arc<StoredMessage>, String>>> {
        let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        // Ids are integers read from the outbox: nothing here comes from outside.
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN ({})",
            ids.join(",")
        );
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, MessageRow>(&sql)
            .fetch_all(pool)
            .await?);
        Ok(rows
            .into_iter()
            .map(|row| {
                (
                    row.id,
                    StoredMessage::try_from(row)
                        .map(Arc::new)
                        .map_err(|e| e.to_string()),
                )
            })
            .collect())
    }

    /// Records one attempt's outcome and logs it, fenced by the claim token: if the row no
    /// longer carries `claimed`'s token (its lease ran out and another claim took it, or an
    /// outcome was already recorded), nothing is written and [`Recorded::LeaseLost`] says
    /// so. Secrets in the payload are wiped once the row is finished.
    pub async fn record(&self, claimed: &Claimed, outcome: &Outcome) -> Result<Recorded> {
        let recorded = self.record_many(&[(claimed, outcome)]).await?;
        Ok(recorded.first().copied().unwrap_or(Recorded::LeaseLost))
    }

    /// Records many outcomes as [`Store::record`] does, in one transaction; one answer per
    /// outcome, in order.
    pub async fn record_many(&self, outcomes: &[(&Claimed, &Outcome)]) -> Result<Vec<Recorded>> {
        Ok(self.record_and_claim(outcomes, 0, 0).await?.recorded)
    }

    async fn record_attempt(
        &self,
        id: i64,
        attempt: i64,
        claim_token: &str,
        outcome: &Outcome,
    ) -> Result<Recorded> {
        let recorded = self
            .record_rows(&[(id, attempt, claim_token, outcome)])
            .await?;
        Ok(recorded.first().copied().unwrap_or(Recorded::LeaseLost))
    }

    /// Records outcomes in one transaction with two statements per [`CHUNK_ROWS`] rows.
    /// Rows recorded here (unreadable ones, found dead) carry no destination, so whether
    /// one was the oldest of a destination that takes its notifications in order is read
    /// from the rows: the next in line must not wait behind it for ever.
    async fn record_rows(&self, rows: &[(i64, i64, &str, &Outcome)]) -> Result<Vec<Recorded>> {
        let mut next_in_line = Vec::new();
        for chunk in rows.chunks(CHUNK_ROWS) {
            let sql = format!(
                "SELECT DISTINCT destination_id FROM outbox WHERE ordered = 1 AND id IN ({})",
                placeholders(1, chunk.len())
            );
            let sql = self.sql(&sql);
            let found = with_pool!(self, |pool| {
                let mut query = sqlx::query_scalar::<_, i64>(&sql);
                for (id, ..) in chunk {
                    query = query.bind(id);
                }
                query.fetch_all(pool).await?
            });
            next_in_line.extend(found);
        }
        Ok(self.cycle(rows, &next_in_line, &[], &[], 0, 0).await?.0)
    }

    /// A user's most recent notifications, newest first.
    pub async fn notifications(&self, user_id: i64, limit: i64) -> Result<Vec<NotificationView>> {
        self.notification_views("d.user_id = $1", user_id, limit)
            .await
    }

    /// How many notifications each of a user's filters caused that were sent since `since`
    /// (ms), by filter id: a notification that several filters matched counts for each.
    /// Reads at most [`FILTER_COUNT_ROWS`] rows, the newest; `capped` says when it stopped.
    pub async fn sent_per_filter(&self, user_id: i64, since: i64) -> Result<SentPerFilter> {
        let sql = self.sql(
            "SELECT o.filters FROM outbox o JOIN destinations d ON d.id = o.destination_id \
             WHERE d.user_id = $1 AND o.kind = 'notification' AND o.status = 'sent' \
             AND o.sent_at >= $2 ORDER BY o.id DESC LIMIT $3",
        );
        let rows: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(&sql)
                .bind(user_id)
                .bind(since)
                .bind(FILTER_COUNT_ROWS)
                .fetch_all(pool)
                .await?
        });
        let mut counts = SentPerFilter {
            capped: rows.len() as i64 >= FILTER_COUNT_ROWS,
            ..SentPerFilter::default()
        };
        for filters in rows {
            // An unreadable row counts for no filter rather than hiding the others.
            let matched: Vec<(i64, String)> = serde_json::from_str(&filters).unwrap_or_default();
            for (id, _) in matched {
                *counts.by_filter.entry(id).or_default() += 1;
            }
        }
        Ok(counts)
    }

    /// Every outbox row that failed for good, newest first (for operators): notifications
    /// and destination confirmations alike, as `outbox_counts` counts them. A confirmation
    /// has no message, so the message is joined optionally.
    pub async fn dead_notifications(&self, limit: i64) -> Result<Vec<DeadNotification>> {
        let sql = self.sql(
            "SELECT o.id, o.kind, d.channel, d.address, u.username, m.topic, o.attempts, o.last_error, o.created_at \
             FROM outbox o JOIN destinations d ON d.id = o.destination_id JOIN users u ON u.id = d.user_id \
             LEFT JOIN messages m ON m.id = o.message_id \
             WHERE o.status = 'dead' ORDER BY o.id DESC LIMIT $1",
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, DeadNotification>(&sql)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await?
        }))
    }

    /// Queues dead notifications again, due now with their attempts counted afresh: those
    /// with these ids, or every one when `ids` is empty. Returns how many. Dead
    /// confirmations are not retried here (their link token is gone with them): their
    /// owner has a new one sent from the destinations page.
    pub async fn retry_dead(&self, ids: &[i64]) -> Result<u64> {
        let now = now_ms();
        let base = "UPDATE outbox SET status = 'pending', next_attempt_at = $1, attempts = 0, \
                    lease_until = NULL, claim_token = NULL \
                    WHERE status = 'dead' AND kind = 'notification'";
        let mut retried = 0;
        if ids.is_empty() {
            let sql = self.sql(base);
            with_pool!(self, |pool| {
                retried += sqlx::query(&sql)
                    .bind(now)
                    .execute(pool)
                    .await?
                    .rows_affected();
            });
            return Ok(retried);
        }
        for chunk in ids.chunks(CHUNK_ROWS) {
            let sql = format!("{base} AND id IN ({})", placeholders(2, chunk.len()));
            let sql = self.sql(&sql);
            with_pool!(self, |pool| {
                let mut query = sqlx::query(&sql).bind(now);
                for id in chunk {
                    query = query.bind(id);
                }
                retried += query.execute(pool).await?.rows_affected();
            });
        }
        Ok(retried)
    }

    /// How many outbox rows are dead (read from the partial index `outbox_dead`, not the
    /// whole outbox).
    pub async fn dead_count(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM outbox WHERE status = 'dead'";
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await?))
    }

    /// Deletes dead outbox rows with these ids (and their attempt log); rows that are not
    /// dead are left alone. Returns how many went.
    pub async fn discard_dead(&self, ids: &[i64]) -> Result<u64> {
        let mut discarded = 0;
        for chunk in ids.chunks(CHUNK_ROWS) {
            let sql = format!(
                "DELETE FROM outbox WHERE status = 'dead' AND id IN ({})",
                placeholders(1, chunk.len())
            );
            let sql = self.sql(&sql);
            with_pool!(self, |pool| {
                let mut query = sqlx::query(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                discarded += query.execute(pool).await?.rows_affected();
            });
        }
        Ok(discarded)
    }

    async fn notification_views(
        &self,
        clause: &str,
        arg: i64,
        limit: i64,
    ) -> Result<Vec<NotificationView>> {
        let sql = format!(
            "SELECT o.id, m.topic, m.msg_id, m.metadata, d.address, o.filters, o.status, o.attempts, o.last_error, o.created_at, o.sent_at \
             FROM outbox o JOIN destinations d ON d.id = o.destination_id JOIN messages m ON m.id = o.message_id \
             WHERE o.kind = 'notification' AND {clause} ORDER BY o.id DESC LIMIT $2"
        );
        let sql = self.sql(&sql);
        let mut views = with_pool!(self, |pool| sqlx::query_as::<_, NotificationView>(&sql)
            .bind(arg)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?);
        // One unreadable row must not hide a user's whole list: it shows as unreadable.
        for view in &mut views {
            view.summary = match serde_json::from_str::<tidings_rules::Metadata>(&view.metadata) {
                Ok(metadata) => metadata.summary,
                Err(err) => {
                    tracing::warn!(outbox = view.id, %err, "stored message metadata is unreadable");
                    "(this message's details could not be read)".to_string()
                }
            };
        }
        Ok(views)
    }

    /// The attempts made for one outbox row, in order: the failed ones as logged, then the
    /// one that sent it, read from the row itself (sent rows are not logged; rows sent by
    /// earlier releases were, and are not read twice).
    pub async fn deliveries(&self, outbox_id: i64) -> Result<Vec<DeliveryRecord>> {
        let sql = self.sql(
            "SELECT outbox_id, attempt, at, outcome, detail FROM ( \
               SELECT outbox_id, attempt, at, outcome, detail, 0 AS part, id AS seq \
               FROM deliveries WHERE outbox_id = $1 \
               UNION ALL \
               SELECT o.id, o.attempts, o.sent_at, 'sent', NULL, 1, 0 FROM outbox o \
               WHERE o.id = $2 AND o.status = 'sent' AND o.sent_at IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM deliveries l WHERE l.outbox_id = o.id AND l.outcome = 'sent') \
             ) AS attempts ORDER BY part, seq",
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, DeliveryRecord>(&sql)
                .bind(outbox_id)
                .bind(outbox_id)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Whether any message is unmatched, any outbox row unfinished (pending or sending), and
    /// any dead: each answered by the first entry of a partial index, so it costs the same
    /// however large the archive, the outbox or the queue is.
    pub async fn backlog(&self) -> Result<Backlog> {
        let sql = "SELECT \
            EXISTS (SELECT 1 FROM messages WHERE processed_at IS NULL), \
            EXISTS (SELECT 1 FROM outbox WHERE status = 'pending'), \
            EXISTS (SELECT 1 FROM outbox WHERE status = 'sending'), \
            EXISTS (SELECT 1 FROM outbox WHERE status = 'dead')";
        let (unmatched, pending, sending, dead) = with_pool!(self, |pool| sqlx::query_as::<
            _,
            (bool, bool, bool, bool),
        >(sql)
        .fetch_one(pool)
        .await?);
        Ok(Backlog {
            unmatched,
            unsent: pending || sending,
            dead,
        })
    }

    /// How many outbox rows were sent at or after `since_ms`, and when the first of them
    /// was (for benchmarks; this reads every row).
    pub async fn sent_since(&self, since_ms: i64) -> Result<(i64, Option<i64>)> {
        let sql = self.sql(
            "SELECT COUNT(*), MIN(sent_at) FROM outbox WHERE status = 'sent' AND sent_at >= $1",
        );
        Ok(with_pool!(self, |pool| sqlx::query_as::<
            _,
            (i64, Option<i64>),
        >(&sql)
        .bind(since_ms)
        .fetch_one(pool)
        .await?))
    }

    /// Counts of outbox rows by status: (pending, sending, sent, dead). Each of pending,
    /// sending and dead is counted on its own partial index, and sent is the rest, so this
    /// stays cheap on a large outbox (a count of the whole table walks pages, not rows).
    pub async fn outbox_counts(&self) -> Result<(i64, i64, i64, i64)> {
        let sql = "SELECT \
            (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'held', 'collected')), \
            (SELECT COUNT(*) FROM outbox WHERE status = 'sending'), \
            (SELECT COUNT(*) FROM outbox), \
            (SELECT COUNT(*) FROM outbox WHERE status = 'dead')";
        let (pending, sending, all, dead) =
            with_pool!(self, |pool| sqlx::query_as::<_, (i64, i64, i64, i64)>(sql)
                .fetch_one(pool)
                .await?);
        Ok((pending, sending, all - pending - sending - dead, dead))
    }

    /// Outbox rows counted by (kind, status, claimed), with the earliest and latest
    /// `sent_at` of each group, for benchmarks and tests (this reads every row). `claimed`
    /// tells a row a sender attempted (`attempts > 0`: a notification sent at once, or a
    /// digest) from one never claimed (a notification sent with its digest, or still
    /// collected), and the times when flood control ends.
    pub async fn outbox_tally(
        &self,
    ) -> Result<Vec<(String, String, bool, i64, Option<i64>, Option<i64>)>> {
        let sql = "SELECT kind, status, CAST(CASE WHEN attempts > 0 THEN 1 ELSE 0 END AS BIGINT) AS claimed, \
            COUNT(*), MIN(sent_at), MAX(sent_at) FROM outbox GROUP BY kind, status, claimed";
        let rows = with_pool!(self, |pool| sqlx::query_as::<
            _,
            (String, String, i64, i64, Option<i64>, Option<i64>),
        >(sql)
        .fetch_all(pool)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(kind, status, claimed, n, first, last)| {
                (kind, status, claimed != 0, n, first, last)
            })
            .collect())
    }

    /// Every notification sent at once (claimed and sent, not with a digest): its
    /// destination and when it was queued (the time its flood window counted it), by
    /// destination then time, for benchmarks and tests that check flood limits.
    pub async fn sent_at_once(&self) -> Result<Vec<(i64, i64)>> {
        let sql = "SELECT destination_id, created_at FROM outbox WHERE kind = 'notification' \
            AND status = 'sent' AND attempts > 0 ORDER BY destination_id, created_at";
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, (i64, i64)>(
            sql
        )
        .fetch_all(pool)
        .await?))
    }
}

/// The server key unsubscribe secrets are derived with.
pub(crate) const UNSUBSCRIBE_KEY: &str = "unsubscribe";

/// How long an unsubscribe link works after its notification was queued: 90 days, past
/// the time anyone acts on an old mail. After that the page says the link expired and
/// points to the filters page.
pub const UNSUBSCRIBE_TTL_MS: i64 = 90 * 24 * 3_600_000;

/// The token in a notification's unsubscribe link: its uid, a dot, and the server key's HMAC
/// of the uid (32 + 1 + 43 characters). The uid alone is no secret: it is the Message-ID,
/// seen in every header and reply; the HMAC is, and it is derived when the mail is rendered
/// and checked (in constant time) when the link is opened, so nothing secret is stored.
pub(crate) fn unsubscribe_token(key: &ServerKey, uid: &str) -> String {
    format!("{uid}.{}", key.sign(uid.as_bytes()))
}

/// The row an outcome leaves: (status, error, next attempt at, attempts to give back). A
/// rate-limited attempt is not counted against the row's attempts.
fn outcome_row(outcome: &Outcome, now: i64) -> (OutboxStatus, Option<&str>, i64, i64) {
    match outcome {
        Outcome::Sent => (OutboxStatus::Sent, None, now, 0),
        Outcome::Retry { error, at } => (OutboxStatus::Pending, Some(error.as_str()), *at, 0),
        Outcome::RateLimited { error, at } => (OutboxStatus::Pending, Some(error.as_str()), *at, 1),
        Outcome::Dead { error } => (OutboxStatus::Dead, Some(error.as_str()), now, 0),
    }
}

/// How an outcome is named in the attempt log.
fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Sent => "sent",
        Outcome::Retry { .. } => "retry",
        Outcome::RateLimited { .. } => "rate_limited",
        Outcome::Dead { .. } => "dead",
    }
}

/// What is left to do, as [`Store::backlog`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    /// Some archived message is not matched yet.
    pub unmatched: bool,
    /// Some outbox row is pending or being sent.
    pub unsent: bool,
    /// Some outbox row is dead.
    pub dead: bool,
}

/// What an unsubscribe link points at: the filters behind one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeTarget {
    /// The owner of those filters.
    pub user_id: i64,
    /// The destination the notification went to.
    pub address: String,
    /// The filters, as (id, name).
    pub filters: Vec<(i64, String)>,
    /// What its message can be muted by (its thread, its packages).
    pub mute_options: Vec<crate::MuteOption>,
}

impl Store {
    /// The filters behind the notification whose unsubscribe link carries `token`.
    /// `NotFound` for an unknown token, `Expired` once [`UNSUBSCRIBE_TTL_MS`] has passed.
    pub async fn unsubscribe_target(&self, token: &str) -> Result<UnsubscribeTarget> {
        let select = "SELECT d.user_id, d.address, o.filters, o.created_at, o.uid, o.message_id FROM outbox o \
             JOIN destinations d ON d.id = o.destination_id WHERE o.kind = 'notification' AND ";
        let found: (i64, String, String, i64, String, Option<i64>) = match token.split_once('.') {
            Some((uid, signature)) => {
                let sql = format!("{select} o.uid = $1");
                let sql = self.sql(&sql);
                let row: (i64, String, String, i64, String, Option<i64>) =
                    with_pool!(self, |pool| sqlx::query_as(&sql)
                        .bind(uid)
                        .fetch_one(pool)
                        .await?);
                let key = self.server_key(UNSUBSCRIBE_KEY).await?;
                if !key.verify(row.4.as_bytes(), signature) {
                    return Err(StoreError::NotFound);
                }
                row
            }
            // Links in mails queued before the HMAC was derived at render time: their
            // secret's digest is stored.
            None => {
                let sql = format!("{select} o.unsubscribe_hash = $1");
                let sql = self.sql(&sql);
                with_pool!(self, |pool| sqlx::query_as(&sql)
                    .bind(secret::token_digest(token))
                    .fetch_one(pool)
                    .await?)
            }
        };
        let (user_id, address, filters, created_at, _, message_id) = found;
        if now_ms() - created_at > UNSUBSCRIBE_TTL_MS {
            return Err(StoreError::Expired {
                what: "This unsubscribe link",
            });
        }
        let filters =
            serde_json::from_str(&filters).map_err(|e| StoreError::corrupt("outbox filters", e))?;
        let messages = self.messages_by_id(message_id.into_iter()).await?;
        let mute_options = message_id
            .and_then(|id| messages.get(&id))
            .and_then(|m| m.as_ref().ok())
            .map(|m| crate::mute_options(&m.metadata))
            .unwrap_or_default();
        Ok(UnsubscribeTarget {
            user_id,
            address,
            filters,
            mute_options,
        })
    }

    /// Disables the filters behind the notification whose unsubscribe link carries `token`
    /// (RFC 8058 one-click). Returns the target as it was found.
    pub async fn unsubscribe(&self, token: &str) -> Result<UnsubscribeTarget> {
        let target = self.unsubscribe_target(token).await?;
        let ids: Vec<i64> = target.filters.iter().map(|(id, _)| *id).collect();
        self.disable_filters(target.user_id, &ids).await?;
        Ok(target)
    }
}
