//! Filters: a user's named rules. The condition is stored in its canonical JSON form and
//! validated (parsed) before it is stored; destinations must be the same user's.

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;
use tidings_rules::Condition;

use crate::db::with_pool;
use crate::{now_ms, Result, Store, StoreError};

/// How a filter's notifications are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// As soon as the message is matched.
    #[default]
    Instant,
}

impl Delivery {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Instant => "instant",
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Delivery {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Delivery> {
        match s {
            "instant" => Ok(Delivery::Instant),
            other => Err(StoreError::Invalid {
                field: "delivery",
                reason: format!("unknown delivery {other:?}; expected instant"),
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
}

impl FilterRow {
    fn into_filter(self, destination_ids: Vec<i64>) -> Result<Filter> {
        Ok(Filter {
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            condition: Condition::from_json(&self.condition)
                .map_err(|e| StoreError::corrupt("filter condition", e))?,
            delivery: self.delivery.parse()?,
            enabled: self.enabled,
            destination_ids,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const COLUMNS: &str = "id, user_id, name, condition, delivery, enabled, created_at, updated_at";

fn validate(input: &FilterInput) -> Result<()> {
    let len = input.name.trim().chars().count();
    if len == 0 || len > 100 {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "use 1 to 100 characters".into(),
        });
    }
    Ok(())
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
        validate(input)?;
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
            "UPDATE filters SET name = $1, condition = $2, delivery = $3, enabled = $4, updated_at = $5 \
             WHERE id = $6 AND user_id = $7 RETURNING {COLUMNS}"
        );
        let (insert, update) = (self.sql(&insert), self.sql(&update));
        let unlink = self.sql("DELETE FROM filter_destinations WHERE filter_id = $1");
        let link =
            self.sql("INSERT INTO filter_destinations (filter_id, destination_id) VALUES ($1, $2)");
        let change = self.sql("INSERT INTO changes (user_id, at) VALUES ($1, $2)");
        let name = input.name.trim();
        let condition = input.condition.to_json();
        // A destination listed twice is linked once (the link table's key would refuse it).
        let mut ids = input.destination_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let row = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let row = match id {
                None => {
                    sqlx::query_as::<_, FilterRow>(&insert)
                        .bind(user_id)
                        .bind(name)
                        .bind(&condition)
                        .bind(input.delivery.as_str())
                        .bind(input.enabled)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?
                }
                Some(id) => {
                    let row = sqlx::query_as::<_, FilterRow>(&update)
                        .bind(name)
                        .bind(&condition)
                        .bind(input.delivery.as_str())
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
            sqlx::query(&change)
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        row.into_filter(ids)
    }

    /// Deletes one of a user's filters.
    pub async fn delete_filter(&self, user_id: i64, id: i64) -> Result<()> {
        let sql = self.sql("DELETE FROM filters WHERE id = $1 AND user_id = $2");
        let change = self.sql("INSERT INTO changes (user_id, at) VALUES ($1, $2)");
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
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
            sqlx::query(&change)
                .bind(user_id)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// One of a user's filters; `NotFound` if it is someone else's.
    pub async fn filter(&self, user_id: i64, id: i64) -> Result<Filter> {
        let mut found = self.load_filters(Some(user_id), Some(id), false).await?;
        found.pop().ok_or(StoreError::NotFound)
    }

    /// A user's filters, oldest first.
    pub async fn filters(&self, user_id: i64) -> Result<Vec<Filter>> {
        self.load_filters(Some(user_id), None, false).await
    }

    /// Every enabled filter of every enabled user, or of one user: what the match index holds.
    pub async fn active_filters(&self, user_id: Option<i64>) -> Result<Vec<Filter>> {
        self.load_filters(user_id, None, true).await
    }

    async fn load_filters(
        &self,
        user_id: Option<i64>,
        id: Option<i64>,
        active: bool,
    ) -> Result<Vec<Filter>> {
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
            clauses.push("f.enabled AND NOT u.disabled".into());
        }
        let filters_sql = format!(
            "SELECT f.id, f.user_id, f.name, f.condition, f.delivery, f.enabled, f.created_at, f.updated_at \
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
            let mut q = sqlx::query_as::<_, FilterRow>(&filters_sql);
            let mut l = sqlx::query_as::<_, (i64, i64)>(&links_sql);
            if let Some(user_id) = user_id {
                q = q.bind(user_id);
                l = l.bind(user_id);
            }
            if let Some(id) = id {
                q = q.bind(id);
                l = l.bind(id);
            }
            (q.fetch_all(pool).await?, l.fetch_all(pool).await?)
        });
        let mut by_filter: std::collections::HashMap<i64, Vec<i64>> =
            std::collections::HashMap::new();
        for (filter_id, destination_id) in links {
            by_filter.entry(filter_id).or_default().push(destination_id);
        }
        rows.into_iter()
            .map(|row| {
                let ids = by_filter.remove(&row.id).unwrap_or_default();
                row.into_filter(ids)
            })
            .collect()
    }
}
