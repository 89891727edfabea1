//! Fixtures the notifier's tests share.

use tidings_rules::Condition;
use tidings_store::{ChannelKind, Delivery, FilterInput, NewDestination, Store};

/// The URL of the SQLite file a test's store lives in.
pub fn database_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())
}

/// A fresh store in a temp folder (kept while the folder lives).
pub async fn store() -> (tempfile::TempDir, Store) {
    // Bursts arrive whole here: flood limits are the store's to test (store/tests/digests.rs).
    tidings_store::set_default_delivery(tidings_store::DeliveryPolicy::Immediate {
        flood_max: 0,
        flood_window_minutes: 1,
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&database_url(&dir)).await.expect("store");
    (dir, store)
}

/// An account with a confirmed email destination and one filter; returns (user, destination).
pub async fn subscriber(store: &Store, name: &str, condition: &str) -> (i64, i64) {
    let user = store.create_user(name, None, false).await.expect("user");
    let destination = store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: &format!("{name}@example.org"),
            confirmed: true,
        })
        .await
        .expect("destination");
    store
        .create_filter(
            user.id,
            &FilterInput {
                name: "mine".into(),
                condition: Condition::parse(condition).expect("condition"),
                destination_ids: vec![destination.id],
                delivery: Delivery::Instant,
                enabled: true,
            },
        )
        .await
        .expect("filter");
    (user.id, destination.id)
}
