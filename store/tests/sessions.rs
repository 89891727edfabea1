//! Sessions: creation, lookup, absolute expiry, idle timeout, ending, purging.

use crate::harness::{backends, ok, user, TestStore};

/// Moves every session's last use `ms` into the past, as if nobody had used it since.
async fn age_sessions(t: &TestStore, ms: i64) {
    let sql = format!("UPDATE sessions SET last_seen_at = last_seen_at - {ms}");
    if t.url.starts_with("sqlite:") {
        execute::<sqlx::SqliteConnection>(t, &sql).await;
    } else {
        execute::<sqlx::PgConnection>(t, &sql).await;
    }
}

async fn execute<C>(t: &TestStore, statement: &str)
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c>,
{
    use sqlx::Executor as _;
    let mut conn = ok!(t.name, C::connect(&t.url).await);
    ok!(t.name, conn.execute(statement).await);
}

const IDLE: i64 = 30 * 60_000;

#[tokio::test]
async fn create_look_up_delete() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let (token, session) = ok!(n, s.create_session(alice.id, 60_000).await);
        assert_eq!(session.user_id, alice.id, "[{n}]");
        assert_ne!(
            token, session.csrf_token,
            "[{n}] cookie and CSRF tokens differ"
        );
        assert!(token.len() >= 32, "[{n}] token {token:?}");
        assert_eq!(session.expires_at - session.last_seen_at, 60_000, "[{n}]");
        assert_eq!(
            ok!(n, s.session(&token, IDLE).await),
            Some(session.clone()),
            "[{n}]"
        );

        let (other, _) = ok!(n, s.create_session(alice.id, 60_000).await);
        assert_ne!(other, token, "[{n}] tokens are unique");
        assert_eq!(ok!(n, s.session_count().await), 2, "[{n}]");

        assert_eq!(ok!(n, s.session("not-a-token", IDLE).await), None, "[{n}]");
        ok!(n, s.delete_session(&token).await);
        assert_eq!(ok!(n, s.session(&token, IDLE).await), None, "[{n}] deleted");
        ok!(n, s.delete_session(&token).await);
        assert!(
            ok!(n, s.session(&other, IDLE).await).is_some(),
            "[{n}] others stay"
        );
    }
}

#[tokio::test]
async fn expired_sessions_are_not_found_and_purged() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let (zero, _) = ok!(n, s.create_session(alice.id, 0).await);
        let (negative, _) = ok!(n, s.create_session(alice.id, -1_000).await);
        let (live, _) = ok!(n, s.create_session(alice.id, 60_000).await);
        assert_eq!(ok!(n, s.session(&zero, IDLE).await), None, "[{n}] ttl 0");
        assert_eq!(
            ok!(n, s.session(&negative, IDLE).await),
            None,
            "[{n}] negative ttl"
        );
        assert_eq!(
            ok!(n, s.purge_sessions(IDLE).await),
            2,
            "[{n}] purged the expired"
        );
        assert_eq!(
            ok!(n, s.purge_sessions(IDLE).await),
            0,
            "[{n}] nothing left to purge"
        );
        assert!(
            ok!(n, s.session(&live, IDLE).await).is_some(),
            "[{n}] live one stays"
        );
    }
}

/// Issue 8 item 5: a session unused for the idle time ends even before its absolute expiry,
/// and use (a touch) restarts the idle time.
#[tokio::test]
async fn idle_sessions_end_and_use_keeps_them_alive() {
    for t in backends().await {
        let (n, s) = (t.name, &t.store);
        let alice = user(&t, "alice").await;
        let day = 24 * 3_600_000;
        let (used, _) = ok!(n, s.create_session(alice.id, day).await);
        let (unused, _) = ok!(n, s.create_session(alice.id, day).await);

        age_sessions(&t, 20 * 60_000).await;
        assert!(
            ok!(n, s.session(&used, IDLE).await).is_some(),
            "[{n}] 20 min"
        );
        ok!(n, s.touch_session(&used).await);
        let touched = ok!(n, s.session(&used, IDLE).await);
        assert!(
            touched.is_some_and(|x| x.last_seen_at > tidings_store::now_ms() - 60_000),
            "[{n}] touch records the use"
        );

        age_sessions(&t, 20 * 60_000).await;
        assert!(
            ok!(n, s.session(&used, IDLE).await).is_some(),
            "[{n}] 20 min since the touch"
        );
        assert_eq!(
            ok!(n, s.session(&unused, IDLE).await),
            None,
            "[{n}] 40 min idle"
        );
        assert_eq!(ok!(n, s.purge_sessions(IDLE).await), 1, "[{n}] idle purged");
        assert!(ok!(n, s.session(&used, IDLE).await).is_some(), "[{n}]");
    }
}
