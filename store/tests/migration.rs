//! Migration 0005 on a database filled before it: addresses that differ only in case, one
//! address confirmed by two accounts, old API tokens.

use sqlx::migrate::Migrator;
use sqlx::{Connection as _, Executor as _};
use tidings_store::{Store, TokenScope};

use crate::harness::{database_url, ok, POSTGRES_ENV};

/// Rows as they could be before issue 8: alice has one address in two cases (the second
/// confirmed), and both alice and bob confirmed bob's address (bob first).
const BEFORE: &str = "
INSERT INTO users (id, username, created_at) VALUES (1, 'alice', 1), (2, 'bob', 1);
INSERT INTO destinations (id, user_id, channel, address, confirmed_at, created_at) VALUES
  (1, 1, 'email', 'Alice@example.org', NULL, 1),
  (2, 1, 'email', 'alice@example.org', 5, 2),
  (3, 2, 'email', 'bob@example.org', 10, 3),
  (4, 1, 'email', 'Bob@Example.org', 20, 4);
INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('old', 'digest', 1);
";

/// Migrates `url` up to 0003, fills it with [`BEFORE`], then opens the store (which applies
/// the rest) and checks what 0005 made of it.
async fn check(name: &str, url: &str, dir: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut migrator = match Migrator::new(path).await {
        Ok(m) => m,
        Err(err) => panic!("[{name}] reading migrations: {err}"),
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 5)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let filled = async {
        if name == "sqlite" {
            let pool = sqlx::SqlitePool::connect(url).await?;
            migrator.run(&pool).await?;
            pool.execute(BEFORE).await?;
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(url).await?;
            migrator.run(&pool).await?;
            pool.execute(BEFORE).await?;
            pool.close().await;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    if let Err(err) = filled.await {
        panic!("[{name}] preparing the old database: {err}");
    }
    let store = ok!(name, Store::open(url).await);
    let alice = ok!(name, store.destinations(1).await);
    let kept: Vec<(i64, bool)> = alice.iter().map(|d| (d.id, d.is_confirmed())).collect();
    assert_eq!(
        kept,
        [(2, true), (4, false)],
        "[{name}] alice keeps her confirmed spelling; bob's address is no longer hers"
    );
    let bob = ok!(name, store.destinations(2).await);
    assert!(
        bob[0].is_confirmed(),
        "[{name}] bob confirmed first: {bob:?}"
    );
    let tokens = ok!(name, store.api_tokens().await);
    assert_eq!(tokens[0].scope, TokenScope::Publish, "[{name}]");
    store.close().await;
}

// Issue 8 items 1 and 7: existing data is brought under the new rules, not refused.
#[tokio::test]
async fn migration_0005_fixes_existing_rows() {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("temp dir: {err}"),
    };
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    check("sqlite", &url, "../migrations/sqlite").await;

    let Ok(server) = std::env::var(POSTGRES_ENV) else {
        return;
    };
    let database = format!("tidings_migrate_{:016x}", rand::random::<u64>());
    let admin = async {
        let mut conn = sqlx::PgConnection::connect(&server).await?;
        conn.execute(format!("CREATE DATABASE {database}").as_str())
            .await?;
        Ok::<_, sqlx::Error>(conn)
    };
    let mut conn = match admin.await {
        Ok(conn) => conn,
        Err(err) => panic!("[postgres] creating {database}: {err}"),
    };
    check(
        "postgres",
        &database_url(&server, &database),
        "../migrations/postgres",
    )
    .await;
    let dropped = conn
        .execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str())
        .await;
    if let Err(err) = dropped {
        panic!("[postgres] dropping {database}: {err}");
    }
}
