//! Destinations: where a user is reached on one channel. A destination is confirmed before
//! anything but its confirmation message is sent to it.

use std::collections::HashSet;

use sqlx::FromRow;
pub use tidings_rules::delivery::DeliveryPolicy;
pub use tidings_rules::{ChannelKind, ChannelSettings};

use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::preferences::confirmations::{queue_confirmation, ConfirmationSql};
use crate::{now_ms, secret, Result, Store, StoreError};

/// Where one user is reached on one channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Destination {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Channel.
    pub channel: ChannelKind,
    /// Address on that channel.
    pub address: String,
    /// What the destination carries besides its address, typed per channel kind (a
    /// webhook's signing secret: never serialized from here).
    #[serde(skip_serializing)]
    pub settings: ChannelSettings,
    /// When it was confirmed; nothing but the confirmation is sent before.
    pub confirmed_at: Option<i64>,
    /// When it was added.
    pub created_at: i64,
    /// Why it was disabled, if its far end gave up on it (a webhook's 410 Gone): it is
    /// unconfirmed then, and confirming it again enables it.
    pub disabled_reason: Option<String>,
    /// When its notifications go out: at once with a flood limit, or in digests. A
    /// webhook's always go at once, one by one (machines act on each).
    pub delivery: DeliveryPolicy,
}

impl Destination {
    /// Whether notifications may go to it.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

#[derive(FromRow)]
pub(crate) struct DestinationRow {
    pub(crate) id: i64,
    pub(crate) user_id: i64,
    pub(crate) channel: String,
    pub(crate) address: String,
    pub(crate) settings: String,
    pub(crate) confirmed_at: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) disabled_reason: Option<String>,
    pub(crate) delivery: Option<String>,
}

impl TryFrom<DestinationRow> for Destination {
    type Error = StoreError;
    fn try_from(row: DestinationRow) -> Result<Destination> {
        Ok(Destination {
            id: row.id,
            user_id: row.user_id,
            channel: row
                .channel
                .parse()
                .map_err(|e| StoreError::corrupt("destination channel", e))?,
            address: row.address,
            settings: serde_json::from_str(&row.settings)
                .map_err(|e| StoreError::corrupt("destination settings", e))?,
            confirmed_at: row.confirmed_at,
            created_at: row.created_at,
            disabled_reason: row.disabled_reason,
            delivery: match row.delivery.as_deref() {
                None | Some("") => default_delivery(),
                Some(json) => DeliveryPolicy::from_stored(Some(json))
                    .map_err(|e| StoreError::corrupt("destination delivery", e))?,
            },
        })
    }
}

const COLUMNS: &str =
    "id, user_id, channel, address, settings, confirmed_at, created_at, disabled_reason, delivery";

/// The delivery of destinations whose owners chose none: the site's (`[delivery]` in the
/// config), set once at start; the built-in default until then.
static DEFAULT_DELIVERY: std::sync::RwLock<Option<DeliveryPolicy>> = std::sync::RwLock::new(None);

/// Sets the delivery of destinations whose owners chose none (the admin's `[delivery]`).
pub fn set_default_delivery(policy: DeliveryPolicy) {
    if let Ok(mut default) = DEFAULT_DELIVERY.write() {
        *default = Some(policy);
    }
}

/// The delivery of destinations whose owners chose none.
pub fn default_delivery() -> DeliveryPolicy {
    DEFAULT_DELIVERY
        .read()
        .ok()
        .and_then(|d| d.clone())
        .unwrap_or_default()
}

/// Wrong codes a destination confirmed by code may be sent before its code stops working.
pub const CODE_TRIES: i64 = 5;

/// How long a confirmation link works after it was sent: a week. After that the owner has a
/// new one sent from the destinations page (within the same limits as the first).
pub const CONFIRM_TTL_MS: i64 = 7 * 24 * 3_600_000;

/// A destination to add.
#[derive(Debug, Clone)]
pub struct NewDestination<'a> {
    /// Owner.
    pub user_id: i64,
    /// Channel.
    pub channel: ChannelKind,
    /// Address (checked and normalised here).
    pub address: &'a str,
    /// Mark confirmed at once (an admin vouching for it). Otherwise a confirmation message
    /// is queued in the same transaction.
    pub confirmed: bool,
}

impl Store {
    /// Adds a destination. Unless it is added confirmed, a confirmation message carrying a
    /// one-time link token is queued in the outbox in the same transaction, within the
    /// confirmation rate limits ([`crate::preferences::confirmations`]). An address the user already has
    /// (in any case) is a `Conflict`; adding one confirmed that another account has
    /// confirmed is a `Conflict` on `destinations_confirmed_address`.
    pub async fn add_destination(&self, new: NewDestination<'_>) -> Result<Destination> {
        let mut random = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
        let settings = new.channel.new_settings(&random);
        self.add_destination_with_settings(new, settings).await
    }

    /// [`Store::add_destination`] with the settings its owner chose instead of a new
    /// destination's defaults (an ntfy topic's access token). Settings of another kind than
    /// the destination's are `Invalid`.
    pub async fn add_destination_with_settings(
        &self,
        new: NewDestination<'_>,
        settings: ChannelSettings,
    ) -> Result<Destination> {
        if settings.kind() != new.channel {
            return Err(StoreError::Invalid {
                field: "settings",
                reason: format!(
                    "{} settings for a {} destination",
                    settings.kind(),
                    new.channel
                ),
            });
        }
        let address = new.channel.parse_address(new.address)?;
        let key = address.key().to_string();
        let address = address.into_string();
        let settings = serde_json::to_string(&settings)
            .map_err(|e| StoreError::corrupt("destination settings", e))?;
        let token = secret::new_confirmation(new.channel);
        let now = now_ms();
        let (confirmed_at, token_hash) = if new.confirmed {
            (Some(now), None)
        } else {
            (None, Some(secret::token_digest(&token)))
        };
        let insert = format!(
            "INSERT INTO destinations (user_id, channel, address, address_key, confirmed_at, confirm_token_hash, confirm_token_at, created_at, settings, delivery) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
        );
        let insert = self.sql(&insert);
        // A new destination starts with its owner's default delivery, when they chose one
        // (a digest only where the channel can gather one).
        let delivery = match self.user_default_delivery(new.user_id).await? {
            Some(DeliveryPolicy::Digest { .. }) if new.channel.delivers_in_order() => None,
            Some(policy) => Some(
                serde_json::to_string(&policy)
                    .map_err(|e| StoreError::corrupt("delivery settings", e))?,
            ),
            None => None,
        };
        let taken = self.sql(TAKEN);
        let queue = ConfirmationSql::new(self);
        let row = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            if new.confirmed {
                refuse_if_taken!(tx, taken, new.channel.as_str(), &key, new.user_id);
            }
            let row = sqlx::query_as::<_, DestinationRow>(&insert)
                .bind(new.user_id)
                .bind(new.channel.as_str())
                .bind(&address)
                .bind(&key)
                .bind(confirmed_at)
                .bind(&token_hash)
                .bind(token_hash.is_some().then_some(now))
                .bind(now)
                .bind(&settings)
                .bind(&delivery)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| confirmed_elsewhere(e.into()))?;
            if !new.confirmed {
                queue_confirmation!(
                    tx,
                    queue,
                    row.user_id,
                    row.id,
                    new.channel,
                    &key,
                    &token,
                    now
                );
            }
            // Filters made from default filters without a destination yet get this one.
            crate::preferences::defaults::link_default_filters!(self, tx, new.user_id, row.id);
            tx.commit([new.user_id]).await?;
            row
        });
        row.try_into()
    }

    /// Confirms the destination a link token was issued for. Tokens work once, and for
    /// [`CONFIRM_TTL_MS`] after they were issued (`Expired` after that: the owner can have a
    /// new link sent). An address another account has confirmed is refused (`Conflict` on
    /// `destinations_confirmed_address`) and the token stays usable.
    pub async fn confirm_destination(&self, token: &str) -> Result<Destination> {
        self.confirm_destination_within(token, CONFIRM_TTL_MS).await
    }

    /// [`Store::confirm_destination`] with links working for `ttl_ms` (for tests).
    #[doc(hidden)]
    pub async fn confirm_destination_within(
        &self,
        token: &str,
        ttl_ms: i64,
    ) -> Result<Destination> {
        let find = format!("SELECT {COLUMNS} FROM destinations WHERE confirm_token_hash = $1");
        let find = self.sql(&find);
        let issued = self.sql("SELECT confirm_token_at FROM destinations WHERE id = $1");
        let taken = self.sql(TAKEN);
        let confirm = format!(
            "UPDATE destinations SET confirmed_at = $1, confirm_token_hash = NULL, disabled_reason = NULL, \
             failures = 0 WHERE id = $2 AND confirm_token_hash = $3 RETURNING {COLUMNS}"
        );
        let confirm = self.sql(&confirm);
        let digest = secret::token_digest(token);
        let now = now_ms();
        let row = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let found = sqlx::query_as::<_, DestinationRow>(&find)
                .bind(&digest)
                .fetch_one(&mut *tx)
                .await?;
            // A code is typed in by the signed-in owner (`confirm_destination_code`), never
            // taken as a link: that would skip both the owner check and the count of tries.
            if found
                .channel
                .parse::<ChannelKind>()
                .is_ok_and(ChannelKind::confirms_by_code)
            {
                return Err(StoreError::NotFound);
            }
            let issued_at: Option<i64> = sqlx::query_scalar(&issued)
                .bind(found.id)
                .fetch_one(&mut *tx)
                .await?;
            if issued_at.is_some_and(|at| now - at > ttl_ms) {
                return Err(StoreError::Expired {
                    what: "This confirmation link",
                });
            }
            let key = found.address_key();
            refuse_if_taken!(tx, taken, found.channel.as_str(), &key, found.user_id);
            let row = sqlx::query_as::<_, DestinationRow>(&confirm)
                .bind(now)
                .bind(found.id)
                .bind(&digest)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| confirmed_elsewhere(e.into()))?;
            tx.commit([row.user_id]).await?;
            row
        });
        row.try_into()
    }

    /// Confirms one of a user's destinations by the code sent to it (Matrix, IRC): `typed`
    /// as the owner typed it, forgiving case, spaces, dashes and Crockford's look-alikes.
    /// A wrong code is `Invalid` on field `code` and counted; after [`CODE_TRIES`] wrong
    /// ones the code stops working and the owner has a new one sent. A code works for
    /// [`CONFIRM_TTL_MS`] (`Expired` after). Someone else's destination is `NotFound`.
    pub async fn confirm_destination_code(
        &self,
        user_id: i64,
        id: i64,
        typed: &str,
    ) -> Result<Destination> {
        self.confirm_destination_code_within(user_id, id, typed, CONFIRM_TTL_MS)
            .await
    }

    /// [`Store::confirm_destination_code`] with codes working for `ttl_ms` (for tests).
    #[doc(hidden)]
    pub async fn confirm_destination_code_within(
        &self,
        user_id: i64,
        id: i64,
        typed: &str,
        ttl_ms: i64,
    ) -> Result<Destination> {
        let find = format!("SELECT {COLUMNS} FROM destinations WHERE id = $1 AND user_id = $2");
        let find = self.sql(&find);
        let state = self.sql(
            "SELECT confirm_token_hash, confirm_token_at, confirm_failures FROM destinations \
             WHERE id = $1",
        );
        let wrong = self.sql(
            "UPDATE destinations SET confirm_failures = confirm_failures + 1, \
             confirm_token_hash = CASE WHEN confirm_failures + 1 >= $1 THEN NULL \
             ELSE confirm_token_hash END WHERE id = $2",
        );
        let taken = self.sql(TAKEN);
        let confirm = format!(
            "UPDATE destinations SET confirmed_at = $1, confirm_token_hash = NULL, \
             disabled_reason = NULL, confirm_failures = 0, failures = 0 \
             WHERE id = $2 AND confirm_token_hash = $3 RETURNING {COLUMNS}"
        );
        let confirm = self.sql(&confirm);
        let refused = |reason: String| StoreError::Invalid {
            field: "code",
            reason,
        };
        let code = secret::normalise_code(typed);
        let now = now_ms();
        let row = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let found = sqlx::query_as::<_, DestinationRow>(&find)
                .bind(id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            let (hash, issued_at, failures): (Option<String>, Option<i64>, i64) =
                sqlx::query_as(&state)
                    .bind(found.id)
                    .fetch_one(&mut *tx)
                    .await?;
            let address = &found.address;
            if found.confirmed_at.is_some() {
                return Err(refused(format!("{address} is already confirmed")));
            }
            let by_code = found
                .channel
                .parse::<ChannelKind>()
                .is_ok_and(ChannelKind::confirms_by_code);
            if !by_code {
                return Err(refused(format!(
                    "{address} is confirmed by the link sent to it, not by a code"
                )));
            }
            let Some(hash) = hash else {
                let why = if failures >= CODE_TRIES {
                    format!("{CODE_TRIES} wrong codes were typed for {address}")
                } else {
                    format!("no code is waiting for {address}")
                };
                return Err(refused(format!("{why}; have a new code sent")));
            };
            if issued_at.is_some_and(|at| now - at > ttl_ms) {
                return Err(StoreError::Expired {
                    what: "This confirmation code",
                });
            }
            let Some(code) = code else {
                return Err(refused(
                    "a code is ten letters and digits, like 7KQ2M-XW4TD".into(),
                ));
            };
            let digest = secret::token_digest(&code);
            if digest != hash {
                sqlx::query(&wrong)
                    .bind(CODE_TRIES)
                    .bind(found.id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit([]).await?;
                let left = CODE_TRIES - failures - 1;
                return Err(refused(if left > 0 {
                    format!("that is not the code sent to {address}; {left} tries left")
                } else {
                    format!(
                        "that is not the code sent to {address}, and it was the last try; \
                         have a new code sent"
                    )
                }));
            }
            let key = found.address_key();
            refuse_if_taken!(tx, taken, found.channel.as_str(), &key, found.user_id);
            let row = sqlx::query_as::<_, DestinationRow>(&confirm)
                .bind(now)
                .bind(found.id)
                .bind(&digest)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| confirmed_elsewhere(e.into()))?;
            tx.commit([row.user_id]).await?;
            row
        });
        row.try_into()
    }

    /// Disables a destination whose far end gave up on it (a webhook that answered 410
    /// Gone, a Matrix user who left the room): it is unconfirmed, so nothing new is queued
    /// for it, `reason` says why on its owner's destinations page, and a notice tells the
    /// owner on another of their confirmed destinations. Rows already queued for it fail as
    /// unconfirmed (dead, visible, retryable). Its owner enables it again by having it
    /// confirmed anew.
    pub async fn disable_destination(&self, id: i64, reason: &str) -> Result<Destination> {
        let find = format!("SELECT {COLUMNS} FROM destinations WHERE id = $1");
        let find = self.sql(&find);
        let now = now_ms();
        let row = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            crate::pipeline::outbox::pause_destination!(self, tx, id, reason, now);
            let row = sqlx::query_as::<_, DestinationRow>(&find)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit([row.user_id]).await?;
            row
        });
        row.try_into()
    }

    /// The delivery a user's new destinations start with, when they chose one (`None`: the
    /// site's default).
    pub async fn user_default_delivery(&self, user_id: i64) -> Result<Option<DeliveryPolicy>> {
        let sql = self.sql("SELECT default_delivery FROM users WHERE id = $1");
        let stored: Option<Option<String>> = with_pool!(self, |pool| {
            sqlx::query_scalar(&sql)
                .bind(user_id)
                .fetch_optional(pool)
                .await?
        });
        match stored.flatten().as_deref() {
            None | Some("") => Ok(None),
            Some(json) => serde_json::from_str(json)
                .map(Some)
                .map_err(|e| StoreError::corrupt("default delivery", e)),
        }
    }

    /// Sets the delivery a user's new destinations start with (`None`: the site's
    /// default). Destinations already there keep theirs.
    pub async fn set_user_default_delivery(
        &self,
        user_id: i64,
        policy: Option<&DeliveryPolicy>,
    ) -> Result<()> {
        let json = match policy {
            Some(policy) => {
                policy.check().map_err(|e| StoreError::Invalid {
                    field: e.field,
                    reason: e.reason,
                })?;
                Some(
                    serde_json::to_string(policy)
                        .map_err(|e| StoreError::corrupt("delivery settings", e))?,
                )
            }
            None => None,
        };
        let sql = self.sql("UPDATE users SET default_delivery = $1 WHERE id = $2");
        let updated = with_pool!(self, |pool| {
            sqlx::query(&sql)
                .bind(&json)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Sets how one of a user's destinations gets its notifications. A webhook's always go
    /// at once, one by one, in order (`Invalid` otherwise): the machines behind webhooks act
    /// on each event. Someone else's destination is `NotFound`.
    pub async fn set_delivery(
        &self,
        user_id: i64,
        id: i64,
        policy: &DeliveryPolicy,
    ) -> Result<Destination> {
        policy.check().map_err(|e| StoreError::Invalid {
            field: e.field,
            reason: e.reason,
        })?;
        let destination = self.destination(user_id, id).await?;
        if destination.channel.delivers_in_order()
            && matches!(policy, DeliveryPolicy::Digest { .. })
        {
            return Err(StoreError::Invalid {
                field: "delivery",
                reason: format!(
                    "a {}'s notifications always go at once, one by one and in order: the \
                     machine behind it acts on each",
                    destination.channel
                ),
            });
        }
        let json = serde_json::to_string(policy)
            .map_err(|e| StoreError::corrupt("delivery settings", e))?;
        let sql = format!(
            "UPDATE destinations SET delivery = $1 WHERE id = $2 AND user_id = $3 RETURNING {COLUMNS}"
        );
        let sql = self.sql(&sql);
        let stored = self.sql("SELECT delivery FROM destinations WHERE id = $1 AND user_id = $2");
        let row = with_pool!(self, |pool| {
            let mut tx = crate::db::begin_write(pool).await?;
            let before: Option<Option<String>> = sqlx::query_scalar(&stored)
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let row = sqlx::query_as::<_, DestinationRow>(&sql)
                .bind(&json)
                .bind(id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            // New settings: what the destination's own digest collected goes out now.
            if before.flatten().as_deref() != Some(json.as_str()) {
                crate::pipeline::digests::release_collected!(
                    self,
                    tx,
                    "destination_id = $1 AND digest_filter = 0",
                    id,
                    crate::now_ms()
                );
            }
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// A user's destinations, oldest first.
    pub async fn destinations(&self, user_id: i64) -> Result<Vec<Destination>> {
        let sql = format!("SELECT {COLUMNS} FROM destinations WHERE user_id = $1 ORDER BY id");
        let sql = self.sql(&sql);
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, DestinationRow>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(Destination::try_from).collect()
    }

    /// One of a user's destinations; `NotFound` if it is someone else's.
    pub async fn destination(&self, user_id: i64, id: i64) -> Result<Destination> {
        let sql = format!("SELECT {COLUMNS} FROM destinations WHERE id = $1 AND user_id = $2");
        let sql = self.sql(&sql);
        let row = with_pool!(self, |pool| sqlx::query_as::<_, DestinationRow>(&sql)
            .bind(id)
            .bind(user_id)
            .fetch_one(pool)
            .await?);
        row.try_into()
    }

    /// Removes one of a user's destinations (and what is queued for it).
    pub async fn delete_destination(&self, user_id: i64, id: i64) -> Result<()> {
        let sql = self.sql("DELETE FROM destinations WHERE id = $1 AND user_id = $2");
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let done = sqlx::query(&sql)
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit([user_id]).await?;
        });
        Ok(())
    }

    /// Which of `uids` (outbox uids, the base of each mail's Message-ID) were queued for
    /// one of this user's destinations: the mail sent on their behalf, which is all the
    /// mailbox viewer shows them.
    pub async fn sent_for_user(&self, user_id: i64, uids: &[String]) -> Result<HashSet<String>> {
        let mut mine = HashSet::new();
        // Bounded parameter lists: SQLite allows 32766, PostgreSQL 65535.
        for chunk in uids.chunks(500) {
            let placeholders = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT o.uid FROM outbox o JOIN destinations d ON d.id = o.destination_id \
                 WHERE d.user_id = $1 AND o.uid IN ({placeholders})"
            );
            let sql = self.sql(&sql);
            let found: Vec<String> = with_pool!(self, |pool| {
                let mut query = sqlx::query_scalar(&sql).bind(user_id);
                for uid in chunk {
                    query = query.bind(uid);
                }
                query.fetch_all(pool).await?
            });
            mine.extend(found);
        }
        Ok(mine)
    }
}

/// Whether another account has confirmed this channel's address key.
const TAKEN: &str = "SELECT COUNT(*) FROM destinations \
    WHERE channel = $1 AND address_key = $2 AND confirmed_at IS NOT NULL AND user_id <> $3";

/// Refuses, inside transaction `$tx`, an address another account has confirmed.
macro_rules! refuse_if_taken {
    ($tx:ident, $taken:expr, $channel:expr, $key:expr, $user_id:expr) => {{
        let taken: i64 = sqlx::query_scalar(&$taken)
            .bind($channel)
            .bind($key)
            .bind($user_id)
            .fetch_one(&mut *$tx)
            .await?;
        if taken > 0 {
            return Err(StoreError::Conflict {
                constraint: CONFIRMED_ADDRESS.into(),
            });
        }
    }};
}
use refuse_if_taken;

/// The constraint named when an address is confirmed by another account.
pub const CONFIRMED_ADDRESS: &str = "destinations_confirmed_address";

/// SQLite names a partial unique index's columns, not the index, when it refuses a row; a
/// concurrent confirmation that slipped past the check is reported like the check would.
fn confirmed_elsewhere(err: StoreError) -> StoreError {
    match err {
        StoreError::Conflict { constraint }
            if constraint == CONFIRMED_ADDRESS
                || constraint == "destinations.channel, destinations.address_key" =>
        {
            StoreError::Conflict {
                constraint: CONFIRMED_ADDRESS.into(),
            }
        }
        other => other,
    }
}

impl DestinationRow {
    pub(crate) fn address_key(&self) -> String {
        // A stored address was checked when it was added; should its rule have tightened
        // since, it is still compared by its lower-cased form.
        self.channel
            .parse::<ChannelKind>()
            .ok()
            .and_then(|kind| kind.parse_address(&self.address).ok())
            .map(|address| address.key().to_string())
            .unwrap_or_else(|| self.address.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rules themselves are tested in `tidings_rules::channel`; here, that a refusal
    /// reaches the form as an invalid address.
    #[test]
    fn refused_addresses_are_invalid_input() {
        let err: StoreError = ChannelKind::Email
            .parse_address("Ralph <ralph@example.org>")
            .err()
            .map(StoreError::from)
            .unwrap_or(StoreError::NotFound);
        assert!(
            matches!(&err, StoreError::Invalid { field: "address", reason } if reason.contains("is not an email address")),
            "{err:?}"
        );
    }
}
