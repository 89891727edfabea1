//! The message archive: every accepted bus message with its metadata, de-duplicated by
//! message id, and marked processed in the same transaction that queues its notifications.
//! Also the record of rejected input and the change log the notifier follows.

use std::collections::HashMap;

use sqlx::FromRow;
use tidings_rules::delivery::DeliveryPolicy;
use tidings_rules::{Message, Metadata};

use crate::db::with_pool;
use crate::pipeline::digests::{self, Plan, Rules, Window};
use crate::pipeline::outbox::{new_uid, Notification};
use crate::{now_ms, Result, Store, StoreError};

/// A destination's delivery columns and its owner's schedule columns.
type RulesRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
);

/// An archived message.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    /// Row id.
    pub id: i64,
    /// The message.
    pub message: Message,
    /// What was derived from it at ingest.
    pub metadata: Metadata,
    /// Where it came from (`zmq:tcp://…`, `http:token-name`).
    pub source: String,
    /// When it arrived.
    pub received_at: i64,
}

#[derive(FromRow)]
pub(crate) struct MessageRow {
    pub(crate) id: i64,
    pub(crate) msg_id: String,
    pub(crate) topic: String,
    pub(crate) sent_at: Option<i64>,
    pub(crate) body: String,
    pub(crate) headers: String,
    pub(crate) metadata: String,
    pub(crate) source: String,
    pub(crate) received_at: i64,
}

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, msg_id, topic, sent_at, body, headers, metadata, source, received_at";

impl TryFrom<MessageRow> for StoredMessage {
    type Error = StoreError;
    fn try_from(row: MessageRow) -> Result<StoredMessage> {
        Ok(StoredMessage {
            id: row.id,
            message: Message {
                id: row.msg_id,
                topic: row.topic,
                sent_at: row.sent_at,
                body: serde_json::from_str(&row.body)
                    .map_err(|e| StoreError::corrupt("message body", e))?,
                headers: serde_json::from_str(&row.headers)
                    .map_err(|e| StoreError::corrupt("message headers", e))?,
            },
            metadata: serde_json::from_str(&row.metadata)
                .map_err(|e| StoreError::corrupt("message metadata", e))?,
            source: row.source,
            received_at: row.received_at,
        })
    }
}

/// Input that could not become a message.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Rejected {
    /// Id.
    pub id: i64,
    /// Where it came from.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// The raw input (lossy UTF-8, at most 64 KiB).
    pub raw: String,
    /// When.
    pub received_at: i64,
}

/// The most of a rejected input that is kept.
const RAW_LIMIT: usize = 64 * 1024;

const REJECT_SQL: &str =
    "INSERT INTO rejected_messages (source, reason, raw, received_at) VALUES ($1, $2, $3, $4)";

/// What is kept of rejected input: lossy UTF-8, at most [`RAW_LIMIT`] bytes, no NULs.
fn kept_raw(raw: &[u8]) -> String {
    let mut kept = String::from_utf8_lossy(&raw[..raw.len().min(RAW_LIMIT)]).into_owned();
    kept.retain(|c| c != '\0');
    kept
}

/// Rows per multi-row statement. Well under both backends' limits on parameters (SQLite
/// 32,766, PostgreSQL 65,535), and small because sqlx binds each SQLite parameter by
/// looking its name up among all of the statement's: binding costs grow with the square of
/// the parameters (at 1,000 rows that lookup was a sixth of the matcher's time).
pub(crate) const CHUNK_ROWS: usize = 100;

/// `$first, $first+1, …` for `count` parameters.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of a multi-row statement: `rows` copies of `row`, joined by commas, each `?` in
/// them numbered in order from `$first` (so each parameter appears once, in order: see
/// `Store::sql`). `row` must hold no other `?`.
pub(crate) fn value_rows(rows: usize, first: usize, row: &str) -> String {
    let mut out = String::with_capacity(rows * (row.len() + 8));
    let mut next = first;
    for i in 0..rows {
        if i > 0 {
            out.push_str(", ");
        }
        for (k, part) in row.split('?').enumerate() {
            if k > 0 {
                out.push_str(&format!("${next}"));
                next += 1;
            }
            out.push_str(part);
        }
    }
    out
}

/// One thing heard on a bus, for [`Store::archive`].
#[derive(Debug, Clone, Copy)]
pub enum Arrival<'a> {
    /// A decoded message and its metadata.
    Message {
        /// The message.
        message: &'a Message,
        /// What was derived from it.
        metadata: &'a Metadata,
        /// Where it came from (`zmq:tcp://…`, `http:token-name`).
        source: &'a str,
    },
    /// Input that could not become a message.
    Rejected {
        /// Where it came from.
        source: &'a str,
        /// Why it was refused.
        reason: &'a str,
        /// The raw input.
        raw: &'a [u8],
    },
}

impl Store {
    /// Archives a message. Returns its row id, or `None` when a message with the same id
    /// was already archived (a duplicate, dropped).
    pub async fn insert_message(
        &self,
        message: &Message,
        metadata: &Metadata,
        source: &str,
    ) -> Result<Option<i64>> {
        let arrival = Arrival::Message {
            message,
            metadata,
            source,
        };
        Ok(self.archive(&[arrival]).await?.pop().flatten())
    }

    /// Archives a batch of arrivals in one transaction (a group commit): messages,
    /// de-duplicated by id, and rejected input. Returns, in order, each message's new row id,
    /// `None` for a duplicate (also of an earlier message in the same batch) and for rejected
    /// input. Nothing is stored unless all of it is.
    pub async fn archive(&self, arrivals: &[Arrival<'_>]) -> Result<Vec<Option<i64>>> {
        let insert = self.sql(
            "INSERT INTO messages (msg_id, topic, sent_at, body, headers, metadata, source, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (msg_id) DO NOTHING RETURNING id",
        );
        let reject = self.sql(REJECT_SQL);
        let now = now_ms();
        let mut encoded = Vec::with_capacity(arrivals.len());
        for arrival in arrivals {
            encoded.push(match arrival {
                Arrival::Message {
                    message, metadata, ..
                } => Some((
                    message.body.to_string(),
                    serde_json::to_string(&message.headers)
                        .map_err(|e| StoreError::corrupt("message headers", e))?,
                    serde_json::to_string(metadata)
                        .map_err(|e| StoreError::corrupt("message metadata", e))?,
                )),
                Arrival::Rejected { .. } => None,
            });
        }
        // In a transaction so that a failed COMMIT is an error. In autocommit, SQLite hands
        // over the RETURNING row before it reports that the write did not last (a full
        // disk), and a message would be acknowledged that was never stored.
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut ids = Vec::with_capacity(arrivals.len());
            for (arrival, encoded) in arrivals.iter().zip(&encoded) {
                match (arrival, encoded) {
                    (
                        Arrival::Message {
                            message, source, ..
                        },
                        Some((body, headers, metadata)),
                    ) => ids.push(
                        sqlx::query_scalar::<_, i64>(&insert)
                            .bind(&message.id)
                            .bind(&message.topic)
                            .bind(message.sent_at)
                            .bind(body)
                            .bind(headers)
                            .bind(metadata)
                            .bind(source)
                            .bind(now)
                            .fetch_optional(&mut *tx)
                            .await?,
                    ),
                    (
                        Arrival::Rejected {
                            source,
                            reason,
                            raw,
                        },
                        _,
                    ) => {
                        sqlx::query(&reject)
                            .bind(source)
                            .bind(reason)
                            .bind(kept_raw(raw))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        ids.push(None);
                    }
                    (Arrival::Message { .. }, None) => ids.push(None),
                }
            }
            tx.commit().await?;
            ids
        }))
    }

    /// Messages not yet matched, oldest first.
    pub async fn unprocessed_messages(&self, limit: i64) -> Result<Vec<StoredMessage>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE processed_at IS NULL ORDER BY id LIMIT $1");
        let sql = self.sql(&sql);
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, MessageRow>(&sql)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(StoredMessage::try_from).collect()
    }

    /// Queues a message's notifications and marks it processed, in one transaction: a crash
    /// leaves either both or neither. A notification already queued is not queued twice.
    pub async fn complete_message(
        &self,
        message_id: i64,
        notifications: &[Notification],
    ) -> Result<()> {
        self.complete_messages(&[(message_id, notifications.to_vec())])
            .await
    }

    /// Queues the notifications of a batch of messages and marks them all processed, in one
    /// transaction, with multi-row statements: a crash leaves either all of it or none.
    /// Only confirmed destinations are queued for; a notification already queued is not
    /// queued twice.
    pub async fn complete_messages(&self, batch: &[(i64, Vec<Notification>)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut destinations: Vec<i64> = batch
            .iter()
            .flat_map(|(_, ns)| ns.iter().map(|n| n.destination_id))
            .collect();
        destinations.sort_unstable();
        destinations.dedup();
        let mut rows = Vec::new();
        // Per row, the filter digest it goes to, if any; and those filters' settings.
        let mut digests_of = Vec::new();
        let mut digest_filters: HashMap<i64, DeliveryPolicy> = HashMap::new();
        for (message_id, notifications) in batch {
            for n in notifications {
                let filters = serde_json::to_string(&n.filters)
                    .map_err(|e| StoreError::corrupt("filters", e))?;
                rows.push((*message_id, n.destination_id, filters, new_uid()));
                if let Some((id, policy)) = &n.digest {
                    digest_filters.insert(*id, policy.clone());
                }
                digests_of.push(n.digest.as_ref().map(|(id, policy)| (*id, policy.clone())));
            }
        }
        let ids: Vec<i64> = batch.iter().map(|(id, _)| *id).collect();
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Written first: on SQLite a transaction that reads first and writes later fails
            // at once (SQLITE_BUSY) if another writer committed meanwhile, instead of
            // waiting for the lock.
            for chunk in ids.chunks(CHUNK_ROWS) {
                let sql = format!(
                    "UPDATE messages SET processed_at = $1 WHERE id IN ({})",
                    placeholders(2, chunk.len())
                );
                let sql = self.sql(&sql);
                let mut query = sqlx::query(&sql).bind(now);
                for id in chunk {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await?;
            }
            // Confirmed destinations with their delivery rules: whether the channel
            // delivers in order, the destination's policy, its owner's schedule.
            let mut confirmed: HashMap<i64, Rules> = HashMap::new();
            for chunk in destinations.chunks(CHUNK_ROWS) {
                let sql = format!(
                    "SELECT d.id, d.channel, d.delivery, u.time_zone, u.quiet_start, u.quiet_end \
                     FROM destinations d JOIN users u ON u.id = d.user_id \
                     WHERE d.confirmed_at IS NOT NULL AND d.id IN ({})",
                    placeholders(1, chunk.len())
                );
                let sql = self.sql(&sql);
                let mut query = sqlx::query_as::<_, RulesRow>(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                for (id, channel, delivery, zone, from, to) in query.fetch_all(&mut *tx).await? {
                    let ordered = channel
                        .parse::<tidings_rules::ChannelKind>()
                        .is_ok_and(|kind| kind.delivers_in_order());
                    let rules =
                        Rules::from_row(id, ordered, delivery.as_deref(), &zone, (from, to));
                    confirmed.insert(id, rules);
                }
            }
            // Flood windows of the destinations that have a flood limit.
            let limited: Vec<i64> = confirmed
                .iter()
                .filter(|(_, r)| {
                    !r.ordered
                        && matches!(r.policy, DeliveryPolicy::Immediate { flood_max, .. } if flood_max > 0)
                })
                .map(|(id, _)| *id)
                .collect();
            let mut windows: HashMap<i64, Option<Window>> = HashMap::new();
            for chunk in limited.chunks(CHUNK_ROWS) {
                let sql = format!(
                    "SELECT destination_id, window_start, sent FROM delivery_windows \
                     WHERE destination_id IN ({})",
                    placeholders(1, chunk.len())
                );
                let sql = self.sql(&sql);
                let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql);
                for id in chunk {
                    query = query.bind(id);
                }
                for (id, start, sent) in query.fetch_all(&mut *tx).await? {
                    windows.insert(id, Some(Window { start, sent }));
                }
            }
            let mut plans: Vec<(i64, Plan)> = Vec::new();
            let queued: Vec<_> = rows
                .iter()
                .zip(&digests_of)
                .filter_map(|(row, digest)| {
                    let rules = confirmed.get(&row.1)?;
                    let window = windows.entry(row.1).or_default();
                    let digest = digest.as_ref().map(|(id, policy)| (*id, policy));
                    let plan = digests::plan(rules, digest, window, now);
                    plans.push((row.1, plan));
                    let status = match plan {
                        Plan::Collect(..) => "collected",
                        // In order: held behind the destination's oldest (made pending below).
                        Plan::Now if rules.ordered => "held",
                        Plan::Now => "pending",
                    };
                    Some((row, i64::from(rules.ordered), status, plan.digest_filter()))
                })
                .collect();
            for chunk in queued.chunks(CHUNK_ROWS) {
                // The time per row too: each parameter once, in order (see `Store::sql`).
                let values = value_rows(
                    chunk.len(),
                    1,
                    "('notification', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                );
                let sql = format!(
                    "INSERT INTO outbox (kind, message_id, destination_id, filters, uid, status, next_attempt_at, created_at, ordered, digest_filter) \
                     VALUES {values} ON CONFLICT (message_id, destination_id) DO NOTHING"
                );
                let sql = self.sql(&sql);
                let mut query = sqlx::query(&sql);
                for &((message_id, destination_id, filters, uid), ordered, status, digest_filter) in
                    chunk
                {
                    query = query
                        .bind(message_id)
                        .bind(destination_id)
                        .bind(filters)
                        .bind(uid)
                        .bind(status)
                        .bind(now)
                        .bind(now)
                        .bind(ordered)
                        .bind(digest_filter);
                }
                query.execute(&mut *tx).await?;
            }
            let touched: Vec<(i64, Window)> = windows
                .into_iter()
                .filter_map(|(id, w)| Some((id, w?)))
                .collect();
            for chunk in touched.chunks(CHUNK_ROWS) {
                let values = value_rows(chunk.len(), 1, "(?, ?, ?)");
                let sql = format!(
                    "INSERT INTO delivery_windows (destination_id, window_start, sent) VALUES {values} \
                     ON CONFLICT (destination_id) DO UPDATE SET window_start = excluded.window_start, \
                     sent = excluded.sent"
                );
                let sql = self.sql(&sql);
                let mut query = sqlx::query(&sql);
                for (id, w) in chunk {
                    query = query.bind(id).bind(w.start).bind(w.sent);
                }
                query.execute(&mut *tx).await?;
            }
            let wanted = digests::wanted(&plans);
            if !wanted.is_empty() {
                crate::pipeline::digests::schedule_digests!(
                    self,
                    tx,
                    wanted,
                    confirmed,
                    digest_filters,
                    now
                );
            }
            let mut in_order: Vec<i64> = queued
                .iter()
                .filter(|(_, ordered, ..)| *ordered == 1)
                .map(|(row, ..)| row.1)
                .collect();
            if !in_order.is_empty() {
                in_order.sort_unstable();
                in_order.dedup();
                crate::pipeline::outbox::promote_heads!(self, tx, in_order);
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// How many messages are archived, and how many of those are matched.
    pub async fn message_counts(&self) -> Result<(i64, i64)> {
        // The unmatched are counted on their partial index, so this stays cheap.
        let sql = "SELECT (SELECT COUNT(*) FROM messages), \
                   (SELECT COUNT(*) FROM messages WHERE processed_at IS NULL)";
        let (all, unmatched) = with_pool!(self, |pool| sqlx::query_as::<_, (i64, i64)>(sql)
            .fetch_one(pool)
            .await?);
        Ok((all, all - unmatched))
    }

    /// The archived message with this bus id (`NotFound` when there is none, or when its
    /// row cannot be decoded, which is logged). For "why did I (not) get this?".
    pub async fn archived_message(&self, msg_id: &str) -> Result<StoredMessage> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE msg_id = $1");
        let sql = self.sql(&sql);
        let row = with_pool!(self, |pool| sqlx::query_as::<_, MessageRow>(&sql)
            .bind(msg_id)
            .fetch_optional(pool)
            .await?);
        let row = row.ok_or(StoreError::NotFound)?;
        let id = row.id;
        StoredMessage::try_from(row).map_err(|err| {
            tracing::warn!(message = id, error = %err, "an archived message cannot be read");
            StoreError::NotFound
        })
    }

    /// Up to `limit` distinct archived topics matching a SQL `LIKE` pattern (with `\\` as
    /// its escape character), for "no message has this topic" warnings. Reads the whole
    /// archive when nothing matches: asked only about topics the catalog does not know.
    pub async fn topics_like(&self, pattern: &str, limit: i64) -> Result<Vec<String>> {
        let sql = self
            .sql("SELECT DISTINCT topic FROM messages WHERE topic LIKE $1 ESCAPE '\\' LIMIT $2");
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, String>(
            &sql
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(pool)
        .await?))
    }

    /// The highest message id archived (0 when none): read off the primary key, so it costs
    /// nothing however large the archive is. Ids only grow, but may skip a value.
    pub async fn last_message_id(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(id), 0) FROM messages";
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await?))
    }

    /// When the notifications of the messages whose id starts with `prefix` were accepted
    /// by their channel: (message id, sent at, ms), one row per sent notification. For
    /// benchmarks measuring publish → accepted.
    pub async fn sent_times(&self, prefix: &str) -> Result<Vec<(String, i64)>> {
        let sql = self.sql(
            "SELECT m.msg_id, o.sent_at FROM outbox o JOIN messages m ON m.id = o.message_id \
             WHERE m.msg_id LIKE $1 AND o.sent_at IS NOT NULL",
        );
        let pattern = format!("{prefix}%");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, (String, i64)>(
            &sql
        )
        .bind(&pattern)
        .fetch_all(pool)
        .await?))
    }

    /// Records input that could not become a message, so nothing is silently dropped.
    pub async fn reject_message(&self, source: &str, reason: &str, raw: &[u8]) -> Result<()> {
        let sql = self.sql(REJECT_SQL);
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(source)
            .bind(reason)
            .bind(kept_raw(raw))
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The most recent rejected inputs.
    pub async fn rejected_messages(&self, limit: i64) -> Result<Vec<Rejected>> {
        let sql = self.sql("SELECT id, source, reason, raw, received_at FROM rejected_messages ORDER BY id DESC LIMIT $1");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Rejected>(&sql)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?))
    }

    /// How many inputs were rejected.
    pub async fn rejected_count(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM rejected_messages";
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await?))
    }
}

#[cfg(test)]
mod tests {
    use super::value_rows;

    #[test]
    fn value_rows_number_their_parameters_in_order() {
        assert_eq!(value_rows(0, 1, "(?, ?)"), "");
        assert_eq!(value_rows(1, 1, "(?, 'x', ?)"), "($1, 'x', $2)");
        assert_eq!(
            value_rows(3, 2, "(CAST(? AS BIGINT), ?)"),
            "(CAST($2 AS BIGINT), $3), (CAST($4 AS BIGINT), $5), (CAST($6 AS BIGINT), $7)"
        );
    }
}
