//! Issue 9: the roles as processes of their own on a shared PostgreSQL database. A web, two
//! notifiers (one matching, one standing by) and two senders: a filter saved in the web
//! reaches the matcher in another process at once; both senders send; after a SIGKILL of a
//! sender and of the active notifier mid-burst, the standby takes over and every expected
//! mail arrives, twice only for sends that were in flight, with the same Message-ID.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{
    envelope, form_field as field, message_id, timed_out_sends, wait_for, Hub, PgDatabase, Smtp,
};

/// Messages published before the kills, and as many after.
const HALF: usize = 300;
/// Each sender's sends in flight: the most a killed sender can leave to be sent again.
const CONCURRENCY: usize = 8;
const PASSWORD: &str = "velvet crane harbour 42";
const SENT: &str = "tidings_notifications_sent_total";

#[test]
fn split_roles_share_the_work_and_survive_kills_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), Some(&db.url));
    // Polls far apart: a matcher pass that comes sooner was woken from another process.
    hub.env
        .insert("TIDINGS_MATCHER__POLL_MS".into(), "600000".into());
    hub.env.insert(
        "TIDINGS_SENDER__CONCURRENCY".into(),
        CONCURRENCY.to_string(),
    );
    hub.env
        .insert("TIDINGS_SENDER__LEASE_SECS".into(), "5".into());
    hub.env
        .insert("TIDINGS_CHANNELS__EMAIL__TIMEOUT_SECS".into(), "3".into());
    hub.run(&["migrate"]);
    let added = hub.output(
        &["user", "add", "alice", "--password-stdin"],
        Some(PASSWORD),
    );
    assert!(added.status.success(), "{added:?}");
    hub.confirmed_destination("alice", "alice@example.org");
    let token = hub.run(&["token", "add", "load"]).trim().to_string();

    let started = std::time::Instant::now();
    let debug = [("TIDINGS_LOG__LEVEL", "info,tidings_notifier=debug")];
    let web = hub.spawn_role("web", "web", &[]);
    let mut active = hub.spawn_role("notifier", "notifier-a", &debug);
    active.wait_log("the matcher lock", &["holds the matcher lock"]);
    let standby = hub.spawn_role("notifier", "notifier-b", &debug);
    standby.wait_log("standing by", &["standing by"]);
    let mut senders = [
        hub.spawn_role("sender", "sender-1", &[]),
        hub.spawn_role("sender", "sender-2", &[]),
    ];

    // A filter saved in the web (another process) is indexed by the active matcher before
    // its next poll, and matches a message published a second after the save.
    save_filter(&hub, r#"topic ~ "org.test.**""#);
    active.wait_log(
        "re-indexing after the web's save",
        &[
            "re-indexed the accounts whose preferences changed",
            "users=1",
        ],
    );
    std::thread::sleep(Duration::from_secs(1));
    let first = envelope(
        "roles-first",
        "org.test.prod.app.event",
        serde_json::json!({}),
    );
    publish_zmq(&hub, &first);
    smtp.wait_mails(1, Duration::from_secs(60));
    eprintln!("first mail after {:?}", started.elapsed());

    // A burst over the HTTP API (acknowledged once stored, so none is lost to the kills).
    let mut publisher = publish_http(&hub, &token, "before", HALF);
    let both = wait_for("both senders to send", Duration::from_secs(120), || {
        let sent = senders.each_ref().map(|s| s.counter(SENT));
        (sent.iter().all(|n| *n > 0) && smtp.mails().len() > HALF / 4).then_some(sent)
    });
    eprintln!("sent by each sender before the kills: {both:?}");
    senders[0].kill();
    active.kill();
    let killed = std::time::Instant::now();
    assert!(publisher.wait().expect("publisher").success());
    standby.wait_log("taking over", &["holds the matcher lock"]);
    eprintln!(
        "the standby took over {:?} after the kill",
        killed.elapsed()
    );
    let mut publisher = publish_http(&hub, &token, "after", HALF);
    assert!(publisher.wait().expect("publisher").success());
    eprintln!("all published after {:?}", started.elapsed());

    let expected = 1 + 2 * HALF;
    let counts = wait_for("every expected mail", Duration::from_secs(180), || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for raw in smtp.mails() {
            *counts.entry(message_id(&raw)).or_default() += 1;
        }
        (counts.len() >= expected).then_some(counts)
    });
    eprintln!("all mail after {:?}", started.elapsed());
    assert_eq!(counts.len(), expected, "distinct Message-IDs");
    let resent: usize = counts.values().map(|n| n - 1).sum();
    let timed_out: usize = senders.iter().map(|s| timed_out_sends(&s.log())).sum();
    assert!(
        resent <= CONCURRENCY + timed_out,
        "{resent} mails sent twice, more than the killed sender had in flight plus \
         {timed_out} sends that ran out of time"
    );
    let stats = hub.stats();
    assert_eq!(stats["messages"], expected, "{stats}");
    assert_eq!(stats["outbox"]["dead"], 0, "{stats}");
    assert!(senders[1].counter(SENT) > 0);
    drop(web);
}

/// Issue 9: split roles meet only in the database, so they refuse SQLite, saying what to
/// run instead.
#[test]
fn split_roles_refuse_sqlite() {
    let hub = Hub::new(None, None);
    for role in ["web", "notifier", "sender"] {
        let out = hub.output(&[role], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "tidings {role} ran on SQLite");
        assert!(
            stderr.contains("PostgreSQL") && stderr.contains("tidings serve"),
            "{stderr}"
        );
    }
}

/// Signs alice in on the web and saves a filter over the form, as a browser would.
fn save_filter(hub: &Hub, condition: &str) {
    let site = format!("http://127.0.0.1:{}", hub.web_port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let get = |path: &str| {
            let request = client.get(format!("{site}{path}"));
            async move {
                let reply = request.send().await.expect("GET");
                assert!(reply.status().is_success(), "GET: {}", reply.status());
                reply.text().await.expect("page")
            }
        };
        let post = |path: &str, form: Vec<(&'static str, String)>| {
            let request = client.post(format!("{site}{path}")).form(&form);
            async move {
                let reply = request.send().await.expect("POST");
                assert!(reply.status().is_success(), "POST: {}", reply.status());
            }
        };
        let page = get("/signin").await;
        let fields = vec![
            ("csrf", field(&page, "csrf")),
            ("username", "alice".to_string()),
            ("password", PASSWORD.to_string()),
        ];
        post("/signin", fields).await;
        let page = get("/filters/new").await;
        let fields = vec![
            ("csrf", field(&page, "csrf")),
            ("name", "everything under test".to_string()),
            ("condition", condition.to_string()),
            ("destination", field(&page, "destination")),
            ("enabled", "on".to_string()),
        ];
        post("/filters/new", fields).await;
    });
}

/// Publishes one envelope over ZeroMQ, where both notifiers subscribe.
fn publish_zmq(hub: &Hub, line: &str) {
    let file = hub.dir.path().join("first.jsonl");
    std::fs::write(&file, line).expect("message file");
    let file = file.display().to_string();
    hub.run(&["publish", "--endpoint", &hub.zmq_endpoint, "--file", &file]);
}

/// Starts publishing `count` messages over the web's HTTP API.
fn publish_http(hub: &Hub, token: &str, tag: &str, count: usize) -> std::process::Child {
    let lines: Vec<String> = (0..count)
        .map(|i| {
            envelope(
                &format!("roles-{tag}-{i}"),
                "org.test.prod.load.event",
                serde_json::json!({"n": i}),
            )
        })
        .collect();
    let file = hub.dir.path().join(format!("{tag}.jsonl"));
    std::fs::write(&file, lines.join("\n")).expect("burst file");
    let base = format!("http://127.0.0.1:{}", hub.web_port);
    hub.command(&[
        "publish",
        "--http",
        &base,
        "--token",
        token,
        "--file",
        &file.display().to_string(),
        "--timeout",
        "120",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("publisher")
}
