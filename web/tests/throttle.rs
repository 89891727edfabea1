//! Issue 8 item 4: sign-in throttling per account and per client address, and bounded
//! password hashing. 50 wrong passwords in 1.5 s used to be answered and the right one still
//! worked; 96 concurrent bogus sign-ins took the process from 26 MiB to 1.8 GiB.

use reqwest::StatusCode;

use crate::on_both;
use crate::support::{App, Browser, Reply};

on_both!(
    wrong_passwords_throttle_the_account,
    many_tries_throttle_the_address
);

const ALICE: &str = "velvet crane harbour 42";
const BOB: &str = "plum kettle orbit 1974";

/// A 429 that says, in `Retry-After` and on the page, when to try again.
fn assert_throttled(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    let secs: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(secs >= 1, "Retry-After {secs}");
    assert!(
        reply
            .body
            .contains(&format!("Try again in {secs} seconds.")),
        "{}",
        reply.body
    );
}

/// Makes `count` sign-in tries (account names from `account`); each is checked (400) or
/// throttled (429, saying when). Returns how many were checked.
async fn tries(
    browser: &Browser,
    count: usize,
    account: impl Fn(usize) -> String,
    password: &str,
) -> usize {
    let mut checked = 0;
    for n in 0..count {
        let reply = browser.signin(&account(n), password).await;
        if reply.status == StatusCode::BAD_REQUEST {
            checked += 1;
        } else {
            assert_throttled(&reply);
        }
    }
    checked
}

async fn signed_in(browser: &Browser) -> bool {
    browser.get("/").await.status == StatusCode::OK
}

async fn wrong_passwords_throttle_the_account(app: &App) {
    for (name, password) in [("alice", ALICE), ("bob", BOB)] {
        app.store
            .create_user(name, Some(password), false)
            .await
            .unwrap();
    }
    // Twelve guesses: five are checked, the rest refused unchecked. (Twelve, not fifty, so
    // that the address itself stays under its own, larger limit.)
    let mallory = app.browser_from("127.0.0.2");
    let answered = tries(&mallory, 12, |_| "alice".into(), "a wrong guess").await;
    assert_eq!(answered, 5, "a few tries, then throttled");
    // The right password is refused too while the account is throttled, from anywhere.
    assert_throttled(&mallory.signin("alice", ALICE).await);
    let alice = app.browser_from("127.0.0.3");
    assert_throttled(&alice.signin("alice", ALICE).await);
    assert!(!signed_in(&alice).await);
    assert_eq!(app.store.session_count().await.unwrap(), 0);
    // Another account is unaffected, even from the guessing address.
    let bob = app.browser_from("127.0.0.2");
    assert_eq!(bob.signin("bob", BOB).await.status, StatusCode::SEE_OTHER);
    assert!(signed_in(&bob).await);
}

async fn many_tries_throttle_the_address(app: &App) {
    app.store
        .create_user("bob", Some(BOB), false)
        .await
        .unwrap();
    let scanner = app.browser_from("127.0.0.4");
    let answered = tries(&scanner, 30, |n| format!("user{n}"), "some password").await;
    assert_eq!(answered, 20, "an address gets more tries than an account");
    // The address is throttled for every account and for sign-up...
    assert_throttled(&scanner.signin("bob", BOB).await);
    assert!(!signed_in(&scanner).await);
    let signup = scanner
        .submit(
            "/signup",
            "/signup",
            &[
                ("username", "newbie"),
                ("password", BOB),
                ("password2", BOB),
            ],
        )
        .await;
    assert_throttled(&signup);
    // ...and another address is not.
    let bob = app.browser_from("127.0.0.5");
    assert_eq!(bob.signin("bob", BOB).await.status, StatusCode::SEE_OTHER);
    assert!(signed_in(&bob).await);
}

/// A browser on 127.0.0.1 whose requests carry `header: value`.
fn behind_proxy(app: &App, header: &'static str, value: &'static str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(header, reqwest::header::HeaderValue::from_static(value));
    Browser {
        base: app.base.clone(),
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

/// Uses up an address's tries with unknown names; the next one is throttled.
async fn exhaust(browser: &Browser) {
    let checked = tries(browser, 21, |n| format!("nobody{n}"), "some password").await;
    assert_eq!(checked, 20);
}

/// With `web.client_address_header` set, the proxy's header names the client; without it,
/// the header is the client's own claim and is ignored.
#[tokio::test]
async fn a_trusted_proxy_header_names_the_client() {
    let app = App::start_with(crate::support::Db::Sqlite, |c| {
        c.client_address_header = Some("X-Forwarded-For".into());
    })
    .await
    .unwrap();
    app.store
        .create_user("bob", Some(BOB), false)
        .await
        .unwrap();
    exhaust(&behind_proxy(
        &app,
        "x-forwarded-for",
        "10.1.1.1, 203.0.113.7",
    ))
    .await;
    // The same proxy, another client: unaffected.
    let bob = behind_proxy(&app, "x-forwarded-for", "203.0.113.8");
    assert_eq!(bob.signin("bob", BOB).await.status, StatusCode::SEE_OTHER);
    app.stop().await;

    let app = App::start(crate::support::Db::Sqlite).await.unwrap();
    app.store
        .create_user("bob", Some(BOB), false)
        .await
        .unwrap();
    exhaust(&behind_proxy(&app, "x-forwarded-for", "203.0.113.7")).await;
    let forged = behind_proxy(&app, "x-forwarded-for", "203.0.113.8");
    assert_throttled(&forged.signin("bob", BOB).await);
    app.stop().await;
}
