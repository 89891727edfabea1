//! A message published over ZeroMQ becomes one email at a real SMTP server, on SQLite and
//! on PostgreSQL; a message that matches no filter sends nothing.

use std::time::Duration;

use mailparse::MailHeaderMap as _;

use crate::support::{envelope, Hub, PgDatabase, Smtp};

const FILTER: &str = r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#;

fn one_message_becomes_one_email(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), database_url);
    hub.user_with_filter("alice", "alice@example.org", FILTER);
    hub.start();

    let unrelated = envelope(
        "2024-unrelated",
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"user": {"name": "bob"}, "text": "nice"}, "agent": "bob"}),
    );
    let wanted = envelope(
        "2024-wanted",
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"user": {"name": "alice"}, "text": "works for me", "karma": 1,
            "update": {"alias": "FEDORA-2024-1", "title": "tidings-1.0-1.fc40", "builds": [{"nvr": "tidings-1.0-1.fc40"}]}}, "agent": "alice"}),
    );
    hub.publish("publish-1", &[unrelated, wanted]);

    let mails = smtp.wait_mails(1, Duration::from_secs(60));
    // Give a wrong second mail time to show up before asserting there is only one.
    std::thread::sleep(Duration::from_secs(1));
    let mails = if smtp.mails().len() > mails.len() {
        smtp.mails()
    } else {
        mails
    };
    assert_eq!(
        mails.len(),
        1,
        "exactly one mail expected; log:\n{}",
        hub.log()
    );

    let mail = mailparse::parse_mail(&mails[0]).expect("parsable mail");
    let header = |name: &str| {
        mail.headers
            .get_first_value(name)
            .unwrap_or_else(|| panic!("header {name} missing"))
    };
    assert_eq!(header("To"), "alice@example.org");
    assert!(header("From").contains("tidings@hub.example.org"));
    assert!(!header("Subject").is_empty());
    assert!(
        header("Message-ID").ends_with("@hub.example.org>"),
        "{}",
        header("Message-ID")
    );
    assert!(header("X-Tidings-Filters").contains("my filter"));
    // Headers to sort by, and the update's thread: every mail about FEDORA-2024-1 refers to
    // one root.
    assert_eq!(header("X-Tidings-App"), "bodhi");
    assert_eq!(header("X-Tidings-Package"), "tidings");
    assert_eq!(header("X-Tidings-Agent"), "alice");
    let thread = header("References");
    assert!(
        thread.starts_with('<') && thread.ends_with(".thread@hub.example.org>"),
        "{thread}"
    );
    assert_eq!(header("In-Reply-To"), thread);
    assert_eq!(
        header("X-Tidings-Topic"),
        "org.fedoraproject.prod.bodhi.update.comment"
    );
    assert!(header("List-Id").contains("notifications.tidings.localhost"));
    let unsubscribe = header("List-Unsubscribe");
    assert!(
        unsubscribe.starts_with(&format!("<http://127.0.0.1:{}/unsubscribe/", hub.web_port)),
        "{unsubscribe}"
    );
    assert_eq!(
        header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );

    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let types: Vec<&str> = mail
        .subparts
        .iter()
        .map(|p| p.ctype.mimetype.as_str())
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let text = mail.subparts[0].get_body().expect("text body");
    let html = mail.subparts[1].get_body().expect("html body");
    assert!(
        text.contains("org.fedoraproject.prod.bodhi.update.comment"),
        "{text}"
    );
    assert!(text.contains("/unsubscribe/"), "{text}");
    assert!(
        html.contains("<html>") && html.contains("Stop these notifications"),
        "{html}"
    );
    // The comment itself, not only that there was one (issue 10).
    assert!(text.contains("works for me"), "{text}");
    assert!(
        html.contains("<blockquote") && html.contains("works for me"),
        "{html}"
    );

    let stats = hub.stats();
    assert_eq!(stats["messages"], 2, "{stats}");
    assert_eq!(stats["outbox"]["sent"], 1, "{stats}");
}

#[test]
fn email_end_to_end_on_sqlite() {
    one_message_becomes_one_email(None);
}

#[test]
fn email_end_to_end_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    one_message_becomes_one_email(Some(&db.url));
}

/// On embedded defaults (no SMTP), mail lands in the mailbox folder as .eml files.
#[test]
fn mail_goes_to_the_mailbox_folder_without_smtp() {
    let mut hub = Hub::new(None, None);
    hub.user_with_filter(
        "carol",
        "carol@example.org",
        r#"topic == "org.fedoraproject.prod.git.receive""#,
    );
    hub.start();
    let msg = envelope(
        "2024-git",
        "org.fedoraproject.prod.git.receive",
        serde_json::json!({"commit": {"username": "carol"}}),
    );
    hub.publish("publish-2", &[msg]);
    let mailbox = hub.dir.path().join("data").join("mailbox");
    let files = crate::support::wait_for(
        "a .eml file in the mailbox folder",
        Duration::from_secs(60),
        || {
            let files: Vec<_> = std::fs::read_dir(&mailbox)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .collect();
            (!files.is_empty()).then_some(files)
        },
    );
    let raw = std::fs::read(&files[0]).expect("reading the mail");
    let mail = mailparse::parse_mail(&raw).expect("parsable");
    assert_eq!(
        mail.headers.get_first_value("To").as_deref(),
        Some("carol@example.org")
    );
}

/// `tls=` URLs go through Tidings' own connections too. Against a server that offers no
/// STARTTLS (aiosmtpd as the test script starts it), `tls=opportunistic` sends in the clear
/// and `tls=required` sends nothing, saying why. (No test server here offers STARTTLS with a
/// certificate the web's roots vouch for, so the upgrade itself is lettre's, untested here.)
#[test]
fn starttls_is_required_or_opportunistic_as_the_url_says() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let event = |id: &str| {
        envelope(
            id,
            "org.fedoraproject.prod.git.receive",
            serde_json::json!({"commit": {"username": "dave"}}),
        )
    };
    let hub_with = |tls: &str| {
        let mut hub = Hub::new(Some(&smtp), None);
        let url = format!("{}?tls={tls}", smtp.url());
        hub.env.insert("TIDINGS_EMAIL__SMTP_URL".into(), url);
        hub.user_with_filter(
            "dave",
            "dave@example.org",
            r#"topic == "org.fedoraproject.prod.git.receive""#,
        );
        hub.start();
        hub
    };

    let hub = hub_with("opportunistic");
    hub.publish("publish-3", &[event("2024-clear")]);
    let mails = smtp.wait_mails(1, Duration::from_secs(60));
    assert_eq!(mails.len(), 1);
    drop(hub);

    let hub = hub_with("required");
    hub.publish("publish-4", &[event("2024-never-clear")]);
    hub.wait_log_line(
        "a send refused for want of STARTTLS",
        Duration::from_secs(60),
        &["does not offer STARTTLS", "tls=required"],
    );
    assert_eq!(smtp.mails().len(), 1, "nothing more was sent in the clear");
}
