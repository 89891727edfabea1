//! The notifier: bus ingest (the accept path every bus source goes through), the matching loop, the outbox sender and the channels it
//! sends through. Every loop stops on one shared cancellation token. `roles` puts them
//! together as the library entry points the binary runs: the notifier role (ingest and
//! the matcher) and the sender role.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

pub mod bus;
pub mod channel;
pub mod config;
pub mod email;
mod error;
pub mod folder;
mod http;
pub mod irc;
pub mod matcher;
pub mod matrix;
pub mod metrics;
pub mod ntfy;
pub mod outage;
pub mod ownership;
pub mod ownership_sync;
pub mod publish;
pub mod render;
pub mod roles;
pub mod sender;
pub mod smtp;
pub mod webhook;

use std::sync::Arc;

pub use config::{
    EmailConfig, IrcConfig, IrcNetworkConfig, MatrixConfig, NotifierConfig, NtfyConfig,
    OwnershipSyncConfig, SenderConfig, WebhookConfig,
};
pub use error::NotifierError;
pub use matcher::MatcherSettings;
pub use metrics::Metrics;

/// Derives a message's metadata (the schema catalog, or the generic fallback).
pub type Derive = Arc<dyn Fn(&tidings_rules::Message) -> tidings_rules::Metadata + Send + Sync>;
