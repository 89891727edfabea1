//! `PUT /api/v1/ownership`: an ownership import over HTTP, in the JSON import format
//! (docs/filters.md), with a bearer token of scope `ownership` (or `admin`): a publisher's
//! token cannot change who owns what. `?mode=merge` (the default) replaces the listed
//! packages and groups one by one; `?mode=replace` makes the body the whole truth, and an
//! empty body in that mode (which would wipe every record) is refused unless the request
//! says `allow_empty=true`. A bad record is answered with 400 naming it and the field, and
//! nothing is imported.

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::json;
use tidings_store::{ImportMode, OwnershipData, StoreError, TokenScope};

use crate::api::{authorize, body, ApiError};
use crate::{routes, AppState};

/// The largest import accepted. A whole distribution's owner map (Fedora: ~25,000 packages
/// and ~2,000 groups with their members) is 3–5 MB of JSON; 16 MiB leaves room for three
/// times that while bounding what one request can make the server parse and hold (parsed,
/// JSON takes several times its size in memory).
pub(crate) const BODY_LIMIT: usize = 16 * 1024 * 1024;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route(routes::API_OWNERSHIP, put(import))
}

#[derive(serde::Deserialize)]
struct Params {
    mode: Option<String>,
    /// Lets `mode=replace` take an import with no packages and no groups.
    #[serde(default)]
    allow_empty: bool,
}

fn refused(err: StoreError) -> ApiError {
    match err {
        StoreError::Invalid { field, reason } => {
            ApiError(StatusCode::BAD_REQUEST, format!("{field}: {reason}"))
        }
        other => other.into(),
    }
}

async fn import(
    State(state): State<AppState>,
    Query(params): Query<Params>,
    request: Request,
) -> Result<Response, ApiError> {
    let token = authorize(&state, request.headers(), TokenScope::Ownership).await?;
    let mode: ImportMode = params
        .mode
        .as_deref()
        .unwrap_or("merge")
        .parse()
        .map_err(refused)?;
    let body = body(request, BODY_LIMIT).await?;
    let text = std::str::from_utf8(&body).map_err(|_| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "json: the body is not UTF-8".into(),
        )
    })?;
    let data = OwnershipData::from_json(text).map_err(refused)?;
    if mode == ImportMode::Replace
        && data.packages.is_empty()
        && data.groups.is_empty()
        && !params.allow_empty
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "mode=replace with no packages and no groups would delete every ownership \
             record; add allow_empty=true if that is what you want"
                .into(),
        ));
    }
    let summary = state
        .store
        .import_ownership(&data, mode)
        .await
        .map_err(refused)?;
    tracing::info!(token = %token.name, packages = summary.packages, groups = summary.groups,
        affected = summary.affected_users.len(), "ownership imported over the API");
    if !summary.affected_users.is_empty() {
        // The matcher re-indexes the affected accounts on its next pass.
        state.wake.notify_one();
    }
    Ok((
        StatusCode::OK,
        Json(json!({
            "mode": if mode == ImportMode::Replace { "replace" } else { "merge" },
            "packages": summary.packages,
            "groups": summary.groups,
            "affected_users": summary.affected_users.len(),
        })),
    )
        .into_response())
}
