//! What the filter pages show besides the filters themselves: the preview of a condition
//! or a saved filter, why (not) for an archived message, the gallery of starting filters,
//! the builder (its fields to condition text and back), the catalog's apps and topics,
//! and a filter's feed URL.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use tidings_rules::condition::Builder;
use tidings_rules::Condition;
use tidings_store::{StoreError, StoredMessage, User};

use super::{bad, condition_of, created, ok, store, Body, Id, Reader, Reply, Writer};
use crate::api::ApiError;
use crate::gallery::STARTERS;
use crate::preview::PREVIEW_WINDOW_MS;
use crate::{routes, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::API_PREVIEW, post(preview))
        .route(routes::API_FILTER_PREVIEW, get(filter_preview))
        .route(routes::API_FILTER_FEED, get(feed).post(new_feed))
        .route(routes::API_WHY, get(why))
        .route(routes::API_GALLERY, get(gallery))
        .route(routes::API_GALLERY_ADD, post(add_starter))
        .route(routes::API_BUILDER, get(read_builder).post(write_builder))
        .route(routes::API_CATALOG, get(catalog))
}

/// An archived message as previews and why-answers list it.
fn message_json(stored: &StoredMessage) -> Value {
    let (message, meta) = (&stored.message, &stored.metadata);
    json!({
        "id": message.id,
        "topic": message.topic,
        "summary": meta.summary,
        "app": meta.app,
        "url": meta.url,
        "sent_at": message.sent_at,
        "received_at": stored.received_at,
    })
}

/// What `condition` would have sent `user` in the last 7 days, and what looks wrong in it.
async fn previewed(state: &AppState, user: &User, condition: Condition) -> Reply {
    let started = std::time::Instant::now();
    let warnings = crate::filters::warnings(state, user.id, &condition).await?;
    let variables = state.store.variables(user.id).await.map_err(store)?;
    let found =
        crate::preview::preview(&state.store, condition, variables, tidings_store::now_ms())
            .await?;
    ok(json!({
        "days": PREVIEW_WINDOW_MS / 86_400_000,
        "count": found.count,
        "scanned": found.scanned,
        "millis": started.elapsed().as_millis(),
        "latest": found.latest.iter().map(message_json).collect::<Vec<_>>(),
        "warnings": warnings,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionBody {
    condition: String,
}

async fn preview(
    State(state): State<AppState>,
    Reader(user): Reader,
    Body(body): Body<ConditionBody>,
) -> Reply {
    let condition = condition_of(&body.condition)?;
    previewed(&state, &user, condition).await
}

async fn filter_preview(State(state): State<AppState>, Reader(user): Reader, Id(id): Id) -> Reply {
    let filter = state.store.filter(user.id, id).await.map_err(store)?;
    previewed(&state, &user, filter.condition).await
}

/// A feed token as the feed's URL.
fn feed_json(state: &AppState, token: &str) -> Value {
    json!({"url": tidings_rules::links::Links::new(&state.config.base_url).feed(token)})
}

async fn feed(State(state): State<AppState>, Reader(user): Reader, Id(id): Id) -> Reply {
    let token = state.store.feed_token(user.id, id).await.map_err(store)?;
    ok(feed_json(&state, &token))
}

/// A new feed URL; the old one stops working.
async fn new_feed(State(state): State<AppState>, Writer(user, _): Writer, Id(id): Id) -> Reply {
    let token = state
        .store
        .new_feed_token(user.id, id)
        .await
        .map_err(store)?;
    ok(feed_json(&state, &token))
}

#[derive(Deserialize)]
struct MessageParam {
    message: Option<String>,
}

/// For each of the owner's filters: whether it matches the message, the predicates that
/// decided, and what would stop a notification anyway.
async fn why(
    State(state): State<AppState>,
    Reader(user): Reader,
    Query(param): Query<MessageParam>,
) -> Reply {
    let asked = param.message.unwrap_or_default();
    let asked = asked.trim();
    if asked.is_empty() {
        return Err(bad("message: give an archived message's id (?message=ID)"));
    }
    let stored = match state.store.archived_message(asked).await {
        Err(StoreError::NotFound) => {
            return Err(ApiError(
                axum::http::StatusCode::NOT_FOUND,
                format!("message: no archived message has the id {asked:?}"),
            ))
        }
        other => other.map_err(store)?,
    };
    let judged = crate::why::judge(&state, user.id, &stored).await?;
    ok(json!({
        "message": message_json(&stored),
        "filters": judged.verdicts.iter().map(|v| json!({
            "id": v.id,
            "name": v.name,
            "matched": v.matched,
            "reasons": v.reasons.iter().map(|r| json!({"predicate": r.predicate, "held": r.held, "seen": r.seen})).collect::<Vec<_>>(),
            "stops": v.stops,
        })).collect::<Vec<_>>(),
        "unreadable": judged.unreadable,
        "mutes": judged.mutes,
    }))
}

async fn gallery(Reader(_user): Reader) -> Reply {
    ok(json!({"starters": STARTERS.iter().map(|s| json!({
        "key": s.key,
        "name": s.name,
        "about": s.about,
        "condition": s.condition,
    })).collect::<Vec<_>>()}))
}

async fn add_starter(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Path(key): Path<String>,
) -> Reply {
    if !STARTERS.iter().any(|s| s.key == key) {
        return Err(ApiError(
            axum::http::StatusCode::NOT_FOUND,
            format!("no starting filter is called {key:?}"),
        ));
    }
    let filter = crate::gallery::add_starter(&state, user.id, &key).await?;
    created(super::filter_json(&filter))
}

/// The builder's fields to condition text (and what looks wrong in it).
async fn write_builder(
    State(state): State<AppState>,
    Reader(user): Reader,
    Body(builder): Body<Builder>,
) -> Reply {
    let condition = builder.condition().map_err(|e| bad(e.to_string()))?;
    let warnings = crate::filters::warnings(&state, user.id, &condition).await?;
    ok(json!({"condition": condition.to_string(), "warnings": warnings}))
}

#[derive(Deserialize)]
struct ConditionParam {
    condition: Option<String>,
}

/// A condition's text read back into the builder's fields; 422 with the part that does
/// not fit when it has another shape (the text stays the way to write it).
async fn read_builder(Reader(_user): Reader, Query(param): Query<ConditionParam>) -> Reply {
    let condition = condition_of(param.condition.as_deref().unwrap_or(""))?;
    match Builder::read(&condition) {
        Ok(builder) => ok(json!({ "builder": builder })),
        Err(reason) => Err(ApiError(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("the builder cannot show this condition: {reason}"),
        )),
    }
}

/// The apps the catalog knows with their topics, and other names for them.
async fn catalog(State(state): State<AppState>, Reader(_user): Reader) -> Reply {
    let apps = &state.apps;
    ok(json!({
        "apps": apps.apps.iter().map(|app| json!({
            "name": app,
            "topics": apps.topics.get(app).cloned().unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "aliases": apps.aliases,
    }))
}
