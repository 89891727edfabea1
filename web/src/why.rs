//! Why / why not (issue 11): for one archived message, each of the signed-in user's
//! filters with its verdict and the predicates that decided it (`Condition::explain`), and
//! what else would stop a notification: the filter switched off or set aside, no
//! confirmed destination, a running mute. Only the user's own filters are looked at.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tidings_store::StoreError;

use crate::preview::MessageLine;
use crate::session::CurrentUser;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The why route.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route(routes::FILTER_WHY, get(page))
}

#[derive(Deserialize)]
struct Params {
    message: Option<String>,
}

/// A piece of a condition's text, marked when a deciding predicate.
pub(crate) struct Piece {
    pub text: String,
    pub marked: bool,
}

pub(crate) struct ReasonLine {
    pub predicate: String,
    pub held: bool,
    pub seen: String,
}

pub(crate) struct Verdict {
    pub id: i64,
    pub name: String,
    pub link: String,
    pub matched: bool,
    pub pieces: Vec<Piece>,
    pub reasons: Vec<ReasonLine>,
    /// What would stop a notification even though it matches.
    pub stops: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/filter_why.html")]
struct WhyView {
    nav: Nav,
    /// What was asked for (the form shows it again).
    asked: String,
    /// The message, when found.
    message: Option<MessageLine>,
    message_id: String,
    topic: String,
    /// Set when the id names no archived message.
    missing: bool,
    verdicts: Vec<Verdict>,
    /// The user's filters that cannot be read (they match nothing).
    unreadable: Vec<(String, String)>,
    /// Running mutes that silence this message.
    mutes: Vec<String>,
}

async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(params): Query<Params>,
) -> Result<Response, Error> {
    let asked = params.message.unwrap_or_default().trim().to_string();
    let mut view = WhyView {
        nav: Nav::user(&state, &me),
        asked: asked.clone(),
        message: None,
        message_id: String::new(),
        topic: String::new(),
        missing: false,
        verdicts: Vec::new(),
        unreadable: Vec::new(),
        mutes: Vec::new(),
    };
    if asked.is_empty() {
        return view::ok(&view);
    }
    let stored = match state.store.archived_message(&asked).await {
        Ok(stored) => stored,
        Err(StoreError::NotFound) => {
            view.missing = true;
            return view::page(StatusCode::NOT_FOUND, &view);
        }
        Err(err) => return Err(err.into()),
    };
    let judged = judge(&state, me.id(), &stored).await?;
    view.verdicts = judged.verdicts;
    view.mutes = judged
        .mutes
        .iter()
        .map(|m| format!("{}, until {}", m.label, view::when(m.until)))
        .collect();
    view.unreadable = judged
        .unreadable
        .iter()
        .map(|u| (u.name.clone(), routes::filter(u.id)))
        .collect();
    view.message_id = stored.message.id.clone();
    view.topic = stored.message.topic.clone();
    view.message = Some(MessageLine::from(&stored));
    view::ok(&view)
}

/// Each of a user's filters judged against one archived message.
pub(crate) struct Judgement {
    pub verdicts: Vec<Verdict>,
    /// The user's filters that cannot be read (they match nothing).
    pub unreadable: Vec<tidings_store::UnreadableFilter>,
    /// The user's running mutes that silence this message.
    pub mutes: Vec<tidings_store::Mute>,
}

/// Why (not): `user_id`'s filters, mutes and destinations against `stored`.
pub(crate) async fn judge(
    state: &AppState,
    user_id: i64,
    stored: &tidings_store::StoredMessage,
) -> Result<Judgement, Error> {
    let now = tidings_store::now_ms();
    let filters = state.store.filters(user_id).await?;
    let variables = state.store.variables(user_id).await?;
    let destinations = state.store.destinations(user_id).await?;
    let mutes = state
        .store
        .active_mutes(Some(user_id))
        .await?
        .into_iter()
        .filter(|m| m.silences(&stored.metadata, now))
        .collect();
    let mut verdicts = Vec::new();
    for filter in &filters.filters {
        let e = filter
            .condition
            .explain(&stored.message, &stored.metadata, &variables);
        let mut stops = Vec::new();
        if let Some(q) = &filter.quarantine {
            stops.push(format!(
                "it is set aside because it could not be read ({}): save it to use it again",
                q.reason
            ));
        }
        if !filter.enabled {
            stops.push("it is switched off".to_string());
        }
        let confirmed = destinations
            .iter()
            .filter(|d| filter.destination_ids.contains(&d.id) && d.is_confirmed())
            .count();
        if filter.destination_ids.is_empty() {
            stops.push("it sends to no destination".to_string());
        } else if confirmed == 0 {
            stops.push("none of its destinations is confirmed".to_string());
        }
        verdicts.push(Verdict {
            id: filter.id,
            name: filter.name.clone(),
            link: routes::filter(filter.id),
            matched: e.matched,
            pieces: pieces(&e.text, e.reasons.iter().map(|r| r.span.clone())),
            reasons: e
                .reasons
                .into_iter()
                .map(|r| ReasonLine {
                    predicate: r.predicate,
                    held: r.held,
                    seen: r.seen,
                })
                .collect(),
            stops,
        });
    }
    Ok(Judgement {
        verdicts,
        unreadable: filters.unreadable,
        mutes,
    })
}

/// The text cut into pieces, the spans marked (spans are in order and do not overlap).
pub(crate) fn pieces(
    text: &str,
    spans: impl Iterator<Item = std::ops::Range<usize>>,
) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = 0;
    for span in spans {
        if span.start < at || span.end > text.len() || span.start > span.end {
            continue;
        }
        let (Some(before), Some(marked)) = (text.get(at..span.start), text.get(span.clone()))
        else {
            continue;
        };
        if !before.is_empty() {
            out.push(Piece {
                text: before.to_string(),
                marked: false,
            });
        }
        out.push(Piece {
            text: marked.to_string(),
            marked: true,
        });
        at = span.end;
    }
    if let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) {
        out.push(Piece {
            text: rest.to_string(),
            marked: false,
        });
    }
    out
}
