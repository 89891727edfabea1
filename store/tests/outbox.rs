//! The outbox: claiming under a lease, recording outcomes, concurrent senders, what users
//! see, one-click unsubscribe.

use std::collections::BTreeSet;
use std::time::Duration;

use tidings_store::{now_ms, Claimed, OutboxKind, OutboxPayload, Outcome, Recorded, StoreError};

use crate::harness::{
    archived, backends, destination, fails, filter_input, notification, ok, user, TestStore,
};

/// Queues `count` notifications to one confirmed destination of a new user `name`, one
/// message each; returns the destination id.
async fn queue(t: &TestStore, name: &str, count: usize) -> i64 {
    let u = user(t, name).await;
    let d = destination(t, u.id, &format!("{name}@example.org"), true).await;
    for i in 0..count {
        let m = archived(t, &format!("{name}-{i}")).await;
        ok!(
            t.name,
            t.store
                .complete_message(m, &[notification(d.id, &[(1, "f")])])
                .await
        );
    }
    d.id
}

/// A lease or retry delay the test waits out.
const SHORT_MS: i64 = 800;

fn ids(claimed: &[Claimed]) -> Vec<i64> {
    claimed.iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn one_round_trip_records_outcomes_and_claims_the_next_rows() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        queue(&t, "carol", 5).await;
        let first = ok!(n, s.claim(2, 60_000).await);
        // An outcome from a claim that was lost meanwhile: fenced off, the rest recorded.
        let mut stale = first[1].clone();
        stale.claim_token = "not-this-claim".into();
        let retry = Outcome::Retry {
            error: "421 busy".into(),
            at: now_ms() + 60_000,
        };
        let cycle = ok!(
            n,
            s.record_and_claim(&[(&first[0], &Outcome::Sent), (&stale, &retry)], 10, 60_000)
                .await
        );
        assert_eq!(
            cycle.recorded,
            [Recorded::Current, Recorded::LeaseLost],
            "[{n}]"
        );
        let next: Vec<Claimed> = ok!(n, cycle.claimed)
            .into_iter()
            .flat_map(|batch| batch.rows)
            .collect();
        assert_eq!(next.len(), 3, "[{n}] the three rows not yet claimed");
        assert!(next.iter().all(|c| c.id > first[1].id), "[{n}] {next:?}");
        // Sent: one attempt, read back from the row; the fenced-off row is still leased.
        let log = ok!(n, s.deliveries(first[0].id).await);
        assert_eq!(log.len(), 1, "[{n}] {log:?}");
        assert_eq!(
            (log[0].attempt, log[0].outcome.as_str()),
            (1, "sent"),
            "[{n}]"
        );
        assert!(ok!(n, s.deliveries(first[1].id).await).is_empty(), "[{n}]");
        assert_eq!(ok!(n, s.outbox_counts().await), (0, 4, 1, 0), "[{n}]");
        // Recording only.
        let only = ok!(
            n,
            s.record_and_claim(&[(&first[1], &retry)], 0, 60_000).await
        );
        assert_eq!(only.recorded, [Recorded::Current], "[{n}]");
        assert!(ok!(n, only.claimed).is_empty(), "[{n}]");
        assert_eq!(ok!(n, s.outbox_counts().await), (1, 3, 1, 0), "[{n}]");
    }
}

#[tokio::test]
async fn claim_respects_limit_oldest_first() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        queue(&t, "alice", 5).await;
        let first = ok!(n, s.claim(2, 60_000).await);
        let rest = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(first.len(), 2, "[{n}] limit");
        assert_eq!(rest.len(), 3, "[{n}] the rest");
        let (a, b) = (ids(&first), ids(&rest));
        assert!(
            a.iter().all(|x| b.iter().all(|y| x < y)),
            "[{n}] oldest first: {a:?} {b:?}"
        );
        assert!(
            ok!(n, s.claim(10, 60_000).await).is_empty(),
            "[{n}] all leased"
        );
        assert_eq!(ok!(n, s.outbox_counts().await), (0, 5, 0, 0), "[{n}]");
        assert!(first.iter().chain(&rest).all(|c| c.attempt == 1), "[{n}]");
        let uids: BTreeSet<&str> = first.iter().chain(&rest).map(|c| c.uid.as_str()).collect();
        assert_eq!(uids.len(), 5, "[{n}] every row has its own uid");
        assert!(ok!(n, s.claim(0, 60_000).await).is_empty(), "[{n}] limit 0");
    }
}

#[tokio::test]
async fn expired_lease_is_claimed_again_with_the_same_uid() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        queue(&t, "alice", 2).await;
        let long = ok!(n, s.claim(1, 60_000).await);
        // Long enough that a loaded machine still makes the next claim within it.
        let short = ok!(n, s.claim(1, SHORT_MS).await);
        assert_eq!((long.len(), short.len()), (1, 1), "[{n}]");
        assert!(
            ok!(n, s.claim(10, 60_000).await).is_empty(),
            "[{n}] both leased"
        );
        tokio::time::sleep(Duration::from_millis(SHORT_MS as u64 + 200)).await;
        // The short lease ran out (its sender died): the row comes back, same identity.
        let again = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(ids(&again), ids(&short), "[{n}] only the expired one");
        assert_eq!(again[0].uid, short[0].uid, "[{n}] same uid");
        assert_eq!(again[0].attempt, short[0].attempt + 1, "[{n}] next attempt");
        assert!(
            ok!(n, s.claim(10, 60_000).await).is_empty(),
            "[{n}] leased again"
        );
    }
}

#[tokio::test]
async fn outcomes_update_status_log_and_counts() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let d = queue(&t, "alice", 3).await;
        let claimed = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(claimed.len(), 3, "[{n}]");
        assert!(claimed.iter().all(|c| c.destination.id == d), "[{n}]");
        let (sent, retried, dead) = (&claimed[0], &claimed[1], &claimed[2]);
        let later = now_ms() + 60_000;
        ok!(n, s.record(sent, &Outcome::Sent).await);
        let retry = Outcome::Retry {
            error: "421 try later".into(),
            at: later,
        };
        ok!(n, s.record(retried, &retry).await);
        let death = Outcome::Dead {
            error: "550 no such user".into(),
        };
        ok!(n, s.record(dead, &death).await);
        assert_eq!(ok!(n, s.outbox_counts().await), (1, 0, 1, 1), "[{n}]");

        let log = |id: i64| async move { ok!(n, s.deliveries(id).await) };
        let l = log(sent.id).await;
        assert_eq!(l.len(), 1, "[{n}] {l:?}");
        assert_eq!(
            (l[0].attempt, l[0].outcome.as_str(), l[0].detail.as_deref()),
            (1, "sent", None)
        );
        let l = log(retried.id).await;
        assert_eq!(l.len(), 1, "[{n}] {l:?}");
        assert_eq!(
            (l[0].outcome.as_str(), l[0].detail.as_deref()),
            ("retry", Some("421 try later"))
        );
        let l = log(dead.id).await;
        assert_eq!(
            (l[0].outcome.as_str(), l[0].detail.as_deref()),
            ("dead", Some("550 no such user"))
        );

        let user_id = claimed[0].destination.user_id;
        let views = ok!(n, s.notifications(user_id, 10).await);
        let view = |id: i64| views.iter().find(|v| v.id == id).cloned();
        let v = view(sent.id).unwrap_or_else(|| panic!("[{n}] {views:?}"));
        assert_eq!((v.status.as_str(), v.attempts), ("sent", 1), "[{n}]");
        assert!(v.sent_at.is_some() && v.last_error.is_none(), "[{n}] {v:?}");
        let v = view(retried.id).unwrap_or_else(|| panic!("[{n}] {views:?}"));
        assert_eq!(v.status, "pending", "[{n}]");
        assert_eq!(v.last_error.as_deref(), Some("421 try later"), "[{n}]");
        assert!(v.sent_at.is_none(), "[{n}]");
        let v = view(dead.id).unwrap_or_else(|| panic!("[{n}] {views:?}"));
        assert_eq!(v.status, "dead", "[{n}]");

        let deads = ok!(n, s.dead_notifications(10).await);
        assert_eq!(ids_of(&deads), [dead.id], "[{n}] dead letters");

        // Neither finished row comes back; the retry waits for its time.
        assert!(ok!(n, s.claim(10, 60_000).await).is_empty(), "[{n}]");
    }
}

fn ids_of(views: &[tidings_store::DeadNotification]) -> Vec<i64> {
    views.iter().map(|v| v.id).collect()
}

#[tokio::test]
async fn retry_waits_for_its_time() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        queue(&t, "alice", 2).await;
        let claimed = ok!(n, s.claim(10, 60_000).await);
        let (far, soon) = (&claimed[0], &claimed[1]);
        let retry = |at: i64| Outcome::Retry {
            error: "busy".into(),
            at,
        };
        ok!(n, s.record(far, &retry(now_ms() + 60_000)).await);
        ok!(n, s.record(soon, &retry(now_ms() + SHORT_MS)).await);
        assert_eq!(ok!(n, s.outbox_counts().await), (2, 0, 0, 0), "[{n}]");
        assert!(
            ok!(n, s.claim(10, 60_000).await).is_empty(),
            "[{n}] not yet"
        );
        tokio::time::sleep(Duration::from_millis(SHORT_MS as u64 + 200)).await;
        let again = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(ids(&again), [soon.id], "[{n}] only the one that is due");
        assert_eq!(again[0].uid, soon.uid, "[{n}] same uid");
        assert_eq!(again[0].attempt, 2, "[{n}]");
        ok!(n, s.record(&again[0], &Outcome::Sent).await);
        let attempts: Vec<(i64, String)> = ok!(n, s.deliveries(soon.id).await)
            .into_iter()
            .map(|d| (d.attempt, d.outcome))
            .collect();
        assert_eq!(attempts, [(1, "retry".into()), (2, "sent".into())], "[{n}]");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_row() {
    const ROWS: usize = 60;
    for t in backends().await {
        let n = t.name;
        let d = queue(&t, "alice", ROWS / 2).await;
        // More rows from messages fanned out to two destinations each.
        let bob = user(&t, "bob").await;
        let d2 = destination(&t, bob.id, "bob@example.org", true).await;
        for i in 0..ROWS / 4 {
            let m = archived(&t, &format!("fan-{i}")).await;
            let both = [notification(d, &[]), notification(d2.id, &[])];
            ok!(n, t.store.complete_message(m, &both).await);
        }
        assert_eq!(
            ok!(n, t.store.outbox_counts().await),
            (ROWS as i64, 0, 0, 0),
            "[{n}]"
        );
        let claimer = |store: tidings_store::Store| async move {
            let mut mine = Vec::new();
            loop {
                let batch = ok!(n, store.claim(3, 60_000).await);
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.id));
            }
        };
        let (a, b) = tokio::join!(claimer(t.store.clone()), claimer(t.store.clone()));
        let (a_set, b_set): (BTreeSet<i64>, BTreeSet<i64>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        assert_eq!(a_set.len(), a.len(), "[{n}] one claimer got a row twice");
        assert_eq!(b_set.len(), b.len(), "[{n}] one claimer got a row twice");
        let shared: Vec<&i64> = a_set.intersection(&b_set).collect();
        assert!(shared.is_empty(), "[{n}] both claimed {shared:?}");
        assert_eq!(a.len() + b.len(), ROWS, "[{n}] every row claimed");
        assert_eq!(
            ok!(n, t.store.outbox_counts().await),
            (0, ROWS as i64, 0, 0),
            "[{n}]"
        );
    }
}

#[tokio::test]
async fn users_see_only_their_notifications() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let da = destination(&t, alice.id, "alice@example.org", true).await;
        let db = destination(&t, bob.id, "bob@example.org", true).await;
        // A confirmation row is no notification.
        destination(&t, alice.id, "alice2@example.org", false).await;
        let m1 = archived(&t, "m1").await;
        let m2 = archived(&t, "m2").await;
        ok!(
            n,
            s.complete_message(
                m1,
                &[
                    notification(da.id, &[(7, "mine")]),
                    notification(db.id, &[])
                ]
            )
            .await
        );
        ok!(
            n,
            s.complete_message(m2, &[notification(da.id, &[(7, "mine")])])
                .await
        );

        let views = ok!(n, s.notifications(alice.id, 10).await);
        assert_eq!(views.len(), 2, "[{n}] {views:?}");
        assert_eq!(
            views[0].topic, "org.example.prod.app.m2",
            "[{n}] newest first"
        );
        assert_eq!(
            views[0].summary, "summary of m2",
            "[{n}] summary from metadata"
        );
        assert_eq!(views[1].summary, "summary of m1", "[{n}]");
        assert!(
            views.iter().all(|v| v.address == "alice@example.org"),
            "[{n}]"
        );
        assert!(
            views
                .iter()
                .all(|v| v.status == "pending" && v.attempts == 0),
            "[{n}]"
        );
        let filters: Vec<(i64, String)> = serde_json::from_str(&views[0].filters)
            .unwrap_or_else(|e| panic!("[{n}] filters {:?}: {e}", views[0].filters));
        assert_eq!(filters, [(7, "mine".to_string())], "[{n}]");
        assert_eq!(
            ok!(n, s.notifications(alice.id, 1).await).len(),
            1,
            "[{n}] limit"
        );

        let bobs = ok!(n, s.notifications(bob.id, 10).await);
        assert_eq!(bobs.len(), 1, "[{n}] {bobs:?}");
        assert_eq!(bobs[0].address, "bob@example.org", "[{n}]");
        assert!(
            ok!(n, s.notifications(bob.id + 1000, 10).await).is_empty(),
            "[{n}]"
        );
    }
}

#[tokio::test]
async fn unsubscribe_disables_the_filters_named() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let d = destination(&t, alice.id, "alice@example.org", true).await;
        let f1 = ok!(
            n,
            s.create_filter(alice.id, &filter_input("one", &[d.id]))
                .await
        );
        let f2 = ok!(
            n,
            s.create_filter(alice.id, &filter_input("two", &[d.id]))
                .await
        );
        let keep = ok!(
            n,
            s.create_filter(alice.id, &filter_input("keep", &[d.id]))
                .await
        );
        let bobs = ok!(
            n,
            s.create_filter(bob.id, &filter_input("bob's", &[])).await
        );
        let m = archived(&t, "m1").await;
        // The row names Bob's filter too (it must never be touched through Alice's link).
        let named = [(f1.id, "one"), (f2.id, "two"), (bobs.id, "bob's")];
        ok!(
            n,
            s.complete_message(m, &[notification(d.id, &named)]).await
        );
        let claimed = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}]");
        let uid = claimed[0]
            .unsubscribe_token
            .clone()
            .unwrap_or_else(|| panic!("[{n}] a notification has an unsubscribe link"));

        let target = ok!(n, s.unsubscribe_target(&uid).await);
        assert_eq!(target.user_id, alice.id, "[{n}]");
        assert_eq!(target.address, "alice@example.org", "[{n}]");
        let want: Vec<(i64, String)> = named.iter().map(|(i, s)| (*i, s.to_string())).collect();
        assert_eq!(target.filters, want, "[{n}]");
        assert!(
            ok!(n, s.filter(alice.id, f1.id).await).enabled,
            "[{n}] target only looks"
        );

        let done = ok!(n, s.unsubscribe(&uid).await);
        assert_eq!(done, target, "[{n}]");
        assert!(
            !ok!(n, s.filter(alice.id, f1.id).await).enabled,
            "[{n}] one off"
        );
        assert!(
            !ok!(n, s.filter(alice.id, f2.id).await).enabled,
            "[{n}] two off"
        );
        assert!(
            ok!(n, s.filter(alice.id, keep.id).await).enabled,
            "[{n}] others stay on"
        );
        assert!(
            ok!(n, s.filter(bob.id, bobs.id).await).enabled,
            "[{n}] Bob's untouched"
        );
        let active: Vec<i64> = ok!(n, s.active_filters(Some(alice.id)).await)
            .filters
            .into_iter()
            .map(|f| f.id)
            .collect();
        assert_eq!(active, [keep.id], "[{n}]");
        // Unsubscribing twice (a second click) is harmless.
        ok!(n, s.unsubscribe(&uid).await);

        let err = fails!(n, s.unsubscribe_target("no-such-uid").await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] got {err:?}");
        let err = fails!(n, s.unsubscribe("no-such-uid").await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] got {err:?}");
    }
}

#[tokio::test]
async fn confirmation_rows_have_no_unsubscribe_link() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        destination(&t, alice.id, "alice@example.org", false).await;
        let claimed = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{n}]");
        assert_eq!(claimed[0].kind, OutboxKind::Confirmation, "[{n}]");
        assert_eq!(claimed[0].unsubscribe_token, None, "[{n}]");
        let err = fails!(n, s.unsubscribe_target(&claimed[0].uid).await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] got {err:?}");
        assert!(
            ok!(n, s.notifications(alice.id, 10).await).is_empty(),
            "[{n}]"
        );
    }
}

// Issue 8 item 9: the unsubscribe secret is not the outbox uid (the Message-ID's base,
// public in every header), is not stored, and expires. Issue 9: it is the uid and the
// server key's HMAC of it, derived at render time and checked when the link is opened.
#[tokio::test]
async fn unsubscribe_links_are_secret_signed_and_expire() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let d = queue(&t, "alice", 1).await;
        let claimed = ok!(n, s.claim(10, 60_000).await);
        let (uid, token) = (
            claimed[0].uid.clone(),
            claimed[0].unsubscribe_token.clone().unwrap_or_default(),
        );
        assert_eq!(claimed[0].destination.id, d, "[{n}]");
        assert_eq!(token.len(), 32 + 1 + 43, "[{n}] {token:?}");
        assert!(token.starts_with(&format!("{uid}.")), "[{n}] {token:?}");
        let err = fails!(n, s.unsubscribe(&uid).await);
        assert!(
            matches!(err, StoreError::NotFound),
            "[{n}] the uid is no key: {err:?}"
        );
        // A forged signature (another uid's, or altered) opens nothing.
        let signature = &token[33..];
        let mut altered = signature.to_string();
        let last = if altered.ends_with('A') { "B" } else { "A" };
        altered.replace_range(42.., last);
        for forged in [
            format!("{uid}.{altered}"),
            format!("{uid}.{}", tidings_store::secret::new_token()),
            format!("{}.{signature}", "B".repeat(32)),
        ] {
            let err = fails!(n, s.unsubscribe(&forged).await);
            assert!(
                matches!(err, StoreError::NotFound),
                "[{n}] {forged}: {err:?}"
            );
        }
        let again = ok!(n, s.claim(10, 1).await);
        assert!(again.is_empty(), "[{n}] leased");
        // Nothing secret is stored: no column of the row holds the signature.
        crate::harness::execute(
            &t,
            &format!(
                "UPDATE outbox SET last_error = 'nothing stored' WHERE uid = '{uid}' \
                 AND unsubscribe_hash IS NULL AND filters NOT LIKE '%{signature}%' \
                 AND COALESCE(payload, '') NOT LIKE '%{signature}%'"
            ),
        )
        .await;
        let views = ok!(n, s.notifications(claimed[0].destination.user_id, 10).await);
        assert_eq!(
            views[0].last_error.as_deref(),
            Some("nothing stored"),
            "[{n}]"
        );
        ok!(n, s.unsubscribe_target(&token).await);

        // A link of a mail queued before issue 9 (only its secret's digest stored) still
        // works.
        let legacy = tidings_store::secret::new_token();
        let digest = tidings_store::secret::token_digest(&legacy);
        crate::harness::execute(
            &t,
            &format!("UPDATE outbox SET unsubscribe_hash = '{digest}' WHERE uid = '{uid}'"),
        )
        .await;
        ok!(n, s.unsubscribe_target(&legacy).await);

        // 91 days later the link has expired, and says so.
        let old = tidings_store::now_ms() - tidings_store::UNSUBSCRIBE_TTL_MS - 86_400_000;
        crate::harness::execute(&t, &format!("UPDATE outbox SET created_at = {old}")).await;
        let err = fails!(n, s.unsubscribe(&token).await);
        assert!(matches!(err, StoreError::Expired { .. }), "[{n}] {err:?}");
    }
}

/// One user's unreadable row never stops anyone else's mail (issue 8: "one user's bad data
/// never stops the service for anyone else"): a claimed row whose message cannot be read is
/// dead with the reason, the rest of the batch is claimed, and the owner's notification list
/// still shows.
#[tokio::test]
async fn an_unreadable_row_is_dead_and_the_batch_goes_on() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let bad = queue(&t, "mallory", 1).await;
        queue(&t, "alice", 2).await;
        crate::harness::execute(
            &t,
            "UPDATE messages SET metadata = 'not json' WHERE msg_id = 'mallory-0'",
        )
        .await;
        let claimed = ok!(n, s.claim(10, 60_000).await);
        assert_eq!(claimed.len(), 2, "[{n}] alice's rows are claimed");
        assert!(
            claimed.iter().all(|c| c.destination.id != bad),
            "[{n}] {claimed:?}"
        );
        assert_eq!(ok!(n, s.outbox_counts().await), (0, 2, 0, 1), "[{n}]");
        let dead = ok!(n, s.dead_notifications(10).await);
        assert_eq!(dead.len(), 1, "[{n}]");
        let error = dead[0].last_error.clone().unwrap_or_default();
        assert!(error.contains("message metadata"), "[{n}] {error}");
        let mallory = ok!(n, s.user_by_name("mallory").await).map(|u| u.id);
        let views = ok!(n, s.notifications(mallory.unwrap_or(0), 10).await);
        assert_eq!(views.len(), 1, "[{n}] the list still shows");
        assert!(views[0].summary.contains("could not be read"), "[{n}]");
    }
}

// Issue 9: a send that outlived its lease (lease 2 s, an SMTP server answering after 3 s)
// recorded its outcome over the row's newer claim. Recording is fenced by the claim token:
// the late outcome is dropped and reported, and the newer claim's outcome stands.
#[tokio::test]
async fn a_late_record_from_a_lost_lease_changes_nothing() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        queue(&t, "alice", 1).await;
        let old = ok!(n, s.claim(1, SHORT_MS).await);
        tokio::time::sleep(Duration::from_millis(SHORT_MS as u64 + 200)).await;
        let new = ok!(n, s.claim(1, 60_000).await);
        assert_eq!(ids(&old), ids(&new), "[{n}] the same row, claimed again");
        assert_ne!(
            old[0].claim_token, new[0].claim_token,
            "[{n}] a fresh token"
        );
        assert_eq!(
            ok!(n, s.record(&new[0], &Outcome::Sent).await),
            Recorded::Current,
            "[{n}]"
        );
        let late = Outcome::Retry {
            error: "timed out".into(),
            at: now_ms(),
        };
        assert_eq!(
            ok!(n, s.record(&old[0], &late).await),
            Recorded::LeaseLost,
            "[{n}] the old claim's outcome is refused"
        );
        assert_eq!(
            ok!(n, s.outbox_counts().await),
            (0, 0, 1, 0),
            "[{n}] still sent"
        );
        let log = ok!(n, s.deliveries(new[0].id).await);
        assert_eq!(
            log.len(),
            1,
            "[{n}] only the current outcome is logged: {log:?}"
        );
        assert_eq!(log[0].attempt, 2, "[{n}]");
        // A finished row takes no second outcome from its own claim either.
        assert_eq!(
            ok!(
                n,
                s.record(&new[0], &Outcome::Dead { error: "x".into() })
                    .await
            ),
            Recorded::LeaseLost,
            "[{n}]"
        );
        // Nor does an old claim overwrite a row still in flight under a newer claim.
        queue(&t, "bob", 1).await;
        let first = ok!(n, s.claim(1, SHORT_MS).await);
        tokio::time::sleep(Duration::from_millis(SHORT_MS as u64 + 200)).await;
        let second = ok!(n, s.claim(1, 60_000).await);
        assert_eq!(ids(&first), ids(&second), "[{n}]");
        assert_eq!(
            ok!(n, s.record(&first[0], &Outcome::Sent).await),
            Recorded::LeaseLost,
            "[{n}] in flight under the newer claim"
        );
        assert_eq!(ok!(n, s.outbox_counts().await), (0, 1, 1, 0), "[{n}]");
    }
}

#[tokio::test]
async fn claims_group_rows_by_destination() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let a = destination(&t, alice.id, "alice@example.org", true).await;
        let b = destination(&t, bob.id, "bob@example.org", true).await;
        // Interleaved: a, b, a, b, a.
        for i in 0..5 {
            let m = archived(&t, &format!("m-{i}")).await;
            let to = if i % 2 == 0 { a.id } else { b.id };
            ok!(
                n,
                s.complete_message(m, &[notification(to, &[(1, "f")])])
                    .await
            );
        }
        // And one message to both: each claimed row carries it.
        let both = archived(&t, "m-both").await;
        ok!(
            n,
            s.complete_message(
                both,
                &[
                    notification(a.id, &[(1, "f")]),
                    notification(b.id, &[(2, "g")])
                ]
            )
            .await
        );
        let batches = ok!(n, s.claim_batches(10, 60_000).await);
        let shape: Vec<(i64, usize)> = batches
            .iter()
            .map(|b| (b.destination.id, b.rows.len()))
            .collect();
        assert_eq!(shape, [(a.id, 4), (b.id, 3)], "[{n}]");
        let carrying = batches
            .iter()
            .flat_map(|b| &b.rows)
            .filter(|r| r.message.as_ref().is_some_and(|m| m.id == both))
            .count();
        assert_eq!(carrying, 2, "[{n}] one message, two rows");
        for batch in &batches {
            assert!(
                batch
                    .rows
                    .iter()
                    .all(|r| r.destination.id == batch.destination.id),
                "[{n}]"
            );
            assert!(
                batch.rows.windows(2).all(|w| w[0].id < w[1].id),
                "[{n}] oldest first"
            );
            let tokens: BTreeSet<&str> =
                batch.rows.iter().map(|r| r.claim_token.as_str()).collect();
            assert_eq!(tokens.len(), 1, "[{n}] one claim, one token");
        }
    }
}

// A channel's rate limit postpones the row without spending one of its attempts.
#[tokio::test]
async fn rate_limits_postpone_without_counting_an_attempt() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        queue(&t, "alice", 1).await;
        let claimed = ok!(n, s.claim(1, 60_000).await);
        assert_eq!(claimed[0].attempt, 1, "[{n}]");
        let limited = Outcome::RateLimited {
            error: "slow down".into(),
            at: now_ms() + SHORT_MS,
        };
        assert_eq!(
            ok!(n, s.record(&claimed[0], &limited).await),
            Recorded::Current,
            "[{n}]"
        );
        assert!(
            ok!(n, s.claim(1, 60_000).await).is_empty(),
            "[{n}] not before its time"
        );
        tokio::time::sleep(Duration::from_millis(SHORT_MS as u64 + 200)).await;
        let again = ok!(n, s.claim(1, 60_000).await);
        assert_eq!(again[0].attempt, 1, "[{n}] the rate limit cost no attempt");
        let log = ok!(n, s.deliveries(again[0].id).await);
        assert_eq!(log[0].outcome, "rate_limited", "[{n}]");
    }
}

#[test]
fn payloads_are_versioned_and_round_trip() {
    let payload = OutboxPayload::ConfirmationV1 {
        token: "secret".into(),
    };
    let json = payload.to_json().unwrap_or_default();
    assert_eq!(json, r#"{"kind":"confirmation/1","token":"secret"}"#);
    assert_eq!(OutboxPayload::from_json(&json).ok(), Some(payload));
    // The pre-issue-9 shape is only read through migration 0009, never as is.
    assert!(OutboxPayload::from_json(r#"{"token":"secret"}"#).is_err());
}

/// Issue 10, the mirrors' case: a webhook's notifications go one at a time, in the order
/// they were queued (the rest wait `held`); a failing one holds the later ones back until
/// it goes through, and a dead one lets them go. An email destination's rows are claimed
/// all at once beside them.
#[tokio::test]
async fn a_webhooks_rows_are_claimed_one_at_a_time_in_order() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let mirror = user(&t, "mirror").await;
        let hook = ok!(
            n,
            s.add_destination(tidings_store::NewDestination {
                user_id: mirror.id,
                channel: tidings_store::ChannelKind::Webhook,
                address: "https://mirror.example.org/hook",
                confirmed: true,
            })
            .await
        );
        for i in 0..3 {
            let m = archived(&t, &format!("sync-{i}")).await;
            ok!(
                n,
                s.complete_message(m, &[notification(hook.id, &[(1, "f")])])
                    .await
            );
        }
        let mail = queue(&t, "alice", 3).await;
        let first = ok!(n, s.claim(100, 60_000).await);
        let to = |d: i64, claimed: &[Claimed]| -> Vec<i64> {
            claimed
                .iter()
                .filter(|c| c.destination.id == d)
                .map(|c| c.id)
                .collect()
        };
        assert_eq!(to(mail, &first).len(), 3, "[{n}] mail goes all at once");
        let head = to(hook.id, &first);
        assert_eq!(head.len(), 1, "[{n}] one webhook row in flight: {first:?}");
        let head = first
            .iter()
            .find(|c| c.id == head[0])
            .cloned()
            .unwrap_or_else(|| panic!("[{n}] the head row"));
        // While it is in flight, and after it failed (due later), nothing else of it goes.
        assert!(ok!(n, s.claim(100, 60_000).await).is_empty(), "[{n}]");
        let retry = Outcome::Retry {
            error: "503".into(),
            at: now_ms() - 1,
        };
        let cycle = ok!(n, s.record_and_claim(&[(&head, &retry)], 100, 60_000).await);
        let again: Vec<Claimed> = ok!(n, cycle.claimed)
            .into_iter()
            .flat_map(|b| b.rows)
            .collect();
        assert_eq!(ids(&again), [head.id], "[{n}] the failed head again, alone");
        // Sent: the next one in line, in the same round trip.
        let cycle = ok!(
            n,
            s.record_and_claim(&[(&again[0], &Outcome::Sent)], 100, 60_000)
                .await
        );
        let second: Vec<Claimed> = ok!(n, cycle.claimed)
            .into_iter()
            .flat_map(|b| b.rows)
            .collect();
        assert_eq!(second.len(), 1, "[{n}] {second:?}");
        assert!(second[0].id > head.id, "[{n}] in order");
        // Dead: it lets the last one go.
        let dead = Outcome::Dead {
            error: "400".into(),
        };
        let cycle = ok!(
            n,
            s.record_and_claim(&[(&second[0], &dead)], 100, 60_000)
                .await
        );
        let third: Vec<Claimed> = ok!(n, cycle.claimed)
            .into_iter()
            .flat_map(|b| b.rows)
            .collect();
        assert_eq!(third.len(), 1, "[{n}] {third:?}");
        assert!(third[0].id > second[0].id, "[{n}] in order");
    }
}
