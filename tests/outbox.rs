//! Issue 8 item 13: `tidings outbox stats` counted a dead confirmation mail that
//! `tidings outbox dead` did not list (it joined messages, which a confirmation has none
//! of). Every dead row is listed now, with its kind, destination, topic and error.

use std::time::Duration;

use crate::support::{envelope, free_port, wait_for, Hub, PgDatabase};

#[test]
fn every_dead_row_is_listed_with_its_destination_and_error_on_sqlite() {
    every_dead_row_is_listed_with_its_destination_and_error(None);
}

#[test]
fn every_dead_row_is_listed_with_its_destination_and_error_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    every_dead_row_is_listed_with_its_destination_and_error(Some(&db.url));
}

fn every_dead_row_is_listed_with_its_destination_and_error(database_url: Option<&str>) {
    let mut hub = Hub::new(None, database_url);
    // Nobody listens there, and one failed attempt is final.
    hub.env.insert(
        "TIDINGS_EMAIL__SMTP_URL".into(),
        format!("smtp://127.0.0.1:{}", free_port()),
    );
    hub.env
        .insert("TIDINGS_SENDER__MAX_ATTEMPTS".into(), "1".into());
    hub.user_with_filter("alice", "alice@example.org", r#"topic ~ "org.test.**""#);
    // An address added later gets a confirmation mail, and no notifications.
    hub.run(&[
        "destination",
        "add",
        "--user",
        "alice",
        "--email",
        "alice@elsewhere.example.org",
    ]);
    hub.start();
    let file = hub.dir.path().join("message.jsonl");
    let line = envelope("m-1", "org.test.prod.app.event", serde_json::json!({}));
    std::fs::write(&file, line).expect("writing the message");
    let file = file.display().to_string();
    hub.run(&["publish", "--endpoint", &hub.zmq_endpoint, "--file", &file]);

    wait_for("two dead rows", Duration::from_secs(60), || {
        (hub.stats()["outbox"]["dead"] == 2).then_some(())
    });
    let dead = hub.run(&["outbox", "dead"]);
    let rows: Vec<Vec<&str>> = dead.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{dead}");
    let row = |kind: &str| {
        rows.iter()
            .find(|r| r.get(1) == Some(&kind))
            .unwrap_or_else(|| panic!("no dead {kind} in {dead}"))
    };
    let confirmation = row("confirmation");
    assert_eq!(
        confirmation[2..5],
        [
            "email:alice@elsewhere.example.org",
            "confirmation",
            "1 attempts"
        ],
        "{dead}"
    );
    assert!(!confirmation[5].is_empty(), "the error is shown: {dead}");
    let notification = row("notification");
    assert_eq!(
        notification[2..5],
        [
            "email:alice@example.org",
            "org.test.prod.app.event",
            "1 attempts"
        ],
        "{dead}"
    );
    assert!(!notification[5].is_empty(), "the error is shown: {dead}");

    // A limit that hides rows says so.
    let out = hub.output(&["outbox", "dead", "--limit", "1"], None);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 more dead rows not shown (--limit 1)"),
        "{out:?}"
    );
}
