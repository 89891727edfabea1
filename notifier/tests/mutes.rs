//! Issue 10: a mute silences its owner's matches on what it names, from the moment the
//! matcher reads the change (through the change log), and only theirs, and only that.

use std::sync::Arc;

use tidings_notifier::matcher::Matcher;
use tidings_notifier::Metrics;
use tidings_rules::{Message, Metadata};
use tidings_store::{mute_options, StoredMessage, MUTE_MS};

use crate::support::{store as fresh_store, subscriber};

fn message(id: &str, package: &str, url: &str) -> StoredMessage {
    StoredMessage {
        id: 1,
        message: Message::new(
            id,
            "org.fedoraproject.prod.bodhi.update.comment",
            serde_json::json!({}),
        ),
        metadata: Metadata {
            topic: "org.fedoraproject.prod.bodhi.update.comment".into(),
            app: Some("bodhi".into()),
            packages: [package.to_string()].into(),
            url: Some(url.into()),
            ..Metadata::default()
        },
        source: "test".into(),
        received_at: 1,
    }
}

#[tokio::test]
async fn a_mute_silences_its_owners_matches_on_what_it_names() {
    let (_dir, store) = fresh_store().await;
    let condition = r#"topic ~ "org.fedoraproject.**""#;
    let (alice, alices) = subscriber(&store, "alice", condition).await;
    let (_bob, bobs) = subscriber(&store, "bob", condition).await;
    let mut matcher = Matcher::load(&store, Arc::new(Metrics::default()))
        .await
        .expect("matcher");
    let kernel = message(
        "m1",
        "kernel",
        "https://bodhi.example.org/updates/A#comment-1",
    );
    let same_update = message(
        "m2",
        "glibc",
        "https://bodhi.example.org/updates/A#comment-2",
    );
    let other = message("m3", "glibc", "https://bodhi.example.org/updates/B");
    let to = |m: &StoredMessage, matcher: &Matcher| -> Vec<i64> {
        matcher
            .notifications(m)
            .iter()
            .map(|n| n.destination_id)
            .collect()
    };
    assert_eq!(to(&kernel, &matcher), [alices, bobs]);

    // Alice mutes the package kernel: her matches on it stop, bob's do not.
    let options = mute_options(&kernel.metadata);
    let package = options
        .iter()
        .find(|o| o.value == "kernel")
        .expect("a package option");
    let until = tidings_store::now_ms() + MUTE_MS;
    let mute = store.mute(alice, package, until).await.expect("mute");
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(to(&kernel, &matcher), [bobs]);
    assert_eq!(
        to(&same_update, &matcher),
        [alices, bobs],
        "glibc is not muted"
    );

    // The thread: every comment on update A, whatever its package; update B still reaches her.
    let thread = options
        .iter()
        .find(|o| o.value.contains("updates/A"))
        .expect("a thread option");
    store.mute(alice, thread, until).await.expect("mute");
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(to(&same_update, &matcher), [bobs]);
    assert_eq!(to(&other, &matcher), [alices, bobs]);

    // Unmuted, and a mute that has ended, silence nothing.
    store.unmute(alice, mute.id).await.expect("unmute");
    store
        .mute(alice, thread, tidings_store::now_ms() - 1)
        .await
        .expect("ended");
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(to(&kernel, &matcher), [alices, bobs]);
    assert_eq!(to(&same_update, &matcher), [alices, bobs]);
}

// Issue 11: pausing everything (Settings) silences all of its owner's matches until it
// ends or they resume, and nobody else's.
#[tokio::test]
async fn pausing_everything_silences_all_of_its_owners_matches_until_resumed() {
    let (_dir, store) = fresh_store().await;
    let condition = r#"topic ~ "org.fedoraproject.**""#;
    let (alice, alices) = subscriber(&store, "alice", condition).await;
    let (_bob, bobs) = subscriber(&store, "bob", condition).await;
    let mut matcher = Matcher::load(&store, Arc::new(Metrics::default()))
        .await
        .expect("matcher");
    let kernel = message("m1", "kernel", "https://bodhi.example.org/updates/A");
    let glibc = message("m2", "glibc", "https://bodhi.example.org/updates/B");
    let to = |m: &StoredMessage, matcher: &Matcher| -> Vec<i64> {
        matcher
            .notifications(m)
            .iter()
            .map(|n| n.destination_id)
            .collect()
    };
    let week = tidings_store::now_ms() + 7 * 86_400_000;
    store.pause_everything(alice, week).await.expect("pause");
    assert_eq!(store.paused_until(alice).await.expect("read"), Some(week));
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(to(&kernel, &matcher), [bobs]);
    assert_eq!(to(&glibc, &matcher), [bobs]);

    // A pause must end in the future.
    assert!(store
        .pause_everything(alice, tidings_store::now_ms() - 1)
        .await
        .is_err());

    assert!(store.resume_everything(alice).await.expect("resume"));
    assert!(!store.resume_everything(alice).await.expect("again"));
    assert_eq!(store.paused_until(alice).await.expect("read"), None);
    matcher.refresh(&store).await.expect("refresh");
    assert_eq!(to(&kernel, &matcher), [alices, bobs]);
}
