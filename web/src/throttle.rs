//! Sign-in throttling (OWASP ASVS 2.2.1): two keyed GCRA limiters from `governor`, one per
//! account name and one per client address. An account gets a few tries, then about one a
//! minute, whoever tries; an address gets more (several people may share one), then one
//! every few seconds. A refused try is answered 429 with `Retry-After` before any password
//! is hashed, so throttled guessing costs neither CPU nor memory.
//!
//! The client address is the TCP peer, or, when `web.client_address_header` names the
//! header a trusted reverse proxy sets, the last address in that header. IPv6 clients are
//! keyed by their /64 network, which one host usually controls whole.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::{AppState, Error};

/// Tries per account before throttling starts.
const ACCOUNT_BURST: u32 = 5;
/// Then one more try per account per this long.
const ACCOUNT_PERIOD: Duration = Duration::from_secs(60);
/// Tries per client address before throttling starts (sign-ups count too).
const ADDRESS_BURST: u32 = 20;
/// Then one more try per address per this long.
const ADDRESS_PERIOD: Duration = Duration::from_secs(6);
/// How often keys whose limit has fully recovered are forgotten, so that the limiters'
/// memory follows recent activity instead of growing with every name ever tried.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Account keys are cut to this many characters: no valid username is longer, and a
/// request must not make the server keep a 64 KiB key.
const ACCOUNT_KEY_CHARS: usize = 64;

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The sign-in limiters. `C` is a fake clock in unit tests.
pub(crate) struct Throttle<C: Clock = DefaultClock> {
    by_account: Keyed<String, C>,
    by_address: Keyed<IpAddr, C>,
    clock: C,
    last_sweep: Mutex<C::Instant>,
}

impl Throttle {
    pub(crate) fn new() -> Throttle {
        Throttle::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> Throttle<C> {
    fn with_clock(clock: C) -> Throttle<C> {
        let quota = |burst: u32, period: Duration| {
            Quota::with_period(period)
                .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
        };
        Throttle {
            by_account: RateLimiter::new(
                quota(ACCOUNT_BURST, ACCOUNT_PERIOD),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            by_address: RateLimiter::new(
                quota(ADDRESS_BURST, ADDRESS_PERIOD),
                DefaultKeyedStateStore::default(),
                clock.clone(),
            ),
            last_sweep: Mutex::new(clock.now()),
            clock,
        }
    }

    /// Counts a sign-in try for `account` from `address`; `Err` with the time to wait when
    /// either has had too many. Both are always counted, so the wait given is the longer
    /// of the two: a client told "6 seconds" by its address must not then meet the
    /// account's minute.
    pub(crate) fn sign_in(&self, account: &str, address: IpAddr) -> Result<(), Duration> {
        self.sweep();
        let key: String = account
            .trim()
            .to_lowercase()
            .chars()
            .take(ACCOUNT_KEY_CHARS)
            .collect();
        let by_account = self
            .by_account
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()));
        match (self.address(address), by_account) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(wait), Ok(())) | (Ok(()), Err(wait)) => Err(wait),
            (Err(a), Err(b)) => Err(a.max(b)),
        }
    }

    /// Counts a sign-up from `address` (each costs a password hash too).
    pub(crate) fn sign_up(&self, address: IpAddr) -> Result<(), Duration> {
        self.sweep();
        self.address(address)
    }

    fn address(&self, address: IpAddr) -> Result<(), Duration> {
        self.by_address
            .check_key(&network(address))
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets recovered keys, at most once per [`SWEEP_EVERY`]; whoever finds the lock
    /// taken leaves the work to its holder.
    fn sweep(&self) {
        let Ok(mut last) = self.last_sweep.try_lock() else {
            return;
        };
        let now = self.clock.now();
        if now.duration_since(*last) < SWEEP_EVERY.into() {
            return;
        }
        *last = now;
        self.by_account.retain_recent();
        self.by_address.retain_recent();
        self.by_account.shrink_to_fit();
        self.by_address.shrink_to_fit();
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.by_account.len() + self.by_address.len()
    }
}

/// The key an address is limited under: IPv4 as is, IPv6 by its /64 network.
fn network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mask = !0u128 << 64;
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// Whole seconds to wait, rounded up, for `Retry-After` and the page.
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// The client's address: see the module documentation.
pub(crate) struct ClientAddress(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let forwarded = state
            .config
            .client_address_header
            .as_deref()
            .and_then(|name| parts.headers.get(name))
            .and_then(|value| value.to_str().ok())
            .and_then(last_address);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        match forwarded.or(peer) {
            Some(address) => Ok(ClientAddress(address)),
            None => Err(Error::Internal(
                "no client address: serve the app with connect info".into(),
            )),
        }
    }
}

/// The last address in a proxy header (`client, proxy1, proxy2` lists grow to the right,
/// and only the entry our own proxy added can be trusted); ports are allowed.
fn last_address(value: &str) -> Option<IpAddr> {
    let last = value.rsplit(',').next()?.trim();
    last.parse::<IpAddr>()
        .ok()
        .or_else(|| last.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn an_account_gets_a_few_tries_then_one_a_minute() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(clock.clone());
        let home = ip("192.0.2.1");
        for n in 0..ACCOUNT_BURST {
            assert!(throttle.sign_in("alice", home).is_ok(), "try {n}");
        }
        let wait = throttle.sign_in("Alice ", home).err();
        assert!(
            wait.is_some_and(|w| w > Duration::from_secs(50)),
            "{wait:?}"
        );
        assert!(
            throttle.sign_in("bob", home).is_ok(),
            "other accounts go on"
        );
        clock.advance(Duration::from_secs(30));
        assert!(throttle.sign_in("alice", ip("198.51.100.7")).is_err());
        clock.advance(Duration::from_secs(31));
        assert!(throttle.sign_in("alice", home).is_ok(), "one a minute");
        assert!(throttle.sign_in("alice", home).is_err());
    }

    #[test]
    fn an_address_gets_more_tries_then_waits() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(clock.clone());
        let crowd = ip("2001:db8:1:2::10");
        for n in 0..ADDRESS_BURST {
            assert!(throttle.sign_in(&format!("user{n}"), crowd).is_ok());
        }
        // The same /64 is the same client; another address is not.
        assert!(throttle.sign_in("fresh", ip("2001:db8:1:2::99")).is_err());
        // Refused by the address and the account: the longer wait is the one to tell.
        for _ in 0..ACCOUNT_BURST {
            let _ = throttle.sign_in("both", crowd);
        }
        let wait = throttle.sign_in("both", crowd).err();
        assert!(wait.is_some_and(|w| w > ADDRESS_PERIOD), "{wait:?}");
        assert!(throttle.sign_up(crowd).is_err());
        assert!(throttle.sign_in("fresh", ip("2001:db8:1:3::10")).is_ok());
        clock.advance(ADDRESS_PERIOD);
        assert!(throttle.sign_up(crowd).is_ok());
    }

    #[test]
    fn recovered_keys_are_forgotten() {
        let clock = FakeRelativeClock::default();
        let throttle = Throttle::with_clock(clock.clone());
        for n in 0..500u32 {
            let address = IpAddr::from(n.to_be_bytes());
            assert!(throttle.sign_in(&format!("name{n}"), address).is_ok());
        }
        assert_eq!(throttle.keys(), 1000);
        clock.advance(Duration::from_secs(3600));
        assert!(throttle.sign_in("last", ip("192.0.2.9")).is_ok());
        assert_eq!(throttle.keys(), 2, "only the newest try is remembered");
    }

    #[test]
    fn addresses_and_waits() {
        assert_eq!(network(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(network(ip("2001:db8::1:2:3:4")), ip("2001:db8::"));
        assert_eq!(last_address("203.0.113.5"), Some(ip("203.0.113.5")));
        assert_eq!(
            last_address("10.0.0.1, 203.0.113.5:4711"),
            Some(ip("203.0.113.5"))
        );
        assert_eq!(last_address("[2001:db8::1]:80"), Some(ip("2001:db8::1")));
        assert_eq!(last_address("unknown"), None);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::from_secs(6)), 6);
    }
}
