//! Browser sessions. Every visitor gets one (anonymous until sign-in) so that every form,
//! sign-in included, carries a CSRF token. Only the token's digest is stored.

use sqlx::FromRow;

use crate::db::with_pool;
use crate::{now_ms, secret, Result, Store};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Session {
    /// The signed-in user, or `None` for a visitor.
    pub user_id: Option<i64>,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// When it ends, in ms since the epoch.
    pub expires_at: i64,
}

impl Store {
    /// Starts a session and returns its (secret) cookie token.
    pub async fn create_session(
        &self,
        user_id: Option<i64>,
        ttl_ms: i64,
    ) -> Result<(String, Session)> {
        let token = secret::new_token();
        let session = Session {
            user_id,
            csrf_token: secret::new_token(),
            expires_at: now_ms() + ttl_ms,
        };
        let sql = self.sql(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        );
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(secret::token_digest(&token))
            .bind(session.user_id)
            .bind(&session.csrf_token)
            .bind(now_ms())
            .bind(session.expires_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok((token, session))
    }

    /// The session behind a cookie token, if it exists and has not expired.
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        let sql = self.sql(
            "SELECT s.user_id, s.csrf_token, s.expires_at FROM sessions s \
             LEFT JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND (u.id IS NULL OR NOT u.disabled)",
        );
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Session>(&sql)
            .bind(secret::token_digest(token))
            .bind(now_ms())
            .fetch_optional(pool)
            .await?))
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

    /// Forgets expired sessions; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64> {
        let sql = self.sql("DELETE FROM sessions WHERE expires_at <= $1");
        Ok(with_pool!(self, |pool| sqlx::query(&sql)
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected()))
    }
}
