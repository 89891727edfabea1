//! Issue 8 item 5: sessions only for signed-in users, anonymous forms protected by a signed
//! double-submit token, and sessions that end when idle or at their absolute expiry.

use reqwest::StatusCode;

use crate::on_both;
use crate::support::{csrf, App};

on_both!(
    anonymous_visitors_make_no_session_rows,
    anonymous_forms_need_the_signed_double_submit_token,
    idle_and_expired_sessions_send_the_user_to_sign_in
);

const PASSWORD: &str = "velvet crane harbour 42";

/// Every anonymous GET of /signin used to store a 14-day session row.
async fn anonymous_visitors_make_no_session_rows(app: &App) {
    let bare = reqwest::Client::new();
    for _ in 0..300 {
        let reply = bare
            .get(format!("{}/signin", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
    }
    let visitor = app.browser();
    for page in ["/signin", "/signup", "/", "/signin"] {
        visitor.get(page).await;
    }
    assert_eq!(app.store.session_count().await.unwrap(), 0);

    // The anonymous form signs in; that makes the one row.
    app.store
        .create_user("alice", Some(PASSWORD), false)
        .await
        .unwrap();
    let reply = visitor.signin("alice", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(visitor.get("/").await.body.contains("Hello, alice"));
    assert_eq!(app.store.session_count().await.unwrap(), 1);
}

async fn anonymous_forms_need_the_signed_double_submit_token(app: &App) {
    app.store
        .create_user("alice", Some(PASSWORD), false)
        .await
        .unwrap();
    let fields = |token: &str| {
        vec![
            ("csrf", token.to_string()),
            ("username", "alice".to_string()),
            ("password", PASSWORD.to_string()),
        ]
    };
    let visitor = app.browser();
    let page = visitor.get("/signin").await;
    let token = csrf(&page.body);
    let cookie = crate::accounts::cookie_value(&page.set_cookies, "tidings_csrf")
        .expect("a CSRF cookie")
        .to_string();
    assert_ne!(
        token, cookie,
        "the form carries a signature, not the cookie"
    );

    // Missing, made up, the bare cookie value, and another visitor's valid token: all 403.
    let other = app.browser();
    let others_token = csrf(&other.get("/signin").await.body);
    for forged in ["", "not-the-token", cookie.as_str(), others_token.as_str()] {
        let reply = visitor.post("/signin", &as_pairs(&fields(forged))).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "token {forged:?}");
    }
    let no_field = visitor
        .post("/signin", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(no_field.status, StatusCode::FORBIDDEN);
    // The right token without its cookie (a cross-site request from a cookie-less client).
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let reply = cookieless
        .post(format!("{}/signin", app.base))
        .form(&fields(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.store.session_count().await.unwrap(),
        0,
        "nothing signed in"
    );

    // The token keeps working across pages of the same visitor, and signs in.
    let again = csrf(&visitor.get("/signup").await.body);
    assert_eq!(again, token, "one token per visitor, so several tabs work");
    let reply = visitor.post("/signin", &as_pairs(&fields(&token))).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    // Signed in, forms carry the session's own token, not the anonymous one.
    let home = visitor.get("/").await.body;
    assert_ne!(csrf(&home), token);
    let stale = visitor.post("/signout", &[("csrf", token.as_str())]).await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
}

fn as_pairs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn idle_and_expired_sessions_send_the_user_to_sign_in(app: &App) {
    app.store
        .create_user("alice", Some(PASSWORD), false)
        .await
        .unwrap();
    let alice = app.browser();
    alice.signin("alice", PASSWORD).await;
    assert_eq!(alice.get("/").await.status, StatusCode::OK);

    // 20 minutes without use: still signed in, and the visit counts as use...
    app.sql("UPDATE sessions SET last_seen_at = last_seen_at - 1200000")
        .await;
    assert_eq!(alice.get("/").await.status, StatusCode::OK);
    // ...so 20 more minutes later (40 since sign-in) the session lives on.
    app.sql("UPDATE sessions SET last_seen_at = last_seen_at - 1200000")
        .await;
    assert_eq!(alice.get("/").await.status, StatusCode::OK);

    // 31 minutes without use (the default idle time is 30): signed out.
    app.sql("UPDATE sessions SET last_seen_at = last_seen_at - 1860000")
        .await;
    let idle = alice.get("/").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER);
    assert_eq!(idle.location.as_deref(), Some("/signin"));
    assert!(
        crate::accounts::clears_session_cookie(&idle.set_cookies),
        "the dead cookie is cleared: {:?}",
        idle.set_cookies
    );
    assert_eq!(
        app.store.purge_sessions(30 * 60_000).await.unwrap(),
        1,
        "the idle row is purged"
    );

    // Busy but past the absolute lifetime: signed out too.
    alice.signin("alice", PASSWORD).await;
    assert_eq!(alice.get("/").await.status, StatusCode::OK);
    app.sql("UPDATE sessions SET expires_at = last_seen_at - 1")
        .await;
    assert_eq!(
        alice.get("/").await.location.as_deref(),
        Some("/signin"),
        "expired"
    );
}
