//! Destinations: adding, confirming by link token, ownership.

use tidings_store::{ChannelKind, NewDestination, OutboxKind, StoreError, CONFIRMED_ADDRESS};

use crate::harness::{backends, destination, fails, ok, user};

#[tokio::test]
async fn unconfirmed_queues_one_confirmation() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d = destination(&t, alice.id, "  alice@example.org ", false).await;
        assert_eq!(d.address, "alice@example.org", "[{n}] trimmed");
        assert_eq!(d.channel, ChannelKind::Email, "[{n}]");
        assert_eq!(d.user_id, alice.id, "[{n}]");
        assert!(!d.is_confirmed(), "[{n}] {d:?}");
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (1, 0, 0, 0),
            "[{n}] one row queued"
        );

        let claimed = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}] {claimed:?}");
        let c = &claimed[0];
        assert_eq!(c.kind, OutboxKind::Confirmation, "[{n}]");
        assert_eq!(c.destination, d, "[{n}]");
        assert_eq!(c.username, "alice", "[{n}]");
        assert!(c.message.is_none() && c.filters.is_empty(), "[{n}] {c:?}");
        let token = c
            .confirmation_token()
            .unwrap_or_else(|| panic!("[{n}] payload without token: {c:?}"))
            .to_string();

        assert!(matches!(
            fails!(n, s.confirm_destination("wrong-token").await),
            StoreError::NotFound
        ));
        // A link past its time is refused as expired, and leaves the address unconfirmed.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let err = fails!(n, s.confirm_destination_within(&token, 1).await);
        assert!(matches!(err, StoreError::Expired { .. }), "[{n}] {err:?}");
        assert!(
            !ok!(n, s.destination(alice.id, d.id).await).is_confirmed(),
            "[{n}]"
        );
        let confirmed = ok!(n, s.confirm_destination(&token).await);
        assert_eq!(confirmed.id, d.id, "[{n}]");
        assert!(confirmed.is_confirmed(), "[{n}] {confirmed:?}");
        assert_eq!(
            ok!(n, s.destination(alice.id, d.id).await),
            confirmed,
            "[{n}]"
        );
        let err = fails!(n, s.confirm_destination(&token).await);
        assert!(
            matches!(err, StoreError::NotFound),
            "[{n}] token works once: {err:?}"
        );
    }
}

#[tokio::test]
async fn confirmed_queues_nothing() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d = destination(&t, alice.id, "alice@example.org", true).await;
        assert!(d.is_confirmed(), "[{n}] {d:?}");
        assert_eq!(ok!(n, s.outbox_counts().await), (0, 0, 0, 0), "[{n}]");
        assert!(ok!(n, s.claim(10, 60_000).await).is_empty(), "[{n}]");
    }
}

#[tokio::test]
async fn bad_addresses_are_refused() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        for bad in [
            "",
            "alice",
            "@example.org",
            "alice@example",
            "alice@.example.org",
            "alice@example.org.",
            "al ice@example.org",
            "<alice@example.org>",
            "a@b.org, c@d.org",
            // Issue 8 item 6: accepted before, and its confirmation died at once.
            "ralph@@example.org",
            "\"ralph\"@example.org",
            "ralph@[192.0.2.1]",
        ] {
            let err = fails!(
                n,
                s.add_destination(NewDestination {
                    user_id: alice.id,
                    channel: ChannelKind::Email,
                    address: bad,
                    confirmed: false,
                })
                .await
            );
            assert!(
                matches!(
                    err,
                    StoreError::Invalid {
                        field: "address",
                        ..
                    }
                ),
                "[{n}] {bad:?}: got {err:?}"
            );
        }
        assert!(ok!(n, s.destinations(alice.id).await).is_empty(), "[{n}]");
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (0, 0, 0, 0),
            "[{n}] nothing queued"
        );
    }
}

#[tokio::test]
async fn duplicate_address_conflicts() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let d = destination(&t, alice.id, "Shared@Example.org", true).await;
        assert_eq!(d.address, "Shared@example.org", "[{n}] domain lower-cased");
        // Issue 8 item 6: case variants are the same address.
        for again in [
            "Shared@example.org",
            "shared@EXAMPLE.org",
            "SHARED@example.org",
        ] {
            let err = fails!(
                n,
                s.add_destination(NewDestination {
                    user_id: alice.id,
                    channel: ChannelKind::Email,
                    address: again,
                    confirmed: false,
                })
                .await
            );
            assert!(
                matches!(&err, StoreError::Conflict { constraint } if constraint != CONFIRMED_ADDRESS),
                "[{n}] {again}: got {err:?}"
            );
        }
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (0, 0, 0, 0),
            "[{n}] the refused adds queued nothing"
        );
        // Another user may add the same address, but not confirmed: it is alice's.
        let err = fails!(
            n,
            s.add_destination(NewDestination {
                user_id: bob.id,
                channel: ChannelKind::Email,
                address: "shared@example.org",
                confirmed: true,
            })
            .await
        );
        assert!(
            matches!(&err, StoreError::Conflict { constraint } if constraint == CONFIRMED_ADDRESS),
            "[{n}] got {err:?}"
        );
        destination(&t, bob.id, "shared@example.org", false).await;
    }
}

/// The confirmation token queued for the newest confirmation row.
async fn newest_token(t: &crate::harness::TestStore) -> String {
    let claimed = ok!(t.name, t.store.claim(100, 60_000).await);
    claimed
        .iter()
        .rev()
        .find(|c| c.kind == OutboxKind::Confirmation)
        .and_then(|c| c.confirmation_token())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("[{}] no confirmation queued: {claimed:?}", t.name))
}

// Issue 8 item 1: a confirmed address belongs to one account. alice adds bob's confirmed
// address and obtains the confirmation link: confirming it is refused, her link stays
// usable, and works once bob has let the address go.
#[tokio::test]
async fn a_confirmed_address_belongs_to_one_account() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let bobs = destination(&t, bob.id, "bob@example.org", false).await;
        let bob_token = newest_token(&t).await;
        ok!(n, s.confirm_destination(&bob_token).await);

        let hers = destination(&t, alice.id, "Bob@Example.org", false).await;
        let alice_token = newest_token(&t).await;
        let err = fails!(n, s.confirm_destination(&alice_token).await);
        assert!(
            matches!(&err, StoreError::Conflict { constraint } if constraint == CONFIRMED_ADDRESS),
            "[{n}] got {err:?}"
        );
        assert!(
            !ok!(n, s.destination(alice.id, hers.id).await).is_confirmed(),
            "[{n}]"
        );
        assert!(
            ok!(n, s.destination(bob.id, bobs.id).await).is_confirmed(),
            "[{n}] bob keeps it"
        );

        ok!(n, s.delete_destination(bob.id, bobs.id).await);
        let confirmed = ok!(n, s.confirm_destination(&alice_token).await);
        assert_eq!(confirmed.id, hers.id, "[{n}]");
        // Now bob cannot take it back without alice letting go.
        destination(&t, bob.id, "bob@example.org", false).await;
        let again = newest_token(&t).await;
        let err = fails!(n, s.confirm_destination(&again).await);
        assert!(matches!(err, StoreError::Conflict { .. }), "[{n}] {err:?}");
    }
}

#[tokio::test]
async fn other_users_destinations_are_not_found() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let a1 = destination(&t, alice.id, "a1@example.org", true).await;
        let a2 = destination(&t, alice.id, "a2@example.org", false).await;
        let b1 = destination(&t, bob.id, "b1@example.org", true).await;
        assert_eq!(
            ok!(n, s.destinations(alice.id).await),
            [a1.clone(), a2.clone()]
        );
        assert_eq!(
            ok!(n, s.destinations(bob.id).await),
            std::slice::from_ref(&b1),
            "[{n}]"
        );

        let err = fails!(n, s.destination(bob.id, a1.id).await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] get: {err:?}");
        let err = fails!(n, s.delete_destination(bob.id, a1.id).await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] delete: {err:?}");
        assert_eq!(
            ok!(n, s.destination(alice.id, a1.id).await),
            a1,
            "[{n}] still there"
        );

        // Deleting one's own removes it and whatever is queued for it.
        assert_eq!(ok!(n, s.outbox_counts().await), (1, 0, 0, 0), "[{n}]");
        ok!(n, s.delete_destination(alice.id, a2.id).await);
        assert!(matches!(
            fails!(n, s.destination(alice.id, a2.id).await),
            StoreError::NotFound
        ));
        assert!(matches!(
            fails!(n, s.delete_destination(alice.id, a2.id).await),
            StoreError::NotFound
        ));
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (0, 0, 0, 0),
            "[{n}] queue emptied"
        );
    }
}
