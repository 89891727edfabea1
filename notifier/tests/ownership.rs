//! Issue 4: `$my_packages` follows ownership incrementally. An import, a removal and a bus
//! announcement each reach the match index through `Matcher::refresh` (the change log),
//! never through a rebuild.

use std::sync::Arc;

use tidings_notifier::matcher::Matcher;
use tidings_notifier::Metrics;
use tidings_rules::{Message, Metadata};
use tidings_store::{ImportMode, Owner, OwnershipData, StoredMessage};

use crate::support::{store, subscriber};

/// A koji build of `package`, as the matcher sees it (metadata already derived).
fn build(id: &str, package: &str) -> StoredMessage {
    let topic = "org.fedoraproject.prod.buildsys.build.state.change";
    StoredMessage {
        id: 1,
        message: Message::new(id, topic, serde_json::json!({"name": package})),
        metadata: Metadata {
            topic: topic.into(),
            packages: [package.to_string()].into(),
            ..Metadata::default()
        },
        source: "test".into(),
        received_at: 0,
    }
}

fn destinations(matcher: &Matcher, message: &StoredMessage) -> Vec<i64> {
    matcher
        .notifications(message)
        .into_iter()
        .map(|n| n.destination_id)
        .collect()
}

#[tokio::test]
async fn my_packages_follows_imports_and_removals_through_refresh() {
    let (_dir, store) = store().await;
    let (_, alice_dest) = subscriber(&store, "alice", "packages has $my_packages").await;
    let (_, bob_dest) = subscriber(&store, "bob", "packages has $my_packages").await;
    let mut matcher = Matcher::load(&store, Arc::new(Metrics::default()))
        .await
        .expect("load");
    let kernel = build("b1", "kernel");
    assert!(
        destinations(&matcher, &kernel).is_empty(),
        "nobody owns it yet"
    );

    let data = OwnershipData::from_json(
        r#"{"groups": {"kernel-maint": ["bob"]},
            "packages": {"kernel": {"users": ["alice"], "groups": ["kernel-maint"]}}}"#,
    )
    .expect("data");
    store
        .import_ownership(&data, ImportMode::Merge)
        .await
        .expect("import");
    assert!(
        destinations(&matcher, &kernel).is_empty(),
        "the index changes only on refresh"
    );
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(destinations(&matcher, &kernel), vec![alice_dest, bob_dest]);

    // alice stops owning it; bob still owns it through his group.
    let affected = store
        .remove_package_owner("kernel", &Owner::user("alice"))
        .await
        .expect("remove");
    assert_eq!(affected.len(), 1);
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(destinations(&matcher, &kernel), vec![bob_dest]);

    store
        .remove_group_member("kernel-maint", "bob")
        .await
        .expect("leave");
    matcher.refresh(&store).await.expect("refresh");
    assert!(destinations(&matcher, &kernel).is_empty());
}

#[tokio::test]
async fn a_bus_announcement_applies_before_the_messages_after_it() {
    let (_dir, store) = store().await;
    let (alice, _) = subscriber(&store, "alice", "packages has $my_packages").await;
    let mut matcher = Matcher::load(&store, Arc::new(Metrics::default()))
        .await
        .expect("load");
    let insert = |message: Message, packages: &[&str]| {
        let metadata = Metadata {
            topic: message.topic.clone(),
            packages: packages.iter().map(|p| p.to_string()).collect(),
            summary: message.id.clone(),
            ..Metadata::default()
        };
        let store = store.clone();
        async move {
            store
                .insert_message(&message, &metadata, "test")
                .await
                .expect("insert")
        }
    };
    // Built before the announcement: alice owns nothing yet.
    insert(build("before", "tidings").message, &["tidings"]).await;
    insert(
        Message::new(
            "grant",
            "org.fedoraproject.prod.pagure.project.user.added",
            serde_json::json!({"agent": "admin", "new_user": "alice", "access": "commit",
                "project": {"name": "tidings", "namespace": "rpms"}}),
        ),
        &[],
    )
    .await;
    insert(build("after", "tidings").message, &["tidings"]).await;
    insert(
        Message::new(
            "revoke",
            "org.fedoraproject.prod.pagure.project.user.removed",
            serde_json::json!({"agent": "admin", "removed_user": "alice",
                "project": {"name": "tidings", "namespace": "rpms"}}),
        ),
        &[],
    )
    .await;
    insert(build("gone", "tidings").message, &["tidings"]).await;

    // At shutdown the matcher stops between batches: nothing is matched once it is told
    // to stop, and what is left stays unprocessed for the next start.
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    let stopped = matcher.drain_until(&store, 1, &stop).await.expect("drain");
    assert_eq!(stopped, 0, "stopped before the first batch");
    assert_eq!(store.message_counts().await.expect("counts"), (5, 0));

    assert_eq!(matcher.drain(&store, 100).await.expect("drain"), 5);
    let sent: Vec<String> = store
        .notifications(alice, 10)
        .await
        .expect("notifications")
        .into_iter()
        .map(|n| n.summary)
        .collect();
    assert_eq!(sent, vec!["after".to_string()], "in bus order");
    assert!(store
        .package_owners("tidings")
        .await
        .expect("owners")
        .is_empty());
}
