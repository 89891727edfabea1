//! Ownership announcements on the bus: a forge adding a user to a package, an account
//! system sponsoring someone into a group. The matching loop applies them to the store in
//! message order, before matching the message itself, so the message that makes you an
//! owner already matches your `$my_packages` filters.
//!
//! What counts as an announcement, and where its names are, is the [`ANNOUNCEMENTS`] table
//! (documented in docs/filters.md). Applying one twice changes nothing, so a message
//! matched again after a crash is harmless.

use serde_json::Value;
use tidings_rules::Message;
use tidings_store::{Owner, OwnerKind, Store, StoreError};

use crate::NotifierError;

/// What an announcement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The names (users or groups) become owners of the package.
    AddOwner(OwnerKind),
    /// The names stop owning the package.
    RemoveOwner(OwnerKind),
    /// The names (users) join the group.
    AddMember,
    /// The names (users) leave the group.
    RemoveMember,
}

/// One kind of announcement. Paths are dotted keys into the body; `a|b` tries `a`, then
/// `b` (fedmsg-era and fedora-messaging-era bodies differ).
#[derive(Debug, Clone, Copy)]
pub struct Announcement {
    /// The topic after `<prefix>.<env>.`, e.g. `pagure.project.user.added`.
    pub event: &'static str,
    /// What it does.
    pub action: Action,
    /// Where the package (owner actions) or group (member actions) is.
    pub target: &'static str,
    /// Where the user or group names are: a string or a list of strings.
    pub names: &'static str,
    /// Body fields that must hold one of the listed values for the entry to apply.
    pub when: &'static [(&'static str, &'static [&'static str])],
    /// Names that stand for nobody (pkgdb's `orphan`).
    pub ignore: &'static [&'static str],
}

const fn entry(
    event: &'static str,
    action: Action,
    target: &'static str,
    names: &'static str,
) -> Announcement {
    Announcement {
        event,
        action,
        target,
        names,
        when: &[],
        ignore: &[],
    }
}

/// pkgdb ACLs that make someone a maintainer (the watch ACLs do not).
const MAINTAINER_ACLS: &[&str] = &["commit", "approveacls"];

/// Every announcement Tidings applies.
pub const ANNOUNCEMENTS: &[Announcement] = &[
    // Pagure and dist-git (src.fedoraproject.org): a project is a package.
    entry(
        "pagure.project.user.added",
        Action::AddOwner(OwnerKind::User),
        "project.name",
        "new_user",
    ),
    entry(
        "pagure.project.user.access.updated",
        Action::AddOwner(OwnerKind::User),
        "project.name",
        "new_user",
    ),
    entry(
        "pagure.project.user.removed",
        Action::RemoveOwner(OwnerKind::User),
        "project.name",
        "removed_user",
    ),
    entry(
        "pagure.project.group.added",
        Action::AddOwner(OwnerKind::Group),
        "project.name",
        "new_group",
    ),
    entry(
        "pagure.project.group.access.updated",
        Action::AddOwner(OwnerKind::Group),
        "project.name",
        "new_group",
    ),
    entry(
        "pagure.project.group.removed",
        Action::RemoveOwner(OwnerKind::Group),
        "project.name",
        "removed_groups",
    ),
    // pkgdb (fedmsg era): a new point of contact, and maintainer ACLs granted or taken.
    Announcement {
        ignore: &["orphan"],
        ..entry(
            "pkgdb.owner.update",
            Action::AddOwner(OwnerKind::User),
            "package_listing.package.name",
            "package_listing.point_of_contact",
        )
    },
    Announcement {
        when: &[("acl", MAINTAINER_ACLS), ("status", &["Approved"])],
        ..entry(
            "pkgdb.acl.update",
            Action::AddOwner(OwnerKind::User),
            "package_listing.package.name",
            "username",
        )
    },
    Announcement {
        when: &[
            ("acl", MAINTAINER_ACLS),
            ("status", &["Obsolete", "Removed", "Denied"]),
        ],
        ..entry(
            "pkgdb.acl.update",
            Action::RemoveOwner(OwnerKind::User),
            "package_listing.package.name",
            "username",
        )
    },
    // The account system: fedmsg-era FAS, then Noggin (fedora-messaging).
    entry(
        "fas.group.member.sponsor",
        Action::AddMember,
        "group.name|msg.group",
        "user.username|msg.user",
    ),
    entry(
        "fas.group.member.remove",
        Action::RemoveMember,
        "group.name|msg.group",
        "user.username|msg.user",
    ),
];

/// The topic without `<prefix>.<env>.`: `org.fedoraproject.prod.pkgdb.owner.update` →
/// `pkgdb.owner.update`.
fn event(topic: &str) -> Option<&str> {
    topic.splitn(4, '.').nth(3)
}

/// Whether any entry of the table is about this topic (a cheap check per message).
pub fn is_announcement(topic: &str) -> bool {
    event(topic).is_some_and(|e| ANNOUNCEMENTS.iter().any(|a| a.event == e))
}

fn lookup<'a>(body: &'a Value, paths: &str) -> Option<&'a Value> {
    paths.split('|').find_map(|path| {
        path.split('.').try_fold(body, |value, key| match value {
            Value::Object(map) => map.get(key),
            Value::Array(items) => items.get(key.parse::<usize>().ok()?),
            _ => None,
        })
    })
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// One change an announcement asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    /// Add an owner to a package.
    AddOwner(String, Owner),
    /// Remove an owner from a package.
    RemoveOwner(String, Owner),
    /// Add a user to a group.
    AddMember(String, String),
    /// Remove a user from a group.
    RemoveMember(String, String),
}

/// The changes a message announces; empty when it announces none.
pub fn changes(message: &Message) -> Vec<OwnershipChange> {
    let Some(event) = event(&message.topic) else {
        return Vec::new();
    };
    let body = &message.body;
    let mut out = Vec::new();
    for a in ANNOUNCEMENTS.iter().filter(|a| a.event == event) {
        let applies = a.when.iter().all(|(path, values)| {
            lookup(body, path)
                .and_then(Value::as_str)
                .is_some_and(|v| values.contains(&v))
        });
        let Some(target) = lookup(body, a.target).and_then(Value::as_str) else {
            continue;
        };
        if !applies {
            continue;
        }
        for name in strings(lookup(body, a.names)) {
            if a.ignore.contains(&name) {
                continue;
            }
            let (target, name) = (target.to_string(), name.to_string());
            out.push(match a.action {
                Action::AddOwner(kind) => OwnershipChange::AddOwner(target, owner(kind, name)),
                Action::RemoveOwner(kind) => {
                    OwnershipChange::RemoveOwner(target, owner(kind, name))
                }
                Action::AddMember => OwnershipChange::AddMember(target, name),
                Action::RemoveMember => OwnershipChange::RemoveMember(target, name),
            });
        }
    }
    out
}

fn owner(kind: OwnerKind, name: String) -> Owner {
    Owner { kind, name }
}

/// Applies what a message announces. Returns how many changes were applied. A name the
/// store refuses (a malformed username, say) is logged and skipped: a bad announcement
/// must not stop the bus; database failures are returned, so the message is retried.
pub async fn apply(store: &Store, message: &Message) -> Result<usize, NotifierError> {
    let mut applied = 0;
    for change in changes(message) {
        let result = match &change {
            OwnershipChange::AddOwner(package, owner) => {
                store.add_package_owner(package, owner).await.map(|_| ())
            }
            OwnershipChange::RemoveOwner(package, owner) => {
                store.remove_package_owner(package, owner).await.map(|_| ())
            }
            OwnershipChange::AddMember(group, user) => {
                store.add_group_member(group, user).await.map(|_| ())
            }
            OwnershipChange::RemoveMember(group, user) => {
                store.remove_group_member(group, user).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => {
                applied += 1;
                tracing::info!(message = %message.id, ?change, "ownership changed by the bus");
            }
            Err(StoreError::Invalid { field, reason }) => {
                tracing::warn!(message = %message.id, field, %reason, "ownership announcement skipped");
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn corpus(topic: &str) -> Vec<Message> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../corpus/fedmsg-meta/messages.jsonl"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("the corpus must be at {path} (see corpus/README.md): {e}"));
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["message"]["topic"] == topic)
            .map(|l| {
                Message::new(
                    l["message"]["msg_id"].as_str().unwrap_or("x"),
                    topic,
                    l["message"]["msg"].clone(),
                )
            })
            .collect()
    }

    fn user(package: &str, name: &str) -> OwnershipChange {
        OwnershipChange::AddOwner(package.into(), Owner::user(name))
    }

    #[test]
    fn reads_the_corpus_shapes() {
        let cases: &[(&str, Vec<OwnershipChange>)] = &[
            (
                "io.pagure.dev.pagure.project.user.added",
                vec![user("foo", "ralph")],
            ),
            (
                "io.pagure.dev.pagure.project.user.access.updated",
                vec![user("foo", "ralph")],
            ),
            (
                "io.pagure.dev.pagure.project.user.removed",
                vec![OwnershipChange::RemoveOwner(
                    "pingoutest".into(),
                    Owner::user("ralph"),
                )],
            ),
            (
                "io.pagure.dev.pagure.project.group.added",
                vec![OwnershipChange::AddOwner(
                    "foo".into(),
                    Owner::group("awesome"),
                )],
            ),
            (
                "org.fedoraproject.stg.fas.group.member.sponsor",
                vec![OwnershipChange::AddMember(
                    "ambassadors".into(),
                    "ralph".into(),
                )],
            ),
            // Applying for membership is not membership.
            ("org.fedoraproject.stg.fas.group.member.apply", vec![]),
            // The point of contact became "orphan": nobody to add.
            ("org.fedoraproject.stg.pkgdb.owner.update", vec![]),
            // watchbugzilla, awaiting review: neither maintainer nor decided.
            ("org.fedoraproject.stg.pkgdb.acl.update", vec![]),
        ];
        for (topic, expected) in cases {
            let messages = corpus(topic);
            assert!(
                !messages.is_empty(),
                "no corpus message has the topic {topic}"
            );
            for message in messages {
                assert_eq!(&changes(&message), expected, "{topic}");
            }
        }
    }

    #[test]
    fn acl_grants_and_removals_and_noggin_bodies() {
        let acl = |acl: &str, status: &str| {
            Message::new(
                "m",
                "org.fedoraproject.prod.pkgdb.acl.update",
                serde_json::json!({"acl": acl, "status": status, "username": "ralph",
                    "package_listing": {"package": {"name": "python-sh"}}}),
            )
        };
        assert_eq!(
            changes(&acl("commit", "Approved")),
            [user("python-sh", "ralph")]
        );
        assert_eq!(
            changes(&acl("approveacls", "Obsolete")),
            [OwnershipChange::RemoveOwner(
                "python-sh".into(),
                Owner::user("ralph")
            )]
        );
        assert!(changes(&acl("watchcommits", "Approved")).is_empty());

        let noggin = Message::new(
            "n",
            "org.fedoraproject.prod.fas.group.member.remove",
            serde_json::json!({"msg": {"agent": "admin", "group": "sysadmin", "user": "bob"}}),
        );
        assert_eq!(
            changes(&noggin),
            [OwnershipChange::RemoveMember(
                "sysadmin".into(),
                "bob".into()
            )]
        );
        let groups_removed = Message::new(
            "g",
            "org.fedoraproject.prod.pagure.project.group.removed",
            serde_json::json!({"project": {"name": "kernel"}, "removed_groups": ["a", "b"]}),
        );
        assert_eq!(changes(&groups_removed).len(), 2);
        assert!(is_announcement("org.fedoraproject.prod.pkgdb.owner.update"));
        assert!(!is_announcement(
            "org.fedoraproject.prod.buildsys.build.state.change"
        ));
        assert!(!is_announcement("pkgdb.owner.update"));
    }
}
