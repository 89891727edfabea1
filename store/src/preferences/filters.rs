//! Filters: a user's named rules. The condition is stored in its canonical JSON form,
//! checked before anything is written to read back as it was; destinations must be the
//! same user's. Loading never fails for everyone because of one row: a row that cannot be
//! read is returned as an [`UnreadableFilter`] beside the good ones (see `quarantine` for
//! what the matcher then does with it).

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;
use tidings_rules::delivery::DeliveryPolicy;
use tidings_rules::Condition;

use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::preferences::quarantine::Quarantine;
use crate::{now_ms, Result, Store, StoreError};

/// How a filter's notifications are delivered.
///
/// Stored as `instant` or as the digest's settings in JSON (`{"mode":"digest",…}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// As each destination's own rules say (at once with its flood limit, or its digest).
    #[default]
    Instant,
    /// Gathered into a digest of this filter's own, per destination, on this schedule
    /// (always [`DeliveryPolicy::Digest`]). A notification another filter also matched
    /// that is not a digest filter goes by the destination's rules instead.
    Digest(DeliveryPolicy),
}

impl Delivery {
    /// A digest of the filter's own; `Invalid` unless `policy` is a digest whose settings
    /// hold.
    pub fn digest(policy: DeliveryPolicy) -> Result<Delivery> {
        if !matches!(policy, DeliveryPolicy::Digest { .. }) {
            return Err(StoreError::Invalid {
                field: "delivery",
                reason: "a filter's own delivery is a digest; at once is what each                          destination says"
                    .into(),
            });
        }
        policy.check().map_err(|e| StoreError::Invalid {
            field: e.field,
            reason: e.reason,
        })?;
        Ok(Delivery::Digest(policy))
    }

    /// The stored form.
    pub fn stored(&self) -> Result<String> {
        match self {
            Delivery::Instant => Ok("instant".to_string()),
            Delivery::Digest(policy) => {
                serde_json::to_string(policy).map_err(|e| StoreError::corrupt("filter delivery", e))
            }
        }
    }

    /// The digest's settings, for a digest filter.
    pub fn policy(&self) -> Option<&DeliveryPolicy> {
        match self {
            Delivery::Instant => None,
            Delivery::Digest(policy) => Some(policy),
        }
    }

    /// One line for pages and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Delivery::Instant => "as each destination says".to_string(),
            Delivery::Digest(policy) => format!("its own {}", policy.describe()),
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FromStr for Delivery {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Delivery> {
        match s {
            "instant" => Ok(Delivery::Instant),
            json if json.trim_start().starts_with('{') => {
                let policy =
                    DeliveryPolicy::from_stored(Some(json)).map_err(|e| StoreError::Invalid {
                        field: "delivery",
                        reason: format!("unreadable digest settings: {e}"),
                    })?;
                Delivery::digest(policy)
            }
            other => Err(StoreError::Invalid {
                field: "delivery",
                reason: format!("unknown delivery {other:?}; expected instant or a digest"),
            }),
        }
    }
}

/// A user's filter.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Filter {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Name, unique per user; named in the notifications it causes.
    pub name: String,
    /// The condition.
    pub condition: Condition,
    /// How to deliver.
    pub delivery: Delivery,
    /// Disabled filters match nothing.
    pub enabled: bool,
    /// Where matches go.
    pub destination_ids: Vec<i64>,
    /// Created.
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
    /// Set while the filter is quarantined: it matches nothing until it is saved again.
    pub quarantine: Option<Quarantine>,
}

/// A stored filter that could not be read: its condition or delivery is corrupt, nested
/// too deep, or written by a version (or a hand) that wrote what this one does not read.
/// What could be read is kept, so that its owner can see it, repair it or delete it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableFilter {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Name (or `filter <id>` if not even that could be read).
    pub name: String,
    /// Whether it is switched on (it matches nothing while it cannot be read).
    pub enabled: bool,
    /// Where matches went.
    pub destination_ids: Vec<i64>,
    /// The stored condition as found (empty if it could not be read as text).
    pub stored_condition: String,
    /// Why it could not be read.
    pub reason: String,
    /// Set once the matcher has quarantined it.
    pub quarantine: Option<Quarantine>,
    /// When the row was last saved, as read: quarantining checks it, so that a filter
    /// its owner saved meanwhile is not set aside for what it held before.
    pub(crate) updated_at: Option<i64>,
}

/// Filters as loaded: those that could be read, and those that could not, each in id
/// order. One bad row never hides the others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilterList {
    /// The filters that could be read.
    pub filters: Vec<Filter>,
    /// The rows that could not, with why.
    pub unreadable: Vec<UnreadableFilter>,
}

impl FilterList {
    /// How many rows were loaded, readable or not.
    pub fn len(&self) -> usize {
        self.filters.len() + self.unreadable.len()
    }

    /// Whether no row was loaded at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a user sets on a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterInput {
    /// Name (1–100 characters).
    pub name: String,
    /// The condition, already parsed (and so validated).
    pub condition: Condition,
    /// Where matches go: the user's own destinations.
    pub destination_ids: Vec<i64>,
    /// How to deliver.
    pub delivery: Delivery,
    /// Whether it is on.
    pub enabled: bool,
}

#[derive(FromRow)]
struct FilterRow {
    id: i64,
    user_id: i64,
    name: String,
    condition: String,
    delivery: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    quarantined_at: Option<i64>,
    quarantine_reason: Option<String>,
}

impl FilterRow {
    /// Adds the filter to the list: read, or as what could be read of it and why the rest
    /// could not.
    fn read_into(self, destination_ids: Vec<i64>, list: &mut FilterList) {
        let condition =
            Condition::from_json(&self.condition).map_err(|e| format!("condition: {e}"));
        let delivery = self.delivery.parse::<Delivery>().map_err(|e| e.to_string());
        let quarantine = Quarantine::from_columns(self.quarantined_at, self.quarantine_reason);
        match (condition, delivery) {
            (Ok(condition), Ok(delivery)) => list.filters.push(Filter {
                id: self.id,
                user_id: self.user_id,
                name: self.name,
                condition,
                delivery,
                enabled: self.enabled,
                destination_ids,
                created_at: self.created_at,
                updated_at: self.updated_at,
                quarantine,
            }),
            (condition, delivery) => list.unreadable.push(UnreadableFilter {
                id: self.id,
                user_id: self.user_id,
                name: self.name,
                enabled: self.enabled,
                destination_ids,
                reason: [condition.err(), delivery.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
                stored_condition: self.condition,
                quarantine,
                updated_at: Some(self.updated_at),
            }),
        }
    }
}

/// What can be read of a row whose columns do not all decode (SQLite keeps whatever was
/// written, so a hand-made row may hold bytes that are not text, or text where a number
/// belongs). Its id and owner always decode: they are the keys the query joined on.
fn salvage<'r, R>(row: &'r R, err: &sqlx::Error) -> Result<UnreadableFilter>
where
    R: sqlx::Row,
    &'r str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: i64 = row.try_get("id")?;
    let text = |column: &'r str| row.try_get::<String, _>(column).ok();
    Ok(UnreadableFilter {
        id,
        user_id: row.try_get("user_id")?,
        name: text("name").unwrap_or_else(|| format!("filter {id}")),
        enabled: row.try_get("enabled").unwrap_or(false),
        destination_ids: Vec::new(),
        stored_condition: text("condition").unwrap_or_default(),
        reason: format!("the stored row does not decode: {err}"),
        quarantine: row
            .try_get::<i64, _>("quarantined_at")
            .ok()
            .map(|at| Quarantine {
                at,
                reason: text("quarantine_reason").unwrap_or_default(),
            }),
        updated_at: row.try_get("updated_at").ok(),
    })
}

const COLUMNS: &str = "id, user_id, name, condition, delivery, enabled, created_at, updated_at, \
                       quarantined_at, quarantine_reason";

/// Checks what a user set and returns the condition's stored form. The condition must read
/// back from that form, or it would be saved and then fail every load after.
fn validate(input: &FilterInput) -> Result<String> {
    let len = input.name.trim().chars().count();
    if len == 0 || len > 100 {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "use 1 to 100 characters".into(),
        });
    }
    input
        .condition
        .to_checked_json()
        .map_err(|e| StoreError::Invalid {
            field: "condition",
            reason: e.message,
        })
}

impl Store {
    /// Creates a filter for a user.
    pub async fn create_filter(&self, user_id: i64, input: &FilterInput) -> Result<Filter> {
        self.save_filter(user_id, None, input).await
    }

    /// Replaces one of a user's filters.
    pub async fn update_filter(
        &self,
        user_id: i64,
        id: i64,
        input: &FilterInput,
    ) -> Result<Filter> {
        self.save_filter(user_id, Some(id), input).await
    }

    async fn save_filter(
        &self,
        user_id: i64,
        id: Option<i64>,
        input: &FilterInput,
    ) -> Result<Filter> {
        let condition = validate(input)?;
        if let Delivery::Digest(policy) = &input.delivery {
            Delivery::digest(policy.clone())?;
        }
        let delivery = input.delivery.stored()?;
        let owned = self.destinations(user_id).await?;
        if let Some(bad) = input
            .destination_ids
            .iter()
            .find(|d| !owned.iter().any(|o| o.id == **d))
        {
            return Err(StoreError::Invalid {
                field: "destinations",
                reason: format!("destination {bad} is not one of yours"),
            });
        }
        let now = now_ms();
        let insert = format!(
            "INSERT INTO filters (user_id, name, condition, delivery, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {COLUMNS}"
        );
        let update = format!(
            "UPDATE filters SET name = $1, condition = $2, delivery = $3, enabled = $4, updated_at = $5, \
             quarantined_at = NULL, quarantine_reason = NULL \
             WHERE id = $6 AND user_id = $7 RETURNING {COLUMNS}"
        );
        let (insert, update) = (self.sql(&insert), self.sql(&update));
        let unlink = self.sql("DELETE FROM filter_destinations WHERE filter_id = $1");
        let link =
            self.sql("INSERT INTO filter_destinations (filter_id, destination_id) VALUES ($1, $2)");
        let name = input.name.trim();
        // A destination listed twice is linked once (the link table's key would refuse it).
        let mut ids = input.destination_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let stored_delivery =
            self.sql("SELECT delivery FROM filters WHERE id = $1 AND user_id = $2");
        let mut redelivered = false;
        let row = with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let row = match id {
                None => {
                    sqlx::query_as::<_, FilterRow>(&insert)
                        .bind(user_id)
                        .bind(name)
                        .bind(&condition)
                        .bind(&delivery)
                        .bind(input.enabled)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?
                }
                Some(id) => {
                    // Whether its delivery changes (what its digest collected then goes).
                    let before: Option<String> = sqlx::query_scalar(&stored_delivery)
                        .bind(id)
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    redelivered = before.is_some_and(|b| b != delivery);
                    let row = sqlx::query_as::<_, FilterRow>(&update)
                        .bind(name)
                        .bind(&condition)
                        .bind(&delivery)
                        .bind(input.enabled)
                        .bind(now)
                        .bind(id)
                        .bind(user_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(&unlink).bind(id).execute(&mut *tx).await?;
                    row
                }
            };
            for destination in &ids {
                sqlx::query(&link)
                    .bind(row.id)
                    .bind(destination)
                    .execute(&mut *tx)
                    .await?;
            }
            if redelivered {
                // New settings: what its own digest collected so far goes out now.
                crate::pipeline::digests::release_collected!(
                    self,
                    tx,
                    "digest_filter = $1",
                    row.id,
                    now
                );
            }
            tx.commit([user_id]).await?;
            row
        });
        // Built from what was checked, not read back: nothing can fail after the commit.
        Ok(Filter {
            id: row.id,
            user_id: row.user_id,
            name: row.name,
            condition: input.condition.clone(),
            delivery: input.delivery.clone(),
            enabled: row.enabled,
            destination_ids: ids,
            created_at: row.created_at,
            updated_at: row.updated_at,
            quarantine: None,
        })
    }

    /// Sets when one of a user's filters' notifications go out, keeping the rest of it.
    /// Switching away from a digest sends what it collected within a minute.
    pub async fn set_filter_delivery(
        &self,
        user_id: i64,
        id: i64,
        delivery: Delivery,
    ) -> Result<Filter> {
        let filter = self.filter(user_id, id).await?;
        let input = FilterInput {
            name: filter.name,
            condition: filter.condition,
            destination_ids: filter.destination_ids,
            delivery,
            enabled: filter.enabled,
        };
        self.update_filter(user_id, id, &input).await
    }

    /// Deletes one of a user's filters.
    pub async fn delete_filter(&self, user_id: i64, id: i64) -> Result<()> {
        let sql = self.sql("DELETE FROM filters WHERE id = $1 AND user_id = $2");
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            if sqlx::query(&sql)
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 0
            {
                return Err(StoreError::NotFound);
            }
            // What its own digest collected goes out now, not never.
            crate::pipeline::digests::release_collected!(
                self,
                tx,
                "digest_filter = $1",
                id,
                now_ms()
            );
            tx.commit([user_id]).await?;
        });
        Ok(())
    }

    /// Turns off some of a user's filters (those that are not theirs are left alone), as
    /// an unsubscribe link does.
    pub async fn disable_filters(&self, user_id: i64, filter_ids: &[i64]) -> Result<()> {
        self.set_filters_enabled(user_id, filter_ids, false).await
    }

    /// Switches a user's filters back on (undoing an unsubscribe); ids that are not theirs
    /// change nothing.
    pub async fn enable_filters(&self, user_id: i64, filter_ids: &[i64]) -> Result<()> {
        self.set_filters_enabled(user_id, filter_ids, true).await
    }

    async fn set_filters_enabled(
        &self,
        user_id: i64,
        filter_ids: &[i64],
        enabled: bool,
    ) -> Result<()> {
        let disable = self
            .sql("UPDATE filters SET enabled = $4, updated_at = $1 WHERE id = $2 AND user_id = $3");
        let now = now_ms();
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            for id in filter_ids {
                sqlx::query(&disable)
                    .bind(now)
                    .bind(id)
                    .bind(user_id)
                    .bind(enabled)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit([user_id]).await?;
        });
        Ok(())
    }

    /// One of a user's filters; `NotFound` if it is someone else's, `UnreadableFilter` (with
    /// what could be read) if its row cannot be read.
    pub async fn filter(&self, user_id: i64, id: i64) -> Result<Filter> {
        let mut found = self.load_filters(Some(user_id), Some(id), false).await?;
        if let Some(unreadable) = found.unreadable.pop() {
            return Err(StoreError::UnreadableFilter(Box::new(unreadable)));
        }
        found.filters.pop().ok_or(StoreError::NotFound)
    }

    /// A user's filters, oldest first, readable or not.
    pub async fn filters(&self, user_id: i64) -> Result<FilterList> {
        self.load_filters(Some(user_id), None, false).await
    }

    /// Every enabled, unquarantined filter of every enabled user, or of one user: what the
    /// match index holds. Rows that cannot be read come back in `unreadable`, for the
    /// matcher to quarantine.
    pub async fn active_filters(&self, user_id: Option<i64>) -> Result<FilterList> {
        self.load_filters(user_id, None, true).await
    }

    async fn load_filters(
        &self,
        user_id: Option<i64>,
        id: Option<i64>,
        active: bool,
    ) -> Result<FilterList> {
        let mut clauses = vec!["TRUE".to_string()];
        if user_id.is_some() {
            clauses.push("f.user_id = $1".into());
        }
        // An id only narrows a user's own filters.
        let id = id.filter(|_| user_id.is_some());
        if id.is_some() {
            clauses.push("f.id = $2".into());
        }
        if active {
            clauses.push("f.enabled AND NOT u.disabled AND f.quarantined_at IS NULL".into());
        }
        // The owner's id is the user's, which the join guarantees to be a number.
        let filters_sql = format!(
            "SELECT f.id, u.id AS user_id, f.name, f.condition, f.delivery, f.enabled, f.created_at, \
             f.updated_at, f.quarantined_at, f.quarantine_reason \
             FROM filters f JOIN users u ON u.id = f.user_id WHERE {} ORDER BY f.id",
            clauses.join(" AND ")
        );
        let links_sql = format!(
            "SELECT fd.filter_id, fd.destination_id FROM filter_destinations fd \
             JOIN filters f ON f.id = fd.filter_id JOIN users u ON u.id = f.user_id WHERE {} ORDER BY fd.destination_id",
            clauses.join(" AND ")
        );
        let (filters_sql, links_sql) = (self.sql(&filters_sql), self.sql(&links_sql));
        let (rows, links) = with_pool!(self, |pool| {
            let mut q = sqlx::query(&filters_sql);
            let mut l = sqlx::query_as::<_, (i64, i64)>(&links_sql);
            if let Some(user_id) = user_id {
                q = q.bind(user_id);
                l = l.bind(user_id);
            }
            if let Some(id) = id {
                q = q.bind(id);
                l = l.bind(id);
            }
            // Each row is decoded on its own, so that one that does not decode is reported
            // instead of failing the whole load.
            let rows = q
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| match FilterRow::from_row(row) {
                    Ok(row) => Ok(Ok(row)),
                    Err(err) => salvage(row, &err).map(Err),
                })
                .collect::<Result<Vec<_>>>()?;
            (rows, l.fetch_all(pool).await?)
        });
        let mut by_filter: std::collections::HashMap<i64, Vec<i64>> =
            std::collections::HashMap::new();
        for (filter_id, destination_id) in links {
            by_filter.entry(filter_id).or_default().push(destination_id);
        }
        let mut list = FilterList::default();
        for row in rows {
            match row {
                Ok(row) => {
                    let ids = by_filter.remove(&row.id).unwrap_or_default();
                    row.read_into(ids, &mut list);
                }
                Err(mut salvaged) => {
                    salvaged.destination_ids = by_filter.remove(&salvaged.id).unwrap_or_default();
                    list.unreadable.push(salvaged);
                }
            }
        }
        Ok(list)
    }
}
