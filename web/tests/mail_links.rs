//! The pages mail links point at: destination confirmation and one-click unsubscribe; and
//! the notifications page that lists what was sent.

use reqwest::StatusCode;
use tidings_store::{ChannelKind, NewDestination, OutboxKind};

use crate::mailbox::notify;
use crate::on_both;
use crate::support::App;

on_both!(
    confirmation_link,
    notifications_and_one_click_unsubscribe,
    every_link_a_mail_carries_is_a_page,
    mute_and_undo_from_the_unsubscribe_page
);

async fn confirmation_link(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let added = alice
        .submit(
            "/destinations",
            "/destinations",
            &[("address", "alice@example.org")],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK);
    assert!(added.body.contains("confirmation link"), "{}", added.body);
    let invalid = alice
        .submit(
            "/destinations",
            "/destinations",
            &[("address", "not an address")],
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(
        invalid.body.contains("is not an email address"),
        "{}",
        invalid.body
    );

    let claimed = app.store.claim(10, 60_000).await.unwrap();
    let confirmation = claimed
        .iter()
        .find(|c| c.kind == OutboxKind::Confirmation)
        .expect("a confirmation is queued");
    let token = confirmation.confirmation_token().unwrap().to_string();
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let confirmed = || async { app.store.destinations(user.id).await.unwrap()[0].is_confirmed() };

    // Mail scanners prefetch links: a GET changes nothing. The link works without sign-in.
    let reader = app.browser();
    let path = format!("/confirm/{token}");
    let page = reader.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Confirm the address"));
    assert!(!confirmed().await);
    assert_eq!(
        reader.post(&path, &[]).await.status,
        StatusCode::FORBIDDEN,
        "the button carries a CSRF token"
    );
    assert!(!confirmed().await);

    let done = reader.submit(&path, &path, &[]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("alice@example.org"));
    assert!(confirmed().await);
    assert_eq!(
        reader.submit(&path, &path, &[]).await.status,
        StatusCode::NOT_FOUND,
        "tokens work once"
    );
    assert!(
        alice.get("/destinations").await.body.contains("UTC"),
        "the confirmation time is shown"
    );
}

async fn notifications_and_one_click_unsubscribe(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let dest = app
        .store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: "alice@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    let body = serde_json::json!({"owner": "alice"});
    let (filter, metadata) = notify(app, user.id, dest.id, "my builds", body).await;

    let page = alice.get("/notifications").await;
    assert_eq!(page.status, StatusCode::OK);
    for expected in [
        "org.fedoraproject.prod.koji.build.state.change",
        "alice@example.org",
        "my builds",
        "pending",
    ] {
        assert!(
            page.body.contains(expected),
            "missing {expected}: {}",
            page.body
        );
    }
    assert!(!metadata.summary.is_empty() && page.body.contains(&metadata.summary));
    assert!(alice
        .get("/")
        .await
        .body
        .contains("org.fedoraproject.prod.koji.build.state.change"));

    let token = app
        .store
        .claim(10, 60_000)
        .await
        .unwrap()
        .remove(0)
        .unsubscribe_token
        .unwrap();
    let path = format!("/unsubscribe/{token}");
    let stranger = app.browser();
    let shown = stranger.get(&path).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains("my builds"));
    assert!(
        app.store.filter(user.id, filter).await.unwrap().enabled,
        "GET changes nothing"
    );

    // What a mail client sends (RFC 8058): no cookie, no CSRF token.
    let bare = reqwest::Client::new();
    let reply = bare
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(
        reply.headers().get("set-cookie").is_none(),
        "no session for a mail client"
    );
    assert!(
        !app.store.filter(user.id, filter).await.unwrap().enabled,
        "one-click POST must disable the filter"
    );
    assert_eq!(
        stranger.get("/unsubscribe/not-a-uid").await.status,
        StatusCode::NOT_FOUND
    );
    // Issue 8 item 9: links expire, with a page that says so.
    let old = tidings_store::now_ms() - tidings_store::UNSUBSCRIBE_TTL_MS - 1;
    age_outbox(app, old).await;
    for reply in [stranger.get(&path).await, stranger.post(&path, &[]).await] {
        assert_eq!(reply.status, StatusCode::GONE);
        assert!(reply.body.contains("has expired"), "{}", reply.body);
    }
    assert_eq!(
        bare.post(format!("{}/unsubscribe/not-a-uid", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

// Issue 8 item 1: the viewer goes by the Message-ID the sender set, never by `To:`: a
// mail that merely names one of alice's addresses is not hers to read.
#[tokio::test]
async fn mailbox_shows_only_mail_sent_for_me() {
    let folder = tempfile::tempdir().unwrap();
    let write = |name: &str, to: &str, subject: &str| {
        let mail = format!("From: tidings@localhost\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <abc123@localhost>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello <b>there</b>\r\n");
        std::fs::write(folder.path().join(name), mail).unwrap();
    };
    write("b1.eml", "alice@example.org", "for bob");
    let dir = folder.path().to_path_buf();
    let app = App::start_with(crate::support::Db::Sqlite, |c| c.mailbox_dir = Some(dir))
        .await
        .unwrap();
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    app.store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: "alice@example.org",
            confirmed: false,
        })
        .await
        .unwrap();
    crate::mailbox::deliver(&app, folder.path()).await;
    let list = alice.get("/mailbox").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("Confirm this address") && !list.body.contains("for bob"),
        "{}",
        list.body
    );
    let (name, _) = crate::mailbox::mails(folder.path())
        .into_iter()
        .find(|(name, _)| name != "b1.eml")
        .unwrap();
    let mail = alice.get(&format!("/mailbox/{name}")).await;
    assert_eq!(mail.status, StatusCode::OK);
    assert!(mail.body.contains("/confirm/"), "{}", mail.body);
    assert_eq!(
        alice.get("/mailbox/b1.eml").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        alice.get("/mailbox/..%2Fb1.eml").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.browser().get("/mailbox").await.location.as_deref(),
        Some("/signin")
    );
    app.stop().await;
}

// Issue 9: mail links come from the route table the router mounts. Every link the renderer
// puts into a notification or a confirmation opens a page of this web app.
async fn every_link_a_mail_carries_is_a_page(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let confirmed = app
        .store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: "alice@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    notify(
        app,
        user.id,
        confirmed.id,
        "my builds",
        serde_json::json!({"owner": "alice"}),
    )
    .await;
    app.store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: "alice@example.net",
            confirmed: false,
        })
        .await
        .unwrap();
    let renderer = tidings_notifier::render::Renderer::new(&app.base);
    let claimed = app.store.claim(10, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 2, "a notification and a confirmation");
    let mut opened = 0;
    for row in &claimed {
        let rendered = renderer.render(row).unwrap();
        for link in rendered.links.all() {
            // The message's own page is elsewhere; every other link is ours.
            let Some(path) = link.strip_prefix(app.base.as_str()) else {
                continue;
            };
            let page = alice.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{link}: {}", page.body);
            assert!(
                rendered.text.contains(link) || rendered.header("List-Unsubscribe").is_some(),
                "{link} is carried by the mail"
            );
            opened += 1;
        }
    }
    // Notification: notifications, filters, unsubscribe, one-click; confirmation: confirm.
    assert_eq!(opened, 5);
}

/// Makes every outbox row look queued at `at`.
async fn age_outbox(app: &App, at: i64) {
    app.sql(&format!("UPDATE outbox SET created_at = {at}"))
        .await;
}

// Issue 10: the unsubscribe page offers muting what the notification is about (its thread,
// its packages) for 30 days, and undo for both that and switching the filters off; a
// signed-in user sees and ends their mutes on the filters page; nobody ends another's.
async fn mute_and_undo_from_the_unsubscribe_page(app: &App) {
    use tidings_rules::{Condition, Message, Metadata};
    use tidings_store::{Delivery, FilterInput, MuteKind, Notification};
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let dest = app
        .store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: "alice@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    let filter = app
        .store
        .create_filter(
            user.id,
            &FilterInput {
                name: "my builds".into(),
                condition: Condition::parse("usernames has $me").unwrap(),
                destination_ids: vec![dest.id],
                delivery: Delivery::Instant,
                enabled: true,
            },
        )
        .await
        .unwrap();
    let message = Message::new(
        "m-mute",
        "org.fedoraproject.prod.buildsys.build.state.change",
        serde_json::json!({}),
    );
    let metadata = Metadata {
        app: Some("koji".into()),
        url: Some("https://koji.example.org/buildinfo?buildID=1".into()),
        packages: ["kernel".to_string()].into(),
        usernames: ["alice".to_string()].into(),
        summary: "kernel-6.1 built".into(),
        ..Metadata::default()
    };
    let id = app
        .store
        .insert_message(&message, &metadata, "test")
        .await
        .unwrap()
        .unwrap();
    let notification = Notification {
        destination_id: dest.id,
        filters: vec![(filter.id, filter.name.clone())],
        digest: None,
    };
    app.store
        .complete_message(id, &[notification])
        .await
        .unwrap();
    let token = app
        .store
        .claim(10, 60_000)
        .await
        .unwrap()
        .remove(0)
        .unsubscribe_token
        .unwrap();
    let path = format!("/unsubscribe/{token}");
    let page = alice.get(&path).await.body;
    assert!(
        page.contains("Mute this thread: https://koji.example.org/buildinfo?buildID=1 (koji)"),
        "{page}"
    );
    assert!(page.contains("Mute the package kernel"), "{page}");

    let muted = alice
        .submit(&path, &format!("{path}/mute"), &[("option", "1")])
        .await;
    assert_eq!(muted.status, StatusCode::OK, "{}", muted.body);
    assert!(
        muted.body.contains("Muted the package kernel until"),
        "{}",
        muted.body
    );
    let mutes = app.store.active_mutes(Some(user.id)).await.unwrap();
    assert_eq!(mutes.len(), 1);
    assert_eq!(
        (mutes[0].kind, mutes[0].value.as_str()),
        (MuteKind::Package, "kernel")
    );
    assert!(mutes[0].silences(&metadata, tidings_store::now_ms()));
    // 30 days from when it was set: a moment ago (the same millisecond, on a fast day).
    let left = mutes[0].until - tidings_store::now_ms();
    assert!(
        (tidings_store::MUTE_MS - 60_000..=tidings_store::MUTE_MS).contains(&left),
        "30 days, less the moments since: {left} ms"
    );
    let bad = alice
        .submit(&path, &format!("{path}/mute"), &[("option", "7")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // The filters page lists it.
    let filters = alice.get("/filters").await.body;
    assert!(filters.contains("the package kernel, until"), "{filters}");
    assert!(
        filters.contains(&format!("/mutes/{}/delete", mutes[0].id)),
        "{filters}"
    );

    // Undo from the page; another's mute cannot be ended through this link.
    let mallory = app.store.create_user("mallory", None, false).await.unwrap();
    let theirs = app
        .store
        .mute(
            mallory.id,
            &tidings_store::mute_options(&metadata)[0],
            tidings_store::now_ms() + 1000,
        )
        .await
        .unwrap();
    let refused = alice
        .submit(
            &path,
            &format!("{path}/unmute"),
            &[("mute", &theirs.id.to_string())],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let undone = alice
        .submit(
            &path,
            &format!("{path}/unmute"),
            &[("mute", &mutes[0].id.to_string())],
        )
        .await;
    assert_eq!(undone.status, StatusCode::OK);
    assert!(undone.body.contains("Unmuted"), "{}", undone.body);
    assert!(app
        .store
        .active_mutes(Some(user.id))
        .await
        .unwrap()
        .is_empty());

    // Mute the thread, and end it from the filters page.
    alice
        .submit(&path, &format!("{path}/mute"), &[("option", "0")])
        .await;
    let thread = app
        .store
        .active_mutes(Some(user.id))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(thread.kind, MuteKind::Thread);
    let ended = alice
        .submit("/filters", &format!("/mutes/{}/delete", thread.id), &[])
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert!(app
        .store
        .active_mutes(Some(user.id))
        .await
        .unwrap()
        .is_empty());

    // Switched off by one click, back on from the link's page.
    let bare = reqwest::Client::new();
    let reply = bare
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert!(!app.store.filter(user.id, filter.id).await.unwrap().enabled);
    let page = alice.get(&path).await.body;
    assert!(page.contains("They are off now"), "{page}");
    let back = alice.submit(&path, &format!("{path}/undo"), &[]).await;
    assert_eq!(back.status, StatusCode::OK);
    assert!(back.body.contains("on again"), "{}", back.body);
    assert!(app.store.filter(user.id, filter.id).await.unwrap().enabled);
}
