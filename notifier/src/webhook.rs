//! The webhook channel: each notification is a JSON POST signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, keyed by the destination's own secret), so a receiver can
//! check it with any Standard Webhooks library.
//!
//! - A new endpoint is confirmed by a challenge: its confirmation is a signed POST of type
//!   `tidings.confirmation` carrying a one-time `challenge`; an endpoint that answers 2xx
//!   with that challenge (`{"challenge": "…"}` or the bare value) is confirmed at once, and
//!   a person can follow the `confirm_url` in it instead.
//! - Redirects are not followed (a redirect is an address to fix, and following one would
//!   take the POST somewhere its owner did not confirm).
//! - Private, loopback and link-local targets are refused unless
//!   `channels.webhook.allow_private_targets` is set: names are resolved by the channel
//!   itself and a name that leads to such an address is refused at connection time, so a
//!   name that changes what it points to cannot get past the check (SSRF).
//! - 410 Gone disables the destination; 429 and 503 honour `Retry-After`; other 4xx are
//!   permanent, 5xx and network errors are retried; every send has a time limit.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use tidings_store::{ChannelKind, ChannelSettings, Destination};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::http::{Poster, Scope};
use crate::render::Rendered;
use crate::{NotifierError, WebhookConfig};

pub use crate::http::is_public;

/// How the shared HTTP code names this channel.
const SCOPE: Scope = Scope {
    section: "channels.webhook",
    what_goes: "webhooks go",
};

/// How long a 429 without `Retry-After` waits.
const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(60);

/// Posts notifications to webhook destinations.
pub struct WebhookChannel {
    http: Poster,
}

impl WebhookChannel {
    /// The channel with `config`'s limits; `user_agent` names this hub to receivers.
    pub fn from_config(config: &WebhookConfig, user_agent: &str) -> Result<Self, NotifierError> {
        Ok(WebhookChannel {
            http: Poster::new(
                SCOPE,
                config.timeout_secs,
                config.max_connections,
                config.allow_private_targets,
                user_agent,
            )?,
        })
    }

    async fn post(&self, to: &Destination, rendered: &Rendered) -> SendResult {
        let ChannelSettings::WebhookV1 { secret } = &to.settings else {
            return SendResult::Permanent(format!(
                "destination {} carries {:?} settings, not a webhook's",
                to.id,
                to.settings.kind()
            ));
        };
        let Some(key) = secret.key() else {
            return SendResult::Permanent(
                "the destination's signing secret is not of the form whsec_<base64>".into(),
            );
        };
        let timestamp = tidings_store::now_ms() / 1000;
        let body = payload(rendered, timestamp);
        let signature = sign(&key, &rendered.id, timestamp, &body);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in [
            ("webhook-id", rendered.id.as_str()),
            ("webhook-timestamp", &timestamp.to_string()),
            ("webhook-signature", &signature),
        ] {
            match HeaderValue::from_str(value) {
                Ok(value) => {
                    headers.insert(name, value);
                }
                Err(_) => {
                    return SendResult::Permanent(format!("{name} {value:?} is not a header value"))
                }
            }
        }
        match self.http.post(&to.address, headers, body).await {
            Ok(answer) => judge(
                answer.status,
                answer.after,
                &answer.text,
                rendered.challenge.as_deref(),
                &answer.headers,
            ),
            Err(failed) => failed,
        }
    }
}

impl Channel for WebhookChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn timeout(&self) -> Duration {
        self.http.timeout()
    }

    fn parallelism(&self) -> usize {
        self.http.parallelism()
    }

    fn send<'a>(&'a self, to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(self.post(to, rendered))
    }
}

/// The JSON body: Standard Webhooks' `{type, timestamp, data}`.
pub fn payload(rendered: &Rendered, timestamp: i64) -> Vec<u8> {
    let when = tidings_rules::time::rfc3339(timestamp);
    let value = match (&rendered.challenge, &rendered.event) {
        (Some(challenge), _) => json!({
            "type": "tidings.confirmation",
            "timestamp": when,
            "data": {
                "challenge": challenge,
                "confirm_url": rendered.links.confirm,
                "answer": "respond with 2xx and {\"challenge\": \"<this challenge>\"} to confirm this endpoint, or open confirm_url",
                "text": rendered.text,
            }
        }),
        (None, Some((stored, filters))) => {
            let metadata = &stored.metadata;
            json!({
                "type": "tidings.notification",
                "timestamp": when,
                "data": {
                    "id": rendered.id,
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "filters": filters,
                    "message": {
                        "id": stored.message.id,
                        "topic": stored.message.topic,
                        "sent_at": stored.message.sent_at,
                        "body": stored.message.body,
                    },
                    "metadata": {
                        "app": metadata.app,
                        "agent": metadata.agent,
                        "summary": metadata.summary,
                        "url": rendered.links.message,
                        "usernames": metadata.usernames,
                        "packages": metadata.packages,
                        "groups": metadata.groups,
                        "objects": metadata.objects,
                        "severity": metadata.severity,
                    },
                    "links": {
                        "unsubscribe": rendered.links.unsubscribe,
                        "filters": rendered.links.filters,
                        "notifications": rendered.links.notifications,
                    },
                }
            })
        }
        (None, None) => json!({
            "type": "tidings.notification",
            "timestamp": when,
            "data": {"id": rendered.id, "subject": rendered.subject, "text": rendered.text},
        }),
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// `webhook-signature`: `v1,` and the base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}").
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

/// What an answer comes to.
fn judge(
    status: StatusCode,
    after: Option<Duration>,
    text: &str,
    challenge: Option<&str>,
    headers: &HeaderMap,
) -> SendResult {
    let said = || {
        let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let line: String = line.chars().take(200).collect();
        if line.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {line}")
        }
    };
    if status.is_success() {
        return match challenge {
            Some(challenge) if answered(text, challenge) => SendResult::Confirmed,
            _ => SendResult::Sent,
        };
    }
    if status.is_redirection() {
        let to = headers
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("elsewhere");
        return SendResult::Permanent(format!(
            "HTTP {status}: redirected to {to}; redirects are not followed, so set the \
             destination to the address it points to"
        ));
    }
    match status {
        StatusCode::GONE => SendResult::Gone(format!(
            "{}; the endpoint says it is gone for good, so the destination is disabled",
            said()
        )),
        StatusCode::TOO_MANY_REQUESTS => {
            SendResult::RateLimited(after.unwrap_or(DEFAULT_RATE_LIMIT))
        }
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY => {
            SendResult::Retry {
                after,
                reason: said(),
            }
        }
        s if s.is_server_error() => SendResult::Retry {
            after,
            reason: said(),
        },
        _ => SendResult::Permanent(said()),
    }
}

/// Whether `text` answers `challenge`: `{"challenge": "<it>"}` or the bare value.
fn answered(text: &str, challenge: &str) -> bool {
    let text = text.trim();
    if text == challenge {
        return true;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("challenge")
                .and_then(Value::as_str)
                .map(|c| c == challenge)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries:
        // secret MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id msg_p5jXN8AQM9LWM0D4loKWxJek,
        // timestamp 1614265330, body {"test": 2432232314}.
        let key = BASE64
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_default();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn answers_are_judged_by_status() {
        let h = HeaderMap::new();
        let ok = StatusCode::OK;
        assert_eq!(judge(ok, None, "", None, &h), SendResult::Sent);
        assert_eq!(
            judge(ok, None, r#"{"challenge":"c1"}"#, Some("c1"), &h),
            SendResult::Confirmed
        );
        assert_eq!(
            judge(ok, None, " c1\n", Some("c1"), &h),
            SendResult::Confirmed
        );
        assert_eq!(
            judge(ok, None, r#"{"challenge":"no"}"#, Some("c1"), &h),
            SendResult::Sent
        );
        assert!(matches!(
            judge(StatusCode::GONE, None, "", None, &h),
            SendResult::Gone(_)
        ));
        assert_eq!(
            judge(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(7)),
                "",
                None,
                &h
            ),
            SendResult::RateLimited(Duration::from_secs(7))
        );
        assert!(matches!(
            judge(StatusCode::SERVICE_UNAVAILABLE, Some(Duration::from_secs(9)), "", None, &h),
            SendResult::Retry { after: Some(a), .. } if a == Duration::from_secs(9)
        ));
        assert!(matches!(
            judge(StatusCode::BAD_GATEWAY, None, "", None, &h),
            SendResult::Retry { .. }
        ));
        assert!(matches!(
            judge(StatusCode::FOUND, None, "", None, &h),
            SendResult::Permanent(r) if r.contains("redirects are not followed")
        ));
        assert!(matches!(
            judge(StatusCode::UNAUTHORIZED, None, "bad signature", None, &h),
            SendResult::Permanent(r) if r.contains("401") && r.contains("bad signature")
        ));
    }
}
