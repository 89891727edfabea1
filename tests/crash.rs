//! Crash safety: SIGKILL the hub in the middle of a burst, restart it, and count distinct
//! Message-IDs at the SMTP server. Every expected mail must arrive; a Message-ID may
//! arrive twice only for mails in flight at a kill (at most the sender's concurrency).
//! 5,000 messages and two kills, on SQLite and on PostgreSQL (issue 9).

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{envelope, message_id, timed_out_sends, wait_for, Hub, PgDatabase, Smtp};

const MESSAGES: usize = 5_000;
const CONCURRENCY: usize = 16;
const KILLS: usize = 2;

#[test]
fn sigkill_during_a_burst_loses_nothing_on_sqlite() {
    sigkill_during_a_burst_loses_nothing(None);
}

#[test]
fn sigkill_during_a_burst_loses_nothing_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    sigkill_during_a_burst_loses_nothing(Some(&db.url));
}

fn sigkill_during_a_burst_loses_nothing(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), database_url);
    hub.env.insert(
        "TIDINGS_SENDER__CONCURRENCY".into(),
        CONCURRENCY.to_string(),
    );
    // Sends go as fast as the SMTP server takes them, so the burst is over in seconds.
    hub.env.insert("TIDINGS_SENDER__POLL_MS".into(), "5".into());
    // A short lease, so a restart soon takes back what the killed process held; a send is
    // cut off before its lease ends (the lease must be the longer). The time limit leaves
    // room for an SMTP server slowed by a busy machine (CI runs other bursts beside this).
    hub.env
        .insert("TIDINGS_SENDER__LEASE_SECS".into(), "5".into());
    hub.env
        .insert("TIDINGS_CHANNELS__EMAIL__TIMEOUT_SECS".into(), "3".into());
    hub.user_with_filter("dora", "dora@example.org", r#"topic ~ "org.test.**""#);
    let token = hub.run(&["token", "add", "load"]).trim().to_string();
    let lines: Vec<String> = (0..MESSAGES)
        .map(|i| {
            envelope(
                &format!("burst-{i}"),
                "org.test.prod.load.event",
                serde_json::json!({"n": i}),
            )
        })
        .collect();
    let file = hub.dir.path().join("burst.jsonl");
    std::fs::write(&file, lines.join("\n")).expect("burst file");
    hub.start();

    // The publisher posts over HTTP, so each message is acknowledged once stored, and
    // retries through the hub's downtime.
    let base = format!("http://127.0.0.1:{}", hub.web_port);
    let mut publisher = hub
        .command(&[
            "publish",
            "--http",
            &base,
            "--token",
            &token,
            "--file",
            &file.display().to_string(),
            "--timeout",
            "120",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("publisher");

    // Each kill comes a fifth of the burst after the last, mid-burst. A send cut off by its
    // time limit may come back once more too; the log starts afresh with each start, so it is
    // counted before each kill.
    let mut timed_out = 0;
    for kill in 1..=KILLS {
        let seen = smtp.count();
        wait_for(
            "mails to flow before the kill",
            Duration::from_secs(120),
            || (smtp.count() >= seen + MESSAGES / 5).then_some(()),
        );
        hub.kill();
        timed_out += timed_out_sends(&hub.log());
        hub.start();
        eprintln!("kill {kill} done after {} mails", smtp.count());
    }

    let status = publisher.wait().expect("publisher exit");
    assert!(
        status.success(),
        "publisher failed: {:?}",
        publisher.stderr.take().map(std::io::read_to_string)
    );

    smtp.wait_count(MESSAGES, Duration::from_secs(180));
    let counts = wait_for("every expected mail", Duration::from_secs(30), || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for raw in smtp.mails() {
            *counts.entry(message_id(&raw)).or_default() += 1;
        }
        (counts.len() >= MESSAGES).then_some(counts)
    });
    assert_eq!(counts.len(), MESSAGES, "distinct Message-IDs");
    let resent: usize = counts.values().map(|n| n - 1).sum();
    timed_out += timed_out_sends(&hub.log());
    assert!(
        resent <= CONCURRENCY * KILLS + timed_out,
        "{resent} resends, more than in flight at {KILLS} kills plus {timed_out} sends that \
         ran out of time"
    );
    let stats = hub.stats();
    assert_eq!(stats["messages"], MESSAGES, "{stats}");
    assert_eq!(stats["outbox"]["dead"], 0, "{stats}");
}
