//! Channel kinds and their addresses, in pure code: which kinds of channel there are, what
//! an address of each kind looks like and the form it is stored and compared in, and the
//! typed settings a destination of each kind carries. The transports themselves live in
//! the notifier; the store keeps what this module checked.
//!
//! ```
//! use tidings_rules::ChannelKind;
//!
//! let address = ChannelKind::Email.parse_address(" Bob@Example.ORG ").expect("valid");
//! assert_eq!(address.as_str(), "Bob@example.org");
//! assert_eq!(address.key(), "bob@example.org");
//! assert!(ChannelKind::Email.parse_address("bob").is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use email_address::EmailAddress;

/// A kind of delivery channel. Adding one (IRC, Matrix, webhook, ntfy) is a variant here
/// with its address rule, a settings variant in [`ChannelSettings`], and a transport module
/// in the notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Email, by SMTP or to the local mailbox folder.
    Email,
    /// An HTTP endpoint that takes JSON POSTs signed the Standard Webhooks way (a mirror's
    /// sync trigger, a chat bridge, a script).
    Webhook,
    /// A topic on an ntfy server (`https://ntfy.sh/mytopic`): push notifications to the
    /// phones and desktops subscribed to it.
    Ntfy,
    /// A Matrix user (`@nick:fedora.im`), written to in a direct room the hub's own Matrix
    /// account opens with them.
    Matrix,
    /// A nick or a channel on an IRC network the hub is configured for (`nick@libera`,
    /// `#fedora-admin@libera`).
    Irc,
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not an address of this kind.
    #[error("{address:?} is not {expected} ({why})")]
    Invalid {
        /// What was given, trimmed.
        address: String,
        /// What an address of this kind looks like.
        expected: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// No such channel kind.
    #[error("unknown channel {0:?}; expected one of: email, webhook, ntfy, matrix, irc")]
    UnknownKind(String),
}

/// A checked address in the form it is stored, with the key it is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    kind: ChannelKind,
    normalised: String,
    key: String,
}

impl Address {
    /// Its channel kind.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.normalised
    }

    /// The form two addresses are compared by: two addresses with one key reach the same
    /// recipient.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stored form, owned.
    pub fn into_string(self) -> String {
        self.normalised
    }
}

impl ChannelKind {
    /// Every kind, in the order they are listed.
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Email,
        ChannelKind::Webhook,
        ChannelKind::Ntfy,
        ChannelKind::Matrix,
        ChannelKind::Irc,
    ];

    /// The name stored, shown and used as the config section (`[channels.<name>]`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Matrix => "matrix",
            ChannelKind::Irc => "irc",
        }
    }

    /// Whether a destination of this kind is confirmed by a code typed into the web UI (or
    /// given to `tidings destination confirm`) by its signed-in owner, rather than by a link:
    /// chat messages are read by people who are signed in somewhere else, and a code proves
    /// the account holder reads that nick or room.
    pub fn confirms_by_code(self) -> bool {
        matches!(self, ChannelKind::Matrix | ChannelKind::Irc)
    }

    /// Checks an address for this kind and returns the form that is stored. Email:
    /// trimmed, the domain lower-cased, the local part as typed. Only plain addresses
    /// (`name@example.org`) pass: no display names, quoted local parts, domain literals or
    /// single-label domains, so that whatever is accepted here the mailer accepts too. The
    /// key is the whole address lower-cased, since mail providers treat the local part
    /// case-insensitively and `Bob@` and `bob@` reach the same person.
    ///
    /// Webhook: an absolute `https://` or `http://` URL with a host, without a user name or
    /// password (they would be shown wherever the address is) and without a `#fragment`
    /// (never sent). Stored and keyed in its normalised form: scheme and host lower-cased,
    /// a default port dropped, an empty path made `/`. Whether its host may be a private or
    /// loopback address is the webhook channel's to decide when it sends, since names can
    /// resolve to anything.
    ///
    /// Ntfy: a topic URL, `https://` or `http://`, a host, and exactly one path segment, the
    /// topic: 1 to 64 of `A-Z a-z 0-9 _ -` (what ntfy accepts as a topic name). No user name
    /// or password (an access token goes in the destination's settings), no `?query` and no
    /// `#fragment`. Stored and keyed normalised like a webhook's URL; whether its host may be
    /// private is likewise the ntfy channel's to decide.
    ///
    /// Matrix: a user ID, `@localpart:server`, at most 255 bytes. The localpart is printable
    /// ASCII without `:` (the spec's historical grammar, which is wider than today's
    /// lower-case one); the server is a host name or IP literal with an optional port, stored
    /// lower-cased. Keyed as stored: user IDs are case-sensitive.
    ///
    /// IRC: `target@network`, the target a nick (RFC 2812: a letter or one of ``[]\`_^{|}``,
    /// then those, digits and `-`, at most 30) or a channel (`#` or `&`, then at most 49 of
    /// anything but spaces, commas, colons and control characters), the network the name
    /// of one in `[channels.irc.networks]` (lower-case letters, digits and `-`). Stored as
    /// typed with the network lower-cased; keyed with the target folded the way IRC servers
    /// compare names (RFC 1459 case mapping: `[]\~` are the upper case of `{}|^`).
    pub fn parse_address(self, address: &str) -> Result<Address, AddressError> {
        let address = address.trim();
        match self {
            ChannelKind::Email => {
                let invalid = |why: &str| AddressError::Invalid {
                    address: address.to_string(),
                    expected: "an email address like name@example.org",
                    why: why.to_string(),
                };
                if address.len() > 254 {
                    return Err(invalid("longer than 254 characters"));
                }
                if let Some(c) = address
                    .chars()
                    .find(|c| c.is_whitespace() || c.is_control() || "\"<>,;[]()".contains(*c))
                {
                    return Err(invalid(&format!("{c:?} is not allowed")));
                }
                let Some((local, domain)) = address.rsplit_once('@') else {
                    return Err(invalid("no @"));
                };
                if local.is_empty() || !EmailAddress::is_valid_local_part(local) {
                    return Err(invalid("the part before the @ is not valid"));
                }
                let domain = domain.to_lowercase();
                let labels = domain.split('.').count();
                if labels < 2 || !EmailAddress::is_valid_domain(&domain) {
                    return Err(invalid("the domain is not valid"));
                }
                let normalised = format!("{local}@{domain}");
                Ok(Address {
                    kind: self,
                    key: normalised.to_lowercase(),
                    normalised,
                })
            }
            ChannelKind::Webhook => {
                let invalid = |why: &str| AddressError::Invalid {
                    address: address.to_string(),
                    expected: "a web address like https://example.org/hooks/tidings",
                    why: why.to_string(),
                };
                if address.len() > 2000 {
                    return Err(invalid("longer than 2000 characters"));
                }
                let url = url::Url::parse(address).map_err(|e| invalid(&e.to_string()))?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(invalid("only https:// and http:// addresses are posted to"));
                }
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("no host"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        "a user name or password in the address would be shown wherever \
                         the address is; the webhook's signature proves who sent it",
                    ));
                }
                if url.fragment().is_some() {
                    return Err(invalid("a #fragment is never sent; leave it out"));
                }
                let normalised = url.to_string();
                Ok(Address {
                    kind: self,
                    key: normalised.clone(),
                    normalised,
                })
            }
            ChannelKind::Ntfy => {
                let invalid = |why: &str| AddressError::Invalid {
                    address: address.to_string(),
                    expected: "an ntfy topic URL like https://ntfy.sh/mytopic",
                    why: why.to_string(),
                };
                if address.len() > 2000 {
                    return Err(invalid("longer than 2000 characters"));
                }
                let url = url::Url::parse(address).map_err(|e| invalid(&e.to_string()))?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(invalid(
                        "only https:// and http:// servers are published to",
                    ));
                }
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(invalid("no host"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(invalid(
                        "a user name or password in the address would be shown wherever \
                         the address is; give an access token instead",
                    ));
                }
                if url.query().is_some() {
                    return Err(invalid("a ?query is not part of a topic; leave it out"));
                }
                if url.fragment().is_some() {
                    return Err(invalid("a #fragment is never sent; leave it out"));
                }
                let segments: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
                let topic = match segments.as_slice() {
                    [topic] if !topic.is_empty() => *topic,
                    [""] => return Err(invalid("no topic: the path names it, as in /mytopic")),
                    _ => {
                        return Err(invalid(
                            "the path must be the topic alone, one segment, as in /mytopic",
                        ))
                    }
                };
                if topic.len() > 64 {
                    return Err(invalid("a topic is at most 64 characters"));
                }
                if let Some(c) = topic
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
                {
                    return Err(invalid(&format!(
                        "{c:?} is not allowed in a topic (letters, digits, _ and - are)"
                    )));
                }
                let normalised = url.to_string();
                Ok(Address {
                    kind: self,
                    key: normalised.clone(),
                    normalised,
                })
            }
            ChannelKind::Matrix => parse_matrix_user(address),
            ChannelKind::Irc => parse_irc_target(address),
        }
    }

    /// Whether notifications to a destination of this kind are delivered one at a time,
    /// in the order they were queued, a failing one holding the later ones back: webhooks,
    /// whose receivers (a mirror's sync trigger) act on each event in turn. Other kinds
    /// are sent as fast as they go.
    pub fn delivers_in_order(self) -> bool {
        matches!(self, ChannelKind::Webhook)
    }

    /// The settings a new destination of this kind starts with, `random` being 24 fresh
    /// random bytes (a webhook's signing secret is made of them; email and ntfy need none:
    /// an ntfy topic starts without an access token).
    pub fn new_settings(self, random: &[u8; 24]) -> ChannelSettings {
        match self {
            ChannelKind::Email => ChannelSettings::EmailV1 {},
            ChannelKind::Webhook => ChannelSettings::WebhookV1 {
                secret: SigningSecret(format!("whsec_{}", BASE64.encode(random))),
            },
            ChannelKind::Ntfy => ChannelSettings::NtfyV1 { token: None },
            ChannelKind::Matrix => ChannelSettings::MatrixV1 {},
            ChannelKind::Irc => ChannelSettings::IrcV1 {},
        }
    }
}

/// A Matrix user ID (see [`ChannelKind::parse_address`]).
fn parse_matrix_user(address: &str) -> Result<Address, AddressError> {
    let invalid = |why: &str| AddressError::Invalid {
        address: address.to_string(),
        expected: "a Matrix user ID like @nick:fedora.im",
        why: why.to_string(),
    };
    if address.len() > 255 {
        return Err(invalid("longer than 255 bytes"));
    }
    let Some(rest) = address.strip_prefix('@') else {
        return Err(invalid("it starts with @"));
    };
    let Some((local, server)) = rest.split_once(':') else {
        return Err(invalid("no :server after the name"));
    };
    if local.is_empty() {
        return Err(invalid("no name between @ and :"));
    }
    if let Some(c) = local.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(invalid(&format!("{c:?} is not allowed in the name")));
    }
    let (host, port) = match server.rsplit_once(':') {
        // An IPv6 literal holds colons itself: `[::1]:8448`, `[::1]`.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (server, None),
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the server's port is not a number"));
        }
    }
    if host.is_empty() || url::Host::parse(host).is_err() || host.contains('%') {
        return Err(invalid("the server is not a host name"));
    }
    let normalised = format!("@{local}:{}", server.to_lowercase());
    Ok(Address {
        kind: ChannelKind::Matrix,
        key: normalised.clone(),
        normalised,
    })
}

/// An IRC nick or channel on a named network (see [`ChannelKind::parse_address`]).
fn parse_irc_target(address: &str) -> Result<Address, AddressError> {
    let invalid = |why: &str| AddressError::Invalid {
        address: address.to_string(),
        expected: "an IRC nick or channel and its network, like nick@libera or #channel@libera",
        why: why.to_string(),
    };
    let Some((target, network)) = address.rsplit_once('@') else {
        return Err(invalid("no @network after the nick or channel"));
    };
    let network = network.to_ascii_lowercase();
    if network.is_empty()
        || network.len() > 32
        || !network
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            "the network is a configured network's name: letters, digits and -",
        ));
    }
    let special = |c: char| "[]\\`_^{|}".contains(c);
    if target.starts_with(['#', '&']) {
        if target.len() < 2 || target.len() > 50 {
            return Err(invalid("a channel name is 2 to 50 characters"));
        }
        if let Some(c) = target
            .chars()
            .find(|c| c.is_control() || c.is_whitespace() || *c == ',' || *c == ':')
        {
            return Err(invalid(&format!("{c:?} is not allowed in a channel name")));
        }
    } else {
        let mut chars = target.chars();
        match chars.next() {
            None => return Err(invalid("no nick or channel before the @")),
            Some(c) if !(c.is_ascii_alphabetic() || special(c)) => return Err(invalid(
                "a nick starts with a letter or one of [ ] \\ ` _ ^ { | }; a channel with # or &",
            )),
            Some(_) => {}
        }
        if target.len() > 30 {
            return Err(invalid("a nick is at most 30 characters"));
        }
        if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || special(*c) || *c == '-')) {
            return Err(invalid(&format!("{c:?} is not allowed in a nick")));
        }
    }
    Ok(Address {
        kind: ChannelKind::Irc,
        key: format!("{}@{network}", irc_fold(target)),
        normalised: format!("{target}@{network}"),
    })
}

/// `name` folded the way IRC servers compare nicks and channels (RFC 1459 case mapping):
/// ASCII lower case, and `[]\~` as `{}|^`.
pub fn irc_fold(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '[' => '{',
            ']' => '}',
            '\\' => '|',
            '~' => '^',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<ChannelKind, AddressError> {
        ChannelKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| AddressError::UnknownKind(s.to_string()))
    }
}

/// What a destination carries besides its address, per channel kind, stored as JSON with
/// its kind and version in the tag (`{"kind": "email/1"}`): a webhook's secret or a Matrix
/// room go here as new variants, and a changed shape is a new version beside the old one,
/// so stored rows always read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum ChannelSettings {
    /// Email, version 1: nothing to set yet.
    #[serde(rename = "email/1")]
    EmailV1 {},
    /// Webhook, version 1: the secret every delivery is signed with.
    #[serde(rename = "webhook/1")]
    WebhookV1 {
        /// `whsec_` and the base64 of the HMAC key, as Standard Webhooks spells it.
        secret: SigningSecret,
    },
    /// Matrix, version 1: nothing to set (the direct room is found on the homeserver, in
    /// the hub account's `m.direct` list).
    #[serde(rename = "matrix/1")]
    MatrixV1 {},
    /// IRC, version 1: nothing to set (the network is in the address).
    #[serde(rename = "irc/1")]
    IrcV1 {},
    /// Ntfy, version 1: the access token publishing to a protected topic needs, if any.
    #[serde(rename = "ntfy/1")]
    NtfyV1 {
        /// Sent as `Authorization: Bearer <token>`; none for an open topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<AccessToken>,
    },
}

impl ChannelSettings {
    /// The kind these settings belong to.
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelSettings::EmailV1 {} => ChannelKind::Email,
            ChannelSettings::WebhookV1 { .. } => ChannelKind::Webhook,
            ChannelSettings::NtfyV1 { .. } => ChannelKind::Ntfy,
            ChannelSettings::MatrixV1 {} => ChannelKind::Matrix,
            ChannelSettings::IrcV1 {} => ChannelKind::Irc,
        }
    }
}

/// A webhook's signing secret, `whsec_<base64>`: its owner is shown it once, when the
/// destination is added, and it never appears in logs (`Debug` hides it).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// The secret as its owner configures it on their side (`whsec_…`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the bytes the base64 after `whsec_` stands for. `None` if a stored
    /// secret is not of that form.
    pub fn key(&self) -> Option<Vec<u8>> {
        let encoded = self.0.strip_prefix("whsec_")?;
        BASE64.decode(encoded).ok().filter(|key| !key.is_empty())
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(\"whsec_…\")")
    }
}

/// A secret a channel authenticates with on the far end (an ntfy access token, `tk_…`): set
/// by its owner, and never in logs (`Debug` hides it).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AccessToken(String);

impl AccessToken {
    /// A token as its owner gave it, trimmed; `None` when empty, or when it holds anything
    /// but visible ASCII (it goes into an HTTP header as it is).
    pub fn new(token: &str) -> Option<AccessToken> {
        let token = token.trim();
        (!token.is_empty() && token.len() <= 512 && token.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| AccessToken(token.to_string()))
    }

    /// The token, for the request that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(\"…\")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_normalised_and_keyed() {
        let a = ChannelKind::Email.parse_address("  Bob.Smith@Example.ORG ");
        assert_eq!(a.as_ref().map(Address::as_str), Ok("Bob.Smith@example.org"));
        assert_eq!(a.as_ref().map(Address::key), Ok("bob.smith@example.org"));
        for bad in [
            "bob",
            "bob@localhost",
            "\"b o\"@example.org",
            "Bob <bob@example.org>",
            "bob@[127.0.0.1]",
            "@example.org",
        ] {
            assert!(ChannelKind::Email.parse_address(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(ChannelKind::Email.parse_address(&long).is_err());
    }

    #[test]
    fn kinds_and_settings_round_trip() {
        assert_eq!("email".parse::<ChannelKind>(), Ok(ChannelKind::Email));
        assert!("fax".parse::<ChannelKind>().is_err());
        let settings = ChannelKind::Email.new_settings(&[7; 24]);
        let json = serde_json::to_string(&settings).unwrap_or_default();
        assert_eq!(json, r#"{"kind":"email/1"}"#);
        assert_eq!(
            serde_json::from_str::<ChannelSettings>(&json).ok(),
            Some(settings)
        );
        assert!(serde_json::from_str::<ChannelSettings>(r#"{"kind":"email/9"}"#).is_err());
        assert_eq!("webhook".parse::<ChannelKind>(), Ok(ChannelKind::Webhook));
        let settings = ChannelKind::Webhook.new_settings(&[7; 24]);
        let json = serde_json::to_string(&settings).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"kind":"webhook/1","secret":"whsec_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"}"#
        );
        assert_eq!(
            serde_json::from_str::<ChannelSettings>(&json).ok(),
            Some(settings.clone())
        );
        let ChannelSettings::WebhookV1 { secret } = settings else {
            panic!("webhook settings expected");
        };
        assert_eq!(secret.key(), Some(vec![7; 24]));
        assert!(
            !format!("{secret:?}").contains("Bwc"),
            "Debug shows no secret"
        );
    }

    #[test]
    fn webhook_addresses_are_web_urls_normalised() {
        let a =
            ChannelKind::Webhook.parse_address(" HTTPS://Mirror.Example.ORG:443/hook?tree=fedora ");
        assert_eq!(
            a.as_ref().map(Address::as_str),
            Ok("https://mirror.example.org/hook?tree=fedora")
        );
        assert_eq!(
            ChannelKind::Webhook
                .parse_address("http://127.0.0.1:8080")
                .map(Address::into_string),
            Ok("http://127.0.0.1:8080/".to_string())
        );
        for bad in [
            "mirror.example.org/hook",
            "ftp://example.org/",
            "https://user:pw@example.org/",
            "https://example.org/#frag",
            "https://",
            "javascript:alert(1)",
        ] {
            let refused = ChannelKind::Webhook.parse_address(bad);
            assert!(refused.is_err(), "{bad}: {refused:?}");
        }
        assert!(ChannelKind::Webhook
            .parse_address(&format!("https://example.org/{}", "a".repeat(2000)))
            .is_err());
    }

    #[test]
    fn ntfy_addresses_are_topic_urls_normalised() {
        let a = ChannelKind::Ntfy.parse_address(" HTTPS://NTFY.sh:443/My_Topic-1 ");
        assert_eq!(
            a.as_ref().map(Address::as_str),
            Ok("https://ntfy.sh/My_Topic-1")
        );
        assert_eq!(
            a.as_ref().map(Address::key),
            Ok("https://ntfy.sh/My_Topic-1")
        );
        assert_eq!(
            ChannelKind::Ntfy
                .parse_address("http://127.0.0.1:8080/alerts")
                .map(Address::into_string),
            Ok("http://127.0.0.1:8080/alerts".to_string())
        );
        assert!(ChannelKind::Ntfy
            .parse_address(&format!("https://ntfy.sh/{}", "a".repeat(64)))
            .is_ok());
        for bad in [
            "ntfy.sh/mytopic",
            "ftp://ntfy.sh/mytopic",
            "https://ntfy.sh",
            "https://ntfy.sh/",
            "https://ntfy.sh/a/b",
            "https://ntfy.sh/mytopic/",
            "https://ntfy.sh/my.topic",
            "https://ntfy.sh/my%20topic",
            "https://ntfy.sh/mytopic?x=1",
            "https://ntfy.sh/mytopic#frag",
            "https://user:pw@ntfy.sh/mytopic",
            "https:///mytopic",
            "javascript:alert(1)",
        ] {
            let refused = ChannelKind::Ntfy.parse_address(bad);
            assert!(refused.is_err(), "{bad}: {refused:?}");
        }
        assert!(ChannelKind::Ntfy
            .parse_address(&format!("https://ntfy.sh/{}", "a".repeat(65)))
            .is_err());
    }

    #[test]
    fn matrix_user_ids_are_checked_and_their_server_lower_cased() {
        let a = ChannelKind::Matrix.parse_address(" @Bob_1:Fedora.IM ");
        assert_eq!(a.as_ref().map(Address::as_str), Ok("@Bob_1:fedora.im"));
        assert_eq!(a.as_ref().map(Address::key), Ok("@Bob_1:fedora.im"));
        for good in ["@a:localhost:8008", "@x=y/z+1:[::1]:8448", "@n:127.0.0.1"] {
            let parsed = ChannelKind::Matrix.parse_address(good);
            assert!(parsed.is_ok(), "{good}: {parsed:?}");
        }
        for bad in [
            "bob:fedora.im",
            "@bob",
            "@:fedora.im",
            "@bob:",
            "@bo b:fedora.im",
            "@bob:fedora.im:port",
            "@bob:fedora im",
            "!room:fedora.im",
            "#room:fedora.im",
        ] {
            let refused = ChannelKind::Matrix.parse_address(bad);
            assert!(refused.is_err(), "{bad}: {refused:?}");
        }
        let long = format!("@{}:fedora.im", "a".repeat(250));
        assert!(ChannelKind::Matrix.parse_address(&long).is_err());
        assert_eq!(
            ChannelKind::Matrix.new_settings(&[0; 24]).kind(),
            ChannelKind::Matrix
        );
    }

    #[test]
    fn irc_targets_name_a_nick_or_channel_and_a_network() {
        let nick = ChannelKind::Irc.parse_address(" Nirik[m]@Libera ");
        assert_eq!(nick.as_ref().map(Address::as_str), Ok("Nirik[m]@libera"));
        assert_eq!(nick.as_ref().map(Address::key), Ok("nirik{m}@libera"));
        let channel = ChannelKind::Irc.parse_address("#Fedora-Admin@oftc");
        assert_eq!(channel.as_ref().map(Address::key), Ok("#fedora-admin@oftc"));
        assert!(ChannelKind::Irc.parse_address("&local@net-2").is_ok());
        for bad in [
            "nirik",
            "nirik@",
            "@libera",
            "1nick@libera",
            "ni ck@libera",
            "nick@lib era",
            "nick@lib.era",
            "#@libera",
            "#a,b@libera",
            "#a:b@libera",
            "#a\u{7}@libera",
        ] {
            let refused = ChannelKind::Irc.parse_address(bad);
            assert!(refused.is_err(), "{bad}: {refused:?}");
        }
        assert!(ChannelKind::Irc
            .parse_address(&format!("{}@libera", "n".repeat(31)))
            .is_err());
        assert_eq!(irc_fold("A[]\\~"), "a{}|^");
        assert!(ChannelKind::Irc.confirms_by_code());
        assert!(!ChannelKind::Webhook.confirms_by_code());
        let json = serde_json::to_string(&ChannelKind::Irc.new_settings(&[0; 24]));
        assert_eq!(json.ok().as_deref(), Some(r#"{"kind":"irc/1"}"#));
    }

    #[test]
    fn ntfy_settings_round_trip_and_hide_the_token() {
        assert_eq!("ntfy".parse::<ChannelKind>(), Ok(ChannelKind::Ntfy));
        let settings = ChannelKind::Ntfy.new_settings(&[7; 24]);
        assert_eq!(settings, ChannelSettings::NtfyV1 { token: None });
        assert_eq!(settings.kind(), ChannelKind::Ntfy);
        let json = serde_json::to_string(&settings).unwrap_or_default();
        assert_eq!(json, r#"{"kind":"ntfy/1"}"#);
        assert_eq!(
            serde_json::from_str::<ChannelSettings>(&json).ok(),
            Some(settings)
        );
        let settings = ChannelSettings::NtfyV1 {
            token: AccessToken::new(" tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2 "),
        };
        let json = serde_json::to_string(&settings).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"kind":"ntfy/1","token":"tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"}"#
        );
        assert_eq!(
            serde_json::from_str::<ChannelSettings>(&json).ok(),
            Some(settings.clone())
        );
        assert!(
            !format!("{settings:?}").contains("tk_"),
            "Debug shows no token"
        );
        assert!(
            serde_json::from_str::<ChannelSettings>(r#"{"kind":"ntfy/1","secret":"x"}"#).is_err()
        );
        for bad in ["", "   ", "tk_ with space", "tk_é"] {
            assert_eq!(AccessToken::new(bad), None, "{bad:?}");
        }
    }
}
