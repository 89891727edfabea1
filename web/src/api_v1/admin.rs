//! The admin pages' calls, under `/api/v1/admin`: default filters (with their preview
//! across users), users (search, one user read-only, disable, enable), dead letters (retry,
//! discard), the charts' numbers, the catalog report and the live bus. Each takes an
//! [`AdminCaller`]: a token of scope `admin` whose owner is an admin now.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_store::{DefaultFilter, DefaultFilterInput, DeliveryPolicy, HOUR_MS};

use super::{
    bad, condition_of, created, delivery_of, done, filter_json, ok, store, AdminCaller, Body, Id,
    Reply,
};
use crate::admin::defaults::{preview_users, PREVIEW_DAYS, PREVIEW_SCAN};
use crate::api::ApiError;
use crate::{routes, AppState};

/// Users per page of a search.
const USERS_PAGE: i64 = 50;
/// The most dead notifications one call lists.
const DEAD_MAX: i64 = 1_000;
/// The longest span the charts' numbers cover, in hours.
const CHART_HOURS_MAX: i64 = 24 * 14;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            routes::API_ADMIN_DEFAULTS,
            get(defaults).post(create_default),
        )
        .route(
            routes::API_ADMIN_DEFAULT,
            get(default).put(update_default).delete(delete_default),
        )
        .route(routes::API_ADMIN_DEFAULTS_PREVIEW, post(preview_default))
        .route(routes::API_ADMIN_USERS, get(users))
        .route(routes::API_ADMIN_USER, get(user))
        .route(routes::API_ADMIN_USER_DISABLE, post(disable))
        .route(routes::API_ADMIN_USER_ENABLE, post(enable))
        .route(routes::API_ADMIN_DEAD, get(dead))
        .route(routes::API_ADMIN_DEAD_RETRY, post(retry))
        .route(routes::API_ADMIN_DEAD_DISCARD, post(discard))
        .route(routes::API_ADMIN_CHARTS, get(charts))
        .route(routes::API_ADMIN_CATALOG, get(catalog))
        .route(routes::API_ADMIN_LIVE, get(live))
}

/// A default filter as the API shows it (also to the users it is offered to).
pub(super) fn default_json(t: &DefaultFilter) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "condition": t.condition.to_string(),
        "delivery": t.delivery.describe(),
        "digest": match &t.delivery {
            tidings_store::Delivery::Digest(policy) => json!(policy),
            tidings_store::Delivery::Instant => Value::Null,
        },
        "enabled": t.enabled,
        "created_at": t.created_at,
    })
}

async fn defaults(State(state): State<AppState>, AdminCaller(_admin): AdminCaller) -> Reply {
    let list = state.store.default_filters().await.map_err(store)?;
    ok(json!({"defaults": list.iter().map(default_json).collect::<Vec<_>>()}))
}

async fn default(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Id(id): Id,
) -> Reply {
    ok(default_json(
        &state.store.default_filter(id).await.map_err(store)?,
    ))
}

/// A default filter as a script sends it: a template (`$me`, `$my_packages`, …).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultBody {
    name: String,
    condition: String,
    /// A digest of its own; none: at once.
    delivery: Option<DeliveryPolicy>,
    #[serde(default = "super::yes")]
    enabled: bool,
}

fn default_input(body: DefaultBody) -> Result<DefaultFilterInput, ApiError> {
    Ok(DefaultFilterInput {
        name: body.name,
        condition: condition_of(&body.condition)?,
        delivery: delivery_of(body.delivery)?,
        enabled: body.enabled,
    })
}

/// A saved default filter and what looks wrong in it (unknown apps, topics, ...).
fn with_warnings(state: &AppState, t: &DefaultFilter) -> Value {
    let mut shown = default_json(t);
    shown["warnings"] = json!(t.condition.warnings(&state.apps, None));
    shown
}

async fn create_default(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Body(body): Body<DefaultBody>,
) -> Reply {
    let saved = state
        .store
        .create_default_filter(&default_input(body)?)
        .await
        .map_err(store)?;
    tracing::info!(admin = %admin.username, default_filter = %saved.name, "default filter saved (API)");
    created(with_warnings(&state, &saved))
}

async fn update_default(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Id(id): Id,
    Body(body): Body<DefaultBody>,
) -> Reply {
    let saved = state
        .store
        .update_default_filter(id, &default_input(body)?)
        .await
        .map_err(store)?;
    tracing::info!(admin = %admin.username, default_filter = %saved.name, "default filter saved (API)");
    ok(with_warnings(&state, &saved))
}

async fn delete_default(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Id(id): Id,
) -> Reply {
    state.store.delete_default_filter(id).await.map_err(store)?;
    tracing::info!(admin = %admin.username, default_filter = id, "default filter deleted (API)");
    done()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    condition: String,
    /// Whose variables to try; none: the first few users by name.
    #[serde(default)]
    users: Vec<String>,
}

/// What a template would have matched in the last days for each of some users.
async fn preview_default(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Body(body): Body<PreviewBody>,
) -> Reply {
    let condition = condition_of(&body.condition)?;
    let users = preview_users(&state, &body.users.join(" ")).await?;
    let since = tidings_store::now_ms() - PREVIEW_DAYS * 86_400_000;
    let found = state
        .store
        .preview_condition(&condition, &users, since, PREVIEW_SCAN)
        .await
        .map_err(store)?;
    ok(json!({
        "days": PREVIEW_DAYS,
        "scanned": found.scanned,
        "truncated": found.truncated,
        "users": found.users.iter().map(|(name, n)| json!({"username": name, "matches": n})).collect::<Vec<_>>(),
        "warnings": condition.warnings(&state.apps, None),
    }))
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
    page: Option<i64>,
}

async fn users(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(search): Query<Search>,
) -> Reply {
    let page = search.page.unwrap_or(1).max(1);
    let (found, total) = state
        .store
        .search_users(
            search.q.trim(),
            (page - 1).saturating_mul(USERS_PAGE),
            USERS_PAGE,
        )
        .await
        .map_err(store)?;
    ok(json!({"users": found, "total": total, "page": page, "per_page": USERS_PAGE}))
}

/// One user as the admin's user page shows it: the account, destinations and filters.
async fn user_json(state: &AppState, id: i64) -> Reply {
    let user = state.store.user(id).await.map_err(store)?;
    let destinations = state.store.destinations(id).await.map_err(store)?;
    let filters = state.store.filters(id).await.map_err(store)?;
    ok(json!({
        "user": user,
        "destinations": destinations,
        "filters": filters.filters.iter().map(filter_json).collect::<Vec<_>>(),
        "unreadable": filters.unreadable,
    }))
}

async fn user(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Id(id): Id,
) -> Reply {
    user_json(&state, id).await
}

async fn set_disabled(
    state: AppState,
    admin: tidings_store::User,
    id: i64,
    disabled: bool,
) -> Reply {
    let user = state.store.user(id).await.map_err(store)?;
    if disabled && user.id == admin.id {
        return Err(bad(
            "you cannot disable your own account: ask another admin, or use `tidings user disable`",
        ));
    }
    state
        .store
        .set_user_disabled(&user.username, disabled)
        .await
        .map_err(store)?;
    tracing::info!(admin = %admin.username, username = %user.username, disabled, "account disabled or enabled (API)");
    user_json(&state, id).await
}

async fn disable(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Id(id): Id,
) -> Reply {
    set_disabled(state, admin, id, true).await
}

async fn enable(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Id(id): Id,
) -> Reply {
    set_disabled(state, admin, id, false).await
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<i64>,
}

async fn dead(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(limit): Query<Limit>,
) -> Reply {
    let limit = limit.limit.unwrap_or(100).clamp(1, DEAD_MAX);
    let list = state.store.dead_notifications(limit).await.map_err(store)?;
    let total = state.store.dead_count().await.map_err(store)?;
    ok(json!({"dead": list, "total": total}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    ids: Vec<i64>,
}

async fn retry(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Body(body): Body<Ids>,
) -> Reply {
    let n = state.store.retry_dead(&body.ids).await.map_err(store)?;
    state.store.signal(tidings_store::Wake::Sender);
    tracing::info!(admin = %admin.username, count = n, "dead notifications queued again (API)");
    ok(json!({ "queued": n }))
}

async fn discard(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    Body(body): Body<Ids>,
) -> Reply {
    let n = state.store.discard_dead(&body.ids).await.map_err(store)?;
    tracing::info!(admin = %admin.username, count = n, "dead notifications discarded (API)");
    ok(json!({ "discarded": n }))
}

#[derive(Deserialize)]
struct Hours {
    hours: Option<i64>,
}

/// The numbers the charts draw: per hour (`hour` is the hour's start in ms since the
/// epoch), messages by app, notifications by channel, delivery latency p50 and p99.
async fn charts(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(hours): Query<Hours>,
) -> Reply {
    let hours = hours.hours.unwrap_or(48);
    if !(1..=CHART_HOURS_MAX).contains(&hours) {
        return Err(bad(format!(
            "hours: {hours} is not a whole number from 1 to {CHART_HOURS_MAX}"
        )));
    }
    let since = (tidings_store::now_ms().div_euclid(HOUR_MS) - (hours - 1)) * HOUR_MS;
    ok(json!({
        "since": since,
        "messages_per_hour": state.store.messages_per_hour(since).await.map_err(store)?,
        "notifications_per_hour": state.store.notifications_per_hour(since).await.map_err(store)?,
        "delivery_latency": state.store.delivery_latency(since).await.map_err(store)?,
    }))
}

async fn catalog(State(state): State<AppState>, AdminCaller(_admin): AdminCaller) -> Reply {
    let report = &state.catalog;
    ok(json!({
        "files": report.files,
        "entries": report.entries,
        "skipped": report.skipped.iter().map(|s| json!({
            "file": s.file,
            "line": s.line,
            "column": s.column,
            "reason": s.reason,
        })).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
struct Topic {
    #[serde(default)]
    topic: String,
}

/// Server-sent events: each message archived from now on whose topic matches the glob.
async fn live(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    Query(topic): Query<Topic>,
) -> Reply {
    Ok(crate::admin::live::stream(&state, &topic.topic)?)
}
