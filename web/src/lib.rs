//! Tidings' web side: the browser pages where people manage their destinations and filters,
//! the pages that mail links point at (confirmation, one-click unsubscribe), an optional
//! view of the local mailbox folder, and the JSON API publishers post messages to.
//!
//! The binary builds an [`AppState`] and calls [`run`] (the web role: [`serve`] plus
//! housekeeping) with an already-bound listener, so tests bind port 0 and drive the real
//! app:
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

mod admin;
mod api;
mod api_v1;
mod auth;
mod destinations;
mod error;
mod feeds;
mod filters;
mod gallery;
mod home;
mod mailbox;
mod me;
mod metrics;
mod oidc;
mod ownership;
mod preview;
mod routes;
mod session;
mod settings;
mod throttle;
mod tokens;
mod unsubscribe;
mod view;
mod why;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::HeaderValue;
use tidings_rules::{Message, Metadata};
use tidings_store::{ServerKey, Store};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

pub use admin::{CatalogReport, CatalogSkip};
pub use api_v1::openapi;
pub use error::Error;
pub use feeds::{build_feed, Feed, FEED_ENTRIES, FEED_SCAN, FEED_WINDOW_MS};
pub use metrics::serve_metrics;
pub use preview::{preview, Preview, PREVIEW_LISTED, PREVIEW_WINDOW_MS};
pub use routes::router;
/// A time (ms since the epoch) as `2024-05-01 12:34 UTC`, as the pages show it.
pub use view::when as show_time;

/// The web settings (the `[web]` table of the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The address people reach the site at, without a trailing slash; links in mail start
    /// with it. An `https` one makes cookies `Secure` with the `__Host-` prefix and adds
    /// `Strict-Transport-Security` to every response.
    pub base_url: String,
    /// The longest a sign-in lasts, however active, in hours.
    pub session_hours: i64,
    /// A sign-in unused for this many minutes ends.
    pub session_idle_minutes: i64,
    /// Whether anyone may create an account at `/signup`.
    pub allow_signup: bool,
    /// The folder the email sender writes `.eml` files to when no SMTP server is set;
    /// when given, signed-in users can read the mail sent to their addresses at `/mailbox`.
    pub mailbox_dir: Option<PathBuf>,
    /// The header a trusted reverse proxy puts the client's address in (`X-Forwarded-For`,
    /// `X-Real-IP`); sign-in throttling then keys by its last address instead of the TCP
    /// peer. Only set it when every request comes through that proxy: clients can send
    /// the header themselves.
    pub client_address_header: Option<String>,
    /// The kinds of destination users can add: the channels the senders have.
    pub channels: Vec<tidings_store::ChannelKind>,
    /// The IRC networks configured (`[channels.irc.networks.<name>]`): an IRC destination
    /// must name one of them.
    pub irc_networks: Vec<String>,
    /// The OpenID Connect provider people sign in through (`[web.oidc]`), if any.
    pub oidc: Option<OidcConfig>,
}

/// The OpenID Connect provider (`[web.oidc]`): people sign in there (authorization code
/// with PKCE), their username claim becomes their account's name (`$me`) and their groups
/// claim part of `$my_groups`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer URL; its `/.well-known/openid-configuration` is read at start.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (or `client_secret_file`; neither for a public client).
    pub client_secret: Option<String>,
    /// A file whose first line is the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
    /// The claim that holds the username (ID token, else userinfo).
    pub username_claim: String,
    /// The claim that holds the groups (a list of names, or one name).
    pub groups_claim: String,
    /// The provider's name on the sign-in button: "Sign in with NAME".
    pub name: String,
    /// Whether local accounts may still be created at `/signup` (also needs
    /// `web.allow_signup`). Off by default: the provider's usernames are the names people
    /// have on the bus, and a local account could take one before its owner signs in.
    pub allow_local_signup: bool,
    /// The longest a request to the provider (discovery, token, userinfo) may take.
    pub timeout_secs: u64,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: None,
            client_secret_file: None,
            scopes: vec!["profile".into()],
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            name: "your sign-in provider".into(),
            allow_local_signup: false,
            timeout_secs: 10,
        }
    }
}

impl OidcConfig {
    /// Refuses settings the sign-in cannot use, naming the config key.
    pub fn check(&self) -> Result<(), String> {
        let key = |name: &str| format!("config key web.oidc.{name}");
        match url::Url::parse(&self.issuer) {
            Ok(url) if matches!(url.scheme(), "https" | "http") => {}
            _ => {
                return Err(format!(
                    "{}: expected the provider's http(s) issuer URL, found {:?}",
                    key("issuer"),
                    self.issuer
                ))
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(format!("{}: must be set", key("client_id")));
        }
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err(format!(
                "{}: give client_secret or client_secret_file, not both",
                key("client_secret")
            ));
        }
        self.secret()?;
        for (name, value) in [
            ("username_claim", &self.username_claim),
            ("groups_claim", &self.groups_claim),
            ("name", &self.name),
        ] {
            if value.trim().is_empty() {
                return Err(format!("{}: must not be empty", key(name)));
            }
        }
        if let Some(scope) = self
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(format!(
                "{}: {scope:?} is not a scope (one word each)",
                key("scopes")
            ));
        }
        if !(1..=120).contains(&self.timeout_secs) {
            return Err(format!("{}: must be 1 to 120 seconds", key("timeout_secs")));
        }
        Ok(())
    }

    /// The client secret: `client_secret`, or the first line of `client_secret_file`.
    pub fn secret(&self) -> Result<Option<String>, String> {
        match (&self.client_secret, &self.client_secret_file) {
            (Some(secret), _) => Ok(Some(secret.clone())),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "config key web.oidc.client_secret_file: cannot read {}: {e}",
                        path.display()
                    )
                })?;
                let secret = text.lines().next().unwrap_or_default().trim().to_string();
                if secret.is_empty() {
                    return Err(format!(
                        "config key web.oidc.client_secret_file: {} is empty",
                        path.display()
                    ));
                }
                Ok(Some(secret))
            }
            (None, None) => Ok(None),
        }
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            base_url: "http://127.0.0.1:8080".to_string(),
            session_hours: 12,
            session_idle_minutes: 30,
            allow_signup: true,
            mailbox_dir: None,
            client_address_header: None,
            channels: tidings_store::ChannelKind::ALL.to_vec(),
            irc_networks: Vec::new(),
            oidc: None,
        }
    }
}

/// `Strict-Transport-Security` for https sites: a year, subdomains of the site's host
/// included (not its parent domain's).
const HSTS: &str = "max-age=31536000; includeSubDomains";

impl WebConfig {
    /// Whether the site is served over TLS, so cookies must be `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// Whether local accounts may be created at `/signup`: `allow_signup`, and with a
    /// sign-in provider only if `oidc.allow_local_signup` says so too.
    pub fn signup_allowed(&self) -> bool {
        self.allow_signup && self.oidc.as_ref().is_none_or(|o| o.allow_local_signup)
    }

    /// Refuses settings the web side cannot use, naming the config key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(oidc) = &self.oidc {
            oidc.check()?;
        }
        if self.session_hours < 1 {
            return Err("config key web.session_hours: must be at least 1".into());
        }
        if self.session_idle_minutes < 1 {
            return Err("config key web.session_idle_minutes: must be at least 1".into());
        }
        if let Some(name) = &self.client_address_header {
            if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!(
                    "config key web.client_address_header: {name:?} is not a header name"
                ));
            }
        }
        Ok(())
    }

    /// Session lifetime in milliseconds (at least a minute).
    pub(crate) fn session_ttl_ms(&self) -> i64 {
        self.session_hours.saturating_mul(3_600_000).max(60_000)
    }

    /// Session idle time in milliseconds (at least a minute).
    pub fn session_idle_ms(&self) -> i64 {
        self.session_idle_minutes.saturating_mul(60_000).max(60_000)
    }

    /// The session cookie's name: `__Host-` on https, so the browser only accepts it when
    /// it is `Secure`, for `Path=/` and without `Domain` (no subdomain can set it).
    pub(crate) fn session_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-tidings_session"
        } else {
            "tidings_session"
        }
    }

    /// The anonymous double-submit CSRF cookie's name, prefixed like the session's.
    pub(crate) fn csrf_cookie(&self) -> &'static str {
        if self.secure_cookies() {
            "__Host-tidings_csrf"
        } else {
            "tidings_csrf"
        }
    }

    /// `Strict-Transport-Security` for https sites, none for http ones.
    pub(crate) fn hsts(&self) -> Option<HeaderValue> {
        self.secure_cookies()
            .then_some(HeaderValue::from_static(HSTS))
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
    /// Poked after a message is stored or a confirmation queued, so the matcher runs at
    /// once (and wakes the senders). The binary passes one from
    /// `Store::notify_signalling(Wake::Matcher, ..)`, so a poke wakes the matcher in
    /// whichever process runs it; saved filters and destinations wake it by themselves.
    pub wake: Arc<tokio::sync::Notify>,
    /// Process counters the API reports ingest outcomes to (served by [`serve_metrics`]).
    pub metrics: Option<Arc<dyn Metrics>>,
    /// Checks the signatures of fedmsg envelopes posted to the API
    /// (`bus.verify_signatures`); none: not checked.
    pub trust: Option<Arc<tidings_notifier::bus::Trust>>,
    /// The key anonymous forms' CSRF tokens are signed with, read from the store once.
    csrf_key: Arc<OnceCell<ServerKey>>,
    /// Sign-in limiters, per account and per client address.
    throttle: Arc<throttle::Throttle>,
    /// The apps the catalog knows, for warnings about filters naming others.
    pub(crate) apps: Arc<tidings_rules::condition::AppNames>,
    /// The OpenID Connect provider, when one is configured.
    pub(crate) oidc: Option<Arc<oidc::Provider>>,
    /// What loading the catalog did, for the admin's catalog page.
    pub(crate) catalog: Arc<CatalogReport>,
    /// Cancelled when the server shuts down, so that endless responses (the live bus
    /// view's event stream) end and the shutdown stays graceful.
    pub(crate) shutdown: CancellationToken,
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

/// The process's counters as the web side sees them: it reports API ingest outcomes, and
/// [`serve_metrics`] serves the Prometheus text at `/metrics` on a listener of its own. The
/// binary implements this for the notifier's counters (a newtype around them), so this
/// crate does not depend on the notifier.
pub trait Metrics: Send + Sync {
    /// Counts one API ingest.
    fn ingest(&self, outcome: Ingest);
    /// Everything measured, in OpenMetrics text format.
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
        let oidc = config
            .oidc
            .as_ref()
            .map(|o| Arc::new(oidc::Provider::new(o.clone(), &config.base_url)));
        let (shipped, report) = CatalogReport::of(&tidings_rules::Catalog::shipped_sources());
        AppState {
            oidc,
            store,
            config: Arc::new(config),
            derive,
            wake,
            metrics: None,
            trust: None,
            csrf_key: Arc::new(OnceCell::new()),
            throttle: Arc::new(throttle::Throttle::new()),
            apps: Arc::new(shipped.app_names()),
            catalog: Arc::new(report),
            shutdown: CancellationToken::new(),
        }
    }

    /// Shows this report of loading the catalog on the admin's catalog page (the shipped
    /// catalog's until this is called).
    pub fn with_catalog(mut self, report: CatalogReport) -> Self {
        self.catalog = Arc::new(report);
        self
    }

    /// Warns about filters naming apps this catalog does not know (the shipped catalog's
    /// until this is called).
    pub fn with_apps(mut self, apps: tidings_rules::condition::AppNames) -> Self {
        self.apps = Arc::new(apps);
        self
    }

    /// Refuses fedmsg envelopes posted to the API whose signature `trust` does not accept.
    pub fn with_trust(mut self, trust: Option<Arc<tidings_notifier::bus::Trust>>) -> Self {
        self.trust = trust;
        self
    }

    /// Reports to and serves these counters.
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The key anonymous forms' CSRF tokens are signed with.
    pub(crate) async fn csrf_key(&self) -> Result<&ServerKey, Error> {
        Ok(self
            .csrf_key
            .get_or_try_init(|| self.store.server_key("csrf"))
            .await?)
    }
}

/// Serves the app on `listener` until `shutdown` is cancelled, then finishes the requests in
/// flight and returns. Handlers see the TCP peer's address (sign-in throttling keys by it).
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, base_url = %state.config.base_url, "web listening");
    }
    let mut state = state;
    state.shutdown = shutdown.child_token();
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}

/// How often expired and idle sessions are removed (the web refuses them anyway).
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The web role: serves the app on `listener` until `shutdown`, removing expired and idle
/// sessions hourly meanwhile.
pub async fn run(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (store, idle_ms) = (state.store.clone(), state.config.session_idle_ms());
    // The provider is looked up at start, within its time limit; if it cannot be reached,
    // the site starts all the same and the sign-in button tries again.
    if let Some(provider) = state.oidc.clone() {
        tokio::spawn(async move { provider.discover_at_start().await });
    }
    let stop = shutdown.clone();
    let purge = tokio::spawn(async move {
        loop {
            match store.purge_sessions(idle_ms).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(sessions = n, "expired sessions removed"),
                Err(err) => tracing::warn!(error = %err, "removing expired sessions failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PURGE_EVERY) => {}
            }
        }
    });
    let served = serve(state, listener, shutdown).await;
    purge.abort();
    served
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
        assert_eq!(https.session_cookie(), "__Host-tidings_session");
        assert_eq!(https.csrf_cookie(), "__Host-tidings_csrf");
        assert!(https.hsts().is_some());
        assert_eq!(config.session_cookie(), "tidings_session");
        assert!(config.hsts().is_none());
        let defaults = WebConfig::default();
        assert_eq!(defaults.session_ttl_ms(), 12 * 3_600_000);
        assert_eq!(defaults.session_idle_ms(), 30 * 60_000);
        assert!(defaults.check().is_ok());
    }

    #[test]
    fn check_names_the_key() {
        let bad = |adjust: fn(&mut WebConfig)| {
            let mut config = WebConfig::default();
            adjust(&mut config);
            config.check().err().unwrap_or_default()
        };
        assert!(bad(|c| c.session_hours = 0).contains("web.session_hours"));
        assert!(bad(|c| c.session_idle_minutes = 0).contains("web.session_idle_minutes"));
        assert!(bad(|c| c.client_address_header = Some("X Real IP".into()))
            .contains("web.client_address_header"));
        let proxied = WebConfig {
            client_address_header: Some("X-Forwarded-For".into()),
            ..WebConfig::default()
        };
        assert!(proxied.check().is_ok());
    }

    #[test]
    fn oidc_settings_are_checked_naming_the_key() {
        let good = OidcConfig {
            issuer: "https://id.example.org/openidc/".into(),
            client_id: "tidings".into(),
            client_secret: Some("s".into()),
            ..OidcConfig::default()
        };
        assert!(good.check().is_ok());
        let bad = |adjust: fn(&mut OidcConfig)| {
            let mut config = WebConfig {
                oidc: Some(good.clone()),
                ..WebConfig::default()
            };
            if let Some(oidc) = config.oidc.as_mut() {
                adjust(oidc);
            }
            config.check().err().unwrap_or_default()
        };
        assert!(bad(|c| c.issuer = "id.example.org".into()).contains("web.oidc.issuer"));
        assert!(bad(|c| c.client_id = " ".into()).contains("web.oidc.client_id"));
        assert!(
            bad(|c| c.client_secret_file = Some("/nonexistent/secret".into()))
                .contains("web.oidc.client_secret")
        );
        assert!(bad(|c| {
            c.client_secret = None;
            c.client_secret_file = Some("/nonexistent/secret".into());
        })
        .contains("web.oidc.client_secret_file: cannot read /nonexistent/secret"));
        assert!(bad(|c| c.scopes = vec!["a b".into()]).contains("web.oidc.scopes"));
        assert!(bad(|c| c.username_claim = String::new()).contains("web.oidc.username_claim"));
        assert!(bad(|c| c.timeout_secs = 0).contains("web.oidc.timeout_secs"));
        // A secret from a file: its first line.
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap_or_else(|e| panic!("{e}"));
        let from_file = OidcConfig {
            client_secret: None,
            client_secret_file: Some(file),
            ..good.clone()
        };
        assert_eq!(from_file.secret(), Ok(Some("from-file".into())));
        // Local sign-up is off with a provider unless the provider's table allows it.
        let mut config = WebConfig {
            oidc: Some(good.clone()),
            ..WebConfig::default()
        };
        assert!(!config.signup_allowed());
        if let Some(oidc) = config.oidc.as_mut() {
            oidc.allow_local_signup = true;
        }
        assert!(config.signup_allowed());
        config.allow_signup = false;
        assert!(!config.signup_allowed());
        assert!(WebConfig::default().signup_allowed());
        let parsed: WebConfig = serde_json::from_str(
            r#"{"oidc": {"issuer": "https://id.example.org", "client_id": "c"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let oidc = parsed.oidc.unwrap_or_default();
        assert_eq!(oidc.username_claim, "preferred_username");
        assert_eq!(oidc.groups_claim, "groups");
        assert!(!oidc.allow_local_signup);
        assert!(serde_json::from_str::<WebConfig>(r#"{"oidc": {"nope": 1}}"#).is_err());
    }
}
