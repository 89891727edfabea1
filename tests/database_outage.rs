//! PostgreSQL going away: a server of the test's own is stopped under a running hub, and
//! the hub is started while it is down.

use std::time::{Duration, Instant};

use crate::support::{
    envelope, http_request, wait_for, Hub, PgDatabase, PgServer, Publisher, Smtp,
};

const FILTER: &str = r#"topic ~ "org.test.**""#;

fn event(id: &str) -> String {
    envelope(
        id,
        "org.test.prod.outage.event",
        serde_json::json!({"id": id}),
    )
}

/// issue 8 items 15 and 20: after 5 failed stores (about 50 s of PostgreSQL down) the
/// message at the head of ingest was filed as rejected ("could not be stored: pool timed
/// out") and never matched, and `/healthz` took 10 s to answer. Now ingest waits out the
/// outage however many attempts it takes, the message is stored and mailed once the server
/// is back and never appears as rejected; meanwhile the API answers 503 with Retry-After and
/// `/healthz` answers 503 at once.
#[test]
fn a_message_published_during_an_outage_is_mailed_once_the_database_is_back() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), Some(&pg.url()));
    // A short cap on the wait, so that many attempts fail within a few seconds.
    hub.env
        .insert("TIDINGS_DATABASE__RETRY_MAX_MS".into(), "200".into());
    hub.user_with_filter("gil", "gil@example.org", FILTER);
    let token = hub.run(&["token", "add", "outage"]).trim().to_string();
    hub.start();
    let publisher = Publisher::bind(&hub.zmq_endpoint);
    publisher.send_envelope(&event("before-outage"));
    smtp.wait_mails(1, Duration::from_secs(60));

    pg.stop();
    publisher.send_envelope(&event("during-outage"));
    let posted = http_request(
        hub.web_port,
        "POST",
        "/api/v1/messages",
        Some(&token),
        event("posted-during-outage").as_bytes(),
    )
    .expect("an answer to the post");
    assert_eq!(posted.status, 503, "{}", posted.body);
    assert!(posted.header("Retry-After").is_some(), "{}", posted.head);
    let asked = Instant::now();
    let health = http_request(hub.web_port, "GET", "/healthz", None, b"")
        .expect("/healthz answers within the client's 5 s");
    assert_eq!(health.status, 503, "{}", health.body);
    eprintln!("/healthz answered 503 in {:?}", asked.elapsed());
    hub.wait_log_line(
        "ingest to fail more than the old 5 attempts",
        Duration::from_secs(120),
        &["archiving a bus message", "attempt=8"],
    );

    pg.resume();
    let mails = smtp.wait_mails(2, Duration::from_secs(120));
    assert_eq!(mails.len(), 2, "log:\n{}", hub.log());
    // The matcher waits out the outage too, saying so once rather than failing every poll.
    let log = hub.log();
    assert!(!log.contains("matching failed"), "{log}");
    assert!(log.matches("matching waits for it").count() <= 1, "{log}");
    let rejected = hub.run(&["outbox", "rejected"]);
    assert!(
        rejected.trim().is_empty(),
        "nothing is rejected: {rejected}"
    );
    let stats = hub.stats();
    assert_eq!(stats["messages"], 2, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
}

/// issue 8 item 20: starting with PostgreSQL down said "database URL … pool timed out", as if
/// the URL were wrong. Now it says which server cannot be reached, and `serve` keeps trying
/// for `database.start_timeout_secs`: a server that comes up meanwhile is used.
#[test]
fn starting_with_the_database_down_names_the_server_and_waits_for_it() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    pg.stop();
    let mut hub = Hub::new(None, Some(&pg.url()));
    hub.env
        .insert("TIDINGS_DATABASE__START_TIMEOUT_SECS".into(), "1".into());
    let out = hub.output(&["serve"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve started without a database");
    assert!(
        stderr.contains(&format!(
            "cannot reach the database server at 127.0.0.1:{}",
            pg.port
        )),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pool timed out") && !stderr.contains("database URL"),
        "{stderr}"
    );
    let out = hub.output(&["user", "list"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the database server"),
        "admin commands say so too: {stderr}"
    );

    hub.env
        .insert("TIDINGS_DATABASE__START_TIMEOUT_SECS".into(), "120".into());
    let log = hub.dir.path().join("serve.log");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            wait_for(
                "serve to be waiting for the database",
                Duration::from_secs(60),
                || {
                    std::fs::read_to_string(&log)
                        .ok()
                        .filter(|l| l.contains("cannot be reached yet"))
                },
            );
            pg.resume();
        });
        hub.start();
    });
    assert!(hub.run(&["user", "list"]).trim().is_empty());
}

/// issue 8 item 20: every admin command on PostgreSQL printed a migration notice
/// ("relation \"_sqlx_migrations\" already exists, skipping").
#[test]
fn admin_commands_on_postgres_print_no_notices() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let hub = Hub::new(None, Some(&db.url));
    for args in [&["migrate"][..], &["migrate"], &["user", "list"]] {
        let out = hub.output(args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "tidings {args:?}: {stderr}");
        assert!(
            !stderr.contains("NOTICE") && !stderr.contains("already exists"),
            "tidings {args:?} printed a notice: {stderr}"
        );
    }
}
