//! Users: search by name, page through, disable and enable, and see one user's filters
//! (read-only: they are the user's to change).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use tidings_store::User;

use super::Admin;
use crate::auth::see_other;
use crate::home::FilterRow;
use crate::session::Form;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// Users per page.
pub(crate) const PAGE_USERS: i64 = 50;

#[derive(serde::Deserialize, Default)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<i64>,
}

/// One user in the list.
pub(crate) struct UserRow {
    pub link: String,
    pub username: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created: String,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> Self {
        UserRow {
            link: routes::admin_user(u.id),
            username: u.username.clone(),
            is_admin: u.is_admin,
            disabled: u.disabled,
            created: view::when(u.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "web/admin_users.html")]
struct UsersView {
    nav: Nav,
    q: String,
    rows: Vec<UserRow>,
    total: i64,
    page: i64,
    pages: i64,
    /// Links to the previous and next pages, when there are any.
    previous: Option<String>,
    next: Option<String>,
}

/// A page of the list, keeping the search.
fn page_link(q: &str, page: i64) -> String {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("q", q)
        .append_pair("page", &page.to_string())
        .finish();
    format!("{}?{query}", routes::ADMIN_USERS)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Admin(me): Admin,
    Query(search): Query<Search>,
) -> Result<Response, Error> {
    let page = search.page.unwrap_or(1).max(1);
    let (users, total) = state
        .store
        .search_users(&search.q, (page - 1) * PAGE_USERS, PAGE_USERS)
        .await?;
    let pages = ((total + PAGE_USERS - 1) / PAGE_USERS).max(1);
    view::ok(&UsersView {
        nav: Nav::user(&state, &me),
        rows: users.iter().map(UserRow::from).collect(),
        total,
        page,
        pages,
        previous: (page > 1).then(|| page_link(&search.q, page - 1)),
        next: (page < pages).then(|| page_link(&search.q, page + 1)),
        q: search.q,
    })
}

#[derive(Template)]
#[template(path = "web/admin_user.html")]
struct UserView {
    nav: Nav,
    csrf: String,
    user: UserRow,
    /// Where the disable or enable button posts, and what it says.
    toggle: (String, &'static str),
    is_me: bool,
    filters: Vec<FilterRow>,
    unreadable: Vec<(String, String)>,
    destinations: Vec<(String, String, bool)>,
    error: Option<String>,
}

async fn user_view(
    state: &AppState,
    me: &crate::session::CurrentUser,
    user: &User,
    error: Option<String>,
) -> Result<UserView, Error> {
    let destinations = state.store.destinations(user.id).await?;
    let filters = state.store.filters(user.id).await?;
    Ok(UserView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        user: UserRow::from(user),
        toggle: if user.disabled {
            (routes::admin_user_enable(user.id), "Enable")
        } else {
            (routes::admin_user_disable(user.id), "Disable")
        },
        is_me: user.id == me.id(),
        filters: filters
            .filters
            .iter()
            .map(|f| FilterRow::new(f, &destinations))
            .collect(),
        unreadable: filters
            .unreadable
            .iter()
            .map(|u| (u.name.clone(), u.reason.clone()))
            .collect(),
        destinations: destinations
            .iter()
            .map(|d| (d.channel.to_string(), d.address.clone(), d.is_confirmed()))
            .collect(),
        error,
    })
}

pub(crate) async fn show(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let user = state.store.user(id).await?;
    view::ok(&user_view(&state, &me, &user, None).await?)
}

async fn set_disabled(
    state: AppState,
    me: crate::session::CurrentUser,
    id: i64,
    disabled: bool,
) -> Result<Response, Error> {
    let user = state.store.user(id).await?;
    if disabled && user.id == me.id() {
        let message = "You cannot disable your own account: ask another admin, or use \
                       `tidings user disable`."
            .to_string();
        let view = user_view(&state, &me, &user, Some(message)).await?;
        return view::page(axum::http::StatusCode::BAD_REQUEST, &view);
    }
    state
        .store
        .set_user_disabled(&user.username, disabled)
        .await?;
    tracing::info!(admin = %me.user.username, username = %user.username, disabled, "account disabled or enabled");
    Ok(see_other(&routes::admin_user(id)))
}

pub(crate) async fn disable(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    set_disabled(state, me, id, true).await
}

pub(crate) async fn enable(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    set_disabled(state, me, id, false).await
}
