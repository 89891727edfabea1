//! The store's error type: sqlx errors are mapped here, once. The mapping sorts failures
//! into the database being unavailable (down, unreachable, locked, out of space: try again
//! later, the data is fine), the database refusing this data (too long, badly encoded: a
//! retry cannot help), conflicts, and the rest.

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
    /// The database cannot be reached or cannot write right now (server down, pool timed
    /// out, locked, disk full, I/O error). Nothing was stored; trying again later can succeed.
    #[error("database unavailable: {reason}")]
    Unavailable {
        /// What the database or the connection said.
        reason: String,
    },
    /// The database refused this data for its own sake (a value too long or out of range,
    /// text it cannot store, a check constraint): trying again cannot succeed.
    #[error("the database refused the data: {reason}")]
    Refused {
        /// What the database said.
        reason: String,
    },
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
            sqlx::Error::Database(db) => match classify(db.as_ref()) {
                Class::Unavailable => StoreError::Unavailable {
                    reason: db.message().to_string(),
                },
                Class::Refused => StoreError::Refused {
                    reason: db.message().to_string(),
                },
                Class::Other => StoreError::Database(sqlx::Error::Database(db)),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable {
                reason: err.to_string(),
            },
            other => StoreError::Database(other),
        }
    }
}

enum Class {
    Unavailable,
    Refused,
    Other,
}

/// Sorts a database's error by its code: SQLite's result codes, PostgreSQL's SQLSTATE.
fn classify(err: &dyn sqlx::error::DatabaseError) -> Class {
    if let Some(sqlite) = err.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
        // Extended result codes carry the primary code in the low byte.
        let primary = sqlx::error::DatabaseError::code(sqlite)
            .and_then(|code| code.parse::<i32>().ok())
            .map_or(0, |code| code & 0xff);
        return match primary {
            // BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
            5 | 6 | 7 | 8 | 10 | 13 | 14 | 15 => Class::Unavailable,
            // TOOBIG, CONSTRAINT (other than unique and foreign key), MISMATCH, RANGE
            18 | 19 | 20 | 25 => Class::Refused,
            _ => Class::Other,
        };
    }
    let state = err.code().unwrap_or_default();
    match state.get(..2).unwrap_or_default() {
        // connection exception, insufficient resources (disk full, out of memory, too
        // many connections), operator intervention (shutdown, cannot connect now,
        // statement cancelled), system error (I/O)
        "08" | "53" | "57" | "58" => Class::Unavailable,
        // serialization failure, deadlock; read-only transaction (a standby); lock not available
        "40" => Class::Unavailable,
        _ if state == "25006" || state == "55P03" => Class::Unavailable,
        // data exception (too long, bad encoding, out of range), integrity constraint,
        // program limit exceeded (an index row too large)
        "22" | "23" | "54" => Class::Refused,
        _ => Class::Other,
    }
}

/// SQLite names the columns, not the constraint: "UNIQUE constraint failed: users.username".
fn unique_columns(message: &str) -> String {
    message
        .split_once(": ")
        .map(|(_, cols)| cols.to_string())
        .unwrap_or_else(|| message.to_string())
}

impl From<tidings_rules::AddressError> for StoreError {
    fn from(err: tidings_rules::AddressError) -> StoreError {
        let field = match err {
            tidings_rules::AddressError::Invalid { .. } => "address",
            tidings_rules::AddressError::UnknownKind(_) => "channel",
        };
        StoreError::Invalid {
            field,
            reason: err.to_string(),
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached or could not write: the operation may
    /// succeed later, and the data was not at fault.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    pub(crate) fn corrupt(what: &'static str, err: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            what,
            reason: err.to_string(),
        }
    }
}
