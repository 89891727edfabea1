//! Sign-up, sign-in, sign-out, session cookies and CSRF.

use reqwest::StatusCode;

use crate::on_both;
use crate::support::{App, Db};

on_both!(signup_signin_signout, csrf_is_required);

async fn signup_signin_signout(app: &App) {
    let alice = app.browser();
    assert_eq!(
        alice.get("/").await.location.as_deref(),
        Some("/signin"),
        "anonymous dashboard must redirect"
    );
    alice.signup("alice", "velvet crane harbour 42").await;
    let home = alice.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Hello, alice"), "{}", home.body);

    // Sign-up refuses a taken name, with a message in the form.
    let other = app.browser();
    let taken = other
        .submit(
            "/signup",
            "/signup",
            &[
                ("username", "alice"),
                ("password", "whatever123"),
                ("password2", "whatever123"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.body.contains("username is taken"), "{}", taken.body);
    let bad = other
        .submit(
            "/signup",
            "/signup",
            &[
                ("username", "Bad Name"),
                ("password", "whatever123"),
                ("password2", "whatever123"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("lower-case letters"), "{}", bad.body);

    let out = alice.submit("/", "/signout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(alice.get("/").await.location.as_deref(), Some("/signin"));

    // A wrong password and an unknown user get the same answer.
    let wrong = alice.signin("alice", "wrong password").await;
    let unknown = alice.signin("nobody", "wrong password").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("Wrong username or password."));
    assert!(unknown.body.contains("Wrong username or password."));
    assert_eq!(alice.get("/").await.location.as_deref(), Some("/signin"));

    let good = alice.signin("alice", "velvet crane harbour 42").await;
    assert_eq!(good.status, StatusCode::SEE_OTHER);
    assert_eq!(good.location.as_deref(), Some("/"));
    assert!(alice.get("/").await.body.contains("Hello, alice"));
}

async fn csrf_is_required(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let fields = [
        ("name", "mine"),
        ("condition", "usernames has $me"),
        ("enabled", "on"),
    ];
    let missing = alice.post("/filters/new", &fields).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let mut wrong = vec![("csrf", "not-the-token")];
    wrong.extend_from_slice(&fields);
    assert_eq!(
        alice.post("/filters/new", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        alice.post("/signout", &[("csrf", "nope")]).await.status,
        StatusCode::FORBIDDEN
    );
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    assert!(
        app.store.filters(user.id).await.unwrap().is_empty(),
        "a forged POST must change nothing"
    );
    // Still signed in, and the real token works.
    assert_eq!(alice.get("/").await.status, StatusCode::OK);
    let ok = alice.submit("/filters/new", "/filters/new", &fields).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(app.store.filters(user.id).await.unwrap().len(), 1);
}

fn cookie_token(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("tidings_session=")
        .and_then(|rest| rest.split(';').next())
        .expect("tidings_session cookie")
}

#[tokio::test]
async fn sessions_rotate_and_cookies_are_locked_down() {
    let app = App::start(Db::Sqlite).await.unwrap();
    let alice = app.browser();
    let first = alice.get("/signin").await;
    let cookie = first.set_cookie.expect("a visitor gets a session");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http base_url: no Secure flag: {cookie}"
    );
    let anonymous = cookie_token(&cookie).to_string();

    app.store
        .create_user("alice", Some("velvet crane harbour 42"), false)
        .await
        .unwrap();
    let again = alice.signin("alice", "velvet crane harbour 42").await;
    let signed_in =
        cookie_token(again.set_cookie.as_deref().expect("rotated on sign-in")).to_string();
    assert_ne!(anonymous, signed_in);

    // The old token is dead; the new one works.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let with = |token: String| {
        bare.get(format!("{}/", app.base))
            .header("cookie", format!("tidings_session={token}"))
            .send()
    };
    assert_eq!(
        with(anonymous).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        with(signed_in.clone()).await.unwrap().status(),
        StatusCode::OK
    );

    let out = alice.submit("/", "/signout", &[]).await;
    let after = cookie_token(out.set_cookie.as_deref().expect("rotated on sign-out")).to_string();
    assert_ne!(after, signed_in);
    assert_eq!(
        with(signed_in).await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "signed-out token must not work"
    );
    app.stop().await;
}

#[tokio::test]
async fn https_sites_send_secure_cookies_and_signup_can_be_closed() {
    let app = App::start_with(Db::Sqlite, |c| {
        c.base_url = "https://tidings.example.org".into();
        c.allow_signup = false;
    })
    .await
    .unwrap();
    let visitor = app.browser();
    let page = visitor.get("/signin").await;
    assert!(page.set_cookie.unwrap_or_default().contains("; Secure"));
    assert!(
        !page.body.contains("/signup"),
        "no sign-up link when sign-up is closed"
    );
    assert_eq!(visitor.get("/signup").await.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers_and_escape_input() {
    let app = App::start(Db::Sqlite).await.unwrap();
    let reply = app
        .browser()
        .client
        .get(format!("{}/signin", app.base))
        .send()
        .await
        .unwrap();
    let headers = reply.headers();
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let visitor = app.browser();
    let reply = visitor.signin("<script>x</script>", "whatever123").await;
    assert!(!reply.body.contains("<script>x</script>"));
    assert!(
        reply.body.contains("&#60;script&#62;x&#60;/script&#62;"),
        "{}",
        reply.body
    );
    assert_eq!(visitor.get("/healthz").await.body, "ok");
    assert_eq!(
        visitor.get("/no/such/page").await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}
