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

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use tidings_store::{ChannelKind, ChannelSettings, Destination};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::render::Rendered;
use crate::{NotifierError, WebhookConfig};

/// How much of an answer is read: enough for a challenge or an error message.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// How long a 429 without `Retry-After` waits.
const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(60);

/// Posts notifications to webhook destinations.
pub struct WebhookChannel {
    client: reqwest::Client,
    timeout: Duration,
    parallelism: usize,
    allow_private: bool,
}

impl WebhookChannel {
    /// The channel with `config`'s limits; `user_agent` names this hub to receivers.
    pub fn from_config(config: &WebhookConfig, user_agent: &str) -> Result<Self, NotifierError> {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.max_connections)
            .user_agent(user_agent);
        if !config.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder.build().map_err(|e| NotifierError::Config {
            field: "channels.webhook",
            reason: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(WebhookChannel {
            client,
            timeout,
            parallelism: config.max_connections.max(1),
            allow_private: config.allow_private_targets,
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
        let url = match reqwest::Url::parse(&to.address) {
            Ok(url) => url,
            Err(e) => return SendResult::Permanent(format!("{:?} is not a URL: {e}", to.address)),
        };
        // A literal address is connected to without a lookup, so it is checked here; names
        // are checked by the resolver, at connection time.
        if !self.allow_private {
            if let Some(ip) = literal_ip(&url) {
                if !is_public(ip) {
                    return SendResult::Permanent(private_target(&ip.to_string(), ip));
                }
            }
        }
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
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut answer = match sent {
            Ok(answer) => answer,
            Err(err) => return failed_request(&err),
        };
        let status = answer.status();
        let after = retry_after(answer.headers());
        let text = read_some(&mut answer).await;
        judge(
            status,
            after,
            &text,
            rendered.challenge.as_deref(),
            answer.headers(),
        )
    }
}

impl Channel for WebhookChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn parallelism(&self) -> usize {
        self.parallelism
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

/// The first [`MAX_ANSWER_BYTES`] of an answer, as text (an endpoint that streams forever
/// is cut off by the client's timeout).
async fn read_some(answer: &mut reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match answer.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_ANSWER_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `Retry-After` in seconds (the HTTP-date form is read as "no hint").
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(86_400)))
}

/// A request that got no answer: refused targets are permanent, the rest retried.
fn failed_request(err: &reqwest::Error) -> SendResult {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<PrivateTarget>() {
            return SendResult::Permanent(refused.0.clone());
        }
        source = e.source();
    }
    let what = if err.is_timeout() {
        "no answer in time (channels.webhook.timeout_secs)".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    // The innermost cause says most (connection refused, a name not found).
    let mut cause = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        cause = e.to_string();
        source = e.source();
    }
    SendResult::Retry {
        after: None,
        reason: format!("{what}: {cause}"),
    }
}

/// A name or address the channel will not post to.
#[derive(Debug)]
struct PrivateTarget(String);

impl std::fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for PrivateTarget {}

fn private_target(host: &str, ip: IpAddr) -> String {
    format!(
        "refused: {host} is {ip}, a private, loopback or link-local address; webhooks go to \
         public addresses only unless the admin sets channels.webhook.allow_private_targets"
    )
}

/// Resolves names like the system does and keeps public addresses only.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| is_public(a.ip()))
                .collect();
            match (public.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(public.into_iter()) as Addrs),
                (true, Some(first)) => {
                    Err(Box::new(PrivateTarget(private_target(&host, first.ip())))
                        as Box<dyn StdError + Send + Sync>)
                }
                (true, None) => Err(format!("{host} has no address").into()),
            }
        })
    }
}

/// The URL's host, if it is a literal address.
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Whether `ip` is an address on the public internet: not loopback, private (RFC 1918,
/// unique local), link-local, shared (100.64/10), unspecified, broadcast, multicast or
/// documentation; an IPv4 address mapped into IPv6 is judged as itself.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
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

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            "224.0.0.1",
        ] {
            let ip: IpAddr = private.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert!(!is_public(ip), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = public.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert!(is_public(ip), "{public}");
        }
    }
}
