//! The message archive: every accepted bus message with its metadata, de-duplicated by
//! message id, and marked processed in the same transaction that queues its notifications.
//! Also the record of rejected input and the change log the notifier follows.

use sqlx::FromRow;
use tidings_rules::{Message, Metadata};

use crate::db::with_pool;
use crate::pipeline::outbox::{new_uid, unsubscribe_token, Notification, UNSUBSCRIBE_KEY};
use crate::{now_ms, secret, Result, Store, StoreError};

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

impl Store {
    /// Archives a message. Returns its row id, or `None` when a message with the same id
    /// was already archived (a duplicate, dropped).
    pub async fn insert_message(
        &self,
        message: &Message,
        metadata: &Metadata,
        source: &str,
    ) -> Result<Option<i64>> {
        let sql = self.sql(
            "INSERT INTO messages (msg_id, topic, sent_at, body, headers, metadata, source, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (msg_id) DO NOTHING RETURNING id",
        );
        let headers = serde_json::to_string(&message.headers)
            .map_err(|e| StoreError::corrupt("message headers", e))?;
        let metadata = serde_json::to_string(metadata)
            .map_err(|e| StoreError::corrupt("message metadata", e))?;
        // In a transaction of its own so that a failed COMMIT is an error. In autocommit,
        // SQLite hands over the RETURNING row before it reports that the write did not last
        // (a full disk), and a message would be acknowledged that was never stored.
        Ok(with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let id = sqlx::query_scalar::<_, i64>(&sql)
                .bind(&message.id)
                .bind(&message.topic)
                .bind(message.sent_at)
                .bind(message.body.to_string())
                .bind(&headers)
                .bind(&metadata)
                .bind(source)
                .bind(now_ms())
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            id
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
        let queue = self.sql(
            "INSERT INTO outbox (kind, message_id, destination_id, filters, uid, unsubscribe_hash, status, next_attempt_at, created_at) \
             SELECT 'notification', $1, d.id, $2, $3, $6, 'pending', $4, $4 FROM destinations d \
             WHERE d.id = $5 AND d.confirmed_at IS NOT NULL \
             ON CONFLICT (message_id, destination_id) DO NOTHING",
        );
        let mark = self.sql("UPDATE messages SET processed_at = $1 WHERE id = $2");
        let now = now_ms();
        // Each notification's unsubscribe link is stored as the digest of its secret.
        let key = if notifications.is_empty() {
            None
        } else {
            Some(self.server_key(UNSUBSCRIBE_KEY).await?)
        };
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for n in notifications {
                let filters = serde_json::to_string(&n.filters)
                    .map_err(|e| StoreError::corrupt("filters", e))?;
                let uid = new_uid();
                let unsubscribe = key
                    .as_ref()
                    .map(|key| secret::token_digest(&unsubscribe_token(key, &uid)));
                sqlx::query(&queue)
                    .bind(message_id)
                    .bind(&filters)
                    .bind(&uid)
                    .bind(now)
                    .bind(n.destination_id)
                    .bind(unsubscribe)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&mark)
                .bind(now)
                .bind(message_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// How many messages are archived, and how many of those are matched.
    pub async fn message_counts(&self) -> Result<(i64, i64)> {
        let sql = "SELECT COUNT(*), COUNT(processed_at) FROM messages";
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, (i64, i64)>(
            sql
        )
        .fetch_one(pool)
        .await?))
    }

    /// Records input that could not become a message, so nothing is silently dropped.
    pub async fn reject_message(&self, source: &str, reason: &str, raw: &[u8]) -> Result<()> {
        let mut raw = String::from_utf8_lossy(&raw[..raw.len().min(RAW_LIMIT)]).into_owned();
        raw.retain(|c| c != '\0');
        let sql = self.sql("INSERT INTO rejected_messages (source, reason, raw, received_at) VALUES ($1, $2, $3, $4)");
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(source)
            .bind(reason)
            .bind(&raw)
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
