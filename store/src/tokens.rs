//! API tokens for publishers posting messages over HTTP. Stored as digests only.

use crate::db::with_pool;
use crate::{now_ms, secret, Result, Store, StoreError};

impl Store {
    /// Creates a named token and returns it; it cannot be shown again.
    pub async fn create_api_token(&self, name: &str) -> Result<String> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "name",
                reason: "must not be empty".into(),
            });
        }
        let token = format!("tid_{}", secret::new_token());
        let sql =
            self.sql("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)");
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(name)
            .bind(secret::token_digest(&token))
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(token)
    }

    /// The name of the token, if it is valid.
    pub async fn api_token_name(&self, token: &str) -> Result<Option<String>> {
        let sql = self.sql("SELECT name FROM api_tokens WHERE token_hash = $1");
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, String>(
            &sql
        )
        .bind(secret::token_digest(token))
        .fetch_optional(pool)
        .await?))
    }
}
