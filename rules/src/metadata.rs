//! Metadata: what is derived from a message (app, agent, people, packages, summary, link).
//! Computed once at ingest and stored beside the message; predicates read it.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

/// Body fields that commonly name a person, for topics without a catalog entry.
const USER_FIELDS: [&str; 6] = ["agent", "user", "username", "owner", "submitter", "actor"];

impl Metadata {
    /// Generic metadata for any message: the app from the topic, people from common fields,
    /// a summary from the topic. The schema catalog refines this per topic.
    pub fn derive(message: &Message) -> Metadata {
        let app = app_from_topic(&message.topic);
        let mut usernames = BTreeSet::new();
        for field in USER_FIELDS {
            if let Some(name) = message.body.get(field).and_then(person_name) {
                usernames.insert(name);
            }
        }
        let agent = message.body.get("agent").and_then(person_name);
        let short = short_topic(&message.topic);
        let summary = match &agent {
            Some(agent) => format!("{agent}: {short}"),
            None => short.to_string(),
        };
        Metadata {
            topic: message.topic.clone(),
            app,
            agent,
            usernames,
            summary,
            ..Metadata::default()
        }
    }
}

fn person_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.to_lowercase()),
        Value::Object(map) => map
            .get("name")
            .or_else(|| map.get("username"))
            .and_then(person_name),
        _ => None,
    }
}

/// `org.fedoraproject.prod.bodhi.update.comment` → `bodhi`.
pub fn app_from_topic(topic: &str) -> Option<String> {
    topic.split('.').nth(3).map(str::to_string)
}

/// `org.fedoraproject.prod.bodhi.update.comment` → `bodhi.update.comment`.
pub fn short_topic(topic: &str) -> &str {
    let mut rest = topic;
    for _ in 0..3 {
        match rest.split_once('.') {
            Some((_, tail)) => rest = tail,
            None => return topic,
        }
    }
    rest
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
