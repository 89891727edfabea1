//! The JSON API and the health check. Publishers POST fedmsg envelopes to
//! `/api/v1/messages` with a bearer token of scope `publish` (or `admin`); the message goes
//! through the bus's accept path (`tidings_notifier::bus`): archived (de-duplicated by id)
//! and the matcher woken. A missing or unknown token is
//! 401; a valid token of the wrong scope is 403, naming the scope needed. Input that cannot become a message is answered with 400 naming the
//! field or the line and column at fault, and recorded as rejected, so nothing vanishes.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

use tidings_notifier::bus::{Accept, Accepted, Raw, Tally, Wire};
use tidings_notifier::NotifierError;
use tidings_store::{ApiToken, TokenScope};

use crate::{routes, AppState, Ingest, Metrics};

/// The largest envelope accepted.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// The API and health routes (no sessions).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::API_MESSAGES, post(ingest))
        .route(routes::HEALTHZ, get(healthz))
}

/// An API failure: a status and a reason for the client.
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            // The publisher retries; a database outage usually outlasts a few seconds.
            response
                .headers_mut()
                .insert(RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        }
        response
    }
}

impl From<tidings_store::StoreError> for ApiError {
    fn from(err: tidings_store::StoreError) -> Self {
        // Nothing was stored and a retry can succeed: 503, never 202 for an unstored message.
        if err.is_unavailable() {
            tracing::warn!(%err, "API request: the database is unavailable");
            return ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; try again later".into(),
            );
        }
        if let tidings_store::StoreError::Refused { reason } = &err {
            // The database cannot store this message however often it is sent.
            tracing::warn!(%err, "API request refused by the database");
            return ApiError(
                StatusCode::BAD_REQUEST,
                format!("the message cannot be stored: {reason}"),
            );
        }
        tracing::error!(%err, "API request failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The API token the request carries, if it may do what `needed` names. Checked before
/// the body is read, so strangers' uploads are never buffered.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    needed: TokenScope,
) -> Result<ApiToken, ApiError> {
    let unauthorized = || {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".into(),
        )
    };
    let presented = bearer(headers).ok_or_else(unauthorized)?;
    let token = state
        .store
        .api_token(presented)
        .await?
        .ok_or_else(unauthorized)?;
    if !token.scope.allows(needed) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "token {:?} has scope {}; this needs scope {needed} or admin",
                token.name, token.scope
            ),
        ));
    }
    Ok(token)
}

/// The request body, refused with 413 past `limit` bytes (by Content-Length when declared,
/// else while reading).
pub(crate) async fn body(request: Request, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| too_large())
}

/// A message posted to the API goes through the bus's one accept path, as a batch of one;
/// the `202` is its acknowledgement, sent only after the archive commit.
async fn ingest(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let token = authorize(&state, request.headers(), TokenScope::Publish).await?;
    let origin = format!("http:{}", token.name);
    let body = body(request, BODY_LIMIT).await?;
    let tally: Arc<dyn Tally> = Arc::new(WebTally(state.metrics.clone()));
    let accept = Accept::new(
        state.store.clone(),
        state.derive.clone(),
        tally,
        state.wake.clone(),
    )
    .verifying(state.trust.clone());
    let raw = Raw {
        origin,
        wire: Wire::Json(body.to_vec()),
    };
    let (id, duplicate) = match accept.one(raw).await {
        Ok(Accepted::Stored { id, .. }) => (id, false),
        Ok(Accepted::Duplicate(id)) => (id, true),
        Ok(Accepted::Rejected(reason)) => return Err(ApiError(StatusCode::BAD_REQUEST, reason)),
        Err(NotifierError::Store(err)) => return Err(err.into()),
        Err(err) => {
            tracing::error!(%err, "API ingest failed");
            return Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error".into(),
            ));
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "duplicate": duplicate })),
    )
        .into_response())
}

/// The accept path's outcomes, reported to the web's counters.
struct WebTally(Option<Arc<dyn Metrics>>);

impl Tally for WebTally {
    fn tally(&self, accepted: &Accepted) {
        if let Some(metrics) = &self.0 {
            metrics.ingest(match accepted {
                Accepted::Stored { .. } => Ingest::Stored,
                Accepted::Duplicate(_) => Ingest::Duplicate,
                Accepted::Rejected(_) => Ingest::Rejected,
            });
        }
    }
}

/// How long the health check waits for the database.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// 200 "ok" when the database can write (the heartbeat row is written and committed)
/// within 2 s; 503 otherwise, also when it does not answer in time.
async fn healthz(State(state): State<AppState>) -> Response {
    let problem = match tokio::time::timeout(HEALTH_TIMEOUT, state.store.check_writable()).await {
        Ok(Ok(())) => return (StatusCode::OK, "ok").into_response(),
        Ok(Err(err)) => {
            tracing::error!(%err, "health check failed");
            "database unavailable: it cannot write"
        }
        Err(_) => {
            tracing::error!("health check failed: the database did not answer within 2 s");
            "database unavailable: no answer within 2 s"
        }
    };
    (StatusCode::SERVICE_UNAVAILABLE, problem).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn reads_bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer tid_x"));
        assert_eq!(bearer(&headers), Some("tid_x"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  tid_y "));
        assert_eq!(bearer(&headers), Some("tid_y"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }
}
