//! Flood control and digests end to end, through the built binary to a real SMTP server:
//! a burst past a destination's flood limit sends the limit at once and the rest as one
//! summary mail when the window ends; a digest destination gets one mail once enough are
//! waiting; a filter with a digest of its own gets one headed with its name. Nothing is
//! dropped: every notification is sent at once or in a digest.

use std::time::Duration;

use mailparse::MailHeaderMap as _;

use crate::support::{envelope, Hub, Smtp};

const FILTER: &str = r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#;

/// `n` Bodhi comments by `user`, each on an update of its own.
fn comments(user: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            envelope(
                &format!("{user}-{i}"),
                "org.fedoraproject.prod.bodhi.update.comment",
                serde_json::json!({"comment": {"user": {"name": user}, "text": "works", "karma": 1,
                    "update": {"alias": format!("FEDORA-2024-{i}"), "title": format!("pkg{i}-1.0-1.fc40")}},
                    "agent": user}),
            )
        })
        .collect()
}

fn subject(mail: &[u8]) -> String {
    let parsed = mailparse::parse_mail(mail).expect("parsable mail");
    parsed
        .headers
        .get_first_value("Subject")
        .unwrap_or_default()
}

fn to(mail: &[u8]) -> String {
    let parsed = mailparse::parse_mail(mail).expect("parsable mail");
    parsed.headers.get_first_value("To").unwrap_or_default()
}

fn text(mail: &[u8]) -> String {
    let parsed = mailparse::parse_mail(mail).expect("parsable mail");
    parsed
        .subparts
        .first()
        .and_then(|p| p.get_body().ok())
        .unwrap_or_else(|| parsed.get_body().unwrap_or_default())
}

/// The id of `user`'s only destination.
fn destination_id(hub: &Hub, user: &str) -> String {
    let list = hub.run(&["destination", "list", "--user", user]);
    list.split('\t').next().unwrap_or_default().to_string()
}

#[test]
fn a_flood_becomes_a_summary_and_a_digest_one_mail() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), None);
    hub.user_with_filter("alice", "alice@example.org", FILTER);
    hub.user_with_filter("bob", "bob@example.org", FILTER);
    let alices = destination_id(&hub, "alice");
    let set = hub.run(&[
        "destination",
        "delivery",
        "--user",
        "alice",
        &alices,
        "--immediate",
        "--flood-max",
        "2",
        "--flood-window",
        "1",
    ]);
    assert!(set.contains("at once, at most 2 in 1 min"), "{set}");
    let bobs = destination_id(&hub, "bob");
    let set = hub.run(&[
        "destination",
        "delivery",
        "--user",
        "bob",
        &bobs,
        "--digest",
        "--after",
        "3",
        "--daily",
        "08:00",
    ]);
    assert!(
        set.contains("digest: daily at 08:00, or after 3 notifications"),
        "{set}"
    );
    // Carol: her filter gathers a digest of its own, after 2; her destination is as is.
    hub.user_with_filter("carol", "carol@example.org", FILTER);
    let list = hub.run(&["filter", "list", "--user", "carol"]);
    let carols = list.split('\t').next().unwrap_or_default().to_string();
    let set = hub.run(&[
        "filter", "delivery", "--user", "carol", &carols, "--digest", "--after", "2",
    ]);
    assert!(
        set.contains("my filter\tits own digest: after 2 notifications"),
        "{set}"
    );
    hub.start();

    // Alice: 6 at once; 2 go now, 4 wait for the window's end.
    hub.publish("alice-burst", &comments("alice", 6));
    // Bob: 3, one digest as soon as the third is matched.
    hub.publish("bob-burst", &comments("bob", 3));
    // Carol: 2, one digest of her filter's.
    hub.publish("carol-burst", &comments("carol", 2));
    let mails = smtp.wait_mails(4, Duration::from_secs(60));
    let (carol, mails): (Vec<_>, Vec<_>) = mails
        .iter()
        .partition(|m| to(m).contains("carol@example.org"));
    assert_eq!(carol.len(), 1);
    assert_eq!(
        subject(carol[0]),
        "Tidings: Your digest of my filter: 2 notifications"
    );
    let (alice, bob): (Vec<_>, Vec<_>) = mails
        .into_iter()
        .partition(|m| to(m).contains("alice@example.org"));
    assert_eq!(
        alice.len(),
        2,
        "{:?}",
        alice.iter().map(|m| subject(m)).collect::<Vec<_>>()
    );
    assert_eq!(bob.len(), 1);
    assert_eq!(subject(bob[0]), "Tidings: Your digest: 3 notifications");
    let digest = text(bob[0]);
    for i in 0..3 {
        assert!(digest.contains(&format!("pkg{i}-1.0-1.fc40")), "{digest}");
    }
    assert!(digest.contains("/destinations"), "{digest}");

    // The window is a minute: the summary of the other 4 comes when it ends.
    let mails = smtp.wait_mails(5, Duration::from_secs(120));
    let summary = mails
        .iter()
        .find(|m| subject(m).starts_with("Tidings: And 4 more"))
        .unwrap_or_else(|| {
            panic!(
                "no summary: {:?}",
                mails.iter().map(|m| subject(m)).collect::<Vec<_>>()
            )
        });
    assert_eq!(to(summary), "alice@example.org");
    let body = text(summary);
    assert!(body.contains("bodhi: 4"), "{body}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.count(), 5, "nothing else was sent");
    // Every notification was sent: at once, or with its digest.
    let stats = hub.run(&["outbox", "dead"]);
    assert!(
        stats.trim().is_empty() || stats.contains("no dead"),
        "{stats}"
    );
    hub.assert_running();
}
