//! Destinations: the user's email addresses, and the confirmation page their link points at.
//! The link confirms on POST only: mail scanners prefetch every link in a message, and a GET
//! that changed state would confirm addresses nobody looked at. The link's token is checked
//! for shape before anything is rendered ([`LinkToken`]) and the form posts back to the
//! route built from it, never to the path as requested.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_store::{ChannelKind, ConfirmationMail, Destination, NewDestination, OutboxStatus};

use crate::auth::see_other;
use crate::error::for_form;
use crate::routes::LinkToken;
use crate::session::{CurrentUser, Form, Visitor};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The destination and confirmation routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::DESTINATIONS, get(list).post(add))
        .route(routes::DESTINATION_DELETE, post(delete))
        .route(routes::DESTINATION_RESEND, post(resend))
        .route(routes::CONFIRM, get(confirm_page).post(confirm))
}

/// One destination as a table row.
struct DestinationRow {
    channel: String,
    address: String,
    confirmed: String,
    /// For an unconfirmed one: what became of its confirmation mail.
    waiting: String,
    /// The confirmation mail failed for good: the address needs fixing or a resend.
    failed: bool,
    added: String,
    delete: String,
    resend: String,
}

impl DestinationRow {
    fn new(d: &Destination, mails: &[ConfirmationMail]) -> Self {
        let mail = mails.iter().find(|m| m.destination_id == d.id);
        let (waiting, failed) = match mail {
            _ if d.is_confirmed() => (String::new(), false),
            Some(m) if m.status == OutboxStatus::Dead => (
                format!(
                    "the confirmation mail could not be delivered: {}",
                    m.last_error.as_deref().unwrap_or("refused")
                ),
                true,
            ),
            Some(m) if m.status == OutboxStatus::Sent => (
                format!(
                    "confirmation link sent {}; follow it to confirm",
                    view::when(m.queued_at)
                ),
                false,
            ),
            Some(m) if m.last_error.is_some() => (
                format!(
                    "sending the confirmation mail; last attempt failed: {}",
                    m.last_error.as_deref().unwrap_or_default()
                ),
                false,
            ),
            _ => ("waiting for the confirmation mail to be sent".into(), false),
        };
        DestinationRow {
            channel: d.channel.to_string(),
            address: d.address.clone(),
            confirmed: d.confirmed_at.map(view::when).unwrap_or_default(),
            waiting,
            failed,
            added: view::when(d.created_at),
            delete: routes::destination_delete(d.id),
            resend: routes::destination_resend(d.id),
        }
    }
}

#[derive(Template)]
#[template(path = "web/destinations.html")]
struct DestinationsView {
    nav: Nav,
    csrf: String,
    destinations: Vec<DestinationRow>,
    address: String,
    error: Option<String>,
    notice: Option<String>,
    per_address: i64,
    per_user: i64,
}

async fn render(
    state: &AppState,
    me: &CurrentUser,
    address: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Result<DestinationsView, Error> {
    let destinations = state.store.destinations(me.id()).await?;
    let mails = state.store.confirmation_mails(me.id()).await?;
    Ok(DestinationsView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        destinations: destinations
            .iter()
            .map(|d| DestinationRow::new(d, &mails))
            .collect(),
        address: address.to_string(),
        error,
        notice,
        per_address: tidings_store::PER_ADDRESS,
        per_user: tidings_store::PER_USER,
    })
}

async fn list(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    view::ok(&render(&state, &me, "", None, None).await?)
}

async fn add(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let address = form.text("address").trim();
    let new = NewDestination {
        user_id: me.id(),
        channel: ChannelKind::Email,
        address,
        confirmed: false,
    };
    match for_form(state.store.add_destination(new).await)? {
        Ok(added) => {
            // Tell the sender a confirmation is queued.
            state.wake.notify_one();
            let notice = format!(
                "We sent a confirmation link to {}. Nothing else is sent there until you follow it.",
                added.address
            );
            view::ok(&render(&state, &me, "", None, Some(notice)).await?)
        }
        Err((status, message)) => view::page(
            status,
            &render(&state, &me, address, Some(message), None).await?,
        ),
    }
}

/// Another confirmation mail, within the same limits as adding the address.
async fn resend(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    match for_form(state.store.resend_confirmation(me.id(), id).await)? {
        Ok(destination) => {
            state.wake.notify_one();
            let notice = format!(
                "We sent a new confirmation link to {}; earlier links no longer work.",
                destination.address
            );
            view::ok(&render(&state, &me, "", None, Some(notice)).await?)
        }
        Err((status, message)) => {
            view::page(status, &render(&state, &me, "", Some(message), None).await?)
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.delete_destination(me.id(), id).await?;
    Ok(see_other(routes::DESTINATIONS))
}

#[derive(Template)]
#[template(path = "web/confirm.html")]
struct ConfirmView {
    nav: Nav,
    csrf: String,
    action: String,
    confirmed: Option<String>,
}

async fn confirm_page(
    State(state): State<AppState>,
    token: LinkToken,
    visitor: Visitor,
) -> Result<Response, Error> {
    view::ok(&ConfirmView {
        nav: Nav::visitor(&state, &visitor),
        csrf: visitor.csrf().to_string(),
        action: routes::confirm(&token),
        confirmed: None,
    })
}

/// The token alone authorises this (it was mailed to the address), so no sign-in is needed:
/// people often open the mail on another device.
async fn confirm(
    State(state): State<AppState>,
    token: LinkToken,
    form: Form,
) -> Result<Response, Error> {
    let destination = state.store.confirm_destination(token.as_str()).await?;
    tracing::info!(destination = destination.id, "destination confirmed");
    view::ok(&ConfirmView {
        nav: Nav::visitor(&state, &form.visitor),
        csrf: form.visitor.csrf().to_string(),
        action: String::new(),
        confirmed: Some(destination.address),
    })
}
