//! API tokens for services calling the JSON API. Stored as digests only; each has a scope
//! that says which endpoints it may call, so a build system's publishing token cannot
//! rewrite everyone's package ownership.

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;

use crate::db::with_pool;
use crate::{now_ms, secret, Result, Store, StoreError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Post messages (`POST /api/v1/messages`).
    Publish,
    /// Import package ownership (`PUT /api/v1/ownership`).
    Ownership,
    /// Everything the API offers, now and later.
    Admin,
}

impl TokenScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Publish => "publish",
            TokenScope::Ownership => "ownership",
            TokenScope::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` names.
    pub fn allows(self, needed: TokenScope) -> bool {
        self == TokenScope::Admin || self == needed
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenScope {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<TokenScope> {
        match s {
            "publish" => Ok(TokenScope::Publish),
            "ownership" => Ok(TokenScope::Ownership),
            "admin" => Ok(TokenScope::Admin),
            other => Err(StoreError::Invalid {
                field: "scope",
                reason: format!("unknown scope {other:?}; expected publish, ownership or admin"),
            }),
        }
    }
}

/// A token as operators see it: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiToken {
    /// Its unique name (the service it was made for).
    pub name: String,
    /// What it may do.
    pub scope: TokenScope,
    /// When it was made.
    pub created_at: i64,
    /// When it was last presented (to the minute), if ever.
    pub last_used_at: Option<i64>,
}

#[derive(FromRow)]
struct TokenRow {
    id: i64,
    name: String,
    scope: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(row: TokenRow) -> Result<ApiToken> {
        Ok(ApiToken {
            name: row.name,
            scope: row
                .scope
                .parse()
                .map_err(|e| StoreError::corrupt("token scope", e))?,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
        })
    }
}

/// `last_used_at` is written at most this often per token, so that a busy publisher does
/// not turn every request into a write.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

impl Store {
    /// Creates a named token of a scope and returns it; it cannot be shown again.
    pub async fn create_api_token(&self, name: &str, scope: TokenScope) -> Result<String> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid {
                field: "name",
                reason: "must not be empty".into(),
            });
        }
        let token = format!("tid_{}", secret::new_token());
        let sql = self.sql(
            "INSERT INTO api_tokens (name, token_hash, scope, created_at) VALUES ($1, $2, $3, $4)",
        );
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(name)
            .bind(secret::token_digest(&token))
            .bind(scope.as_str())
            .bind(now_ms())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(token)
    }

    /// The token presented, if it is valid; notes that it was used.
    pub async fn api_token(&self, token: &str) -> Result<Option<ApiToken>> {
        let find = self.sql(
            "SELECT id, name, scope, created_at, last_used_at FROM api_tokens WHERE token_hash = $1",
        );
        let touch = self.sql(
            "UPDATE api_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        );
        let now = now_ms();
        let row = with_pool!(self, |pool| {
            let row = sqlx::query_as::<_, TokenRow>(&find)
                .bind(secret::token_digest(token))
                .fetch_optional(pool)
                .await?;
            if let Some(row) = &row {
                sqlx::query(&touch)
                    .bind(now)
                    .bind(row.id)
                    .bind(now - LAST_USED_RESOLUTION_MS)
                    .execute(pool)
                    .await?;
            }
            row
        });
        row.map(ApiToken::try_from).transpose()
    }

    /// Every token, by name.
    pub async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let sql = "SELECT id, name, scope, created_at, last_used_at FROM api_tokens ORDER BY name";
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, TokenRow>(sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(ApiToken::try_from).collect()
    }

    /// Revokes (deletes) the token with this name; `NotFound` if there is none.
    pub async fn revoke_api_token(&self, name: &str) -> Result<()> {
        let sql = self.sql("DELETE FROM api_tokens WHERE name = $1");
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_everything_others_only_themselves() {
        use TokenScope::*;
        assert!(Admin.allows(Publish) && Admin.allows(Ownership) && Admin.allows(Admin));
        assert!(Publish.allows(Publish) && !Publish.allows(Ownership) && !Publish.allows(Admin));
        assert!(Ownership.allows(Ownership) && !Ownership.allows(Publish));
        for scope in [Publish, Ownership, Admin] {
            assert_eq!(scope.as_str().parse::<TokenScope>().ok(), Some(scope));
        }
        assert!("root".parse::<TokenScope>().is_err());
    }
}
