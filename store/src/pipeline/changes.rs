//! The change log: one row per user whose filters, destinations or variables changed. The
//! matcher reads the rows past the last one it saw and re-indexes only those users.

use sqlx::FromRow;

use crate::db::with_pool;
use crate::{Result, Store};

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
