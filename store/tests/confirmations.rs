//! Confirmation mails: rate limits per address and per account that survive deletion,
//! resending, and what became of the last mail. Also which mail was sent on whose behalf.

use tidings_store::{
    ChannelKind, NewDestination, OutboxKind, OutboxStatus, Outcome, StoreError, PER_ADDRESS,
    PER_USER,
};

use crate::harness::{backends, destination, fails, ok, user, TestStore};

async fn add(t: &TestStore, user_id: i64, address: &str) -> Result<i64, StoreError> {
    t.store
        .add_destination(NewDestination {
            user_id,
            channel: ChannelKind::Email,
            address,
            confirmed: false,
        })
        .await
        .map(|d| d.id)
}

fn limited(t: &TestStore, result: Result<i64, StoreError>, what: &str) -> String {
    match result {
        Err(StoreError::RateLimited { reason }) => reason,
        other => panic!("[{}] {what}: expected RateLimited, got {other:?}", t.name),
    }
}

// Issue 8 item 6: 13 confirmation mails to one victim in 4 s by add/delete cycles and case
// variants, from two accounts. At most PER_ADDRESS a day now, whatever the spelling.
#[tokio::test]
async fn one_address_gets_at_most_three_a_day() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let mallory = user(&t, "mallory").await;
        let eve = user(&t, "eve").await;
        for spelling in [
            "victim@example.org",
            "Victim@example.org",
            "VICTIM@Example.org",
        ]
        .iter()
        .take(PER_ADDRESS as usize)
        {
            let id = ok!(n, add(&t, mallory.id, spelling).await);
            ok!(n, s.delete_destination(mallory.id, id).await);
        }
        let reason = limited(
            &t,
            add(&t, mallory.id, "victim@example.org").await,
            "4th add",
        );
        assert!(reason.contains("this address"), "[{n}] {reason}");
        limited(&t, add(&t, eve.id, "vICTIM@example.org").await, "from eve");
        assert!(
            ok!(n, s.destinations(eve.id).await).is_empty(),
            "[{n}] a refused add keeps nothing"
        );
        // Other addresses are not affected.
        ok!(n, add(&t, eve.id, "eve@example.org").await);
    }
}

// Issue 8 item 6: one account cannot mail many addresses either.
#[tokio::test]
async fn one_account_gets_at_most_ten_a_day() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let mallory = user(&t, "mallory").await;
        for i in 0..PER_USER {
            ok!(n, add(&t, mallory.id, &format!("v{i}@example.org")).await);
        }
        let reason = limited(
            &t,
            add(&t, mallory.id, "one-more@example.org").await,
            "11th",
        );
        assert!(reason.contains("this account"), "[{n}] {reason}");
        // Adding a confirmed address sends nothing, so no limit applies.
        destination(&t, mallory.id, "vouched@example.org", true).await;
        let others = user(&t, "carol").await;
        ok!(n, add(&t, others.id, "carol@example.org").await);
        assert_eq!(
            ok!(n, s.outbox_counts().await).0,
            PER_USER + 1,
            "[{n}] queued"
        );
    }
}

// Issue 8 item 6: the user can resend a confirmation (within the limits); the new link
// replaces the old; a dead confirmation shows as dead, not "waiting".
#[tokio::test]
async fn resend_replaces_the_link_and_counts() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let id = ok!(n, add(&t, alice.id, "alice@example.org").await);
        let first = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(first.len(), 1, "[{n}]");
        let old_token = first[0].confirmation_token().map(str::to_string);
        let death = Outcome::Dead {
            error: "550 mailbox unavailable".into(),
        };
        ok!(n, s.record(&first[0], &death).await);
        let mails = ok!(n, s.confirmation_mails(alice.id).await);
        assert_eq!(mails.len(), 1, "[{n}] {mails:?}");
        assert_eq!(
            (mails[0].destination_id, mails[0].status),
            (id, OutboxStatus::Dead),
            "[{n}]"
        );
        assert_eq!(
            mails[0].last_error.as_deref(),
            Some("550 mailbox unavailable")
        );

        let err = fails!(n, s.resend_confirmation(bob.id, id).await);
        assert!(
            matches!(err, StoreError::NotFound),
            "[{n}] someone else's: {err:?}"
        );
        ok!(n, s.resend_confirmation(alice.id, id).await);
        let mails = ok!(n, s.confirmation_mails(alice.id).await);
        assert_eq!(mails[0].status, OutboxStatus::Pending, "[{n}] {mails:?}");
        let second = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(second.len(), 1, "[{n}]");
        assert_eq!(second[0].kind, OutboxKind::Confirmation, "[{n}]");
        let token = second[0].confirmation_token().map(str::to_string);
        assert_ne!(token, old_token, "[{n}] a fresh link");
        let old = old_token
            .map(|t| t.trim_matches('"').to_string())
            .unwrap_or_default();
        assert!(
            matches!(
                fails!(n, s.confirm_destination(&old).await),
                StoreError::NotFound
            ),
            "[{n}] the old link stops working"
        );

        // A resend waiting to be sent is replaced, not sent twice.
        ok!(n, s.resend_confirmation(alice.id, id).await);
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (1, 1, 0, 1),
            "[{n}] one pending, the claimed one, the dead one"
        );
        let reason = match s.resend_confirmation(alice.id, id).await {
            Err(StoreError::RateLimited { reason }) => reason,
            other => panic!("[{n}] the 4th mail to one address: {other:?}"),
        };
        assert!(reason.contains("24 hours"), "[{n}] {reason}");

        let vouched = destination(&t, alice.id, "vouched@example.org", true).await;
        let err = fails!(n, s.resend_confirmation(alice.id, vouched.id).await);
        assert!(
            matches!(err, StoreError::Invalid { .. }),
            "[{n}] confirmed: {err:?}"
        );
    }
}

/// A resent link counts its time from the resend, not from when the address was added.
#[tokio::test]
async fn a_resent_link_counts_from_its_resend() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let id = ok!(n, add(&t, alice.id, "alice@example.org").await);
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        ok!(n, s.resend_confirmation(alice.id, id).await);
        let newest = ok!(n, s.claim(10, 60_000).await)
            .into_iter()
            .max_by_key(|c| c.id)
            .unwrap_or_else(|| panic!("[{n}] the resent mail"));
        let token = newest.confirmation_token().unwrap_or_default().to_string();
        let confirmed = ok!(n, s.confirm_destination_within(&token, 1000).await);
        assert_eq!(confirmed.id, id, "[{n}]");
    }
}

// Issue 8 item 1: the mailbox viewer shows mail sent on the user's behalf only: the
// confirmation for an address alice added (even bob's), never bob's notifications.
#[tokio::test]
async fn mail_sent_for_a_user() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let bobs = destination(&t, bob.id, "bob@example.org", true).await;
        let m = crate::harness::archived(&t, "m1").await;
        ok!(
            n,
            s.complete_message(m, &[crate::harness::notification(bobs.id, &[(1, "f")])])
                .await
        );
        ok!(n, add(&t, alice.id, "bob@example.org").await);
        let claimed = ok!(n, s.claim(10, 60_000).await);
        let uids: Vec<String> = claimed.iter().map(|c| c.uid.clone()).collect();
        let for_kind = |kind: OutboxKind| {
            claimed
                .iter()
                .find(|c| c.kind == kind)
                .map(|c| c.uid.clone())
                .unwrap_or_default()
        };
        let alices = ok!(n, s.sent_for_user(alice.id, &uids).await);
        assert_eq!(
            alices.into_iter().collect::<Vec<_>>(),
            [for_kind(OutboxKind::Confirmation)],
            "[{n}]"
        );
        let bobs_mail = ok!(n, s.sent_for_user(bob.id, &uids).await);
        assert_eq!(
            bobs_mail.into_iter().collect::<Vec<_>>(),
            [for_kind(OutboxKind::Notification)],
            "[{n}]"
        );
        assert!(ok!(n, s.sent_for_user(alice.id, &[]).await).is_empty());
    }
}

// Issue 10: a chat destination's code works for a week like a link, and two accounts
// cannot both confirm one Matrix user.
#[tokio::test]
async fn a_code_expires_and_one_chat_address_has_one_owner() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let mut ids = Vec::new();
        for owner in [alice.id, bob.id] {
            let d = ok!(
                n,
                s.add_destination(NewDestination {
                    user_id: owner,
                    channel: ChannelKind::Matrix,
                    address: "@carol:example.org",
                    confirmed: false,
                })
                .await
            );
            ids.push(d.id);
        }
        let claimed = ok!(n, s.claim(10, 60_000).await);
        let code = |id: i64| {
            claimed
                .iter()
                .find(|c| c.destination.id == id)
                .and_then(|c| c.confirmation_token())
                .map(str::to_string)
                .unwrap_or_default()
        };
        let (alices, bobs) = (code(ids[0]), code(ids[1]));
        assert_eq!(alices.len(), 11, "[{n}] {alices}");
        let expired = fails!(
            n,
            s.confirm_destination_code_within(alice.id, ids[0], &alices, -1)
                .await
        );
        assert!(
            matches!(expired, StoreError::Expired { .. }),
            "[{n}] {expired:?}"
        );
        ok!(
            n,
            s.confirm_destination_code(alice.id, ids[0], &alices).await
        );
        let taken = fails!(n, s.confirm_destination_code(bob.id, ids[1], &bobs).await);
        assert!(
            matches!(taken, StoreError::Conflict { .. }),
            "[{n}] {taken:?}"
        );
        // Bob's code is not alice's to use, nor a link.
        let theirs = fails!(n, s.confirm_destination_code(alice.id, ids[1], &bobs).await);
        assert!(matches!(theirs, StoreError::NotFound), "[{n}] {theirs:?}");
        let link = fails!(n, s.confirm_destination(&bobs).await);
        assert!(matches!(link, StoreError::NotFound), "[{n}] {link:?}");
    }
}
