//! The people's JSON API, `/api/v1`: what the pages do, for scripts, with a personal
//! access token (`Authorization: Bearer tdp_…`, made on the account page) of scope `read`
//! (look) or `write` (also change). Every call sees and changes only the token owner's
//! data: someone else's filter or destination is 404, as if it did not exist. A missing,
//! unknown or revoked token is 401; a `read` token that tries to change something is 403.
//! The document of it all is `/api/v1/openapi.json` ([`openapi`]), and a test checks that
//! every route here is in it.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_rules::Condition;
use tidings_store::{
    ChannelKind, Delivery, Filter, FilterInput, NewDestination, PersonalScope, User,
};

use crate::api::{bearer, ApiError};
use crate::{routes, AppState, Error};

/// The most notifications one call lists.
const NOTIFICATIONS_MAX: i64 = 500;

/// The `/api/v1` routes for people (publishing and ownership imports are in `api` and
/// `ownership`).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::API_OPENAPI, get(document))
        .route(routes::API_ME, get(me))
        .route(routes::API_FILTERS, get(filters).post(create_filter))
        .route(
            routes::API_FILTER,
            get(filter).put(update_filter).delete(delete_filter),
        )
        .route(
            routes::API_DESTINATIONS,
            get(destinations).post(add_destination),
        )
        .route(
            routes::API_DESTINATION,
            get(destination).delete(delete_destination),
        )
        .route(routes::API_NOTIFICATIONS, get(notifications))
        .route(routes::API_PAUSE, get(pause).put(set_pause).delete(resume))
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let status = err.status();
        let message = match err {
            Error::BadRequest(m) | Error::Conflict(m) | Error::TooMany(m) | Error::Expired(m) => m,
            Error::NotFound => "not found".into(),
            Error::Busy => "busy; try again later".into(),
            other => {
                tracing::error!(error = %other, "API request failed");
                "internal error".into()
            }
        };
        ApiError(status, message)
    }
}

/// A store failure as the API answers it.
fn store(err: tidings_store::StoreError) -> ApiError {
    if err.is_unavailable() {
        return ApiError::from(err);
    }
    ApiError::from(Error::from(err))
}

/// The token's owner, if the token may do what `needed` names.
async fn owner(
    state: &AppState,
    headers: &HeaderMap,
    needed: PersonalScope,
) -> Result<User, ApiError> {
    let unauthorized = || {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid personal access token is required (Authorization: Bearer tdp_…)".into(),
        )
    };
    let presented = bearer(headers).ok_or_else(unauthorized)?;
    let (token, user) = state
        .store
        .personal_token(presented)
        .await
        .map_err(store)?
        .ok_or_else(unauthorized)?;
    if !token.scope.allows(needed) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has scope {}; this needs scope {needed}",
                token.name, token.scope
            ),
        ));
    }
    Ok(user)
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let vars = state
        .store
        .variables_for_username(&user.username)
        .await
        .map_err(store)?;
    let paused = state.store.paused_until(user.id).await.map_err(store)?;
    Ok(Json(json!({
        "username": user.username,
        "is_admin": user.is_admin,
        "my_groups": vars.my_groups,
        "my_packages": vars.my_packages,
        "followed_users": vars.followed_users,
        "followed_packages": vars.followed_packages,
        "paused_until": paused,
    }))
    .into_response())
}

fn filter_json(filter: &Filter) -> Value {
    json!({
        "id": filter.id,
        "name": filter.name,
        "condition": filter.condition.to_string(),
        "enabled": filter.enabled,
        "destination_ids": filter.destination_ids,
        "delivery": filter.delivery.describe(),
        "quarantined": filter.quarantine.as_ref().map(|q| q.reason.clone()),
        "created_at": filter.created_at,
        "updated_at": filter.updated_at,
    })
}

async fn filters(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let list = state.store.filters(user.id).await.map_err(store)?;
    Ok(Json(json!({
        "filters": list.filters.iter().map(filter_json).collect::<Vec<_>>(),
        "unreadable": list.unreadable.iter().map(|u| json!({"id": u.id, "name": u.name, "reason": u.reason})).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let found = state.store.filter(user.id, id).await.map_err(store)?;
    Ok(Json(filter_json(&found)).into_response())
}

/// A filter as a script sends it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    name: String,
    condition: String,
    /// Where its notifications go (the owner's destinations); default: every one.
    destination_ids: Option<Vec<i64>>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// The body read as JSON, or a 400 that says where it is wrong.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not what this call takes: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

async fn filter_input(
    state: &AppState,
    user: &User,
    body: &[u8],
    delivery: Delivery,
) -> Result<FilterInput, ApiError> {
    let body: FilterBody = parse(body)?;
    let condition = Condition::parse(&body.condition).map_err(|err| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "condition: an error at line {}, column {}: {}",
                err.line, err.column, err.message
            ),
        )
    })?;
    let destination_ids = match body.destination_ids {
        Some(ids) => ids,
        None => state
            .store
            .destinations(user.id)
            .await
            .map_err(store)?
            .iter()
            .map(|d| d.id)
            .collect(),
    };
    Ok(FilterInput {
        name: body.name,
        condition,
        destination_ids,
        delivery,
        enabled: body.enabled,
    })
}

async fn create_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    let input = filter_input(&state, &user, &body, Delivery::Instant).await?;
    let made = state
        .store
        .create_filter(user.id, &input)
        .await
        .map_err(store)?;
    Ok((StatusCode::CREATED, Json(filter_json(&made))).into_response())
}

async fn update_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    // Its delivery stays as it is: set on the page or with `tidings filter delivery`.
    let current = state.store.filter(user.id, id).await.map_err(store)?;
    let input = filter_input(&state, &user, &body, current.delivery).await?;
    let saved = state
        .store
        .update_filter(user.id, id, &input)
        .await
        .map_err(store)?;
    Ok(Json(filter_json(&saved)).into_response())
}

async fn delete_filter(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    state
        .store
        .delete_filter(user.id, id)
        .await
        .map_err(store)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn destinations(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let list = state.store.destinations(user.id).await.map_err(store)?;
    Ok(Json(json!({ "destinations": list })).into_response())
}

async fn destination(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let found = state.store.destination(user.id, id).await.map_err(store)?;
    Ok(Json(found).into_response())
}

/// A destination to add: its channel and address. It is confirmed as on the page (a link
/// or a code sent to it) before anything else is sent to it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationBody {
    channel: ChannelKind,
    address: String,
}

async fn add_destination(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    let body: DestinationBody = parse(&body)?;
    if !state.config.channels.contains(&body.channel) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "channel: {} destinations are turned off on this site",
                body.channel
            ),
        ));
    }
    let added = state
        .store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: body.channel,
            address: &body.address,
            confirmed: false,
        })
        .await
        .map_err(store)?;
    Ok((StatusCode::CREATED, Json(added)).into_response())
}

async fn delete_destination(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    state
        .store
        .delete_destination(user.id, id)
        .await
        .map_err(store)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct Listing {
    limit: Option<i64>,
}

async fn notifications(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(listing): Query<Listing>,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let limit = listing.limit.unwrap_or(100).clamp(1, NOTIFICATIONS_MAX);
    let list = state
        .store
        .notifications(user.id, limit)
        .await
        .map_err(store)?;
    Ok(Json(json!({ "notifications": list })).into_response())
}

async fn pause(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Read).await?;
    let until = state.store.paused_until(user.id).await.map_err(store)?;
    Ok(Json(json!({ "paused_until": until })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    days: i64,
}

async fn set_pause(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    let body: PauseBody = parse(&body)?;
    let max = crate::settings::PAUSE_DAYS_MAX;
    if !(1..=max).contains(&body.days) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("days: {} is not a whole number from 1 to {max}", body.days),
        ));
    }
    let until = tidings_store::now_ms().saturating_add(body.days.saturating_mul(86_400_000));
    let mute = state
        .store
        .pause_everything(user.id, until)
        .await
        .map_err(store)?;
    Ok(Json(json!({ "paused_until": mute.until })).into_response())
}

async fn resume(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = owner(&state, &headers, PersonalScope::Write).await?;
    state
        .store
        .resume_everything(user.id)
        .await
        .map_err(store)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn document() -> Response {
    Json(openapi()).into_response()
}

/// The OpenAPI 3.1 document of `/api/v1`: every route of this module, of publishing
/// (`POST /api/v1/messages`, scope `publish`) and of ownership imports
/// (`PUT /api/v1/ownership`, scope `ownership`).
pub fn openapi() -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}]);
    let ok = |what: &str| json!({"200": {"description": what}, "401": {"description": "no valid token"}});
    let changed = |code: &str, what: &str| json!({code: {"description": what}, "400": {"description": "the body or a field is wrong; the error names it"}, "401": {"description": "no valid token"}, "403": {"description": "the token's scope does not allow it"}});
    let filter_body = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FilterBody"}}}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tidings",
            "version": "1",
            "description": "A person's filters, destinations, notifications and pause, with a personal access token (account page) of scope read or write; and, for services, publishing and ownership imports with service tokens (`tidings token add`). Another person's filter or destination is 404."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "FilterBody": {
                    "type": "object",
                    "required": ["name", "condition"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 100},
                        "condition": {"type": "string", "description": "the filter language (docs/filters.md)"},
                        "destination_ids": {"type": "array", "items": {"type": "integer"}, "description": "default: every destination"},
                        "enabled": {"type": "boolean", "default": true}
                    }
                },
                "DestinationBody": {
                    "type": "object",
                    "required": ["channel", "address"],
                    "properties": {
                        "channel": {"type": "string", "enum": ChannelKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()},
                        "address": {"type": "string"}
                    }
                }
            }
        },
        "paths": {
            routes::API_OPENAPI: {"get": {"summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            routes::API_ME: {"get": {"summary": "The token's owner and their variables ($my_groups, $my_packages, follows) and pause", "responses": ok("the owner")}},
            routes::API_FILTERS: {
                "get": {"summary": "My filters", "responses": ok("filters, and those that could not be read")},
                "post": {"summary": "A new filter (delivered at once; a digest is set on the page)", "requestBody": filter_body, "responses": changed("201", "the filter")}
            },
            "/api/v1/filters/{id}": {
                "parameters": id,
                "get": {"summary": "One of my filters", "responses": ok("the filter")},
                "put": {"summary": "Replace one of my filters (its delivery stays)", "requestBody": filter_body, "responses": changed("200", "the filter")},
                "delete": {"summary": "Delete one of my filters", "responses": changed("204", "deleted")}
            },
            routes::API_DESTINATIONS: {
                "get": {"summary": "My destinations", "responses": ok("destinations")},
                "post": {"summary": "Add a destination; a link or code is sent to confirm it before anything else", "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DestinationBody"}}}}, "responses": changed("201", "the destination, unconfirmed")}
            },
            "/api/v1/destinations/{id}": {
                "parameters": id,
                "get": {"summary": "One of my destinations", "responses": ok("the destination")},
                "delete": {"summary": "Delete one of my destinations", "responses": changed("204", "deleted")}
            },
            routes::API_NOTIFICATIONS: {"get": {"summary": "My latest notifications, newest first", "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": NOTIFICATIONS_MAX, "default": 100}}], "responses": ok("notifications")}},
            routes::API_PAUSE: {
                "get": {"summary": "When my pause ends (null: not paused)", "responses": ok("paused_until")},
                "put": {"summary": "Pause everything for `days` days (1-90)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["days"], "properties": {"days": {"type": "integer", "minimum": 1, "maximum": crate::settings::PAUSE_DAYS_MAX}}}}}}, "responses": changed("200", "paused_until")},
                "delete": {"summary": "Resume", "responses": changed("204", "resumed")}
            },
            routes::API_MESSAGES: {"post": {"summary": "Publish a fedmsg envelope (service token of scope publish)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}}, "responses": changed("202", "accepted: archived, or a duplicate")}},
            routes::API_OWNERSHIP: {"put": {"summary": "Import package ownership and groups (service token of scope ownership; ?mode=merge|replace)", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}}}}, "responses": changed("200", "imported")}}
        }
    })
}
