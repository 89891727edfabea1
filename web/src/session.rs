//! Sessions, sign-in state and CSRF. A middleware reads the `tidings_session` cookie once per
//! request; the [`Visitor`] extractor starts an anonymous session when there is none (so every
//! form, sign-in included, carries a CSRF token), [`CurrentUser`] demands a signed-in one, and
//! [`Form`] refuses a POST whose `csrf` field does not match the session's token.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tidings_store::{secret, Session, StoreError, User};

use crate::{AppState, Error};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "tidings_session";
/// The most a form body may hold.
const FORM_LIMIT: usize = 64 * 1024;

/// This request's session, shared between the middleware and the extractors. `fresh` is
/// set when the cookie must be (re)sent.
#[derive(Clone, Default)]
struct Cell(Arc<Mutex<Slot>>);

#[derive(Default)]
struct Slot {
    current: Option<(String, Session)>,
    fresh: bool,
}

impl Cell {
    fn get(&self) -> Option<(String, Session)> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current
            .clone()
    }

    fn set(&self, token: String, session: Session) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.current = Some((token, session));
        slot.fresh = true;
    }

    fn cookie_to_send(&self) -> Option<(String, i64)> {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match (&slot.current, slot.fresh) {
            (Some((token, session)), true) => Some((token.clone(), session.expires_at)),
            _ => None,
        }
    }
}

/// The token in the request's `tidings_session` cookie, if any.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value for a session token.
fn cookie_header(token: &str, expires_at: i64, secure: bool) -> Option<HeaderValue> {
    let max_age = ((expires_at - tidings_store::now_ms()) / 1000).max(0);
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .ok()
}

/// Looks up the cookie's session before the handler runs, and sends a new cookie after it
/// when the session was started or rotated.
pub(crate) async fn layer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let current = match cookie_token(request.headers()) {
        Some(token) => match state.store.session(&token).await {
            Ok(found) => found.map(|session| (token, session)),
            Err(err) => return Error::from(err).into_response(),
        },
        None => None,
    };
    let cell = Cell(Arc::new(Mutex::new(Slot {
        current,
        fresh: false,
    })));
    request.extensions_mut().insert(cell.clone());
    let mut response = next.run(request).await;
    if let Some((token, expires_at)) = cell.cookie_to_send() {
        match cookie_header(&token, expires_at, state.config.secure_cookies()) {
            Some(value) => {
                response.headers_mut().append(SET_COOKIE, value);
            }
            None => tracing::error!("session token is not a valid header value"),
        }
    }
    response
}

/// Whoever is at the other end: a session, signed in or not.
#[derive(Clone)]
pub(crate) struct Visitor {
    token: String,
    /// The session.
    pub session: Session,
    cell: Cell,
}

impl Visitor {
    /// The token every form must carry.
    pub fn csrf(&self) -> &str {
        &self.session.csrf_token
    }

    /// Ends this session and starts another (for `user_id`, or anonymous), so a token seen
    /// before sign-in or sign-out is worthless after it.
    pub async fn rotate(&self, state: &AppState, user_id: Option<i64>) -> Result<Visitor, Error> {
        state.store.delete_session(&self.token).await?;
        start(state, &self.cell, user_id).await
    }
}

async fn start(state: &AppState, cell: &Cell, user_id: Option<i64>) -> Result<Visitor, Error> {
    let (token, session) = state
        .store
        .create_session(user_id, state.config.session_ttl_ms())
        .await?;
    cell.set(token.clone(), session.clone());
    Ok(Visitor {
        token,
        session,
        cell: cell.clone(),
    })
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let cell = parts
            .extensions
            .get::<Cell>()
            .cloned()
            .ok_or_else(|| Error::Internal("route is outside the session layer".into()))?;
        match cell.get() {
            Some((token, session)) => Ok(Visitor {
                token,
                session,
                cell,
            }),
            None => start(state, &cell, None).await,
        }
    }
}

/// A signed-in user; pages that need one redirect to sign-in without it.
pub(crate) struct CurrentUser {
    /// The account.
    pub user: User,
    /// Their session.
    pub visitor: Visitor,
}

impl CurrentUser {
    /// The user's id, which scopes every store call.
    pub fn id(&self) -> i64 {
        self.user.id
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let visitor = Visitor::from_request_parts(parts, state).await?;
        let Some(user_id) = visitor.session.user_id else {
            return Err(Error::SignInRequired);
        };
        match state.store.user(user_id).await {
            Ok(user) => Ok(CurrentUser { user, visitor }),
            Err(StoreError::NotFound) => Err(Error::SignInRequired),
            Err(err) => Err(err.into()),
        }
    }
}

/// A POSTed form whose `csrf` field matched the session's token.
pub(crate) struct Form {
    fields: Vec<(String, String)>,
    /// The session it was checked against.
    pub visitor: Visitor,
}

impl Form {
    /// The first value of a field, or "".
    pub fn text(&self, name: &str) -> &str {
        self.all(name).next().unwrap_or_default()
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = name.to_string();
        self.fields
            .iter()
            .filter(move |(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        self.all(name).next().is_some()
    }
}

impl FromRequest<AppState> for Form {
    type Rejection = Error;

    async fn from_request(request: Request<Body>, state: &AppState) -> Result<Self, Error> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| Error::BadRequest("the form is too large".into()))?;
        let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let form = Form { fields, visitor };
        if !secret::tokens_equal(form.text("csrf"), form.visitor.csrf()) {
            return Err(Error::Csrf);
        }
        Ok(form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; tidings_session=tok; b=2"),
        );
        assert_eq!(cookie_token(&headers).as_deref(), Some("tok"));
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("tidings_session=; x=y"));
        assert_eq!(cookie_token(&empty), None);
    }

    #[test]
    fn cookie_attributes() {
        let far = tidings_store::now_ms() + 3_600_000;
        let plain = cookie_header("t", far, false).map(|v| v.to_str().map(str::to_string));
        let plain = plain.and_then(Result::ok).unwrap_or_default();
        assert!(plain.starts_with("tidings_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age="));
        assert!(!plain.contains("Secure"));
        let secure = cookie_header("t", far, true).map(|v| v.to_str().map(str::to_string));
        assert!(secure
            .and_then(Result::ok)
            .unwrap_or_default()
            .ends_with("; Secure"));
    }
}
