//! A send that outlasts its lease (issue 9): lease 2 s, an SMTP server that answers each
//! mail 3 s after taking it. Before, the lease ran out mid-send, the same process claimed
//! the row again and sent it a second time while the first send still waited (8 of 10
//! mails arrived twice, each attempt "sent"). Now a lease not longer than the send timeout
//! is refused at start, and with a 1 s timeout each send is cut off before its lease ends:
//! every attempt delivers exactly one copy, and nothing is sent beside a send in flight.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{envelope, message_id, wait_for, Hub, Publisher, Smtp};

const MAILS: usize = 5;
const ATTEMPTS: usize = 2;

#[test]
fn a_send_never_outlives_its_lease() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start_slow(tmp.path(), Duration::from_secs(3));
    let mut hub = Hub::new(Some(&smtp), None);
    for (key, value) in [
        ("TIDINGS_SENDER__LEASE_SECS", "2"),
        ("TIDINGS_SENDER__MAX_ATTEMPTS", "2"),
        ("TIDINGS_SENDER__BACKOFF_BASE_MS", "100"),
        ("TIDINGS_SENDER__BACKOFF_MAX_MS", "200"),
    ] {
        hub.env.insert(key.into(), value.into());
    }
    hub.user_with_filter("lea", "lea@example.org", r#"topic ~ "org.test.**""#);

    // The default send timeout (30 s) is not shorter than this lease: refused, by name.
    let refused = hub.output(&["serve"], None);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("sender.lease_secs") && said.contains("channels.email.timeout_secs"),
        "{said}"
    );

    hub.env
        .insert("TIDINGS_CHANNELS__EMAIL__TIMEOUT_SECS".into(), "1".into());
    hub.start();
    let publisher = Publisher::bind(&hub.zmq_endpoint);
    for i in 0..MAILS {
        publisher.send_envelope(&envelope(
            &format!("slow-{i}"),
            "org.test.prod.smtp.event",
            serde_json::json!({"n": i}),
        ));
    }
    wait_for(
        "every row to use up its attempts",
        Duration::from_secs(90),
        || (hub.stats()["outbox"]["dead"] == MAILS).then_some(()),
    );
    // The server stores each copy before its slow answer: let the last ones land.
    std::thread::sleep(Duration::from_secs(4));
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for mail in smtp.mails() {
        *copies.entry(message_id(&mail)).or_default() += 1;
    }
    assert_eq!(copies.len(), MAILS, "{copies:?}");
    assert!(
        copies.values().all(|n| *n == ATTEMPTS),
        "one copy per attempt, none beside a send in flight: {copies:?}\n{}",
        hub.log()
    );
    let log = hub.log();
    assert!(
        log.contains("no answer within 1 s"),
        "sends were cut off by the timeout:\n{log}"
    );
    assert!(!log.contains("the claim was lost"), "{log}");
}
