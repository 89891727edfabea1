//! Sign-in through a real OpenID Connect provider (issue 11): the certified `oidc-provider`
//! from npm, run by `tests/support/oidc_provider.mjs` on a free port, driven over HTTP like
//! a browser (its login form submitted, every redirect followed by hand). Both backends.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use reqwest::StatusCode;
use tidings_store::{ImportMode, OwnershipData};

use crate::support::{App, Browser, Db, Reply};

const CLIENT_ID: &str = "tidings-test";
const CLIENT_SECRET: &str = "a-client-secret-for-the-tests";

/// The provider process, ended when dropped.
pub struct Provider {
    child: Child,
    pub issuer: String,
    /// The JSON file of accounts it reads at each sign-in.
    accounts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The folder `npm install oidc-provider` went into (scripts/test does it).
fn provider_modules() -> PathBuf {
    let dir = std::env::var_os("TIDINGS_TEST_OIDC_PROVIDER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-tools/oidc-provider")
        });
    assert!(
        dir.join("node_modules/oidc-provider/package.json").exists(),
        "oidc-provider is not installed in {} (scripts/test installs it: npm install \
         --prefix {0} oidc-provider@9.13.3; or set TIDINGS_TEST_OIDC_PROVIDER)",
        dir.display()
    );
    dir
}

/// A free TCP port on 127.0.0.1 for the provider, below the kernel's ephemeral range (as
/// the end-to-end tests' `free_port`): a port bound and released there could be handed to
/// an outgoing connection before the provider binds it. Each process walks its own stretch.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 307 + 11_000) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN)
}

impl Provider {
    /// Starts the provider on `port` for a hub at `base`, and waits until it listens.
    pub fn start(port: u16, base: &str) -> Provider {
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = dir.path().join("accounts.json");
        std::fs::write(&accounts, "{}").expect("accounts file");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/support/oidc_provider.mjs");
        let node = std::env::var("TIDINGS_TEST_NODE").unwrap_or_else(|_| "node".into());
        let child = Command::new(&node)
            .arg(script)
            .arg("--modules")
            .arg(provider_modules())
            .args(["--port", &port.to_string()])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .arg("--redirect-uri")
            .arg(format!("{base}/signin/oidc/callback"))
            .arg("--accounts")
            .arg(&accounts)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            // Its start-up warnings (development keys and login form) are expected here.
            .stderr(std::fs::File::create(dir.path().join("provider.log")).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {node} (Node.js is needed for these tests): {e}"));
        let provider = Provider {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
            accounts,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the OIDC provider did not listen on {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        provider
    }

    /// Sets one account's username and groups for the next sign-ins.
    pub fn set_account(&self, login: &str, username: &str, groups: &[&str]) {
        let mut all: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.accounts).expect("read"))
                .expect("json");
        all[login] = serde_json::json!({"preferred_username": username, "groups": groups});
        std::fs::write(&self.accounts, all.to_string()).expect("write accounts");
    }
}

/// The hub's `[web.oidc]` for a provider at `issuer`.
pub fn oidc_config(issuer: &str) -> tidings_web::OidcConfig {
    tidings_web::OidcConfig {
        issuer: issuer.to_string(),
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        scopes: vec!["profile".into(), "groups".into()],
        name: "Test ID".into(),
        timeout_secs: 5,
        ..tidings_web::OidcConfig::default()
    }
}

/// The app with the provider configured and started.
async fn start(db: Db) -> Option<(App, Provider)> {
    let port = free_port();
    let mut provider = None;
    let app = App::start_with(db, |config| {
        let started = Provider::start(port, &config.base_url);
        config.oidc = Some(oidc_config(&started.issuer));
        provider = Some(started);
    })
    .await?;
    Some((app, provider.expect("provider started")))
}

/// Runs `$test(&app, &provider)` on SQLite and on PostgreSQL.
macro_rules! with_provider {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let (app, provider) = super::start($crate::support::Db::Sqlite).await.expect("sqlite app");
                super::$test(&app, &provider).await;
                app.stop().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some((app, provider)) = super::start($crate::support::Db::Postgres).await else {
                    $crate::support::postgres_missing();
                    return;
                };
                super::$test(&app, &provider).await;
                app.stop().await;
            }
        }
    )*};
}

with_provider!(
    sign_in_makes_the_account_with_its_groups,
    tampered_answers_are_refused,
    local_sign_up_is_off_and_names_stay_apart,
    disabled_accounts_cannot_sign_in,
    provider_accounts_have_no_password
);

/// A reply to an absolute URL.
async fn fetch(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request");
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Reply {
        status,
        location,
        set_cookies: Vec::new(),
        headers,
        body,
    }
}

/// `location` resolved against `base`.
fn resolve(base: &str, location: &str) -> String {
    reqwest::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("a URL")
        .to_string()
}

/// What a test changes on the way.
#[derive(Default, Clone, Copy)]
struct Tamper {
    /// Rewrites the authorization request the hub sends the browser to.
    authorize: Option<fn(reqwest::Url) -> reqwest::Url>,
    /// Rewrites the answer the provider sends the browser back with.
    callback: Option<fn(reqwest::Url) -> reqwest::Url>,
}

/// Signs in through the provider as `login`: the button, the provider's login form, and
/// back; returns the hub's answer to the callback.
async fn through_provider(app: &App, b: &Browser, login: &str, tamper: Tamper) -> Reply {
    let start = b.get("/signin/oidc").await;
    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
    let mut url = reqwest::Url::parse(&start.location.expect("to the provider")).expect("url");
    if let Some(change) = tamper.authorize {
        url = change(url);
    }
    let callback = format!("{}/signin/oidc/callback", app.base);
    for _ in 0..10 {
        if url.as_str().starts_with(&callback) {
            if let Some(change) = tamper.callback {
                url = change(url);
            }
            return fetch(b.client.get(url.as_str())).await;
        }
        let reply = fetch(b.client.get(url.as_str())).await;
        if let Some(location) = reply.location {
            url = reqwest::Url::parse(&resolve(url.as_str(), &location)).expect("url");
            continue;
        }
        // The provider's login page: submit its form as a person would.
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(
            reply.body.contains(r#"name="login""#),
            "not the provider's login form: {}",
            reply.body
        );
        let action = reply
            .body
            .split(r#"action=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the form's action");
        let target = resolve(url.as_str(), action);
        let posted = fetch(b.client.post(&target).form(&[
            ("prompt", "login"),
            ("login", login),
            ("password", "any password"),
        ]))
        .await;
        url = reqwest::Url::parse(&resolve(
            &target,
            &posted
                .location
                .unwrap_or_else(|| panic!("login answered {}: {}", posted.status, posted.body)),
        ))
        .expect("url");
    }
    panic!("too many redirects before the callback");
}

fn groups(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

async fn sign_in_makes_the_account_with_its_groups(app: &App, provider: &Provider) {
    let b = app.browser();
    let page = b.get("/signin").await.body;
    assert!(page.contains("Sign in with Test ID"), "{page}");
    let done = through_provider(app, &b, "alice", Tamper::default()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/"));
    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Hello, alice"), "{}", home.body);
    let alice = app
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .expect("alice's account");
    assert!(alice.from_provider, "{alice:?}");
    let vars = app.store.variables(alice.id).await.unwrap();
    assert_eq!(vars.my_groups, groups(&["infra", "packager"]));
    // Where each group comes from, on "My packages"; packages through the groups.
    let data = OwnershipData::from_json(
        r#"{"groups": {"sig": ["alice"]}, "packages": {"ansible": {"groups": ["infra"]}}}"#,
    )
    .unwrap();
    app.store
        .import_ownership(&data, ImportMode::Merge)
        .await
        .unwrap();
    let me = b.get("/me").await.body;
    assert!(
        me.contains(r#"<li>packager <span class="muted">from your sign-in provider</span></li>"#),
        "{me}"
    );
    assert!(
        me.contains(r#"<li>sig <span class="muted">from the ownership data</span></li>"#),
        "{me}"
    );
    assert!(
        me.contains("<td>ansible</td><td>through the group infra</td>"),
        "{me}"
    );
    // The provider changes alice's groups: the next sign-in (another browser) reuses the
    // account and replaces the provider's groups, the imported one stays.
    provider.set_account("alice", "alice", &["packager", "qa"]);
    let at = app.store.last_change().await.unwrap();
    let other = app.browser();
    let again = through_provider(app, &other, "alice", Tamper::default()).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(app.store.users().await.unwrap().len(), 1);
    let vars = app.store.variables(alice.id).await.unwrap();
    assert_eq!(vars.my_groups, groups(&["packager", "qa", "sig"]));
    assert!(vars.my_packages.is_empty(), "{:?}", vars.my_packages);
    let changes = app.store.changes_since(at).await.unwrap();
    assert!(
        changes.iter().any(|c| c.user_id == alice.id),
        "the matcher is told: {changes:?}"
    );
    // The username claim names the account, not the login or subject.
    let carol = through_provider(app, &app.browser(), "carol.login", Tamper::default()).await;
    assert_eq!(carol.status, StatusCode::SEE_OTHER, "{}", carol.body);
    let carol = app
        .store
        .user_by_name("carol")
        .await
        .unwrap()
        .expect("carol");
    let vars = app.store.variables(carol.id).await.unwrap();
    assert_eq!(vars.me, "carol");
    assert_eq!(vars.my_groups, groups(&["qa"]));
    // A username claim that cannot be a username here is refused, saying why.
    provider.set_account("dave", "Dave Smith", &[]);
    let bad = through_provider(app, &app.browser(), "dave", Tamper::default()).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("cannot be a username here"),
        "{}",
        bad.body
    );
}

async fn tampered_answers_are_refused(app: &App, _provider: &Provider) {
    // Another state than the one this browser's sign-in started with.
    let tampered = through_provider(
        app,
        &app.browser(),
        "alice",
        Tamper {
            callback: Some(|url| with_param(url, "state", Some("forged-state"))),
            ..Tamper::default()
        },
    )
    .await;
    assert_eq!(tampered.status, StatusCode::BAD_REQUEST);
    assert!(
        tampered.body.contains("state does not match"),
        "{}",
        tampered.body
    );
    // Without PKCE: the provider requires it and says so; the hub shows it.
    let no_pkce = through_provider(
        app,
        &app.browser(),
        "alice",
        Tamper {
            authorize: Some(|url| {
                let url = with_param(url, "code_challenge", None);
                with_param(url, "code_challenge_method", None)
            }),
            ..Tamper::default()
        },
    )
    .await;
    assert_eq!(no_pkce.status, StatusCode::BAD_REQUEST);
    assert!(
        no_pkce
            .body
            .contains("refused the sign-in (invalid_request")
            && no_pkce.body.contains("PKCE"),
        "{}",
        no_pkce.body
    );
    // Another nonce than the one this browser's sign-in holds: the ID token is refused.
    let wrong_nonce = through_provider(
        app,
        &app.browser(),
        "alice",
        Tamper {
            authorize: Some(|url| with_param(url, "nonce", Some("another-nonce"))),
            ..Tamper::default()
        },
    )
    .await;
    assert_eq!(wrong_nonce.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong_nonce
            .body
            .contains("ID token from Test ID is not valid")
            && wrong_nonce.body.to_lowercase().contains("nonce"),
        "{}",
        wrong_nonce.body
    );
    // The callback in a browser that started nothing.
    let stray = app
        .browser()
        .get("/signin/oidc/callback?code=abc&state=def")
        .await;
    assert_eq!(stray.status, StatusCode::BAD_REQUEST);
    assert!(
        stray
            .body
            .contains("No sign-in through Test ID was started"),
        "{}",
        stray.body
    );
    assert!(app.store.users().await.unwrap().is_empty());
}

/// `url` with `name` set to `value` (or removed).
fn with_param(mut url: reqwest::Url, name: &str, value: Option<&str>) -> reqwest::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    url
}

async fn local_sign_up_is_off_and_names_stay_apart(app: &App, _provider: &Provider) {
    let b = app.browser();
    let page = b.get("/signup").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("Accounts here come from Test ID: local sign-up is off"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"name="password2""#), "{}", page.body);
    let csrf = crate::support::csrf(&b.get("/signin").await.body);
    let refused = b
        .post(
            "/signup",
            &[
                ("csrf", csrf.as_str()),
                ("username", "mallory"),
                ("password", "velvet crane harbour 42"),
                ("password2", "velvet crane harbour 42"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(app.store.users().await.unwrap().is_empty());
    // A name the provider owns cannot be taken locally (`tidings user add` is this call).
    let done = through_provider(app, &b, "alice", Tamper::default()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let err = app
        .store
        .create_user("alice", Some("velvet crane harbour 42"), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sign-in provider"), "{err}");
    // A local account is not taken over by the provider's person of that name ...
    let bob = app
        .store
        .create_user("bob", Some("plum kettle orbit 1974"), false)
        .await
        .unwrap();
    let taken = through_provider(app, &app.browser(), "bob", Tamper::default()).await;
    assert_eq!(taken.status, StatusCode::FORBIDDEN);
    assert!(
        taken.body.contains("A local account named bob exists here"),
        "{}",
        taken.body
    );
    // ... until an admin hands it over: same account, password gone.
    app.store.hand_to_provider("bob").await.unwrap();
    let handed = app.browser();
    let done = through_provider(app, &handed, "bob", Tamper::default()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(handed.get("/").await.body.contains("Hello, bob"));
    let local = app.browser().signin("bob", "plum kettle orbit 1974").await;
    assert_eq!(local.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.store.users().await.unwrap().len(), 2);
    assert_eq!(
        app.store.user_by_name("bob").await.unwrap().map(|u| u.id),
        Some(bob.id)
    );
}

async fn disabled_accounts_cannot_sign_in(app: &App, _provider: &Provider) {
    let b = app.browser();
    let done = through_provider(app, &b, "alice", Tamper::default()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    app.store.set_user_disabled("alice", true).await.unwrap();
    let other = app.browser();
    let refused = through_provider(app, &other, "alice", Tamper::default()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("The account alice is disabled"),
        "{}",
        refused.body
    );
    // No session: the dashboard sends to sign-in.
    let home = other.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/signin"));
}

async fn provider_accounts_have_no_password(app: &App, _provider: &Provider) {
    let b = app.browser();
    let done = through_provider(app, &b, "alice", Tamper::default()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = b.get("/account").await.body;
    assert!(
        page.contains("Your account signs in through Test ID: it has no password here"),
        "{page}"
    );
    assert!(!page.contains(r#"name="current_password""#), "{page}");
    let refused = b
        .submit(
            "/account",
            "/account/password",
            &[
                ("current_password", ""),
                ("password", "velvet crane harbour 42"),
                ("password2", "velvet crane harbour 42"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("has no password here"),
        "{}",
        refused.body
    );
    let deleted = b
        .submit("/account", "/account/delete", &[("confirm", "alice")])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert!(app.store.users().await.unwrap().is_empty());
}

/// A provider that is down when the hub starts: the site works, the sign-in page says so,
/// and the button tries again once it is up.
#[tokio::test]
async fn a_provider_down_at_start_is_tried_again() {
    let port = free_port();
    let app = App::start_with(Db::Sqlite, |config| {
        config.oidc = Some(oidc_config(&format!("http://127.0.0.1:{port}")));
    })
    .await
    .expect("app");
    let b = app.browser();
    let down = b.get("/signin/oidc").await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        down.body.contains("Test ID cannot be reached right now"),
        "{}",
        down.body
    );
    let page = b.get("/signin").await.body;
    assert!(page.contains("Test ID could not be reached"), "{page}");
    assert!(page.contains(r#"name="password""#), "{page}");
    let _provider = Provider::start(port, &app.base);
    let done = through_provider(&app, &b, "alice", Tamper::default()).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = b.get("/").await.body;
    assert!(page.contains("Hello, alice"), "{page}");
    app.stop().await;
}
