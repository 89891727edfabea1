//! Mail as the embedded first-use flow delivers it: the real sender's mails (composed by the
//! notifier, written by its mailbox-folder transport) read back through the mailbox viewer,
//! and the links in them followed. Also the attack of issue 8 item 1, end to end.

use std::path::Path;

use reqwest::StatusCode;
use tidings_notifier::channel::SendResult;
use tidings_notifier::sender::Channels;
use tidings_notifier::EmailConfig;
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{Delivery, FilterInput, Notification, Outcome};

use crate::support::{App, Browser, Db};

/// Sends everything due, as the sender would on embedded defaults: into `folder`.
pub async fn deliver(app: &App, folder: &Path) {
    let config = EmailConfig {
        mailbox_dir: Some(folder.to_path_buf()),
        ..EmailConfig::default()
    };
    let channels = Channels::from_config(&config, &app.base).unwrap();
    for claimed in app.store.claim(100, 60_000).await.unwrap() {
        let rendered = channels.renderer.render(&claimed).unwrap();
        let email = channels.registry.get(claimed.destination.channel).unwrap();
        let sent = email.send(&claimed.destination, &rendered).await;
        assert_eq!(sent, SendResult::Sent);
        app.store.record(&claimed, &Outcome::Sent).await.unwrap();
    }
}

/// Every mail in the folder: (file name, raw text).
pub fn mails(folder: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect();
    found.sort();
    found
}

/// The plain-text part of a mail.
pub fn text(raw: &str) -> String {
    let mail = mailparse::parse_mail(raw.as_bytes()).unwrap();
    mail.subparts[0].get_body().unwrap()
}

/// The first link in a mail's text that starts with `prefix` (after the base URL).
pub fn link(app: &App, raw: &str, prefix: &str) -> String {
    let start = format!("{}{prefix}", app.base);
    text(raw)
        .split_whitespace()
        .find(|w| w.starts_with(&start))
        .unwrap_or_else(|| panic!("no {prefix} link in {raw}"))[app.base.len()..]
        .to_string()
}

/// The mail in the folder whose text contains `needle`.
fn mail_with(folder: &Path, needle: &str) -> (String, String) {
    mails(folder)
        .into_iter()
        .find(|(_, raw)| text(raw).contains(needle))
        .unwrap_or_else(|| panic!("no mail with {needle:?}"))
}

async fn add_address(browser: &Browser, address: &str) -> crate::support::Reply {
    browser
        .submit("/destinations", "/destinations", &[("address", address)])
        .await
}

/// A filter `name` of `user_id` to one destination, and a koji message with `body` that it
/// matched, queued as a notification. Returns the filter's id and the message's metadata.
pub async fn notify(
    app: &App,
    user_id: i64,
    destination_id: i64,
    name: &str,
    body: serde_json::Value,
) -> (i64, Metadata) {
    let input = FilterInput {
        name: name.into(),
        condition: Condition::parse("usernames has $me").unwrap(),
        destination_ids: vec![destination_id],
        delivery: Delivery::Instant,
        enabled: true,
    };
    let filter = app.store.create_filter(user_id, &input).await.unwrap();
    let message = Message::new(
        format!("m-{user_id}-{name}"),
        "org.fedoraproject.prod.koji.build.state.change",
        body,
    );
    let metadata = Metadata::derive(&message);
    let id = app
        .store
        .insert_message(&message, &metadata, "test")
        .await
        .unwrap()
        .unwrap();
    let notification = Notification {
        destination_id,
        filters: vec![(filter.id, filter.name.clone())],
        digest: None,
    };
    app.store
        .complete_message(id, &[notification])
        .await
        .unwrap();
    (filter.id, metadata)
}

/// A notification to bob's only destination, caused by a filter of his.
async fn notify_bob(app: &App) -> i64 {
    let bob = app.store.user_by_name("bob").await.unwrap().unwrap();
    let dest = app.store.destinations(bob.id).await.unwrap().remove(0);
    let body = serde_json::json!({"owner": "bob", "name": "secret-project"});
    notify(app, bob.id, dest.id, "bob's builds", body).await.0
}

// Issue 8 item 1: alice adds bob's address. She must not read bob's mail, must not confirm
// the address bob confirmed, and cannot switch bob's filters off through his mail's ids.
#[tokio::test]
async fn another_account_cannot_take_over_an_address() {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().to_path_buf();
    let app = App::start_with(Db::Sqlite, |c| c.mailbox_dir = Some(dir))
        .await
        .unwrap();
    let bob = app.browser();
    bob.signup("bob", "velvet crane harbour 42").await;
    add_address(&bob, "bob@example.org").await;
    deliver(&app, folder.path()).await;
    // The first-use flow: bob reads his confirmation in the viewer and follows it.
    let listed = bob.get("/mailbox").await.body;
    assert!(listed.contains("Confirm this address"), "{listed}");
    let (_, mail) = mail_with(folder.path(), "/confirm/");
    let confirm = link(&app, &mail, "/confirm/");
    assert_eq!(
        bob.submit(&confirm, &confirm, &[]).await.status,
        StatusCode::OK
    );
    let filter = notify_bob(&app).await;
    deliver(&app, folder.path()).await;
    let (bobs_file, bobs_mail) = mail_with(folder.path(), "/unsubscribe/");
    // The viewer shows the mail decoded, its links clickable (issue 11).
    let shown = bob.get(&format!("/mailbox/{bobs_file}")).await.body;
    let unsubscribe = link(&app, &bobs_mail, "/unsubscribe/");
    assert!(
        shown.contains(&format!("<a href=\"{}{unsubscribe}\"", app.base)),
        "{shown}"
    );
    assert!(shown.contains("<summary>Source</summary>"), "{shown}");

    let alice = app.browser();
    alice.signup("alice", "quiet meadow lantern 7").await;
    let added = add_address(&alice, "Bob@Example.org").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    deliver(&app, folder.path()).await;

    let listed = alice.get("/mailbox").await.body;
    assert!(
        listed.contains("Confirm this address"),
        "alice sees the confirmation sent for her: {listed}"
    );
    assert!(
        !listed.contains("koji") && !listed.contains(&bobs_file),
        "alice must not see bob's notification: {listed}"
    );
    let peek = alice.get(&format!("/mailbox/{bobs_file}")).await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    assert!(!peek.body.contains("secret-project"));
    assert!(bob.get("/mailbox").await.body.contains(&bobs_file));

    // Her own confirmation link is refused: the address is bob's.
    let hers = mails(folder.path())
        .into_iter()
        .filter(|(_, raw)| text(raw).contains("/confirm/"))
        .map(|(_, raw)| link(&app, &raw, "/confirm/"))
        .find(|l| *l != confirm)
        .unwrap();
    let refused = alice.submit(&hers, &hers, &[]).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("confirmed by another account"),
        "{}",
        refused.body
    );
    let alice_id = app.store.user_by_name("alice").await.unwrap().unwrap().id;
    assert!(!app.store.destinations(alice_id).await.unwrap()[0].is_confirmed());

    // The Message-ID (which anyone replying to or forwarding bob's mail sees) is no key.
    let uid = mailparse::parse_mail(bobs_mail.as_bytes())
        .unwrap()
        .headers
        .iter()
        .find(|h| h.get_key().eq_ignore_ascii_case("message-id"))
        .map(|h| h.get_value())
        .unwrap();
    let uid = uid.trim_matches(['<', '>']).split('@').next().unwrap();
    let anonymous = app.browser();
    let bob_id = app.store.user_by_name("bob").await.unwrap().unwrap().id;
    for path in [
        format!("/unsubscribe/{uid}"),
        format!("/unsubscribe/{uid}AAAAAAAAAAA"),
    ] {
        assert_eq!(anonymous.get(&path).await.status, StatusCode::NOT_FOUND);
        assert_eq!(
            anonymous.post(&path, &[]).await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert!(app.store.filter(bob_id, filter).await.unwrap().enabled);
    // bob's own link works.
    let unsubscribe = link(&app, &bobs_mail, "/unsubscribe/");
    assert_eq!(
        anonymous.post(&unsubscribe, &[]).await.status,
        StatusCode::OK
    );
    assert!(!app.store.filter(bob_id, filter).await.unwrap().enabled);
    app.stop().await;
}

// Issue 8 item 6: the confirmation greets nobody by name: an attacker's username
// ("claim-your-refund-at.evil-example.com") never reaches the victim's inbox.
#[tokio::test]
async fn confirmation_mail_carries_no_attacker_text() {
    let folder = tempfile::tempdir().unwrap();
    let app = App::start(Db::Sqlite).await.unwrap();
    let mallory = app.browser();
    let name = "claim-your-refund-at.evil-example.com";
    mallory.signup(name, "velvet crane harbour 42").await;
    add_address(&mallory, "victim@example.org").await;
    deliver(&app, folder.path()).await;
    let all = mails(folder.path());
    assert_eq!(all.len(), 1);
    let mail = mailparse::parse_mail(all[0].1.as_bytes()).unwrap();
    for part in &mail.subparts {
        let body = part.get_body().unwrap();
        assert!(
            body.starts_with("Hello,") || body.contains("<p>Hello,</p>"),
            "{body}"
        );
        assert!(!body.contains("evil-example"), "{body}");
    }
    assert!(!all[0].1.contains("evil-example"), "{}", all[0].1);
    app.stop().await;
}
