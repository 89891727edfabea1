//! Ownership and follows (issue 4): imports (merge and replace), group-owned packages,
//! single changes, change-log rows for exactly the accounts whose variables changed, and
//! validation errors that name the field and the record.

use std::collections::BTreeSet;

use tidings_store::{FollowKind, ImportMode, Owner, OwnershipData, Store, StoreError};

use crate::harness::{backends, fails, ok, user};

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn data(json: &str) -> OwnershipData {
    match OwnershipData::from_json(json) {
        Ok(data) => data,
        Err(err) => panic!("bad test data: {err}"),
    }
}

/// The user ids of the change-log rows after `after`, sorted and de-duplicated.
async fn changed_since(n: &str, s: &Store, after: i64) -> Vec<i64> {
    let mut ids: Vec<i64> = ok!(n, s.changes_since(after).await)
        .into_iter()
        .map(|c| c.user_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

const FEDORA: &str = r#"{
    "groups": { "python-sig": ["bob", "carol"], "kernel-maint": ["dave"] },
    "packages": {
        "python-requests": { "users": ["alice"], "groups": ["python-sig"] },
        "kernel": { "groups": ["kernel-maint"] },
        "tidings": { "users": ["alice", "erin"] }
    }
}"#;

#[tokio::test]
async fn import_resolves_groups_and_group_owned_packages() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let dave = user(&t, "dave").await;
        let mark = ok!(n, s.last_change().await);
        let summary = ok!(
            n,
            s.import_ownership(&data(FEDORA), ImportMode::Merge).await
        );
        assert_eq!((summary.packages, summary.groups), (3, 2), "[{n}]");
        // carol and erin have no account: nothing to re-index for them.
        let mut expected = vec![alice.id, bob.id, dave.id];
        expected.sort_unstable();
        assert_eq!(summary.affected_users, expected, "[{n}]");
        assert_eq!(changed_since(n, s, mark).await, expected, "[{n}]");

        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.me, "alice", "[{n}]");
        assert_eq!(vars.my_groups, set(&[]), "[{n}]");
        assert_eq!(
            vars.my_packages,
            set(&["python-requests", "tidings"]),
            "[{n}]"
        );
        let vars = ok!(n, s.variables(bob.id).await);
        assert_eq!(vars.my_groups, set(&["python-sig"]), "[{n}]");
        assert_eq!(vars.my_packages, set(&["python-requests"]), "[{n}]");
        // A bus username without an account resolves too.
        let vars = ok!(n, s.variables_for_username("carol").await);
        assert_eq!(vars.my_packages, set(&["python-requests"]), "[{n}]");

        // The batch form agrees with the one-user form.
        let all = ok!(n, s.all_variables().await);
        assert_eq!(all.len(), 3, "[{n}]");
        for id in [alice.id, bob.id, dave.id] {
            assert_eq!(all[&id], ok!(n, s.variables(id).await), "[{n}] user {id}");
        }

        // Re-importing the same data changes nobody's variables.
        let mark = ok!(n, s.last_change().await);
        let summary = ok!(
            n,
            s.import_ownership(&data(FEDORA), ImportMode::Replace).await
        );
        assert!(summary.affected_users.is_empty(), "[{n}] {summary:?}");
        assert!(changed_since(n, s, mark).await.is_empty(), "[{n}]");
    }
}

#[tokio::test]
async fn merge_keeps_unlisted_records_and_replace_drops_them() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let dave = user(&t, "dave").await;
        ok!(
            n,
            s.import_ownership(&data(FEDORA), ImportMode::Merge).await
        );

        // Merge: python-requests gets exactly the listed owners (alice drops out), the
        // group kernel-maint and the other packages stay.
        let mark = ok!(n, s.last_change().await);
        let update = data(r#"{"packages": {"python-requests": {"groups": ["python-sig"]}}}"#);
        let summary = ok!(n, s.import_ownership(&update, ImportMode::Merge).await);
        assert_eq!(summary.affected_users, vec![alice.id], "[{n}]");
        assert_eq!(changed_since(n, s, mark).await, vec![alice.id], "[{n}]");
        assert_eq!(
            ok!(n, s.variables(alice.id).await).my_packages,
            set(&["tidings"]),
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.variables(dave.id).await).my_packages,
            set(&["kernel"]),
            "[{n}]"
        );

        // Replace: only what is listed remains.
        let mark = ok!(n, s.last_change().await);
        let only = data(r#"{"packages": {"tidings": {"users": ["alice"]}}}"#);
        let summary = ok!(n, s.import_ownership(&only, ImportMode::Replace).await);
        let mut expected = vec![bob.id, dave.id];
        expected.sort_unstable();
        assert_eq!(
            summary.affected_users, expected,
            "[{n}] alice keeps tidings"
        );
        assert_eq!(changed_since(n, s, mark).await, expected, "[{n}]");
        let dave_vars = ok!(n, s.variables(dave.id).await);
        assert!(
            dave_vars.my_packages.is_empty() && dave_vars.my_groups.is_empty(),
            "[{n}] {dave_vars:?}"
        );
        assert_eq!(
            ok!(n, s.variables(alice.id).await).my_packages,
            set(&["tidings"]),
            "[{n}]"
        );
    }
}

#[tokio::test]
async fn single_changes_reindex_exactly_the_affected_accounts() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let carol = user(&t, "carol").await;
        ok!(
            n,
            s.import_ownership(&data(FEDORA), ImportMode::Merge).await
        );

        // Giving the kernel to python-sig reaches its members (bob, carol) but not dave,
        // who keeps it through kernel-maint.
        let mark = ok!(n, s.last_change().await);
        let affected = ok!(
            n,
            s.add_package_owner("kernel", &Owner::group("python-sig"))
                .await
        );
        assert_eq!(affected, vec![bob.id, carol.id], "[{n}]");
        assert_eq!(changed_since(n, s, mark).await, affected, "[{n}]");
        assert!(ok!(n, s.variables(bob.id).await)
            .my_packages
            .contains("kernel"));

        // Adding an owner twice changes nothing.
        let mark = ok!(n, s.last_change().await);
        let affected = ok!(
            n,
            s.add_package_owner("kernel", &Owner::group("python-sig"))
                .await
        );
        assert!(affected.is_empty(), "[{n}] {affected:?}");
        assert!(changed_since(n, s, mark).await.is_empty(), "[{n}]");

        // Replacing python-requests' owners by bob alone: alice and carol lose it; bob
        // owned it through python-sig before and owns it directly now, so he is unchanged.
        let mark = ok!(n, s.last_change().await);
        let affected = ok!(
            n,
            s.set_package_owners("python-requests", &[Owner::user("bob")])
                .await
        );
        assert_eq!(affected, vec![alice.id, carol.id], "[{n}]");
        assert_eq!(changed_since(n, s, mark).await, affected, "[{n}]");
        assert_eq!(
            ok!(n, s.package_owners("python-requests").await),
            vec![Owner::user("bob")],
            "[{n}]"
        );

        // Group membership: only the member's account, and only when it changed.
        let mark = ok!(n, s.last_change().await);
        assert_eq!(
            ok!(n, s.add_group_member("kernel-maint", "alice").await),
            Some(alice.id),
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.add_group_member("kernel-maint", "alice").await),
            None,
            "[{n}] already a member"
        );
        assert_eq!(
            ok!(n, s.add_group_member("kernel-maint", "nobody").await),
            None,
            "[{n}] no account"
        );
        assert_eq!(changed_since(n, s, mark).await, vec![alice.id], "[{n}]");
        let vars = ok!(n, s.variables(alice.id).await);
        assert!(vars.my_groups.contains("kernel-maint") && vars.my_packages.contains("kernel"));
        assert_eq!(
            ok!(n, s.remove_group_member("kernel-maint", "alice").await),
            Some(alice.id),
            "[{n}]"
        );
        assert!(!ok!(n, s.variables(alice.id).await)
            .my_packages
            .contains("kernel"));

        // Removing the last owner.
        let mark = ok!(n, s.last_change().await);
        let affected = ok!(
            n,
            s.remove_package_owner("tidings", &Owner::user("alice"))
                .await
        );
        assert_eq!(affected, vec![alice.id], "[{n}] erin has no account");
        assert_eq!(changed_since(n, s, mark).await, affected, "[{n}]");
    }
}

#[tokio::test]
async fn a_later_account_picks_up_its_packages() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        ok!(
            n,
            s.import_ownership(&data(FEDORA), ImportMode::Merge).await
        );
        let erin = user(&t, "erin").await;
        assert_eq!(
            ok!(n, s.variables(erin.id).await).my_packages,
            set(&["tidings"]),
            "[{n}]"
        );
    }
}

#[tokio::test]
async fn follows_feed_the_followed_variables() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let mark = ok!(n, s.last_change().await);
        assert!(ok!(n, s.follow(alice.id, FollowKind::User, "bob").await));
        assert!(!ok!(n, s.follow(alice.id, FollowKind::User, "bob").await));
        assert!(ok!(
            n,
            s.follow(alice.id, FollowKind::Package, "PyYAML").await
        ));
        assert_eq!(changed_since(n, s, mark).await, vec![alice.id], "[{n}]");
        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.followed_users, set(&["bob"]), "[{n}]");
        assert_eq!(vars.followed_packages, set(&["PyYAML"]), "[{n}]");
        assert_eq!(
            ok!(n, s.follows(alice.id).await),
            vec![
                (FollowKind::User, "bob".to_string()),
                (FollowKind::Package, "PyYAML".to_string())
            ],
            "[{n}]"
        );
        assert_eq!(ok!(n, s.all_variables().await)[&alice.id], vars, "[{n}]");
        assert!(ok!(n, s.variables(bob.id).await).followed_users.is_empty());

        let mark = ok!(n, s.last_change().await);
        assert!(ok!(n, s.unfollow(alice.id, FollowKind::User, "bob").await));
        assert!(!ok!(n, s.unfollow(alice.id, FollowKind::User, "bob").await));
        assert_eq!(changed_since(n, s, mark).await, vec![alice.id], "[{n}]");
        assert!(ok!(n, s.variables(alice.id).await)
            .followed_users
            .is_empty());

        let err = fails!(n, s.follow(alice.id, FollowKind::User, "Bob Smith").await);
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "person",
                    ..
                }
            ),
            "[{n}] {err:?}"
        );
    }
}

#[tokio::test]
async fn bad_records_are_refused_whole_naming_field_and_record() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        ok!(
            n,
            s.import_ownership(&data(FEDORA), ImportMode::Merge).await
        );
        let before = ok!(n, s.variables(alice.id).await);
        let mark = ok!(n, s.last_change().await);

        // Built by hand, past the parser: the store checks too.
        let mut bad = OwnershipData::default();
        bad.packages.entry("tidings".into()).or_default();
        bad.packages
            .entry("new-package".into())
            .or_default()
            .users
            .insert("Not A User".into());
        let err = fails!(n, s.import_ownership(&bad, ImportMode::Replace).await);
        match &err {
            StoreError::Invalid { field, reason } => {
                assert_eq!(*field, "users", "[{n}]");
                assert!(
                    reason.contains("package \"new-package\"") && reason.contains("Not A User"),
                    "[{n}] {reason}"
                );
            }
            other => panic!("[{n}] expected Invalid, got {other:?}"),
        }
        assert_eq!(
            ok!(n, s.variables(alice.id).await),
            before,
            "[{n}] nothing imported"
        );
        assert!(changed_since(n, s, mark).await.is_empty(), "[{n}]");

        let csv =
            "record,name,member_kind,member\npackage,tidings,user,bob\npackage,x y,user,bob\n";
        let err = fails!(n, OwnershipData::from_csv(csv));
        assert_eq!(
            err.to_string(),
            "name: line 3: \"x y\" is not a package name: use 1 to 200 characters without spaces, commas or quotes",
            "[{n}]"
        );

        let err = fails!(
            n,
            s.set_package_owners("kernel", &[Owner::group("Kernel Maint")])
                .await
        );
        assert!(
            matches!(err, StoreError::Invalid { field: "owner", .. }),
            "[{n}] {err:?}"
        );
        let err = fails!(n, s.add_group_member("sig", "").await);
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "username",
                    ..
                }
            ),
            "[{n}] {err:?}"
        );
        let err = fails!(n, s.add_package_owner("a b", &Owner::user("alice")).await);
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "package",
                    ..
                }
            ),
            "[{n}] {err:?}"
        );
    }
}

/// The sync's rows (issue 13): written by difference (a second identical sync writes
/// nothing and re-indexes no one), change rows for exactly the accounts whose variables
/// changed, imports and syncs never replacing each other's rows, a group not read kept,
/// a group no longer synced cleared, bad names skipped and listed.
#[tokio::test]
async fn syncs_replace_only_their_own_rows_by_difference() {
    use std::collections::BTreeMap;
    use tidings_store::SyncedOwnership;
    let owners = |entries: &[(&str, &[Owner])]| -> BTreeMap<String, BTreeSet<Owner>> {
        entries
            .iter()
            .map(|(p, o)| (p.to_string(), o.iter().cloned().collect()))
            .collect()
    };
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let carol = user(&t, "carol").await;
        // The admin's rows: alice owns firefox and php.
        ok!(
            n,
            s.import_ownership(
                &data(r#"{"packages": {"firefox": {"users": ["alice"]}, "php": {"users": ["alice"]}}}"#),
                ImportMode::Merge
            )
            .await
        );
        assert_eq!(ok!(n, s.synced_package_count().await), 0, "[{n}]");
        let first = SyncedOwnership {
            packages: Some(owners(&[
                ("php", &[Owner::user("alice"), Owner::group("php-sig")]),
                ("modules/php", &[Owner::user("carol")]),
                ("bad name", &[Owner::user("carol")]),
            ])),
            groups: Some(BTreeMap::from([
                ("php-sig".to_string(), set(&["bob", "Not Valid"])),
                ("infra".to_string(), set(&["carol"])),
            ])),
            kept_groups: BTreeSet::new(),
        };
        let mark = ok!(n, s.last_change().await);
        let summary = ok!(n, s.sync_ownership(&first).await);
        assert_eq!(
            (
                summary.owners_added,
                summary.members_added,
                summary.skipped_count
            ),
            (3, 2, 2),
            "[{n}] {summary:?}"
        );
        assert!(
            summary.skipped.iter().any(|m| m.contains("\"bad name\"")),
            "[{n}] {summary:?}"
        );
        // alice already owned php (imported): her variables did not change.
        let mut expected = vec![bob.id, carol.id];
        expected.sort_unstable();
        assert_eq!(summary.affected_users, expected, "[{n}]");
        assert_eq!(changed_since(n, s, mark).await, expected, "[{n}]");
        assert_eq!(ok!(n, s.synced_package_count().await), 2, "[{n}]");
        let vars = ok!(n, s.variables(bob.id).await);
        assert_eq!(vars.my_packages, set(&["php"]), "[{n}]");
        assert_eq!(
            ok!(n, s.group_sources("bob").await),
            [("php-sig".to_string(), false)],
            "[{n}]"
        );

        // The same again: nothing written, no one re-indexed.
        let mark = ok!(n, s.last_change().await);
        let summary = ok!(n, s.sync_ownership(&first).await);
        assert_eq!(
            (
                summary.owners_added,
                summary.owners_removed,
                summary.members_added,
                summary.members_removed
            ),
            (0, 0, 0, 0),
            "[{n}]"
        );
        assert!(changed_since(n, s, mark).await.is_empty(), "[{n}]");

        // An import that replaces everything keeps the sync's rows; alice keeps php
        // through them, and loses only firefox.
        ok!(
            n,
            s.import_ownership(&OwnershipData::default(), ImportMode::Replace)
                .await
        );
        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.my_packages, set(&["php"]), "[{n}]");
        assert_eq!(
            ok!(n, s.package_owners("php").await),
            [Owner::user("alice"), Owner::group("php-sig")],
            "[{n}]"
        );

        // php removed upstream; the owner map not read leaves owners alone; php-sig not
        // read is kept, infra no longer synced is cleared.
        let mark = ok!(n, s.last_change().await);
        let summary = ok!(
            n,
            s.sync_ownership(&SyncedOwnership {
                packages: Some(owners(&[("modules/php", &[Owner::user("carol")])])),
                groups: Some(BTreeMap::new()),
                kept_groups: ["php-sig".to_string()].into(),
            })
            .await
        );
        assert_eq!(
            (summary.owners_removed, summary.members_removed),
            (2, 1),
            "[{n}] {summary:?}"
        );
        let mut expected = vec![alice.id, bob.id, carol.id];
        expected.sort_unstable();
        assert_eq!(changed_since(n, s, mark).await, expected, "[{n}]");
        assert!(
            ok!(n, s.variables(alice.id).await).my_packages.is_empty(),
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.variables(bob.id).await).my_groups,
            set(&["php-sig"]),
            "[{n}]"
        );
        let vars = ok!(n, s.variables(carol.id).await);
        assert_eq!(
            (vars.my_groups, vars.my_packages),
            (set(&[]), set(&["modules/php"])),
            "[{n}]"
        );
        let summary = ok!(n, s.sync_ownership(&SyncedOwnership::default()).await);
        assert_eq!(summary.affected_users, Vec::<i64>::new(), "[{n}]");
    }
}
