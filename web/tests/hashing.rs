//! Issue 8 item 4: password hashing is bounded. Each argon2 hash holds 19 MiB while it runs;
//! 96 concurrent bogus sign-ins (from 96 addresses, so throttling does not stop them) took
//! the process from 26 MiB to 1.8 GiB. Now at most `hashing_limit()` hashes run at once
//! (the CPU count, at most 4), a short queue waits, and the rest are answered 503.

use reqwest::StatusCode;
use tidings_store::secret::{hashing_limit, hashing_peak};

use crate::support::{csrf, App, Db};

/// Argon2's default memory cost (m = 19456 KiB), what one running hash holds.
const HASH_KIB: u64 = 19 * 1024;
/// Room for everything else that may run meanwhile: the 96 connections' buffers, the
/// allocator's slack, and the other tests of this binary sharing the process.
const SLACK_KIB: u64 = 96 * 1024;

/// A `Vm*` line of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sign_ins_hash_a_few_at_a_time_and_memory_stays_flat() {
    let app = App::start(Db::Sqlite).await.unwrap();
    let mut visitors = Vec::new();
    for n in 1..=96 {
        let visitor = app.browser_from(&format!("127.0.1.{n}"));
        let token = csrf(&visitor.get("/signin").await.body);
        visitors.push((n, visitor, token));
    }
    let before = status_kib("VmRSS");
    // Restart the peak-RSS count (VmHWM) from the current RSS.
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");

    let mut sign_ins = tokio::task::JoinSet::new();
    for (n, visitor, token) in visitors {
        sign_ins.spawn(async move {
            let name = format!("nobody{n}");
            visitor
                .post(
                    "/signin",
                    &[
                        ("csrf", token.as_str()),
                        ("username", name.as_str()),
                        ("password", "not the password at all"),
                    ],
                )
                .await
        });
    }
    let (mut refused, mut busy) = (0, 0);
    while let Some(reply) = sign_ins.join_next().await {
        let reply = reply.expect("join");
        match reply.status {
            StatusCode::BAD_REQUEST => {
                assert!(reply.body.contains("Wrong username or password."));
                refused += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(reply.headers.contains_key("retry-after"), "503 says when");
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    let peak = status_kib("VmHWM");
    assert_eq!(refused + busy, 96);
    assert!(refused >= hashing_limit(), "{refused} checked, {busy} busy");
    assert!(
        hashing_peak() <= hashing_limit(),
        "{} hashes ran at once; the limit is {}",
        hashing_peak(),
        hashing_limit()
    );
    let bound = hashing_limit() as u64 * HASH_KIB + SLACK_KIB;
    let growth = peak.saturating_sub(before);
    eprintln!("{refused} checked, {busy} busy; memory grew by {growth} KiB (bound {bound} KiB)");
    assert!(
        growth < bound,
        "memory grew by {growth} KiB during 96 concurrent sign-ins (bound {bound} KiB)"
    );
    app.stop().await;
}
