//! The ntfy channel: each notification is published to the destination's topic URL
//! (`https://ntfy.sh/mytopic`) the way ntfy documents publishing: a POST whose body is the
//! message, with the headers `Title`, `Priority`, `Tags` and `Click`, and `Authorization:
//! Bearer <token>` for a topic that needs an access token.
//!
//! - The body is the plain text, cut to [`MAX_BODY_BYTES`] on a character boundary (ntfy
//!   turns a longer body into an attachment). Header values are ASCII: a title that is not
//!   is sent RFC 2047 encoded (`=?UTF-8?B?…?=`), which ntfy decodes.
//! - The priority follows the message's severity: error is 4 ("high"), debug 2 ("low"), the
//!   rest 3 ("default"). The tag is the application that sent the message.
//! - A topic cannot answer a confirmation, so its confirmation is published like any message:
//!   its text carries the confirmation link, `Click` opens it, and the person subscribed to
//!   the topic follows it.
//! - Redirects are not followed; private, loopback and link-local servers are refused unless
//!   `channels.ntfy.allow_private_targets` is set (the same check as the webhook channel's,
//!   in `http`); 429 honours `Retry-After`; 5xx, 408 and network errors are retried; other
//!   4xx are permanent, with ntfy's own error text; every publish has a time limit.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::Value;
use tidings_rules::metadata::Severity;
use tidings_store::{ChannelKind, ChannelSettings, Destination};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::http::{Poster, Scope};
use crate::render::Rendered;
use crate::{NotifierError, NtfyConfig};

/// How the shared HTTP code names this channel.
const SCOPE: Scope = Scope {
    section: "channels.ntfy",
    what_goes: "ntfy messages go",
};

/// The most of a message body published: ntfy keeps up to 4,096 bytes as the message and
/// makes anything longer an attachment.
pub const MAX_BODY_BYTES: usize = 4000;

/// How long a 429 without `Retry-After` waits.
const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(60);

/// Publishes notifications to ntfy topics.
pub struct NtfyChannel {
    http: Poster,
}

impl NtfyChannel {
    /// The channel with `config`'s limits; `user_agent` names this hub to ntfy servers.
    pub fn from_config(config: &NtfyConfig, user_agent: &str) -> Result<Self, NotifierError> {
        Ok(NtfyChannel {
            http: Poster::new(
                SCOPE,
                config.timeout_secs,
                config.max_connections,
                config.allow_private_targets,
                user_agent,
            )?,
        })
    }

    async fn publish(&self, to: &Destination, rendered: &Rendered) -> SendResult {
        let ChannelSettings::NtfyV1 { token } = &to.settings else {
            return SendResult::Permanent(format!(
                "destination {} carries {:?} settings, not an ntfy topic's",
                to.id,
                to.settings.kind()
            ));
        };
        let mut headers = match headers(rendered) {
            Ok(headers) => headers,
            Err(refused) => return refused,
        };
        if let Some(token) = token {
            match HeaderValue::from_str(&format!("Bearer {}", token.expose())) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    headers.insert(AUTHORIZATION, value);
                }
                Err(_) => {
                    return SendResult::Permanent(
                        "the destination's access token is not a header value".into(),
                    )
                }
            }
        }
        match self.http.post(&to.address, headers, body(rendered)).await {
            Ok(answer) => judge(answer.status, answer.after, &answer.text, &answer.headers),
            Err(failed) => failed,
        }
    }
}

impl Channel for NtfyChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Ntfy
    }

    fn timeout(&self) -> Duration {
        self.http.timeout()
    }

    fn parallelism(&self) -> usize {
        self.http.parallelism()
    }

    fn send<'a>(&'a self, to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(self.publish(to, rendered))
    }
}

/// The message published: for a confirmation, a few lines carrying its link (the rendered
/// text is a mail's); otherwise the plain text. At most [`MAX_BODY_BYTES`], cut on a
/// character boundary.
pub fn body(rendered: &Rendered) -> String {
    let text = match (&rendered.challenge, &rendered.links.confirm) {
        (Some(_), Some(link)) => format!(
            "Someone (hopefully you) added this ntfy topic to an account at Tidings. To \
             receive notifications here, open this link and press \"Confirm\":\n\n{link}\n\n\
             If this was not you, ignore this message: nothing else will be published here."
        ),
        _ => rendered.text.clone(),
    };
    truncate(&text, MAX_BODY_BYTES).to_string()
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The headers ntfy reads: `Title`, `Priority`, `Tags` (when the message names its
/// application) and `Click` (the message's page, or a confirmation's link).
pub fn headers(rendered: &Rendered) -> Result<HeaderMap, SendResult> {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| -> Result<(), SendResult> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            SendResult::Permanent(format!("{name} {value:?} is not a header value"))
        })?;
        headers.insert(HeaderName::from_static(name), value);
        Ok(())
    };
    set("title", &encode_header(&rendered.subject))?;
    let severity = rendered
        .event
        .as_ref()
        .map(|(stored, _)| stored.metadata.severity)
        .unwrap_or_default();
    set("priority", priority(severity))?;
    let tag = rendered
        .event
        .as_ref()
        .and_then(|(stored, _)| stored.metadata.app.as_deref())
        .filter(|app| is_tag(app));
    if let Some(tag) = tag {
        set("tags", tag)?;
    }
    let click = rendered
        .links
        .confirm
        .as_deref()
        .or(rendered.links.message.as_deref());
    // A link that is not ASCII (a message's URL can be anything) is left out, not fatal.
    if let Some(click) = click.filter(|c| HeaderValue::from_str(c).is_ok()) {
        set("click", click)?;
    }
    Ok(headers)
}

/// ntfy's priority (1 min, 2 low, 3 default, 4 high, 5 max) for a message's severity.
pub fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "4",
        Severity::Warning | Severity::Info => "3",
        Severity::Debug => "2",
    }
}

/// Whether `app` can be an ntfy tag as it is (tags are a comma-separated header).
fn is_tag(app: &str) -> bool {
    !app.is_empty()
        && app.len() <= 64
        && app
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// A header value: printable ASCII as it is; anything else RFC 2047 encoded words
/// (`=?UTF-8?B?<base64>?=`, each at most 75 characters, separated by spaces, which a
/// decoder drops between encoded words), split on character boundaries.
pub fn encode_header(text: &str) -> String {
    if text.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return text.to_string();
    }
    // 45 bytes of UTF-8 are 60 of base64; with `=?UTF-8?B?` and `?=` 72.
    const CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let part = truncate(rest, CHUNK);
        // A character longer than the chunk cannot be, in UTF-8; guard anyway.
        let part = if part.is_empty() {
            rest.chars().next().map_or(rest, |c| &rest[..c.len_utf8()])
        } else {
            part
        };
        words.push(format!("=?UTF-8?B?{}?=", BASE64.encode(part.as_bytes())));
        rest = &rest[part.len()..];
    }
    words.join(" ")
}

/// What an answer comes to.
fn judge(
    status: StatusCode,
    after: Option<Duration>,
    text: &str,
    headers: &HeaderMap,
) -> SendResult {
    let said = || {
        // ntfy answers errors as {"code": 40101, "http": 401, "error": "unauthorized", …}.
        let parsed = serde_json::from_str::<Value>(text).ok();
        let error = parsed
            .as_ref()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
        let line = match error {
            Some(error) => match parsed
                .as_ref()
                .and_then(|v| v.get("code"))
                .and_then(Value::as_i64)
            {
                Some(code) => format!("{error} (ntfy error {code})"),
                None => error,
            },
            None => text.split_whitespace().collect::<Vec<_>>().join(" "),
        };
        let line: String = line.chars().take(200).collect();
        if line.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {line}")
        }
    };
    if status.is_success() {
        return SendResult::Sent;
    }
    if status.is_redirection() {
        let to = headers
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("elsewhere");
        return SendResult::Permanent(format!(
            "HTTP {status}: redirected to {to}; redirects are not followed, so set the \
             destination to the topic URL it points to"
        ));
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            SendResult::RateLimited(after.unwrap_or(DEFAULT_RATE_LIMIT))
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY => SendResult::Retry {
            after,
            reason: said(),
        },
        s if s.is_server_error() => SendResult::Retry {
            after,
            reason: said(),
        },
        _ => SendResult::Permanent(said()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderedLinks;

    fn rendered(subject: &str, text: &str) -> Rendered {
        Rendered {
            id: "uid-1".into(),
            subject: subject.into(),
            text: text.into(),
            html: String::new(),
            links: RenderedLinks::default(),
            headers: Vec::new(),
            event: None,
            challenge: None,
            thread: None,
            chat: Default::default(),
        }
    }

    #[test]
    fn titles_that_are_not_ascii_are_rfc_2047_encoded() {
        assert_eq!(encode_header("plain title"), "plain title");
        assert_eq!(encode_header("Grüße"), "=?UTF-8?B?R3LDvMOfZQ==?=");
        let long = "é".repeat(100);
        let encoded = encode_header(&long);
        let mut decoded = Vec::new();
        for word in encoded.split(' ') {
            assert!(word.len() <= 75, "{word}");
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap_or_default();
            decoded.extend(BASE64.decode(inner).unwrap_or_default());
        }
        assert_eq!(String::from_utf8(decoded).ok(), Some(long));
        assert!(HeaderValue::from_str(&encode_header("\u{1F514} new build")).is_ok());
        // A control character is encoded too, never sent raw.
        assert!(encode_header("a\nb").starts_with("=?UTF-8?B?"));
    }

    #[test]
    fn bodies_are_cut_on_a_character_boundary() {
        let text = format!("{}é and more", "a".repeat(3999));
        let body = body(&rendered("s", &text));
        assert_eq!(body.len(), 3999);
        let short = body_of("short");
        assert_eq!(short, "short");
    }

    fn body_of(text: &str) -> String {
        body(&rendered("s", text))
    }

    #[test]
    fn a_confirmation_carries_its_link_in_the_text_and_the_click_header() {
        let mut r = rendered(
            "Confirm this address for Tidings notifications",
            "mail text",
        );
        r.challenge = Some("tok".into());
        r.links.confirm = Some("https://hub.example.org/confirm/tok".into());
        assert!(body(&r).contains("https://hub.example.org/confirm/tok"));
        let headers = headers(&r).unwrap_or_default();
        assert_eq!(
            headers.get("click").and_then(|v| v.to_str().ok()),
            Some("https://hub.example.org/confirm/tok")
        );
        assert_eq!(
            headers.get("priority").and_then(|v| v.to_str().ok()),
            Some("3")
        );
        assert!(headers.get("tags").is_none());
    }

    #[test]
    fn priorities_follow_severity() {
        assert_eq!(priority(Severity::Error), "4");
        assert_eq!(priority(Severity::Warning), "3");
        assert_eq!(priority(Severity::Info), "3");
        assert_eq!(priority(Severity::Debug), "2");
        assert!(is_tag("bodhi"));
        assert!(!is_tag("a,b"));
        assert!(!is_tag(""));
    }

    #[test]
    fn answers_are_judged_by_status() {
        let h = HeaderMap::new();
        assert_eq!(
            judge(StatusCode::OK, None, r#"{"id":"x","event":"message"}"#, &h),
            SendResult::Sent
        );
        let unauthorized = judge(
            StatusCode::UNAUTHORIZED,
            None,
            r#"{"code":40101,"http":401,"error":"unauthorized","link":"https://ntfy.sh/docs/publish/#authentication"}"#,
            &h,
        );
        assert_eq!(
            unauthorized,
            SendResult::Permanent("HTTP 401 Unauthorized: unauthorized (ntfy error 40101)".into())
        );
        assert!(matches!(
            judge(StatusCode::FORBIDDEN, None, "", &h),
            SendResult::Permanent(r) if r == "HTTP 403 Forbidden"
        ));
        assert!(matches!(
            judge(StatusCode::NOT_FOUND, None, "not json at all", &h),
            SendResult::Permanent(r) if r.contains("not json at all")
        ));
        assert_eq!(
            judge(StatusCode::TOO_MANY_REQUESTS, None, "", &h),
            SendResult::RateLimited(DEFAULT_RATE_LIMIT)
        );
        assert_eq!(
            judge(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(7)),
                "",
                &h
            ),
            SendResult::RateLimited(Duration::from_secs(7))
        );
        assert!(matches!(
            judge(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(9)), "", &h),
            SendResult::Retry { after: Some(a), .. } if a == Duration::from_secs(9)
        ));
        assert!(matches!(
            judge(StatusCode::REQUEST_TIMEOUT, None, "", &h),
            SendResult::Retry { .. }
        ));
        assert!(matches!(
            judge(StatusCode::FOUND, None, "", &h),
            SendResult::Permanent(r) if r.contains("redirects are not followed")
        ));
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(500));
        assert!(matches!(
            judge(StatusCode::BAD_REQUEST, None, &long, &h),
            SendResult::Permanent(r) if r.len() < 260
        ));
    }
}
