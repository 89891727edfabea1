//! Issue 8 item 2, end to end: one user's filter row that cannot be read (here, a condition
//! nested past serde_json's limit, written straight into the database as the old parser
//! let it be) stopped `tidings serve` from matching for everyone, and `tidings filter list`
//! failed. Now the hub quarantines it and everyone else's mail arrives; the admin sees it;
//! after a restart it stays quarantined.

use std::time::Duration;

use mailparse::MailHeaderMap as _;
use sqlx::{Connection as _, Executor as _};

use crate::support::{envelope, http_get, wait_for, Hub, PgDatabase, Smtp};

const FILTER: &str = r#"topic ~ "org.test.**""#;

#[test]
fn an_unreadable_filter_is_quarantined_and_others_still_get_mail_on_sqlite() {
    an_unreadable_filter_is_quarantined_and_others_still_get_mail(None);
}

#[test]
fn an_unreadable_filter_is_quarantined_and_others_still_get_mail_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    an_unreadable_filter_is_quarantined_and_others_still_get_mail(Some(&db.url));
}

/// The hub's database URL, as `serve` resolves it.
fn database_url(hub: &Hub) -> String {
    match hub.env.get("TIDINGS_DATABASE_URL") {
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}",
            hub.dir.path().join("data").join("tidings.db").display()
        ),
    }
}

/// Runs SQL straight on the hub's database, past the store.
fn raw(hub: &Hub, sql: &str) {
    let url = database_url(hub);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
            conn.execute(sql).await.expect(sql);
        } else {
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("postgres");
            conn.execute(sql).await.expect(sql);
        }
    });
}

fn publish(hub: &Hub, id: &str) {
    let file = hub.dir.path().join(format!("{id}.jsonl"));
    let line = envelope(id, "org.test.prod.app.event", serde_json::json!({"n": id}));
    std::fs::write(&file, line).expect("writing the message");
    let file = file.display().to_string();
    hub.run(&["publish", "--endpoint", &hub.zmq_endpoint, "--file", &file]);
}

/// Waits until `n` messages are matched and every notification is sent; returns how many
/// notifications were sent. Matching queues a message's notifications in the transaction
/// that marks it processed, so none can be missing from the count.
fn settled(hub: &Hub, n: u64) -> u64 {
    wait_for(
        &format!("{n} messages matched and sent"),
        Duration::from_secs(60),
        || {
            let stats = hub.stats();
            let outbox = &stats["outbox"];
            let done = stats["processed"] == n && outbox["pending"] == 0 && outbox["sending"] == 0;
            done.then(|| outbox["sent"].as_u64().unwrap_or_default())
        },
    )
}

fn recipients(smtp: &Smtp) -> Vec<String> {
    smtp.mails()
        .iter()
        .map(|raw| {
            let mail = mailparse::parse_mail(raw).expect("a parsable mail");
            mail.headers.get_first_value("To").unwrap_or_default()
        })
        .collect()
}

fn an_unreadable_filter_is_quarantined_and_others_still_get_mail(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), database_url);
    hub.user_with_filter("mallory", "mallory@example.org", FILTER);
    hub.user_with_filter("alice", "alice@example.org", FILTER);
    let listed = hub.run(&["filter", "list", "--user", "mallory"]);
    let id: i64 = listed
        .split('\t')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no filter id in {listed:?}"));
    let nested = "{\"not\":".repeat(200) + "{\"topic_is\":\"a\"}" + &"}".repeat(200);
    raw(
        &hub,
        &format!("UPDATE filters SET condition = '{nested}' WHERE id = {id}"),
    );

    hub.start();
    publish(&hub, "first");
    smtp.wait_mails(1, Duration::from_secs(60));
    assert_eq!(
        settled(&hub, 1),
        1,
        "alice's mail only; log:\n{}",
        hub.log()
    );
    assert_eq!(recipients(&smtp), ["alice@example.org"]);

    // The admin sees it, with why, and listing never fails because of it.
    let listed = hub.run(&["filter", "list", "--user", "mallory"]);
    assert!(
        listed.starts_with(&format!(
            "{id}\tmy filter\tquarantined\tcould not be read: condition: line 1"
        )),
        "{listed}"
    );
    assert!(listed.contains("nest deeper than 48 levels"), "{listed}");
    let quarantined = hub.run(&["filter", "quarantined"]);
    assert!(
        quarantined.starts_with(&format!("{id}\tmallory\tmy filter\t")),
        "{quarantined}"
    );
    let metrics = http_get(hub.metrics_port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains("tidings_filters_quarantined_total 1"),
        "{metrics}"
    );
    let log = hub.log();
    assert!(
        log.contains("quarantined") && log.contains(&format!("filter={id}")),
        "{log}"
    );

    // After a restart it stays quarantined, and matching goes on.
    hub.kill();
    hub.start();
    publish(&hub, "second");
    smtp.wait_mails(2, Duration::from_secs(60));
    assert_eq!(settled(&hub, 2), 2, "log:\n{}", hub.log());
    assert_eq!(
        recipients(&smtp),
        ["alice@example.org", "alice@example.org"]
    );
    assert_eq!(hub.run(&["filter", "quarantined"]), quarantined);
    let metrics = http_get(hub.metrics_port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains("tidings_filters_quarantined_total 0"),
        "counted once, not again after the restart: {metrics}"
    );
}
