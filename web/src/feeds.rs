//! Feeds (issue 10): every filter can be read as an Atom 1.0 feed (RFC 4287) at a secret
//! URL, `/feeds/<token>.atom`, by feed readers and by machines that poll, without signing
//! in. The token (see `tidings_store::Store::feed_token`) opens that one filter's feed and
//! nothing else; a wrong, old or malformed one is 404, the same answer as a filter that does
//! not exist. Its owner sees the URL on the filter's page and can replace it ("New feed
//! URL"), which ends the old one.
//!
//! A feed re-evaluates the filter's condition, with its owner's variables as they are now,
//! against the newest archived messages: at most [`FEED_SCAN`] messages, none older than
//! [`FEED_WINDOW_MS`], and at most [`FEED_ENTRIES`] entries, newest first. It does not
//! depend on deliveries: a switched-off filter's feed still lists what it matches (switching
//! it off stops notifications; a new feed URL stops the feed). A filter that is quarantined
//! or cannot be read gets a feed with one entry that says so.
//!
//! Polling is cheap when nothing changed: the `ETag` is made of what the feed depends on
//! (the filter's last save and feed generation, the change log's and the archive's newest
//! ids, the day), read in one query, and a matching `If-None-Match` is answered 304
//! before any message is read.
//!
//! The XML is written here, by hand: every text and attribute goes through [`escape`],
//! which also drops the characters XML 1.0 cannot carry; the web tests read the feed back
//! with an XML parser.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tidings_rules::links::Links;
use tidings_rules::time::rfc3339;
use tidings_store::{FeedHead, Filter, Store, StoreError, StoredMessage};

use crate::auth::see_other;
use crate::session::{CurrentUser, Form};
use crate::{routes, AppState, Error};

/// The most entries a feed holds.
pub const FEED_ENTRIES: usize = 50;
/// The most archived messages one feed looks at, newest first.
pub const FEED_SCAN: usize = 5_000;
/// How far back a feed looks: 30 days of archive.
pub const FEED_WINDOW_MS: i64 = 30 * 86_400_000;
/// Archived messages read per query while scanning.
const PAGE_ROWS: usize = 250;
/// The longest entry title, in characters.
const TITLE_CHARS: usize = 200;
/// The most of a message's JSON body an entry's content carries, in characters.
const BODY_CHARS: usize = 2_000;
/// Bumped when what a feed says for the same data changes, so cached copies are refetched.
const FORMAT: u32 = 1;
/// The content type served.
pub const ATOM: &str = "application/atom+xml; charset=utf-8";
/// How long a reader may keep a feed without asking again.
const CACHE: &str = "private, max-age=60";

/// The public feed route (no session, no CSRF: the token is the proof).
pub(crate) fn router() -> Router<AppState> {
    Router::new().route(routes::FEED, get(feed))
}

/// The owner's action that replaces a filter's feed URL (a page route: session and CSRF).
pub(crate) fn page_router() -> Router<AppState> {
    Router::new().route(routes::FILTER_FEED, post(rotate))
}

/// A filter's feed, as XML, with what went into it.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The Atom document.
    pub xml: String,
    /// Its `ETag` (quoted).
    pub etag: String,
    /// Entries written.
    pub entries: usize,
    /// Archived messages looked at.
    pub scanned: usize,
}

/// The feed that `token` (the path segment without `.atom`) opens, built as a request for
/// it would be; for `tidings bench feed`. `NotFound` for a token that opens nothing.
pub async fn build_feed(store: &Store, base_url: &str, token: &str) -> Result<Feed, Error> {
    let head = store.feed_head(token).await?;
    build(
        store,
        &Links::new(base_url),
        &head,
        token,
        tidings_store::now_ms(),
    )
    .await
}

async fn feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let token = file.strip_suffix(".atom").ok_or(Error::NotFound)?;
    let head = state.store.feed_head(token).await?;
    let now = tidings_store::now_ms();
    let etag = etag(&head, now);
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers(&etag)).into_response());
    }
    let links = Links::new(&state.config.base_url);
    let feed = build(&state.store, &links, &head, token, now).await?;
    let mut response = (cache_headers(&feed.etag), feed.xml).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ATOM));
    Ok(response)
}

fn cache_headers(etag: &str) -> [(axum::http::HeaderName, HeaderValue); 2] {
    [
        (
            ETAG,
            // Made of digits, letters and dashes only, so always a valid header value.
            HeaderValue::from_str(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
        ),
        (CACHE_CONTROL, HeaderValue::from_static(CACHE)),
    ]
}

/// Replaces the filter's feed URL; someone else's filter is 404.
async fn rotate(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.new_feed_token(me.id(), id).await?;
    tracing::info!(user = me.id(), filter = id, "feed URL replaced");
    Ok(see_other(&format!("{}#feed", routes::filter(id))))
}

/// The feed's `ETag`: everything its content depends on, so an unchanged one means an
/// unchanged feed (the day is in it because the 30-day window moves).
fn etag(head: &FeedHead, now: i64) -> String {
    format!(
        "\"v{FORMAT}-{}-{}-{}-{}-{}-{}\"",
        head.filter_id,
        head.generation,
        head.updated_at,
        head.last_change,
        head.last_message_id,
        now.div_euclid(86_400_000)
    )
}

/// Whether `If-None-Match` names this `ETag` (weakly compared, as RFC 9110 says for it).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Reads the filter and its owner's variables, scans the archive and writes the feed.
async fn build(
    store: &Store,
    links: &Links,
    head: &FeedHead,
    token: &str,
    now: i64,
) -> Result<Feed, Error> {
    let etag = etag(head, now);
    let self_url = links.feed(token);
    let feed_id = links.filter(head.filter_id);
    let filter = match store.filter(head.user_id, head.filter_id).await {
        Ok(filter) => filter,
        Err(StoreError::UnreadableFilter(unreadable)) => {
            let reason = format!("This filter could not be read: {}", unreadable.reason);
            let title = format!("Tidings: {}", unreadable.name);
            let at = unreadable.quarantine.as_ref().map_or(now, |q| q.at);
            let xml = set_aside(links, &feed_id, &self_url, &title, head, at, &reason);
            return Ok(Feed {
                xml,
                etag,
                entries: 1,
                scanned: 0,
            });
        }
        Err(err) => return Err(err.into()),
    };
    let title = format!("Tidings: {}", filter.name);
    if let Some(quarantine) = &filter.quarantine {
        let reason = format!(
            "This filter was set aside because it could not be read: {}. It reads now; its \
             owner must save it to use it again.",
            quarantine.reason
        );
        let xml = set_aside(
            links,
            &feed_id,
            &self_url,
            &title,
            head,
            quarantine.at,
            &reason,
        );
        return Ok(Feed {
            xml,
            etag,
            entries: 1,
            scanned: 0,
        });
    }
    let variables = store.variables(head.user_id).await?;
    let (matched, scanned) = scan(store, &filter, &variables, head, now).await?;

    let mut w = Atom::start();
    w.text("id", &feed_id);
    w.text("title", &title);
    let mut subtitle = format!("Messages matching {}", filter.condition);
    if !filter.enabled {
        subtitle.push_str(" (the filter is switched off: nothing is sent, but its feed goes on)");
    }
    w.text("subtitle", &subtitle);
    let updated = matched.first().map_or(head.updated_at, message_time);
    w.text("updated", &rfc3339(updated.div_euclid(1000)));
    w.link("self", &self_url, Some("application/atom+xml"));
    w.link("alternate", &links.filter(filter.id), Some("text/html"));
    w.author("Tidings");
    w.text("generator", "Tidings");
    for message in &matched {
        entry(&mut w, links, message);
    }
    Ok(Feed {
        xml: w.finish(),
        etag,
        entries: matched.len(),
        scanned,
    })
}

/// The newest messages the filter matches: at most [`FEED_ENTRIES`], looking at no more
/// than [`FEED_SCAN`] messages and none older than [`FEED_WINDOW_MS`], none after the one
/// the `ETag` names. Returns them, newest first, and how many messages were looked at.
async fn scan(
    store: &Store,
    filter: &Filter,
    variables: &tidings_rules::Variables,
    head: &FeedHead,
    now: i64,
) -> Result<(Vec<StoredMessage>, usize), Error> {
    let oldest = now - FEED_WINDOW_MS;
    let (mut matched, mut scanned) = (Vec::new(), 0);
    let mut before = head.last_message_id.saturating_add(1);
    while scanned < FEED_SCAN {
        let rows = PAGE_ROWS.min(FEED_SCAN - scanned);
        let page = store.archive_page(before, rows as i64).await?;
        let Some(lowest) = page.lowest_id else {
            break;
        };
        scanned += page.rows;
        for message in page.messages {
            if message.received_at < oldest {
                return Ok((matched, scanned));
            }
            if filter
                .condition
                .matches(&message.message, &message.metadata, variables)
            {
                matched.push(message);
                if matched.len() == FEED_ENTRIES {
                    return Ok((matched, scanned));
                }
            }
        }
        if page.rows < rows {
            break;
        }
        before = lowest;
    }
    Ok((matched, scanned))
}

/// When a message happened: its send time if the publisher gave one, else its arrival.
fn message_time(message: &StoredMessage) -> i64 {
    message.message.sent_at.unwrap_or(message.received_at)
}

/// One message as an entry.
fn entry(w: &mut Atom, links: &Links, stored: &StoredMessage) {
    let (message, meta) = (&stored.message, &stored.metadata);
    w.open("entry");
    w.text("id", &entry_id(&message.id));
    let title = one_line(&meta.summary, TITLE_CHARS);
    w.text(
        "title",
        if title.is_empty() {
            &message.topic
        } else {
            &title
        },
    );
    w.text("updated", &rfc3339(message_time(stored).div_euclid(1000)));
    let link = meta
        .url
        .as_deref()
        .filter(|url| is_web_url(url))
        .map_or_else(|| links.notifications(), str::to_string);
    w.link("alternate", &link, None);
    if let Some(agent) = meta.agent.as_deref().filter(|a| !a.trim().is_empty()) {
        w.author(agent);
    }
    if let Some(app) = &meta.app {
        w.category("tag:tidings,2026:app", app);
    }
    w.category("tag:tidings,2026:topic", &message.topic);
    w.text("summary", &title);
    w.text("content", &content(stored));
    w.close("entry");
}

/// An entry's text: the summary, then what Tidings knows of the message, then its body.
fn content(stored: &StoredMessage) -> String {
    let (message, meta) = (&stored.message, &stored.metadata);
    let mut text = format!("{}\n\nTopic: {}\n", meta.summary, message.topic);
    let mut line = |name: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(text, "{name}: {value}");
        }
    };
    line("App", meta.app.as_deref().unwrap_or_default());
    line("Agent", meta.agent.as_deref().unwrap_or_default());
    let join = |set: &std::collections::BTreeSet<String>| {
        set.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    line("Usernames", &join(&meta.usernames));
    line("Packages", &join(&meta.packages));
    line("Groups", &join(&meta.groups));
    line("Severity", meta.severity.as_str());
    line("Message id", &message.id);
    line("Received", &crate::view::when(stored.received_at));
    let body = message.body.to_string();
    let mut shown: String = body.chars().take(BODY_CHARS).collect();
    if shown.len() < body.len() {
        shown.push('…');
    }
    text.push('\n');
    text.push_str(&shown);
    text
}

/// The feed of a filter that matches nothing until its owner repairs it: one entry saying
/// why, dated when it was set aside.
fn set_aside(
    links: &Links,
    feed_id: &str,
    self_url: &str,
    title: &str,
    head: &FeedHead,
    at: i64,
    reason: &str,
) -> String {
    let mut w = Atom::start();
    w.text("id", feed_id);
    w.text("title", title);
    w.text(
        "updated",
        &rfc3339(at.max(head.updated_at).div_euclid(1000)),
    );
    w.link("self", self_url, Some("application/atom+xml"));
    w.author("Tidings");
    w.open("entry");
    w.text("id", &format!("{feed_id}/set-aside/{}", head.updated_at));
    w.text(
        "title",
        "This filter is set aside: it matches nothing until its owner repairs it",
    );
    w.text("updated", &rfc3339(at.div_euclid(1000)));
    w.link("alternate", &links.filter(head.filter_id), None);
    w.text("content", reason);
    w.close("entry");
    w.finish()
}

/// A message's entry id: a tag URI (RFC 4151) naming its bus id, the same in every feed
/// and every poll.
fn entry_id(msg_id: &str) -> String {
    let mut id = String::from("tag:tidings,2026:message/");
    for byte in msg_id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            id.push(byte as char);
        } else {
            let _ = write!(id, "%{byte:02X}");
        }
    }
    id
}

/// Whether a message's link may be offered: an absolute http(s) URL with no space or
/// control character in it.
fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") {
        7
    } else {
        return false;
    };
    url.len() > scheme && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `text` on one line: whitespace and control characters runs become one space, cut to
/// `max` characters with an ellipsis.
fn one_line(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max * 4));
    let mut count = 0;
    for word in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if count > 0 {
            line.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max {
                line.push('…');
                return line;
            }
            line.push(c);
            count += 1;
        }
    }
    line
}

/// Writes `text` into `out` as XML character data or attribute value: `&`, `<`, `>`, `"`
/// and `'` escaped, and the characters XML 1.0 does not allow (controls other than tab,
/// newline and carriage return; U+FFFE, U+FFFF) left out.
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

/// A little Atom writer: elements are opened and closed in order by the code above, and
/// every text passes through [`escape`].
struct Atom {
    out: String,
}

impl Atom {
    fn start() -> Atom {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
        out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
        Atom { out }
    }

    fn open(&mut self, name: &str) {
        let _ = writeln!(self.out, "<{name}>");
    }

    fn close(&mut self, name: &str) {
        let _ = writeln!(self.out, "</{name}>");
    }

    /// `<name>text</name>`; Atom text constructs are `type="text"` by default.
    fn text(&mut self, name: &str, text: &str) {
        let _ = write!(self.out, "<{name}>");
        escape(&mut self.out, text);
        let _ = writeln!(self.out, "</{name}>");
    }

    fn link(&mut self, rel: &str, href: &str, kind: Option<&str>) {
        let _ = write!(self.out, "<link rel=\"{rel}\" href=\"");
        escape(&mut self.out, href);
        if let Some(kind) = kind {
            let _ = write!(self.out, "\" type=\"{kind}");
        }
        self.out.push_str("\"/>\n");
    }

    fn author(&mut self, name: &str) {
        self.out.push_str("<author>");
        self.text("name", name);
        self.out.push_str("</author>\n");
    }

    fn category(&mut self, scheme: &str, term: &str) {
        let _ = write!(self.out, "<category scheme=\"{scheme}\" term=\"");
        escape(&mut self.out, term);
        self.out.push_str("\"/>\n");
    }

    fn finish(mut self) -> String {
        self.out.push_str("</feed>\n");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        escape(&mut out, text);
        out
    }

    #[test]
    fn escapes_markup_and_drops_what_xml_cannot_carry() {
        assert_eq!(
            escaped(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &apos;b&apos;&lt;/script&gt;"
        );
        assert_eq!(escaped("a\u{0}b\u{1b}c\td\ne\u{FFFF}é🦀"), "abc\td\neé🦀");
    }

    #[test]
    fn titles_are_one_line() {
        assert_eq!(one_line("  a\n\tb\r\n c\u{7}d ", 100), "a b c d");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("", 3), "");
    }

    #[test]
    fn entry_ids_are_uris() {
        assert_eq!(
            entry_id("2019-7f0d1a40-aaaa"),
            "tag:tidings,2026:message/2019-7f0d1a40-aaaa"
        );
        assert_eq!(
            entry_id("a b/é<"),
            "tag:tidings,2026:message/a%20b%2F%C3%A9%3C"
        );
    }

    #[test]
    fn only_web_links_are_offered() {
        assert!(is_web_url("https://bodhi.fedoraproject.org/updates/X"));
        assert!(is_web_url("HTTP://example.org"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https://a b"));
        assert!(!is_web_url("ftp://example.org"));
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let tag = "\"v1-1-0-5-6-7-8\"";
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                IF_NONE_MATCH,
                HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("")),
            );
            not_modified(&headers, tag)
        };
        assert!(with(tag));
        assert!(with(&format!("\"x\", W/{tag}")));
        assert!(with("*"));
        assert!(!with("\"v1-1-0-5-6-7-9\""));
        assert!(!not_modified(&HeaderMap::new(), tag));
    }
}
