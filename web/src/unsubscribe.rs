//! One-click unsubscribe (RFC 8058). Every notification mail carries a link with its own
//! secret (a server-key HMAC of the outbox uid; the uid itself is public, it is the
//! Message-ID). GET shows which filters the link would switch off; POST switches them off.
//! The POST is the one form exempt from sessions and CSRF: mail clients send
//! `List-Unsubscribe=One-Click` without cookies, and knowing the secret is the proof. A
//! malformed token is 404 before anything is looked up; an expired link is 410 with a page
//! that says so.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tidings_store::UnsubscribeTarget;

use crate::routes::LinkToken;
use crate::session::Visitor;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The unsubscribe route.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route(routes::UNSUBSCRIBE, get(show).post(unsubscribe))
}

#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
struct UnsubscribeView {
    nav: Nav,
    action: String,
    address: String,
    filters: Vec<String>,
    done: bool,
}

fn names(target: &UnsubscribeTarget) -> Vec<String> {
    target
        .filters
        .iter()
        .map(|(_, name)| name.clone())
        .collect()
}

async fn show(
    State(state): State<AppState>,
    token: LinkToken,
    visitor: Visitor,
) -> Result<Response, Error> {
    let target = state.store.unsubscribe_target(token.as_str()).await?;
    view::ok(&UnsubscribeView {
        nav: Nav::visitor(&state, &visitor),
        action: routes::unsubscribe(&token),
        filters: names(&target),
        address: target.address,
        done: false,
    })
}

/// Takes no session and no form fields: whatever the body says, a POST to the link is the
/// unsubscribe request (RFC 8058 section 3.2).
async fn unsubscribe(State(state): State<AppState>, token: LinkToken) -> Result<Response, Error> {
    let target = state.store.unsubscribe(token.as_str()).await?;
    tracing::info!(
        user = target.user_id,
        filters = target.filters.len(),
        "unsubscribed by link"
    );
    view::ok(&UnsubscribeView {
        nav: Nav::hidden(),
        action: String::new(),
        filters: names(&target),
        address: target.address,
        done: true,
    })
}
