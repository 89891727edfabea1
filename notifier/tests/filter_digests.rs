//! Issue 10: a filter that gathers a digest of its own. The matcher hands the store a
//! filter digest only when every filter that matched a message for a destination gathers
//! one (the lowest id's); one ordinary filter among them and the destination's own rules
//! decide.

use std::sync::Arc;

use tidings_notifier::matcher::Matcher;
use tidings_notifier::Metrics;
use tidings_rules::delivery::{DeliveryPolicy, TimeOfDay};
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{Delivery, FilterInput, StoredMessage};

use crate::support::{store as fresh_store, subscriber};

fn message(id: &str, topic: &str) -> StoredMessage {
    StoredMessage {
        id: 1,
        message: Message::new(id, topic, serde_json::json!({})),
        metadata: Metadata {
            topic: topic.into(),
            ..Metadata::default()
        },
        source: "test".into(),
        received_at: 1,
    }
}

#[tokio::test]
async fn a_filter_digest_applies_when_every_matching_filter_gathers_one() {
    let (_dir, store) = fresh_store().await;
    // "mine": Koji builds, at once.
    let (alice, mail) = subscriber(
        &store,
        "alice",
        r#"topic ~ "org.fedoraproject.prod.buildsys.**""#,
    )
    .await;
    let digest = |every: Option<u32>, daily: Option<&str>| {
        Delivery::digest(DeliveryPolicy::Digest {
            every_minutes: every,
            daily_at: daily.map(|t| TimeOfDay::parse(t).expect("a time")),
            max_items: None,
        })
        .expect("a digest")
    };
    let add = |name: &'static str, condition: &'static str, delivery: Delivery| {
        let store = &store;
        async move {
            store
                .create_filter(
                    alice,
                    &FilterInput {
                        name: name.into(),
                        condition: Condition::parse(condition).expect("condition"),
                        destination_ids: vec![mail],
                        delivery,
                        enabled: true,
                    },
                )
                .await
                .expect("filter")
        }
    };
    let updates = add(
        "updates",
        r#"topic ~ "org.fedoraproject.prod.bodhi.**""#,
        digest(Some(60), None),
    )
    .await;
    let everything = add(
        "everything",
        r#"topic ~ "org.fedoraproject.prod.**""#,
        digest(None, Some("08:00")),
    )
    .await;
    let matcher = Matcher::load(&store, Arc::new(Metrics::default()))
        .await
        .expect("matcher");

    // Two digest filters match: the first one's digest.
    let bodhi = message("m1", "org.fedoraproject.prod.bodhi.update.comment");
    let ns = matcher.notifications(&bodhi);
    assert_eq!(ns.len(), 1, "{ns:?}");
    assert_eq!(ns[0].filters.len(), 2, "{ns:?}");
    assert_eq!(
        ns[0].digest.as_ref().map(|(id, policy)| (*id, policy)),
        Some((updates.id, updates.delivery.policy().expect("a digest")))
    );

    // An ordinary filter matches too: the destination's rules, at once.
    let koji = message("m2", "org.fedoraproject.prod.buildsys.build.state.change");
    let ns = matcher.notifications(&koji);
    assert_eq!(ns.len(), 1, "{ns:?}");
    assert_eq!(ns[0].filters.len(), 2, "{ns:?}");
    assert_eq!(ns[0].digest, None, "{ns:?}");

    // Only the daily one.
    let pagure = message("m3", "org.fedoraproject.prod.pagure.pull-request.new");
    let ns = matcher.notifications(&pagure);
    assert_eq!(
        ns[0].digest.as_ref().map(|(id, _)| *id),
        Some(everything.id),
        "{ns:?}"
    );
}
