//! The flood burst of issue 10 at a small scale, through the built binary's `tidings bench
//! e2e --flood-max`: 300 Koji build messages, each matching all of 20 package owners whose
//! mail keeps a flood limit of 5 per 1-minute window, published over ZeroMQ into the real
//! notifier and sender roles (mail to the mailbox folder). The bench reads the outcome back
//! from the outbox and the mailbox; this asserts its invariants: no destination got more
//! than 5 mails at once in a window, every (message, destination) pair was sent at once or
//! with a summary that was sent, and nothing is left unsent or dead. On SQLite, and on
//! PostgreSQL when the suite names one.

use std::process::Command;

use serde_json::Value;

use crate::support::{PgDatabase, BIN};

const OWNERS: i64 = 20;
const MESSAGES: i64 = 300;
const FLOOD_MAX: i64 = 5;

fn flood_bench(database: Option<&str>) -> Value {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "bench",
        "e2e",
        "--flood-max",
        &FLOOD_MAX.to_string(),
        "--flood-window-minutes",
        "1",
        "--flood-packages",
        "1",
        "--messages",
        &MESSAGES.to_string(),
        "--owners",
        &OWNERS.to_string(),
        "--catch-all",
        "0",
        "--timeout-secs",
        "85",
    ])
    .env_clear()
    .env("TIDINGS_LOG__LEVEL", "warn");
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    if let Some(url) = database {
        cmd.args(["--database", url]);
    }
    let out = cmd.output().expect("running tidings bench e2e");
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn check(figures: &Value) {
    let n = |key: &str| {
        figures[key]
            .as_i64()
            .unwrap_or_else(|| panic!("{key} missing: {figures:#}"))
    };
    assert_eq!(figures["complete"], true, "{figures:#}");
    let expected = OWNERS * MESSAGES;
    assert_eq!(n("notifications_expected"), expected, "{figures:#}");
    // Every pair sent, at once or with its summary; nothing left.
    assert_eq!(
        n("sent_at_once") + n("sent_in_summaries"),
        expected,
        "{figures:#}"
    );
    assert_eq!(n("rows_left_unsent"), 0, "{figures:#}");
    assert_eq!(n("summaries_dead"), 0, "{figures:#}");
    assert_eq!(figures["nothing_lost"], true, "{figures:#}");
    // The flood limit held: per window, per destination, in the tables and in the mailbox.
    assert!(n("most_at_once_in_a_window") <= FLOOD_MAX, "{figures:#}");
    assert_eq!(n("windows_over_limit"), 0, "{figures:#}");
    assert_eq!(n("mailbox_recipients_over_limit"), 0, "{figures:#}");
    assert!(
        n("sent_at_once") <= FLOOD_MAX * n("flood_windows"),
        "{figures:#}"
    );
    assert!(n("flood_windows") >= OWNERS, "{figures:#}");
    assert_eq!(figures["within_flood_limits"], true, "{figures:#}");
    // Each owner got far more than the limit: each has at least one summary, and every
    // mail written is one of the immediate ones or a summary.
    assert!(n("summaries_sent") >= OWNERS, "{figures:#}");
    assert!(n("mailbox_summaries") >= OWNERS, "{figures:#}");
    assert_eq!(
        n("mailbox_files"),
        n("sent_at_once") + n("mailbox_summaries"),
        "{figures:#}"
    );
    // The summaries wait for the window's end; the immediate ones do not.
    let at = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
    assert!(
        at("all_immediate_sent_s") < at("all_summaries_sent_s"),
        "{figures:#}"
    );
}

#[test]
fn a_flood_burst_keeps_every_limit_and_loses_nothing_on_sqlite() {
    check(&flood_bench(None));
}

#[test]
fn a_flood_burst_keeps_every_limit_and_loses_nothing_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    check(&flood_bench(Some(&db.url)));
}
