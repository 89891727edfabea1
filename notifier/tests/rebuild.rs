//! Issue 9: the matcher rebuilds its whole index now and then (`matcher.rebuild_minutes`),
//! a backstop beside the change log: a change the log never announced (written by hand,
//! or lost to a bug) is matched on after the next rebuild instead of never.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{Connection as _, Executor as _};
use tidings_notifier::{matcher, MatcherSettings, Metrics};
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{Delivery, FilterInput, Store, Wake};
use tokio_util::sync::CancellationToken;

use crate::support::{database_url, store as fresh_store, subscriber};

/// How often the matcher under test rebuilds; the test waits well past it.
const REBUILD: Duration = Duration::from_millis(50);

async fn publish(store: &Store, id: &str, topic: &str) {
    let message = Message::new(id, topic, serde_json::json!({}));
    let metadata = Metadata {
        topic: topic.into(),
        ..Metadata::default()
    };
    store
        .insert_message(&message, &metadata, "test")
        .await
        .expect("insert");
    store.signal(Wake::Matcher);
}

/// Waits until `n` messages are matched.
async fn matched(metrics: &Metrics, n: u64) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while metrics.matched.get() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} message(s) were not matched"));
}

#[tokio::test]
async fn a_change_the_log_missed_is_matched_after_a_rebuild() {
    let (dir, store) = fresh_store().await;
    let (alice, destination) = subscriber(&store, "alice", r#"topic ~ "org.old.**""#).await;
    // A disabled filter holds the condition the enabled one will get by hand.
    let template = FilterInput {
        name: "template".into(),
        condition: Condition::parse(r#"topic ~ "org.new.**""#).expect("condition"),
        destination_ids: vec![destination],
        delivery: Delivery::Instant,
        enabled: false,
    };
    store
        .create_filter(alice, &template)
        .await
        .expect("template");

    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    let settings = MatcherSettings {
        batch: 100,
        // Only wake-ups start a pass.
        poll: Duration::from_secs(600),
        retry_max: Duration::from_secs(1),
        rebuild_every: Some(REBUILD),
    };
    let running = tokio::spawn(matcher::run(
        store.clone(),
        settings,
        metrics.clone(),
        shutdown.clone(),
    ));
    // Once a message is matched, the index is built.
    publish(&store, "m-1", "org.old.prod.app.event").await;
    matched(&metrics, 1).await;
    assert_eq!(metrics.queued.get(), 1);

    // Alice's filter changes behind the change log's back.
    let mut conn = sqlx::SqliteConnection::connect(&database_url(&dir))
        .await
        .expect("connect");
    conn.execute(
        "UPDATE filters SET condition = (SELECT condition FROM filters WHERE name = 'template') \
         WHERE name = 'mine'",
    )
    .await
    .expect("update by hand");
    tokio::time::sleep(REBUILD * 10).await;
    publish(&store, "m-2", "org.new.prod.app.event").await;
    matched(&metrics, 2).await;
    assert_eq!(
        metrics.queued.get(),
        2,
        "the rebuilt index matched the changed filter"
    );
    shutdown.cancel();
    running.await.expect("join").expect("matcher");
}
