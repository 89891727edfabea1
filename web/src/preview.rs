//! Previews (issue 11): what a condition would have sent its owner in the last 7 days,
//! from the archive — how many messages it matches (all of them counted) and the newest
//! few. The window is found on the `received_at` index, then read in id ranges of
//! [`CHUNK`] rows, two at a time (each decoded and evaluated on its own task, so both
//! cores work), and nothing older than the window is read. Bodies and headers are read
//! only for a condition with a body test, and of a body only what its paths reach is
//! built (`BodyShape`). `tidings bench preview`
//! measures it (docs/performance.md).

use std::sync::Arc;

use tidings_rules::condition::BodyShape;
use tidings_rules::{Condition, Variables};
use tidings_store::{Store, StoredMessage};
use tokio::task::JoinSet;

use crate::Error;

/// How far back a preview looks.
pub const PREVIEW_WINDOW_MS: i64 = 7 * 86_400_000;
/// How many of the newest matches a preview lists.
pub const PREVIEW_LISTED: usize = 20;
/// Rows of the archive read per query.
const CHUNK: i64 = 4_000;
/// Queries in flight at once.
const PARALLEL: usize = 2;

/// What a condition would have matched in the window.
#[derive(Debug, Clone)]
pub struct Preview {
    /// How many archived messages of the window it matches.
    pub count: usize,
    /// How many archived messages of the window were looked at.
    pub scanned: usize,
    /// The newest matches, newest first (at most [`PREVIEW_LISTED`]).
    pub latest: Vec<StoredMessage>,
}

/// What `condition` matches, for an owner with `variables`, among the messages received
/// in the [`PREVIEW_WINDOW_MS`] before `now`.
pub async fn preview(
    store: &Store,
    condition: Condition,
    variables: Variables,
    now: i64,
) -> Result<Preview, Error> {
    let since = now - PREVIEW_WINDOW_MS;
    let mut result = Preview {
        count: 0,
        scanned: 0,
        latest: Vec::new(),
    };
    let Some(window) = store.archive_window(since).await? else {
        return Ok(result);
    };
    // Bodies are most of the archive's bytes: read them only for a condition that tests
    // them (what a preview lists comes from the metadata), and build only the values its
    // paths reach.
    let shape = condition.uses_body().then(|| BodyShape::of(&condition));
    let shared = Arc::new((condition, variables, shape));
    // Ranges from the newest down, so the listed newest come from the first ones.
    let mut ranges = Vec::new();
    let mut to = window.last_id.saturating_add(1);
    while to > window.first_id {
        let from = (to - CHUNK).max(window.first_id);
        ranges.push((from, to));
        to = from;
    }
    let mut chunks: Vec<Option<(usize, usize, Vec<StoredMessage>)>> = vec![None; ranges.len()];
    let mut tasks = JoinSet::new();
    let mut next = 0;
    loop {
        while tasks.len() < PARALLEL && next < ranges.len() {
            let (from, to) = ranges[next];
            let (store, shared, at) = (store.clone(), shared.clone(), next);
            tasks.spawn(async move {
                let (condition, variables, shape) = &*shared;
                let page = store.archive_range(from, to, since, shape.as_ref()).await?;
                let mut count = 0;
                let mut latest = Vec::new();
                for message in page.messages {
                    if condition.matches(&message.message, &message.metadata, variables) {
                        count += 1;
                        if latest.len() < PREVIEW_LISTED {
                            latest.push(message);
                        }
                    }
                }
                Ok::<_, Error>((at, (count, page.rows, latest)))
            });
            next += 1;
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (at, chunk) = done.map_err(|e| Error::Internal(format!("preview task: {e}")))??;
        chunks[at] = Some(chunk);
    }
    for (count, scanned, latest) in chunks.into_iter().flatten() {
        result.count += count;
        result.scanned += scanned;
        for message in latest {
            if result.latest.len() < PREVIEW_LISTED {
                result.latest.push(message);
            }
        }
    }
    Ok(result)
}

/// One archived message as a preview or the why-page lists it.
pub(crate) struct MessageLine {
    /// Its summary, or its topic when it has none.
    pub summary: String,
    pub app: String,
    pub when: String,
    /// Its web page, when it has one that is a web URL.
    pub url: Option<String>,
    /// Why (not) for this message.
    pub why: String,
}

impl From<&StoredMessage> for MessageLine {
    fn from(stored: &StoredMessage) -> Self {
        let (message, meta) = (&stored.message, &stored.metadata);
        MessageLine {
            summary: if meta.summary.trim().is_empty() {
                message.topic.clone()
            } else {
                meta.summary.clone()
            },
            app: meta.app.clone().unwrap_or_default(),
            when: crate::view::when(message.sent_at.unwrap_or(stored.received_at)),
            url: meta
                .url
                .clone()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            why: crate::routes::filter_why(&message.id),
        }
    }
}
