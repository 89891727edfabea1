//! Destinations: the user's email addresses, and the confirmation page their link points at.
//! The link confirms on POST only: mail scanners prefetch every link in a message, and a GET
//! that changed state would confirm addresses nobody looked at.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_store::{Channel, Destination, NewDestination};

use crate::auth::see_other;
use crate::error::for_form;
use crate::session::{CurrentUser, Form, Visitor};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The destination and confirmation routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::DESTINATIONS, get(list).post(add))
        .route(routes::DESTINATION_DELETE, post(delete))
        .route(routes::CONFIRM, get(confirm_page).post(confirm))
}

/// One destination as a table row.
struct DestinationRow {
    channel: String,
    address: String,
    confirmed: String,
    added: String,
    delete: String,
}

impl From<&Destination> for DestinationRow {
    fn from(d: &Destination) -> Self {
        DestinationRow {
            channel: d.channel.to_string(),
            address: d.address.clone(),
            confirmed: d.confirmed_at.map(view::when).unwrap_or_default(),
            added: view::when(d.created_at),
            delete: routes::destination_delete(d.id),
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
}

async fn render(
    state: &AppState,
    me: &CurrentUser,
    address: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Result<DestinationsView, Error> {
    let destinations = state.store.destinations(me.id()).await?;
    Ok(DestinationsView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        destinations: destinations.iter().map(DestinationRow::from).collect(),
        address: address.to_string(),
        error,
        notice,
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
        channel: Channel::Email,
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
    visitor: Visitor,
    Path(token): Path<String>,
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
    Path(token): Path<String>,
    form: Form,
) -> Result<Response, Error> {
    let destination = state.store.confirm_destination(&token).await?;
    tracing::info!(destination = destination.id, "destination confirmed");
    view::ok(&ConfirmView {
        nav: Nav::visitor(&state, &form.visitor),
        csrf: form.visitor.csrf().to_string(),
        action: String::new(),
        confirmed: Some(destination.address),
    })
}
