//! Work only one process may do at a time: matching. On PostgreSQL the active matcher
//! holds a session advisory lock on a connection of its own; when its process dies, the
//! connection closes, the server releases the lock, and a standby's next try takes it.
//! On SQLite, whose database belongs to one process (`tidings serve`), the lock is always
//! free.
//!
//! The lock is not what keeps matching correct: a message's notifications are queued at
//! most once per destination whoever matches it. It keeps one process doing the work, in
//! message order, instead of several racing over the same rows.

use std::time::{Duration, Instant};

use sqlx::{Connection as _, Executor as _, PgConnection};

use crate::db::Db;
use crate::dialect::Lock;
use crate::{Result, Store};

/// How often the holder checks that its lock connection still answers.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long that check may take before the lock counts as lost.
const CHECK_LIMIT: Duration = Duration::from_secs(3);

/// Server-side keepalives on the lock's connection: if the holder's host vanishes without
/// closing it (power loss, a cut network), the server drops the session, and the lock with
/// it, within about 11 s rather than TCP's default two hours.
const KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3";

/// The matcher's place: taken by one process at a time.
pub struct MatcherLock {
    /// The lock's own connection (PostgreSQL); none on SQLite.
    conn: Option<PgConnection>,
    held: bool,
    next_check: Instant,
}

impl Store {
    /// A handle on the matcher's lock, with a connection of its own, not yet taken.
    pub async fn matcher_lock(&self) -> Result<MatcherLock> {
        let conn = match &*self.db {
            Db::Postgres(pool) => {
                // Out of the pool: the lock lives as long as this one session.
                let mut conn = pool.acquire().await?.detach();
                conn.execute(KEEPALIVES).await?;
                Some(conn)
            }
            Db::Sqlite(_) => None,
        };
        Ok(MatcherLock {
            conn,
            held: false,
            next_check: Instant::now(),
        })
    }
}

impl MatcherLock {
    /// Takes the lock if no other process holds it; says whether this one holds it now.
    pub async fn try_take(&mut self) -> Result<bool> {
        if !self.held {
            self.held = match &mut self.conn {
                Some(conn) => {
                    sqlx::query_scalar::<_, bool>(&Store::try_lock_sql(Lock::Matcher))
                        .fetch_one(&mut *conn)
                        .await?
                }
                None => true,
            };
            self.next_check = Instant::now() + CHECK_EVERY;
        }
        Ok(self.held)
    }

    /// Whether this process holds the lock (as of the last check).
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Whether the lock is still held: pings its connection if the last check is a second
    /// old, so it can be called before every batch of work. A connection that does not
    /// answer (the server restarted, the network broke) means another process may hold
    /// the lock now: it counts as lost.
    pub async fn check(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut().filter(|_| self.held) else {
            return self.held;
        };
        if Instant::now() >= self.next_check {
            let answered = tokio::time::timeout(CHECK_LIMIT, conn.ping()).await;
            self.next_check = Instant::now() + CHECK_EVERY;
            self.held = matches!(answered, Ok(Ok(())));
        }
        self.held
    }

    /// Resolves when a held lock is lost ([`MatcherLock::check`] once a second), for a
    /// `select!` while idle. Never resolves on SQLite, nor while the lock is not held.
    pub async fn lost(&mut self) {
        if self.conn.is_none() || !self.held {
            return std::future::pending().await;
        }
        loop {
            tokio::time::sleep_until(self.next_check.into()).await;
            if !self.check().await {
                return;
            }
        }
    }

    /// Lets the lock go (closing its connection releases it on the server).
    pub async fn release(self) {
        if let Some(conn) = self.conn {
            let _ = conn.close().await;
        }
    }
}
