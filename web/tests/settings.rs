//! Issue 11: Settings — pausing everything, the delivery new destinations start with, and
//! the time zone and quiet hours (tested with the destinations page) — each user's own.

use reqwest::StatusCode;
use tidings_store::{DeliveryPolicy, MuteKind};

use crate::on_both;
use crate::support::App;

on_both!(
    pausing_everything_is_set_and_ended_on_the_settings_page,
    new_destinations_start_with_the_default_delivery_chosen_in_settings
);

async fn pausing_everything_is_set_and_ended_on_the_settings_page(app: &App) {
    let anonymous = app.browser().get("/settings").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(
        anonymous
            .location
            .as_deref()
            .is_some_and(|to| to.starts_with("/signin")),
        "signed out: to the sign-in page, {:?}",
        anonymous.location
    );
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let bob = app.browser();
    bob.signup("bob", "amber falcon orchard 17").await;
    let alice_id = app.store.user_by_name("alice").await.unwrap().unwrap().id;
    let bob_id = app.store.user_by_name("bob").await.unwrap().unwrap().id;

    let page = alice.get("/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"href="/settings""#), "in the menu");
    assert!(!page.body.contains("Paused until"), "{}", page.body);

    let before = tidings_store::now_ms();
    let paused = alice
        .submit("/settings", "/settings/pause", &[("days", "7")])
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert!(paused.body.contains("Paused until"), "{}", paused.body);
    assert!(paused.body.contains("Resume now"), "{}", paused.body);
    let until = app.store.paused_until(alice_id).await.unwrap().unwrap();
    let week = 7 * 86_400_000;
    assert!(
        until >= before + week && until <= tidings_store::now_ms() + week,
        "{until}"
    );
    let mutes = app.store.active_mutes(Some(alice_id)).await.unwrap();
    assert_eq!(mutes.len(), 1);
    assert_eq!(mutes[0].kind, MuteKind::Everything);
    // Bob is not paused, and his resume does not end alice's pause.
    assert_eq!(app.store.paused_until(bob_id).await.unwrap(), None);
    let nothing = bob.submit("/settings", "/settings/resume", &[]).await;
    assert!(
        nothing.body.contains("Nothing was paused"),
        "{}",
        nothing.body
    );
    assert_eq!(app.store.paused_until(alice_id).await.unwrap(), Some(until));

    for days in ["0", "91", "soon", ""] {
        let refused = alice
            .submit("/settings", "/settings/pause", &[("days", days)])
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{days:?}");
        assert!(
            refused.body.contains("days: ") && refused.body.contains("from 1 to 90"),
            "{days:?}: {}",
            refused.body
        );
    }
    assert_eq!(app.store.paused_until(alice_id).await.unwrap(), Some(until));

    let resumed = alice.submit("/settings", "/settings/resume", &[]).await;
    assert_eq!(resumed.status, StatusCode::OK);
    assert!(resumed.body.contains("Resumed"), "{}", resumed.body);
    assert_eq!(app.store.paused_until(alice_id).await.unwrap(), None);
}

async fn new_destinations_start_with_the_default_delivery_chosen_in_settings(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let alice_id = app.store.user_by_name("alice").await.unwrap().unwrap().id;
    let add = |address: &'static str| {
        let alice = &alice;
        async move {
            let added = alice
                .submit("/destinations", "/destinations", &[("address", address)])
                .await;
            assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        }
    };
    add("before@example.org").await;
    let site = tidings_store::default_delivery();

    let page = alice.get("/settings").await.body;
    assert!(page.contains(&site.describe()), "{page}");
    let saved = alice
        .submit(
            "/settings",
            "/settings/delivery",
            &[
                ("mode", "digest"),
                ("every", "60"),
                ("daily", ""),
                ("after", ""),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(saved.body.contains("digest: every 1 h"), "{}", saved.body);
    let digest = DeliveryPolicy::Digest {
        every_minutes: Some(60),
        daily_at: None,
        max_items: None,
    };
    assert_eq!(
        app.store.user_default_delivery(alice_id).await.unwrap(),
        Some(digest.clone())
    );
    add("after@example.org").await;
    // A webhook cannot gather a digest: it keeps going at once, in order.
    let hook = alice
        .submit(
            "/destinations",
            "/destinations",
            &[
                ("channel", "webhook"),
                ("address", "https://hooks.example.org/t"),
            ],
        )
        .await;
    assert_eq!(hook.status, StatusCode::OK, "{}", hook.body);
    let delivery = |address: &'static str| async move {
        app.store
            .destinations(alice_id)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.address == address)
            .unwrap_or_else(|| panic!("{address}"))
            .delivery
    };
    assert_eq!(delivery("after@example.org").await, digest);
    assert_eq!(delivery("before@example.org").await, site, "unchanged");
    assert_eq!(delivery("https://hooks.example.org/t").await, site);

    // Applied to every destination now, where it can be.
    let applied = alice
        .submit(
            "/settings",
            "/settings/delivery",
            &[
                ("mode", "digest"),
                ("every", "60"),
                ("daily", ""),
                ("after", ""),
                ("apply", "on"),
            ],
        )
        .await;
    assert!(
        applied.body.contains("so do your 2 destination(s)"),
        "{}",
        applied.body
    );
    assert_eq!(delivery("before@example.org").await, digest);
    assert_eq!(delivery("https://hooks.example.org/t").await, site);

    // Refused settings name the field and change nothing.
    let refused = alice
        .submit(
            "/settings",
            "/settings/delivery",
            &[("mode", "digest"), ("every", "2")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("every_minutes"), "{}", refused.body);
    assert_eq!(
        app.store.user_default_delivery(alice_id).await.unwrap(),
        Some(digest)
    );

    // Back to the site's default.
    let site_again = alice
        .submit("/settings", "/settings/delivery", &[("mode", "site")])
        .await;
    assert!(
        site_again.body.contains("the site&#39;s default"),
        "{}",
        site_again.body
    );
    assert_eq!(
        app.store.user_default_delivery(alice_id).await.unwrap(),
        None
    );
    add("third@example.org").await;
    assert_eq!(delivery("third@example.org").await, site);
}
