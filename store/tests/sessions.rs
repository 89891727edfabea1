//! Sessions: creation, lookup, expiry, ending.

use crate::harness::{backends, ok, user};

#[tokio::test]
async fn create_look_up_delete() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let (token, session) = ok!(n, s.create_session(Some(alice.id), 60_000).await);
        assert_eq!(session.user_id, Some(alice.id), "[{n}]");
        assert_ne!(
            token, session.csrf_token,
            "[{n}] cookie and CSRF tokens differ"
        );
        assert!(token.len() >= 32, "[{n}] token {token:?}");
        assert_eq!(
            ok!(n, s.session(&token).await),
            Some(session.clone()),
            "[{n}]"
        );

        let (visitor, anon) = ok!(n, s.create_session(None, 60_000).await);
        assert_ne!(visitor, token, "[{n}] tokens are unique");
        assert_eq!(
            ok!(n, s.session(&visitor).await),
            Some(anon),
            "[{n}] visitor"
        );

        assert_eq!(ok!(n, s.session("not-a-token").await), None, "[{n}]");
        ok!(n, s.delete_session(&token).await);
        assert_eq!(ok!(n, s.session(&token).await), None, "[{n}] deleted");
        ok!(n, s.delete_session(&token).await);
        assert!(
            ok!(n, s.session(&visitor).await).is_some(),
            "[{n}] others stay"
        );
    }
}

#[tokio::test]
async fn expired_sessions_are_not_found_and_purged() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let (zero, _) = ok!(n, s.create_session(Some(alice.id), 0).await);
        let (negative, _) = ok!(n, s.create_session(Some(alice.id), -1_000).await);
        let (live, _) = ok!(n, s.create_session(Some(alice.id), 60_000).await);
        assert_eq!(ok!(n, s.session(&zero).await), None, "[{n}] ttl 0");
        assert_eq!(
            ok!(n, s.session(&negative).await),
            None,
            "[{n}] negative ttl"
        );
        assert_eq!(
            ok!(n, s.purge_sessions().await),
            2,
            "[{n}] purged the expired"
        );
        assert_eq!(
            ok!(n, s.purge_sessions().await),
            0,
            "[{n}] nothing left to purge"
        );
        assert!(
            ok!(n, s.session(&live).await).is_some(),
            "[{n}] live one stays"
        );
    }
}
