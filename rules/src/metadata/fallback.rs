//! What every message gets without a catalog entry, and what the transport adds to any
//! entry: the generic fallback (app from the topic, people from common fields, a summary
//! from the topic) and fedora-messaging's AMQP header flags.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{Metadata, Severity};
use crate::Message;

/// Body fields that commonly name a person, for topics without a catalog entry.
const USER_FIELDS: [&str; 6] = ["agent", "user", "username", "owner", "submitter", "actor"];
/// Body fields that commonly name a package.
const PACKAGE_FIELDS: [&str; 2] = ["package", "packages"];

/// How many leading topic segments are `prefix.env`: fedmsg topics look like
/// `org.fedoraproject.prod.bodhi.update.comment` (3); a topic with fewer than five segments
/// (`fedoracollege.media.upload`) is taken to carry no prefix.
pub fn prefix_len(segment_count: usize) -> usize {
    if segment_count >= 5 {
        3
    } else {
        0
    }
}

/// `org.fedoraproject.prod.bodhi.update.comment` → `bodhi`.
pub fn app_from_topic(topic: &str) -> Option<String> {
    let n = prefix_len(topic.split('.').count());
    topic
        .split('.')
        .nth(n)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `org.fedoraproject.prod.bodhi.update.comment` → `bodhi.update.comment`.
pub fn short_topic(topic: &str) -> &str {
    let n = prefix_len(topic.split('.').count());
    let mut rest = topic;
    for _ in 0..n {
        match rest.split_once('.') {
            Some((_, tail)) => rest = tail,
            None => return topic,
        }
    }
    rest
}

/// Generic metadata: see the module documentation.
pub fn generic(message: &Message) -> Metadata {
    let body = &message.body;
    let agent = generic_agent(body);
    let summary = generic_summary(&message.topic, agent.as_deref());
    Metadata {
        topic: message.topic.clone(),
        app: app_from_topic(&message.topic),
        agent,
        usernames: generic_usernames(body),
        packages: generic_packages(body),
        summary,
        ..Metadata::default()
    }
}

/// The generic people: common user fields of the body, and of its objects one level down.
pub(super) fn generic_usernames(body: &Value) -> BTreeSet<String> {
    let mut usernames = BTreeSet::new();
    people_in(body, &mut usernames);
    // One level down too: `{"comment": {"user": {"name": "bob"}}}`.
    if let Value::Object(map) = body {
        for value in map.values().filter(|v| v.is_object()) {
            people_in(value, &mut usernames);
        }
    }
    usernames
}

/// The generic packages: the body's `package`/`packages` fields.
pub(super) fn generic_packages(body: &Value) -> BTreeSet<String> {
    let mut packages = BTreeSet::new();
    for field in PACKAGE_FIELDS {
        match body.get(field) {
            Some(Value::Array(items)) => items.iter().filter_map(name_of).for_each(|p| {
                packages.insert(p.to_string());
            }),
            Some(value) => {
                packages.extend(name_of(value).map(str::to_string));
            }
            None => {}
        }
    }
    packages
}

/// The generic agent: the first of the body's `agent`, `user`, `username`, lower-cased.
pub(super) fn generic_agent(body: &Value) -> Option<String> {
    ["agent", "user", "username"]
        .iter()
        .find_map(|f| body.get(*f).and_then(name_of))
        .map(str::to_lowercase)
}

/// The generic summary: `agent: short.topic`, or the short topic alone.
pub(super) fn generic_summary(topic: &str, agent: Option<&str>) -> String {
    let short = short_topic(topic);
    match agent {
        Some(agent) => format!("{agent}: {short}"),
        None => short.to_string(),
    }
}

fn people_in(value: &Value, out: &mut BTreeSet<String>) {
    let Value::Object(map) = value else {
        return;
    };
    for field in USER_FIELDS {
        if let Some(name) = map.get(field).and_then(name_of) {
            if name
                .bytes()
                .any(|b| !b.is_ascii() || b.is_ascii_uppercase())
            {
                out.insert(name.to_lowercase());
            } else if !out.contains(name) {
                out.insert(name.to_string());
            }
        }
    }
}

/// A name from a string, or from an object's `name`/`username`.
fn name_of(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => Some(s),
        Value::Object(map) => map
            .get("name")
            .or_else(|| map.get("username"))
            .and_then(name_of),
        _ => None,
    }
}

const USER_FLAG: &str = "fedora_messaging_user_";
const RPM_FLAG: &str = "fedora_messaging_rpm_";
const GROUP_FLAG: &str = "fedora_messaging_group_";
const SEVERITY: &str = "fedora_messaging_severity";
/// Flags of dist-git's other namespaces, and the namespace their packages are named in
/// (`modules/php`, so that `rpms/php`, the bare `php`, is not confused with it).
const NAMESPACED: [(&str, &str); 3] = [
    ("fedora_messaging_module_", "modules"),
    ("fedora_messaging_container_", "container"),
    ("fedora_messaging_flatpak_", "flatpaks"),
];

/// Adds what fedora-messaging publishers declare in AMQP headers: `fedora_messaging_user_*`,
/// `…_rpm_*`, `…_group_*`, `…_module_*`, `…_container_*`, `…_flatpak_*` flags (any value but `false`/`null` counts) and the severity,
/// which wins over the catalog's because the publisher knows best.
pub fn apply_headers(message: &Message, meta: &mut Metadata) {
    for (key, value) in &message.headers {
        if !key.starts_with("fedora_messaging_") {
            continue;
        }
        if key == SEVERITY {
            if let Some(severity) = value.as_i64().and_then(Severity::from_level) {
                meta.severity = severity;
            }
            continue;
        }
        if matches!(value, Value::Bool(false) | Value::Null) {
            continue;
        }
        let flag = |prefix: &str| key.strip_prefix(prefix).filter(|n| !n.is_empty());
        if let Some(name) = flag(USER_FLAG) {
            // `None` is Python's missing user written into the header's name by a class.
            if name != "None" {
                meta.usernames.insert(name.to_string());
            }
        } else if let Some(name) = flag(RPM_FLAG) {
            meta.packages.insert(name.to_string());
        } else if let Some(name) = flag(GROUP_FLAG) {
            meta.groups.insert(name.to_string());
        } else if let Some((namespace, name)) = NAMESPACED
            .iter()
            .find_map(|(prefix, namespace)| Some((namespace, flag(prefix)?)))
        {
            // Other dist-git namespaces' packages, named as ownership names them.
            meta.packages.insert(format!("{namespace}/{name}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topics_with_and_without_prefix() {
        assert_eq!(
            app_from_topic("org.fedoraproject.prod.bodhi.update.comment").as_deref(),
            Some("bodhi")
        );
        assert_eq!(
            short_topic("org.fedoraproject.prod.git.branch"),
            "git.branch"
        );
        assert_eq!(
            short_topic("fedoracollege.media.upload"),
            "fedoracollege.media.upload"
        );
        assert_eq!(
            app_from_topic("fedoracollege.media.upload").as_deref(),
            Some("fedoracollege")
        );
        assert_eq!(app_from_topic(""), None);
    }

    #[test]
    fn generic_finds_nested_people_and_packages() {
        let m = Message::new(
            "1",
            "org.example.prod.newapp.thing.happened",
            json!({"comment": {"user": {"name": "Bob"}}, "owner": "carol", "package": {"name": "nethack"}}),
        );
        let meta = generic(&m);
        assert_eq!(meta.app.as_deref(), Some("newapp"));
        assert_eq!(meta.usernames.iter().collect::<Vec<_>>(), ["bob", "carol"]);
        assert!(meta.packages.contains("nethack"));
        assert_eq!(meta.summary, "newapp.thing.happened");
    }

    #[test]
    fn amqp_header_flags_count() {
        let mut m = Message::new("1", "org.fedoraproject.prod.x.y", json!({}));
        for (k, v) in [
            ("fedora_messaging_user_alice", json!(true)),
            ("fedora_messaging_user_bob", json!(false)),
            ("fedora_messaging_rpm_nethack", json!(true)),
            ("fedora_messaging_group_infra", json!(true)),
            ("fedora_messaging_severity", json!(40)),
            ("fedora_messaging_user_", json!(true)),
            ("fedora_messaging_user_None", json!(true)),
            ("fedora_messaging_module_php", json!(true)),
            ("fedora_messaging_container_php", json!(true)),
            ("fedora_messaging_flatpak_firefox", json!(true)),
        ] {
            m.headers.insert(k.to_string(), v);
        }
        let mut meta = generic(&m);
        apply_headers(&m, &mut meta);
        assert_eq!(meta.usernames.iter().collect::<Vec<_>>(), ["alice"]);
        assert_eq!(
            meta.packages.iter().collect::<Vec<_>>(),
            [
                "container/php",
                "flatpaks/firefox",
                "modules/php",
                "nethack"
            ]
        );
        assert_eq!(meta.groups.iter().collect::<Vec<_>>(), ["infra"]);
        assert_eq!(meta.severity, Severity::Error);
    }
}
