//! Issue 13, ownership from the source: `tidings serve` with `[ownership.sync]` reads an
//! owner map in dist-git's `pagure_owner_alias.json` form and the members and sponsors of a
//! group from a FASJSON-style API, both served by `Upstream`, an HTTP server of the test's
//! own: **a stand-in for src.fedoraproject.org and fasjson.fedoraproject.org**, which are
//! not reachable here (and Fedora's FASJSON wants Kerberos). It answers in their formats
//! (namespaces; `@group` owners; `{"result": [...], "page": {...}}` pages) and fails on
//! demand: 500, a hang, an oversized body, malformed JSON, an empty map, a truncated map.
//!
//! Checked on SQLite and PostgreSQL: a user created after a sync has the right
//! `$my_packages` and `$my_groups` at their first sign-in; paging across FASJSON pages;
//! rpms named bare, modules as `modules/NAME`; a package removed upstream loses its owner
//! at the next sync; the admin's imported rows survive the sync and the sync's survive an
//! import; every fault keeps the old data and bumps its counter in `/metrics`.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{form_field, http_get, wait_for, Hub, PgDatabase};

/// What the owner map URL answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ok,
    Status500,
    Hang,
    Oversize,
    Malformed,
    Empty,
    Truncated,
}

struct State {
    owners: Mode,
    groups: Mode,
    /// The owner map served in `Mode::Ok`.
    map: serde_json::Value,
    /// php-sig's members and sponsors.
    members: Vec<&'static str>,
    sponsors: Vec<&'static str>,
    /// Each request's path and its Authorization header.
    seen: Vec<(String, Option<String>)>,
}

/// The stand-in for dist-git and FASJSON (see the module's documentation).
struct Upstream {
    port: u16,
    state: Arc<Mutex<State>>,
}

const PAGE_SIZE: usize = 2;
/// The sync's `max_response_bytes`.
const LIMIT: usize = 4096;

impl Upstream {
    fn start(map: serde_json::Value) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(Mutex::new(State {
            owners: Mode::Ok,
            groups: Mode::Ok,
            map,
            members: vec!["dave", "erin", "alice"],
            sponsors: vec!["gina"],
            seen: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || answer(stream, &state));
            }
        });
        Upstream { port, state }
    }

    fn owners_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/extras/pagure_owner_alias.json",
            self.port
        )
    }

    fn groups_url(&self) -> String {
        format!("http://127.0.0.1:{}/fasjson/v1/", self.port)
    }

    fn set(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.lock().expect("state"));
    }
}

fn answer(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let authorization = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("authorization")
            .then(|| v.trim().to_string())
    });
    let (mode, body) = {
        let mut s = state.lock().expect("state");
        s.seen.push((path.clone(), authorization));
        if path.starts_with("/extras/pagure_owner_alias.json") {
            let body = match s.owners {
                Mode::Malformed => "{\"rpms\": {\"php\": [\"remi\",".to_string(),
                Mode::Empty => r#"{"rpms": {}, "modules": {}}"#.to_string(),
                Mode::Truncated => r#"{"rpms": {"php": ["remi"]}}"#.to_string(),
                _ => s.map.to_string(),
            };
            (s.owners, body)
        } else if let Some(rest) = path.strip_prefix("/fasjson/v1/groups/php-sig/") {
            let (role, query) = rest.split_once('?').unwrap_or((rest, ""));
            let names = match role {
                "members/" => s.members.clone(),
                "sponsors/" => s.sponsors.clone(),
                _ => return respond(&mut stream, 404, "{}", true),
            };
            let number: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page_number="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let size: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("page_size="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(40);
            let pages = names.len().div_ceil(size).max(1);
            let result: Vec<serde_json::Value> = names
                .iter()
                .skip((number - 1) * size)
                .take(size)
                .map(|n| serde_json::json!({"username": n}))
                .collect();
            let body = serde_json::json!({"result": result, "page": {
                "total_results": names.len(), "page_size": size,
                "page_number": number, "total_pages": pages}});
            let body = match s.groups {
                Mode::Malformed => "{\"result\": [".to_string(),
                _ => body.to_string(),
            };
            (s.groups, body)
        } else {
            return respond(&mut stream, 404, "{}", true);
        }
    };
    match mode {
        Mode::Status500 => respond(&mut stream, 500, "{\"error\": \"down\"}", true),
        Mode::Hang => std::thread::sleep(Duration::from_secs(5)),
        // No Content-Length: the body runs until the connection closes, so only the
        // reader's own bound stops it.
        Mode::Oversize => respond(&mut stream, 200, &" ".repeat(LIMIT * 4), false),
        _ => respond(&mut stream, 200, &body, true),
    }
}

fn respond(stream: &mut TcpStream, status: u16, body: &str, length: bool) {
    let length = if length {
        format!("Content-Length: {}\r\n", body.len())
    } else {
        String::new()
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{length}Connection: close\r\n\r\n{body}"
    );
}

/// A counter's value in `/metrics` (0 when absent): the line starting with `series`.
fn counter(hub: &Hub, series: &str) -> u64 {
    let text = http_get(hub.metrics_port, "/metrics").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

const SYNCS: &str = "tidings_ownership_syncs_total ";

fn failures(source: &str, fault: &str) -> String {
    format!("tidings_ownership_sync_failures_total{{source=\"{source}\",fault=\"{fault}\"}} ")
}

/// Waits until two more syncs were written: the second read what the upstream serves now.
fn next_full_sync(hub: &Hub) {
    let now = counter(hub, SYNCS);
    wait_for("two more syncs", Duration::from_secs(60), || {
        (counter(hub, SYNCS) >= now + 2).then_some(())
    });
}

/// `(my_groups, my_packages)` of a username, as `tidings ownership show` resolves them.
fn resolved(hub: &Hub, user: &str) -> (serde_json::Value, serde_json::Value) {
    let shown: serde_json::Value =
        serde_json::from_str(hub.run(&["ownership", "show", "--user", user]).trim())
            .expect("show prints JSON");
    (shown["my_groups"].clone(), shown["my_packages"].clone())
}

fn sync_end_to_end(database_url: Option<&str>) {
    use serde_json::json;
    let upstream = Upstream::start(json!({
        "rpms": {
            "php": ["remi", "@php-sig"],
            "kernel": ["bob"],
            "gone": ["alice"],
            "python-requests": ["alice"],
        },
        "modules": {"php": ["carol"]},
        "container": {},
    }));
    let mut hub = Hub::new(None, database_url);
    for (key, value) in [
        ("OWNERS_URL", upstream.owners_url()),
        ("GROUPS_URL", upstream.groups_url()),
        ("GROUPS", "[\"php-sig\"]".into()),
        ("GROUPS_TOKEN", "s3cret".into()),
        ("INTERVAL_SECS", "1".into()),
        ("TIMEOUT_SECS", "1".into()),
        ("MAX_RESPONSE_BYTES", LIMIT.to_string()),
        ("PAGE_SIZE", PAGE_SIZE.to_string()),
    ] {
        hub.env
            .insert(format!("TIDINGS_OWNERSHIP__SYNC__{key}"), value);
    }
    // The admin's own rows: alice owns firefox and kernel (bob owns kernel upstream).
    let csv = hub.dir.path().join("owners.csv");
    std::fs::write(
        &csv,
        "record,name,member_kind,member\npackage,firefox,user,alice\npackage,kernel,user,alice\n",
    )
    .expect("csv");
    hub.run(&["ownership", "import", &csv.display().to_string()]);

    // `tidings doctor` reads both sources in their formats.
    let doctor = hub.output(&["doctor"], None);
    let doctor = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.contains("ok    ownership sync: owners:")
            && doctor.contains("5 packages, owned by users and 1 groups")
            && doctor.contains("group php-sig: 2 members on page 1 of 2"),
        "{doctor}"
    );

    hub.start();
    wait_for("the first sync", Duration::from_secs(60), || {
        (counter(&hub, SYNCS) >= 1).then_some(())
    });

    // alice signs up after the sync: her first sign-in shows what the sources say — php
    // through php-sig (she is on its second page of members), her own packages, and the
    // admin's rows.
    let added = hub.output(
        &["user", "add", "alice", "--password-stdin"],
        Some("velvet crane harbour 42\n"),
    );
    assert!(added.status.success(), "{added:?}");
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    let page = client
        .get(format!("{site}/signin"))
        .send()
        .and_then(|r| r.text())
        .expect("GET /signin");
    let csrf = form_field(&page, "csrf");
    let signed_in = client
        .post(format!("{site}/signin"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "alice"),
            ("password", "velvet crane harbour 42"),
        ])
        .send()
        .expect("POST /signin");
    assert!(signed_in.status().is_success(), "{}", signed_in.status());
    let me = client
        .get(format!("{site}/me"))
        .send()
        .and_then(|r| r.text())
        .expect("GET /me");
    for part in [
        "php-sig",
        "through the group php-sig",
        "python-requests",
        "gone",
        "firefox",
    ] {
        assert!(me.contains(part), "no {part:?} on /me:\n{me}");
    }
    assert_eq!(
        resolved(&hub, "alice"),
        (
            json!(["php-sig"]),
            json!(["firefox", "gone", "kernel", "php", "python-requests"])
        )
    );
    // A sponsor is in the group too; a module is not the rpm of the same name.
    assert_eq!(resolved(&hub, "gina"), (json!(["php-sig"]), json!(["php"])));
    assert_eq!(resolved(&hub, "carol"), (json!([]), json!(["modules/php"])));
    assert_eq!(resolved(&hub, "bob"), (json!([]), json!(["kernel"])));
    // The FASJSON requests carried the token, the owner map's did not; every page was read.
    {
        let state = upstream.state.lock().expect("state");
        assert!(state.seen.iter().any(
            |(path, _)| path == "/fasjson/v1/groups/php-sig/members/?page_size=2&page_number=2"
        ));
        for (path, authorization) in &state.seen {
            let fasjson = path.starts_with("/fasjson/");
            assert_eq!(
                authorization.as_deref(),
                fasjson.then_some("Bearer s3cret"),
                "{path}"
            );
        }
    }

    // Removed upstream: alice loses gone at the next sync; the admin's rows stay.
    upstream.set(|s| {
        s.map["rpms"].as_object_mut().expect("rpms").remove("gone");
    });
    next_full_sync(&hub);
    let alice_now = (
        json!(["php-sig"]),
        json!(["firefox", "kernel", "php", "python-requests"]),
    );
    assert_eq!(resolved(&hub, "alice"), alice_now);
    // An import that replaces everything replaces only the admin's rows.
    let only_firefox = hub.dir.path().join("firefox.csv");
    std::fs::write(
        &only_firefox,
        "record,name,member_kind,member\npackage,firefox,user,alice\n",
    )
    .expect("csv");
    hub.run(&[
        "ownership",
        "import",
        "--replace",
        &only_firefox.display().to_string(),
    ]);
    let alice_now = (
        json!(["php-sig"]),
        json!(["firefox", "php", "python-requests"]),
    );
    assert_eq!(resolved(&hub, "alice"), alice_now);
    assert_eq!(resolved(&hub, "bob"), (json!([]), json!(["kernel"])));

    // Every fault keeps what was synced and is counted by kind.
    for (source, mode, fault) in [
        ("owners", Mode::Status500, "status"),
        ("owners", Mode::Hang, "timeout"),
        ("owners", Mode::Oversize, "too_large"),
        ("owners", Mode::Malformed, "malformed"),
        ("owners", Mode::Empty, "empty"),
        ("owners", Mode::Truncated, "shrunk"),
        ("groups", Mode::Status500, "status"),
        ("groups", Mode::Hang, "timeout"),
        ("groups", Mode::Malformed, "malformed"),
    ] {
        upstream.set(|s| match source {
            "owners" => s.owners = mode,
            _ => s.groups = mode,
        });
        let series = failures(source, fault);
        wait_for(&series, Duration::from_secs(60), || {
            (counter(&hub, &series) >= 1).then_some(())
        });
        next_full_sync(&hub);
        assert_eq!(
            resolved(&hub, "alice"),
            alice_now,
            "{source} {mode:?}:\n{}",
            hub.log()
        );
        assert_eq!(resolved(&hub, "carol"), (json!([]), json!(["modules/php"])));
        upstream.set(|s| {
            s.owners = Mode::Ok;
            s.groups = Mode::Ok;
        });
    }
    // The log names the URL and, for JSON, where it broke.
    let log = hub.log();
    assert!(
        log.lines().any(|l| l.contains(&upstream.owners_url())
            && l.contains("line 1 column")
            && l.contains("the last synced data is kept")),
        "{log}"
    );
    assert!(
        log.contains("larger than 4096 bytes") && log.contains("fewer than half"),
        "{log}"
    );
    // Healthy again, and a member who left the group loses its packages.
    upstream.set(|s| s.members = vec!["dave", "erin"]);
    next_full_sync(&hub);
    assert_eq!(
        resolved(&hub, "alice"),
        (json!([]), json!(["firefox", "python-requests"]))
    );
}

#[test]
fn ownership_sync_on_sqlite() {
    sync_end_to_end(None);
}

#[test]
fn ownership_sync_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    sync_end_to_end(Some(&db.url));
}
