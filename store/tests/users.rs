//! Users: creation, validation, sign-in, disabling.

use tidings_store::StoreError;

use crate::harness::{backends, fails, ok, user};

#[tokio::test]
async fn create_and_look_up() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let admin = ok!(
            n,
            s.create_user("zed", Some("plum kettle orbit 1974"), true)
                .await
        );
        let bob = user(&t, "bob.b-1_x").await;
        assert_eq!(admin.username, "zed", "[{n}]");
        assert!(admin.is_admin && !admin.disabled, "[{n}] {admin:?}");
        assert!(!bob.is_admin, "[{n}] {bob:?}");
        assert_ne!(admin.id, bob.id, "[{n}]");
        assert_eq!(ok!(n, s.user(bob.id).await), bob, "[{n}] by id");
        assert_eq!(
            ok!(n, s.user_by_name("zed").await),
            Some(admin.clone()),
            "[{n}]"
        );
        assert_eq!(ok!(n, s.user_by_name("nobody").await), None, "[{n}]");
        assert!(matches!(
            fails!(n, s.user(bob.id + 1000).await),
            StoreError::NotFound
        ));
        let names: Vec<String> = ok!(n, s.users().await)
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(names, ["bob.b-1_x", "zed"], "[{n}] users by name");
    }
}

#[tokio::test]
async fn duplicate_username_conflicts() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        user(&t, "alice").await;
        let err = fails!(n, s.create_user("alice", None, true).await);
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "[{n}] got {err:?}"
        );
        assert_eq!(ok!(n, s.users().await).len(), 1, "[{n}]");
    }
}

#[tokio::test]
async fn invalid_username_and_password_are_refused() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let long = "a".repeat(65);
        for bad in ["", "Alice", "a b", "al/ice", "élise", long.as_str()] {
            let err = fails!(n, s.create_user(bad, None, false).await);
            assert!(
                matches!(
                    err,
                    StoreError::Invalid {
                        field: "username",
                        ..
                    }
                ),
                "[{n}] {bad:?}: got {err:?}"
            );
        }
        assert!(ok!(n, s.create_user(&"a".repeat(64), None, false).await).id > 0);
        // Issue 8 item 8: too short, common, or a pattern.
        for bad in [
            "",
            "short",
            "password",
            "12345678",
            "        ",
            "passwordpassword",
        ] {
            let err = fails!(n, s.create_user("carol", Some(bad), false).await);
            assert!(
                matches!(
                    err,
                    StoreError::Invalid {
                        field: "password",
                        ..
                    }
                ),
                "[{n}] {bad:?}: got {err:?}"
            );
        }
        assert_eq!(
            ok!(n, s.user_by_name("carol").await),
            None,
            "[{n}] nothing stored"
        );
    }
}

#[tokio::test]
async fn authenticate() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = ok!(
            n,
            s.create_user("alice", Some("velvet crane harbour 42"), false)
                .await
        );
        let nopass = user(&t, "oidc-only").await;
        assert_eq!(
            ok!(n, s.authenticate("alice", "velvet crane harbour 42").await),
            Some(alice.clone()),
            "[{n}] good password"
        );
        assert_eq!(
            ok!(n, s.authenticate("alice", "wrong horse").await),
            None,
            "[{n}] bad"
        );
        assert_eq!(
            ok!(n, s.authenticate("alice", "").await),
            None,
            "[{n}] empty"
        );
        assert_eq!(
            ok!(
                n,
                s.authenticate("mallory", "velvet crane harbour 42").await
            ),
            None,
            "[{n}]"
        );
        assert_eq!(
            ok!(n, s.authenticate(&nopass.username, "").await),
            None,
            "[{n}] no hash"
        );

        let disabled = ok!(n, s.set_user_disabled("alice", true).await);
        assert!(disabled.disabled, "[{n}] {disabled:?}");
        assert_eq!(
            ok!(n, s.authenticate("alice", "velvet crane harbour 42").await),
            None,
            "[{n}] disabled users cannot sign in"
        );
        let enabled = ok!(n, s.set_user_disabled("alice", false).await);
        assert!(!enabled.disabled, "[{n}]");
        assert_eq!(
            ok!(n, s.authenticate("alice", "velvet crane harbour 42").await),
            Some(enabled),
            "[{n}] re-enabled"
        );
    }
}

#[tokio::test]
async fn disabling_ends_sessions() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let bob = user(&t, "bob").await;
        let idle = 60_000;
        let (a1, _) = ok!(n, s.create_session(alice.id, 60_000).await);
        let (a2, _) = ok!(n, s.create_session(alice.id, 60_000).await);
        let (b1, _) = ok!(n, s.create_session(bob.id, 60_000).await);
        ok!(n, s.set_user_disabled("alice", true).await);
        assert_eq!(ok!(n, s.session(&a1, idle).await), None, "[{n}]");
        assert_eq!(ok!(n, s.session(&a2, idle).await), None, "[{n}]");
        // Ended, not merely hidden: re-enabling does not bring them back.
        ok!(n, s.set_user_disabled("alice", false).await);
        assert_eq!(
            ok!(n, s.session(&a1, idle).await),
            None,
            "[{n}] stays ended"
        );
        assert_eq!(
            ok!(n, s.session(&a2, idle).await),
            None,
            "[{n}] stays ended"
        );
        assert!(
            ok!(n, s.session(&b1, idle).await).is_some(),
            "[{n}] others keep theirs"
        );
        let err = fails!(n, s.set_user_disabled("nobody", true).await);
        assert!(matches!(err, StoreError::NotFound), "[{n}] got {err:?}");
    }
}
