//! Where the two SQL dialects differ, in one place: parameter spelling, row locks that skip
//! rows another transaction holds, table locks, advisory locks and notifications. Query
//! code everywhere else is one text for both backends, passed through [`Store::sql`] and
//! filled in with the fragments below.
//!
//! `ON CONFLICT (…) DO NOTHING` and `DO UPDATE SET … = excluded.…` are spelt alike by both
//! (SQLite since 3.24), so they need nothing here. The change log's commit order on
//! PostgreSQL is kept by a trigger (`migrations/postgres/0008_change_log_order.sql`) that
//! takes [`Lock::ChangeLog`]; its numbers must stay those below.

use std::borrow::Cow;

use crate::{Backend, Store};

/// The first key of every advisory lock Tidings takes ("TIDG"): PostgreSQL's two-key
/// advisory locks are a key space of their own, apart from the one-key form others use.
pub(crate) const LOCK_CLASS: i32 = 0x5449_4447;

/// The advisory locks Tidings takes, by their second key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Writers of change-log rows, one at a time until each commits (taken by the trigger).
    #[expect(dead_code, reason = "taken in SQL, by the migration's trigger")]
    ChangeLog = 1,
    /// The active matcher, held by its process for as long as it matches.
    Matcher = 2,
}

impl Store {
    /// The query text for this backend: SQLite spells numbered parameters `?1`, PostgreSQL `$1`.
    ///
    /// On SQLite, a query whose parameters appear once each and in order (`$1`, `$2`, …, as
    /// every multi-row statement here is written) gets anonymous `?` instead: sqlx finds the
    /// argument of a numbered parameter by looking its name up among all of the statement's
    /// (`sqlite3_bind_parameter_name` walks a list), so binding a statement of n numbered
    /// parameters costs n², and an anonymous one has no name to look up.
    pub(crate) fn sql<'a>(&self, query: &'a str) -> Cow<'a, str> {
        match self.backend() {
            Backend::Postgres => Cow::Borrowed(query),
            Backend::Sqlite => Cow::Owned(sqlite_parameters(query)),
        }
    }

    /// Appended to a `SELECT … LIMIT n` that picks rows to claim, so that concurrent
    /// claimers each get other rows. SQLite has one writer at a time: nothing to add.
    pub fn skip_locked(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }

    /// Run first in a sender's transaction (a claim, a batch of outcomes): PostgreSQL then
    /// reports the commit without waiting for its log to reach the disk. A server crash can
    /// lose the last such commits, which costs what a sender crash costs: those rows are
    /// claimed again once their leases run out, and resent with the same uid (Message-ID).
    /// Nothing else is relaxed: archived messages and queued notifications are durable
    /// when committed. SQLite (WAL, `synchronous = NORMAL`) already commits that way.
    pub(crate) fn relaxed_commit(&self) -> Option<&'static str> {
        match self.backend() {
            Backend::Postgres => Some("SET LOCAL synchronous_commit = off"),
            Backend::Sqlite => None,
        }
    }

    /// Run first in a transaction, makes it the only writer of ownership until it ends, so
    /// the before/after reads that decide whose variables changed are not raced. SQLite:
    /// any write statement takes the database's write lock (a deferred transaction that
    /// read first could fail to upgrade).
    pub(crate) fn ownership_lock(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => {
                "LOCK TABLE group_members, package_owners IN SHARE ROW EXCLUSIVE MODE"
            }
            Backend::Sqlite => "DELETE FROM group_members WHERE 1 = 0",
        }
    }

    /// Serialises the transactions that pass the same text as `$1` until each ends
    /// (PostgreSQL; SQLite transactions already serialise on their first write).
    pub(crate) fn key_lock(&self) -> Option<&'static str> {
        match self.backend() {
            Backend::Postgres => Some("SELECT pg_advisory_xact_lock(hashtext($1))"),
            Backend::Sqlite => None,
        }
    }

    /// Takes `lock` for the session if nobody holds it; answers whether it did.
    pub(crate) fn try_lock_sql(lock: Lock) -> String {
        format!("SELECT pg_try_advisory_lock({LOCK_CLASS}, {})", lock as i32)
    }

    /// A top-level text field of a JSON text column, or '' when absent: `key` and `column`
    /// are ours, never user input.
    pub(crate) fn json_text(&self, column: &str, key: &str) -> String {
        match self.backend() {
            Backend::Postgres => format!("COALESCE(({column})::jsonb ->> '{key}', '')"),
            Backend::Sqlite => format!("COALESCE(json_extract({column}, '$.{key}'), '')"),
        }
    }

    /// Sends a notification on `channel`; inside a transaction, PostgreSQL delivers it only
    /// when (and if) the transaction commits.
    pub(crate) fn notify_sql(channel: &str, payload: &str) -> String {
        // Both are ours (a fixed channel name, a hex instance id), never user input.
        format!("SELECT pg_notify('{channel}', '{payload}')")
    }
}

/// `$n` spelt for SQLite: `?` throughout when the parameters appear once each in order
/// (`$1`, `$2`, …), otherwise `?n`. See [`Store::sql`].
fn sqlite_parameters(query: &str) -> String {
    let bytes = query.as_bytes();
    // (where the `$` is, where its digits end, its number)
    let mut params = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let end = (i + 1..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            let number = query[i + 1..end].parse::<usize>().unwrap_or(0);
            params.push((i, end, number));
            i = end;
        } else {
            i += 1;
        }
    }
    let in_order = params.iter().enumerate().all(|(k, p)| p.2 == k + 1);
    let mut out = String::with_capacity(query.len());
    let mut from = 0;
    for &(start, end, _) in &params {
        out.push_str(&query[from..start]);
        out.push('?');
        if !in_order {
            out.push_str(&query[start + 1..end]);
        }
        from = end;
    }
    out.push_str(&query[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_sql_names_our_class() {
        assert_eq!(
            Store::try_lock_sql(Lock::Matcher),
            "SELECT pg_try_advisory_lock(1414087751, 2)"
        );
        assert_eq!(
            Store::notify_sql("tidings_matcher", "ab12"),
            "SELECT pg_notify('tidings_matcher', 'ab12')"
        );
    }

    #[test]
    fn parameters_in_order_become_anonymous() {
        assert_eq!(
            sqlite_parameters("UPDATE t SET a = $1 WHERE id IN ($2, $3) AND b = '$x'"),
            "UPDATE t SET a = ? WHERE id IN (?, ?) AND b = '$x'"
        );
        assert_eq!(sqlite_parameters("SELECT 1"), "SELECT 1");
        assert_eq!(sqlite_parameters("VALUES ($9, $10)"), "VALUES (?9, ?10)");
    }

    #[test]
    fn repeated_or_unordered_parameters_keep_their_numbers() {
        assert_eq!(
            sqlite_parameters("VALUES ($2, $1, $1) -- $12"),
            "VALUES (?2, ?1, ?1) -- ?12"
        );
        assert_eq!(sqlite_parameters("a = $1 OR b = $1"), "a = ?1 OR b = ?1");
        assert_eq!(
            sqlite_parameters("($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10), ($11, $12)"),
            "(?, ?), (?, ?), (?, ?), (?, ?), (?, ?), (?, ?)"
        );
    }
}
