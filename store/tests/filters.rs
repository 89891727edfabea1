//! Filters: ownership of destinations and filters, round-trips, the active set, the change
//! log the notifier follows.

use tidings_rules::condition::{Operand, SetField, Variable};
use tidings_rules::Condition;
use tidings_store::{Change, StoreError};

use crate::harness::{backends, destination, fails, filter_input, ok, user, TestStore};

#[tokio::test]
async fn create_with_own_destinations() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d1 = destination(&t, alice.id, "a1@example.org", true).await;
        let d2 = destination(&t, alice.id, "a2@example.org", false).await;
        let f = ok!(
            n,
            s.create_filter(alice.id, &filter_input(" mine ", &[d2.id, d1.id]))
                .await
        );
        assert_eq!(f.name, "mine", "[{n}] trimmed");
        assert_eq!(f.user_id, alice.id, "[{n}]");
        assert!(f.enabled, "[{n}]");
        let mut ids = vec![d1.id, d2.id];
        ids.sort_unstable();
        assert_eq!(f.destination_ids, ids, "[{n}]");
        assert_eq!(ok!(n, s.filter(alice.id, f.id).await), f, "[{n}] read back");
        assert_eq!(
            ok!(n, s.filters(alice.id).await).filters,
            std::slice::from_ref(&f),
            "[{n}]"
        );

        let none = ok!(
            n,
            s.create_filter(alice.id, &filter_input("none", &[])).await
        );
        assert!(none.destination_ids.is_empty(), "[{n}]");
        assert_eq!(
            ok!(n, s.filters(alice.id).await).filters,
            [f, none],
            "[{n}] oldest first"
        );
    }
}

#[tokio::test]
async fn foreign_destination_is_invalid() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let own = destination(&t, alice.id, "a@example.org", true).await;
        let theirs = destination(&t, bob.id, "b@example.org", true).await;
        let input = filter_input("sneaky", &[own.id, theirs.id]);
        let err = fails!(n, s.create_filter(alice.id, &input).await);
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "destinations",
                    ..
                }
            ),
            "[{n}] got {err:?}"
        );
        let missing = filter_input("missing", &[theirs.id + 1000]);
        let err = fails!(n, s.create_filter(alice.id, &missing).await);
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "destinations",
                    ..
                }
            ),
            "[{n}] got {err:?}"
        );
        assert!(
            ok!(n, s.filters(alice.id).await).is_empty(),
            "[{n}] nothing stored"
        );

        let f = ok!(
            n,
            s.create_filter(alice.id, &filter_input("ok", &[own.id]))
                .await
        );
        let err = fails!(n, s.update_filter(alice.id, f.id, &input).await);
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "destinations",
                    ..
                }
            ),
            "[{n}] update: {err:?}"
        );
        assert_eq!(ok!(n, s.filter(alice.id, f.id).await), f, "[{n}] unchanged");
    }
}

#[tokio::test]
async fn names_are_checked_and_unique_per_user() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        for bad in ["", "   ", &"x".repeat(101)] {
            let err = fails!(n, s.create_filter(alice.id, &filter_input(bad, &[])).await);
            assert!(
                matches!(err, StoreError::Invalid { field: "name", .. }),
                "[{n}] {bad:?}: {err:?}"
            );
        }
        ok!(
            n,
            s.create_filter(alice.id, &filter_input("same", &[])).await
        );
        let err = fails!(
            n,
            s.create_filter(alice.id, &filter_input("same", &[])).await
        );
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "[{n}] got {err:?}"
        );
        ok!(n, s.create_filter(bob.id, &filter_input("same", &[])).await);
    }
}

#[tokio::test]
async fn update_and_delete() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d1 = destination(&t, alice.id, "a1@example.org", true).await;
        let d2 = destination(&t, alice.id, "a2@example.org", true).await;
        let f = ok!(
            n,
            s.create_filter(alice.id, &filter_input("before", &[d1.id]))
                .await
        );
        let mut input = filter_input("after", &[d2.id]);
        input.enabled = false;
        input.condition = Condition::TopicIs("org.example.prod.other".into());
        let updated = ok!(n, s.update_filter(alice.id, f.id, &input).await);
        assert_eq!(updated.id, f.id, "[{n}]");
        assert_eq!(updated.name, "after", "[{n}]");
        assert_eq!(updated.condition, input.condition, "[{n}]");
        assert_eq!(updated.destination_ids, [d2.id], "[{n}] links replaced");
        assert!(!updated.enabled, "[{n}]");
        assert_eq!(updated.created_at, f.created_at, "[{n}]");
        assert!(updated.updated_at >= f.updated_at, "[{n}]");
        assert_eq!(
            ok!(n, s.filter(alice.id, f.id).await),
            updated,
            "[{n}] read back"
        );

        // Deleting a destination unlinks it from filters.
        ok!(n, s.delete_destination(alice.id, d2.id).await);
        assert!(ok!(n, s.filter(alice.id, f.id).await)
            .destination_ids
            .is_empty());

        ok!(n, s.delete_filter(alice.id, f.id).await);
        assert!(matches!(
            fails!(n, s.filter(alice.id, f.id).await),
            StoreError::NotFound
        ));
        assert!(matches!(
            fails!(n, s.delete_filter(alice.id, f.id).await),
            StoreError::NotFound
        ));
        let err = fails!(
            n,
            s.update_filter(alice.id, f.id, &filter_input("x", &[]))
                .await
        );
        assert!(
            matches!(err, StoreError::NotFound),
            "[{n}] update deleted: {err:?}"
        );
    }
}

/// Regression: the same destination listed twice made saving fail with a conflict on the
/// link table.
#[tokio::test]
async fn repeated_destination_is_linked_once() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let d = destination(&t, alice.id, "a@example.org", true).await;
        let f = ok!(
            n,
            s.create_filter(alice.id, &filter_input("twice", &[d.id, d.id]))
                .await
        );
        assert_eq!(f.destination_ids, [d.id], "[{n}]");
        assert_eq!(ok!(n, s.filter(alice.id, f.id).await), f, "[{n}] read back");
        let again = ok!(
            n,
            s.update_filter(alice.id, f.id, &filter_input("t", &[d.id, d.id]))
                .await
        );
        assert_eq!(again.destination_ids, [d.id], "[{n}]");
    }
}

#[tokio::test]
async fn users_cannot_touch_each_others_filters() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let f = ok!(
            n,
            s.create_filter(alice.id, &filter_input("alice's", &[]))
                .await
        );
        let err = fails!(n, s.filter(bob.id, f.id).await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] get: {err:?}");
        let err = fails!(
            n,
            s.update_filter(bob.id, f.id, &filter_input("mine now", &[]))
                .await
        );
        assert!(matches!(err, StoreError::NotFound), "[{n}] update: {err:?}");
        let err = fails!(n, s.delete_filter(bob.id, f.id).await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] delete: {err:?}");
        assert!(ok!(n, s.filters(bob.id).await).is_empty(), "[{n}]");
        assert_eq!(ok!(n, s.filter(alice.id, f.id).await), f, "[{n}] untouched");
    }
}

#[tokio::test]
async fn condition_round_trips() {
    let parsed = match Condition::parse(
        r#"topic ~ "org.fedoraproject.*.bodhi.**" and (usernames has $me or packages has $my_packages)"#,
    ) {
        Ok(c) => c,
        Err(err) => panic!("parse: {err}"),
    };
    let built = Condition::Or(vec![
        Condition::Not(Box::new(Condition::TopicIs("org.example.prod.x".into()))),
        Condition::And(vec![
            Condition::Has {
                field: SetField::Groups,
                value: Operand::Var(Variable::MyGroups),
            },
            Condition::Has {
                field: SetField::Usernames,
                value: Operand::Literal("quote \" and ünïcode".into()),
            },
        ]),
    ]);
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        for (i, condition) in [parsed.clone(), built.clone()].into_iter().enumerate() {
            let mut input = filter_input(&format!("f{i}"), &[]);
            input.condition = condition.clone();
            let f = ok!(n, s.create_filter(alice.id, &input).await);
            assert_eq!(
                ok!(n, s.filter(alice.id, f.id).await).condition,
                condition,
                "[{n}]"
            );
        }
    }
}

#[tokio::test]
async fn active_filters_skip_disabled_filters_and_users() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let d = destination(&t, alice.id, "a@example.org", true).await;
        let on = ok!(
            n,
            s.create_filter(alice.id, &filter_input("on", &[d.id]))
                .await
        );
        let mut off = filter_input("off", &[d.id]);
        off.enabled = false;
        ok!(n, s.create_filter(alice.id, &off).await);
        let bobs = ok!(
            n,
            s.create_filter(bob.id, &filter_input("bob's", &[])).await
        );

        let ids = |filters: Vec<tidings_store::Filter>| -> Vec<i64> {
            filters.into_iter().map(|f| f.id).collect()
        };
        assert_eq!(
            ids(ok!(n, s.active_filters(None).await).filters),
            [on.id, bobs.id],
            "[{n}]"
        );
        let alices = ok!(n, s.active_filters(Some(alice.id)).await).filters;
        assert_eq!(alices, std::slice::from_ref(&on), "[{n}] with destinations");

        ok!(n, s.set_user_disabled("bob", true).await);
        assert_eq!(
            ids(ok!(n, s.active_filters(None).await).filters),
            [on.id],
            "[{n}]"
        );
        assert!(
            ok!(n, s.active_filters(Some(bob.id)).await).is_empty(),
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.filters(bob.id).await).len(),
            1,
            "[{n}] still listed"
        );
        ok!(n, s.set_user_disabled("bob", false).await);
        assert_eq!(
            ids(ok!(n, s.active_filters(None).await).filters),
            [on.id, bobs.id],
            "[{n}]"
        );
    }
}

/// The rows logged since `after`, and the new position.
async fn new_changes(t: &TestStore, after: &mut i64) -> Vec<Change> {
    let changes = ok!(t.name, t.store.changes_since(*after).await);
    if let Some(last) = changes.last() {
        *after = last.id;
    }
    assert_eq!(
        ok!(t.name, t.store.last_change().await),
        *after,
        "[{}]",
        t.name
    );
    changes
}

#[tokio::test]
async fn every_change_is_logged() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let mut at = ok!(n, s.last_change().await);
        let one = |changes: Vec<Change>, user_id: i64, what: &str| {
            assert_eq!(changes.len(), 1, "[{n}] {what}: {changes:?}");
            assert_eq!(changes[0].user_id, user_id, "[{n}] {what}");
        };

        let d = destination(&t, alice.id, "a@example.org", false).await;
        one(new_changes(&t, &mut at).await, alice.id, "add destination");
        let token = ok!(n, s.claim(1, 60_000).await)
            .pop()
            .and_then(|c| c.confirmation_token().map(str::to_string))
            .unwrap_or_else(|| panic!("[{n}] no confirmation token"));
        ok!(n, s.confirm_destination(&token).await);
        one(
            new_changes(&t, &mut at).await,
            alice.id,
            "confirm destination",
        );
        let f = ok!(
            n,
            s.create_filter(alice.id, &filter_input("f", &[d.id])).await
        );
        one(new_changes(&t, &mut at).await, alice.id, "create filter");
        ok!(
            n,
            s.update_filter(alice.id, f.id, &filter_input("g", &[]))
                .await
        );
        one(new_changes(&t, &mut at).await, alice.id, "update filter");
        ok!(n, s.create_filter(bob.id, &filter_input("b", &[])).await);
        one(new_changes(&t, &mut at).await, bob.id, "bob's filter");
        ok!(n, s.delete_filter(alice.id, f.id).await);
        one(new_changes(&t, &mut at).await, alice.id, "delete filter");
        ok!(n, s.delete_destination(alice.id, d.id).await);
        one(
            new_changes(&t, &mut at).await,
            alice.id,
            "delete destination",
        );
        ok!(n, s.set_user_disabled("bob", true).await);
        one(new_changes(&t, &mut at).await, bob.id, "disable user");

        // Refused changes log nothing.
        let _ = s.delete_filter(alice.id, f.id).await;
        let _ = s.create_filter(alice.id, &filter_input("", &[])).await;
        assert!(
            new_changes(&t, &mut at).await.is_empty(),
            "[{n}] refused changes"
        );
        assert!(ok!(n, s.changes_since(at).await).is_empty(), "[{n}]");
        assert_eq!(
            ok!(n, s.changes_since(0).await).len(),
            8,
            "[{n}] all of them"
        );
    }
}
