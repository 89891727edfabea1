//! The change log: one row per user whose filters, destinations or variables changed. The
//! matcher reads the rows past the last one it saw and re-indexes only those users.
//!
//! Every write that affects matching goes through an [`Edit`]: a transaction that cannot
//! commit without being told whose preferences it changed, appends their change rows last,
//! and wakes the matcher, in every process, once the commit is done.
//!
//! The matcher's cursor never skips a committed change. On PostgreSQL, ids are handed out
//! before commit, so two writers could commit out of id order, and a reader that saw the
//! higher id would move past the lower one for good. A trigger (migration 0008) therefore
//! numbers each row only after taking an advisory lock that it holds until commit: rows are
//! numbered in commit order. Appending the rows last keeps that lock to the commit itself,
//! and since no row lock is taken after it, it cannot be part of a deadlock. SQLite has one
//! writer at a time. The matcher also rebuilds its whole index now and then, as a backstop.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};

use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};

use crate::db::with_pool;
use crate::{now_ms, Result, Store, Wake};

/// Change rows written per statement.
const CHUNK: usize = 400;

/// A row of the change log: this user's filters, destinations or variables changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct Change {
    /// Position in the log.
    pub id: i64,
    /// Whose.
    pub user_id: i64,
}

impl Store {
    /// Change-log rows after `after`, oldest first.
    pub async fn changes_since(&self, after: i64) -> Result<Vec<Change>> {
        let sql = self.sql("SELECT id, user_id FROM changes WHERE id > $1 ORDER BY id");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, Change>(&sql)
            .bind(after)
            .fetch_all(pool)
            .await?))
    }

    /// The newest change-log position (0 when empty).
    pub async fn last_change(&self) -> Result<i64> {
        let sql = "SELECT COALESCE(MAX(id), 0) FROM changes";
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await?))
    }
}

/// A transaction over what matching reads (filters, destinations, accounts, ownership,
/// follows). Queries run on it as on the transaction (`&mut *edit`); the only way to
/// commit is [`Edit::commit`], which must be told whose preferences changed. Dropped
/// without a commit, it rolls back.
pub(crate) struct Edit<'s, DB: Database> {
    store: &'s Store,
    tx: Transaction<'static, DB>,
}

impl<'s, DB: Database> Edit<'s, DB> {
    /// Begins the transaction, as a writer from the start (`begin_write`).
    pub(crate) async fn begin(store: &'s Store, pool: &Pool<DB>) -> Result<Edit<'s, DB>> {
        Ok(Edit {
            store,
            tx: crate::db::begin_write(pool).await?,
        })
    }
}

impl<DB> Edit<'_, DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    /// Appends one change row for each of `users` (an account listed twice gets one),
    /// commits, and wakes the matcher. With no users, it only commits.
    pub(crate) async fn commit(mut self, users: impl IntoIterator<Item = i64>) -> Result<()> {
        let users: Vec<i64> = users
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if users.is_empty() {
            self.tx.commit().await?;
            return Ok(());
        }
        let now = now_ms();
        for chunk in users.chunks(CHUNK) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO changes (user_id, at) VALUES {}",
                rows.join(", ")
            );
            let sql = self.store.sql(&sql);
            let mut insert = sqlx::query(&sql);
            for user in chunk {
                insert = insert.bind(*user).bind(now);
            }
            insert.execute(&mut *self.tx).await?;
        }
        // Sent by the server when, and only if, the transaction commits.
        if let Some(notify) = self.store.notify_in_transaction(Wake::Matcher) {
            sqlx::query(&notify).execute(&mut *self.tx).await?;
        }
        self.tx.commit().await?;
        self.store.signal_here(Wake::Matcher);
        Ok(())
    }
}

impl<DB: Database> Deref for Edit<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: Database> DerefMut for Edit<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}
