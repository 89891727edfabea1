//! What the channels that speak HTTP share (the webhook and ntfy channels): a client that
//! follows no redirect and has a time limit, the refusal of private, loopback and link-local
//! targets (names resolved by the channel itself, so a name that changes what it points to
//! cannot get past the check: SSRF), reading a bounded part of an answer, `Retry-After`, and
//! what a request that got no answer comes to.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::channel::SendResult;
use crate::NotifierError;

/// How much of an answer is read: enough for a challenge or an error message.
pub(crate) const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Which channel a request is for, as its messages name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope {
    /// Its config section: `channels.webhook`.
    pub(crate) section: &'static str,
    /// What it sends and where, for a refused target: "webhooks go".
    pub(crate) what_goes: &'static str,
}

/// A client for `scope`'s channel: no redirects followed, every request within `timeout`
/// (connecting within 10 s of it at most), `max_connections` kept open per host, and unless
/// `allow_private` names resolved to public addresses only.
pub(crate) fn client(
    scope: Scope,
    timeout: Duration,
    max_connections: usize,
    allow_private: bool,
    user_agent: &str,
) -> Result<reqwest::Client, NotifierError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(max_connections)
        .user_agent(user_agent);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly { scope }));
    }
    builder.build().map_err(|e| NotifierError::Config {
        field: scope.section,
        reason: format!("cannot build the HTTP client: {e}"),
    })
}

/// An HTTP channel's client and limits: what the webhook and ntfy channels hold.
pub(crate) struct Poster {
    client: reqwest::Client,
    scope: Scope,
    timeout: Duration,
    parallelism: usize,
    allow_private: bool,
}

/// What an endpoint answered: its status, `Retry-After`, the first [`MAX_ANSWER_BYTES`] of
/// its body, and its headers.
pub(crate) struct Answer {
    pub(crate) status: reqwest::StatusCode,
    pub(crate) after: Option<Duration>,
    pub(crate) text: String,
    pub(crate) headers: HeaderMap,
}

impl Poster {
    /// The client for `scope`'s channel (see [`client`]), with its limits.
    pub(crate) fn new(
        scope: Scope,
        timeout_secs: u64,
        max_connections: usize,
        allow_private: bool,
        user_agent: &str,
    ) -> Result<Poster, NotifierError> {
        let timeout = Duration::from_secs(timeout_secs.max(1));
        Ok(Poster {
            client: client(scope, timeout, max_connections, allow_private, user_agent)?,
            scope,
            timeout,
            parallelism: max_connections.max(1),
            allow_private,
        })
    }

    /// The most one request may take.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The requests made at once (the connections kept per host).
    pub(crate) fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// POSTs `body` with `headers` to `address` (a stored destination address): the answer,
    /// or what a request that got none comes to (a refused target is permanent).
    pub(crate) async fn post(
        &self,
        address: &str,
        headers: HeaderMap,
        body: impl Into<reqwest::Body>,
    ) -> Result<Answer, SendResult> {
        let url = reqwest::Url::parse(address)
            .map_err(|e| SendResult::Permanent(format!("{address:?} is not a URL: {e}")))?;
        if let Some(refused) = refused_literal(self.scope, &url, self.allow_private) {
            return Err(refused);
        }
        let sent = self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut answer = sent.map_err(|err| failed_request(self.scope, &err))?;
        let after = retry_after(answer.headers());
        let text = read_some(&mut answer).await;
        Ok(Answer {
            status: answer.status(),
            after,
            text,
            headers: answer.headers().clone(),
        })
    }
}

/// The refusal of a URL whose host is a literal private address, unless `allow_private`. A
/// literal address is connected to without a lookup, so it is checked here; names are
/// checked by the resolver, at connection time.
pub(crate) fn refused_literal(
    scope: Scope,
    url: &reqwest::Url,
    allow_private: bool,
) -> Option<SendResult> {
    if allow_private {
        return None;
    }
    let ip = literal_ip(url)?;
    (!is_public(ip)).then(|| SendResult::Permanent(private_target(scope, &ip.to_string(), ip)))
}

/// The first [`MAX_ANSWER_BYTES`] of an answer, as text (an endpoint that streams forever
/// is cut off by the client's timeout).
pub(crate) async fn read_some(answer: &mut reqwest::Response) -> String {
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
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
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
pub(crate) fn failed_request(scope: Scope, err: &reqwest::Error) -> SendResult {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<PrivateTarget>() {
            return SendResult::Permanent(refused.0.clone());
        }
        source = e.source();
    }
    let what = if err.is_timeout() {
        format!("no answer in time ({}.timeout_secs)", scope.section)
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

/// A name or address the channel will not send to.
#[derive(Debug)]
struct PrivateTarget(String);

impl std::fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for PrivateTarget {}

fn private_target(scope: Scope, host: &str, ip: IpAddr) -> String {
    format!(
        "refused: {host} is {ip}, a private, loopback or link-local address; {} to \
         public addresses only unless the admin sets {}.allow_private_targets",
        scope.what_goes, scope.section
    )
}

/// Resolves names like the system does and keeps public addresses only.
struct PublicOnly {
    scope: Scope,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let scope = self.scope;
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
                (true, Some(first)) => Err(Box::new(PrivateTarget(private_target(
                    scope,
                    &host,
                    first.ip(),
                ))) as Box<dyn StdError + Send + Sync>),
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

    #[test]
    fn literal_private_targets_are_refused_by_name_of_the_section() {
        let scope = Scope {
            section: "channels.ntfy",
            what_goes: "ntfy messages go",
        };
        let url = reqwest::Url::parse("http://127.0.0.1:9/alerts").ok();
        let refused = url
            .as_ref()
            .and_then(|url| refused_literal(scope, url, false));
        assert!(
            matches!(&refused, Some(SendResult::Permanent(r))
                if r.contains("private, loopback or link-local")
                    && r.contains("channels.ntfy.allow_private_targets")),
            "{refused:?}"
        );
        assert_eq!(
            url.as_ref()
                .and_then(|url| refused_literal(scope, url, true)),
            None
        );
        let named = reqwest::Url::parse("https://ntfy.sh/alerts").ok();
        assert_eq!(
            named
                .as_ref()
                .and_then(|url| refused_literal(scope, url, false)),
            None
        );
    }
}
