//! Accounts of the OpenID Connect sign-in provider (issue 11): made on the first sign-in
//! with the username claim as their name, claimed by one subject, never taking over a local
//! account; the provider's groups beside the imported ones in `$my_groups`.

use std::collections::BTreeSet;

use tidings_store::{ImportMode, OwnershipData, ProviderSignIn, StoreError};

use crate::harness::{backends, fails, ok, user};

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn first_sign_in_makes_the_account_and_later_ones_reuse_it() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let first = ok!(n, s.provider_sign_in("sub-1", "alice").await);
        let ProviderSignIn::Account { user, created } = first else {
            panic!("[{n}] {first:?}");
        };
        assert!(created && user.from_provider, "[{n}] {user:?}");
        assert_eq!(user.username, "alice", "[{n}]");
        let again = ok!(n, s.provider_sign_in("sub-1", "alice").await);
        assert_eq!(
            again,
            ProviderSignIn::Account {
                user: user.clone(),
                created: false
            },
            "[{n}]"
        );
        // No password: the local sign-in refuses whatever is typed.
        assert_eq!(ok!(n, s.authenticate("alice", "").await), None, "[{n}]");
        // A renamed subject is refused, and the name stays with its subject.
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-1", "alice2").await),
            ProviderSignIn::Renamed {
                username: "alice".into()
            },
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-2", "alice").await),
            ProviderSignIn::OtherSubject,
            "[{n}]"
        );
        // A bad username claim is refused before anything is written.
        let err = fails!(n, s.provider_sign_in("sub-3", "Not Valid").await);
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
        assert_eq!(ok!(n, s.users().await).len(), 1, "[{n}]");
        // Disabled: refused.
        ok!(n, s.set_user_disabled("alice", true).await);
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-1", "alice").await),
            ProviderSignIn::Disabled,
            "[{n}]"
        );
    }
}

#[tokio::test]
async fn local_accounts_and_provider_names_stay_apart() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        // A local account is never taken over by a sign-in through the provider ...
        let bob = user(&t, "bob").await;
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-bob", "bob").await),
            ProviderSignIn::LocalAccount,
            "[{n}]"
        );
        // ... until an admin hands it over: then the next sign-in claims it, same account.
        let handed = ok!(n, s.hand_to_provider("bob").await);
        assert!(handed.from_provider, "[{n}] {handed:?}");
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-bob", "bob").await),
            ProviderSignIn::Account {
                user: handed.clone(),
                created: false
            },
            "[{n}]"
        );
        assert_eq!(handed.id, bob.id, "[{n}]");
        // A name the provider owns cannot be taken locally (sign-up, `tidings user add`).
        ok!(n, s.provider_sign_in("sub-alice", "alice").await);
        for password in [None, Some("velvet crane harbour 42")] {
            let err = fails!(n, s.create_user("alice", password, false).await);
            match err {
                StoreError::Invalid {
                    field: "username",
                    reason,
                } => assert!(reason.contains("sign-in provider"), "[{n}] {reason}"),
                other => panic!("[{n}] {other:?}"),
            }
        }
        // An account made for the provider by an admin is claimed by the first sign-in.
        let carol = ok!(n, s.create_provider_user("carol", true).await);
        assert!(carol.from_provider && carol.is_admin, "[{n}] {carol:?}");
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-carol", "carol").await),
            ProviderSignIn::Account {
                user: carol.clone(),
                created: false
            },
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.provider_sign_in("sub-mallory", "carol").await),
            ProviderSignIn::OtherSubject,
            "[{n}]"
        );
        // No password to change; deleting needs none.
        let err = fails!(
            n,
            s.change_password(carol.id, "", "velvet crane harbour 42")
                .await
        );
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    field: "password",
                    ..
                }
            ),
            "[{n}] {err:?}"
        );
        ok!(n, s.delete_user(carol.id, "").await);
        assert_eq!(ok!(n, s.user_by_name("carol").await), None, "[{n}]");
    }
}

#[tokio::test]
async fn provider_groups_join_the_imported_ones_and_reindex() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let ProviderSignIn::Account { user: alice, .. } =
            ok!(n, s.provider_sign_in("sub-alice", "alice").await)
        else {
            panic!("[{n}] no account");
        };
        let data = OwnershipData::from_json(
            r#"{"groups": {"sig": ["alice"], "infra": ["zed"]},
                "packages": {"pkg-infra": {"groups": ["infra"]}, "pkg-sig": {"groups": ["sig"]}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ok!(n, s.import_ownership(&data, ImportMode::Replace).await);
        let before = ok!(n, s.last_change().await);
        let skipped = ok!(
            n,
            s.set_provider_groups("alice", &set(&["infra", "packager", "Bad Group!"]))
                .await
        );
        assert_eq!(skipped, ["Bad Group!"], "[{n}]");
        let changes = ok!(n, s.changes_since(before).await);
        assert!(
            changes.iter().any(|c| c.user_id == alice.id),
            "[{n}] the matcher learns alice's groups changed: {changes:?}"
        );
        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.my_groups, set(&["infra", "packager", "sig"]), "[{n}]");
        assert_eq!(vars.my_packages, set(&["pkg-infra", "pkg-sig"]), "[{n}]");
        assert_eq!(
            ok!(n, s.group_sources("alice").await),
            [
                ("infra".to_string(), true),
                ("packager".to_string(), true),
                ("sig".to_string(), false)
            ],
            "[{n}]"
        );
        // The same groups again: nothing to re-index.
        let at = ok!(n, s.last_change().await);
        ok!(
            n,
            s.set_provider_groups("alice", &set(&["infra", "packager"]))
                .await
        );
        assert!(ok!(n, s.changes_since(at).await).is_empty(), "[{n}]");
        // An import replacing everything keeps the provider's groups ...
        let data = OwnershipData::from_json(r#"{"groups": {"infra": ["zed"]}}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        ok!(n, s.import_ownership(&data, ImportMode::Replace).await);
        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.my_groups, set(&["infra", "packager"]), "[{n}]");
        // ... and the next sign-in's groups replace only the provider's.
        ok!(n, s.add_group_member("sig", "alice").await);
        ok!(n, s.set_provider_groups("alice", &set(&["qa"])).await);
        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.my_groups, set(&["qa", "sig"]), "[{n}]");
        // Removing an imported membership leaves a provider one of the same group.
        ok!(
            n,
            s.set_provider_groups("alice", &set(&["qa", "sig"])).await
        );
        ok!(n, s.remove_group_member("sig", "alice").await);
        let vars = ok!(n, s.variables(alice.id).await);
        assert_eq!(vars.my_groups, set(&["qa", "sig"]), "[{n}]");
        let all = ok!(n, s.all_variables().await);
        assert_eq!(all[&alice.id].my_groups, set(&["qa", "sig"]), "[{n}]");
    }
}
