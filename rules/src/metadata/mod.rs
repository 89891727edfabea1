//! Metadata: what is derived from a message (app, agent, people, packages, summary, link).
//! Computed once at ingest and stored beside the message; predicates read it.
//!
//! The [`Catalog`] holds per-topic entries (data files under `schemas/`, plus an admin's
//! own); topics no entry covers get the generic [`fallback`].

mod catalog;
#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod corpus_tests;
mod expr;
pub mod fallback;
mod filter;
mod source;
mod syntax;
mod template;

pub use catalog::Catalog;
pub use fallback::{app_from_topic, short_topic};
pub use filter::nvr_name;
pub use source::CatalogError;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Message;

/// How much a message matters, as fedora-messaging grades it (10/20/30/40).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// 10
    Debug,
    /// 20, the default.
    #[default]
    Info,
    /// 30
    Warning,
    /// 40
    Error,
}

impl Severity {
    /// The fedora-messaging level (10, 20, 30, 40) as a severity; other numbers are refused.
    pub fn from_level(level: i64) -> Option<Severity> {
        match level {
            10 => Some(Severity::Debug),
            20 => Some(Severity::Info),
            30 => Some(Severity::Warning),
            40 => Some(Severity::Error),
            _ => None,
        }
    }

    /// The severity's name as written in conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// Parses a name as written in conditions.
    pub fn parse(name: &str) -> Option<Severity> {
        [
            Severity::Debug,
            Severity::Info,
            Severity::Warning,
            Severity::Error,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What Tidings knows about a message beyond its raw body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The message's topic.
    pub topic: String,
    /// The application that sent it (`bodhi`, `buildsys`, …).
    pub app: Option<String>,
    /// Who acted.
    pub agent: Option<String>,
    /// People the message concerns.
    pub usernames: BTreeSet<String>,
    /// Packages the message concerns.
    pub packages: BTreeSet<String>,
    /// Groups the message concerns.
    pub groups: BTreeSet<String>,
    /// How much it matters.
    pub severity: Severity,
    /// One line a person can read.
    pub summary: String,
    /// Where to read more.
    pub url: Option<String>,
    /// Objects (paths) the message is about.
    pub objects: Vec<String>,
    /// The event's own words, for a notification's body: a comment's text, a build's state
    /// and log link (the catalog's `details`; at most [`MAX_DETAILS`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

/// The most of a message's `details` kept.
pub const MAX_DETAILS: usize = 4000;

impl Metadata {
    /// Generic metadata for any message, without a catalog: the app from the topic, people
    /// from common fields, a summary from the topic, plus AMQP header flags.
    /// [`Catalog::derive`] refines this per topic.
    pub fn derive(message: &Message) -> Metadata {
        let mut meta = fallback::generic(message);
        fallback::apply_headers(message, &mut meta);
        meta
    }

    /// The web link, if it is one (`https://` or `http://`: a `javascript:` or `data:` URL
    /// from a message never becomes a link).
    pub fn web_url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    }

    /// What the message is about: its web link without a `#fragment` (an update's, a pull
    /// request's, a build's page; a fragment points at a comment in it), or else its first
    /// object.
    pub fn object(&self) -> Option<&str> {
        self.web_url()
            .map(|u| u.split('#').next().unwrap_or(u))
            .or_else(|| self.objects.first().map(String::as_str))
    }

    /// The key every message about one object shares, whichever app sent it from which
    /// topic: the app and the [`Metadata::object`]. Mail threads on it; people mute it.
    pub fn thread(&self) -> Option<String> {
        Some(format!(
            "{}|{}",
            self.app.as_deref().unwrap_or_default(),
            self.object()?
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_fallback_finds_app_and_people() {
        let m = Message::new(
            "1",
            "org.fedoraproject.prod.git.mass_branch.complete",
            serde_json::json!({"agent": "dgilmore"}),
        );
        let meta = Metadata::derive(&m);
        assert_eq!(meta.app.as_deref(), Some("git"));
        assert_eq!(meta.agent.as_deref(), Some("dgilmore"));
        assert!(meta.usernames.contains("dgilmore"));
        assert_eq!(meta.summary, "dgilmore: git.mass_branch.complete");
    }
}
