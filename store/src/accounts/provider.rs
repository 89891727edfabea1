//! Accounts of the OpenID Connect sign-in provider: found by the provider's subject (`sub`
//! claim), made on the first sign-in with the username claim as their name, and never
//! taken over. The rules, in order:
//!
//! 1. An account this subject claimed before is theirs, while the username claim still
//!    names it (a provider that renames someone is refused: the name is `$me`, which their
//!    filters match, and an admin decides what happens).
//! 2. Otherwise the username claim's account: none yet → it is made (through the same
//!    insert as local accounts); one the provider owns and no subject claimed yet (made by
//!    an admin with `tidings user add --provider`, or handed over with
//!    `tidings user provider`) → this subject claims it; a local account, or one another
//!    subject claimed → refused.
//!
//! A disabled account is refused whichever way it was found.

use crate::db::with_pool;
use crate::{Result, Store, User};

use super::users::{validate_username, NewUser, USER_COLUMNS};

/// How a sign-in through the provider ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderSignIn {
    /// Signed in to this account, made just now when `created`.
    Account {
        /// The account.
        user: User,
        /// Whether this sign-in made it.
        created: bool,
    },
    /// A local account has the name: only an admin can hand it to the provider.
    LocalAccount,
    /// Another subject of the provider claimed the account of that name.
    OtherSubject,
    /// This subject's account has another name than the username claim now gives.
    Renamed {
        /// The account's name.
        username: String,
    },
    /// The account is disabled.
    Disabled,
}

impl Store {
    /// Finds or makes the account of a sign-in through the provider (see the module's
    /// rules). `username` must be a valid username (`Invalid` on `username` otherwise).
    pub async fn provider_sign_in(&self, subject: &str, username: &str) -> Result<ProviderSignIn> {
        validate_username(username)?;
        let by_subject = format!("SELECT {USER_COLUMNS} FROM users WHERE provider_subject = $1");
        let by_subject = self.sql(&by_subject);
        let known: Option<User> = with_pool!(self, |pool| sqlx::query_as::<_, User>(&by_subject)
            .bind(subject)
            .fetch_optional(pool)
            .await?);
        let (user, created) = match known {
            Some(user) if user.username != username => {
                return Ok(ProviderSignIn::Renamed {
                    username: user.username,
                })
            }
            Some(user) => (user, false),
            None => match self.user_by_name(username).await? {
                None => {
                    let user = self
                        .insert_user(NewUser {
                            username,
                            password_hash: None,
                            is_admin: false,
                            from_provider: true,
                            provider_subject: Some(subject),
                        })
                        .await?;
                    (user, true)
                }
                Some(user) if !user.from_provider => return Ok(ProviderSignIn::LocalAccount),
                Some(user) => {
                    // Claimed only if no subject has it yet (a concurrent claim loses).
                    let claim = self.sql(
                        "UPDATE users SET provider_subject = $1 \
                         WHERE id = $2 AND provider_subject IS NULL",
                    );
                    let claimed = with_pool!(self, |pool| sqlx::query(&claim)
                        .bind(subject)
                        .bind(user.id)
                        .execute(pool)
                        .await?
                        .rows_affected());
                    if claimed == 0 {
                        return Ok(ProviderSignIn::OtherSubject);
                    }
                    (user, false)
                }
            },
        };
        if user.disabled {
            return Ok(ProviderSignIn::Disabled);
        }
        Ok(ProviderSignIn::Account { user, created })
    }

    /// Hands a local account over to the sign-in provider (an admin's
    /// `tidings user provider NAME`): its password goes, its sessions end, and the next
    /// sign-in through the provider whose username claim is its name claims it.
    pub async fn hand_to_provider(&self, username: &str) -> Result<User> {
        let user = self
            .user_by_name(username)
            .await?
            .ok_or(crate::StoreError::NotFound)?;
        let update =
            self.sql("UPDATE users SET from_provider = TRUE, password_hash = NULL WHERE id = $1");
        let end_sessions = self.sql("DELETE FROM sessions WHERE user_id = $1");
        with_pool!(self, |pool| {
            let mut tx = crate::db::begin_write(pool).await?;
            sqlx::query(&update).bind(user.id).execute(&mut *tx).await?;
            sqlx::query(&end_sessions)
                .bind(user.id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        self.user(user.id).await
    }
}
