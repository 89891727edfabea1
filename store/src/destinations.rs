//! Destinations: where a user is reached on one channel. A destination is confirmed before
//! anything but its confirmation message is sent to it.

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;

use crate::db::with_pool;
use crate::{now_ms, secret, Result, Store, StoreError};

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// Email, by SMTP or to the local mailbox folder.
    Email,
}

impl Channel {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
        }
    }

    /// Checks and normalises an address for this channel.
    pub fn normalise(self, address: &str) -> Result<String> {
        let address = address.trim();
        match self {
            Channel::Email => {
                let valid = address.len() <= 254
                    && !address
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
                    && address.rsplit_once('@').is_some_and(|(local, domain)| {
                        !local.is_empty()
                            && domain.contains('.')
                            && !domain.starts_with('.')
                            && !domain.ends_with('.')
                    });
                if valid {
                    Ok(address.to_string())
                } else {
                    Err(StoreError::Invalid {
                        field: "address",
                        reason: format!(
                            "{address:?} is not an email address like name@example.org"
                        ),
                    })
                }
            }
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Channel> {
        match s {
            "email" => Ok(Channel::Email),
            other => Err(StoreError::Invalid {
                field: "channel",
                reason: format!("unknown channel {other:?}; expected email"),
            }),
        }
    }
}

/// Where one user is reached on one channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Destination {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Channel.
    pub channel: Channel,
    /// Address on that channel.
    pub address: String,
    /// When it was confirmed; nothing but the confirmation is sent before.
    pub confirmed_at: Option<i64>,
    /// When it was added.
    pub created_at: i64,
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
    pub(crate) confirmed_at: Option<i64>,
    pub(crate) created_at: i64,
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
            confirmed_at: row.confirmed_at,
            created_at: row.created_at,
        })
    }
}

const COLUMNS: &str = "id, user_id, channel, address, confirmed_at, created_at";

/// A destination to add.
#[derive(Debug, Clone)]
pub struct NewDestination<'a> {
    /// Owner.
    pub user_id: i64,
    /// Channel.
    pub channel: Channel,
    /// Address (checked and normalised here).
    pub address: &'a str,
    /// Mark confirmed at once (an admin vouching for it). Otherwise a confirmation message
    /// is queued in the same transaction.
    pub confirmed: bool,
}

impl Store {
    /// Adds a destination. Unless it is added confirmed, a confirmation message carrying a
    /// one-time link token is queued in the outbox in the same transaction.
    pub async fn add_destination(&self, new: NewDestination<'_>) -> Result<Destination> {
        let address = new.channel.normalise(new.address)?;
        let token = secret::new_token();
        let now = now_ms();
        let (confirmed_at, token_hash) = if new.confirmed {
            (Some(now), None)
        } else {
            (None, Some(secret::token_digest(&token)))
        };
        let insert = format!(
            "INSERT INTO destinations (user_id, channel, address, confirmed_at, confirm_token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
        );
        let insert = self.sql(&insert);
        let queue = self.sql(
            "INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at) \
             VALUES ('confirmation', NULL, $1, '[]', $2, $3, 'pending', $4, $4)",
        );
        let change = self.sql("INSERT INTO changes (user_id, at) VALUES ($1, $2)");
        let payload = serde_json::json!({ "token": token }).to_string();
        let row = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query_as::<_, DestinationRow>(&insert)
                .bind(new.user_id)
                .bind(new.channel.as_str())
                .bind(&address)
                .bind(confirmed_at)
                .bind(token_hash)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            if !new.confirmed {
                sqlx::query(&queue)
                    .bind(row.id)
                    .bind(&payload)
                    .bind(crate::outbox::new_uid())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(&change)
                .bind(new.user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Confirms the destination a link token was issued for. Tokens work once.
    pub async fn confirm_destination(&self, token: &str) -> Result<Destination> {
        let sql = format!(
            "UPDATE destinations SET confirmed_at = $1, confirm_token_hash = NULL \
             WHERE confirm_token_hash = $2 RETURNING {COLUMNS}"
        );
        let sql = self.sql(&sql);
        let change = self.sql("INSERT INTO changes (user_id, at) VALUES ($1, $2)");
        let row = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = sqlx::query_as::<_, DestinationRow>(&sql)
                .bind(now_ms())
                .bind(secret::token_digest(token))
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(&change)
                .bind(row.user_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
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
        let change = self.sql("INSERT INTO changes (user_id, at) VALUES ($1, $2)");
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(&sql)
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(&change)
                .bind(user_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }
}
