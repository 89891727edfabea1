//! Issue 8 item 2: one user's unreadable filter stopped the matcher's start-up and every
//! refresh after it, for everyone, retrying forever. Now the matcher quarantines it (in
//! the store, so it stays out after a restart), counts it once, and matches everyone
//! else's messages as before.

use std::sync::Arc;

use sqlx::{Connection as _, Executor as _};
use tidings_notifier::matcher::Matcher;
use tidings_notifier::Metrics;
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{
    ChannelKind, Delivery, Filter, FilterInput, NewDestination, Store, StoreError, StoredMessage,
};

use crate::support::{database_url, store as fresh_store, subscriber};

/// Writes straight to the database, as an older version or a hand would.
async fn raw(dir: &tempfile::TempDir, sql: &str) {
    let mut conn = sqlx::SqliteConnection::connect(&database_url(dir))
        .await
        .expect("connect");
    conn.execute(sql).await.expect(sql);
}

/// An account with a confirmed address and a filter on every `org.test` topic: its
/// destination and its filter.
async fn subscribed(store: &Store, name: &str) -> (i64, Filter) {
    let (user, destination) = subscriber(store, name, r#"topic ~ "org.test.**""#).await;
    let mut filters = store.filters(user).await.expect("filters").filters;
    (destination, filters.remove(0))
}

fn message() -> StoredMessage {
    let topic = "org.test.prod.app.event";
    StoredMessage {
        id: 1,
        message: Message::new("m-1", topic, serde_json::json!({})),
        metadata: Metadata {
            topic: topic.into(),
            ..Metadata::default()
        },
        source: "test".into(),
        received_at: 0,
    }
}

fn destinations(matcher: &Matcher) -> Vec<i64> {
    matcher
        .notifications(&message())
        .into_iter()
        .map(|n| n.destination_id)
        .collect()
}

fn quarantined(metrics: &Metrics) -> u64 {
    metrics.quarantined.get()
}

#[tokio::test]
async fn an_unreadable_filter_is_quarantined_and_everyone_else_matches() {
    let (dir, store) = fresh_store().await;
    let store = &store;
    let (alice, _) = subscribed(store, "alice").await;
    let (mallory, mallorys) = subscribed(store, "mallory").await;
    let (bob, bobs) = subscribed(store, "bob").await;
    // Nested past serde_json's recursion limit: what the old parser let through.
    let deep = "{\"not\":".repeat(200) + "{\"topic_is\":\"a\"}" + &"}".repeat(200);
    raw(
        &dir,
        &format!(
            "UPDATE filters SET condition = '{deep}' WHERE id = {}",
            mallorys.id
        ),
    )
    .await;

    // Start-up goes through: mallory's filter is set aside, everyone else matches.
    let metrics = Arc::new(Metrics::default());
    let mut matcher = Matcher::load(store, metrics.clone()).await.expect("load");
    assert_eq!(destinations(&matcher), [alice, bob]);
    assert_eq!(quarantined(&metrics), 1);
    match store.filter(mallorys.user_id, mallorys.id).await {
        Err(StoreError::UnreadableFilter(u)) => {
            let q = u.quarantine.expect("quarantined in the store");
            assert!(q.reason.contains("nest deeper than 48 levels"), "{q:?}");
        }
        other => panic!("expected an unreadable filter, got {other:?}"),
    }
    assert!(destinations(&matcher).iter().all(|d| *d != mallory));

    // A refresh that meets a bad row (bob's, broken by hand) goes through too.
    raw(
        &dir,
        &format!(
            "UPDATE filters SET delivery = 'weekly' WHERE id = {}",
            bobs.id
        ),
    )
    .await;
    store
        .add_destination(NewDestination {
            user_id: bobs.user_id,
            channel: ChannelKind::Email,
            address: "bob@elsewhere.example.org",
            confirmed: true,
        })
        .await
        .expect("a change for bob");
    matcher.refresh(store).await.expect("refresh");
    assert_eq!(destinations(&matcher), [alice]);
    assert_eq!(quarantined(&metrics), 2);

    // A restart keeps both out, and does not count them again.
    let metrics = Arc::new(Metrics::default());
    let mut matcher = Matcher::load(store, metrics.clone()).await.expect("reload");
    assert_eq!(destinations(&matcher), [alice]);
    assert_eq!(quarantined(&metrics), 0);
    assert_eq!(store.quarantined_filters().await.expect("list").len(), 2);

    // Mallory saves a new condition: the quarantine is lifted and her filter matches.
    store
        .update_filter(
            mallorys.user_id,
            mallorys.id,
            &FilterInput {
                name: "mine".into(),
                condition: Condition::parse(r#"topic ~ "org.**""#).expect("condition"),
                destination_ids: vec![mallory],
                delivery: Delivery::Instant,
                enabled: true,
            },
        )
        .await
        .expect("save");
    matcher.refresh(store).await.expect("refresh");
    assert_eq!(destinations(&matcher), [alice, mallory]);
    let text = metrics.render();
    assert!(
        text.lines()
            .any(|line| line == "tidings_filters_quarantined_total 0"),
        "{text}"
    );
}
