//! Configuration: embedded defaults, then an optional TOML file, then `TIDINGS_*`
//! environment variables (`TIDINGS_WEB__LISTEN` sets `web.listen`). Unknown keys and bad
//! values stop the start with the key and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database and the local mailbox live.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `tidings.db` in the data folder.
    pub database_url: Option<String>,
    pub database: Database,
    pub web: Web,
    pub metrics: Metrics,
    pub bus: Bus,
    pub matcher: Matcher,
    pub sender: tidings_notifier::SenderConfig,
    /// One section per channel kind: `[channels.email]`.
    pub channels: Channels,
    /// The older name of `[channels.email]`, still read: a key set in `[channels.email]`
    /// wins over the same key here.
    pub email: tidings_notifier::EmailConfig,
    /// How destinations whose owners chose nothing get their notifications: the flood
    /// limit every destination starts with.
    pub delivery: DeliveryDefaults,
    /// `tidings bridge`: fedmsg ZeroMQ to AMQP and back (`[bridge]`).
    pub bridge: Bridge,
    /// Ownership data (`[ownership]`): its sync from the source (`[ownership.sync]`).
    pub ownership: Ownership,
    pub log: Log,
}

/// Ownership data (`[ownership]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ownership {
    /// Package owners from dist-git's owner map and group members from a FASJSON API,
    /// synced by the notifier role (`[ownership.sync]`); off while neither URL is set.
    pub sync: tidings_notifier::OwnershipSyncConfig,
}

/// What `tidings bridge` carries (`[bridge]`); the broker is `[bus.amqp]`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bridge {
    /// fedmsg publishers (ZeroMQ) whose messages go to AMQP; empty: that direction is off.
    pub zmq_endpoints: Vec<String>,
    /// The exchange they are published to (Fedora's bridge used `zmq.topic`).
    pub exchange: String,
    /// Where messages from AMQP are published as fedmsg (bound); empty: that direction is
    /// off.
    pub publish_endpoint: String,
    /// The bridge's own durable queue on `bus.amqp.exchange`.
    pub queue: String,
    /// Topics bound to that queue (AMQP patterns).
    pub routing_keys: Vec<String>,
    /// fedmsg messages held while the broker is unavailable.
    pub buffer: usize,
}

impl Default for Bridge {
    fn default() -> Self {
        Bridge {
            zmq_endpoints: Vec::new(),
            exchange: "zmq.topic".into(),
            publish_endpoint: "tcp://127.0.0.1:9940".into(),
            queue: "tidings-bridge".into(),
            routing_keys: vec!["#".into()],
            buffer: 10_000,
        }
    }
}

/// The delivery every destination starts with (`[delivery]`): at once, at most
/// `flood_max` notifications per `flood_window_minutes`, the rest of a flood in one summary.
/// Owners change it per destination.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryDefaults {
    /// Notifications at once per window (0: no limit).
    pub flood_max: u32,
    /// The window, in minutes.
    pub flood_window_minutes: u32,
}

impl Default for DeliveryDefaults {
    fn default() -> Self {
        DeliveryDefaults {
            flood_max: tidings_store::DeliveryPolicy::DEFAULT_FLOOD_MAX,
            flood_window_minutes: tidings_store::DeliveryPolicy::DEFAULT_FLOOD_WINDOW_MINUTES,
        }
    }
}

impl DeliveryDefaults {
    /// As a policy.
    pub fn policy(&self) -> tidings_store::DeliveryPolicy {
        tidings_store::DeliveryPolicy::Immediate {
            flood_max: self.flood_max,
            flood_window_minutes: self.flood_window_minutes,
        }
    }
}

/// The channels' sections, one per channel kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Channels {
    /// Email: SMTP or the local mailbox folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<tidings_notifier::EmailConfig>,
    /// Webhooks: signed JSON POSTs (on unless `enabled = false`).
    pub webhook: tidings_notifier::WebhookConfig,
    /// Ntfy: push notifications published to ntfy topics (on unless `enabled = false`).
    pub ntfy: tidings_notifier::NtfyConfig,
    /// Matrix: messages in a direct room with each user (off until an account is set).
    pub matrix: tidings_notifier::MatrixConfig,
    /// IRC: messages to nicks and channels on the configured networks (off until one is).
    pub irc: tidings_notifier::IrcConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    /// How long `serve` and `migrate` keep trying to reach the database server at start.
    pub start_timeout_secs: u64,
    /// While the database is unavailable, ingest and the sender wait and try again; the wait
    /// doubles from 100 ms up to this, in ms.
    pub retry_max_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// Address the web UI and API listen on.
    pub listen: SocketAddr,
    /// The public URL of the web UI (links in mail); default `http://<listen>`.
    pub base_url: Option<String>,
    /// The longest a sign-in lasts, however active, in hours.
    pub session_hours: i64,
    /// A sign-in unused for this many minutes ends.
    pub session_idle_minutes: i64,
    /// Whether anyone may create an account.
    pub allow_signup: bool,
    /// The header a trusted reverse proxy puts the client's address in; sign-in
    /// throttling keys by it instead of the TCP peer.
    pub client_address_header: Option<String>,
    /// Sign-in through an OpenID Connect provider (`[web.oidc]`).
    pub oidc: Option<tidings_web::OidcConfig>,
}

/// The Prometheus endpoint: served on a listener of its own, never on the public site.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Address `/metrics` is served on; none: not served.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bus {
    /// fedmsg ZeroMQ endpoints to subscribe to.
    pub zmq_endpoints: Vec<String>,
    /// Extra schema catalog folders (`*.toml`), loaded after the shipped catalog.
    pub catalog_dirs: Vec<PathBuf>,
    /// The largest ZeroMQ message accepted, in bytes (like the HTTP API's 1 MiB).
    pub max_message_bytes: usize,
    /// fedora-messaging over AMQP (`[bus.amqp]`); none: not consumed.
    pub amqp: Option<Amqp>,
    /// Archive only fedmsg envelopes (ZeroMQ, the HTTP API) whose X.509 `signature` and
    /// `certificate` check out against `ca_cert` (fedmsg's `validate_signatures`); the
    /// rest is rejected, recorded and counted.
    pub verify_signatures: bool,
    /// PEM file of the CA that issues the publishers' signing certificates (fedmsg's
    /// `ca_cert_location`); needed when `verify_signatures` is on.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of that CA's certificate revocation list (fedmsg's `crl_location`).
    pub crl: Option<PathBuf>,
    /// Topic → the certificate common names that may sign messages on it.
    pub routing_policy: std::collections::BTreeMap<String, Vec<String>>,
    /// Refuse signed messages on topics missing from `routing_policy`.
    pub routing_nitpicky: bool,
}

/// Where fedora-messaging messages are consumed (`[bus.amqp]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Amqp {
    /// The broker, `amqp://user:password@host:5672/%2f` or `amqps://…`.
    pub url: String,
    /// The exchange to bind to; fedora-messaging publishes to `amq.topic`.
    pub exchange: String,
    /// The durable queue every Tidings process shares (each message goes to one of them);
    /// malformed messages are dead-lettered to `<queue>.dead`.
    pub queue: String,
    /// Topics to bind, AMQP topic patterns (`org.fedoraproject.prod.#`); `#`: all.
    pub routing_keys: Vec<String>,
    /// Messages delivered ahead of their acknowledgement.
    pub prefetch: u16,
    /// TLS for `amqps://` URLs (`[bus.amqp.tls]`, fedora-messaging's `[tls]` keys).
    pub tls: AmqpTls,
}

/// TLS to the broker as fedora-messaging configures it (`[tls]` there): the CA that signed
/// the broker's certificate, and a client certificate and key, with which the connection
/// authenticates as the certificate's subject (SASL EXTERNAL) unless the URL names
/// another `auth_mechanism`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AmqpTls {
    /// PEM file of the CA(s) the broker's certificate is checked against, besides the
    /// system's.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate (and its chain).
    pub certfile: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub keyfile: Option<PathBuf>,
}

impl Amqp {
    /// As the notifier's AMQP ingest takes it, waiting up to `retry_max` between attempts
    /// while the database is unavailable.
    pub fn ingest(&self, retry_max: std::time::Duration) -> tidings_notifier::bus::AmqpIngest {
        tidings_notifier::bus::AmqpIngest {
            url: self.url.clone(),
            exchange: self.exchange.clone(),
            queue: self.queue.clone(),
            routing_keys: self.routing_keys.clone(),
            prefetch: self.prefetch,
            retry_max,
            tls: self.tls.settings(),
        }
    }
}

impl AmqpTls {
    /// As the notifier takes it.
    pub fn settings(&self) -> tidings_notifier::bus::AmqpTls {
        tidings_notifier::bus::AmqpTls {
            ca_cert: self.ca_cert.clone(),
            certfile: self.certfile.clone(),
            keyfile: self.keyfile.clone(),
        }
    }
}

impl Default for Amqp {
    fn default() -> Self {
        Amqp {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".into(),
            exchange: "amq.topic".into(),
            queue: "tidings".into(),
            routing_keys: vec!["#".into()],
            prefetch: 100,
            tls: AmqpTls::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Matcher {
    /// Messages matched per store round trip.
    pub batch: i64,
    /// Idle poll interval, ms.
    pub poll_ms: u64,
    /// The whole match index is rebuilt from the store this often, in minutes, a backstop
    /// beside the change log; 0: never.
    pub rebuild_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A tracing filter, e.g. `info` or `tidings_notifier=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("tidings-data"),
            database_url: None,
            database: Database::default(),
            web: Web::default(),
            metrics: Metrics::default(),
            bus: Bus::default(),
            matcher: Matcher::default(),
            sender: tidings_notifier::SenderConfig::default(),
            channels: Channels::default(),
            email: tidings_notifier::EmailConfig::default(),
            delivery: DeliveryDefaults::default(),
            bridge: Bridge::default(),
            ownership: Ownership::default(),
            log: Log::default(),
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Database {
            start_timeout_secs: 60,
            retry_max_ms: 10_000,
        }
    }
}

impl Default for Web {
    fn default() -> Self {
        Web {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: None,
            session_hours: 12,
            session_idle_minutes: 30,
            allow_signup: true,
            oidc: None,
            client_address_header: None,
        }
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            zmq_endpoints: vec!["tcp://127.0.0.1:9940".into()],
            catalog_dirs: Vec::new(),
            max_message_bytes: 1024 * 1024,
            amqp: None,
            verify_signatures: false,
            ca_cert: None,
            crl: None,
            routing_policy: std::collections::BTreeMap::new(),
            routing_nitpicky: false,
        }
    }
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher {
            batch: 500,
            poll_ms: 1000,
            rebuild_minutes: 60,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// The documented example file (`tidings config example`).
pub const EXAMPLE: &str = include_str!("../docs/tidings.example.toml");

impl Config {
    /// Loads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                anyhow::bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // TIDINGS_TEST_* belong to the test suite and TIDINGS_CONFIG names the file itself.
        let figment = figment.merge(environment());
        let mut config: Config = figment.extract().map_err(describe)?;
        // `[email]` is the older name of `[channels.email]`: each key set under the new
        // name wins, every other comes from the old section (or its default).
        if let Ok(set) = figment.find_value("channels.email") {
            let merged = Figment::from(Serialized::defaults(&config.email))
                .merge(Serialized::defaults(set))
                .extract()
                .map_err(|e| anyhow::anyhow!("config section channels.email: {e}"))?;
            config.channels.email = Some(merged);
        }
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !["text", "json"].contains(&self.log.format.as_str()) {
            anyhow::bail!(
                "config key log.format: expected \"text\" or \"json\", found {:?}",
                self.log.format
            );
        }
        tidings_notifier::ownership_sync::OwnershipSync::new(&self.ownership.sync)
            .map_err(|e| anyhow::anyhow!("config key {e}"))?;
        if self.sender.concurrency == Some(0) {
            anyhow::bail!("config key sender.concurrency: must be at least 1");
        }
        if self.sender.max_attempts < 1 {
            anyhow::bail!("config key sender.max_attempts: must be at least 1");
        }
        for (key, value) in [
            ("bus.max_message_bytes", self.bus.max_message_bytes as u64),
            ("bridge.buffer", self.bridge.buffer as u64),
            ("database.retry_max_ms", self.database.retry_max_ms),
            ("channels.email.timeout_secs", self.email().timeout_secs),
            (
                "channels.webhook.timeout_secs",
                self.channels.webhook.timeout_secs,
            ),
            (
                "channels.webhook.max_connections",
                self.channels.webhook.max_connections as u64,
            ),
            (
                "channels.ntfy.timeout_secs",
                self.channels.ntfy.timeout_secs,
            ),
            (
                "channels.ntfy.max_connections",
                self.channels.ntfy.max_connections as u64,
            ),
            (
                "channels.matrix.timeout_secs",
                self.channels.matrix.timeout_secs,
            ),
            (
                "channels.matrix.max_connections",
                self.channels.matrix.max_connections as u64,
            ),
        ] {
            if value == 0 {
                anyhow::bail!("config key {key}: must be at least 1");
            }
        }
        if self.matcher.batch < 1 {
            anyhow::bail!("config key matcher.batch: must be at least 1");
        }
        if let Err(e) = self.delivery.policy().check() {
            anyhow::bail!("config key delivery.{}: {}", e.field, e.reason);
        }
        let matrix = &self.channels.matrix;
        if matrix.enabled {
            if !(matrix.homeserver.starts_with("https://")
                || matrix.homeserver.starts_with("http://"))
            {
                anyhow::bail!(
                    "config key channels.matrix.homeserver: must be the homeserver's https:// \
                     URL when channels.matrix.enabled is set (got {:?})",
                    matrix.homeserver
                );
            }
            if matrix.access_token.trim().is_empty() {
                anyhow::bail!(
                    "config key channels.matrix.access_token: must be the hub account's access \
                     token when channels.matrix.enabled is set (or set \
                     TIDINGS_CHANNELS__MATRIX__ACCESS_TOKEN)"
                );
            }
        }
        let irc = &self.channels.irc;
        if irc.enabled && irc.networks.is_empty() {
            anyhow::bail!(
                "config key channels.irc.networks: name at least one network \
                 ([channels.irc.networks.<name>] with a server) when channels.irc.enabled is set"
            );
        }
        for (name, network) in &irc.networks {
            if tidings_store::ChannelKind::Irc
                .parse_address(&format!("nick@{name}"))
                .is_err()
            {
                anyhow::bail!(
                    "config key channels.irc.networks.{name}: a network's name is lower-case \
                     letters, digits and - (destinations name it: nick@{name})"
                );
            }
            if !network.server.contains(':') {
                anyhow::bail!(
                    "config key channels.irc.networks.{name}.server: must be host:port (got {:?})",
                    network.server
                );
            }
            if network.timeout_secs == 0 || network.flood_burst == 0 {
                anyhow::bail!(
                    "config key channels.irc.networks.{name}: timeout_secs and flood_burst must \
                     be at least 1"
                );
            }
        }
        if self.metrics.listen.is_some() && self.metrics.listen == Some(self.web.listen) {
            anyhow::bail!(
                "config key metrics.listen: must differ from web.listen ({}): metrics are not for the public site",
                self.web.listen
            );
        }
        if let Some(oidc) = &self.web.oidc {
            oidc.check().map_err(anyhow::Error::msg)?;
        }
        if self.bus.verify_signatures && self.bus.ca_cert.is_none() {
            anyhow::bail!(
                "config key bus.ca_cert: bus.verify_signatures is on, so bus.ca_cert must name \
                 the PEM file of the CA that issues the publishers' signing certificates"
            );
        }
        if let Some(amqp) = &self.bus.amqp {
            let tls = &amqp.tls;
            let any = tls.ca_cert.is_some() || tls.certfile.is_some();
            if any && !amqp.url.starts_with("amqps://") {
                anyhow::bail!(
                    "config key bus.amqp.url: [bus.amqp.tls] is set, so the URL must be \
                     amqps:// (found {:?})",
                    amqp.url.split('@').next_back().unwrap_or_default()
                );
            }
            if amqp.tls.certfile.is_some() != amqp.tls.keyfile.is_some() {
                anyhow::bail!(
                    "config key bus.amqp.tls: certfile and keyfile go together (the client \
                     certificate and its private key); set both or neither"
                );
            }
        }
        if let Some(url) = &self.web.base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!(
                    "config key web.base_url: expected an http:// or https:// URL, found {url:?}"
                );
            }
        }
        Ok(())
    }

    /// The fedmsg signature checker, when `bus.verify_signatures` is on: the CA and CRL
    /// read now, so a missing or broken file stops the start naming its key.
    pub fn trust(&self) -> anyhow::Result<Option<std::sync::Arc<tidings_notifier::bus::Trust>>> {
        if !self.bus.verify_signatures {
            return Ok(None);
        }
        let trust = tidings_notifier::bus::Trust::load(&tidings_notifier::bus::TrustConfig {
            ca_cert: self.bus.ca_cert.clone().unwrap_or_default(),
            crl: self.bus.crl.clone(),
            routing_policy: self.bus.routing_policy.clone(),
            routing_nitpicky: self.bus.routing_nitpicky,
        })
        .map_err(|e| anyhow::anyhow!("config key {e}"))?;
        Ok(Some(std::sync::Arc::new(trust)))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("tidings.db").display()
            )
        })
    }

    /// The email channel's settings in effect: `[channels.email]`, else the older `[email]`.
    pub fn email(&self) -> &tidings_notifier::EmailConfig {
        self.channels.email.as_ref().unwrap_or(&self.email)
    }

    /// The local mailbox folder in effect.
    pub fn mailbox_dir(&self) -> PathBuf {
        self.email()
            .mailbox_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("mailbox"))
    }

    /// Whether the database is PostgreSQL, which roles in separate processes share.
    pub fn shared_database(&self) -> bool {
        let url = self.database_url();
        url.starts_with("postgres:") || url.starts_with("postgresql:")
    }

    /// The public base URL in effect.
    pub fn base_url(&self) -> String {
        self.web
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.web.listen))
    }

    /// Creates the data folder.
    pub fn prepare(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data folder {}", self.data_dir.display()))
    }
}

/// The `TIDINGS_*` variables, less those that are not config keys: `TIDINGS_TEST_*` belong
/// to the test suite and `TIDINGS_CONFIG` names the file itself. (figment hands the filter
/// the key as written, so the comparison ignores case.)
fn environment() -> Env {
    Env::prefixed("TIDINGS_").split("__").filter(|key| {
        let key = key.as_str().to_ascii_lowercase();
        !key.starts_with("test_") && key != "config"
    })
}

/// figment's errors name the key and the source (file or environment variable); keep that
/// and say it in one line per problem.
fn describe(err: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::from("(top level)")
            } else {
                e.path.join(".")
            };
            let source = e.metadata.as_ref().map(|m| match &m.source {
                Some(src) => format!(" (from {src})"),
                // The environment provider does not say which variable; it is derivable.
                None if m.name.contains("environment") && !e.path.is_empty() => {
                    format!(
                        " (from environment variable TIDINGS_{})",
                        e.path.join("__").to_uppercase()
                    )
                }
                None => format!(" (from {})", m.name),
            });
            format!("config key {key}: {}{}", e.kind, source.unwrap_or_default())
        })
        .collect();
    anyhow::anyhow!(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = Config::default();
        assert!(c
            .database_url()
            .starts_with("sqlite://tidings-data/tidings.db"));
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert!(c.check().is_ok());
    }

    #[test]
    fn the_example_file_is_valid() {
        let parsed: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(EXAMPLE))
            .extract()
            .map_err(describe)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(parsed.check().is_ok());
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closures return figment::Error"
    )]
    fn test_and_config_variables_are_not_keys() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TIDINGS_TEST_OWNER", "123");
            jail.set_env("TIDINGS_CONFIG", "/nowhere.toml");
            jail.set_env("TIDINGS_SENDER__CONCURRENCY", "9");
            let config: Config = Figment::from(Serialized::defaults(Config::default()))
                .merge(environment())
                .extract()
                .map_err(|e| e.to_string())?;
            assert_eq!(config.sender.concurrency, Some(9));
            Ok(())
        });
    }

    /// `[email]` stays an alias of `[channels.email]`, key by key: the newer name wins.
    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closures return figment::Error"
    )]
    fn the_email_section_is_an_alias_of_channels_email() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "t.toml",
                "[email]\nsmtp_url = \"smtp://old:25\"\ntimeout_secs = 9\n\
                 [channels.email]\ntimeout_secs = 5\n",
            )?;
            let config = Config::load(Some(Path::new("t.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.email().smtp_url.as_deref(), Some("smtp://old:25"));
            assert_eq!(config.email().timeout_secs, 5);
            jail.set_env("TIDINGS_CHANNELS__EMAIL__SMTP_URL", "smtp://new:25");
            let config = Config::load(Some(Path::new("t.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.email().smtp_url.as_deref(), Some("smtp://new:25"));
            let from_env = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(from_env.email().smtp_url.as_deref(), Some("smtp://new:25"));
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[sender]\nconcurrency = \"many\""))
            .extract::<Config>()
            .map_err(describe)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("config key sender.concurrency"), "{err}");
        let err = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[web]\nlisten_on = \"x\""))
            .extract::<Config>()
            .map_err(describe)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("listen_on"), "{err}");
    }

    /// A config from `toml` over the defaults, checked as at start.
    fn load(toml: &str) -> Result<Config, anyhow::Error> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract::<Config>()
            .map_err(describe)
            .and_then(|c| c.check().map(|()| c))
    }

    /// Issue 8 item 10: metrics are served apart from the public site, never on it.
    #[test]
    fn metrics_need_their_own_address() {
        let config =
            load("[metrics]\nlisten = \"127.0.0.1:9464\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.metrics.listen, "127.0.0.1:9464".parse().ok());
        assert_eq!(Config::default().metrics.listen, None, "off by default");
        let err = load("[metrics]\nlisten = \"127.0.0.1:8080\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("config key metrics.listen"), "{err}");
    }

    /// Issue 13: `[ownership.sync]` is off by default and a bad value names its key.
    #[test]
    fn ownership_sync_is_off_by_default_and_checked() {
        assert!(!Config::default().ownership.sync.enabled());
        let config = load(
            "[ownership.sync]\nowners_url = \"https://src.example.org/extras/pagure_owner_alias.json\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.ownership.sync.enabled());
        for (toml, key) in [
            (
                "[ownership.sync]\ngroups_url = \"https://fasjson.example.org/v1/\"",
                "config key ownership.sync.groups:",
            ),
            (
                "[ownership.sync]\nowners_url = \"ftp://x/y.json\"",
                "config key ownership.sync.owners_url:",
            ),
            (
                "[ownership.sync]\nowners_url = \"https://x/y.json\"\ntimeout_secs = 0",
                "config key ownership.sync.timeout_secs:",
            ),
        ] {
            let err = load(toml).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(key), "{toml}: {err}");
        }
    }
}
