//! Webhooks end to end, through the built binary, to a real HTTP receiver that checks every
//! signature with the Standard Webhooks reference library: a new endpoint is confirmed by
//! answering its challenge; a notification arrives signed, with the message in it; 410 Gone
//! disables the destination; a redirect is not followed (and the admin retries the dead
//! notification once it is fixed); private addresses are refused
//! unless the admin allows them.

use std::time::Duration;

use crate::support::{envelope, wait_for, Hub, Received, WebhookReceiver};

const FILTER: &str = r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#;

fn publish(hub: &Hub, id: &str) {
    let line = envelope(
        id,
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"user": {"name": "alice"}, "text": "works for me", "karma": 1,
            "update": {"alias": "FEDORA-2024-1", "title": "tidings-1.0-1.fc40"}}, "agent": "alice"}),
    );
    hub.publish(id, &[line]);
}

/// A hub whose HTTP channels may reach this machine's own addresses (the receivers are
/// on loopback), with the user alice.
fn private_hub() -> Hub {
    let mut hub = Hub::new(None, None);
    hub.allow_private_targets();
    hub.run(&["user", "add", "alice"]);
    hub
}

/// Adds a webhook for `user` and returns the signing secret the command printed once.
fn add_webhook(hub: &Hub, user: &str, url: &str, confirmed: bool) -> String {
    let mut args = vec!["destination", "add", "--user", user, "--webhook", url];
    if confirmed {
        args.push("--confirmed");
    }
    let out = hub.run(&args);
    out.lines()
        .find_map(|l| l.strip_prefix("signing secret (shown only now): "))
        .unwrap_or_else(|| panic!("no secret printed: {out}"))
        .to_string()
}

fn destination_state(hub: &Hub, user: &str) -> String {
    let list = hub.run(&["destination", "list", "--user", user]);
    list.lines()
        .find(|l| l.contains("\twebhook\t"))
        .and_then(|l| l.split('\t').nth(3))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_webhook_answers_its_challenge_then_receives_signed_notifications() {
    let mut hub = private_hub();
    let receiver = WebhookReceiver::start(hub.dir.path());
    let secret = add_webhook(&hub, "alice", &receiver.url("/hooks/tidings"), false);
    assert!(secret.starts_with("whsec_"), "{secret}");
    receiver.set_secret(&secret);
    hub.add_filter("alice", FILTER);
    assert_eq!(destination_state(&hub, "alice"), "unconfirmed");
    hub.start();

    // The challenge: signed, answered, and the destination is confirmed by it.
    let got = receiver.wait_received(1, Duration::from_secs(30));
    let challenge = &got[0];
    assert_eq!(challenge.verified, "yes", "{challenge:?}");
    assert_eq!(challenge.path, "/hooks/tidings");
    assert_eq!(challenge.body["type"], "tidings.confirmation");
    assert!(challenge.body["data"]["challenge"]
        .as_str()
        .is_some_and(|c| c.len() > 20));
    assert!(challenge.body["data"]["confirm_url"]
        .as_str()
        .is_some_and(|u| u.contains("/confirm/")));
    let started = std::time::Instant::now();
    while destination_state(&hub, "alice") != "confirmed" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the webhook was not confirmed by its answer; log:\n{}",
            hub.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A notification: signed, with the message and its metadata.
    publish(&hub, "2024-webhook-1");
    let got = receiver.wait_received(2, Duration::from_secs(30));
    let note = &got[1];
    assert_eq!(note.verified, "yes", "{note:?}");
    assert_eq!(note.body["type"], "tidings.notification");
    let data = &note.body["data"];
    assert_eq!(data["message"]["id"], "2024-webhook-1");
    assert_eq!(
        data["message"]["topic"],
        "org.fedoraproject.prod.bodhi.update.comment"
    );
    assert_eq!(data["message"]["body"]["comment"]["text"], "works for me");
    assert_eq!(data["filters"], serde_json::json!(["my filter"]));
    assert!(data["metadata"]["usernames"]
        .as_array()
        .is_some_and(|u| u.iter().any(|n| n == "alice")));
    assert_eq!(
        note.header("webhook-id"),
        data["id"].as_str().unwrap_or("?")
    );
    assert_eq!(note.header("content-type"), "application/json");

    // A signature made with another secret is refused by the same library: the check above
    // is a real one.
    receiver.set_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    publish(&hub, "2024-webhook-2");
    let got = receiver.wait_received(3, Duration::from_secs(30));
    assert!(got[2].verified.starts_with("no"), "{:?}", got[2]);
}

#[test]
fn gone_disables_redirects_are_not_followed_and_private_targets_are_refused() {
    // Without the admin's leave, a loopback endpoint is refused: its challenge is dead with
    // the reason, and nothing reaches it.
    let mut hub = Hub::new(None, None);
    let receiver = WebhookReceiver::start(hub.dir.path());
    hub.run(&["user", "add", "alice"]);
    add_webhook(&hub, "alice", &receiver.url("/private"), false);
    hub.start();
    wait_for(
        "the refused challenge to be dead",
        Duration::from_secs(30),
        || {
            let dead = hub.run(&["outbox", "dead"]);
            dead.contains("private, loopback or link-local")
                .then_some(dead)
        },
    );
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());
    hub.kill();

    // With it: a redirect is not followed (the row is dead, /elsewhere never asked).
    let mut hub = private_hub();
    let secret = add_webhook(&hub, "alice", &receiver.url("/hook"), true);
    receiver.set_secret(&secret);
    hub.add_filter("alice", FILTER);
    receiver.set_mode("redirect");
    hub.start();
    publish(&hub, "2024-redirected");
    wait_for(
        "the redirected notification to be dead",
        Duration::from_secs(30),
        || {
            let dead = hub.run(&["outbox", "dead"]);
            dead.contains("redirects are not followed").then_some(dead)
        },
    );
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/hook");

    // The admin retries the dead notification once the endpoint is fixed: it arrives, with
    // the id it had.
    receiver.set_mode("ok");
    let out = hub.run(&["outbox", "retry", "--all"]);
    assert!(out.contains("queued 1 dead"), "{out}");
    let got = receiver.wait_received(2, Duration::from_secs(30));
    assert_eq!(got[1].verified, "yes", "{:?}", got[1]);
    assert_eq!(got[1].header("webhook-id"), got[0].header("webhook-id"));
    assert!(!hub.run(&["outbox", "dead"]).contains("redirects"));

    // 410 Gone: the destination is disabled, with the reason, and nothing more is posted.
    receiver.set_mode("gone");
    publish(&hub, "2024-gone");
    receiver.wait_received(3, Duration::from_secs(30));
    wait_for(
        "the gone webhook to be disabled",
        Duration::from_secs(20),
        || {
            let state = destination_state(&hub, "alice");
            state.starts_with("disabled: HTTP 410").then_some(state)
        },
    );
    publish(&hub, "2024-after-gone");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        receiver.received().len(),
        3,
        "posted after 410 Gone: {:?}",
        receiver.received()
    );
    assert!(hub.log().contains("destination disabled"), "{}", hub.log());
}

/// The mirrors' case (issue 10): sync messages for several trees; each mirror's webhook
/// receives exactly the events of its tree, signed, in the order they happened, and a
/// mirror whose endpoint was down receives them all, still in order, when it comes back.
#[test]
fn mirrors_receive_their_trees_syncs_in_order_even_after_an_outage() {
    const SYNC: &str = "org.fedoraproject.prod.bodhi.updates.fedora.sync";
    let mut hub = private_hub();
    // Retries soon, so that the outage below is waited out in seconds.
    hub.env
        .insert("TIDINGS_SENDER__BACKOFF_BASE_MS".into(), "200".into());
    hub.env
        .insert("TIDINGS_SENDER__BACKOFF_MAX_MS".into(), "1000".into());
    let stable = WebhookReceiver::start(&hub.dir.path().join("stable"));
    let testing = WebhookReceiver::start(&hub.dir.path().join("testing"));
    for (user, receiver, repo) in [
        ("mirror-stable", &stable, "updates"),
        ("mirror-testing", &testing, "updates-testing"),
    ] {
        hub.run(&["user", "add", user]);
        let secret = add_webhook(&hub, user, &receiver.url("/sync"), true);
        receiver.set_secret(&secret);
        let condition = format!(
            r#"topic ~ "org.fedoraproject.*.bodhi.updates.fedora.sync" and body.repo == "{repo}""#
        );
        hub.run(&[
            "filter",
            "add",
            "--user",
            user,
            "--name",
            "my tree",
            "--condition",
            &condition,
        ]);
    }
    // The testing mirror's endpoint is down: 503 with Retry-After.
    testing.set_mode("down");
    hub.start();
    let syncs: Vec<(String, &str, &str)> = [
        ("updates", "40"),
        ("updates-testing", "40"),
        ("updates", "41"),
        ("updates-testing", "41"),
        ("updates", "42"),
        ("updates-testing", "42"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (repo, release))| (format!("2026-sync-{i}"), *repo, *release))
    .collect();
    let mut lines: Vec<String> = syncs
        .iter()
        .map(|(id, repo, release)| {
            envelope(
                id,
                SYNC,
                serde_json::json!({"repo": repo, "release": release, "bytes": "1 GiB"}),
            )
        })
        .collect();
    // A sync of another tree, which neither mirror carries.
    lines.insert(
        3,
        envelope(
            "2026-rawhide",
            "org.fedoraproject.prod.compose.rawhide.rsync.complete",
            serde_json::json!({"branch": "rawhide", "arch": "x86_64"}),
        ),
    );
    hub.publish("syncs", &lines);
    let ids_for = |repo: &str| -> Vec<String> {
        syncs
            .iter()
            .filter(|(_, r, _)| *r == repo)
            .map(|(id, ..)| id.clone())
            .collect()
    };
    let message_ids = |got: &[Received]| -> Vec<String> {
        got.iter()
            .map(|r| {
                r.body["data"]["message"]["id"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string()
            })
            .collect()
    };

    // The stable mirror: exactly its three syncs, signed, in order.
    let got = stable.wait_received(3, Duration::from_secs(30));
    assert_eq!(message_ids(&got), ids_for("updates"), "{got:?}");
    assert!(got.iter().all(|r| r.verified == "yes"), "{got:?}");

    // The testing mirror, while down: only its first sync is tried, again and again.
    let tried = testing.wait_received(2, Duration::from_secs(30));
    let first = &ids_for("updates-testing")[0];
    assert!(
        message_ids(&tried).iter().all(|id| id == first),
        "a later sync was tried before the first went through: {:?}",
        message_ids(&tried)
    );
    // Back up: all three arrive, in order, each once it is accepted.
    testing.set_mode("ok");
    let accepted_from = tried.len();
    let got = wait_for(
        "the testing mirror's three syncs",
        Duration::from_secs(60),
        || {
            let got = testing.received();
            let mut ids = message_ids(&got);
            ids.dedup();
            (ids.len() >= 3).then_some((got, ids))
        },
    );
    let (all, ids) = got;
    assert_eq!(ids, ids_for("updates-testing"), "out of order: {ids:?}");
    assert!(all[accepted_from..].iter().all(|r| r.verified == "yes"));
    assert_eq!(
        stable.received().len(),
        3,
        "nothing more for the stable mirror"
    );
}
