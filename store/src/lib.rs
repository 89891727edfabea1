//! Tidings' storage: one API over SQLite (the embedded default) and PostgreSQL, chosen by
//! the database URL's scheme. Nothing outside this crate writes SQL.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod confirmations;
mod db;
mod destinations;
mod error;
mod filters;
mod hashing;
mod keys;
mod messages;
mod outbox;
mod ownership;
mod quarantine;
pub mod secret;
mod sessions;
mod tokens;
mod users;

pub use confirmations::{ConfirmationMail, PER_ADDRESS, PER_USER};
pub use db::Store;
pub use db::{redact, Backend};
pub use destinations::{Channel, Destination, NewDestination, CONFIRMED_ADDRESS};
pub use error::StoreError;
pub use filters::{Delivery, Filter, FilterInput, FilterList, UnreadableFilter};
pub use keys::ServerKey;
pub use messages::{Change, Rejected, StoredMessage};
pub use outbox::{
    Claimed, DeadNotification, DeliveryRecord, Notification, NotificationView, OutboxKind,
    OutboxStatus, Outcome, UnsubscribeTarget, UNSUBSCRIBE_TTL_MS,
};
pub use ownership::{
    FollowKind, ImportMode, ImportSummary, Owner, OwnerKind, OwnershipData, PackageOwners,
    CSV_HEADER,
};
pub use quarantine::{Quarantine, QuarantinedFilter};
pub use sessions::Session;
pub use tokens::{ApiToken, TokenScope};
pub use users::User;
pub use users::{validate_password, validate_username, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS};

/// Milliseconds since the Unix epoch, as every time column stores them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
