//! Personal access tokens: a person's own tokens for `/api/v1`, named by them, scoped
//! (`read` looks, `write` also changes), listed and revoked on the account page. Stored as
//! digests only; a disabled account's tokens stop working, and they go with the account.

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;

use crate::accounts::users::User;
use crate::db::with_pool;
use crate::{now_ms, secret, Result, Store, StoreError};

/// What a personal token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersonalScope {
    /// Read the owner's data.
    Read,
    /// Read and change it.
    Write,
    /// Also the admin calls (`/api/v1/admin/…`): only an admin can make one, and it works
    /// only while its owner is an admin.
    Admin,
}

impl PersonalScope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonalScope::Read => "read",
            PersonalScope::Write => "write",
            PersonalScope::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` names.
    pub fn allows(self, needed: PersonalScope) -> bool {
        match self {
            PersonalScope::Admin => true,
            PersonalScope::Write => needed != PersonalScope::Admin,
            PersonalScope::Read => needed == PersonalScope::Read,
        }
    }
}

impl fmt::Display for PersonalScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PersonalScope {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<PersonalScope> {
        match s {
            "read" => Ok(PersonalScope::Read),
            "write" => Ok(PersonalScope::Write),
            "admin" => Ok(PersonalScope::Admin),
            other => Err(StoreError::Invalid {
                field: "scope",
                reason: format!("unknown scope {other:?}; expected read, write or admin"),
            }),
        }
    }
}

/// A personal token as its owner sees it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PersonalToken {
    /// Id.
    pub id: i64,
    /// Whose.
    pub user_id: i64,
    /// The name its owner gave it.
    pub name: String,
    /// What it may do.
    pub scope: PersonalScope,
    /// When it was made.
    pub created_at: i64,
    /// When it was last presented (to the minute), if ever.
    pub last_used_at: Option<i64>,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    user_id: i64,
    name: String,
    scope: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl TryFrom<Row> for PersonalToken {
    type Error = StoreError;
    fn try_from(row: Row) -> Result<PersonalToken> {
        Ok(PersonalToken {
            id: row.id,
            user_id: row.user_id,
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

const COLUMNS: &str = "id, user_id, name, scope, created_at, last_used_at";
/// The longest token name.
pub const TOKEN_NAME_MAX: usize = 100;
/// `last_used_at` is written at most this often per token.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

impl Store {
    /// Makes a personal token for `user_id` and returns it with its secret, which cannot be
    /// shown again. Names are the owner's own and unique among their tokens (`Conflict`).
    pub async fn create_personal_token(
        &self,
        user_id: i64,
        name: &str,
        scope: PersonalScope,
    ) -> Result<(PersonalToken, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > TOKEN_NAME_MAX {
            return Err(StoreError::Invalid {
                field: "name",
                reason: format!("give the token a name of 1 to {TOKEN_NAME_MAX} characters"),
            });
        }
        if scope == PersonalScope::Admin && !self.user(user_id).await?.is_admin {
            return Err(StoreError::Invalid {
                field: "scope",
                reason: "only an admin can make a token of scope admin".into(),
            });
        }
        let secret = format!("tdp_{}", secret::new_token());
        let sql = format!(
            "INSERT INTO personal_tokens (user_id, name, scope, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        let sql = self.sql(&sql);
        let row = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .bind(user_id)
            .bind(name)
            .bind(scope.as_str())
            .bind(secret::token_digest(&secret))
            .bind(now_ms())
            .fetch_one(pool)
            .await?);
        Ok((row.try_into()?, secret))
    }

    /// A user's personal tokens, newest first.
    pub async fn personal_tokens(&self, user_id: i64) -> Result<Vec<PersonalToken>> {
        let sql =
            format!("SELECT {COLUMNS} FROM personal_tokens WHERE user_id = $1 ORDER BY id DESC");
        let sql = self.sql(&sql);
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(PersonalToken::try_from).collect()
    }

    /// Revokes one of a user's tokens; someone else's is `NotFound`.
    pub async fn revoke_personal_token(&self, user_id: i64, id: i64) -> Result<()> {
        let sql = self.sql("DELETE FROM personal_tokens WHERE id = $1 AND user_id = $2");
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(id)
            .bind(user_id)
            .execute(pool)
            .await?
            .rows_affected());
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The token presented and its owner, if it is a valid personal token of an account
    /// that is not disabled; notes that it was used.
    pub async fn personal_token(&self, presented: &str) -> Result<Option<(PersonalToken, User)>> {
        let find = format!("SELECT {COLUMNS} FROM personal_tokens WHERE token_hash = $1");
        let find = self.sql(&find);
        let touch = self.sql(
            "UPDATE personal_tokens SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        );
        let now = now_ms();
        let row = with_pool!(self, |pool| {
            let row = sqlx::query_as::<_, Row>(&find)
                .bind(secret::token_digest(presented))
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
        let Some(token) = row.map(PersonalToken::try_from).transpose()? else {
            return Ok(None);
        };
        let user = self.user(token.user_id).await?;
        Ok((!user.disabled).then_some((token, user)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_allows_all_write_allows_reading_read_only_reading() {
        use PersonalScope::*;
        assert!(Admin.allows(Read) && Admin.allows(Write) && Admin.allows(Admin));
        assert!(Write.allows(Read) && Write.allows(Write) && !Write.allows(Admin));
        assert!(Read.allows(Read) && !Read.allows(Write) && !Read.allows(Admin));
        for scope in [Read, Write, Admin] {
            assert_eq!(scope.as_str().parse::<PersonalScope>().ok(), Some(scope));
        }
        assert!("root".parse::<PersonalScope>().is_err());
    }
}
