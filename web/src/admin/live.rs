//! The live bus view: `/admin/live` shows the messages archived from now on, newest first,
//! filtered by a topic glob; its small script reads the server-sent events of
//! `/admin/live/events?topic=GLOB` (usable on its own: `curl -N` with a session cookie).
//!
//! The events come from the accept path's broadcast channel in this process
//! (`tidings_notifier::bus::live`): what this process archives, from its own ZeroMQ ingest
//! and its own API. It never slows ingest: a client that falls more than
//! [`tidings_notifier::bus::live::CAPACITY`] events behind loses the oldest, and is sent a
//! `dropped` event saying how many. The stream ends when the server shuts down.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{self, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tidings_notifier::bus::live;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Admin;
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The page's own policy: the site's, with its script and its event stream allowed.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(serde::Deserialize, Default)]
pub(crate) struct Topic {
    #[serde(default)]
    topic: String,
}

/// Why a topic glob is refused, if it is: dotted segments, `*` (one) and `**` (any
/// number) whole segments. Empty means every topic.
pub(crate) fn check_glob(glob: &str) -> Result<(), String> {
    if glob.is_empty() {
        return Ok(());
    }
    for segment in glob.split('.') {
        if segment.is_empty() {
            return Err(format!(
                "topic: {glob:?} has an empty segment; write dotted segments like org.*.bodhi.**"
            ));
        }
        if segment.contains('*') && segment != "*" && segment != "**" {
            return Err(format!(
                "topic: in {glob:?}, {segment:?}: `*` and `**` must be whole segments"
            ));
        }
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "web/admin_live.html")]
struct LiveView {
    nav: Nav,
    topic: String,
    source: String,
    error: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Admin(me): Admin,
    Query(Topic { topic }): Query<Topic>,
) -> Result<Response, Error> {
    let topic = topic.trim().to_string();
    let error = check_glob(&topic).err();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("topic", &topic)
        .finish();
    let mut response = view::ok(&LiveView {
        nav: Nav::user(&state, &me),
        source: format!("{}?{query}", routes::ADMIN_LIVE_EVENTS),
        topic,
        error,
    })?;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    Ok(response)
}

/// What one listener holds between events.
struct Listener {
    events: tokio::sync::broadcast::Receiver<live::LiveEvent>,
    glob: String,
    stop: CancellationToken,
}

/// The next event for this listener; `None` once the server stops.
async fn next(
    mut listener: Listener,
) -> Option<(Result<Event, std::convert::Infallible>, Listener)> {
    loop {
        let received = tokio::select! {
            _ = listener.stop.cancelled() => return None,
            received = listener.events.recv() => received,
        };
        match received {
            Ok(event) => {
                if !listener.glob.is_empty()
                    && !tidings_rules::condition::topic_glob_matches(&listener.glob, &event.topic)
                {
                    continue;
                }
                let data = match serde_json::to_string(&event) {
                    Ok(data) => data,
                    Err(err) => {
                        tracing::warn!(%err, "a live event could not be written");
                        continue;
                    }
                };
                return Some((Ok(Event::default().data(data)), listener));
            }
            Err(RecvError::Lagged(missed)) => {
                let event = Event::default().event("dropped").data(missed.to_string());
                return Some((Ok(event), listener));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}

pub(crate) async fn events(
    State(state): State<AppState>,
    Admin(_me): Admin,
    Query(Topic { topic }): Query<Topic>,
) -> Result<Response, Error> {
    stream(&state, &topic)
}

/// The server-sent events of the messages archived from now on whose topic matches
/// `topic` (a glob; empty: every one). The page's stream and `GET /api/v1/admin/live`.
pub(crate) fn stream(state: &AppState, topic: &str) -> Result<Response, Error> {
    let glob = topic.trim().to_string();
    check_glob(&glob).map_err(Error::BadRequest)?;
    let listener = Listener {
        events: live::subscribe(),
        glob,
        stop: state.shutdown.clone(),
    };
    let stream = futures_util::stream::unfold(listener, next);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The page's script: opens the event stream and adds each message as a row.
pub(crate) async fn script(Admin(_me): Admin) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        include_str!("../../../templates/web/live.js"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_checked() {
        assert!(check_glob("").is_ok());
        assert!(check_glob("org.*.bodhi.**").is_ok());
        assert!(check_glob("org..bodhi").is_err());
        assert!(check_glob("org.fedora*").is_err());
    }
}
