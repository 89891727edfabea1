//! Issue 8 item 2: one unreadable filter row never fails loading for everyone. Rows
//! written past the store (corrupt JSON, nested too deep, an unknown delivery, bytes that
//! are not text) come back as unreadable beside the good ones; quarantining sets them
//! aside once; saving lifts it; the admin lists them.

use sqlx::{Connection as _, Executor as _};
use tidings_rules::Condition;
use tidings_store::{FilterInput, StoreError, UnreadableFilter};

use crate::harness::{backends, destination, fails, filter_input, ok, user, TestStore};

/// Runs SQL straight on the test's database, as an older version or a hand would write.
async fn raw(t: &TestStore, sql: &str) {
    let done = if t.name == "sqlite" {
        match sqlx::SqliteConnection::connect(&t.url).await {
            Ok(mut conn) => conn.execute(sql).await.map(drop),
            Err(err) => Err(err),
        }
    } else {
        match sqlx::PgConnection::connect(&t.url).await {
            Ok(mut conn) => conn.execute(sql).await.map(drop),
            Err(err) => Err(err),
        }
    };
    if let Err(err) = done {
        panic!("[{}] {sql}: {err}", t.name);
    }
}

/// Overwrites a filter's stored condition, and dates the row in the past.
async fn corrupt(t: &TestStore, id: i64, condition: &str) {
    let quoted = condition.replace('\'', "''");
    raw(
        t,
        &format!("UPDATE filters SET condition = '{quoted}', updated_at = 1 WHERE id = {id}"),
    )
    .await;
}

/// JSON nested past serde_json's own recursion limit.
fn past_serde_limit() -> String {
    "{\"not\":".repeat(200) + "{\"topic_is\":\"a\"}" + &"}".repeat(200)
}

/// JSON serde_json reads, but a tree nested past the condition limit (60 `and` levels).
fn past_our_limit() -> String {
    let mut c = Condition::TopicIs("a".into());
    for _ in 0..60 {
        c = Condition::And(vec![Condition::TopicIs("b".into()), c]);
    }
    c.to_json()
}

fn unreadable_named<'a>(list: &'a [UnreadableFilter], name: &str) -> &'a UnreadableFilter {
    match list.iter().find(|u| u.name == name) {
        Some(u) => u,
        None => panic!("no unreadable filter {name:?} in {list:?}"),
    }
}

#[tokio::test]
async fn unreadable_rows_are_reported_beside_the_good_ones() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let d = destination(&t, alice.id, "a@example.org", true).await;
        let good = ok!(
            n,
            s.create_filter(alice.id, &filter_input("good", &[d.id]))
                .await
        );
        let bobs = ok!(
            n,
            s.create_filter(bob.id, &filter_input("bob's", &[])).await
        );
        let mut bad = Vec::new();
        for name in ["json", "deep", "deeper", "delivery"] {
            bad.push(
                ok!(
                    n,
                    s.create_filter(alice.id, &filter_input(name, &[d.id]))
                        .await
                )
                .id,
            );
        }
        corrupt(&t, bad[0], "{\"topic_is\":").await;
        corrupt(&t, bad[1], &past_serde_limit()).await;
        corrupt(&t, bad[2], &past_our_limit()).await;
        raw(
            &t,
            &format!(
                "UPDATE filters SET delivery = 'digest' WHERE id = {}",
                bad[3]
            ),
        )
        .await;

        let list = ok!(n, s.filters(alice.id).await);
        assert_eq!(list.filters, std::slice::from_ref(&good), "[{n}]");
        assert_eq!(list.len(), 5, "[{n}] every row listed");
        let json = unreadable_named(&list.unreadable, "json");
        assert!(
            json.reason.starts_with("condition: line 1"),
            "[{n}] {json:?}"
        );
        assert_eq!(json.stored_condition, "{\"topic_is\":", "[{n}]");
        assert_eq!(json.destination_ids, [d.id], "[{n}]");
        assert!(json.enabled && json.quarantine.is_none(), "[{n}] {json:?}");
        for deep in ["deep", "deeper"] {
            let u = unreadable_named(&list.unreadable, deep);
            assert!(
                u.reason.contains("nest deeper than 48 levels"),
                "[{n}] {u:?}"
            );
        }
        let u = unreadable_named(&list.unreadable, "delivery");
        assert!(
            u.reason.contains("unknown delivery \"digest\""),
            "[{n}] {u:?}"
        );

        // The matcher's view: everyone's good filters, and the bad ones to set aside.
        let active = ok!(n, s.active_filters(None).await);
        let ids: Vec<i64> = active.filters.iter().map(|f| f.id).collect();
        assert_eq!(ids, [good.id, bobs.id], "[{n}]");
        assert_eq!(active.unreadable.len(), 4, "[{n}]");

        match fails!(n, s.filter(alice.id, bad[0]).await) {
            StoreError::UnreadableFilter(u) => assert_eq!(u.id, bad[0], "[{n}]"),
            other => panic!("[{n}] expected UnreadableFilter, got {other:?}"),
        }
        assert_eq!(ok!(n, s.filter(alice.id, good.id).await), good, "[{n}]");
        assert!(
            matches!(
                fails!(n, s.filter(bob.id, bad[0]).await),
                StoreError::NotFound
            ),
            "[{n}] still nobody else's"
        );
    }
}

/// SQLite keeps whatever bytes are written: a condition that is not text at all is
/// reported like any other unreadable row (PostgreSQL refuses such bytes on write).
#[tokio::test]
async fn a_row_that_does_not_decode_is_salvaged() {
    for t in backends().await {
        if t.name != "sqlite" {
            continue;
        }
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let good = ok!(
            n,
            s.create_filter(alice.id, &filter_input("good", &[])).await
        );
        let bad = ok!(
            n,
            s.create_filter(alice.id, &filter_input("bytes", &[])).await
        );
        raw(
            &t,
            &format!(
                "UPDATE filters SET condition = X'FFFE00' WHERE id = {}",
                bad.id
            ),
        )
        .await;
        let list = ok!(n, s.active_filters(None).await);
        assert_eq!(list.filters, [good], "[{n}]");
        let u = unreadable_named(&list.unreadable, "bytes");
        assert!(u.reason.contains("does not decode"), "[{n}] {u:?}");
        assert!(ok!(n, s.quarantine_filter(u).await), "[{n}]");
        assert!(
            ok!(n, s.active_filters(None).await).unreadable.is_empty(),
            "[{n}]"
        );
    }
}

#[tokio::test]
async fn quarantine_sets_aside_once_and_saving_lifts_it() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d = destination(&t, alice.id, "a@example.org", true).await;
        let bad = ok!(
            n,
            s.create_filter(alice.id, &filter_input("broken", &[d.id]))
                .await
        );
        let other = ok!(
            n,
            s.create_filter(alice.id, &filter_input("other", &[])).await
        );
        corrupt(&t, bad.id, "not json").await;
        corrupt(&t, other.id, "[]").await;

        let found = ok!(n, s.active_filters(Some(alice.id)).await).unreadable;
        let broken = unreadable_named(&found, "broken");
        assert!(
            ok!(n, s.quarantine_filter(broken).await),
            "[{n}] first time"
        );
        assert!(
            !ok!(n, s.quarantine_filter(broken).await),
            "[{n}] only once"
        );
        // Quarantined filters are out of matching: not loaded, so not reported again.
        let active = ok!(n, s.active_filters(None).await);
        assert_eq!(active.unreadable.len(), 1, "[{n}] {active:?}");
        assert_eq!(active.unreadable[0].id, other.id, "[{n}]");

        // The owner still sees it, with why; so does the admin.
        let listed = ok!(n, s.filters(alice.id).await).unreadable;
        let listed = unreadable_named(&listed, "broken");
        let quarantine = listed
            .quarantine
            .clone()
            .unwrap_or_else(|| panic!("[{n}] {listed:?}"));
        assert_eq!(quarantine.reason, broken.reason, "[{n}]");
        let all = ok!(n, s.quarantined_filters().await);
        assert_eq!(all.len(), 1, "[{n}] {all:?}");
        assert_eq!(
            (all[0].id, all[0].username.as_str()),
            (bad.id, "alice"),
            "[{n}]"
        );
        assert_eq!(all[0].reason, broken.reason, "[{n}]");

        // Saving a new condition lifts the quarantine; the filter matches again.
        let mut input = filter_input("broken", &[d.id]);
        input.condition = Condition::TopicIs("org.example.prod.fixed".into());
        let saved = ok!(n, s.update_filter(alice.id, bad.id, &input).await);
        assert_eq!(saved.quarantine, None, "[{n}]");
        assert_eq!(
            ok!(n, s.filter(alice.id, bad.id).await),
            saved,
            "[{n}] read back"
        );
        let active = ok!(n, s.active_filters(None).await).filters;
        assert!(active.iter().any(|f| f.id == bad.id), "[{n}] {active:?}");
        assert!(ok!(n, s.quarantined_filters().await).is_empty(), "[{n}]");

        // One read before a save is stale after it: it must not set the saved filter aside.
        let stale = ok!(n, s.filters(alice.id).await).unreadable;
        let stale = unreadable_named(&stale, "other");
        ok!(
            n,
            s.update_filter(alice.id, other.id, &filter_input("other", &[]))
                .await
        );
        assert!(!ok!(n, s.quarantine_filter(stale).await), "[{n}] stale");
        assert_eq!(
            ok!(n, s.filter(alice.id, other.id).await).quarantine,
            None,
            "[{n}]"
        );

        // An unreadable filter can be deleted like any other.
        corrupt(&t, other.id, "{").await;
        ok!(n, s.delete_filter(alice.id, other.id).await);
        assert_eq!(ok!(n, s.filters(alice.id).await).len(), 1, "[{n}]");
    }
}

/// Issue 8 item 2: the save was committed before the stored form was checked, so a
/// condition that could not be read back stayed in the database (and the user got a 500).
#[tokio::test]
async fn a_condition_that_would_not_load_is_refused_before_any_row_is_written() {
    let mut deep = Condition::TopicIs("a".into());
    for _ in 0..60 {
        deep = Condition::Not(Box::new(deep));
    }
    let one_part = Condition::Or(vec![Condition::TopicIs("a".into())]);
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let before = ok!(n, s.last_change().await);
        for condition in [&deep, &one_part] {
            let input = FilterInput {
                condition: condition.clone(),
                ..filter_input("refused", &[])
            };
            let err = fails!(n, s.create_filter(alice.id, &input).await);
            assert!(
                matches!(
                    &err,
                    StoreError::Invalid {
                        field: "condition",
                        ..
                    }
                ),
                "[{n}] {err:?}"
            );
            assert!(ok!(n, s.filters(alice.id).await).is_empty(), "[{n}] no row");
        }
        let kept = ok!(
            n,
            s.create_filter(alice.id, &filter_input("kept", &[])).await
        );
        let input = FilterInput {
            condition: deep.clone(),
            ..filter_input("kept", &[])
        };
        let err = fails!(n, s.update_filter(alice.id, kept.id, &input).await);
        assert!(
            err.to_string().contains("nest deeper than 48 levels"),
            "[{n}] {err}"
        );
        assert_eq!(
            ok!(n, s.filter(alice.id, kept.id).await),
            kept,
            "[{n}] unchanged"
        );
        assert_eq!(
            ok!(n, s.changes_since(before).await).len(),
            1,
            "[{n}] only the good save is logged"
        );
    }
}
