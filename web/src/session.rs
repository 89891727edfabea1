//! Sessions, sign-in state and CSRF. A middleware reads the cookies once per request; the
//! [`Visitor`] extractor says who is asking and which CSRF token their forms carry,
//! [`CurrentUser`] demands a signed-in one, and [`Form`] refuses a POST whose `csrf` field
//! does not match.
//!
//! Only a sign-in makes a session row (issue 8 item 5: every anonymous GET used to make a
//! 14-day row). Anonymous forms are protected by a signed double-submit token instead: the
//! visitor gets a random value in the `tidings_csrf` cookie, and their forms carry that
//! value's HMAC under the server key `csrf`. A cross-site form cannot read the cookie, and
//! a cookie planted by a neighbouring site (or over plain http) is worthless without the
//! key. Signed-in forms carry their session's own token. A session ends at its absolute
//! expiry (`web.session_hours`) or after `web.session_idle_minutes` unused; its last use is
//! written at most once a minute, so a page view is not a write.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tidings_store::{secret, Session, StoreError, User};

use crate::{AppState, Error, WebConfig};

/// The most a form body may hold.
const FORM_LIMIT: usize = 64 * 1024;
/// A session's last use is written when older than this: often enough for a 30-minute idle
/// time, rarely enough that browsing is not a database write per page.
const TOUCH_EVERY_MS: i64 = 60_000;

/// This request's sign-in state, shared between the middleware and the extractors, and the
/// cookies the response must set.
#[derive(Clone, Default)]
struct Cell(Arc<Mutex<Slot>>);

#[derive(Default)]
struct Slot {
    /// The signed-in session: its cookie token and row.
    session: Option<(String, Session)>,
    /// The anonymous double-submit value: from the request's cookie, or made for it.
    csrf_cookie: Option<String>,
    /// `Set-Cookie` values for the response.
    set_cookies: Vec<String>,
}

impl Cell {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The value of the request's cookie `name`, if any.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_string())
}

/// A `Set-Cookie` value. Every cookie is `HttpOnly`, `SameSite=Lax`, for the whole site and
/// without `Domain`; `Secure` on https (where the `__Host-` names require all of that).
/// Without `max_age` it lasts until the browser closes.
pub(crate) fn set_cookie(
    config: &WebConfig,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> String {
    let max_age = max_age
        .map(|secs| format!("; Max-Age={}", secs.max(0)))
        .unwrap_or_default();
    let secure = if config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{max_age}{secure}")
}

/// The session cookie for a session that ends at `expires_at`.
fn session_cookie(config: &WebConfig, token: &str, expires_at: i64) -> String {
    let max_age = (expires_at - tidings_store::now_ms()) / 1000;
    set_cookie(config, config.session_cookie(), token, Some(max_age))
}

/// Tells the browser to forget its session cookie.
fn end_session_cookie(config: &WebConfig) -> String {
    set_cookie(config, config.session_cookie(), "", Some(0))
}

/// Looks up the session before the handler runs (forgetting a dead cookie, recording use),
/// and sets the cookies the handler asked for after it.
pub(crate) async fn layer(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let config = &state.config;
    let mut slot = Slot {
        csrf_cookie: cookie(request.headers(), config.csrf_cookie()),
        ..Slot::default()
    };
    if let Some(token) = cookie(request.headers(), config.session_cookie()) {
        match state.store.session(&token, config.session_idle_ms()).await {
            Ok(Some(session)) => {
                if tidings_store::now_ms() - session.last_seen_at >= TOUCH_EVERY_MS {
                    if let Err(err) = state.store.touch_session(&token).await {
                        return Error::from(err).into_response();
                    }
                }
                slot.session = Some((token, session));
            }
            // Expired, idle, ended or its user disabled.
            Ok(None) => slot.set_cookies.push(end_session_cookie(config)),
            Err(err) => return Error::from(err).into_response(),
        }
    }
    let cell = Cell(Arc::new(Mutex::new(slot)));
    request.extensions_mut().insert(cell.clone());
    let mut response = next.run(request).await;
    let set_cookies = std::mem::take(&mut cell.slot().set_cookies);
    for value in set_cookies {
        match HeaderValue::from_str(&value) {
            Ok(value) => {
                response.headers_mut().append(SET_COOKIE, value);
            }
            Err(_) => tracing::error!("a cookie is not a valid header value"),
        }
    }
    response
}

/// Whoever is at the other end, signed in or not.
#[derive(Clone)]
pub(crate) struct Visitor {
    session: Option<(String, Session)>,
    csrf: String,
    cell: Cell,
}

impl Visitor {
    /// The token every form must carry.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The signed-in user's id, if any.
    pub fn user_id(&self) -> Option<i64> {
        self.session.as_ref().map(|(_, session)| session.user_id)
    }

    /// Signs `user_id` in: ends the current session, if any, and starts a new one, so a
    /// token seen before sign-in is worthless after it.
    pub async fn sign_in(&self, state: &AppState, user_id: i64) -> Result<(), Error> {
        if let Some((token, _)) = &self.session {
            state.store.delete_session(token).await?;
        }
        let (token, session) = state
            .store
            .create_session(user_id, state.config.session_ttl_ms())
            .await?;
        let cookie = session_cookie(&state.config, &token, session.expires_at);
        let mut slot = self.cell.slot();
        slot.session = Some((token, session));
        slot.set_cookies.push(cookie);
        Ok(())
    }

    /// Ends every other session of the signed-in user (other browsers, a stolen cookie);
    /// this one goes on. Returns how many ended.
    pub async fn end_other_sessions(&self, state: &AppState) -> Result<u64, Error> {
        match &self.session {
            Some((token, session)) => Ok(state
                .store
                .end_sessions(session.user_id, Some(token))
                .await?),
            None => Ok(0),
        }
    }

    /// Ends every session of the signed-in user, this one too, and tells this browser to
    /// forget its cookie.
    pub async fn sign_out_everywhere(&self, state: &AppState) -> Result<(), Error> {
        if let Some((_, session)) = &self.session {
            state.store.end_sessions(session.user_id, None).await?;
        }
        self.sign_out(state).await
    }

    /// Ends the session, if any, and tells the browser to forget its cookie.
    pub async fn sign_out(&self, state: &AppState) -> Result<(), Error> {
        if let Some((token, _)) = &self.session {
            state.store.delete_session(token).await?;
        }
        let mut slot = self.cell.slot();
        slot.session = None;
        slot.set_cookies.push(end_session_cookie(&state.config));
        Ok(())
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let cell = parts
            .extensions
            .get::<Cell>()
            .cloned()
            .ok_or_else(|| Error::Internal("route is outside the session layer".into()))?;
        let session = cell.slot().session.clone();
        let csrf = match &session {
            Some((_, session)) => session.csrf_token.clone(),
            None => {
                let value = {
                    let mut slot = cell.slot();
                    match &slot.csrf_cookie {
                        Some(value) => value.clone(),
                        None => {
                            let value = secret::new_token();
                            let config = &state.config;
                            slot.set_cookies.push(set_cookie(
                                config,
                                config.csrf_cookie(),
                                &value,
                                None,
                            ));
                            slot.csrf_cookie = Some(value.clone());
                            value
                        }
                    }
                };
                state.csrf_key().await?.sign(value.as_bytes())
            }
        };
        Ok(Visitor {
            session,
            csrf,
            cell,
        })
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
        let Some(user_id) = visitor.user_id() else {
            return Err(Error::SignInRequired);
        };
        match state.store.user(user_id).await {
            Ok(user) => Ok(CurrentUser { user, visitor }),
            Err(StoreError::NotFound) => Err(Error::SignInRequired),
            Err(err) => Err(err.into()),
        }
    }
}

/// A POSTed form whose `csrf` field matched the visitor's token.
pub(crate) struct Form {
    fields: Vec<(String, String)>,
    /// The visitor it was checked against.
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
        // A visitor without the cookie got a fresh value just now, which no form carries.
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
    fn finds_a_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; tidings_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, "tidings_session").as_deref(), Some("tok"));
        assert_eq!(cookie(&headers, "tidings_csrf"), None);
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("tidings_session=; x=y"));
        assert_eq!(cookie(&empty, "tidings_session"), None);
    }

    #[test]
    fn cookie_attributes() {
        let far = tidings_store::now_ms() + 3_600_000;
        let http = WebConfig::default();
        let plain = session_cookie(&http, "t", far);
        assert!(plain.starts_with("tidings_session=t; Path=/; HttpOnly; SameSite=Lax; Max-Age="));
        assert!(!plain.contains("Secure"));
        let https = WebConfig {
            base_url: "https://tidings.example.org".into(),
            ..WebConfig::default()
        };
        let secure = session_cookie(&https, "t", far);
        assert!(
            secure.starts_with("__Host-tidings_session=t; Path=/;"),
            "{secure}"
        );
        assert!(secure.ends_with("; Secure"), "{secure}");
        assert!(!secure.contains("Domain"), "{secure}");
        assert!(end_session_cookie(&https).contains("Max-Age=0"));
        let csrf = set_cookie(&https, https.csrf_cookie(), "v", None);
        assert_eq!(
            csrf,
            "__Host-tidings_csrf=v; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
