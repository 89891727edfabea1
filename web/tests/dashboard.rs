//! Issue 11: the dashboard shows each filter with the notifications it caused that were
//! sent in the last 7 days, each destination's state, and a running pause — only the
//! signed-in user's.

use tidings_store::{ChannelKind, NewDestination};

use crate::mailbox::{deliver, notify};
use crate::on_both;
use crate::support::App;

on_both!(the_dashboard_counts_each_filters_week_and_says_what_stops_delivery);

async fn the_dashboard_counts_each_filters_week_and_says_what_stops_delivery(app: &App) {
    let folder = tempfile::tempdir().unwrap();
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let bob = app.browser();
    bob.signup("bob", "amber falcon orchard 17").await;
    let alice_id = app.store.user_by_name("alice").await.unwrap().unwrap().id;
    let destination = |address: &'static str, confirmed: bool| NewDestination {
        user_id: alice_id,
        channel: ChannelKind::Email,
        address,
        confirmed,
    };
    let mail = app
        .store
        .add_destination(destination("alice@example.org", true))
        .await
        .unwrap();
    app.store
        .add_destination(destination("alice@work.example.org", false))
        .await
        .unwrap();
    let body = serde_json::json!({"owner": "alice", "name": "tidings"});
    notify(app, alice_id, mail.id, "builds", body.clone()).await;
    notify(app, alice_id, mail.id, "more builds", body).await;
    deliver(app, folder.path()).await;
    // Not sent yet: counts for nothing.
    notify(
        app,
        alice_id,
        mail.id,
        "queued",
        serde_json::json!({"owner": "alice", "name": "queued"}),
    )
    .await;

    let page = alice.get("/").await.body;
    for (name, sent) in [("builds", 1), ("more builds", 1), ("queued", 0)] {
        let row = page
            .lines()
            .find(|l| l.contains(&format!(">{name}</a>")))
            .unwrap_or_else(|| panic!("no row for {name}: {page}"));
        assert!(
            row.contains(&format!("{sent} sent in the last 7 days")),
            "{name}: {row}"
        );
    }
    assert!(
        page.contains("alice@example.org <span class=\"muted\">confirmed</span>"),
        "{page}"
    );
    assert!(
        page.contains(
            "alice@work.example.org <span class=\"status-dead\">waiting for confirmation</span>"
        ),
        "{page}"
    );
    assert!(!page.contains("Everything is paused"), "{page}");
    // Each notification links to the why-page of its message.
    let why = format!("/filters/why?message=m-{alice_id}-builds");
    assert!(page.contains(&format!("href=\"{why}\"")), "{page}");
    let answer = alice.get(&why).await;
    assert_eq!(answer.status, reqwest::StatusCode::OK);
    assert!(answer.body.contains("builds"), "{}", answer.body);

    let week = tidings_store::now_ms() + 7 * 86_400_000;
    app.store.pause_everything(alice_id, week).await.unwrap();
    assert!(alice
        .get("/")
        .await
        .body
        .contains("Everything is paused until"));

    // Bob sees none of it.
    let theirs = bob.get("/").await.body;
    assert!(
        !theirs.contains("alice@") && !theirs.contains("builds") && !theirs.contains("paused"),
        "{theirs}"
    );
}
