//! Tidings' web side: the browser pages where people manage their destinations and filters,
//! the pages that mail links point at (confirmation, one-click unsubscribe), an optional
//! view of the local mailbox folder, and the JSON API publishers post messages to.
//!
//! The binary builds an [`AppState`] and calls [`serve`] with an already-bound listener, so
//! tests bind port 0 and drive the real app:
//!
//! ```no_run
//! # async fn run(store: tidings_store::Store) -> std::io::Result<()> {
//! use std::sync::Arc;
//! let state = tidings_web::AppState::new(
//!     store,
//!     tidings_web::WebConfig::default(),
//!     Arc::new(tidings_rules::Metadata::derive),
//!     Arc::new(tokio::sync::Notify::new()),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! tidings_web::serve(state, listener, tokio_util::sync::CancellationToken::new()).await
//! # }
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod api;
mod auth;
mod destinations;
mod error;
mod filters;
mod home;
mod mailbox;
mod ownership;
mod routes;
mod session;
mod unsubscribe;
mod view;

use std::path::PathBuf;
use std::sync::Arc;

use tidings_rules::{Message, Metadata};
use tidings_store::Store;
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use routes::router;
pub use view::when;

/// The web settings (the `[web]` table of the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The address people reach the site at, without a trailing slash; links in mail start
    /// with it, and an `https` one makes cookies `Secure`.
    pub base_url: String,
    /// How long a session lasts, in hours.
    pub session_hours: i64,
    /// Whether anyone may create an account at `/signup`.
    pub allow_signup: bool,
    /// The folder the email sender writes `.eml` files to when no SMTP server is set;
    /// when given, signed-in users can read the mail sent to their addresses at `/mailbox`.
    pub mailbox_dir: Option<PathBuf>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            base_url: "http://127.0.0.1:8080".to_string(),
            session_hours: 24 * 14,
            allow_signup: true,
            mailbox_dir: None,
        }
    }
}

impl WebConfig {
    /// Whether the site is served over TLS, so cookies must be `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// Session lifetime in milliseconds (at least a minute).
    pub(crate) fn session_ttl_ms(&self) -> i64 {
        self.session_hours.saturating_mul(3_600_000).max(60_000)
    }
}

/// Derives a message's metadata (the schema catalog, in the binary).
pub type Derive = Arc<dyn Fn(&Message) -> Metadata + Send + Sync>;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The storage API.
    pub store: Store,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// Metadata derivation for messages posted to the API.
    pub derive: Derive,
    /// Poked after a message is stored, so the matcher runs at once.
    pub wake: Arc<tokio::sync::Notify>,
    /// Process counters, served at `/metrics` when set.
    pub metrics: Option<Arc<dyn Metrics>>,
}

/// How one message posted to the API ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingest {
    /// Archived.
    Stored,
    /// Already archived (same id); dropped.
    Duplicate,
    /// Malformed; recorded as rejected.
    Rejected,
}

/// The process's counters as the web side sees them: it reports API ingest outcomes and
/// serves the Prometheus text at `/metrics`. The binary implements this for the notifier's
/// counters (a newtype around them), so this crate does not depend on the notifier.
pub trait Metrics: Send + Sync {
    /// Counts one API ingest.
    fn ingest(&self, outcome: Ingest);
    /// Every counter in Prometheus text format.
    fn render(&self) -> String;
}

impl AppState {
    /// Bundles what the handlers need.
    pub fn new(
        store: Store,
        config: WebConfig,
        derive: Derive,
        wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        AppState {
            store,
            config: Arc::new(config),
            derive,
            wake,
            metrics: None,
        }
    }

    /// Reports to and serves these counters.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn count(&self, outcome: Ingest) {
        if let Some(metrics) = &self.metrics {
            metrics.ingest(outcome);
        }
    }
}

/// Serves the app on `listener` until `shutdown` is cancelled, then finishes the requests in
/// flight and returns.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, base_url = %state.config.base_url, "web listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_keys() {
        let config: WebConfig = serde_json::from_str(r#"{"allow_signup": false}"#)
            .unwrap_or_else(|e| panic!("parse: {e}"));
        assert!(!config.allow_signup);
        assert_eq!(config.base_url, WebConfig::default().base_url);
        assert!(!config.secure_cookies());
        assert!(serde_json::from_str::<WebConfig>(r#"{"nope": 1}"#).is_err());
        let https = WebConfig {
            base_url: "https://tidings.example.org".into(),
            ..WebConfig::default()
        };
        assert!(https.secure_cookies());
        assert_eq!(WebConfig::default().session_ttl_ms(), 14 * 24 * 3_600_000);
    }
}
