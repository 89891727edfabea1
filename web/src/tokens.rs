//! Personal access tokens, on their own page under the account: made (named, scoped
//! `read` or `write`; the secret shown this once), listed with when each was last used,
//! and revoked. Only the signed-in user's.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_store::PersonalScope;

use crate::error::for_form;
use crate::session::{CurrentUser, Form};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ACCOUNT_TOKENS, get(page).post(create))
        .route(routes::ACCOUNT_TOKEN_REVOKE, post(revoke))
}

struct TokenRow {
    name: String,
    scope: &'static str,
    created: String,
    used: String,
    revoke: String,
}

#[derive(Template)]
#[template(path = "web/tokens.html")]
struct TokensView {
    nav: Nav,
    csrf: String,
    tokens: Vec<TokenRow>,
    /// A new token's secret: shown this once.
    secret: Option<String>,
    name: String,
    error: Option<String>,
    name_max: usize,
}

async fn view(
    state: &AppState,
    me: &CurrentUser,
    secret: Option<String>,
    name: String,
    error: Option<String>,
) -> Result<TokensView, Error> {
    let tokens = state
        .store
        .personal_tokens(me.id())
        .await?
        .into_iter()
        .map(|t| TokenRow {
            name: t.name,
            scope: t.scope.as_str(),
            created: view::when(t.created_at),
            used: t
                .last_used_at
                .map(view::when)
                .unwrap_or_else(|| "never".into()),
            revoke: routes::ACCOUNT_TOKEN_REVOKE.replace("{id}", &t.id.to_string()),
        })
        .collect();
    Ok(TokensView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        tokens,
        secret,
        name,
        error,
        name_max: tidings_store::TOKEN_NAME_MAX,
    })
}

async fn page(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    view::ok(&view(&state, &me, None, String::new(), None).await?)
}

async fn create(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let name = form.text("name").trim().to_string();
    let made = match form.text("scope").parse::<PersonalScope>() {
        Ok(scope) => for_form(
            state
                .store
                .create_personal_token(me.id(), &name, scope)
                .await,
        )?,
        Err(err) => Err((StatusCode::BAD_REQUEST, err.to_string())),
    };
    match made {
        Ok((_, secret)) => view::ok(&view(&state, &me, Some(secret), String::new(), None).await?),
        Err((status, message)) => {
            view::page(status, &view(&state, &me, None, name, Some(message)).await?)
        }
    }
}

async fn revoke(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.revoke_personal_token(me.id(), id).await?;
    Ok(crate::auth::see_other(routes::ACCOUNT_TOKENS))
}
