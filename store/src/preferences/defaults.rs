//! Default filters: templates an admin writes once (`packages has $my_packages`, `usernames
//! has $me`), copied into every new account's filters in the transaction that makes the
//! account, and offered to the accounts that existed before. The variables are left as
//! written: the matcher fills in each owner's values, as for any filter.
//!
//! `default_filter_offers` records, per user and template, whether the user got it
//! (`added`, at sign-up or later) or turned it down (`dismissed`); a template with no row
//! for a user is offered to them. A filter made from a template names it in
//! `filters.default_filter`: while such a filter has no destination, the first destination
//! its owner adds is linked to it (a new account has none when its defaults are copied).

use sqlx::FromRow;
use tidings_rules::Condition;

use crate::db::with_pool;
use crate::pipeline::changes::Edit;
use crate::preferences::filters::Delivery;
use crate::{now_ms, Result, Store, StoreError};

/// A default filter: a template for users' filters.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DefaultFilter {
    /// Id.
    pub id: i64,
    /// Name, unique among templates; the name of the filters made from it.
    pub name: String,
    /// The condition, variables and all.
    pub condition: Condition,
    /// How the filters made from it deliver.
    pub delivery: Delivery,
    /// Only enabled templates are copied to new accounts and offered to others.
    pub enabled: bool,
    /// Created.
    pub created_at: i64,
    /// Last changed.
    pub updated_at: i64,
}

/// What an admin sets on a default filter.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultFilterInput {
    /// Name (1–100 characters).
    pub name: String,
    /// The condition, already parsed.
    pub condition: Condition,
    /// How the filters made from it deliver.
    pub delivery: Delivery,
    /// Whether new accounts get it and others are offered it.
    pub enabled: bool,
}

/// How many users a condition was tried for and what each would have got.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    /// Archived messages looked at (the newest, within the window, at most the scan limit).
    pub scanned: usize,
    /// Whether the scan limit cut the window short.
    pub truncated: bool,
    /// Each user asked about and how many of those messages their copy would have matched.
    pub users: Vec<(String, usize)>,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    name: String,
    condition: String,
    delivery: String,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<Row> for DefaultFilter {
    type Error = StoreError;
    fn try_from(row: Row) -> Result<DefaultFilter> {
        Ok(DefaultFilter {
            condition: Condition::from_json(&row.condition)
                .map_err(|e| StoreError::corrupt("default filter condition", e))?,
            delivery: row.delivery.parse()?,
            id: row.id,
            name: row.name,
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

const COLUMNS: &str = "id, name, condition, delivery, enabled, created_at, updated_at";

/// Copies every enabled default filter into the new account `$user_id`'s filters inside
/// transaction `$tx`, recording each as added; evaluates to how many. When any, the caller
/// commits with the user's id, so the matcher learns them.
macro_rules! copy_defaults {
    ($store:expr, $tx:ident, $user_id:expr, $now:expr) => {{
        let copy = $store.sql(
            "INSERT INTO filters (user_id, name, condition, delivery, enabled, created_at, updated_at, default_filter) \
             SELECT $1, t.name, t.condition, t.delivery, TRUE, $2, $2, t.id FROM default_filters t WHERE t.enabled",
        );
        let record = $store.sql(
            "INSERT INTO default_filter_offers (user_id, default_filter_id, outcome, at) \
             SELECT $1, t.id, 'added', $2 FROM default_filters t WHERE t.enabled",
        );
        let copied = sqlx::query(&copy)
            .bind($user_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        sqlx::query(&record)
            .bind($user_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        copied
    }};
}
pub(crate) use copy_defaults;

/// Links destination `$destination` to `$user_id`'s filters made from a default filter
/// that have no destination yet, inside transaction `$tx`.
macro_rules! link_default_filters {
    ($store:expr, $tx:ident, $user_id:expr, $destination:expr) => {{
        let link = $store.sql(
            "INSERT INTO filter_destinations (filter_id, destination_id) \
             SELECT f.id, $1 FROM filters f WHERE f.user_id = $2 AND f.default_filter IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM filter_destinations fd WHERE fd.filter_id = f.id)",
        );
        sqlx::query(&link)
            .bind($destination)
            .bind($user_id)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(crate) use link_default_filters;

fn validate(input: &DefaultFilterInput) -> Result<(String, String)> {
    let len = input.name.trim().chars().count();
    if len == 0 || len > 100 {
        return Err(StoreError::Invalid {
            field: "name",
            reason: "use 1 to 100 characters".into(),
        });
    }
    if let Delivery::Digest(policy) = &input.delivery {
        Delivery::digest(policy.clone())?;
    }
    let condition = input
        .condition
        .to_checked_json()
        .map_err(|e| StoreError::Invalid {
            field: "condition",
            reason: e.message,
        })?;
    Ok((condition, input.delivery.stored()?))
}

/// `name`, or `name (2)`, `name (3)`, … whichever is not among `taken`.
fn free_name(name: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == name) {
        return name.to_string();
    }
    (2..)
        .map(|n| format!("{name} ({n})"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or_else(|| name.to_string())
}

impl Store {
    /// Every default filter, by name.
    pub async fn default_filters(&self) -> Result<Vec<DefaultFilter>> {
        let sql = format!("SELECT {COLUMNS} FROM default_filters ORDER BY name");
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// One default filter.
    pub async fn default_filter(&self, id: i64) -> Result<DefaultFilter> {
        let sql = self
            .sql(&format!(
                "SELECT {COLUMNS} FROM default_filters WHERE id = $1"
            ))
            .into_owned();
        let row = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Creates a default filter. New accounts get it from now on; existing ones are
    /// offered it on their dashboard.
    pub async fn create_default_filter(&self, input: &DefaultFilterInput) -> Result<DefaultFilter> {
        let (condition, delivery) = validate(input)?;
        let sql = self.sql(&format!(
            "INSERT INTO default_filters (name, condition, delivery, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
        )).into_owned();
        let row = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .bind(input.name.trim())
            .bind(&condition)
            .bind(&delivery)
            .bind(input.enabled)
            .bind(now_ms())
            .fetch_one(pool)
            .await?);
        row.try_into()
    }

    /// Replaces a default filter. Filters already made from it are their owners' and stay
    /// as they are.
    pub async fn update_default_filter(
        &self,
        id: i64,
        input: &DefaultFilterInput,
    ) -> Result<DefaultFilter> {
        let (condition, delivery) = validate(input)?;
        let sql = self.sql(&format!(
            "UPDATE default_filters SET name = $1, condition = $2, delivery = $3, enabled = $4, updated_at = $5 \
             WHERE id = $6 RETURNING {COLUMNS}"
        )).into_owned();
        let row = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .bind(input.name.trim())
            .bind(&condition)
            .bind(&delivery)
            .bind(input.enabled)
            .bind(now_ms())
            .bind(id)
            .fetch_optional(pool)
            .await?);
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Deletes a default filter (and the record of who was offered it). The filters made
    /// from it stay their owners'.
    pub async fn delete_default_filter(&self, id: i64) -> Result<()> {
        let forget = self.sql("DELETE FROM default_filter_offers WHERE default_filter_id = $1");
        let sql = self.sql("DELETE FROM default_filters WHERE id = $1");
        let deleted = with_pool!(self, |pool| {
            let mut tx = crate::db::begin_write(pool).await?;
            sqlx::query(&forget).bind(id).execute(&mut *tx).await?;
            let n = sqlx::query(&sql)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// The enabled default filters a user has neither added nor dismissed.
    pub async fn offered_default_filters(&self, user_id: i64) -> Result<Vec<DefaultFilter>> {
        let sql = self.sql(&format!(
            "SELECT {COLUMNS} FROM default_filters t WHERE t.enabled AND NOT EXISTS \
             (SELECT 1 FROM default_filter_offers o WHERE o.user_id = $1 AND o.default_filter_id = t.id) \
             ORDER BY t.name"
        )).into_owned();
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, Row>(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Adds to a user's filters the offered default filters among `ids` (every offered one
    /// when `ids` is empty), each sending to all of the user's destinations; a name the
    /// user already has gets ` (2)`. Returns how many were added.
    pub async fn add_default_filters(&self, user_id: i64, ids: &[i64]) -> Result<usize> {
        let offered: Vec<DefaultFilter> = self
            .offered_default_filters(user_id)
            .await?
            .into_iter()
            .filter(|t| ids.is_empty() || ids.contains(&t.id))
            .collect();
        if offered.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let names = self.sql("SELECT name FROM filters WHERE user_id = $1");
        let insert = self.sql(
            "INSERT INTO filters (user_id, name, condition, delivery, enabled, created_at, updated_at, default_filter) \
             VALUES ($1, $2, $3, $4, TRUE, $5, $5, $6) RETURNING id",
        );
        let link = self.sql(
            "INSERT INTO filter_destinations (filter_id, destination_id) \
             SELECT $1, d.id FROM destinations d WHERE d.user_id = $2",
        );
        let record = self.sql(
            "INSERT INTO default_filter_offers (user_id, default_filter_id, outcome, at) \
             VALUES ($1, $2, 'added', $3) ON CONFLICT (user_id, default_filter_id) DO NOTHING",
        );
        let mut rows = Vec::with_capacity(offered.len());
        for t in &offered {
            let condition = t
                .condition
                .to_checked_json()
                .map_err(|e| StoreError::corrupt("default filter condition", e.message))?;
            rows.push((t, condition, t.delivery.stored()?));
        }
        with_pool!(self, |pool| {
            let mut tx = Edit::begin(self, pool).await?;
            let mut taken: Vec<String> = sqlx::query_scalar(&names)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
            for (t, condition, delivery) in &rows {
                let name = free_name(&t.name, &taken);
                let id: i64 = sqlx::query_scalar(&insert)
                    .bind(user_id)
                    .bind(&name)
                    .bind(condition)
                    .bind(delivery)
                    .bind(now)
                    .bind(t.id)
                    .fetch_one(&mut *tx)
                    .await?;
                taken.push(name);
                sqlx::query(&link)
                    .bind(id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&record)
                    .bind(user_id)
                    .bind(t.id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit([user_id]).await?;
        });
        Ok(rows.len())
    }

    /// Stops offering a user the default filters among `ids` (every offered one when
    /// `ids` is empty). Returns how many.
    pub async fn dismiss_default_filters(&self, user_id: i64, ids: &[i64]) -> Result<usize> {
        let offered: Vec<i64> = self
            .offered_default_filters(user_id)
            .await?
            .into_iter()
            .map(|t| t.id)
            .filter(|id| ids.is_empty() || ids.contains(id))
            .collect();
        let record = self.sql(
            "INSERT INTO default_filter_offers (user_id, default_filter_id, outcome, at) \
             VALUES ($1, $2, 'dismissed', $3) ON CONFLICT (user_id, default_filter_id) DO NOTHING",
        );
        let now = now_ms();
        with_pool!(self, |pool| {
            let mut tx = crate::db::begin_write(pool).await?;
            for id in &offered {
                sqlx::query(&record)
                    .bind(user_id)
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(offered.len())
    }

    /// What `condition` would have matched for each of `usernames` among the archived
    /// messages received since `since` (the newest `scan` of them at most): each user's
    /// own variables filled in, as the matcher would (a bus username without an account
    /// has its packages and groups, and no follows).
    pub async fn preview_condition(
        &self,
        condition: &Condition,
        usernames: &[String],
        since: i64,
        scan: i64,
    ) -> Result<Preview> {
        let page = self.archive_page(i64::MAX, scan).await?;
        let truncated = page.rows as i64 >= scan
            && page.messages.last().is_some_and(|m| m.received_at >= since);
        let messages: Vec<_> = page
            .messages
            .iter()
            .filter(|m| m.received_at >= since)
            .collect();
        let mut users = Vec::with_capacity(usernames.len());
        for username in usernames {
            let vars = match self.user_by_name(username).await? {
                Some(user) => self.variables(user.id).await?,
                None => self.variables_for_username(username).await?,
            };
            let n = messages
                .iter()
                .filter(|m| condition.matches(&m.message, &m.metadata, &vars))
                .count();
            users.push((username.clone(), n));
        }
        Ok(Preview {
            scanned: messages.len(),
            truncated,
            users,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_names_count_up() {
        let taken = vec!["mine".to_string(), "mine (2)".to_string()];
        assert_eq!(free_name("other", &taken), "other");
        assert_eq!(free_name("mine", &taken), "mine (3)");
    }
}
