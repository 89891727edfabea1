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

use email_address::EmailAddress;

/// A kind of delivery channel. Adding one (IRC, Matrix, webhook, ntfy) is a variant here
/// with its address rule, a settings variant in [`ChannelSettings`], and a transport module
/// in the notifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Email, by SMTP or to the local mailbox folder.
    Email,
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
    #[error("unknown channel {0:?}; expected one of: email")]
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
    pub const ALL: [ChannelKind; 1] = [ChannelKind::Email];

    /// The name stored, shown and used as the config section (`[channels.<name>]`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
        }
    }

    /// Checks an address for this kind and returns the form that is stored. Email:
    /// trimmed, the domain lower-cased, the local part as typed. Only plain addresses
    /// (`name@example.org`) pass: no display names, quoted local parts, domain literals or
    /// single-label domains, so that whatever is accepted here the mailer accepts too. The
    /// key is the whole address lower-cased, since mail providers treat the local part
    /// case-insensitively and `Bob@` and `bob@` reach the same person.
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
        }
    }

    /// The settings a new destination of this kind starts with.
    pub fn default_settings(self) -> ChannelSettings {
        match self {
            ChannelKind::Email => ChannelSettings::EmailV1 {},
        }
    }
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
}

impl ChannelSettings {
    /// The kind these settings belong to.
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelSettings::EmailV1 {} => ChannelKind::Email,
        }
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
        let settings = ChannelKind::Email.default_settings();
        let json = serde_json::to_string(&settings).unwrap_or_default();
        assert_eq!(json, r#"{"kind":"email/1"}"#);
        assert_eq!(
            serde_json::from_str::<ChannelSettings>(&json).ok(),
            Some(settings)
        );
        assert!(serde_json::from_str::<ChannelSettings>(r#"{"kind":"email/9"}"#).is_err());
    }
}
