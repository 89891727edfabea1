//! The connection: an enum over the two backends, the URL that picks one, migrations, the
//! health check, and the `with_pool!` macro that runs one piece of query code on whichever
//! pool is open. Where the dialects differ is in `dialect`.
//!
//! Both pools close, rather than reuse, a connection that comes back still inside a
//! transaction: on SQLite a COMMIT that fails (disk full, I/O error) can leave the
//! connection holding the write lock, and every later write would wait on it until restart.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, Database, PgConnection, PgPool, SqlitePool};

use crate::signals::Signals;
use crate::{Result, StoreError};

/// Runs `$body` with `$pool` bound to the open pool, whichever backend it is. The body is
/// compiled once per backend, so runtime queries type-check against both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &*$store.db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The store: cheap to clone, shared by the web and the notifier.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Arc<Db>,
    /// Wake-ups raised and listened for through this store (`signals`).
    pub(crate) signals: Arc<Signals>,
    /// Server keys read so far: a key never changes once stored, and the sender needs one
    /// for every claim.
    pub(crate) keys: Arc<std::sync::Mutex<std::collections::HashMap<String, crate::ServerKey>>>,
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once (BEGIN
/// IMMEDIATE), waiting out the busy timeout for it: a deferred transaction that reads first
/// and writes later fails at once with "database is locked" if another writer committed
/// in between, and no busy timeout helps it (CI saw this once, resending a confirmation).
pub(crate) async fn begin_write<DB: Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::Transaction<'static, DB>> {
    let statement = if DB::NAME == <sqlx::Sqlite as Database>::NAME {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    Ok(pool.begin_with(statement).await?)
}

/// How long one attempt to reach a PostgreSQL server may take.
const CONNECT_ATTEMPT: Duration = Duration::from_secs(5);

/// A connection returned to its pool inside a transaction is closed, not reused (see the
/// module comment).
fn released_outside_transaction<DB: Database>(
    conn: &mut DB::Connection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    // A transaction dropped on an error path may still show here, its rollback queued but
    // not yet run: closing that connection too costs a reconnect, on error paths only.
    let reusable = !conn.is_in_transaction();
    if !reusable {
        tracing::debug!("closing a database connection left inside a transaction");
    }
    Box::pin(std::future::ready(Ok(reusable)))
}

impl Store {
    /// Opens the database named by `url` (`sqlite://path?mode=rwc`, `postgres://…`) and
    /// applies pending migrations. One attempt: a server that cannot be reached is an error.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_within(url, Duration::ZERO).await
    }

    /// Opens and migrates like [`Store::open`], trying again for up to `wait` while the
    /// database server cannot be reached (it may be starting alongside us).
    pub async fn open_within(url: &str, wait: Duration) -> Result<Store> {
        let store = Store::connect_within(url, wait).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_within(url, Duration::ZERO).await
    }

    async fn connect_within(url: &str, wait: Duration) -> Result<Store> {
        let bad = |reason: String| StoreError::Url {
            url: redact(url),
            reason,
        };
        let db = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| bad(e.to_string()))?
                .create_if_missing(true)
                // WAL: readers (the web, the sender's reads) never wait on the writer, and a
                // commit appends to the log instead of rewriting pages. NORMAL syncs the log
                // at checkpoints, not at each commit: a crash of the process loses nothing
                // committed; a power loss or OS crash can roll back the last commits (the
                // file stays consistent). FULL would cost an fsync per commit, which group
                // commit amortises but does not remove. README, "Crash and power loss".
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // 8 MiB of page cache a connection (SQLite's default is 2 MiB): the pages
                // a burst writes to (the ends of the outbox's indexes, and one page per
                // destination in `outbox_destination`) then stay in memory.
                .pragma("cache_size", "-8192")
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .after_release(released_outside_transaction::<sqlx::Sqlite>)
                .connect_with(options)
                .await
                .map_err(|e| bad(e.to_string()))?;
            Db::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(|e| bad(e.to_string()))?;
            let server = format!("{}:{}", options.get_host(), options.get_port());
            reach_postgres(&options, &server, wait)
                .await
                .map_err(|err| match err {
                    StoreError::Unavailable { .. } => err,
                    other => bad(other.to_string()),
                })?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(5))
                .after_release(released_outside_transaction::<sqlx::Postgres>)
                .connect_with(options)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Unavailable { reason } => unreachable(&server, reason),
                    other => bad(other.to_string()),
                })?;
            Db::Postgres(pool)
        } else {
            return Err(bad(
                "expected a URL starting with sqlite: or postgres:".into()
            ));
        };
        Ok(Store {
            db: Arc::new(db),
            signals: Arc::new(Signals::new()),
            keys: Arc::default(),
        })
    }

    /// Applies the migrations embedded for this backend.
    pub async fn migrate(&self) -> Result<()> {
        match &*self.db {
            Db::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Writes and commits the heartbeat row: the database answers and can write. A write
    /// that is rolled back would pass on a full disk; a committed one does not.
    pub async fn check_writable(&self) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO heartbeat (id, beat_at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
        );
        with_pool!(self, |pool| sqlx::query(&sql)
            .bind(crate::now_ms())
            .execute(pool)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Which backend this store uses.
    pub fn backend(&self) -> Backend {
        match &*self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Stops listening for wake-ups and closes every connection.
    pub async fn close(&self) {
        self.signals.close();
        match &*self.db {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

/// Tries to open one connection to the server until it answers or `wait` has passed. A
/// server that cannot be reached (refused, timed out, starting up) is retried; any other
/// refusal (authentication, a missing database) is returned at once.
async fn reach_postgres(options: &PgConnectOptions, server: &str, wait: Duration) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let reason = match tokio::time::timeout(
            CONNECT_ATTEMPT,
            PgConnection::connect_with(options),
        )
        .await
        {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(err)) => match StoreError::from(err) {
                StoreError::Unavailable { reason } => reason,
                other => return Err(other),
            },
            Err(_) => format!("no answer within {} s", CONNECT_ATTEMPT.as_secs()),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let reason = if wait.is_zero() {
                reason
            } else {
                format!("{reason} (tried for {} s)", wait.as_secs())
            };
            return Err(unreachable(server, reason));
        }
        tracing::warn!(%server, %reason, "the database server cannot be reached yet; trying again");
        tokio::time::sleep(left.min(Duration::from_secs(1))).await;
    }
}

fn unreachable(server: &str, reason: String) -> StoreError {
    StoreError::Unavailable {
        reason: format!("cannot reach the database server at {server}: {reason}"),
    }
}

/// The URL without its password (in the user info or a `password=` query pair), for
/// messages.
pub fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_unparsed(url);
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// A URL the `url` crate refuses (a bad port, say) is what a mistyped setting looks like:
/// cut the password out of `scheme://user:password@host` by hand.
fn redact_unparsed(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}
