//! Browser sessions of signed-in users. A row is made at sign-in only (anonymous forms are
//! protected without one, by the web crate's signed double-submit token), so visitors cost
//! nothing here. A session ends at its absolute expiry or after an idle time, whichever
//! comes first. Only the token's digest is stored.

use sqlx::FromRow;

use crate::db::with_pool;
use crate::{now_ms, secret, Result, Store};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Session {
    /// The signed-in user.
    pub user_id: i64,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// When it was last used, in ms since the epoch (refreshed by [`Store::touch_session`]).
    pub last_seen_at: i64,
    /// When it ends however busy it is, in ms since the epoch.
    pub expires_at: i64,
}

impl Store {
    /// Starts a session for a user that lasts at most `ttl_ms`; returns its (secret) cookie
    /// token.
    pub async fn create_session(&self, user_id: i64, ttl_ms: i64) -> Result<(String, Session)> {
        let token = secret::new_token();
        let now = now_ms();
        let session = Session {
            user_id,
            csrf_token: secret::new_token(),
            last_seen_at: now,
            expires_at: now.saturating_add(ttl_ms),
        };
        let sql = self.sql(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        );
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(secret::token_digest(&token))
            .bind(session.user_id)
            .bind(&session.csrf_token)
            .bind(now)
            .bind(session.expires_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok((token, session))
    }

    /// The session behind a cookie token, if it exists, has not expired, was used within
    /// the last `idle_ms`, and its user is not disabled. Reading does not count as use: call
    /// [`Store::touch_session`] for that.
    pub async fn session(&self, token: &str, idle_ms: i64) -> Result<Option<Session>> {
        let sql = self.sql(
            "SELECT s.user_id, s.csrf_token, s.last_seen_at, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 \
             AND NOT u.disabled",
        );
        let now = now_ms();
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Session>(&sql)
            .bind(secret::token_digest(token))
            .bind(now)
            .bind(now.saturating_sub(idle_ms))
            .fetch_optional(pool)
            .await?))
    }

    /// Records that a session was used now, which restarts its idle time.
    pub async fn touch_session(&self, token: &str) -> Result<()> {
        let sql = self.sql("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2");
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(now_ms())
            .bind(secret::token_digest(token))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Ends a session.
    pub async fn delete_session(&self, token: &str) -> Result<()> {
        let sql = self.sql("DELETE FROM sessions WHERE token_hash = $1");
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(secret::token_digest(token))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Ends every session of a user but the one behind `keep` (none: every one): "sign out
    /// everywhere", and what a password change does to the other browsers. Returns how
    /// many ended.
    pub async fn end_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<u64> {
        let sql = self.sql("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2");
        // No stored digest is empty, so "" keeps none.
        let keep = keep.map(secret::token_digest).unwrap_or_default();
        Ok(with_pool!(self, |pool| sqlx::query(&sql)
            .bind(user_id)
            .bind(&keep)
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// Forgets sessions that expired or were idle for `idle_ms`; returns how many.
    pub async fn purge_sessions(&self, idle_ms: i64) -> Result<u64> {
        let sql = self.sql("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2");
        let now = now_ms();
        Ok(with_pool!(self, |pool| sqlx::query(&sql)
            .bind(now)
            .bind(now.saturating_sub(idle_ms))
            .execute(pool)
            .await?
            .rows_affected()))
    }

    /// How many sessions are stored, live or not (for tests and operators).
    pub async fn session_count(&self) -> Result<i64> {
        let sql = "SELECT COUNT(*) FROM sessions";
        Ok(with_pool!(self, |pool| sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await?))
    }
}
