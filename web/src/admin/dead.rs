//! Dead letters: outbox rows that failed for good (destination kind, owner, error,
//! attempts, when), each retried (back to pending, due now, attempts counted afresh) or
//! discarded, one by one or every one shown.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::Admin;
use crate::auth::see_other;
use crate::session::Form;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The most dead rows one page shows (the newest).
pub(crate) const PAGE_DEAD: i64 = 200;

/// One dead row.
pub(crate) struct DeadRow {
    pub id: i64,
    pub kind: String,
    pub channel: String,
    pub address: String,
    pub username: String,
    pub topic: String,
    pub attempts: i64,
    pub error: String,
    pub queued: String,
    /// Whether retry applies (a confirmation's link is gone with it: its owner asks anew).
    pub retriable: bool,
}

#[derive(Template)]
#[template(path = "web/admin_dead.html")]
struct DeadView {
    nav: Nav,
    csrf: String,
    rows: Vec<DeadRow>,
    total: i64,
    /// Dead rows not shown (older than the newest [`PAGE_DEAD`]).
    hidden: i64,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<Response, Error> {
    let dead = state.store.dead_notifications(PAGE_DEAD).await?;
    let total = state.store.dead_count().await?;
    let hidden = total - dead.len() as i64;
    view::ok(&DeadView {
        hidden,
        nav: Nav::user(&state, &me),
        csrf: me.visitor.csrf().to_string(),
        rows: dead
            .into_iter()
            .map(|d| DeadRow {
                retriable: d.kind == "notification",
                id: d.id,
                kind: d.kind,
                channel: d.channel,
                address: d.address,
                username: d.username,
                topic: d.topic.unwrap_or_default(),
                attempts: d.attempts,
                error: d.last_error.unwrap_or_default(),
                queued: view::when(d.created_at),
            })
            .collect(),
        total,
    })
}

/// The rows a form names (`id` fields: one, or every one shown). None is an error, never
/// "all": a stale page must not act on rows it did not show.
fn ids(form: &Form) -> Result<Vec<i64>, Error> {
    let ids = form
        .all("id")
        .map(|id| id.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Error::BadRequest("id: not a number".into()))?;
    if ids.is_empty() {
        return Err(Error::BadRequest(
            "id: name at least one dead notification".into(),
        ));
    }
    Ok(ids)
}

pub(crate) async fn retry(
    State(state): State<AppState>,
    Admin(me): Admin,
    form: Form,
) -> Result<Response, Error> {
    let ids = ids(&form)?;
    let n = state.store.retry_dead(&ids).await?;
    tracing::info!(admin = %me.user.username, retried = n, "dead notifications queued again");
    state.store.signal(tidings_store::Wake::Sender);
    Ok(see_other(routes::ADMIN_DEAD))
}

pub(crate) async fn discard(
    State(state): State<AppState>,
    Admin(me): Admin,
    form: Form,
) -> Result<Response, Error> {
    let ids = ids(&form)?;
    let n = state.store.discard_dead(&ids).await?;
    tracing::info!(admin = %me.user.username, discarded = n, "dead notifications discarded");
    Ok(see_other(routes::ADMIN_DEAD))
}
