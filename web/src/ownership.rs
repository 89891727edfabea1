//! `PUT /api/v1/ownership`: an ownership import over HTTP, in the JSON import format
//! (docs/filters.md), with the same bearer tokens as `POST /api/v1/messages`.
//! `?mode=merge` (the default) replaces the listed packages and groups one by one;
//! `?mode=replace` makes the body the whole truth. A bad record is answered with 400
//! naming it and the field, and nothing is imported.

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::json;
use tidings_store::{ImportMode, OwnershipData, StoreError};

use crate::api::{body, publisher, ApiError};
use crate::{routes, AppState};

/// The largest import accepted: a distribution's worth of packages and groups.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route(routes::API_OWNERSHIP, put(import))
}

#[derive(serde::Deserialize)]
struct Params {
    mode: Option<String>,
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
    let name = publisher(&state, request.headers()).await?;
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
    let summary = state
        .store
        .import_ownership(&data, mode)
        .await
        .map_err(refused)?;
    tracing::info!(token = %name, packages = summary.packages, groups = summary.groups,
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
