//! Harness for the end-to-end tests: temp data folders, a real SMTP server (aiosmtpd writing
//! a Maildir), a fresh PostgreSQL database per test (or a PostgreSQL server of the test's own,
//! to stop and start), a small tmpfs to fill, a ZeroMQ publisher, and `tidings serve` (or
//! one role: `tidings web`, `notifier`, `sender`) as a child process. Every process a test starts carries the test's mark (`processes`).

mod amqp;
mod bus;
mod disk;
mod http;
mod hub;
mod irc;
mod matrix;
mod ntfy;
mod oidc;
mod pki;
mod postgres;
mod processes;
mod roles;
mod smtp;
mod webhook;

use std::net::TcpListener;
use std::time::{Duration, Instant};

pub use amqp::{Broker, RabbitServer, TlsFiles};
pub use bus::Publisher;
pub use disk::SmallDisk;
pub use http::{form_field, http_get, http_request};
pub use hub::Hub;
pub use irc::{IrcClient, Ngircd, Privmsg};
pub use matrix::{Event, MatrixUser, Synapse};
pub use ntfy::FakeNtfy;
pub use oidc::OidcProvider;
pub use pki::{Pki, LEAF, SERVER};
pub use postgres::{PgDatabase, PgServer};
pub use processes::{marked, owner_mark, peak_memory, status_kib, OWNER_ENV};
pub use smtp::Smtp;
pub use webhook::{Received, WebhookReceiver};

pub const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// A free TCP port on loopback, for a server a test starts. Ports are taken below the
/// kernel's ephemeral range (32768 and up), where outgoing connections never land: a port
/// bound and released from that range could be given to any client's socket (a PostgreSQL
/// connection, say) before the server binds it, and CI once saw exactly that ("Address
/// already in use"). Each process walks its own stretch, starting from its pid, and a port
/// is handed out only once per process and only if it binds now.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000; // 10000..32000
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 211) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {}", LOW + SPAN)
}

/// Polls `check` until it returns Some or `limit` passes.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether a test that needs root or local tools may be skipped here: outside CI, yes (with
/// a note saying why); in CI it must run, so this fails.
pub fn skip_unless_ci(why: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("CI must run this test, but {why}");
    }
    eprintln!("note: skipping: {why}");
    true
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A fedmsg envelope as JSON text.
pub fn envelope(id: &str, topic: &str, body: serde_json::Value) -> String {
    serde_json::json!({ "topic": topic, "msg": body, "msg_id": id, "timestamp": 1_700_000_000.0, "i": 1 }).to_string()
}

/// The Message-ID header of a raw mail.
/// Sends a log shows cut off by their time limit: the server may have taken each all the same
/// (SMTP cannot tell), so each may arrive once more when it is retried.
pub fn timed_out_sends(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("send failed") && line.contains("no answer within"))
        .count()
}

pub fn message_id(raw: &[u8]) -> String {
    let parsed = mailparse::parse_mail(raw).expect("a parsable mail");
    use mailparse::MailHeaderMap as _;
    parsed
        .headers
        .get_first_value("Message-ID")
        .expect("a Message-ID")
}
