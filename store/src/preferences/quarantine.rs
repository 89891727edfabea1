//! Quarantine: a filter whose stored row cannot be read is set aside instead of stopping
//! matching for everyone. The matcher marks it (once, however many processes find it);
//! active filters leave it out; its owner and the admin see why; saving the filter again
//! lifts it (see `filters`), and deleting it removes it.

use sqlx::FromRow;

use crate::db::with_pool;
use crate::{now_ms, Result, Store, UnreadableFilter};

/// Why a filter is out of matching, and since when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    /// When it was set aside (ms since the epoch).
    pub at: i64,
    /// What could not be read.
    pub reason: String,
}

impl Quarantine {
    /// From the filter row's two columns; the time alone decides.
    pub(crate) fn from_columns(at: Option<i64>, reason: Option<String>) -> Option<Quarantine> {
        at.map(|at| Quarantine {
            at,
            reason: reason.unwrap_or_default(),
        })
    }
}

/// A quarantined filter, as the admin lists them.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct QuarantinedFilter {
    /// The filter's id.
    pub id: i64,
    /// Its owner's id.
    pub user_id: i64,
    /// Its owner's username.
    pub username: String,
    /// Its name.
    pub name: String,
    /// When it was set aside.
    pub quarantined_at: i64,
    /// Why.
    pub reason: String,
}

impl Store {
    /// Sets an unreadable filter aside: active filters leave it out until it is saved
    /// again. Returns whether this call did it: false if it was already quarantined, is
    /// gone, or was saved since it was read (its new form has not been judged yet). So
    /// each quarantine is logged and counted once.
    pub async fn quarantine_filter(&self, filter: &UnreadableFilter) -> Result<bool> {
        let sql = self.sql(
            "UPDATE filters SET quarantined_at = $1, quarantine_reason = $2 \
             WHERE id = $3 AND quarantined_at IS NULL AND ($4 IS NULL OR updated_at = $4)",
        );
        let done = with_pool!(self, |pool| sqlx::query(&sql)
            .bind(now_ms())
            .bind(&filter.reason)
            .bind(filter.id)
            .bind(filter.updated_at)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done > 0)
    }

    /// Every quarantined filter, oldest quarantine first.
    pub async fn quarantined_filters(&self) -> Result<Vec<QuarantinedFilter>> {
        let sql = "SELECT f.id, f.user_id, u.username, f.name, f.quarantined_at, \
                   COALESCE(f.quarantine_reason, '') AS reason \
                   FROM filters f JOIN users u ON u.id = f.user_id \
                   WHERE f.quarantined_at IS NOT NULL ORDER BY f.quarantined_at, f.id";
        Ok(with_pool!(self, |pool| sqlx::query_as::<
            _,
            QuarantinedFilter,
        >(sql)
        .fetch_all(pool)
        .await?))
    }
}
