//! Issue 8 item 4: password hashing is bounded. Each argon2 hash holds 19 MiB while it runs;
//! 96 concurrent bogus sign-ins (from 96 addresses, so throttling does not stop them) took
//! `tidings serve` from 26 MiB to 1.8 GiB, and it stayed there. Now a few hashes run at once
//! on threads that reuse their memory, a short queue waits, and the rest are answered 503.
//! Measured on the hub's own process, so nothing else in the test run counts.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{form_field, status_kib, Hub};

/// Argon2's default memory cost (m = 19456 KiB): what one running hash holds.
const HASH_KIB: u64 = 19 * 1024;
/// The most hashes the hub runs at once (the CPU count, at most 4).
const MOST_HASHES: u64 = 4;
/// Room for everything else: 96 connections' buffers, the allocator's slack.
const SLACK_KIB: u64 = 64 * 1024;

#[test]
fn concurrent_sign_ins_keep_the_hubs_memory_flat() {
    let mut hub = Hub::new(None, None);
    hub.start();
    let pid = hub.pid().expect("serve runs");
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // Each visitor from its own loopback address, with its anonymous CSRF cookie.
        let mut visitors = Vec::new();
        for n in 1..=96u8 {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .local_address(std::net::IpAddr::from([127, 0, 1, n]))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            let page = client
                .get(format!("{site}/signin"))
                .send()
                .await
                .expect("GET /signin")
                .text()
                .await
                .expect("page");
            visitors.push((n, client, form_field(&page, "csrf")));
        }
        let before = status_kib(pid, "VmRSS");
        // Restart the peak-RSS count (VmHWM) from the current RSS.
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("resetting VmHWM");
        let mut sign_ins = tokio::task::JoinSet::new();
        for (n, client, token) in visitors {
            let url = format!("{site}/signin");
            sign_ins.spawn(async move {
                let name = format!("nobody{n}");
                let fields = [
                    ("csrf", token.as_str()),
                    ("username", name.as_str()),
                    ("password", "not the password at all"),
                ];
                let reply = client.post(url).form(&fields).send().await.expect("POST");
                let retry_after = reply.headers().contains_key("retry-after");
                (reply.status(), retry_after)
            });
        }
        let (mut checked, mut busy) = (0, 0);
        while let Some(reply) = sign_ins.join_next().await {
            match reply.expect("join") {
                (StatusCode::BAD_REQUEST, _) => checked += 1,
                (StatusCode::SERVICE_UNAVAILABLE, retry_after) => {
                    assert!(retry_after, "a 503 says when to come back");
                    busy += 1;
                }
                (other, _) => panic!("unexpected {other}"),
            }
        }
        let peak = status_kib(pid, "VmHWM");
        assert_eq!(checked + busy, 96);
        assert!(checked >= 1, "{checked} checked, {busy} busy");
        let bound = MOST_HASHES * HASH_KIB + SLACK_KIB;
        let growth = peak.saturating_sub(before);
        eprintln!("{checked} checked, {busy} busy; the hub grew by {growth} KiB (bound {bound})");
        assert!(
            growth < bound,
            "the hub grew by {growth} KiB during 96 concurrent sign-ins (bound {bound} KiB)"
        );
        // And it still answers: the queue drained.
        let health = reqwest::get(format!("{site}/healthz"))
            .await
            .expect("healthz");
        assert_eq!(health.status(), StatusCode::OK);
    });
}
