//! The signed-in user's overview: the dashboard (destinations, filters, the latest
//! notifications) and the full list of notifications sent to them.

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tidings_store::{Destination, Filter, NotificationView, UnreadableFilter};

use crate::session::CurrentUser;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// How many notifications the dashboard shows.
const DASHBOARD_NOTIFICATIONS: i64 = 10;
/// How many the notifications page shows.
const PAGE_NOTIFICATIONS: i64 = 200;

/// The dashboard and notification routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::HOME, get(dashboard))
        .route(routes::NOTIFICATIONS, get(notifications))
}

/// One notification as a table row.
pub(crate) struct NotificationRow {
    pub topic: String,
    pub summary: String,
    /// The why-page for its message: which filter decided, and why.
    pub why: String,
    pub address: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
    pub filters: String,
    pub queued: String,
    pub sent: String,
}

impl From<NotificationView> for NotificationRow {
    fn from(n: NotificationView) -> Self {
        NotificationRow {
            filters: view::filter_names(&n.filters),
            queued: view::when(n.created_at),
            sent: view::when_opt(n.sent_at),
            last_error: n.last_error.unwrap_or_default(),
            why: routes::filter_why(&n.msg_id),
            topic: n.topic,
            summary: n.summary,
            address: n.address,
            status: n.status,
            attempts: n.attempts,
        }
    }
}

/// One filter as a table row.
pub(crate) struct FilterRow {
    pub link: String,
    pub name: String,
    pub condition: String,
    pub enabled: bool,
    pub destinations: String,
    /// Its own digest's schedule, when it gathers one.
    pub digest: Option<String>,
    /// Why it is quarantined, if it is (it matches nothing until it is saved again).
    pub quarantine: Option<String>,
}

impl FilterRow {
    pub(crate) fn new(filter: &Filter, destinations: &[Destination]) -> FilterRow {
        let names: Vec<&str> = filter
            .destination_ids
            .iter()
            .filter_map(|id| destinations.iter().find(|d| d.id == *id))
            .map(|d| d.address.as_str())
            .collect();
        FilterRow {
            link: routes::filter(filter.id),
            name: filter.name.clone(),
            condition: filter.condition.to_string(),
            enabled: filter.enabled,
            destinations: names.join(", "),
            digest: filter.delivery.policy().map(|p| p.describe()),
            quarantine: filter.quarantine.as_ref().map(|q| q.reason.clone()),
        }
    }
}

/// A filter whose stored row could not be read: its owner is told why, and where to edit
/// or delete it.
pub(crate) struct UnreadableRow {
    pub link: String,
    pub delete: String,
    pub name: String,
    pub reason: String,
}

impl From<&UnreadableFilter> for UnreadableRow {
    fn from(filter: &UnreadableFilter) -> Self {
        UnreadableRow {
            link: routes::filter(filter.id),
            delete: routes::filter_delete(filter.id),
            name: filter.name.clone(),
            reason: filter.reason.clone(),
        }
    }
}

/// A destination on the dashboard: what it is and whether notifications reach it.
struct DestinationState {
    channel: String,
    address: String,
    /// "confirmed", "waiting for confirmation", or why it was paused.
    state: String,
    /// Whether that state stops notifications.
    stopped: bool,
}

impl From<&Destination> for DestinationState {
    fn from(d: &Destination) -> Self {
        let (state, stopped) = match (&d.disabled_reason, d.is_confirmed()) {
            (Some(reason), _) => (format!("paused: {reason}"), true),
            (None, true) => ("confirmed".to_string(), false),
            (None, false) => ("waiting for confirmation".to_string(), true),
        };
        DestinationState {
            channel: d.channel.to_string(),
            address: d.address.clone(),
            state,
            stopped,
        }
    }
}

/// The window the dashboard counts each filter's notifications over: 7 days.
const WEEK_MS: i64 = 7 * 86_400_000;

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct DashboardView {
    nav: Nav,
    username: String,
    destinations: Vec<DestinationState>,
    /// Each filter and how many notifications it caused that were sent in the last 7 days.
    filters: Vec<(FilterRow, u64)>,
    /// Whether those counts stopped at the most rows read.
    counts_capped: bool,
    unreadable: Vec<UnreadableRow>,
    notifications: Vec<NotificationRow>,
    /// When the user's pause of everything ends, if they paused.
    paused_until: Option<String>,
    csrf: String,
    /// Default filters the user has neither added nor dismissed: (id, name, condition).
    offered: Vec<(i64, String, String)>,
}

async fn dashboard(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    let destinations = state.store.destinations(me.id()).await?;
    let filters = state.store.filters(me.id()).await?;
    let notifications = state
        .store
        .notifications(me.id(), DASHBOARD_NOTIFICATIONS)
        .await?;
    let sent = state
        .store
        .sent_per_filter(me.id(), tidings_store::now_ms() - WEEK_MS)
        .await?;
    let offered = state
        .store
        .offered_default_filters(me.id())
        .await?
        .into_iter()
        .map(|t| (t.id, t.name, t.condition.to_string()))
        .collect();
    view::ok(&DashboardView {
        nav: Nav::user(&state, &me),
        csrf: me.visitor.csrf().to_string(),
        offered,
        username: me.user.username.clone(),
        filters: filters
            .filters
            .iter()
            .map(|f| {
                let count = sent.by_filter.get(&f.id).copied().unwrap_or(0);
                (FilterRow::new(f, &destinations), count)
            })
            .collect(),
        counts_capped: sent.capped,
        unreadable: filters.unreadable.iter().map(Into::into).collect(),
        destinations: destinations.iter().map(Into::into).collect(),
        notifications: notifications.into_iter().map(Into::into).collect(),
        paused_until: state.store.paused_until(me.id()).await?.map(view::when),
    })
}

#[derive(Template)]
#[template(path = "web/notifications.html")]
struct NotificationsView {
    nav: Nav,
    notifications: Vec<NotificationRow>,
}

async fn notifications(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    let notifications = state
        .store
        .notifications(me.id(), PAGE_NOTIFICATIONS)
        .await?;
    view::ok(&NotificationsView {
        nav: Nav::user(&state, &me),
        notifications: notifications.into_iter().map(Into::into).collect(),
    })
}
