//! The admin pages, all under `/admin`: default filters, users, dead letters, charts, the
//! catalog and the live bus view. Every handler takes an [`Admin`], which answers anyone
//! signed in who is not an admin with 403 (and anyone not signed in with the sign-in page)
//! before the handler runs or a form is read.

mod catalog;
mod charts;
mod dead;
pub(crate) mod defaults;
pub(crate) mod live;
mod users;

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::session::CurrentUser;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

pub use catalog::{CatalogReport, CatalogSkip};
pub(crate) use defaults::{add_offered, dismiss_offered};

/// A signed-in admin.
pub(crate) struct Admin(pub CurrentUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let me = CurrentUser::from_request_parts(parts, state).await?;
        if !me.user.is_admin || me.user.disabled {
            tracing::warn!(username = %me.user.username, path = %parts.uri.path(), "admin page refused");
            return Err(Error::Forbidden);
        }
        Ok(Admin(me))
    }
}

/// The admin routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ADMIN, get(index))
        .route(
            routes::ADMIN_DEFAULTS,
            get(defaults::list).post(defaults::create),
        )
        .route(
            routes::ADMIN_DEFAULT,
            get(defaults::edit).post(defaults::update),
        )
        .route(routes::ADMIN_DEFAULT_DELETE, post(defaults::delete))
        .route(routes::ADMIN_USERS, get(users::list))
        .route(routes::ADMIN_USER, get(users::show))
        .route(routes::ADMIN_USER_DISABLE, post(users::disable))
        .route(routes::ADMIN_USER_ENABLE, post(users::enable))
        .route(routes::ADMIN_DEAD, get(dead::list))
        .route(routes::ADMIN_DEAD_RETRY, post(dead::retry))
        .route(routes::ADMIN_DEAD_DISCARD, post(dead::discard))
        .route(routes::ADMIN_CHARTS, get(charts::page))
        .route(routes::ADMIN_CATALOG, get(catalog::page))
        .route(routes::ADMIN_LIVE, get(live::page))
        .route(routes::ADMIN_LIVE_EVENTS, get(live::events))
        .route(routes::ADMIN_LIVE_JS, get(live::script))
}

#[derive(Template)]
#[template(path = "web/admin.html")]
struct IndexView {
    nav: Nav,
    users: i64,
    defaults: usize,
    dead: i64,
    catalog_entries: usize,
    catalog_skipped: usize,
}

async fn index(State(state): State<AppState>, Admin(me): Admin) -> Result<Response, Error> {
    let (_, users) = state.store.search_users("", 0, 0).await?;
    let defaults = state.store.default_filters().await?.len();
    let dead = state.store.dead_count().await?;
    view::ok(&IndexView {
        nav: Nav::user(&state, &me),
        users,
        defaults,
        dead,
        catalog_entries: state.catalog.entries,
        catalog_skipped: state.catalog.skipped.len(),
    })
}
