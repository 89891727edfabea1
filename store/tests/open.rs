//! Opening a store: migrations, and the errors a bad database URL gives.

use tidings_store::{Backend, Store, StoreError};

use crate::harness::{backends, database_url, fails, ok, user, POSTGRES_ENV};

#[tokio::test]
async fn migrations_apply_twice() {
    for t in backends().await {
        let n = t.name;
        let expected = if n == "sqlite" {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        assert_eq!(t.store.backend(), expected, "[{n}] backend");
        let alice = user(&t, "alice").await;
        // Migrating an up-to-date database changes nothing, through the same store and
        // through a second one opened on the same URL.
        ok!(n, t.store.migrate().await);
        let again = ok!(n, Store::open(&t.url).await);
        ok!(n, again.migrate().await);
        let found = ok!(n, again.user_by_name("alice").await);
        assert_eq!(found, Some(alice), "[{n}] data survives re-migration");
        again.close().await;
    }
}

fn assert_url_error(err: StoreError, must_contain: &[&str], password: &str) {
    let StoreError::Url { url, reason } = &err else {
        panic!("expected StoreError::Url, got {err:?}");
    };
    for part in must_contain {
        assert!(
            url.contains(part),
            "{url:?} should name {part:?} ({reason})"
        );
    }
    let shown = err.to_string();
    assert!(
        !shown.contains(password) && !url.contains(password),
        "the password leaked: {shown:?}"
    );
    assert!(!reason.is_empty(), "a reason is given");
}

#[tokio::test]
async fn unknown_scheme_is_a_url_error_without_password() {
    let err = fails!(
        "any",
        Store::open("mysql://alice:hunter2@db.example.org/tidings")
            .await
            .map(drop)
    );
    assert_url_error(err, &["mysql://alice", "db.example.org/tidings"], "hunter2");
}

/// Regression: a URL the `url` crate cannot parse (port out of range) was shown unredacted.
#[tokio::test]
async fn unparsable_url_is_a_url_error_without_password() {
    let err = fails!(
        "postgres",
        Store::open("postgres://alice:hunter2@127.0.0.1:99999/tidings")
            .await
            .map(drop)
    );
    assert_url_error(err, &["alice", "127.0.0.1:99999/tidings"], "hunter2");
}

#[tokio::test]
async fn sqlite_file_that_cannot_be_made_is_a_url_error() {
    let url = "sqlite:///nonexistent-tidings-folder/deeper/store.db?mode=rwc";
    let err = fails!("sqlite", Store::open(url).await.map(drop));
    assert_url_error(
        err,
        &["/nonexistent-tidings-folder/deeper/store.db"],
        "hunter2",
    );
}

#[tokio::test]
async fn missing_postgres_database_is_a_url_error_without_password() {
    // Only meaningful with a server; `backends()` enforces the CI rule for the others.
    let Ok(server) = std::env::var(POSTGRES_ENV) else {
        return;
    };
    let missing = format!("tidings_store_missing_{:016x}", rand::random::<u64>());
    let mut url = match url::Url::parse(&database_url(&server, &missing)) {
        Ok(url) => url,
        Err(err) => panic!("[postgres] {err}"),
    };
    // Trust authentication ignores the password, so the server answers about the database.
    if url.username().is_empty() {
        let _ = url.set_username("postgres");
    }
    let _ = url.set_password(Some("hunter2"));
    let err = fails!("postgres", Store::open(url.as_str()).await.map(drop));
    assert_url_error(err, &[&missing, "***"], "hunter2");
}

/// Regression: `redact` left passwords in URLs the `url` crate cannot parse, and in the
/// `password=` query pair PostgreSQL URLs accept.
#[test]
fn redact_hides_every_password() {
    use tidings_store::redact;
    let cases = [
        (
            "postgres://alice:hunter2@db.example.org/tidings",
            "postgres://alice:***@db.example.org/tidings",
        ),
        (
            "postgres://alice:hunter2@db.example.org:99999/tidings",
            "postgres://alice:***@db.example.org:99999/tidings",
        ),
        (
            "postgres://alice@db.example.org/tidings?password=hunter2&sslmode=require",
            "postgres://alice@db.example.org/tidings?password=***&sslmode=require",
        ),
        (
            "postgres://alice@db.example.org/tidings",
            "postgres://alice@db.example.org/tidings",
        ),
        (
            "sqlite://data/tidings.db?mode=rwc",
            "sqlite://data/tidings.db?mode=rwc",
        ),
    ];
    for (url, want) in cases {
        let shown = redact(url);
        assert!(!shown.contains("hunter2"), "{url:?} -> {shown:?}");
        assert_eq!(shown.replace("%2A", "*"), want, "{url:?}");
    }
}

/// issue 8 item 20: with PostgreSQL down, opening said "database URL … pool timed out", as
/// if the URL were wrong. It names the server that cannot be reached, and is `Unavailable`.
#[tokio::test]
async fn unreachable_server_is_unavailable_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("a free port: {e}"));
    let url = format!("postgres://alice:hunter2@127.0.0.1:{port}/tidings");
    let err = fails!("postgres", Store::open(&url).await.map(drop));
    assert!(err.is_unavailable(), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!(
            "cannot reach the database server at 127.0.0.1:{port}"
        )),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("pool timed out"),
        "{shown}"
    );
}
