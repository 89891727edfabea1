//! Local accounts: sign-up, sign-in and sign-out, and the account page (password change,
//! sign out everywhere). Sign-in and sign-up start a fresh session
//! (ending any other this browser had) and sign-out ends it, so a token seen before either
//! is worthless after it. A failed sign-in says the same thing whether the username exists
//! or not (and costs the same hash). Tries are throttled per account and per client
//! address before any password is hashed: a refused one is answered 429 with `Retry-After`
//! and a page saying when to try again.

use std::time::Duration;

use askama::Template;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{extract::State, Router};

use crate::error::for_form;
use crate::session::{CurrentUser, Form, Visitor};
use crate::throttle::{retry_after_secs, ClientAddress};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The sign-in and sign-up routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::SIGNUP, get(signup_page).post(signup))
        .route(routes::SIGNIN, get(signin_page).post(signin))
        .route(routes::SIGNOUT, post(signout))
        .route(routes::ACCOUNT, get(account_page))
        .route(routes::ACCOUNT_PASSWORD, post(change_password))
        .route(routes::ACCOUNT_SIGNOUT_EVERYWHERE, post(signout_everywhere))
        .route(routes::ACCOUNT_EXPORT, get(export))
        .route(routes::ACCOUNT_DELETE, post(delete_account))
}

#[derive(Template)]
#[template(path = "web/account.html")]
struct AccountView {
    nav: Nav,
    csrf: String,
    username: String,
    min_chars: usize,
    notice: Option<String>,
    error: Option<String>,
    /// The provider's name, when the account signs in through it (and has no password).
    provider: Option<String>,
}

/// The name of the provider the account signs in through, if it does.
fn provider_of(state: &AppState, user: &tidings_store::User) -> Option<String> {
    user.from_provider.then(|| {
        state
            .oidc
            .as_ref()
            .map_or("your sign-in provider", |p| p.name())
            .to_string()
    })
}

fn account_view(
    state: &AppState,
    me: &CurrentUser,
    notice: Option<String>,
    error: Option<String>,
) -> AccountView {
    AccountView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        username: me.user.username.clone(),
        min_chars: tidings_store::PASSWORD_MIN_CHARS,
        notice,
        error,
        provider: provider_of(state, &me.user),
    }
}

async fn account_page(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    view::ok(&account_view(&state, &me, None, None))
}

/// A new password, once the current one is given: throttled as a sign-in is (a stolen
/// session must not become a way to guess the password), and every other session ends.
async fn change_password(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let refuse = |status: StatusCode, message: String| {
        view::page(status, &account_view(&state, &me, None, Some(message)))
    };
    if let Err(wait) = state.throttle.sign_in(&me.user.username, address) {
        tracing::warn!(username = %me.user.username, %address, "password change throttled");
        return throttled(wait, |message| {
            account_view(&state, &me, None, Some(message))
        });
    }
    let password = form.text("password");
    if password != form.text("password2") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The two new passwords differ.".into(),
        );
    }
    let changed = state
        .store
        .change_password(me.id(), form.text("current_password"), password)
        .await;
    match for_form(changed)? {
        Ok(()) => {
            let ended = me.visitor.end_other_sessions(&state).await?;
            tracing::info!(username = %me.user.username, ended, "password changed");
            let notice = match ended {
                0 => "Your password is changed.".to_string(),
                1 => "Your password is changed, and your other session is signed out.".into(),
                n => {
                    format!("Your password is changed, and your {n} other sessions are signed out.")
                }
            };
            view::ok(&account_view(&state, &me, Some(notice), None))
        }
        Err((status, message)) => refuse(status, message),
    }
}

/// How many of a user's latest notifications an export lists.
const EXPORT_NOTIFICATIONS: i64 = 10_000;

/// Everything stored about the signed-in user, as JSON to keep or to move elsewhere: the
/// account, schedule, destinations (never a webhook's secret), filters (conditions as
/// text), follows, mutes and the latest notifications.
async fn export(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    let body = export_json(&state, &me.user).await?;
    let text =
        serde_json::to_string_pretty(&body).map_err(|e| Error::Internal(format!("export: {e}")))?;
    let disposition = format!("attachment; filename=\"tidings-{}.json\"", me.user.username);
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response())
}

/// The export of `user` (the account page's download and `GET /api/v1/export`).
pub(crate) async fn export_json(
    state: &AppState,
    user: &tidings_store::User,
) -> Result<serde_json::Value, Error> {
    let store = &state.store;
    let id = user.id;
    let schedule = store.schedule(id).await?;
    let filters = store.filters(id).await?;
    let follows = store.follows(id).await?;
    Ok(serde_json::json!({
        "exported_at": tidings_store::now_ms(),
        "account": {
            "username": user.username,
            "is_admin": user.is_admin,
            "created_at": user.created_at,
            "time_zone": schedule.time_zone(),
            "quiet_hours": schedule.quiet().map(|(from, to)| [from.to_string(), to.to_string()]),
        },
        "destinations": store.destinations(id).await?,
        "filters": filters.filters.iter().map(|f| serde_json::json!({
            "id": f.id,
            "name": f.name,
            "condition": f.condition.to_string(),
            "delivery": f.delivery,
            "enabled": f.enabled,
            "destination_ids": f.destination_ids,
            "created_at": f.created_at,
            "updated_at": f.updated_at,
        })).collect::<Vec<_>>(),
        "unreadable_filters": filters.unreadable,
        "follows": follows.iter().map(|(kind, name)| serde_json::json!({
            "kind": kind.as_str(),
            "name": name,
        })).collect::<Vec<_>>(),
        "mutes": store.active_mutes(Some(id)).await?,
        "default_delivery": store.user_default_delivery(id).await?,
        "notifications": store.notifications(id, EXPORT_NOTIFICATIONS).await?,
    }))
}

/// Deletes the account and everything of it, once the password and the username are
/// given (a deliberate act, not a stray click); then this browser is signed out.
async fn delete_account(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    if let Err(wait) = state.throttle.sign_in(&me.user.username, address) {
        return throttled(wait, |message| {
            account_view(&state, &me, None, Some(message))
        });
    }
    if form.text("confirm").trim() != me.user.username {
        let message = format!(
            "Type your username, {}, to confirm that the account goes.",
            me.user.username
        );
        return view::page(
            StatusCode::BAD_REQUEST,
            &account_view(&state, &me, None, Some(message)),
        );
    }
    let deleted = state
        .store
        .delete_user(me.id(), form.text("current_password"))
        .await;
    match for_form(deleted)? {
        Ok(()) => {
            tracing::info!(username = %me.user.username, "account deleted by its owner");
            form.visitor.sign_out(&state).await?;
            Ok(see_other(routes::SIGNIN))
        }
        Err((status, message)) => {
            view::page(status, &account_view(&state, &me, None, Some(message)))
        }
    }
}

/// Signs the user out of every browser, this one too.
async fn signout_everywhere(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    form.visitor.sign_out_everywhere(&state).await?;
    tracing::info!(username = %me.user.username, "signed out everywhere");
    Ok(see_other(routes::SIGNIN))
}

#[derive(Template)]
#[template(path = "web/signup.html")]
struct SignupView {
    nav: Nav,
    csrf: String,
    username: String,
    error: Option<String>,
    min_chars: usize,
    /// Local sign-up is off because accounts come from this provider.
    provider_only: Option<String>,
}

#[derive(Template)]
#[template(path = "web/signin.html")]
struct SigninView {
    nav: Nav,
    csrf: String,
    username: String,
    error: Option<String>,
    /// A fresh hub: no account yet, so the page says how to make the first.
    first_run: bool,
    /// The sign-in provider's name, for its button.
    provider: Option<String>,
    /// Why the provider could not be reached last time, if it could not.
    provider_unreachable: Option<String>,
}

fn signup_view(
    state: &AppState,
    visitor: &Visitor,
    username: &str,
    error: Option<String>,
) -> SignupView {
    SignupView {
        nav: Nav::visitor(state, visitor),
        csrf: visitor.csrf().to_string(),
        username: username.to_string(),
        error,
        min_chars: tidings_store::PASSWORD_MIN_CHARS,
        provider_only: None,
    }
}

fn signin_view(
    state: &AppState,
    visitor: &Visitor,
    username: &str,
    error: Option<String>,
) -> SigninView {
    SigninView {
        nav: Nav::visitor(state, visitor),
        csrf: visitor.csrf().to_string(),
        username: username.to_string(),
        error,
        first_run: false,
        provider: state.oidc.as_ref().map(|p| p.name().to_string()),
        provider_unreachable: state.oidc.as_ref().and_then(|p| p.unreachable()),
    }
}

/// A form page again with 429, `Retry-After` and, in `error`, when to try again.
fn throttled<V: Template>(
    wait: Duration,
    view: impl FnOnce(String) -> V,
) -> Result<Response, Error> {
    let secs = retry_after_secs(wait).max(1);
    let message = format!("Too many attempts. Try again in {secs} seconds.");
    let mut response = view::page(StatusCode::TOO_MANY_REQUESTS, &view(message))?;
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    Ok(response)
}

/// The sign-up page when local sign-up is off because a sign-in provider is configured: it
/// says so and points to the provider (403 for a POST).
fn provider_only(
    state: &AppState,
    visitor: &Visitor,
    status: StatusCode,
) -> Option<Result<Response, Error>> {
    let provider = state.oidc.as_ref()?;
    let mut view = signup_view(state, visitor, "", None);
    view.provider_only = Some(provider.name().to_string());
    Some(view::page(status, &view))
}

async fn signup_page(State(state): State<AppState>, visitor: Visitor) -> Result<Response, Error> {
    if !state.config.signup_allowed() {
        return provider_only(&state, &visitor, StatusCode::OK).unwrap_or(Err(Error::NotFound));
    }
    view::ok(&signup_view(&state, &visitor, "", None))
}

async fn signup(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    form: Form,
) -> Result<Response, Error> {
    if !state.config.signup_allowed() {
        tracing::info!(%address, "local sign-up refused: it is off");
        return provider_only(&state, &form.visitor, StatusCode::FORBIDDEN)
            .unwrap_or(Err(Error::NotFound));
    }
    let username = form.text("username").trim();
    if let Err(wait) = state.throttle.sign_up(address) {
        tracing::warn!(%address, "sign-up throttled");
        return throttled(wait, |message| {
            signup_view(&state, &form.visitor, username, Some(message))
        });
    }
    let password = form.text("password");
    if password != form.text("password2") {
        let view = signup_view(
            &state,
            &form.visitor,
            username,
            Some("The two passwords differ.".into()),
        );
        return view::page(StatusCode::BAD_REQUEST, &view);
    }
    match for_form(
        state
            .store
            .create_user(username, Some(password), false)
            .await,
    )? {
        Ok(user) => {
            tracing::info!(username = %user.username, "account created");
            form.visitor.sign_in(&state, user.id).await?;
            Ok(see_other(routes::HOME))
        }
        Err((status, message)) => view::page(
            status,
            &signup_view(&state, &form.visitor, username, Some(message)),
        ),
    }
}

async fn signin_page(State(state): State<AppState>, visitor: Visitor) -> Result<Response, Error> {
    if visitor.user_id().is_some() {
        return Ok(see_other(routes::HOME));
    }
    let mut view = signin_view(&state, &visitor, "", None);
    view.first_run = !state.store.any_users().await?;
    view::ok(&view)
}

async fn signin(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    form: Form,
) -> Result<Response, Error> {
    let username = form.text("username").trim();
    if let Err(wait) = state.throttle.sign_in(username, address) {
        tracing::warn!(%username, %address, "sign-in throttled");
        return throttled(wait, |message| {
            signin_view(&state, &form.visitor, username, Some(message))
        });
    }
    match state
        .store
        .authenticate(username, form.text("password"))
        .await?
    {
        Some(user) => {
            form.visitor.sign_in(&state, user.id).await?;
            Ok(see_other(routes::HOME))
        }
        None => {
            tracing::info!(%username, %address, "failed sign-in");
            let message = "Wrong username or password.".to_string();
            view::page(
                StatusCode::BAD_REQUEST,
                &signin_view(&state, &form.visitor, username, Some(message)),
            )
        }
    }
}

async fn signout(State(state): State<AppState>, form: Form) -> Result<Response, Error> {
    form.visitor.sign_out(&state).await?;
    Ok(see_other(routes::SIGNIN))
}

/// A 303 redirect: after a POST, the browser GETs the target.
pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
