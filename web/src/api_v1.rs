//! The people's JSON API, `/api/v1`: everything the pages do, for scripts, with a personal
//! access token (`Authorization: Bearer tdp_…`, made on the account page or with
//! `POST /api/v1/tokens`) of scope `read` (look), `write` (also change) or `admin` (also the
//! admin calls under `/api/v1/admin`, for an admin's token only). Every call sees and
//! changes only the token owner's data: someone else's filter or destination is 404, as if
//! it did not exist. A missing, unknown or revoked token is 401; a token whose scope is too
//! small, or an admin call by someone who is not an admin, is 403. The document of it all
//! is `/api/v1/openapi.json` ([`openapi`]), and a test checks that every route here is in
//! it and that every operation in it answers.
//!
//! The calls are grouped as the pages are: this module (me, filters, destinations,
//! notifications, pause), [`account`] (settings, delivery, follows, mutes, tokens, offered
//! default filters, export), [`explore`] (preview, why, gallery, builder, catalog) and
//! [`admin`]. Password changes and deleting the account stay on the account page: they
//! need the password, so a leaked token cannot lock its owner out.

mod account;
mod admin;
mod doc;
mod explore;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_rules::Condition;
use tidings_store::{
    ChannelKind, Delivery, DeliveryPolicy, Filter, FilterInput, NewDestination, PersonalScope, User,
};

use crate::api::{bearer, ApiError};
use crate::{routes, AppState, Error};

pub use doc::openapi;

/// The most notifications one call lists.
const NOTIFICATIONS_MAX: i64 = 500;

/// What a handler answers.
type Reply = Result<Response, ApiError>;

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
        .merge(account::router())
        .merge(explore::router())
        .merge(admin::router())
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

/// The token's owner and the token's scope, if the token may do what `needed` names.
async fn owner(
    state: &AppState,
    headers: &HeaderMap,
    needed: PersonalScope,
) -> Result<(User, PersonalScope), ApiError> {
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
    if needed == PersonalScope::Admin && !user.is_admin {
        tracing::warn!(username = %user.username, "admin API call by someone who is not an admin");
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("{} is not an admin", user.username),
        ));
    }
    Ok((user, token.scope))
}

/// The owner of a token that may look (any scope).
pub(crate) struct Reader(pub User);
/// The owner of a token that may change things (`write` or `admin`), and the token's scope.
pub(crate) struct Writer(pub User, pub PersonalScope);
/// An admin whose token has scope `admin`.
pub(crate) struct AdminCaller(pub User);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (user, _) = owner(state, &parts.headers, PersonalScope::Read).await?;
        Ok(Reader(user))
    }
}

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (user, scope) = owner(state, &parts.headers, PersonalScope::Write).await?;
        Ok(Writer(user, scope))
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (user, _) = owner(state, &parts.headers, PersonalScope::Admin).await?;
        Ok(AdminCaller(user))
    }
}

/// A JSON body, read after the token was checked; a 400 that names the spot otherwise.
pub(crate) struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError(e.status(), e.body_text()))?;
        parse(&bytes).map(Body)
    }
}

/// A path parameter; a 404 when it is not one (`/api/v1/filters/x`).
pub(crate) struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<i64>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError(StatusCode::NOT_FOUND, "not found".into()))?;
        Ok(Id(id))
    }
}

/// `value` as a 200 JSON response.
fn ok(value: impl serde::Serialize) -> Reply {
    Ok(Json(value).into_response())
}

/// `value` as a 201 JSON response.
fn created(value: impl serde::Serialize) -> Reply {
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

/// 204.
fn done() -> Reply {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A 400 naming what is wrong.
fn bad(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// A condition's text read, or a 400 naming the line and column.
fn condition_of(text: &str) -> Result<Condition, ApiError> {
    Condition::parse(text).map_err(|err| {
        bad(format!(
            "condition: an error at line {}, column {}: {}",
            err.line, err.column, err.message
        ))
    })
}

/// A filter's own delivery as a body names it: none or `{"mode": "immediate"}` for at
/// once (as each destination says), or a digest's settings.
fn delivery_of(policy: Option<DeliveryPolicy>) -> Result<Delivery, ApiError> {
    match policy {
        None | Some(DeliveryPolicy::Immediate { .. }) => Ok(Delivery::Instant),
        Some(digest) => Delivery::digest(digest).map_err(store),
    }
}

async fn me(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    // With the follows (`variables_for_username` has only what the ownership data says).
    let vars = state.store.variables(user.id).await.map_err(store)?;
    let paused = state.store.paused_until(user.id).await.map_err(store)?;
    // Where each group and package comes from, as "My packages" shows it.
    let groups = state
        .store
        .group_sources(&user.username)
        .await
        .map_err(store)?
        .into_iter()
        .map(|(name, provider)| {
            json!({"name": name, "source": if provider { "provider" } else { "ownership" }})
        })
        .collect::<Vec<_>>();
    let packages = state
        .store
        .package_sources(&user.username)
        .await
        .map_err(store)?
        .into_iter()
        .map(|(name, via)| json!({"name": name, "via_group": via}))
        .collect::<Vec<_>>();
    ok(json!({
        "username": user.username,
        "is_admin": user.is_admin,
        "my_groups": vars.my_groups,
        "my_packages": vars.my_packages,
        "followed_users": vars.followed_users,
        "followed_packages": vars.followed_packages,
        "group_sources": groups,
        "package_sources": packages,
        "paused_until": paused,
    }))
}

fn filter_json(filter: &Filter) -> Value {
    json!({
        "id": filter.id,
        "name": filter.name,
        "condition": filter.condition.to_string(),
        "enabled": filter.enabled,
        "destination_ids": filter.destination_ids,
        "delivery": filter.delivery.describe(),
        "digest": match &filter.delivery {
            Delivery::Digest(policy) => json!(policy),
            Delivery::Instant => Value::Null,
        },
        "quarantined": filter.quarantine.as_ref().map(|q| q.reason.clone()),
        "created_at": filter.created_at,
        "updated_at": filter.updated_at,
    })
}

async fn filters(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let list = state.store.filters(user.id).await.map_err(store)?;
    // What each sent in the last 7 days, as the dashboard shows it.
    let since = tidings_store::now_ms() - crate::preview::PREVIEW_WINDOW_MS;
    let sent = state
        .store
        .sent_per_filter(user.id, since)
        .await
        .map_err(store)?;
    let filters = list
        .filters
        .iter()
        .map(|f| {
            let mut shown = filter_json(f);
            shown["sent_last_7_days"] = json!(sent.by_filter.get(&f.id).copied().unwrap_or(0));
            shown
        })
        .collect::<Vec<_>>();
    ok(json!({
        "filters": filters,
        "sent_counts_capped": sent.capped,
        "unreadable": list.unreadable.iter().map(|u| json!({"id": u.id, "name": u.name, "reason": u.reason})).collect::<Vec<_>>(),
    }))
}

async fn filter(State(state): State<AppState>, Reader(user): Reader, Id(id): Id) -> Reply {
    let found = state.store.filter(user.id, id).await.map_err(store)?;
    ok(filter_json(&found))
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
    /// A digest of its own; none: at once (a new filter) or as it was (a replaced one).
    delivery: Option<DeliveryPolicy>,
}

fn yes() -> bool {
    true
}

/// The body read as JSON, or a 400 that says where it is wrong.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "the body is not what this call takes: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

async fn filter_input(
    state: &AppState,
    user: &User,
    body: FilterBody,
    current: Delivery,
) -> Result<FilterInput, ApiError> {
    let condition = condition_of(&body.condition)?;
    let delivery = match body.delivery {
        Some(policy) => delivery_of(Some(policy))?,
        None => current,
    };
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

/// A filter and what looks wrong in it (unknown apps, empty variables, ...).
async fn with_warnings(state: &AppState, user: &User, filter: &Filter) -> Result<Value, ApiError> {
    let mut shown = filter_json(filter);
    shown["warnings"] = json!(crate::filters::warnings(state, user.id, &filter.condition).await?);
    Ok(shown)
}

async fn create_filter(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<FilterBody>,
) -> Reply {
    let input = filter_input(&state, &user, body, Delivery::Instant).await?;
    let made = state
        .store
        .create_filter(user.id, &input)
        .await
        .map_err(store)?;
    created(with_warnings(&state, &user, &made).await?)
}

async fn update_filter(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Id(id): Id,
    Body(body): Body<FilterBody>,
) -> Reply {
    let current = state.store.filter(user.id, id).await.map_err(store)?;
    let input = filter_input(&state, &user, body, current.delivery).await?;
    let saved = state
        .store
        .update_filter(user.id, id, &input)
        .await
        .map_err(store)?;
    ok(with_warnings(&state, &user, &saved).await?)
}

async fn delete_filter(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Id(id): Id,
) -> Reply {
    state
        .store
        .delete_filter(user.id, id)
        .await
        .map_err(store)?;
    done()
}

async fn destinations(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let list = state.store.destinations(user.id).await.map_err(store)?;
    ok(json!({ "destinations": list }))
}

async fn destination(State(state): State<AppState>, Reader(user): Reader, Id(id): Id) -> Reply {
    let found = state.store.destination(user.id, id).await.map_err(store)?;
    ok(found)
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
    Writer(user, _): Writer,
    Body(body): Body<DestinationBody>,
) -> Reply {
    if !state.config.channels.contains(&body.channel) {
        return Err(bad(format!(
            "channel: {} destinations are turned off on this site",
            body.channel
        )));
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
    // The sender mails the confirmation link (or sends the code) now.
    state.wake.notify_one();
    created(added)
}

async fn delete_destination(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Id(id): Id,
) -> Reply {
    state
        .store
        .delete_destination(user.id, id)
        .await
        .map_err(store)?;
    done()
}

#[derive(Deserialize)]
struct Listing {
    limit: Option<i64>,
}

async fn notifications(
    State(state): State<AppState>,
    Reader(user): Reader,
    Query(listing): Query<Listing>,
) -> Reply {
    let limit = listing.limit.unwrap_or(100).clamp(1, NOTIFICATIONS_MAX);
    let list = state
        .store
        .notifications(user.id, limit)
        .await
        .map_err(store)?;
    ok(json!({ "notifications": list }))
}

async fn pause(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let until = state.store.paused_until(user.id).await.map_err(store)?;
    ok(json!({ "paused_until": until }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    days: i64,
}

async fn set_pause(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<PauseBody>,
) -> Reply {
    let max = crate::settings::PAUSE_DAYS_MAX;
    if !(1..=max).contains(&body.days) {
        return Err(bad(format!(
            "days: {} is not a whole number from 1 to {max}",
            body.days
        )));
    }
    let until = tidings_store::now_ms().saturating_add(body.days.saturating_mul(86_400_000));
    let mute = state
        .store
        .pause_everything(user.id, until)
        .await
        .map_err(store)?;
    ok(json!({ "paused_until": mute.until }))
}

async fn resume(State(state): State<AppState>, Writer(user, _): Writer) -> Reply {
    state
        .store
        .resume_everything(user.id)
        .await
        .map_err(store)?;
    done()
}

async fn document() -> Response {
    Json(openapi()).into_response()
}
