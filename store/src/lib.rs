//! Tidings' storage: one API over SQLite (the embedded default) and PostgreSQL, chosen by
//! the database URL's scheme. Nothing outside this crate writes SQL.
//!
//! Laid out by aggregate: `accounts` (users, sessions, API tokens), `preferences`
//! (destinations, confirmations, filters), `ownership` (packages, groups, follows) and
//! `pipeline` (the message archive, the change log, the outbox); `db` holds the connection,
//! `dialect` the one place where the two SQL dialects differ, `signals` the wake-ups
//! between the pipeline's loops (across processes on PostgreSQL) and `exclusive` the lock
//! that keeps one matcher active.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod accounts;
mod db;
mod dialect;
mod error;
mod exclusive;
mod keys;
mod ownership;
mod pipeline;
mod preferences;
pub mod secret;
mod signals;

pub use accounts::personal_tokens::{PersonalScope, PersonalToken, TOKEN_NAME_MAX};
pub use accounts::provider::ProviderSignIn;
pub use accounts::sessions::Session;
pub use accounts::tokens::{ApiToken, TokenScope};
pub use accounts::users::User;
pub use accounts::users::{
    validate_password, validate_username, DISABLED_ERROR, PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS,
};
pub use db::Store;
pub use db::{redact, Backend};
pub use error::StoreError;
pub use exclusive::MatcherLock;
pub use keys::ServerKey;
pub use ownership::{
    FollowKind, ImportMode, ImportSummary, Owner, OwnerKind, OwnershipData, PackageOwners,
    SyncSummary, SyncedOwnership, CSV_HEADER,
};
pub use pipeline::changes::Change;
pub use pipeline::digests::{DigestContents, DigestReason, DIGEST_ITEMS};
pub use pipeline::messages::{Arrival, Rejected, StoredMessage};
pub use pipeline::outbox::{
    Backlog, ClaimBatch, Claimed, Cycle, DeadNotification, DeliveryRecord, Notification,
    NotificationView, OutboxKind, OutboxPayload, OutboxStatus, Outcome, Recorded, SentPerFilter,
    UnsubscribeTarget, FILTER_COUNT_ROWS, UNSUBSCRIBE_TTL_MS,
};
pub use pipeline::stats::{HourlyCount, HourlyLatency, PipelineGauges, HOUR_MS, LATENCY_ROWS};
pub use preferences::confirmations::{ConfirmationMail, PER_ADDRESS, PER_USER};
pub use preferences::defaults::{DefaultFilter, DefaultFilterInput, Preview};
pub use preferences::destinations::{
    default_delivery, set_default_delivery, ChannelKind, ChannelSettings, Destination,
    NewDestination, CODE_TRIES, CONFIRMED_ADDRESS, CONFIRM_TTL_MS,
};
pub use preferences::feeds::{ArchivePage, ArchiveWindow, FeedHead};
pub use preferences::filters::{Delivery, Filter, FilterInput, FilterList, UnreadableFilter};
pub use preferences::mutes::{mute_options, Mute, MuteKind, MuteOption, MUTE_MS};
pub use preferences::quarantine::{Quarantine, QuarantinedFilter};
pub use signals::{Wake, Wakes};
pub use tidings_rules::delivery::{DeliveryPolicy, Schedule, TimeOfDay};
pub use tidings_rules::{AccessToken, Address, AddressError};

/// Milliseconds since the Unix epoch, as every time column stores them.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
