//! Mutes: a person silences one thread (the app and the object a message is about: an
//! update, a pull request, a build) or one package for a while, from a notification's
//! unsubscribe page, and can undo it. The matcher reads the active ones with the filters
//! (each change goes through the change log) and skips a mute owner's matches on what it
//! names until it ends; nothing is queued for them meanwhile.

use sqlx::FromRow;
use tidings_rules::Metadata;

use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::{now_ms, Result, Store, StoreError};

/// How long a mute from a notification lasts: 30 days.
pub const MUTE_MS: i64 = 30 * 24 * 3_600_000;

/// What a mute silences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MuteKind {
    /// Every message about one object ([`Metadata::thread`]).
    Thread,
    /// Every message about one package.
    Package,
    /// Everything: the person paused all their notifications until the mute ends.
    Everything,
}

impl MuteKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            MuteKind::Thread => "thread",
            MuteKind::Package => "package",
            MuteKind::Everything => "everything",
        }
    }

    fn parse(s: &str) -> Option<MuteKind> {
        match s {
            "thread" => Some(MuteKind::Thread),
            "package" => Some(MuteKind::Package),
            "everything" => Some(MuteKind::Everything),
            _ => None,
        }
    }
}

/// One thing a person can mute from a notification: what, and how it is shown.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MuteOption {
    /// What it silences.
    pub kind: MuteKind,
    /// The thread key or package name.
    pub value: String,
    /// How a person reads it: "this thread: https://… (bodhi)", "the package kernel".
    pub label: String,
}

/// What a message can be muted by: its thread, and each of its packages (at most 5).
pub fn mute_options(metadata: &Metadata) -> Vec<MuteOption> {
    let mut options = Vec::new();
    if let (Some(thread), Some(object)) = (metadata.thread(), metadata.object()) {
        let app = metadata.app.as_deref().unwrap_or("its app");
        options.push(MuteOption {
            kind: MuteKind::Thread,
            value: thread,
            label: format!("this thread: {object} ({app})"),
        });
    }
    for package in metadata.packages.iter().take(5) {
        options.push(MuteOption {
            kind: MuteKind::Package,
            value: package.clone(),
            label: format!("the package {package}"),
        });
    }
    options
}

impl MuteOption {
    /// Pausing everything.
    pub fn everything() -> MuteOption {
        MuteOption {
            kind: MuteKind::Everything,
            value: String::new(),
            label: "everything (paused)".into(),
        }
    }
}

/// An active mute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mute {
    /// Id.
    pub id: i64,
    /// Whose.
    pub user_id: i64,
    /// What it silences.
    pub kind: MuteKind,
    /// The thread key or package name.
    pub value: String,
    /// How a person reads it.
    pub label: String,
    /// When it ends.
    pub until: i64,
}

impl Mute {
    /// Whether it silences a message with `metadata` at `now`.
    pub fn silences(&self, metadata: &Metadata, now: i64) -> bool {
        now < self.until
            && match self.kind {
                MuteKind::Thread => metadata.thread().as_deref() == Some(self.value.as_str()),
                MuteKind::Package => metadata.packages.contains(&self.value),
                MuteKind::Everything => true,
            }
    }
}

#[derive(FromRow)]
struct MuteRow {
    id: i64,
    user_id: i64,
    kind: String,
    value: String,
    label: String,
    until: i64,
}

impl TryFrom<MuteRow> for Mute {
    type Error = StoreError;
    fn try_from(row: MuteRow) -> Result<Mute> {
        Ok(Mute {
            id: row.id,
            user_id: row.user_id,
            kind: MuteKind::parse(&row.kind)
                .ok_or_else(|| StoreError::corrupt("mute kind", &row.kind))?,
            value: row.value,
            label: row.label,
            until: row.until,
        })
    }
}

const COLUMNS: &str = "id, user_id, kind, value, label, until";

impl Store {
    /// Mutes `option` for `user_id` until `until` (a mute of the same thing is extended).
    pub async fn mute(&self, user_id: i64, option: &MuteOption, until: i64) -> Result<Mute> {
        let sql = format!(
            "INSERT INTO mutes (user_id, kind, value, label, until, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, kind, value) \
             DO UPDATE SET until = excluded.until, label = excluded.label RETURNING {COLUMNS}"
        );
        let sql = self.sql(&sql);
        let row = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let row = sqlx::query_as::<_, MuteRow>(&sql)
                .bind(user_id)
                .bind(option.kind.as_str())
                .bind(&option.value)
                .bind(&option.label)
                .bind(until)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit([user_id]).await?;
            row
        });
        row.try_into()
    }

    /// Ends one of a user's mutes; someone else's is `NotFound`.
    pub async fn unmute(&self, user_id: i64, id: i64) -> Result<()> {
        let sql = self.sql("DELETE FROM mutes WHERE id = $1 AND user_id = $2");
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let done = sqlx::query(&sql)
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit([user_id]).await?;
        });
        Ok(())
    }

    /// Pauses every notification of `user_id` until `until`: nothing is queued for them
    /// meanwhile (a mute of everything; pausing again moves the end).
    pub async fn pause_everything(&self, user_id: i64, until: i64) -> Result<Mute> {
        if until <= now_ms() {
            return Err(StoreError::Invalid {
                field: "until",
                reason: "a pause must end in the future".into(),
            });
        }
        self.mute(user_id, &MuteOption::everything(), until).await
    }

    /// Ends a user's pause, if there is one; whether there was.
    pub async fn resume_everything(&self, user_id: i64) -> Result<bool> {
        let sql = self.sql("DELETE FROM mutes WHERE user_id = $1 AND kind = $2");
        let ended = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let done = sqlx::query(&sql)
                .bind(user_id)
                .bind(MuteKind::Everything.as_str())
                .execute(&mut *tx)
                .await?;
            tx.commit([user_id]).await?;
            done.rows_affected() > 0
        });
        Ok(ended)
    }

    /// When a user's pause ends, if they paused everything and it has not ended yet.
    pub async fn paused_until(&self, user_id: i64) -> Result<Option<i64>> {
        Ok(self
            .active_mutes(Some(user_id))
            .await?
            .into_iter()
            .find(|m| m.kind == MuteKind::Everything)
            .map(|m| m.until))
    }

    /// The mutes still running: one user's, or everyone's (`None`), soonest ending first.
    pub async fn active_mutes(&self, user_id: Option<i64>) -> Result<Vec<Mute>> {
        let sql = match user_id {
            Some(_) => format!(
                "SELECT {COLUMNS} FROM mutes WHERE until > $1 AND user_id = $2 ORDER BY until, id"
            ),
            None => format!("SELECT {COLUMNS} FROM mutes WHERE until > $1 ORDER BY until, id"),
        };
        let sql = self.sql(&sql);
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, MuteRow>(&sql).bind(now_ms());
            if let Some(user) = user_id {
                query = query.bind(user);
            }
            query.fetch_all(pool).await?
        });
        rows.into_iter().map(Mute::try_from).collect()
    }
}
