//! Sign-up, sign-in, sign-out, the account page (password change, sign out everywhere),
//! the password policy, session cookies, CSRF and the https
//! hardening (HSTS, `__Host-` cookies).

use reqwest::StatusCode;

use crate::on_both;
use tidings_rules::Condition;
use tidings_store::{ChannelKind, Delivery, FilterInput, NewDestination};

use crate::support::{App, Db};

on_both!(
    signup_signin_signout,
    csrf_is_required,
    weak_passwords_are_refused,
    password_change_and_sign_out_everywhere,
    export_and_delete_my_account
);

async fn signup_signin_signout(app: &App) {
    let alice = app.browser();
    assert_eq!(
        alice.get("/").await.location.as_deref(),
        Some("/signin"),
        "anonymous dashboard must redirect"
    );
    // A fresh hub's first page says what Tidings is and how to start, and that no
    // account exists yet.
    let first = alice.get("/signin").await.body;
    assert!(
        first.contains("tells you about the events you care about"),
        "{first}"
    );
    assert!(first.contains("This hub has no accounts yet"), "{first}");
    alice.signup("alice", "velvet crane harbour 42").await;
    let home = alice.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Hello, alice"), "{}", home.body);
    let later = app.browser().get("/signin").await.body;
    assert!(!later.contains("no accounts yet"), "{later}");

    // Sign-up refuses a taken name, with a message in the form.
    let other = app.browser();
    let taken = other
        .submit(
            "/signup",
            "/signup",
            &[
                ("username", "alice"),
                ("password", "plum kettle orbit 1974"),
                ("password2", "plum kettle orbit 1974"),
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
                ("password", "plum kettle orbit 1974"),
                ("password2", "plum kettle orbit 1974"),
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

/// Issue 8 item 8: `password`, `12345678` and eight spaces were accepted at sign-up.
async fn weak_passwords_are_refused(app: &App) {
    let visitor = app.browser();
    for (password, why) in [
        ("password", "at least 12 characters"),
        ("12345678", "at least 12 characters"),
        ("        ", "at least 12 characters"),
        ("passwordpassword", "too easy to guess"),
        ("carolcarol2024", "too easy to guess"),
    ] {
        let reply = visitor
            .submit(
                "/signup",
                "/signup",
                &[
                    ("username", "carol"),
                    ("password", password),
                    ("password2", password),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{password:?}");
        assert!(reply.body.contains(why), "{password:?}: {}", reply.body);
    }
    assert_eq!(app.store.user_by_name("carol").await.unwrap(), None);
    let page = visitor.get("/signup").await.body;
    assert!(page.contains(r#"minlength="12""#), "{page}");
    visitor.signup("carol", "plum kettle orbit 1974").await;
}

/// The value of cookie `name` among a reply's `Set-Cookie` headers.
pub fn cookie_value<'a>(set_cookies: &'a [String], name: &str) -> Option<&'a str> {
    set_cookies.iter().find_map(|c| {
        c.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .and_then(|rest| rest.split(';').next())
    })
}

/// Whether a reply tells the browser to drop its (unprefixed) session cookie.
pub fn clears_session_cookie(set_cookies: &[String]) -> bool {
    set_cookies
        .iter()
        .any(|c| c.starts_with("tidings_session=;") && c.contains("Max-Age=0"))
}

/// The status of the dashboard for a request carrying only `cookie` (a `name=value`).
async fn dashboard_with(app: &App, cookie: String) -> StatusCode {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

/// Issue 8 item 5: sign-in and sign-out rotate the session; visitors get only a CSRF
/// cookie, no session.
#[tokio::test]
async fn sessions_rotate_and_cookies_are_locked_down() {
    let app = App::start(Db::Sqlite).await.unwrap();
    let alice = app.browser();
    let first = alice.get("/signin").await;
    assert_eq!(cookie_value(&first.set_cookies, "tidings_session"), None);
    let cookie = first
        .set_cookies
        .iter()
        .find(|c| c.starts_with("tidings_csrf="))
        .expect("a visitor gets a CSRF cookie")
        .clone();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "http base_url: no Secure flag: {cookie}"
    );
    assert!(
        first.headers.get("strict-transport-security").is_none(),
        "no HSTS over http"
    );

    app.store
        .create_user("alice", Some("velvet crane harbour 42"), false)
        .await
        .unwrap();
    let again = alice.signin("alice", "velvet crane harbour 42").await;
    let signed_in = cookie_value(&again.set_cookies, "tidings_session")
        .expect("a session on sign-in")
        .to_string();
    let second = app.browser();
    second.signin("alice", "velvet crane harbour 42").await;
    assert_eq!(app.store.session_count().await.unwrap(), 2);

    // The token works; a signed-out one does not.
    let with = |token: &str| dashboard_with(&app, format!("tidings_session={token}"));
    assert_eq!(with(&signed_in).await, StatusCode::OK);

    // Signing in again from the same browser ends the session it had.
    let rotated = alice
        .submit(
            "/",
            "/signin",
            &[
                ("username", "alice"),
                ("password", "velvet crane harbour 42"),
            ],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let rotated = cookie_value(&rotated.set_cookies, "tidings_session")
        .expect("rotated on sign-in")
        .to_string();
    assert_ne!(rotated, signed_in);
    assert_eq!(
        with(&signed_in).await,
        StatusCode::SEE_OTHER,
        "the session before sign-in must not work"
    );
    assert_eq!(app.store.session_count().await.unwrap(), 2);

    let out = alice.submit("/", "/signout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        clears_session_cookie(&out.set_cookies),
        "sign-out clears the cookie: {:?}",
        out.set_cookies
    );
    assert_eq!(
        with(&rotated).await,
        StatusCode::SEE_OTHER,
        "signed-out token must not work"
    );
    assert_eq!(
        app.store.session_count().await.unwrap(),
        1,
        "the other browser's stays"
    );
    app.stop().await;
}

/// Issue 8 item 11: with an https base_url, HSTS on every response and `__Host-` cookies
/// (Secure, Path=/, no Domain) that the whole sign-in flow uses.
#[tokio::test]
async fn https_sites_send_hsts_and_host_cookies_and_signup_can_be_closed() {
    let app = App::start_with(Db::Sqlite, |c| {
        c.base_url = "https://tidings.example.org".into();
        c.allow_signup = false;
    })
    .await
    .unwrap();
    app.store
        .create_user("alice", Some("velvet crane harbour 42"), false)
        .await
        .unwrap();
    // The test speaks http to the app, so the cookie jar would drop Secure cookies: carry
    // them by hand, as a browser would over https.
    let visitor = app.browser();
    let page = visitor.get("/signin").await;
    for reply in [
        &page,
        &visitor.get("/healthz").await,
        &visitor.get("/nope").await,
    ] {
        assert_eq!(
            reply.headers["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
    }
    let csrf_cookie = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-tidings_csrf="))
        .expect("a __Host- CSRF cookie");
    assert!(
        csrf_cookie.contains("; Secure") && csrf_cookie.contains("Path=/"),
        "{csrf_cookie}"
    );
    assert!(!csrf_cookie.contains("Domain"), "{csrf_cookie}");
    assert!(
        !page.body.contains("/signup"),
        "no sign-up link when sign-up is closed"
    );
    assert_eq!(visitor.get("/signup").await.status, StatusCode::NOT_FOUND);

    let value = cookie_value(&page.set_cookies, "__Host-tidings_csrf").unwrap();
    let token = crate::support::csrf(&page.body);
    let signin = visitor
        .client
        .post(format!("{}/signin", app.base))
        .header("cookie", format!("__Host-tidings_csrf={value}"))
        .form(&[
            ("csrf", token.as_str()),
            ("username", "alice"),
            ("password", "velvet crane harbour 42"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signin.status(), StatusCode::SEE_OTHER);
    let session = signin
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("__Host-tidings_session="))
        .expect("a __Host- session cookie")
        .to_string();
    assert!(session.ends_with("; Secure"), "{session}");
    assert!(!session.contains("Domain"), "{session}");
    let token = cookie_value(&[session], "__Host-tidings_session")
        .unwrap()
        .to_string();
    let home = dashboard_with(&app, format!("__Host-tidings_session={token}")).await;
    assert_eq!(home, StatusCode::OK);
    // The unprefixed name is not the session cookie on an https site.
    let unprefixed = dashboard_with(&app, format!("tidings_session={token}")).await;
    assert_eq!(unprefixed, StatusCode::SEE_OTHER);
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

/// The account page: a password change needs the current password and a strong new one,
/// and signs the other browsers out (this one stays); "sign out everywhere" ends them all.
async fn password_change_and_sign_out_everywhere(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let laptop = app.browser_from("127.0.0.2");
    assert_eq!(
        laptop
            .signin("alice", "velvet crane harbour 42")
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = alice.get("/account").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Change your password"), "{}", page.body);
    assert!(
        page.body.contains(r#"href="/account""#),
        "the nav links to it"
    );
    assert_eq!(
        app.browser().get("/account").await.location.as_deref(),
        Some("/signin")
    );

    let change = |current: &'static str, new: &'static str, again: &'static str| {
        let alice = &alice;
        async move {
            alice
                .submit(
                    "/account",
                    "/account/password",
                    &[
                        ("current_password", current),
                        ("password", new),
                        ("password2", again),
                    ],
                )
                .await
        }
    };
    for (reply, said) in [
        (
            change(
                "wrong guess",
                "quiet lantern meadow 77",
                "quiet lantern meadow 77",
            )
            .await,
            "not your current password",
        ),
        (
            change("velvet crane harbour 42", "password1234", "password1234").await,
            "too easy to guess",
        ),
        (
            change(
                "velvet crane harbour 42",
                "quiet lantern meadow 77",
                "other",
            )
            .await,
            "differ",
        ),
    ] {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{said}");
        assert!(reply.body.contains(said), "{said}: {}", reply.body);
    }
    // Refused changes sign nobody out.
    assert_eq!(laptop.get("/").await.status, StatusCode::OK);

    let done = change(
        "velvet crane harbour 42",
        "quiet lantern meadow 77",
        "quiet lantern meadow 77",
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(
        done.body.contains("your other session is signed out"),
        "{}",
        done.body
    );
    assert_eq!(
        alice.get("/").await.status,
        StatusCode::OK,
        "this one stays"
    );
    assert_eq!(
        laptop.get("/").await.location.as_deref(),
        Some("/signin"),
        "the other browser is signed out"
    );
    // Changes count as sign-in tries: a stolen session cannot guess the password fast.
    // The laptop's sign-in and these four were the account's allowance of five.
    let throttled = change(
        "guess",
        "quiet lantern meadow 78",
        "quiet lantern meadow 78",
    )
    .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers.contains_key("retry-after"));

    // The old password no longer works, the new one does (asked of the store: the
    // browsers' tries so far have used up the account's sign-in allowance).
    let store = &app.store;
    assert!(store
        .authenticate("alice", "velvet crane harbour 42")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate("alice", "quiet lantern meadow 77")
        .await
        .unwrap()
        .is_some());

    // Someone else's sessions are not touched by alice's "everywhere".
    let bob = app.browser_from("127.0.0.4");
    bob.signup("bob", "plum kettle orbit 1974").await;
    assert_eq!(store.session_count().await.unwrap(), 2, "alice's and bob's");
    let everywhere = alice
        .submit("/account", "/account/signout-everywhere", &[])
        .await;
    assert_eq!(everywhere.status, StatusCode::SEE_OTHER);
    assert_eq!(everywhere.location.as_deref(), Some("/signin"));
    assert_eq!(alice.get("/").await.location.as_deref(), Some("/signin"));
    assert_eq!(store.session_count().await.unwrap(), 1, "bob's");
    assert_eq!(bob.get("/").await.status, StatusCode::OK);
    // Without the form's token, nothing happens.
    let forged = bob.post("/account/signout-everywhere", &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(bob.get("/").await.status, StatusCode::OK);
}

/// The account page's export holds the user's own data and no one else's; deleting the
/// account needs the password and the username typed, and takes everything of theirs.
async fn export_and_delete_my_account(app: &App) {
    let store = &app.store;
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let bob = app.browser_from("127.0.0.2");
    bob.signup("bob", "plum kettle orbit 1974").await;
    let mut ids = Vec::new();
    for (name, filter) in [("alice", "alices builds"), ("bob", "bobs secret filter")] {
        let user = store.user_by_name(name).await.unwrap().unwrap();
        let to = store
            .add_destination(NewDestination {
                user_id: user.id,
                channel: ChannelKind::Email,
                address: &format!("{name}@example.org"),
                confirmed: true,
            })
            .await
            .unwrap();
        let input = FilterInput {
            name: filter.into(),
            condition: Condition::parse(r#"topic ~ "org.fedoraproject.*.buildsys.**""#).unwrap(),
            destination_ids: vec![to.id],
            delivery: Delivery::Instant,
            enabled: true,
        };
        store.create_filter(user.id, &input).await.unwrap();
        ids.push(user.id);
    }

    let export = alice.get("/account/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(
        export.headers["content-disposition"],
        r#"attachment; filename="tidings-alice.json""#
    );
    let data: serde_json::Value = serde_json::from_str(&export.body).expect("JSON");
    assert_eq!(data["account"]["username"], "alice");
    assert_eq!(data["destinations"][0]["address"], "alice@example.org");
    assert_eq!(data["filters"][0]["name"], "alices builds");
    assert_eq!(
        data["filters"][0]["condition"],
        r#"topic ~ "org.fedoraproject.*.buildsys.**""#
    );
    assert!(!export.body.contains("bob"), "{}", export.body);
    assert_eq!(
        app.browser()
            .get("/account/export")
            .await
            .location
            .as_deref(),
        Some("/signin")
    );

    let delete = |password: &'static str, confirm: &'static str| {
        let alice = &alice;
        async move {
            alice
                .submit(
                    "/account",
                    "/account/delete",
                    &[("current_password", password), ("confirm", confirm)],
                )
                .await
        }
    };
    let unconfirmed = delete("velvet crane harbour 42", "bob").await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert!(
        unconfirmed.body.contains("Type your username"),
        "{}",
        unconfirmed.body
    );
    let wrong = delete("not my password", "alice").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body.contains("not your current password"),
        "{}",
        wrong.body
    );
    assert!(store.user_by_name("alice").await.unwrap().is_some());

    let gone = delete("velvet crane harbour 42", "alice").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "{}", gone.body);
    assert_eq!(gone.location.as_deref(), Some("/signin"));
    assert!(store.user_by_name("alice").await.unwrap().is_none());
    assert!(store.destinations(ids[0]).await.unwrap().is_empty());
    assert!(store.filters(ids[0]).await.unwrap().filters.is_empty());
    assert_eq!(alice.get("/").await.location.as_deref(), Some("/signin"));
    // Bob's account is untouched.
    assert_eq!(bob.get("/").await.status, StatusCode::OK);
    assert_eq!(store.filters(ids[1]).await.unwrap().filters.len(), 1);
    assert_eq!(store.destinations(ids[1]).await.unwrap().len(), 1);
}
