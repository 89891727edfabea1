//! The harness: a server per test on a fresh database, and a browser-like client.

use std::sync::Arc;

use reqwest::header::LOCATION;
use reqwest::{redirect, StatusCode};
use tidings_store::Store;
use tokio_util::sync::CancellationToken;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs `$test(app)` once on SQLite and once on PostgreSQL (skipped, saying so, when
/// `TIDINGS_TEST_POSTGRES` is unset).
#[macro_export]
macro_rules! on_both {
    ($($test:ident),* $(,)?) => {$(
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::support::App::start($crate::support::Db::Sqlite).await.expect("sqlite app");
                super::$test(&app).await;
                app.stop().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(app) = $crate::support::App::start($crate::support::Db::Postgres).await else {
                    $crate::support::postgres_missing();
                    return;
                };
                super::$test(&app).await;
                app.stop().await;
            }
        }
    )*};
}

/// Says that the PostgreSQL half is skipped, or fails the test in CI (`CI` set), where
/// PostgreSQL must be tested.
pub fn postgres_missing() {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("TIDINGS_TEST_POSTGRES is not set, but CI is: the PostgreSQL tests must run");
    }
    eprintln!("skipped: TIDINGS_TEST_POSTGRES is not set");
}

/// A running app on its own database.
pub struct App {
    pub base: String,
    pub store: Store,
    /// The database URL the store was opened with.
    pub database_url: String,
    pub wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    postgres: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl App {
    /// Starts the app; `None` for PostgreSQL when no server is configured.
    pub async fn start(db: Db) -> Option<App> {
        App::start_with(db, |_| {}).await
    }

    /// Starts the app with adjusted settings.
    pub async fn start_with(
        db: Db,
        adjust: impl FnOnce(&mut tidings_web::WebConfig),
    ) -> Option<App> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (url, postgres) = match db {
            Db::Sqlite => (
                format!("sqlite://{}/t.db?mode=rwc", dir.path().display()),
                None,
            ),
            Db::Postgres => {
                let admin = std::env::var("TIDINGS_TEST_POSTGRES").ok()?;
                let name = fresh_database(&admin).await;
                (with_database(&admin, &name), Some((admin, name)))
            }
        };
        // Bursts arrive whole: the flood limit is tested where a policy sets it.
        tidings_store::set_default_delivery(tidings_store::DeliveryPolicy::Immediate {
            flood_max: 0,
            flood_window_minutes: 1,
        });
        let store = Store::open(&url).await.expect("open store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = tidings_web::WebConfig {
            base_url: base.clone(),
            irc_networks: vec!["testnet".into()],
            ..tidings_web::WebConfig::default()
        };
        adjust(&mut config);
        let wake = Arc::new(tokio::sync::Notify::new());
        let state = tidings_web::AppState::new(
            store.clone(),
            config,
            Arc::new(tidings_rules::Metadata::derive),
            wake.clone(),
        );
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(tidings_web::serve(state, listener, shutdown.clone()));
        Some(App {
            base,
            store,
            database_url: url,
            wake,
            shutdown,
            server,
            postgres,
            _dir: dir,
        })
    }

    /// A fresh browser (its own cookie jar).
    pub fn browser(&self) -> Browser {
        self.browser_from("127.0.0.1")
    }

    /// A fresh browser whose connections come from `address`, a loopback address such as
    /// 127.0.0.2 (the whole 127/8 reaches the server), so the server sees another client.
    pub fn browser_from(&self, address: &str) -> Browser {
        Browser {
            base: self.base.clone(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(redirect::Policy::none())
                .local_address(address.parse::<std::net::IpAddr>().expect("an IP address"))
                .build()
                .expect("client"),
        }
    }

    /// Runs one SQL statement on the app's database, e.g. to age rows.
    pub async fn sql(&self, statement: &str) {
        if self.database_url.starts_with("sqlite:") {
            execute::<sqlx::SqliteConnection>(&self.database_url, statement).await;
        } else {
            execute::<sqlx::PgConnection>(&self.database_url, statement).await;
        }
    }

    /// Stops the server (it must shut down gracefully) and drops a PostgreSQL database.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), self.server).await;
        stopped
            .expect("graceful shutdown")
            .expect("join")
            .expect("serve");
        self.store.close().await;
        if let Some((admin, name)) = self.postgres {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop database");
        }
    }
}

async fn execute<C>(url: &str, statement: &str)
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c>,
{
    use sqlx::Executor as _;
    let mut conn = C::connect(url).await.expect("connect");
    conn.execute(statement).await.expect(statement);
}

async fn fresh_database(admin: &str) -> String {
    use sqlx::Connection;
    let suffix: String = tidings_store::secret::new_token()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>()
        .to_lowercase();
    let name = format!("tidings_web_{suffix}");
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to TIDINGS_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    name
}

/// The admin URL with its database replaced.
fn with_database(admin: &str, name: &str) -> String {
    let (url, query) = admin.split_once('?').map_or((admin, ""), |(u, q)| (u, q));
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let base = match url[scheme_end..].find('/') {
        Some(slash) => &url[..scheme_end + slash],
        None => url,
    };
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// A reply, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub location: Option<String>,
    /// Every `Set-Cookie`.
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// A client with a cookie jar that does not follow redirects.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Reply {
        read(
            self.client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        read(
            self.client
                .post(format!("{}{path}", self.base))
                .form(fields)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// POSTs a form with the CSRF token scraped from the page at `page`.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Reply {
        let html = self.get(page).await.body;
        let token = csrf(&html);
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }

    pub async fn signup(&self, username: &str, password: &str) {
        let reply = self
            .submit(
                "/signup",
                "/signup",
                &[
                    ("username", username),
                    ("password", password),
                    ("password2", password),
                ],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "sign-up failed: {}",
            reply.body
        );
        assert_eq!(reply.location.as_deref(), Some("/"));
    }

    pub async fn signin(&self, username: &str, password: &str) -> Reply {
        self.submit(
            "/signin",
            "/signin",
            &[("username", username), ("password", password)],
        )
        .await
    }
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let set_cookies: Vec<String> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Reply {
        status,
        location,
        set_cookies,
        headers,
        body,
    }
}

/// The first CSRF token in a page.
pub fn csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn replaces_the_database_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}
