//! Feeds: each filter can be read as an Atom feed at a secret URL (issue 10). The secret is
//! derived, never stored: the `feed` server key's HMAC of the filter's id and its feed
//! generation, a counter in the filter's row. "New feed URL" adds one to the counter, which
//! ends every URL made before. The token grants reading that one filter's feed, nothing
//! else. Rotating it changes nothing the matcher reads, so it writes no change-log row.
//!
//! What a feed holds is built by the web side; from here it gets the token's filter
//! ([`FeedHead`], with what its `ETag` is made of) and the archive, newest first
//! ([`Store::archive_page`]).

use sqlx::Row;
use tidings_rules::condition::BodyShape;

use crate::db::with_pool;
use crate::keys::ServerKey;
use crate::pipeline::messages::{MessageRow, MESSAGE_COLUMNS};
use crate::{Result, Store, StoreError, StoredMessage};

/// The server key feed tokens are derived with.
const FEED_KEY: &str = "feed";

/// What the HMAC signs: the filter and its generation.
fn signed(filter_id: i64, generation: i64) -> String {
    format!("feed:{filter_id}:{generation}")
}

/// A feed token: the filter's id, a dot, and the HMAC (43 URL-safe base64 characters).
/// The id alone is no secret; the HMAC is.
fn token(key: &ServerKey, filter_id: i64, generation: i64) -> String {
    format!(
        "{filter_id}.{}",
        key.sign(signed(filter_id, generation).as_bytes())
    )
}

/// The filter a valid feed token opens, and what its feed's `ETag` is made of: all read in
/// one query, so a reader polling a feed that has not changed costs one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedHead {
    /// The filter.
    pub filter_id: i64,
    /// Its owner (whose variables the condition is evaluated with).
    pub user_id: i64,
    /// The filter's feed generation.
    pub generation: i64,
    /// When the filter was last saved (ms).
    pub updated_at: i64,
    /// The newest change-log position, any user's: a change of the owner's variables
    /// (packages, groups, follows) moves it.
    pub last_change: i64,
    /// The newest archived message's id: the feed considers no message after it.
    pub last_message_id: i64,
}

/// Archived messages, newest first, as [`Store::archive_page`] reads them.
#[derive(Debug, Clone, Default)]
pub struct ArchivePage {
    /// The messages that could be read, newest first.
    pub messages: Vec<StoredMessage>,
    /// Rows read, including any that could not be decoded (they are skipped and logged).
    pub rows: usize,
    /// The lowest id read: the next page is the one before it. `None` when no row was read.
    pub lowest_id: Option<i64>,
}

impl Store {
    /// The feed token of one of a user's filters (`NotFound` if it is not theirs). A
    /// filter whose row cannot otherwise be read still has one.
    pub async fn feed_token(&self, user_id: i64, filter_id: i64) -> Result<String> {
        let sql = self.sql("SELECT feed_generation FROM filters WHERE id = $1 AND user_id = $2");
        let generation: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(filter_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?);
        let generation = generation.ok_or(StoreError::NotFound)?;
        Ok(token(
            &self.server_key(FEED_KEY).await?,
            filter_id,
            generation,
        ))
    }

    /// Ends one of a user's filters' feed URL and returns the new token (`NotFound` if the
    /// filter is not theirs).
    pub async fn new_feed_token(&self, user_id: i64, filter_id: i64) -> Result<String> {
        let sql = self.sql(
            "UPDATE filters SET feed_generation = feed_generation + 1 \
             WHERE id = $1 AND user_id = $2 RETURNING feed_generation",
        );
        let generation: Option<i64> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(filter_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?);
        let generation = generation.ok_or(StoreError::NotFound)?;
        Ok(token(
            &self.server_key(FEED_KEY).await?,
            filter_id,
            generation,
        ))
    }

    /// The filter `token` opens. `NotFound` alike for a malformed token, a wrong or old
    /// one, a deleted filter and a disabled account, so that the answer tells nothing.
    pub async fn feed_head(&self, token: &str) -> Result<FeedHead> {
        let (id, signature) = token.split_once('.').ok_or(StoreError::NotFound)?;
        if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::NotFound);
        }
        let filter_id: i64 = id.parse().map_err(|_| StoreError::NotFound)?;
        let sql = self.sql(
            "SELECT f.user_id, f.feed_generation, f.updated_at, \
             (SELECT COALESCE(MAX(id), 0) FROM changes) AS last_change, \
             (SELECT COALESCE(MAX(id), 0) FROM messages) AS last_message_id \
             FROM filters f JOIN users u ON u.id = f.user_id WHERE f.id = $1 AND NOT u.disabled",
        );
        // Read column by column: a row whose other columns do not decode (SQLite keeps
        // whatever was written) still opens its feed, which then says it cannot be read.
        let head = with_pool!(self, |pool| {
            let Some(row) = sqlx::query(&sql)
                .bind(filter_id)
                .fetch_optional(pool)
                .await?
            else {
                return Err(StoreError::NotFound);
            };
            let number = |column: &str| row.try_get::<i64, _>(column).ok();
            FeedHead {
                filter_id,
                user_id: number("user_id").ok_or(StoreError::NotFound)?,
                generation: number("feed_generation").ok_or(StoreError::NotFound)?,
                updated_at: number("updated_at").unwrap_or(0),
                last_change: number("last_change").unwrap_or(0),
                last_message_id: number("last_message_id").unwrap_or(0),
            }
        });
        let key = self.server_key(FEED_KEY).await?;
        if !key.verify(signed(filter_id, head.generation).as_bytes(), signature) {
            return Err(StoreError::NotFound);
        }
        Ok(head)
    }

    /// Up to `limit` archived messages with an id below `before`, newest first. Cheap
    /// however large the archive: it walks the primary key down from `before`. A row that
    /// cannot be decoded is skipped (and logged), not an error.
    pub async fn archive_page(&self, before: i64, limit: i64) -> Result<ArchivePage> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id < $1 ORDER BY id DESC LIMIT $2"
        );
        let sql = self.sql(&sql);
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, MessageRow>(&sql)
            .bind(before)
            .bind(limit.max(0))
            .fetch_all(pool)
            .await?);
        let mut page = ArchivePage {
            messages: Vec::with_capacity(rows.len()),
            rows: rows.len(),
            lowest_id: rows.last().map(|row| row.id),
        };
        for row in rows {
            let id = row.id;
            match StoredMessage::try_from(row) {
                Ok(message) => page.messages.push(message),
                Err(err) => {
                    tracing::warn!(message = id, error = %err, "an archived message cannot be read; left out of feeds");
                }
            }
        }
        Ok(page)
    }
}

/// Where the archive of a time window lies, for previews: the lowest and highest row ids
/// of the messages received since then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveWindow {
    /// The lowest id received at or after the window's start.
    pub first_id: i64,
    /// The highest id archived.
    pub last_id: i64,
}

impl Store {
    /// Where the messages received at or after `since` (ms) lie, on the `received_at`
    /// index; `None` when there are none.
    pub async fn archive_window(&self, since: i64) -> Result<Option<ArchiveWindow>> {
        let sql = self.sql(
            "SELECT (SELECT MIN(id) FROM messages WHERE received_at >= $1), \
             (SELECT MAX(id) FROM messages)",
        );
        let (first, last) = with_pool!(self, |pool| {
            sqlx::query_as::<_, (Option<i64>, Option<i64>)>(&sql)
                .bind(since)
                .fetch_one(pool)
                .await?
        });
        Ok(match (first, last) {
            (Some(first_id), Some(last_id)) => Some(ArchiveWindow { first_id, last_id }),
            _ => None,
        })
    }

    /// The archived messages with `from <= id < to` received at or after `since`, newest
    /// first. Without a body `shape`, each message's body is `null` and its headers empty:
    /// they are not read (most of a row's bytes), for conditions that do not look at them.
    /// With one, each body keeps what the shape keeps (`BodyShape::of` a condition: the
    /// values its paths reach; `BodyShape::whole()`: all of it). A row that cannot be
    /// decoded is skipped (and logged).
    pub async fn archive_range(
        &self,
        from: i64,
        to: i64,
        since: i64,
        shape: Option<&BodyShape>,
    ) -> Result<ArchivePage> {
        let columns = if shape.is_some() {
            MESSAGE_COLUMNS
        } else {
            "id, msg_id, topic, sent_at, 'null' AS body, '{}' AS headers, metadata, source, \
             received_at"
        };
        let sql = format!(
            "SELECT {columns} FROM messages WHERE id >= $1 AND id < $2 \
             AND received_at >= $3 ORDER BY id DESC"
        );
        let sql = self.sql(&sql);
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, MessageRow>(&sql)
            .bind(from)
            .bind(to)
            .bind(since)
            .fetch_all(pool)
            .await?);
        Ok(decode(rows, shape))
    }
}

fn decode(rows: Vec<MessageRow>, shape: Option<&BodyShape>) -> ArchivePage {
    let mut page = ArchivePage {
        messages: Vec::with_capacity(rows.len()),
        rows: rows.len(),
        lowest_id: rows.last().map(|row| row.id),
    };
    for mut row in rows {
        let id = row.id;
        // The body read through the shape; the row's text is then not parsed again.
        let body = match shape {
            Some(shape) => match shape.read(&row.body) {
                Ok(body) => Some(body),
                Err(err) => {
                    tracing::warn!(message = id, error = %err, "an archived message's body cannot be read; left out");
                    continue;
                }
            },
            None => None,
        };
        if body.is_some() {
            row.body = "null".into();
        }
        match StoredMessage::try_from(row) {
            Ok(mut message) => {
                if let Some(body) = body {
                    message.message.body = body;
                }
                page.messages.push(message)
            }
            Err(err) => {
                tracing::warn!(message = id, error = %err, "an archived message cannot be read; left out");
            }
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_the_filter_and_change_with_the_generation() {
        let key = ServerKey::for_tests([3; 32]);
        let first = token(&key, 12, 0);
        assert!(first.starts_with("12."), "{first}");
        assert_eq!(first.len(), 3 + 43);
        assert_ne!(first, token(&key, 12, 1));
        assert_ne!(first[3..], token(&key, 13, 0)[3..]);
        assert!(key.verify(signed(12, 0).as_bytes(), &first[3..]));
        assert!(!key.verify(signed(12, 1).as_bytes(), &first[3..]));
    }
}
