//! The notifier's settings. The binary fills them from its config file and environment.

use std::path::PathBuf;

/// Everything the notifier needs to know.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// ZeroMQ endpoints to SUB-connect to (fedmsg publishers).
    pub zmq_endpoints: Vec<String>,
    /// Messages matched per store round trip.
    pub match_batch: i64,
    /// How often the matcher looks for work when nothing woke it, in ms.
    pub poll_ms: u64,
    /// The sender's settings.
    pub sender: SenderConfig,
    /// The email channel's settings.
    pub email: EmailConfig,
    /// The web UI's public base URL, for links in notifications.
    pub base_url: String,
}

/// How the outbox is drained (the `[sender]` section of the config file).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SenderConfig {
    /// Sends in flight at once (also the most a crash can send twice). Unset, it is what the
    /// configured channels do well: 64 with an SMTP server (a connection each, mostly), 256
    /// for the mailbox folder (one writer; more in flight means larger claims).
    pub concurrency: Option<usize>,
    /// How long a claim lasts before another sender may take the row over, in seconds.
    pub lease_secs: u64,
    /// Attempts before a notification is dead.
    pub max_attempts: i64,
    /// First retry delay, in ms; doubled per attempt, with jitter.
    pub backoff_base_ms: u64,
    /// Longest retry delay, in ms.
    pub backoff_max_ms: u64,
    /// How often to look for due rows when idle, in ms.
    pub poll_ms: u64,
    /// At shutdown, how long sends in flight may take to finish, in seconds. What is still
    /// in flight after it is left to its lease, which the next start reclaims.
    pub shutdown_grace_secs: u64,
}

impl SenderConfig {
    /// The sends in flight at once with these channels: the configured number, or else the
    /// most any of them does well.
    pub fn concurrency(&self, registry: &crate::channel::Registry) -> usize {
        self.concurrency
            .unwrap_or_else(|| registry.parallelism())
            .max(1)
    }
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            concurrency: None,
            lease_secs: 60,
            max_attempts: 8,
            backoff_base_ms: 2_000,
            backoff_max_ms: 3_600_000,
            poll_ms: 500,
            shutdown_grace_secs: 10,
        }
    }
}

/// Where mail goes and how it is labelled (the `[email]` section of the config file).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `smtp://host:port`, `smtps://user:pass@host`, `smtp://host?tls=required`; when absent,
    /// mail is written to `mailbox_dir` instead.
    pub smtp_url: Option<String>,
    /// The folder mail is written to when there is no SMTP server (the binary defaults it
    /// to `mailbox` in its data folder).
    pub mailbox_dir: Option<PathBuf>,
    /// The From address.
    pub from: String,
    /// The List-Id value.
    pub list_id: String,
    /// The mailto: unsubscribe address, if one is read.
    pub unsubscribe_mailto: Option<String>,
    /// The most one send may take, in seconds: connecting, every SMTP command, the whole
    /// mail. A server that accepts a connection and never answers cannot hold a send slot.
    pub timeout_secs: u64,
    /// SMTP connections kept open for reuse (lettre's pool); sends beyond it open and
    /// close connections of their own. Near `sender.concurrency`, but under the server's
    /// limit of connections per client (Postfix: 50).
    pub max_connections: u32,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            smtp_url: None,
            mailbox_dir: None,
            from: "Tidings <tidings@localhost>".into(),
            list_id: "notifications.tidings.localhost".into(),
            unsubscribe_mailto: None,
            timeout_secs: 30,
            max_connections: 48,
        }
    }
}

impl EmailConfig {
    /// The mailbox folder in effect.
    pub fn mailbox(&self) -> PathBuf {
        self.mailbox_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("mailbox"))
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(tidings_store::redact),
            )
            .field("mailbox_dir", &self.mailbox_dir)
            .field("from", &self.from)
            .field("list_id", &self.list_id)
            .field("unsubscribe_mailto", &self.unsubscribe_mailto)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// How webhooks are posted (the `[channels.webhook]` section of the config file). The
/// channel needs no server of its own, so it is on unless `enabled = false`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Whether webhook destinations can be added and are posted to.
    pub enabled: bool,
    /// The most one POST may take (connecting, sending, the answer), in seconds.
    pub timeout_secs: u64,
    /// Connections kept open per endpoint host, and the sends the channel does at once.
    pub max_connections: usize,
    /// Post to private, loopback and link-local addresses too. Off by default: a user could
    /// otherwise have the hub post to services inside its own network (SSRF). Turn it on for
    /// mirrors on a private network, or for tests.
    pub allow_private_targets: bool,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            timeout_secs: 10,
            max_connections: 32,
            allow_private_targets: false,
        }
    }
}

/// How ntfy topics are published to (the `[channels.ntfy]` section of the config file). The
/// channel needs no server of its own (each destination names its ntfy server), so it is on
/// unless `enabled = false`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NtfyConfig {
    /// Whether ntfy destinations can be added and are published to.
    pub enabled: bool,
    /// The most one publish may take (connecting, sending, the answer), in seconds.
    pub timeout_secs: u64,
    /// Connections kept open per ntfy server, and the sends the channel does at once.
    pub max_connections: usize,
    /// Publish to private, loopback and link-local addresses too. Off by default: a user
    /// could otherwise have the hub post to services inside its own network (SSRF). Turn it
    /// on for an ntfy server on a private network, or for tests.
    pub allow_private_targets: bool,
}

impl Default for NtfyConfig {
    fn default() -> Self {
        NtfyConfig {
            enabled: true,
            timeout_secs: 10,
            max_connections: 16,
            allow_private_targets: false,
        }
    }
}

/// How the hub writes to Matrix users (the `[channels.matrix]` section of the config file):
/// through one account of its own on a homeserver, by the client-server API. Off until an
/// account is configured.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatrixConfig {
    /// Whether Matrix destinations can be added and are written to.
    pub enabled: bool,
    /// The homeserver's client-server API base URL (`https://matrix.example.org`).
    pub homeserver: String,
    /// The hub account's access token (from logging in as it; see the README). Best set
    /// from the environment: `TIDINGS_CHANNELS__MATRIX__ACCESS_TOKEN`.
    pub access_token: String,
    /// The most one request may take (connecting, sending, the answer), in seconds. A send
    /// can make a few (find or open the direct room, then send).
    pub timeout_secs: u64,
    /// Connections kept open to the homeserver, and the sends the channel does at once.
    pub max_connections: usize,
    /// How long a new direct room waits for its invitee to join before the confirmation
    /// in it is given up, in seconds (a new code then invites them again).
    pub invite_wait_secs: u64,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        MatrixConfig {
            enabled: false,
            homeserver: String::new(),
            access_token: String::new(),
            timeout_secs: 10,
            max_connections: 8,
            invite_wait_secs: 24 * 3600,
        }
    }
}

impl std::fmt::Debug for MatrixConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixConfig")
            .field("enabled", &self.enabled)
            .field("homeserver", &self.homeserver)
            .field("access_token", &"…")
            .field("timeout_secs", &self.timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("invite_wait_secs", &self.invite_wait_secs)
            .finish()
    }
}

/// How the hub writes to IRC (the `[channels.irc]` section of the config file): one
/// persistent connection per network named under `networks`. Off until a network is
/// configured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IrcConfig {
    /// Whether IRC destinations can be added and are written to.
    pub enabled: bool,
    /// The networks, by the name destinations use (`nick@libera`): `[channels.irc.networks.libera]`.
    pub networks: std::collections::BTreeMap<String, IrcNetworkConfig>,
}

/// One IRC network (`[channels.irc.networks.<name>]`).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IrcNetworkConfig {
    /// `host:port` of the server.
    pub server: String,
    /// TLS (the default; port 6697 on most networks).
    pub tls: bool,
    /// A PEM file of certificates to trust besides the system's (a private network's CA).
    pub tls_ca_file: Option<PathBuf>,
    /// The hub's nick.
    pub nick: String,
    /// SASL PLAIN account name, if the network wants the hub signed in (IRCv3 `CAP`/`AUTHENTICATE`).
    pub sasl_username: Option<String>,
    /// SASL PLAIN password. Best set from the environment:
    /// `TIDINGS_CHANNELS__IRC__NETWORKS__<NAME>__SASL_PASSWORD`.
    pub sasl_password: Option<String>,
    /// Lines sent at once before throttling starts (the server's flood allowance).
    pub flood_burst: u32,
    /// Once throttled, one line per this many milliseconds.
    pub flood_interval_ms: u64,
    /// The most one send may take, in seconds: waiting for the connection, the throttle
    /// and the server's answer.
    pub timeout_secs: u64,
}

impl Default for IrcNetworkConfig {
    fn default() -> Self {
        IrcNetworkConfig {
            server: String::new(),
            tls: true,
            tls_ca_file: None,
            nick: "tidings".into(),
            sasl_username: None,
            sasl_password: None,
            flood_burst: 4,
            flood_interval_ms: 2_000,
            timeout_secs: 30,
        }
    }
}

impl std::fmt::Debug for IrcNetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrcNetworkConfig")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("nick", &self.nick)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password.as_ref().map(|_| "…"))
            .field("flood_burst", &self.flood_burst)
            .field("flood_interval_ms", &self.flood_interval_ms)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// Ownership from the source (the `[ownership.sync]` section of the config file): package
/// owners from dist-git's owner map and group members from a FASJSON-compatible account
/// system, read every `interval_secs` by the notifier role. Off while neither URL is set.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OwnershipSyncConfig {
    /// dist-git's owner map, `pagure_owner_alias.json`
    /// (`https://src.fedoraproject.org/extras/pagure_owner_alias.json`); none: owners are
    /// not synced.
    pub owners_url: Option<String>,
    /// A FASJSON API's base URL (`https://fasjson.fedoraproject.org/v1/`); none: groups
    /// are not synced.
    pub groups_url: Option<String>,
    /// The groups whose members and sponsors are synced.
    pub groups: Vec<String>,
    /// A bearer token sent to `groups_url`, if it takes one. Best set from the
    /// environment: `TIDINGS_OWNERSHIP__SYNC__GROUPS_TOKEN`.
    pub groups_token: Option<String>,
    /// Seconds between syncs (the first runs at start).
    pub interval_secs: u64,
    /// The most one request may take (connecting, the whole answer), in seconds.
    pub timeout_secs: u64,
    /// The largest answer read, in bytes; a larger one is refused.
    pub max_response_bytes: usize,
    /// Members asked for per FASJSON page.
    pub page_size: u32,
}

impl OwnershipSyncConfig {
    /// Whether anything is synced.
    pub fn enabled(&self) -> bool {
        self.owners_url.is_some() || self.groups_url.is_some()
    }
}

impl Default for OwnershipSyncConfig {
    fn default() -> Self {
        OwnershipSyncConfig {
            owners_url: None,
            groups_url: None,
            groups: Vec::new(),
            groups_token: None,
            interval_secs: 3600,
            timeout_secs: 60,
            max_response_bytes: 64 * 1024 * 1024,
            page_size: 500,
        }
    }
}

impl std::fmt::Debug for OwnershipSyncConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnershipSyncConfig")
            .field("owners_url", &self.owners_url)
            .field("groups_url", &self.groups_url)
            .field("groups", &self.groups)
            .field("groups_token", &self.groups_token.as_ref().map(|_| "…"))
            .field("interval_secs", &self.interval_secs)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("page_size", &self.page_size)
            .finish()
    }
}
