//! One-click unsubscribe (RFC 8058), mutes and undo. Every notification mail carries a
//! link with its own secret (a server-key HMAC of the outbox uid; the uid itself is public,
//! it is the Message-ID). GET shows which filters the link would switch off, and what the
//! notification is about that can be muted for 30 days instead (its thread: the update,
//! pull request or build; its packages). POST to the link switches the filters off: the one
//! form exempt from sessions and CSRF, since mail clients send `List-Unsubscribe=One-Click`
//! without cookies and knowing the secret is the proof. The page's other forms (mute, undo)
//! carry the visitor's CSRF token as well as the link's secret. A malformed token is 404
//! before anything is looked up; an expired link is 410 with a page that says so.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_store::{Mute, UnsubscribeTarget, MUTE_MS};

use crate::auth::see_other;
use crate::routes::LinkToken;
use crate::session::{CurrentUser, Form, Visitor};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The unsubscribe routes, and ending a mute from the filters page.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::UNSUBSCRIBE, get(show).post(unsubscribe))
        .route(routes::UNSUBSCRIBE_MUTE, post(mute))
        .route(routes::UNSUBSCRIBE_UNMUTE, post(unmute))
        .route(routes::UNSUBSCRIBE_UNDO, post(undo))
        .route(routes::MUTE_DELETE, post(end_mute))
}

/// What the page says happened.
#[derive(Default)]
enum Done {
    /// Nothing yet: the choices.
    #[default]
    Nothing,
    /// The filters were switched off.
    Unsubscribed,
    /// The filters are on again.
    Resubscribed,
    /// Muted, until then (the mute's id, for undo).
    Muted(Mute),
    /// The mute was ended.
    Unmuted,
}

#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
struct UnsubscribeView {
    nav: Nav,
    csrf: String,
    action: String,
    mute_action: String,
    unmute_action: String,
    undo_action: String,
    address: String,
    filters: Vec<String>,
    /// What can be muted: (index, label).
    mutes: Vec<(usize, String)>,
    done: Done,
    /// The link's filters are already off (undo is offered).
    off: bool,
    /// A muted one's label and end, for the page.
    muted: Option<(String, String, i64)>,
}

fn view_of(
    state: &AppState,
    visitor: Option<&Visitor>,
    token: &LinkToken,
    target: UnsubscribeTarget,
    done: Done,
) -> UnsubscribeView {
    let muted = match &done {
        Done::Muted(m) => Some((m.label.clone(), view::when(m.until), m.id)),
        _ => None,
    };
    UnsubscribeView {
        nav: visitor.map_or_else(Nav::hidden, |v| Nav::visitor(state, v)),
        csrf: visitor.map(|v| v.csrf().to_string()).unwrap_or_default(),
        off: false,
        action: routes::unsubscribe(token),
        mute_action: routes::unsubscribe_action(routes::UNSUBSCRIBE_MUTE, token),
        unmute_action: routes::unsubscribe_action(routes::UNSUBSCRIBE_UNMUTE, token),
        undo_action: routes::unsubscribe_action(routes::UNSUBSCRIBE_UNDO, token),
        filters: target
            .filters
            .iter()
            .map(|(_, name)| name.clone())
            .collect(),
        mutes: target
            .mute_options
            .iter()
            .enumerate()
            .map(|(i, o)| (i, o.label.clone()))
            .collect(),
        address: target.address,
        done,
        muted,
    }
}

async fn show(
    State(state): State<AppState>,
    token: LinkToken,
    visitor: Visitor,
) -> Result<Response, Error> {
    let target = state.store.unsubscribe_target(token.as_str()).await?;
    // Filters this link already switched off: the page offers to switch them back on.
    let ids: Vec<i64> = target.filters.iter().map(|(id, _)| *id).collect();
    let off = !ids.is_empty()
        && state
            .store
            .filters(target.user_id)
            .await?
            .filters
            .iter()
            .filter(|f| ids.contains(&f.id))
            .all(|f| !f.enabled);
    let mut page = view_of(&state, Some(&visitor), &token, target, Done::Nothing);
    page.off = off;
    view::ok(&page)
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
    // No session for a mail client: the page offers undo through the link's own page.
    let mut page = view_of(&state, None, &token, target, Done::Unsubscribed);
    page.nav = Nav::hidden();
    view::ok(&page)
}

/// Switches the link's filters back on.
async fn undo(
    State(state): State<AppState>,
    token: LinkToken,
    form: Form,
) -> Result<Response, Error> {
    let target = state.store.unsubscribe_target(token.as_str()).await?;
    let ids: Vec<i64> = target.filters.iter().map(|(id, _)| *id).collect();
    state.store.enable_filters(target.user_id, &ids).await?;
    view::ok(&view_of(
        &state,
        Some(&form.visitor),
        &token,
        target,
        Done::Resubscribed,
    ))
}

/// Mutes one of the things the notification is about, picked by its place in the list the
/// page showed (computed again from the link: nothing typed is trusted).
async fn mute(
    State(state): State<AppState>,
    token: LinkToken,
    form: Form,
) -> Result<Response, Error> {
    let target = state.store.unsubscribe_target(token.as_str()).await?;
    let option = form
        .text("option")
        .parse::<usize>()
        .ok()
        .and_then(|i| target.mute_options.get(i))
        .ok_or_else(|| Error::BadRequest("option: not one of the choices on the page".into()))?;
    let until = tidings_store::now_ms() + MUTE_MS;
    let muted = state.store.mute(target.user_id, option, until).await?;
    tracing::info!(user = target.user_id, kind = ?muted.kind, "muted by link");
    view::ok(&view_of(
        &state,
        Some(&form.visitor),
        &token,
        target,
        Done::Muted(muted),
    ))
}

/// Ends a mute made on this page (the link's owner's only).
async fn unmute(
    State(state): State<AppState>,
    token: LinkToken,
    form: Form,
) -> Result<Response, Error> {
    let target = state.store.unsubscribe_target(token.as_str()).await?;
    let id = form
        .text("mute")
        .parse::<i64>()
        .map_err(|_| Error::BadRequest("mute: not a mute's id".into()))?;
    state.store.unmute(target.user_id, id).await?;
    view::ok(&view_of(
        &state,
        Some(&form.visitor),
        &token,
        target,
        Done::Unmuted,
    ))
}

/// Ends one of the signed-in user's mutes, from the filters page.
async fn end_mute(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.unmute(me.id(), id).await?;
    Ok(see_other(routes::FILTERS))
}
