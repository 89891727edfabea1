//! The store's error type: sqlx errors are mapped here, once.

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist (or belongs to someone else).
    #[error("not found")]
    NotFound,
    /// A uniqueness or reference constraint refused the change.
    #[error("conflicts with existing data ({constraint})")]
    Conflict {
        /// What clashed, e.g. `users.username`.
        constraint: String,
    },
    /// The input was refused before reaching the database.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The database URL could not be used.
    #[error("database URL {url:?}: {reason}")]
    Url {
        /// The URL with any password removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// Migrations failed to apply.
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Stored data could not be read back (corrupt JSON, say).
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The filter exists but its stored row cannot be read; what could be read is here,
    /// so that its owner can repair or delete it.
    #[error("filter {} could not be read: {}", .0.id, .0.reason)]
    UnreadableFilter(Box<crate::UnreadableFilter>),
    /// Any other database failure.
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// Too many of something (confirmation mails) in a time window; the text says which
    /// limit and when it frees up.
    #[error("{reason}")]
    RateLimited {
        /// For the user.
        reason: String,
    },
    /// A link or token was genuine but is too old to use.
    #[error("{what} has expired")]
    Expired {
        /// What expired, as a sentence starts: `This unsubscribe link`.
        what: &'static str,
    },
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Hash(String),
    /// Too many password hashes are already waiting; try again shortly.
    #[error("too many password checks at once; try again shortly")]
    Busy,
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() =>
            {
                let constraint = db
                    .constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| unique_columns(db.message()));
                StoreError::Conflict { constraint }
            }
            other => StoreError::Database(other),
        }
    }
}

/// SQLite names the columns, not the constraint: "UNIQUE constraint failed: users.username".
fn unique_columns(message: &str) -> String {
    message
        .split_once(": ")
        .map(|(_, cols)| cols.to_string())
        .unwrap_or_else(|| message.to_string())
}

impl StoreError {
    pub(crate) fn corrupt(what: &'static str, err: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            what,
            reason: err.to_string(),
        }
    }
}
