//! Users: local accounts (argon2 password hashes), admins, disabled accounts.

use sqlx::FromRow;

use crate::accounts::hashing;
use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::{now_ms, secret, Result, Store, StoreError};

/// A person with an account.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Unique login name; `$me` in conditions.
    pub username: String,
    /// Whether the user may administer the hub.
    pub is_admin: bool,
    /// A disabled user cannot sign in and receives nothing.
    pub disabled: bool,
    /// When the account was made.
    pub created_at: i64,
    /// The account signs in through the OpenID Connect provider: it has no password here,
    /// and its name is the provider's.
    pub from_provider: bool,
}

pub(crate) const USER_COLUMNS: &str = "id, username, is_admin, disabled, created_at, from_provider";

/// Why a local account cannot take a name.
const PROVIDER_OWNS_NAME: &str =
    "that name belongs to an account that signs in through the sign-in provider";

/// Usernames are what `$me` matches against bus messages: lower-case letters, digits, `-`,
/// `_` and `.`, 1 to 64 of them.
pub fn validate_username(username: &str) -> Result<()> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            field: "username",
            reason: "use 1 to 64 lower-case letters, digits, '-', '_' or '.'".into(),
        })
    }
}

/// The fewest characters a password may have (OWASP ASVS 2.1.1).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// The most bytes a password may have: argon2 takes any length, but a request should not
/// make the server hash a megabyte.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// A password must have at least [`PASSWORD_MIN_CHARS`] characters, at most
/// [`PASSWORD_MAX_BYTES`] bytes, and be hard to guess: zxcvbn (a strength estimator that
/// knows common passwords, words, names, keyboard patterns, dates and repeats) must score it
/// 3 or more out of 4, i.e. more than 10^8 guesses. The username counts as a known word,
/// so "alice" does not make alice's password stronger. The refusal says what is weak.
pub fn validate_password(password: &str, username: &str) -> Result<()> {
    let invalid = |reason: String| StoreError::Invalid {
        field: "password",
        reason,
    };
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(invalid(format!(
            "use at least {PASSWORD_MIN_CHARS} characters; a few uncommon words make a good password"
        )));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(invalid(format!("use at most {PASSWORD_MAX_BYTES} bytes")));
    }
    let estimate = zxcvbn::zxcvbn(password, &[username]);
    if estimate.score() < zxcvbn::Score::Three {
        let advice = estimate
            .feedback()
            .map(|feedback| feedback.to_string())
            .filter(|advice| !advice.trim().is_empty())
            .unwrap_or_else(|| "Use a few uncommon words.".to_string());
        return Err(invalid(format!("too easy to guess. {}", advice.trim())));
    }
    Ok(())
}

/// Who an account created by [`Store::insert_user`] is.
pub(crate) struct NewUser<'a> {
    pub username: &'a str,
    /// The argon2 hash, for a local account that signs in with a password.
    pub password_hash: Option<String>,
    pub is_admin: bool,
    /// The account is the sign-in provider's.
    pub from_provider: bool,
    /// The provider's subject that claimed it, if one did.
    pub provider_subject: Option<&'a str>,
}

impl Store {
    /// Creates a local user; `password` may be absent for accounts that only sign in
    /// elsewhere. A name an account of the sign-in provider has is refused (`Invalid` on
    /// `username`, saying so). Like every account it gets the enabled default filters.
    pub async fn create_user(
        &self,
        username: &str,
        password: Option<&str>,
        is_admin: bool,
    ) -> Result<User> {
        validate_username(username)?;
        let hash = match password {
            Some(p) => {
                validate_password(p, username)?;
                let p = p.to_string();
                Some(hashing::bounded(move || secret::hash_password(&p)).await??)
            }
            None => None,
        };
        if self
            .user_by_name(username)
            .await?
            .is_some_and(|u| u.from_provider)
        {
            return Err(StoreError::Invalid {
                field: "username",
                reason: PROVIDER_OWNS_NAME.into(),
            });
        }
        self.insert_user(NewUser {
            username,
            password_hash: hash,
            is_admin,
            from_provider: false,
            provider_subject: None,
        })
        .await
    }

    /// Creates an account for the sign-in provider before its first sign-in (an admin's
    /// `tidings user add --provider`): no password; the first sign-in through the provider
    /// whose username claim is `username` claims it.
    pub async fn create_provider_user(&self, username: &str, is_admin: bool) -> Result<User> {
        validate_username(username)?;
        self.insert_user(NewUser {
            username,
            password_hash: None,
            is_admin,
            from_provider: true,
            provider_subject: None,
        })
        .await
    }

    /// The one place an account is made: local sign-up, `tidings user add` and sign-in
    /// through the provider all come here, so whatever a new account gets, each gets.
    pub(crate) async fn insert_user(&self, new: NewUser<'_>) -> Result<User> {
        let sql = format!(
            "INSERT INTO users (username, password_hash, is_admin, created_at, from_provider, \
             provider_subject) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        );
        let sql = self.sql(&sql);
        let now = now_ms();
        // The enabled default filters are the new account's from its first moment, in the
        // same transaction (`preferences::defaults`), and the matcher learns them.
        let user = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let user = sqlx::query_as::<_, User>(&sql)
                .bind(new.username)
                .bind(&new.password_hash)
                .bind(new.is_admin)
                .bind(now)
                .bind(new.from_provider)
                .bind(new.provider_subject)
                .fetch_one(&mut *tx)
                .await?;
            let copied = crate::preferences::defaults::copy_defaults!(self, tx, user.id, now);
            // No filter, nothing for the matcher to learn.
            tx.commit((copied > 0).then_some(user.id)).await?;
            user
        });
        Ok(user)
    }

    /// Checks a username and password; `None` when either is wrong or the user is disabled.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Option<User>> {
        let sql = self.sql("SELECT password_hash FROM users WHERE username = $1 AND NOT disabled");
        let hash: Option<Option<String>> = with_pool!(self, |pool| sqlx::query_scalar(&sql)
            .bind(username)
            .fetch_optional(pool)
            .await?);
        // Hash even for unknown users, so timing does not tell which usernames exist.
        let hash = hash.flatten().unwrap_or_else(|| DUMMY_HASH.to_string());
        let password = password.to_string();
        let ok = hashing::bounded(move || secret::verify_password(&password, &hash)).await?;
        if !ok {
            return Ok(None);
        }
        self.user_by_name(username).await
    }

    /// Changes a user's password, once `current` is right (`Invalid` on the field
    /// `current_password` otherwise) and the new one is strong enough (as at sign-up).
    /// Sessions are not touched here: the caller ends the others ([`Store::end_sessions`]).
    pub async fn change_password(&self, user_id: i64, current: &str, new: &str) -> Result<()> {
        let user = self.user(user_id).await?;
        if user.from_provider {
            return Err(StoreError::Invalid {
                field: "password",
                reason:
                    "this account signs in through the sign-in provider and has no password here"
                        .into(),
            });
        }
        if self.authenticate(&user.username, current).await?.is_none() {
            return Err(StoreError::Invalid {
                field: "current_password",
                reason: "that is not your current password".into(),
            });
        }
        validate_password(new, &user.username)?;
        let new = new.to_string();
        let hash = hashing::bounded(move || secret::hash_password(&new)).await??;
        let sql = self.sql("UPDATE users SET password_hash = $1 WHERE id = $2");
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(hash)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Deletes a user's account and everything of theirs: destinations, filters, mutes,
    /// follows, sessions, and their queued and past notifications (the bus messages stay:
    /// they were never theirs). `password` must be the account's (`Invalid` on the field
    /// `current_password` otherwise). The matcher forgets their filters through the change
    /// log. An account of the sign-in provider has no password: `password` is not asked.
    pub async fn delete_user(&self, user_id: i64, password: &str) -> Result<()> {
        let user = self.user(user_id).await?;
        if !user.from_provider && self.authenticate(&user.username, password).await?.is_none() {
            return Err(StoreError::Invalid {
                field: "current_password",
                reason: "that is not your current password".into(),
            });
        }
        let sql = self.sql("DELETE FROM users WHERE id = $1");
        // The groups its sign-ins brought go with it (imported ones are not the account's).
        let groups =
            self.sql("DELETE FROM group_members WHERE username = $1 AND source = 'provider'");
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(&sql).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(&groups)
                .bind(&user.username)
                .execute(&mut *tx)
                .await?;
            tx.commit([user_id]).await?;
        });
        Ok(())
    }

    /// A user by id.
    /// A user's time zone and quiet hours (UTC and none until they set them).
    pub async fn schedule(&self, user_id: i64) -> Result<tidings_rules::delivery::Schedule> {
        let sql = self.sql("SELECT time_zone, quiet_start, quiet_end FROM users WHERE id = $1");
        let (zone, from, to): (String, Option<i64>, Option<i64>) =
            with_pool!(self, |pool| sqlx::query_as(&sql)
                .bind(user_id)
                .fetch_one(pool)
                .await?);
        let minutes = |m: Option<i64>| {
            let m = u16::try_from(m?).ok()?;
            tidings_rules::delivery::TimeOfDay::parse(&format!("{}:{:02}", m / 60, m % 60)).ok()
        };
        let quiet = minutes(from).zip(minutes(to));
        tidings_rules::delivery::Schedule::new(&zone, quiet)
            .map_err(|e| StoreError::corrupt("user schedule", e))
    }

    /// Sets a user's time zone and quiet hours (checked when `schedule` was made).
    pub async fn set_schedule(
        &self,
        user_id: i64,
        schedule: &tidings_rules::delivery::Schedule,
    ) -> Result<()> {
        let sql = self
            .sql("UPDATE users SET time_zone = $1, quiet_start = $2, quiet_end = $3 WHERE id = $4");
        let (from, to) = match schedule.quiet() {
            Some((from, to)) => (
                Some(i64::from(from.minutes())),
                Some(i64::from(to.minutes())),
            ),
            None => (None, None),
        };
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(schedule.time_zone())
            .bind(from)
            .bind(to)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn user(&self, id: i64) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let sql = self.sql(&sql);
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(&sql)
            .bind(id)
            .fetch_one(pool)
            .await?))
    }

    /// A user by name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let sql = self.sql(&sql);
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(&sql)
            .bind(username)
            .fetch_optional(pool)
            .await?))
    }

    /// Users whose name contains `query` (any when empty), by name: `limit` of them from
    /// `offset`, and how many there are in all.
    pub async fn search_users(
        &self,
        query: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<User>, i64)> {
        // Names are lower-case letters, digits, '-', '_' and '.': '_' is a LIKE wildcard.
        let pattern: String = query
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(*c))
            .map(|c| {
                if c == '_' {
                    "\\_".to_string()
                } else {
                    c.to_string()
                }
            })
            .collect();
        let pattern = format!("%{pattern}%");
        let page = self.sql(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username LIKE $1 ESCAPE '\\' ORDER BY username LIMIT $2 OFFSET $3"
        )).into_owned();
        let count = self.sql("SELECT COUNT(*) FROM users WHERE username LIKE $1 ESCAPE '\\'");
        Ok(with_pool!(self, |pool| {
            let users = sqlx::query_as::<_, User>(&page)
                .bind(&pattern)
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query_scalar(&count)
                .bind(&pattern)
                .fetch_one(pool)
                .await?;
            (users, total)
        }))
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(&sql)
            .fetch_all(pool)
            .await?))
    }

    /// Whether any account exists yet (a fresh hub has none).
    pub async fn any_users(&self) -> Result<bool> {
        let sql = "SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) AS one";
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(sql).fetch_one(pool).await?);
        Ok(n > 0)
    }

    /// Disables or re-enables a user. A disabled user cannot sign in and their sessions
    /// end; their filters leave the matcher's index (through the change log, in the same
    /// transaction), so nothing new is queued for them, and what was queued and not yet
    /// being sent becomes dead with the reason [`DISABLED_ERROR`] (a row a sender holds
    /// right now may still go out). Their feeds stop answering. Enabling them again brings
    /// back their filters, not the dead notifications: an admin retries those if wanted.
    pub async fn set_user_disabled(&self, username: &str, disabled: bool) -> Result<User> {
        let user = self
            .user_by_name(username)
            .await?
            .ok_or(StoreError::NotFound)?;
        let update = self.sql("UPDATE users SET disabled = $1 WHERE id = $2");
        let end_sessions = self.sql("DELETE FROM sessions WHERE user_id = $1");
        // What is queued for them and not yet being sent is not sent: it is dead, with the
        // reason, and an admin may queue it again (`retry_dead`) once they are enabled.
        let drop_queued = self.sql(
            "UPDATE outbox SET status = 'dead', last_error = $1, lease_until = NULL, claim_token = NULL \
             WHERE status IN ('pending', 'held', 'collected') AND kind <> 'confirmation' \
             AND destination_id IN (SELECT id FROM destinations WHERE user_id = $2)",
        );
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            sqlx::query(&update)
                .bind(disabled)
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            if disabled {
                sqlx::query(&end_sessions)
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&drop_queued)
                    .bind(DISABLED_ERROR)
                    .bind(user.id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit([user.id]).await?;
        });
        self.user(user.id).await
    }
}

/// Why a disabled user's queued notifications are dead.
pub const DISABLED_ERROR: &str = "not sent: the account was disabled";

/// A valid argon2 hash of a random string, verified against when the user is unknown.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0mB7Et2CZ4iXrW2iG0pbkWvMjTz8dSgVbDdL6o4LeZ8";

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(password: &str) -> String {
        match validate_password(password, "alice") {
            Err(StoreError::Invalid {
                field: "password",
                reason,
            }) => reason,
            other => panic!("{password:?} must be refused, got {other:?}"),
        }
    }

    /// Issue 8 item 8: `password`, `12345678` and eight spaces were accepted.
    #[test]
    fn weak_passwords_are_refused_saying_why() {
        for short in ["password", "12345678", "        ", "Tr0ub4dor&3"] {
            assert!(
                reason(short).contains("at least 12 characters"),
                "{short:?}"
            );
        }
        for common in [
            "passwordpassword",
            "123456789012",
            "            ",
            "qwertyuiopasdf",
            "alice1234567",
            "Password1234",
        ] {
            let why = reason(common);
            assert!(why.starts_with("too easy to guess. "), "{common:?}: {why}");
            assert!(why.len() > "too easy to guess. ".len(), "{common:?}: {why}");
        }
        assert!(reason(&"x".repeat(PASSWORD_MAX_BYTES + 1)).contains("at most 1024 bytes"));
    }

    #[test]
    fn the_documented_passwords_pass() {
        for good in [
            "velvet crane harbour 42",
            "plum kettle orbit 1974",
            "correct horse battery staple",
        ] {
            assert!(validate_password(good, "alice").is_ok(), "{good:?}");
        }
        let longest = format!("velvet crane harbour 42 {}", "x".repeat(1000));
        assert!(validate_password(&longest[..PASSWORD_MAX_BYTES], "alice").is_ok());
    }
}
