//! Issue 10's delivery rules as the store applies them: a flood beyond a destination's limit
//! is collected for one summary, never dropped; a digest destination's notifications are
//! collected and sent as one digest once it is due; quiet hours collect everything until
//! they end; what arrives while a digest is being sent gets a digest of its own; a dead
//! digest takes what it held down with it, visibly; a filter can gather a digest of its
//! own.

use tidings_store::{
    Delivery, DeliveryPolicy, DigestReason, OutboxKind, Outcome, Schedule, StoreError, TimeOfDay,
};

use crate::harness::{
    archived, backends, destination, execute, fails, filter_input, notification, ok, user,
    TestStore,
};

/// Archives and completes `n` messages, each notifying `destination`.
async fn burst(t: &TestStore, prefix: &str, n: usize, destination: i64) {
    for i in 0..n {
        let m = archived(t, &format!("{prefix}-{i}")).await;
        let done = t
            .store
            .complete_message(m, &[notification(destination, &[(1, "mine")])])
            .await;
        assert!(done.is_ok(), "[{}] {done:?}", t.name);
    }
}

#[tokio::test]
async fn a_flood_past_the_limit_waits_for_one_summary() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let mail = destination(&t, alice.id, "alice@example.org", true).await;
        let policy = DeliveryPolicy::Immediate {
            flood_max: 3,
            flood_window_minutes: 10,
        };
        ok!(n, s.set_delivery(alice.id, mail.id, &policy).await);
        burst(&t, "flood", 5, mail.id).await;
        // Three go now; two are collected, and the summary waits for the window's end.
        let claimed = ok!(n, s.claim(100, 60_000).await);
        assert_eq!(claimed.len(), 3, "[{n}]");
        assert!(claimed.iter().all(|c| c.kind == OutboxKind::Notification));
        // Pending: the 2 collected and their digest, not yet due.
        assert_eq!(ok!(n, s.outbox_counts().await), (3, 3, 0, 0), "[{n}]");
        assert!(ok!(n, s.claim(100, 60_000).await).is_empty(), "[{n}]");
    }
}

#[tokio::test]
async fn a_digest_holds_what_was_collected_and_is_sent_as_one() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let mail = destination(&t, alice.id, "alice@example.org", true).await;
        let policy = DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: None,
            max_items: Some(3),
        };
        ok!(n, s.set_delivery(alice.id, mail.id, &policy).await);
        burst(&t, "d", 2, mail.id).await;
        assert!(
            ok!(n, s.claim(100, 60_000).await).is_empty(),
            "[{n}] two of three: the digest waits"
        );
        burst(&t, "e", 2, mail.id).await;
        let claimed = ok!(n, s.claim(100, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}] {claimed:?}");
        let digest = &claimed[0];
        assert_eq!(digest.kind, OutboxKind::Digest);
        let contents = digest.digest.as_ref().expect("contents");
        assert_eq!(contents.reason, DigestReason::Digest);
        assert_eq!((contents.total, contents.items.len()), (4, 4), "[{n}]");
        assert_eq!(contents.items[0].0.message.id, "d-0", "[{n}] oldest first");
        assert_eq!(contents.items[0].1, vec![(1, "mine".to_string())]);

        // One more arrives while the digest is being sent: not in it, in the next.
        burst(&t, "f", 1, mail.id).await;
        ok!(n, s.record(digest, &Outcome::Sent).await);
        let (pending, sending, done, dead) = ok!(n, s.outbox_counts().await);
        assert_eq!(
            (pending, sending, done, dead),
            (2, 0, 5, 0),
            "[{n}] 4 sent with the digest, and the digest; 1 collected and its follow-up"
        );
        let sent = ok!(n, s.notifications(alice.id, 50).await);
        let in_digest = sent.iter().filter(|v| v.status == "sent").count();
        assert_eq!(in_digest, 4, "[{n}] {sent:?}");
    }
}

#[tokio::test]
async fn quiet_hours_collect_and_a_dead_digest_shows_what_it_held() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let mail = destination(&t, alice.id, "alice@example.org", true).await;
        // Quiet from an hour ago to an hour from now, in UTC.
        let minute = (tidings_store::now_ms() / 60_000 % 1440) as u16;
        let at = |m: u16| {
            let m = m % 1440;
            TimeOfDay::parse(&format!("{}:{:02}", m / 60, m % 60)).expect("a time")
        };
        let quiet =
            Schedule::new("UTC", Some((at(minute + 1380), at(minute + 60)))).expect("a schedule");
        ok!(n, s.set_schedule(alice.id, &quiet).await);
        assert_eq!(ok!(n, s.schedule(alice.id).await), quiet);
        burst(&t, "q", 3, mail.id).await;
        assert!(
            ok!(n, s.claim(100, 60_000).await).is_empty(),
            "[{n}] nothing until the quiet hours end"
        );
        assert_eq!(
            ok!(n, s.outbox_counts().await).0,
            4,
            "[{n}] 3 and their digest"
        );

        // A digest destination whose digest dies: what it held is dead too, with why.
        let bob = user(&t, "bob").await;
        let bobs = destination(&t, bob.id, "bob@example.org", true).await;
        let policy = DeliveryPolicy::Digest {
            every_minutes: None,
            daily_at: None,
            max_items: Some(1),
        };
        ok!(n, s.set_delivery(bob.id, bobs.id, &policy).await);
        burst(&t, "b", 1, bobs.id).await;
        let claimed = ok!(n, s.claim(100, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}]");
        let error = "550 no such mailbox".to_string();
        ok!(n, s.record(&claimed[0], &Outcome::Dead { error }).await);
        let dead = ok!(n, s.dead_notifications(10).await);
        assert_eq!(dead.len(), 2, "[{n}] {dead:?}");
        assert!(dead.iter().any(|d| d
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("in a digest that could not be sent: 550"))));
    }
}

#[tokio::test]
async fn a_webhook_always_goes_at_once() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let hook = ok!(
            n,
            s.add_destination(tidings_store::NewDestination {
                user_id: alice.id,
                channel: tidings_store::ChannelKind::Webhook,
                address: "https://mirror.example.org/hook",
                confirmed: true,
            })
            .await
        );
        let digest = DeliveryPolicy::Digest {
            every_minutes: Some(60),
            daily_at: None,
            max_items: None,
        };
        let refused = fails!(n, s.set_delivery(alice.id, hook.id, &digest).await);
        assert!(
            matches!(&refused, StoreError::Invalid { field: "delivery", reason } if reason.contains("in order")),
            "[{n}] {refused:?}"
        );
        let bad = DeliveryPolicy::Digest {
            every_minutes: None,
            daily_at: None,
            max_items: None,
        };
        let mail = destination(&t, alice.id, "alice@example.org", true).await;
        let refused = fails!(n, s.set_delivery(alice.id, mail.id, &bad).await);
        assert!(
            matches!(
                refused,
                StoreError::Invalid {
                    field: "digest",
                    ..
                }
            ),
            "[{n}]"
        );
        let bob = user(&t, "bob").await;
        let theirs = fails!(
            n,
            s.set_delivery(bob.id, mail.id, &DeliveryPolicy::default())
                .await
        );
        assert!(matches!(theirs, StoreError::NotFound), "[{n}]");
    }
}

// Issue 10: a destination failing for good is paused, and its owner told elsewhere: three
// dead notifications in a row (a sent one between starts the count again).
#[tokio::test]
async fn three_dead_in_a_row_pause_a_destination_and_tell_its_owner() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let broken = destination(&t, alice.id, "old@example.org", true).await;
        let other = destination(&t, alice.id, "alice@example.org", true).await;
        let dead = || Outcome::Dead {
            error: "550 5.1.1 no such mailbox".into(),
        };
        let round = std::cell::Cell::new(0);
        let fail = |outcomes: Vec<Outcome>| {
            let t = &t;
            round.set(round.get() + 1);
            let prefix = format!("p{}", round.get());
            async move {
                burst(t, &prefix, outcomes.len(), broken.id).await;
                let claimed = t.store.claim(100, 60_000).await.expect("claim");
                let pairs: Vec<_> = claimed.iter().zip(outcomes.iter()).collect();
                t.store.record_many(&pairs).await.expect("record");
            }
        };
        // Two dead, one sent, two dead: never three in a row.
        fail(vec![dead(), dead()]).await;
        fail(vec![Outcome::Sent]).await;
        fail(vec![dead(), dead()]).await;
        assert!(
            ok!(n, s.destination(alice.id, broken.id).await).is_confirmed(),
            "[{n}]"
        );
        fail(vec![dead()]).await;
        let paused = ok!(n, s.destination(alice.id, broken.id).await);
        assert!(!paused.is_confirmed(), "[{n}]");
        let reason = paused.disabled_reason.unwrap_or_default();
        assert!(
            reason.contains("paused after 3 notifications") && reason.contains("550 5.1.1"),
            "[{n}] {reason}"
        );
        // The owner hears of it on their other destination.
        let claimed = ok!(n, s.claim(100, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}] {claimed:?}");
        assert_eq!(claimed[0].kind, OutboxKind::Notice);
        assert_eq!(claimed[0].destination.id, other.id);
        assert!(
            matches!(&claimed[0].payload, Some(tidings_store::OutboxPayload::PausedV1 { address, .. }) if address == "old@example.org"),
            "[{n}] {:?}",
            claimed[0].payload
        );
    }
}

// Issue 10: digests per filter. A filter gathering its own digest collects its matches
// apart from the destination's rules (they do not count against its flood limit), its
// digest is named after it and holds only its own; switching it back sends what it
// collected within a minute instead of never.
#[tokio::test]
async fn a_filter_gathers_a_digest_of_its_own_beside_the_destinations_rules() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let mail = destination(&t, alice.id, "alice@example.org", true).await;
        let limited = DeliveryPolicy::Immediate {
            flood_max: 2,
            flood_window_minutes: 10,
        };
        ok!(n, s.set_delivery(alice.id, mail.id, &limited).await);
        let weekly = ok!(
            n,
            s.create_filter(alice.id, &filter_input("weekly", &[mail.id]))
                .await
        );
        let three = DeliveryPolicy::Digest {
            every_minutes: None,
            daily_at: None,
            max_items: Some(3),
        };
        let refused = fails!(n, Delivery::digest(limited.clone()));
        assert!(
            matches!(
                refused,
                StoreError::Invalid {
                    field: "delivery",
                    ..
                }
            ),
            "[{n}]"
        );
        let weekly = ok!(
            n,
            s.set_filter_delivery(alice.id, weekly.id, ok!(n, Delivery::digest(three.clone())))
                .await
        );
        assert_eq!(weekly.delivery.policy(), Some(&three), "[{n}]");
        // Read back as stored, and listed so.
        let listed = ok!(n, s.filter(alice.id, weekly.id).await);
        assert_eq!(listed.delivery, weekly.delivery, "[{n}]");

        // Three plain notifications: two at once, one for the flood summary. Three of the
        // filter's: all collected for its digest, which is due now, at three.
        let own = Some((weekly.id, three.clone()));
        for i in 0..3 {
            let plain = archived(&t, &format!("plain-{i}")).await;
            ok!(
                n,
                s.complete_message(plain, &[notification(mail.id, &[(1, "mine")])])
                    .await
            );
            let m = archived(&t, &format!("weekly-{i}")).await;
            let mut to = notification(mail.id, &[(weekly.id, "weekly")]);
            to.digest = own.clone();
            ok!(n, s.complete_message(m, &[to]).await);
        }
        let claimed = ok!(n, s.claim(100, 60_000).await);
        let kinds: Vec<_> = claimed.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [
                OutboxKind::Notification,
                OutboxKind::Notification,
                OutboxKind::Digest
            ],
            "[{n}] the filter's notifications do not use up the flood limit"
        );
        let digest = &claimed[2];
        let contents = digest.digest.as_ref().expect("contents");
        assert_eq!(
            contents.filter,
            Some((weekly.id, "weekly".to_string())),
            "[{n}]"
        );
        assert_eq!(contents.total, 3, "[{n}] only the filter's own");
        assert!(contents
            .items
            .iter()
            .all(|(m, _)| m.message.id.starts_with("weekly-")));
        for c in &claimed {
            ok!(n, s.record(c, &Outcome::Sent).await);
        }
        // Left: the flood's one collected notification and its summary, not yet due.
        assert_eq!(ok!(n, s.outbox_counts().await), (2, 0, 6, 0), "[{n}]");

        // Two more for the filter: fewer than three, and its digest has no time trigger.
        for i in 3..5 {
            let m = archived(&t, &format!("weekly-{i}")).await;
            let mut to = notification(mail.id, &[(weekly.id, "weekly")]);
            to.digest = own.clone();
            ok!(n, s.complete_message(m, &[to]).await);
        }
        assert!(ok!(n, s.claim(100, 60_000).await).is_empty(), "[{n}]");
        // Renamed, its digest settings unchanged: it keeps waiting for its third.
        let mut renamed = filter_input("weekly digest", &[mail.id]);
        renamed.delivery = ok!(n, Delivery::digest(three.clone()));
        ok!(n, s.update_filter(alice.id, weekly.id, &renamed).await);
        execute(
            &t,
            "UPDATE outbox SET next_attempt_at = next_attempt_at - 61000 \
             WHERE kind = 'digest' AND digest_filter <> 0",
        )
        .await;
        assert!(ok!(n, s.claim(100, 60_000).await).is_empty(), "[{n}]");
        // Switched back to the destination's rules: what it holds goes within a minute.
        ok!(
            n,
            s.set_filter_delivery(alice.id, weekly.id, Delivery::Instant)
                .await
        );
        execute(
            &t,
            "UPDATE outbox SET next_attempt_at = next_attempt_at - 61000 \
             WHERE kind = 'digest' AND digest_filter <> 0",
        )
        .await;
        let claimed = ok!(n, s.claim(100, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}] {claimed:?}");
        let contents = claimed[0].digest.as_ref().expect("contents");
        assert_eq!(contents.total, 2, "[{n}]");
        assert_eq!(
            contents.filter.as_ref().map(|f| f.0),
            Some(weekly.id),
            "[{n}]"
        );
    }
}
