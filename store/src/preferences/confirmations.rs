//! Confirmation mails: queuing one (new address or resend) within the rate limits, and what
//! became of the last one sent to each of a user's unconfirmed destinations.
//!
//! The limits protect the people at the other end: anyone with an account can type any
//! address, so without them an account could mail a stranger as often as it likes. Every
//! confirmation queued is logged in `confirmation_sends` by account and by address key, and
//! the limits are checked against that log in the transaction that queues the mail. The log
//! is not tied to destinations, so deleting and re-adding an address (in another case, or
//! from another account) does not reset its count, and it survives restarts.

use crate::db::with_pool;
use crate::pipeline::outbox::OutboxStatus;
use crate::preferences::destinations::{ChannelKind, DestinationRow};
use crate::{now_ms, secret, Destination, Result, Store, StoreError};

/// Confirmation mails one address may be sent in [`WINDOW_MS`], whichever accounts ask.
pub const PER_ADDRESS: i64 = 3;
/// Confirmation mails one account may have sent in [`WINDOW_MS`], to all addresses.
pub const PER_USER: i64 = 10;
/// The window the limits count over: a day.
pub const WINDOW_MS: i64 = 24 * 3_600_000;

/// The statements that queue a confirmation, in this backend's dialect.
pub(crate) struct ConfirmationSql {
    /// PostgreSQL: serialise confirmations per account and per address, so that two at
    /// once cannot both pass a count of one below the limit. (SQLite transactions already
    /// serialise on the first write, which the log insert is.)
    pub(crate) lock: Option<&'static str>,
    pub(crate) prune: String,
    pub(crate) log: String,
    pub(crate) per_user: String,
    pub(crate) per_address: String,
    pub(crate) queue: String,
}

impl ConfirmationSql {
    pub(crate) fn new(store: &Store) -> ConfirmationSql {
        ConfirmationSql {
            lock: store.key_lock(),
            prune: store
                .sql("DELETE FROM confirmation_sends WHERE sent_at <= $1")
                .into_owned(),
            log: store
                .sql(
                    "INSERT INTO confirmation_sends (user_id, channel, address_key, sent_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .into_owned(),
            per_user: store
                .sql("SELECT COUNT(*) FROM confirmation_sends WHERE user_id = $1 AND sent_at > $2")
                .into_owned(),
            per_address: store
                .sql(
                    "SELECT COUNT(*) FROM confirmation_sends \
                     WHERE channel = $1 AND address_key = $2 AND sent_at > $3",
                )
                .into_owned(),
            queue: store
                .sql(
                    "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at) \
                     VALUES ('confirmation', NULL, $1, '[]', $2, $3, 'pending', $4, $4)",
                )
                .into_owned(),
        }
    }
}

/// The refusal when a limit is reached.
pub(crate) fn limited(per_address: bool) -> StoreError {
    let reason = if per_address {
        format!(
            "address: this address was already sent {PER_ADDRESS} confirmation mails in the \
             last 24 hours; to protect its owner from mail they did not ask for, no more are \
             sent until a day has passed since the first"
        )
    } else {
        format!(
            "address: this account already had {PER_USER} confirmation mails sent in the last \
             24 hours; try again tomorrow"
        )
    };
    StoreError::RateLimited { reason }
}

/// Inside transaction `$tx`: logs one confirmation for (`$user_id`, `$channel`, `$key`),
/// refuses with `RateLimited` past a limit (the caller's transaction is then dropped, so
/// nothing is kept), and queues the mail carrying `$token` for destination `$dest_id`.
macro_rules! queue_confirmation {
    ($tx:ident, $sql:expr, $user_id:expr, $dest_id:expr, $channel:expr, $key:expr, $token:expr, $now:expr) => {{
        let sql = &$sql;
        let now: i64 = $now;
        let since = now - $crate::preferences::confirmations::WINDOW_MS;
        let channel: $crate::ChannelKind = $channel;
        if let Some(lock) = sql.lock {
            for name in [
                format!("confirm-user:{}", $user_id),
                format!("confirm-address:{}:{}", channel.as_str(), $key),
            ] {
                sqlx::query(lock).bind(name).execute(&mut *$tx).await?;
            }
        }
        sqlx::query(&sql.prune)
            .bind(since)
            .execute(&mut *$tx)
            .await?;
        sqlx::query(&sql.log)
            .bind($user_id)
            .bind(channel.as_str())
            .bind($key)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
        let by_user: i64 = sqlx::query_scalar(&sql.per_user)
            .bind($user_id)
            .bind(since)
            .fetch_one(&mut *$tx)
            .await?;
        if by_user > $crate::preferences::confirmations::PER_USER {
            return Err($crate::preferences::confirmations::limited(false));
        }
        let by_address: i64 = sqlx::query_scalar(&sql.per_address)
            .bind(channel.as_str())
            .bind($key)
            .bind(since)
            .fetch_one(&mut *$tx)
            .await?;
        if by_address > $crate::preferences::confirmations::PER_ADDRESS {
            return Err($crate::preferences::confirmations::limited(true));
        }
        let payload = $crate::pipeline::outbox::OutboxPayload::ConfirmationV1 {
            token: String::from($token),
        }
        .to_json()?;
        sqlx::query(&sql.queue)
            .bind($dest_id)
            .bind(&payload)
            .bind($crate::pipeline::outbox::new_uid())
            .bind(now)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use queue_confirmation;

/// The last confirmation mail queued for an unconfirmed destination, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationMail {
    /// The destination.
    pub destination_id: i64,
    /// pending, sending, sent, or dead (failed for good: the address needs a resend or a fix).
    pub status: OutboxStatus,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When it was queued.
    pub queued_at: i64,
}

impl Store {
    /// Queues a fresh confirmation mail for one of a user's unconfirmed destinations, within
    /// the same limits as adding one. The previous link stops working, and a previous mail
    /// still waiting to be sent is dropped (it carries that link). `NotFound` when the
    /// destination is someone else's; `Invalid` when it is already confirmed.
    pub async fn resend_confirmation(&self, user_id: i64, id: i64) -> Result<Destination> {
        let now = now_ms();
        let find = self.sql(
            "SELECT id, user_id, channel, address, settings, confirmed_at, created_at, disabled_reason, delivery FROM destinations \
             WHERE id = $1 AND user_id = $2",
        );
        let relink = self.sql(
            "UPDATE destinations SET confirm_token_hash = $1, confirm_token_at = $2, \
             confirm_failures = 0 WHERE id = $3",
        );
        let drop_waiting = self.sql(
            "DELETE FROM outbox WHERE destination_id = $1 AND kind = 'confirmation' \
             AND status = 'pending'",
        );
        let queue = ConfirmationSql::new(self);
        let row = with_pool!(self, |pool| {
            let mut tx = crate::db::begin_write(pool).await?;
            let row = sqlx::query_as::<_, DestinationRow>(&find)
                .bind(id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            if row.confirmed_at.is_some() {
                return Err(StoreError::Invalid {
                    field: "destination",
                    reason: format!("{} is already confirmed", row.address),
                });
            }
            let channel: ChannelKind = row
                .channel
                .parse()
                .map_err(|e| StoreError::corrupt("destination channel", e))?;
            let key = row.address_key();
            let token = secret::new_confirmation(channel);
            sqlx::query(&relink)
                .bind(secret::token_digest(&token))
                .bind(now)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&drop_waiting)
                .bind(row.id)
                .execute(&mut *tx)
                .await?;
            queue_confirmation!(tx, queue, row.user_id, row.id, channel, &key, &token, now);
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// For each of a user's unconfirmed destinations, the last confirmation mail queued.
    pub async fn confirmation_mails(&self, user_id: i64) -> Result<Vec<ConfirmationMail>> {
        let sql = self.sql(
            "SELECT o.destination_id, o.status, o.last_error, o.created_at FROM outbox o \
             JOIN destinations d ON d.id = o.destination_id \
             WHERE d.user_id = $1 AND d.confirmed_at IS NULL AND o.kind = 'confirmation' \
               AND o.id = (SELECT MAX(o2.id) FROM outbox o2 \
                           WHERE o2.destination_id = o.destination_id AND o2.kind = 'confirmation') \
             ORDER BY o.destination_id",
        );
        let rows: Vec<(i64, String, Option<String>, i64)> =
            with_pool!(self, |pool| sqlx::query_as(&sql)
                .bind(user_id)
                .fetch_all(pool)
                .await?);
        rows.into_iter()
            .map(|(destination_id, status, last_error, queued_at)| {
                Ok(ConfirmationMail {
                    destination_id,
                    status: OutboxStatus::parse(&status)?,
                    last_error,
                    queued_at,
                })
            })
            .collect()
    }
}
