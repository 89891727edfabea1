//! "My packages": what the signed-in user's filters' variables hold and where each comes
//! from (`$me`, `$my_groups`, `$my_packages` from the ownership data an admin imports;
//! `$followed_users` and `$followed_packages` from the user's own follows), and the follows
//! themselves, added and removed here.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_store::FollowKind;

use crate::auth::see_other;
use crate::error::for_form;
use crate::session::{CurrentUser, Form};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The page and its forms.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::ME, get(page))
        .route(routes::FOLLOWS, post(follow))
        .route(routes::FOLLOW_DELETE, post(unfollow))
}

/// One of `$my_groups` and where it comes from.
struct GroupRow {
    name: String,
    /// "from the ownership data", "from your sign-in provider", or both.
    source: &'static str,
}

/// One of `$my_packages` and how it is the user's.
struct PackageRow {
    name: String,
    /// "yours" or "through the group …".
    source: String,
}

#[derive(Template)]
#[template(path = "web/me.html")]
struct MeView {
    nav: Nav,
    csrf: String,
    username: String,
    groups: Vec<GroupRow>,
    packages: Vec<PackageRow>,
    /// (kind, name) of each follow.
    follows: Vec<(&'static str, String)>,
    error: Option<String>,
}

async fn view(state: &AppState, me: &CurrentUser, error: Option<String>) -> Result<MeView, Error> {
    // By group, imported before the provider's (a group may be both).
    let mut groups: Vec<GroupRow> = Vec::new();
    for (name, provider) in state.store.group_sources(&me.user.username).await? {
        let source = if provider {
            "from your sign-in provider"
        } else {
            "from the ownership data"
        };
        match groups.last_mut() {
            Some(last) if last.name == name => {
                last.source = "from the ownership data and your sign-in provider";
            }
            _ => groups.push(GroupRow { name, source }),
        }
    }
    let packages = state
        .store
        .package_sources(&me.user.username)
        .await?
        .into_iter()
        .map(|(name, via)| PackageRow {
            name,
            source: match via {
                None => "yours".to_string(),
                Some(group) => format!("through the group {group}"),
            },
        })
        .collect();
    let follows = state
        .store
        .follows(me.id())
        .await?
        .into_iter()
        .map(|(kind, name)| (kind.as_str(), name))
        .collect();
    Ok(MeView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        username: me.user.username.clone(),
        groups,
        packages,
        follows,
        error,
    })
}

async fn page(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    view::ok(&view(&state, &me, None).await?)
}

/// The follow a form names: its kind (`user` or `package`) and name.
fn named(form: &Form) -> Result<(FollowKind, String), String> {
    let kind = match form.text("kind") {
        "user" => FollowKind::User,
        "package" => FollowKind::Package,
        other => return Err(format!("kind: {other:?} is neither user nor package")),
    };
    Ok((kind, form.text("name").trim().to_string()))
}

async fn change(
    state: AppState,
    me: CurrentUser,
    form: Form,
    add: bool,
) -> Result<Response, Error> {
    let result = match named(&form) {
        Ok((kind, name)) => {
            let done = if add {
                state.store.follow(me.id(), kind, &name).await
            } else {
                state.store.unfollow(me.id(), kind, &name).await
            };
            for_form(done)?.map(drop)
        }
        Err(message) => Err((StatusCode::BAD_REQUEST, message)),
    };
    match result {
        Ok(()) => Ok(see_other(routes::ME)),
        Err((status, message)) => view::page(status, &view(&state, &me, Some(message)).await?),
    }
}

async fn follow(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    change(state, me, form, true).await
}

async fn unfollow(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    change(state, me, form, false).await
}
