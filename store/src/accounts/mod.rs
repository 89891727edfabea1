//! Accounts: users and their passwords, browser sessions, API tokens, and the bounded pool
//! that does the password hashing.

pub(crate) mod hashing;
pub(crate) mod personal_tokens;
pub(crate) mod provider;
pub(crate) mod sessions;
pub(crate) mod tokens;
pub(crate) mod users;
