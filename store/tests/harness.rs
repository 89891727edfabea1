//! The backends every test runs on: a fresh SQLite file, and a fresh PostgreSQL database on
//! the server named by `TIDINGS_TEST_POSTGRES`. CI must set that variable: when `CI` is set
//! and it is not, every test fails rather than silently skipping PostgreSQL.

use std::io::Write as _;
use std::sync::Once;

use sqlx::{Connection as _, Executor as _, PgConnection};
use tidings_rules::{Message, Metadata};
use tidings_store::{
    ChannelKind, Delivery, Destination, FilterInput, NewDestination, Notification, Store, User,
};

/// The environment variable naming the PostgreSQL server the tests create databases on.
pub const POSTGRES_ENV: &str = "TIDINGS_TEST_POSTGRES";

/// Unwraps a store result, or fails naming the backend and the call.
macro_rules! ok {
    ($backend:expr, $call:expr) => {
        match $call {
            Ok(value) => value,
            Err(err) => panic!("[{}] {} failed: {err:?}", $backend, stringify!($call)),
        }
    };
}
pub(crate) use ok;

/// The error of a call that must fail, or fails the test naming the backend and the call.
macro_rules! fails {
    ($backend:expr, $call:expr) => {
        match $call {
            Ok(value) => panic!(
                "[{}] {} succeeded ({value:?}) but should have failed",
                $backend,
                stringify!($call)
            ),
            Err(err) => err,
        }
    };
}
pub(crate) use fails;

/// One backend under test: its name (for assertion messages), the open store and the URL
/// it was opened with. Dropping it removes the database.
pub struct TestStore {
    pub name: &'static str,
    pub store: Store,
    pub url: String,
    _sqlite_dir: Option<tempfile::TempDir>,
    _postgres_database: Option<PostgresDatabase>,
}

/// A database made for one test, dropped with it.
struct PostgresDatabase {
    admin_url: String,
    database: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived
        // runtime on its own thread drops the database (FORCE ends the store's connections).
        let (admin_url, database) = (self.admin_url.clone(), self.database.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            note(&format!(
                "could not drop test database {}: {err}",
                self.database
            ));
        }
    }
}

/// Writes straight to stderr, past the test harness's capture, so the note is seen.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Every backend to test, each with a fresh, migrated database.
pub async fn backends() -> Vec<TestStore> {
    // Bursts arrive whole: the flood limit is tested where a policy sets it (digests.rs).
    tidings_store::set_default_delivery(tidings_store::DeliveryPolicy::Immediate {
        flood_max: 0,
        flood_window_minutes: 1,
    });
    let mut backends = vec![sqlite().await];
    match std::env::var(POSTGRES_ENV) {
        Ok(server) if !server.trim().is_empty() => backends.push(postgres(server.trim()).await),
        _ if in_ci() => panic!(
            "{POSTGRES_ENV} is not set, but CI is: CI must run the store tests on PostgreSQL \
             too. Set {POSTGRES_ENV} to a server URL on which CREATE DATABASE is allowed, \
             e.g. postgres://postgres@127.0.0.1:5432/postgres"
        ),
        _ => {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                note(&format!(
                    "{POSTGRES_ENV} is not set: the store tests run on SQLite only. Set it to a \
                     PostgreSQL server URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) \
                     to test PostgreSQL too."
                ))
            });
        }
    }
    backends
}

async fn sqlite() -> TestStore {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("[sqlite] making a temp folder: {err}"),
    };
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    let store = ok!("sqlite", Store::open(&url).await);
    TestStore {
        name: "sqlite",
        store,
        url,
        _sqlite_dir: Some(dir),
        _postgres_database: None,
    }
}

async fn postgres(server: &str) -> TestStore {
    let database = format!("tidings_store_{:016x}", rand::random::<u64>());
    let mut admin = match PgConnection::connect(server).await {
        Ok(conn) => conn,
        Err(err) => panic!(
            "[postgres] cannot connect to {POSTGRES_ENV}={}: {err}",
            tidings_store::redact(server)
        ),
    };
    if let Err(err) = admin
        .execute(format!("CREATE DATABASE {database}").as_str())
        .await
    {
        panic!("[postgres] CREATE DATABASE {database}: {err}");
    }
    let _ = admin.close().await;
    let cleanup = PostgresDatabase {
        admin_url: server.to_string(),
        database: database.clone(),
    };
    let url = database_url(server, &database);
    let store = ok!("postgres", Store::open(&url).await);
    TestStore {
        name: "postgres",
        store,
        url,
        _sqlite_dir: None,
        _postgres_database: Some(cleanup),
    }
}

/// The server URL with its database replaced by `database`.
pub fn database_url(server: &str, database: &str) -> String {
    match url::Url::parse(server) {
        Ok(mut url) => {
            url.set_path(&format!("/{database}"));
            url.to_string()
        }
        Err(err) => panic!("[postgres] {POSTGRES_ENV} is not a URL: {err}"),
    }
}

// Fixtures shared by the test modules.

/// A user without a password (no argon2 work, so tests stay quick).
pub async fn user(t: &TestStore, username: &str) -> User {
    ok!(t.name, t.store.create_user(username, None, false).await)
}

/// An email destination for `user_id`.
pub async fn destination(
    t: &TestStore,
    user_id: i64,
    address: &str,
    confirmed: bool,
) -> Destination {
    ok!(
        t.name,
        t.store
            .add_destination(NewDestination {
                user_id,
                channel: ChannelKind::Email,
                address,
                confirmed,
            })
            .await
    )
}

/// A filter input matching one topic glob.
pub fn filter_input(name: &str, destination_ids: &[i64]) -> FilterInput {
    FilterInput {
        name: name.to_string(),
        condition: tidings_rules::Condition::TopicGlob("org.example.**".into()),
        destination_ids: destination_ids.to_vec(),
        delivery: Delivery::Instant,
        enabled: true,
    }
}

/// A message with a body, a send time and a header, and metadata with a recognisable summary.
pub fn message(id: &str) -> (Message, Metadata) {
    let topic = format!("org.example.prod.app.{id}");
    let mut message = Message::new(
        id,
        topic.clone(),
        serde_json::json!({ "agent": "alice", "n": 1, "nested": { "list": [1, "two"] } }),
    );
    message.sent_at = Some(1_700_000_000_123);
    message
        .headers
        .insert("fedora_messaging_severity".into(), serde_json::json!(20));
    let metadata = Metadata {
        topic,
        app: Some("app".into()),
        agent: Some("alice".into()),
        usernames: ["alice".to_string()].into(),
        summary: format!("summary of {id}"),
        ..Metadata::default()
    };
    (message, metadata)
}

/// Archives a message and returns its row id.
pub async fn archived(t: &TestStore, id: &str) -> i64 {
    let (message, metadata) = message(id);
    match ok!(
        t.name,
        t.store.insert_message(&message, &metadata, "test").await
    ) {
        Some(row) => row,
        None => panic!("[{}] message {id} was taken for a duplicate", t.name),
    }
}

/// A notification to one destination because of the given filters.
pub fn notification(destination_id: i64, filters: &[(i64, &str)]) -> Notification {
    Notification {
        destination_id,
        filters: filters
            .iter()
            .map(|(id, name)| (*id, name.to_string()))
            .collect(),
        digest: None,
    }
}

/// Runs raw SQL on the test's database, beside the store: for states the API cannot make
/// (old rows from before a migration, times long past).
pub async fn execute(t: &TestStore, sql: &str) {
    let done = if t.name == "postgres" {
        match PgConnection::connect(&t.url).await {
            Ok(mut conn) => conn.execute(sql).await.map(drop),
            Err(err) => Err(err),
        }
    } else {
        match sqlx::SqliteConnection::connect(&t.url).await {
            Ok(mut conn) => conn.execute(sql).await.map(drop),
            Err(err) => Err(err),
        }
    };
    if let Err(err) = done {
        panic!("[{}] {sql}: {err}", t.name);
    }
}
