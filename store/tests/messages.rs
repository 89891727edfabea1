//! The message archive: de-duplication, the unprocessed queue, completing a message into
//! the outbox, rejected input.

use std::collections::BTreeSet;

use tidings_store::{OutboxKind, StoreError};

use crate::harness::{archived, backends, destination, fails, message, notification, ok, user};

#[tokio::test]
async fn duplicates_are_dropped() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let (m, meta) = message("m1");
        let id = ok!(n, s.insert_message(&m, &meta, "zmq:tcp://bus").await);
        assert!(id.is_some(), "[{n}] first insert");
        let mut changed = m.clone();
        changed.topic = "org.example.prod.other".into();
        assert_eq!(
            ok!(n, s.insert_message(&m, &meta, "zmq:tcp://bus").await),
            None,
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.insert_message(&changed, &meta, "http:ci").await),
            None,
            "[{n}]"
        );
        assert_eq!(ok!(n, s.message_counts().await), (1, 0), "[{n}]");
        let stored = ok!(n, s.unprocessed_messages(10).await);
        assert_eq!(stored.len(), 1, "[{n}]");
        assert_eq!(Some(stored[0].id), id, "[{n}]");
        assert_eq!(stored[0].message, m, "[{n}] the first copy is kept, intact");
        assert_eq!(stored[0].metadata, meta, "[{n}] metadata round-trips");
        assert_eq!(stored[0].source, "zmq:tcp://bus", "[{n}]");
    }
}

#[tokio::test]
async fn unprocessed_oldest_first() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let ids = [
            archived(&t, "c").await,
            archived(&t, "a").await,
            archived(&t, "b").await,
        ];
        assert!(ids[0] < ids[1] && ids[1] < ids[2], "[{n}] {ids:?}");
        let msg_ids = |v: Vec<tidings_store::StoredMessage>| -> Vec<String> {
            v.into_iter().map(|m| m.message.id).collect()
        };
        assert_eq!(
            msg_ids(ok!(n, s.unprocessed_messages(10).await)),
            ["c", "a", "b"]
        );
        assert_eq!(
            msg_ids(ok!(n, s.unprocessed_messages(2).await)),
            ["c", "a"],
            "[{n}]"
        );
        ok!(n, s.complete_message(ids[0], &[]).await);
        assert_eq!(
            msg_ids(ok!(n, s.unprocessed_messages(10).await)),
            ["a", "b"],
            "[{n}]"
        );
        assert_eq!(ok!(n, s.message_counts().await), (3, 1), "[{n}]");
    }
}

#[tokio::test]
async fn complete_queues_one_row_per_confirmed_destination() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let a1 = destination(&t, alice.id, "a1@example.org", true).await;
        let a2 = destination(&t, alice.id, "a2@example.org", true).await;
        let unconfirmed = destination(&t, alice.id, "new@example.org", false).await;
        let b1 = destination(&t, bob.id, "b1@example.org", true).await;
        // The confirmation for `unconfirmed` is the one row so far.
        assert_eq!(ok!(n, s.outbox_counts().await), (1, 0, 0, 0), "[{n}]");

        let m = archived(&t, "m1").await;
        let other = archived(&t, "m2").await;
        let notifications = [
            notification(a1.id, &[(1, "one"), (2, "two")]),
            notification(a2.id, &[(1, "one")]),
            notification(unconfirmed.id, &[(1, "one")]),
            notification(b1.id, &[(3, "bob's")]),
        ];
        ok!(n, s.complete_message(m, &notifications).await);
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (4, 0, 0, 0),
            "[{n}] 3 more rows"
        );
        assert_eq!(
            ok!(n, s.message_counts().await),
            (2, 1),
            "[{n}] marked processed"
        );
        let left: Vec<i64> = ok!(n, s.unprocessed_messages(10).await)
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(left, [other], "[{n}]");

        // Completing again (a redelivered message, say) queues nothing twice.
        ok!(n, s.complete_message(m, &notifications).await);
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (4, 0, 0, 0),
            "[{n}] no duplicates"
        );

        let claimed = ok!(n, s.claim(100, 60_000).await);
        let mut sent_to = BTreeSet::new();
        for c in &claimed {
            if c.kind == OutboxKind::Notification {
                assert_eq!(c.message.as_ref().map(|m| m.id), Some(m), "[{n}] {c:?}");
                assert_eq!(c.attempt, 1, "[{n}]");
                let want = notifications
                    .iter()
                    .find(|x| x.destination_id == c.destination.id)
                    .map(|x| x.filters.clone());
                assert_eq!(Some(c.filters.clone()), want, "[{n}] filters kept");
                assert!(
                    sent_to.insert(c.destination.id),
                    "[{n}] one row per destination"
                );
            } else {
                assert_eq!(c.destination.id, unconfirmed.id, "[{n}] {c:?}");
            }
        }
        assert_eq!(sent_to, BTreeSet::from([a1.id, a2.id, b1.id]), "[{n}]");
        let bobs = claimed.iter().find(|c| c.destination.id == b1.id);
        assert_eq!(bobs.map(|c| c.username.as_str()), Some("bob"), "[{n}]");
    }
}

#[tokio::test]
async fn complete_for_an_unknown_message_queues_nothing() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d = destination(&t, alice.id, "a@example.org", true).await;
        let m = archived(&t, "m1").await;
        let err = fails!(
            n,
            s.complete_message(m + 1000, &[notification(d.id, &[])])
                .await
        );
        assert!(
            matches!(err, StoreError::Conflict { .. } | StoreError::NotFound),
            "[{n}] got {err:?}"
        );
        assert_eq!(ok!(n, s.outbox_counts().await), (0, 0, 0, 0), "[{n}]");
        assert_eq!(ok!(n, s.message_counts().await), (1, 0), "[{n}]");
    }
}

#[tokio::test]
async fn rejected_input_is_kept() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        assert_eq!(ok!(n, s.rejected_count().await), 0, "[{n}]");
        ok!(
            n,
            s.reject_message("zmq:tcp://bus", "not JSON", b"bad\0\xffinput")
                .await
        );
        let big = vec![b'x'; 100 * 1024];
        ok!(n, s.reject_message("http:ci", "too big", &big).await);
        assert_eq!(ok!(n, s.rejected_count().await), 2, "[{n}]");

        let rejected = ok!(n, s.rejected_messages(10).await);
        assert_eq!(rejected.len(), 2, "[{n}]");
        assert_eq!(rejected[0].reason, "too big", "[{n}] newest first");
        assert_eq!(rejected[0].raw.len(), 64 * 1024, "[{n}] truncated");
        assert_eq!(rejected[1].source, "zmq:tcp://bus", "[{n}]");
        assert_eq!(
            rejected[1].raw, "bad\u{fffd}input",
            "[{n}] lossy, without NUL"
        );
        assert_eq!(ok!(n, s.rejected_messages(1).await).len(), 1, "[{n}] limit");
    }
}
