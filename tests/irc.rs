//! IRC end to end, through the built binary, against a real IRC server (ngircd) and a
//! person on it (bob, a client of the test's own): a nick and a channel are confirmed by the
//! code each receives, over TLS; a notification then arrives at both; a long one comes as
//! several lines of at most 512 bytes; a message to a nick that is not there ends dead with
//! the server's words; and a server that goes away and comes back is connected to again.
//! (SASL PLAIN, which ngircd does not offer, is tested against a scripted fake server in
//! `notifier/src/irc.rs`.)

use std::time::Duration;

use crate::support::{envelope, wait_for, Hub, IrcClient, Ngircd, Privmsg};

const FILTER: &str = r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#;

fn publish(hub: &Hub, id: &str, title: &str) {
    publish_as(hub, id, id, title);
}

/// A comment on the update `alias`, published with the message id `id`.
fn publish_as(hub: &Hub, id: &str, alias: &str, title: &str) {
    let line = envelope(
        id,
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"user": {"name": "alice"}, "text": "works for me", "karma": 1,
            "update": {"alias": alias, "title": title}}, "agent": "alice"}),
    );
    hub.publish(id, &[line]);
}

/// A hub with IRC on, its network `testnet` at `server`, and the user alice.
fn irc_hub(server: String, tls_ca_file: Option<&std::path::Path>) -> Hub {
    let hub_env = [
        ("TIDINGS_CHANNELS__IRC__ENABLED", "true".to_string()),
        ("TIDINGS_CHANNELS__IRC__NETWORKS__TESTNET__SERVER", server),
        (
            "TIDINGS_CHANNELS__IRC__NETWORKS__TESTNET__TLS",
            tls_ca_file.is_some().to_string(),
        ),
        (
            "TIDINGS_CHANNELS__IRC__NETWORKS__TESTNET__NICK",
            "tidings".into(),
        ),
        (
            "TIDINGS_CHANNELS__IRC__NETWORKS__TESTNET__TIMEOUT_SECS",
            "5".into(),
        ),
        (
            "TIDINGS_CHANNELS__IRC__NETWORKS__TESTNET__FLOOD_INTERVAL_MS",
            "300".into(),
        ),
    ];
    let mut hub = Hub::new(None, None);
    for (key, value) in hub_env {
        hub.env.insert(key.into(), value);
    }
    if let Some(ca) = tls_ca_file {
        hub.env.insert(
            "TIDINGS_CHANNELS__IRC__NETWORKS__TESTNET__TLS_CA_FILE".into(),
            ca.display().to_string(),
        );
    }
    hub.run(&["user", "add", "alice"]);
    hub
}

/// The confirmation code in a message: two groups of five, `7KQ2M-XW4TD`.
fn code_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',']))
        .find(|w| {
            w.len() == 11
                && w.as_bytes()[5] == b'-'
                && w.chars()
                    .all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .map(str::to_string)
}

/// The id of `user`'s destination at `address`.
fn destination_id(hub: &Hub, user: &str, address: &str) -> String {
    let list = hub.run(&["destination", "list", "--user", user]);
    list.lines()
        .find(|l| l.split('\t').nth(2) == Some(address))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("no destination {address} in:\n{list}"))
        .to_string()
}

fn from_hub_to(target: &str) -> impl Fn(&Privmsg) -> bool + '_ {
    move |m| m.from.starts_with("tidings") && m.target == target
}

#[test]
fn a_nick_and_a_channel_confirm_by_code_over_tls_then_receive_notifications() {
    let irc_dir = tempfile::tempdir().expect("temp dir");
    let Some(server) = Ngircd::start(irc_dir.path()) else {
        return;
    };
    let mut hub = irc_hub(
        format!("127.0.0.1:{}", server.tls_port),
        Some(&server.ca_file),
    );
    let bob = IrcClient::connect(server.port, "bob", &["#fedora-test"]);
    hub.run(&[
        "destination",
        "add",
        "--user",
        "alice",
        "--irc",
        "bob@testnet",
    ]);
    hub.run(&[
        "destination",
        "add",
        "--user",
        "alice",
        "--irc",
        "#fedora-test@testnet",
    ]);
    hub.add_filter("alice", FILTER);
    hub.start();

    // Each destination receives its own code, and its owner types it in.
    let limit = Duration::from_secs(60);
    for (target, address) in [
        ("bob", "bob@testnet"),
        ("#fedora-test", "#fedora-test@testnet"),
    ] {
        let sent = bob.wait_privmsg(&format!("the code sent to {target}"), limit, |m| {
            from_hub_to(target)(m) && code_in(&m.text).is_some()
        });
        assert!(sent.text.contains(address), "{sent:?}");
        let code = code_in(&sent.text).unwrap_or_default();
        let id = destination_id(&hub, "alice", address);
        let out = hub.run(&["destination", "confirm", "--user", "alice", &id, &code]);
        assert!(out.contains("confirmed destination"), "{out}");
    }

    // A notification reaches the nick and the channel, one line each.
    publish(&hub, "FEDORA-2024-1", "tidings-1.0-1.fc40");
    for target in ["bob", "#fedora-test"] {
        let note = bob.wait_privmsg(&format!("the notification in {target}"), limit, |m| {
            from_hub_to(target)(m) && m.text.contains("FEDORA-2024-1")
        });
        assert!(
            note.text
                .starts_with("alice commented on bodhi update tidings-1.0-1.fc40 (karma: 1)"),
            "{note:?}"
        );
        assert!(note
            .text
            .ends_with("https://bodhi.fedoraproject.org/updates/FEDORA-2024-1"));
    }

    // A long one comes as several lines, each within RFC 2812's 512 bytes, in order. (The
    // summary cuts a title at 40 characters, as fedmsg_meta did: the link is what is long.)
    let title = "😀".repeat(190);
    let alias = format!("{}-FEDORA-2024-2", "😀".repeat(150));
    publish_as(&hub, "FEDORA-2024-2", &alias, &title);
    bob.wait_privmsg("the end of the long notification", limit, |m| {
        from_hub_to("bob")(m) && m.text.ends_with("FEDORA-2024-2")
    });
    let lines: Vec<Privmsg> = bob
        .received()
        .into_iter()
        .filter(|m| from_hub_to("bob")(m))
        .skip_while(|m| !m.text.starts_with("alice commented on bodhi update 😀"))
        .collect();
    assert!(lines.len() >= 2, "{lines:#?}");
    for line in &lines {
        assert!(
            line.wire_bytes <= 512,
            "{} bytes: {line:?}",
            line.wire_bytes
        );
    }
    let whole: String = lines.iter().map(|l| l.text.as_str()).collect();
    assert!(whole.contains(&"😀".repeat(150)), "{whole}");
    assert!(
        whole.ends_with(&format!("https://bodhi.fedoraproject.org/updates/{alias}")),
        "{whole}"
    );

    // Stopping is quick, whatever IRC is doing.
    let (status, took) = hub.terminate(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "{}", hub.log());
    assert!(took < Duration::from_secs(15), "{took:?}");
    // And says goodbye: bob, in the same channel, sees the hub quit.
    bob.wait_line("the hub to quit", |l| {
        l.starts_with(":tidings!") && l.contains(" QUIT ") && l.contains("Tidings is stopping")
    });
}

#[test]
fn a_missing_nick_ends_dead_and_a_server_that_comes_back_is_reconnected_to() {
    let irc_dir = tempfile::tempdir().expect("temp dir");
    let Some(mut server) = Ngircd::start(irc_dir.path()) else {
        return;
    };
    let mut hub = irc_hub(format!("127.0.0.1:{}", server.port), None);
    for (key, value) in [
        ("TIDINGS_SENDER__MAX_ATTEMPTS", "3"),
        ("TIDINGS_SENDER__BACKOFF_BASE_MS", "200"),
        ("TIDINGS_SENDER__BACKOFF_MAX_MS", "1000"),
    ] {
        hub.env.insert(key.into(), value.into());
    }
    // bob makes #closed invite-only: the hub cannot join it.
    let mut bob = IrcClient::connect(server.port, "bob", &["#closed"]);
    bob.command("MODE #closed +i", "MODE #closed +i");
    hub.run(&[
        "destination",
        "add",
        "--user",
        "alice",
        "--irc",
        "bob@testnet",
        "--confirmed",
    ]);
    hub.run(&[
        "destination",
        "add",
        "--user",
        "alice",
        "--irc",
        "nobody@testnet",
    ]);
    hub.run(&[
        "destination",
        "add",
        "--user",
        "alice",
        "--irc",
        "#closed@testnet",
    ]);
    hub.add_filter("alice", FILTER);
    hub.start();

    // Nobody is there to receive the code: retried, then dead with what the server said.
    // An invite-only channel refuses the hub: dead at once, with the server's words.
    let dead = wait_for(
        "the confirmations to nobody and #closed to be dead",
        Duration::from_secs(60),
        || {
            let dead = hub.run(&["outbox", "dead"]);
            (dead.contains("nobody@testnet") && dead.contains("#closed@testnet")).then_some(dead)
        },
    );
    let row = |address: &str| {
        dead.lines()
            .find(|l| l.contains(address))
            .unwrap_or_default()
            .to_string()
    };
    let nobody = row("nobody@testnet");
    assert!(nobody.contains("401 nobody :No such nick"), "{dead}");
    assert!(nobody.contains("3 attempts"), "{dead}");
    let closed = row("#closed@testnet");
    assert!(
        closed.contains("473 #closed :Cannot join channel (+i)"),
        "{dead}"
    );
    assert!(closed.contains("1 attempts"), "{dead}");

    let limit = Duration::from_secs(60);
    publish(&hub, "FEDORA-2024-3", "tidings-1.0-3.fc40");
    bob.wait_privmsg("the notification before the restart", limit, |m| {
        from_hub_to("bob")(m) && m.text.contains("FEDORA-2024-3")
    });

    // Recorded as sent (the server answered the PING after it) before the server goes:
    // a send cut off before its PONG would be retried, and could arrive twice.
    wait_for("the notification to be recorded sent", limit, || {
        (hub.stats()["outbox"]["sent"] == 1).then_some(())
    });

    // The server goes away and comes back on the same port; the hub connects again by
    // itself (bob too, by hand).
    bob.quit();
    server.restart();
    let bob = IrcClient::connect(server.port, "bob", &[]);
    wait_for("the hub to connect again", limit, || {
        (hub.log().matches("IRC connection up").count() >= 2).then_some(())
    });
    publish(&hub, "FEDORA-2024-4", "tidings-1.0-4.fc40");
    bob.wait_privmsg("the notification after the restart", limit, |m| {
        from_hub_to("bob")(m) && m.text.contains("FEDORA-2024-4")
    });
    let stats = hub.stats();
    assert_eq!(
        stats["outbox"]["dead"],
        2,
        "{stats}\n{}\n{}",
        hub.run(&["outbox", "dead"]),
        hub.log()
    );
    assert!(
        hub.log().contains("IRC connection failed"),
        "the lost connection is logged: {}",
        hub.log()
    );
}
