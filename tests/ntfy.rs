//! Ntfy end to end, through the built binary, against FakeNtfy: a FAKE ntfy server (ntfy is
//! not packaged here), a small Python server in `support/ntfy.rs` that follows ntfy's
//! documented publish API (a POST to the topic URL, `Title`, `Priority`, `Tags`, `Click`,
//! `Authorization: Bearer`, RFC 2047 titles decoded) and records what it was sent. A topic
//! added with an access token gets its confirmation link published to it, and the link,
//! followed, confirms it; a notification arrives with its title (decoded when it is not
//! ASCII), tag, click link and the token; a missing or wrong token leaves the row dead with
//! ntfy's 401; a loopback topic is refused unless the admin allows private targets.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use crate::support::{envelope, form_field, wait_for, FakeNtfy, Hub};

const FILTER: &str = r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#;

/// A bodhi comment by alice on an update whose title is `title`.
fn publish(hub: &Hub, id: &str, title: &str) {
    let line = envelope(
        id,
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"user": {"name": "alice"}, "text": "works for me", "karma": 1,
            "update": {"alias": "FEDORA-2024-1", "title": title}}, "agent": "alice"}),
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

fn add_topic(hub: &Hub, url: &str, token: Option<&str>, confirmed: bool) -> String {
    let mut args = vec!["destination", "add", "--user", "alice", "--ntfy", url];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    if confirmed {
        args.push("--confirmed");
    }
    hub.run(&args)
}

fn topic_state(hub: &Hub, url: &str) -> String {
    let list = hub.run(&["destination", "list", "--user", "alice"]);
    list.lines()
        .find(|l| l.contains("\tntfy\t") && l.contains(url))
        .and_then(|l| l.split('\t').nth(3))
        .unwrap_or_default()
        .to_string()
}

/// One request to the hub's web port, with the cookies given: (status, Set-Cookie values,
/// body).
fn web_request(
    port: u16,
    method: &str,
    path: &str,
    cookie: &str,
    form: &str,
) -> (u16, Vec<String>, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("web port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{cookie}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let cookies = head
        .lines()
        .filter_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then(|| {
                value
                    .trim()
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .collect();
    (status, cookies, body.to_string())
}

/// Follows a confirmation link the way a person does: opens it, and presses "Confirm".
fn follow_confirm_link(hub: &Hub, link: &str) {
    let path = link
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .unwrap_or_else(|| panic!("not a URL: {link}"));
    let (status, cookies, page) = web_request(hub.web_port, "GET", &path, "", "");
    assert_eq!(status, 200, "{page}");
    let csrf: String = form_field(&page, "csrf")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, _, page) = web_request(
        hub.web_port,
        "POST",
        &path,
        &cookies.join("; "),
        &format!("csrf={csrf}"),
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Address confirmed"), "{page}");
}

#[test]
fn an_ntfy_topic_is_confirmed_by_its_published_link_then_gets_notifications() {
    let mut hub = private_hub();
    let ntfy = FakeNtfy::start(hub.dir.path());
    ntfy.set_token("alerts", "tk_alice_secret");
    let url = ntfy.url("alerts");
    let added = add_topic(&hub, &url, Some("tk_alice_secret"), false);
    assert!(added.contains("added destination ntfy"), "{added}");
    assert!(
        !added.contains("tk_alice_secret"),
        "the token is not printed: {added}"
    );
    assert_eq!(topic_state(&hub, &url), "unconfirmed");
    hub.add_filter("alice", FILTER);
    hub.start();

    // The confirmation: published to the topic with the token, the link in the text and in
    // Click.
    let got = ntfy.wait_published(1, Duration::from_secs(30));
    let confirmation = &got[0];
    assert_eq!(confirmation.status, 200, "{confirmation:?}");
    assert_eq!(confirmation.method, "POST");
    assert_eq!(confirmation.topic, "alerts");
    assert_eq!(confirmation.authorization, "Bearer tk_alice_secret");
    assert_eq!(
        confirmation.title,
        "Confirm this address for Tidings notifications"
    );
    assert!(confirmation.click.contains("/confirm/"), "{confirmation:?}");
    assert!(
        confirmation.message.contains(&confirmation.click),
        "the text carries the link: {confirmation:?}"
    );
    assert_eq!(topic_state(&hub, &url), "unconfirmed");
    follow_confirm_link(&hub, &confirmation.click);
    assert_eq!(topic_state(&hub, &url), "confirmed");

    // A notification, its title not ASCII: sent RFC 2047 encoded, arriving as written.
    publish(&hub, "2024-ntfy-1", "tidings-1.0-1.fc40 — Grüße ✓");
    let got = ntfy.wait_published(2, Duration::from_secs(30));
    let note = &got[1];
    assert_eq!(note.status, 200, "{note:?}");
    assert_eq!(note.topic, "alerts");
    assert_eq!(
        note.title,
        "alice commented on bodhi update tidings-1.0-1.fc40 — Grüße ✓ (karma: 1)"
    );
    assert!(
        note.raw_title.starts_with("=?UTF-8?B?") && note.raw_title.is_ascii(),
        "{note:?}"
    );
    assert_eq!(note.tags, "bodhi");
    assert_eq!(note.priority, "3");
    assert_eq!(
        note.click,
        "https://bodhi.fedoraproject.org/updates/FEDORA-2024-1"
    );
    assert_eq!(note.authorization, "Bearer tk_alice_secret");
    assert!(note.message.contains("Grüße ✓"), "{note:?}");
    assert!(note.message.contains("my filter"), "{note:?}");
    assert!(
        !hub.log().contains("tk_alice_secret"),
        "the token is not logged"
    );

    // A plain title arrives as it is.
    publish(&hub, "2024-ntfy-2", "tidings-1.0-2.fc40");
    let got = ntfy.wait_published(3, Duration::from_secs(30));
    assert_eq!(
        got[2].raw_title,
        "alice commented on bodhi update tidings-1.0-2.fc40 (karma: 1)"
    );
    assert_eq!(got[2].title, got[2].raw_title);
}

#[test]
fn a_missing_or_wrong_token_is_dead_with_ntfys_answer_and_loopback_is_refused() {
    // Without the admin's leave, a loopback topic is refused: its confirmation is dead with
    // the reason, and nothing reaches the server.
    let mut hub = Hub::new(None, None);
    let ntfy = FakeNtfy::start(hub.dir.path());
    hub.run(&["user", "add", "alice"]);
    add_topic(&hub, &ntfy.url("private"), None, false);
    hub.start();
    let dead = wait_for(
        "the refused confirmation to be dead",
        Duration::from_secs(30),
        || {
            let dead = hub.run(&["outbox", "dead"]);
            dead.contains("private, loopback or link-local")
                .then_some(dead)
        },
    );
    assert!(
        dead.contains("channels.ntfy.allow_private_targets"),
        "{dead}"
    );
    assert!(ntfy.published().is_empty(), "{:?}", ntfy.published());
    hub.kill();

    // With it: a protected topic refuses a publish without its token, and one with another
    // token; both rows are dead with ntfy's 401.
    let mut hub = private_hub();
    ntfy.set_token("locked", "tk_right");
    ntfy.set_token("locked2", "tk_right");
    add_topic(&hub, &ntfy.url("locked"), None, true);
    add_topic(&hub, &ntfy.url("locked2"), Some("tk_wrong"), true);
    hub.add_filter("alice", FILTER);
    hub.start();
    publish(&hub, "2024-ntfy-locked", "tidings-1.0-3.fc40");
    wait_for(
        "both refused notifications to be dead",
        Duration::from_secs(30),
        || {
            let dead = hub.run(&["outbox", "dead"]);
            (dead
                .matches("HTTP 401 Unauthorized: unauthorized (ntfy error 40101)")
                .count()
                >= 2)
                .then_some(dead)
        },
    );
    let got = ntfy.published();
    assert_eq!(got.len(), 2, "each tried once, not retried: {got:?}");
    assert!(got.iter().all(|p| p.status == 401), "{got:?}");
    let mut auth: Vec<&str> = got.iter().map(|p| p.authorization.as_str()).collect();
    auth.sort_unstable();
    assert_eq!(auth, ["", "Bearer tk_wrong"]);
}
