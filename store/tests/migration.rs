//! Migrations on databases filled before them. 0005: addresses that differ only in case,
//! one address confirmed by two accounts, old API tokens. 0009: an outbox row with the old
//! untyped payload, a destination without settings.

use sqlx::migrate::Migrator;
use sqlx::{Connection as _, Executor as _};
use tidings_store::{ChannelKind, OutboxPayload, Outcome, Recorded, Store, TokenScope};

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

/// Migrates `url` below migration `version`, then runs `sql` on it.
async fn fill_before(name: &str, url: &str, dir: &str, version: i64, sql: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut migrator = match Migrator::new(path).await {
        Ok(m) => m,
        Err(err) => panic!("[{name}] reading migrations: {err}"),
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    let filled = async {
        if name == "sqlite" {
            let pool = sqlx::SqlitePool::connect(url).await?;
            migrator.run(&pool).await?;
            pool.execute(sql).await?;
            pool.close().await;
        } else {
            let pool = sqlx::PgPool::connect(url).await?;
            migrator.run(&pool).await?;
            pool.execute(sql).await?;
            pool.close().await;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    if let Err(err) = filled.await {
        panic!("[{name}] preparing the old database: {err}");
    }
}

/// Fills `url` as before 0005, then opens the store (which applies the rest) and checks
/// what 0005 made of it.
async fn check(name: &str, url: &str, dir: &str) {
    fill_before(name, url, dir, 5, BEFORE).await;
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

/// Runs `check` on a fresh SQLite file and, when one is named, a fresh PostgreSQL database.
async fn on_both<F, Fut>(check: F)
where
    F: Fn(&'static str, String, &'static str) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("temp dir: {err}"),
    };
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    check("sqlite", url, "../migrations/sqlite").await;

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
        database_url(&server, &database),
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

// Issue 8 items 1 and 7: existing data is brought under the new rules, not refused.
#[tokio::test]
async fn migration_0005_fixes_existing_rows() {
    on_both(|name, url, dir| async move { check(name, &url, dir).await }).await;
}

/// Before issue 9: a queued confirmation whose payload is the untyped `{"token": …}`, and a
/// destination without settings.
const BEFORE_0009: &str = r#"
INSERT INTO users (id, username, created_at) VALUES (1, 'alice', 1);
INSERT INTO destinations (id, user_id, channel, address, address_key, confirmed_at, created_at) VALUES
  (1, 1, 'email', 'alice@example.org', 'alice@example.org', NULL, 1);
INSERT INTO outbox (kind, message_id, destination_id, filters, payload, uid, status, next_attempt_at, created_at) VALUES
  ('confirmation', NULL, 1, '[]', '{"token":"old-token"}', 'uid1', 'pending', 0, 1);
"#;

// Issue 9: the payload becomes the versioned enum, destinations get typed settings, and the
// old row is claimed (with a claim token) and recorded like a new one.
#[tokio::test]
async fn migration_0009_types_old_payloads_and_settings() {
    on_both(|name, url, dir| async move {
        fill_before(name, &url, dir, 9, BEFORE_0009).await;
        let store = ok!(name, Store::open(&url).await);
        let alice = ok!(name, store.destinations(1).await);
        assert_eq!(
            alice[0].settings,
            ChannelKind::Email.new_settings(&[0; 24]),
            "[{name}]"
        );
        let claimed = ok!(name, store.claim(10, 60_000).await);
        assert_eq!(claimed.len(), 1, "[{name}]");
        assert_eq!(
            claimed[0].payload,
            Some(OutboxPayload::ConfirmationV1 {
                token: "old-token".into()
            }),
            "[{name}]"
        );
        assert!(!claimed[0].claim_token.is_empty(), "[{name}]");
        let recorded = ok!(name, store.record(&claimed[0], &Outcome::Sent).await);
        assert_eq!(recorded, Recorded::Current, "[{name}]");
        store.close().await;
    })
    .await;
}

/// Before issue 11's sign-in provider: a local account and imported group memberships.
const BEFORE_0020: &str = "
INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'alice', 'x', 1);
INSERT INTO group_members (group_name, username) VALUES ('sig', 'alice'), ('infra', 'alice');
";

// Issue 11: memberships become imported ones (the provider's stay apart), accounts local.
#[tokio::test]
async fn migration_0020_keeps_memberships_as_imported() {
    on_both(|name, url, dir| async move {
        fill_before(name, &url, dir, 20, BEFORE_0020).await;
        let store = ok!(name, Store::open(&url).await);
        assert_eq!(
            ok!(name, store.group_sources("alice").await),
            [("infra".to_string(), false), ("sig".to_string(), false)],
            "[{name}]"
        );
        let alice = ok!(name, store.user(1).await);
        assert!(!alice.from_provider, "[{name}] {alice:?}");
        // The primary key now has the source: the provider may give the same group.
        let groups = ["sig".to_string()].into_iter().collect();
        ok!(name, store.set_provider_groups("alice", &groups).await);
        assert_eq!(
            ok!(name, store.group_sources("alice").await).len(),
            3,
            "[{name}]"
        );
        store.close().await;
    })
    .await;
}
