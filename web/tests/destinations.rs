//! The destinations page and the confirmation link: address checks, rate limits, resending,
//! dead confirmations, and link tokens that must have their one shape.

use reqwest::StatusCode;
use tidings_store::{ChannelKind, OutboxKind, Outcome, CODE_TRIES, PER_ADDRESS};

use crate::on_both;
use crate::support::{App, Browser};

on_both!(
    confirm_page_refuses_malformed_tokens,
    confirmations_are_rate_limited,
    resend_and_dead_confirmations,
    addresses_are_validated,
    webhooks_show_their_secret_once,
    chat_destinations_are_confirmed_by_their_code,
    delivery_and_quiet_hours_are_set_on_the_page
);

async fn signed_in(app: &App, name: &str) -> Browser {
    let browser = app.browser();
    browser.signup(name, "velvet crane harbour 42").await;
    browser
}

async fn add(browser: &Browser, address: &str) -> crate::support::Reply {
    browser
        .submit("/destinations", "/destinations", &[("address", address)])
        .await
}

// Issue 8 item 3: `/confirm/..%2Ffilters%2F3%2Fdelete` rendered a genuine-looking page
// whose Confirm button posted the victim's CSRF token to /filters/3/delete. Malformed
// tokens are 404 before any page is rendered; the form posts to the route built from the
// validated token.
async fn confirm_page_refuses_malformed_tokens(app: &App) {
    let victim = signed_in(app, "victim").await;
    let home = victim.get("/filters").await;
    assert_eq!(home.status, StatusCode::OK);
    for path in [
        "/confirm/..%2Ffilters%2F3%2Fdelete",
        "/confirm/..%2F..%2Fsignout",
        "/confirm/short",
        "/unsubscribe/..%2Ffilters%2F3%2Fdelete",
    ] {
        let page = victim.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !page.body.contains("<form method=\"post\" action"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("csrf"), "{path}: {}", page.body);
        let post = victim.submit("/filters", path, &[]).await;
        assert_eq!(post.status, StatusCode::NOT_FOUND, "{path}");
    }
    let token = tidings_store::secret::new_token();
    let page = victim.get(&format!("/confirm/{token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!(
            "<form method=\"post\" action=\"/confirm/{token}\">"
        )),
        "{}",
        page.body
    );
}

// Issue 8 item 6: 13 confirmation mails to one victim in 4 s by add/delete cycles and case
// variants. Now the fourth to one address in a day is refused with 429 and a message.
async fn confirmations_are_rate_limited(app: &App) {
    let mallory = signed_in(app, "mallory").await;
    let user = app.store.user_by_name("mallory").await.unwrap().unwrap();
    for spelling in [
        "victim@example.org",
        "Victim@Example.org",
        "VICTIM@example.ORG",
    ]
    .iter()
    .take(PER_ADDRESS as usize)
    {
        let added = add(&mallory, spelling).await;
        assert_eq!(added.status, StatusCode::OK, "{}", added.body);
        let id = app.store.destinations(user.id).await.unwrap()[0].id;
        let html = mallory.get("/destinations").await.body;
        let csrf = crate::support::csrf(&html);
        let deleted = mallory
            .post(&format!("/destinations/{id}/delete"), &[("csrf", &csrf)])
            .await;
        assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    }
    let refused = add(&mallory, "victim@example.org").await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert!(refused.body.contains("24 hours"), "{}", refused.body);
    assert!(app.store.destinations(user.id).await.unwrap().is_empty());
    let queued = app.store.outbox_counts().await.unwrap();
    assert_eq!(queued.0, 0, "deleting dropped the queued mails: {queued:?}");
}

// Issue 8 item 6: a confirmation that failed for good shows as such, not "waiting"
// forever, and the user can resend it (within the limits).
async fn resend_and_dead_confirmations(app: &App) {
    let alice = signed_in(app, "alice").await;
    add(&alice, "alice@example.org").await;
    let page = alice.get("/destinations").await.body;
    assert!(page.contains("Resend confirmation"), "{page}");
    assert!(page.contains("waiting for the confirmation mail"), "{page}");

    let claimed = app.store.claim(10, 60_000).await.unwrap();
    assert_eq!(claimed[0].kind, OutboxKind::Confirmation);
    let dead = Outcome::Dead {
        error: "550 5.1.1 no such mailbox".into(),
    };
    app.store.record(&claimed[0], &dead).await.unwrap();
    let page = alice.get("/destinations").await.body;
    assert!(page.contains("could not be delivered"), "{page}");
    assert!(page.contains("550 5.1.1 no such mailbox"), "{page}");
    assert!(!page.contains("waiting for"), "{page}");

    let id = claimed[0].destination.id;
    let resend = format!("/destinations/{id}/resend");
    let again = alice.submit("/destinations", &resend, &[]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(
        again.body.contains("new confirmation link"),
        "{}",
        again.body
    );
    assert!(again.body.contains("waiting for the confirmation mail"));
    assert_eq!(app.store.outbox_counts().await.unwrap(), (1, 0, 0, 1));
    assert_eq!(
        alice.post(&resend, &[]).await.status,
        StatusCode::FORBIDDEN,
        "the resend button carries a CSRF token"
    );
    let limited = {
        alice.submit("/destinations", &resend, &[]).await;
        alice.submit("/destinations", &resend, &[]).await
    };
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        limited.body
    );

    let bob = signed_in(app, "bob").await;
    let foreign = bob.submit("/destinations", &resend, &[]).await;
    assert_eq!(
        foreign.status,
        StatusCode::NOT_FOUND,
        "someone else's destination"
    );
}

// Issue 8 item 6: `ralph@@example.org` was accepted and its confirmation died at once.
async fn addresses_are_validated(app: &App) {
    let ralph = signed_in(app, "ralph").await;
    for bad in [
        "ralph@@example.org",
        "\"ralph\"@example.org",
        "ralph@localhost",
    ] {
        let refused = add(&ralph, bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            refused.body.contains("is not an email address"),
            "{}",
            refused.body
        );
    }
    let added = add(&ralph, " Ralph@Example.ORG ").await;
    assert_eq!(added.status, StatusCode::OK);
    assert!(added.body.contains("Ralph@example.org"), "{}", added.body);
    assert_eq!(app.store.outbox_counts().await.unwrap().0, 1);
}

// Issue 10: a webhook is added from the same page; its signing secret is shown once and
// never again; its address is checked and shown escaped; an unknown channel is refused.
async fn webhooks_show_their_secret_once(app: &App) {
    let alice = signed_in(app, "alice").await;
    let webhook = |url: &'static str| {
        let alice = &alice;
        async move {
            alice
                .submit(
                    "/destinations",
                    "/destinations",
                    &[("channel", "webhook"), ("address", url)],
                )
                .await
        }
    };
    for bad in [
        "ftp://mirror.example.org/",
        "https://user:pw@mirror.example.org/",
    ] {
        let refused = webhook(bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            refused.body.contains("is not a web address"),
            "{}",
            refused.body
        );
    }
    let added = webhook("https://Mirror.Example.org/hook?x=<b>").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(
        added
            .body
            .contains("https://mirror.example.org/hook?x=%3Cb%3E"),
        "{}",
        added.body
    );
    let secret = added
        .body
        .split("<code id=\"webhook-secret\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_default()
        .to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 30,
        "{}",
        added.body
    );
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let destinations = app.store.destinations(user.id).await.unwrap();
    let stored = destinations
        .iter()
        .find(|d| d.channel == tidings_store::ChannelKind::Webhook)
        .expect("the webhook is stored");
    match &stored.settings {
        tidings_store::ChannelSettings::WebhookV1 { secret: s } => assert_eq!(s.expose(), secret),
        other => panic!("webhook settings expected, not {other:?}"),
    }
    // Its challenge is queued, and the secret is not on the page again.
    assert_eq!(app.store.outbox_counts().await.unwrap().0, 1);
    let later = alice.get("/destinations").await.body;
    assert!(later.contains("mirror.example.org"), "{later}");
    assert!(!later.contains(&secret), "the secret was shown again");
    assert!(later.contains("Resend challenge"), "{later}");
    // No such channel: refused by name.
    let unknown = alice
        .submit(
            "/destinations",
            "/destinations",
            &[("channel", "fax"), ("address", "123")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(unknown.body.contains("unknown channel"), "{}", unknown.body);
}

/// The code queued for destination `id` (claimed from the outbox, as the sender would).
async fn code_for(app: &App, id: i64) -> String {
    let claimed = app.store.claim(10, 60_000).await.unwrap();
    let row = claimed
        .iter()
        .find(|c| c.destination.id == id && c.kind == OutboxKind::Confirmation)
        .expect("a confirmation queued for the destination");
    for c in &claimed {
        app.store.record(c, &Outcome::Sent).await.unwrap();
    }
    row.confirmation_token().expect("a code").to_string()
}

// Issue 10: Matrix users and IRC nicks and channels are added from the same page and
// confirmed by the code sent to them, typed in by their signed-in owner: only theirs, a
// wrong code counted, five ending it, a resend starting afresh.
async fn chat_destinations_are_confirmed_by_their_code(app: &App) {
    let alice = signed_in(app, "alice").await;
    let added = alice
        .submit(
            "/destinations",
            "/destinations",
            &[("channel", "matrix"), ("address", " @Bob:Example.ORG ")],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(
        added.body.contains("Accept the invitation"),
        "{}",
        added.body
    );
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let matrix = app
        .store
        .destinations(user.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.channel == ChannelKind::Matrix)
        .expect("the Matrix destination is stored");
    assert_eq!(matrix.address, "@Bob:example.org");
    let code = code_for(app, matrix.id).await;
    assert_eq!(code.len(), 11, "{code}");
    let page = alice.get("/destinations").await.body;
    let action = format!("/destinations/{}/confirm", matrix.id);
    assert!(page.contains(&action), "{page}");
    assert!(page.contains("Resend code"), "{page}");

    // Someone else's destination: not found, whatever the code.
    let mallory = signed_in(app, "mallory").await;
    let theirs = mallory
        .submit("/destinations", &action, &[("code", &code)])
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);
    // A wrong code is counted; the right one, typed loosely, confirms.
    let wrong = alice
        .submit("/destinations", &action, &[("code", "00000-00000")])
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.body);
    assert!(wrong.body.contains("4 tries left"), "{}", wrong.body);
    let typed = code.to_lowercase().replace('-', " ");
    let right = alice
        .submit("/destinations", &action, &[("code", &typed)])
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert!(right.body.contains("is confirmed"), "{}", right.body);
    let again = alice
        .submit("/destinations", &action, &[("code", &code)])
        .await;
    assert!(again.body.contains("already confirmed"), "{}", again.body);

    // IRC: the network is picked from the site's; an unknown one is refused by name.
    let elsewhere = alice
        .submit(
            "/destinations",
            "/destinations",
            &[
                ("channel", "irc"),
                ("address", "nirik"),
                ("network", "elsewhere"),
            ],
        )
        .await;
    assert_eq!(elsewhere.status, StatusCode::BAD_REQUEST);
    assert!(
        elsewhere.body.contains("not an IRC network of this site"),
        "{}",
        elsewhere.body
    );
    let irc = alice
        .submit(
            "/destinations",
            "/destinations",
            &[
                ("channel", "irc"),
                ("address", "#Fedora-Admin"),
                ("network", "testnet"),
            ],
        )
        .await;
    assert_eq!(irc.status, StatusCode::OK, "{}", irc.body);
    let irc = app
        .store
        .destinations(user.id)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.channel == ChannelKind::Irc)
        .expect("the IRC destination is stored");
    assert_eq!(irc.address, "#Fedora-Admin@testnet");
    let code = code_for(app, irc.id).await;
    let action = format!("/destinations/{}/confirm", irc.id);
    // Five wrong codes end it: the right one no longer works until a new one is sent.
    for _ in 0..CODE_TRIES {
        let wrong = alice
            .submit("/destinations", &action, &[("code", "00000-00000")])
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    }
    let late = alice
        .submit("/destinations", &action, &[("code", &code)])
        .await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("have a new code sent"), "{}", late.body);
    let resent = alice
        .submit(
            "/destinations",
            &format!("/destinations/{}/resend", irc.id),
            &[],
        )
        .await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    let fresh = code_for(app, irc.id).await;
    assert_ne!(fresh, code);
    let right = alice
        .submit("/destinations", &action, &[("code", &fresh)])
        .await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    // A code is never a link: the link route does not take it.
    assert_eq!(
        app.store
            .confirm_destination(&fresh)
            .await
            .map(|d| d.id)
            .ok(),
        None
    );
}

// Issue 10: how a destination's notifications go out, and quiet hours, are settings on the
// destinations page: checked, shown back, only the owner's.
async fn delivery_and_quiet_hours_are_set_on_the_page(app: &App) {
    let alice = signed_in(app, "alice").await;
    let added = add(&alice, "alice@example.org").await;
    assert_eq!(added.status, StatusCode::OK);
    let user = app.store.user_by_name("alice").await.unwrap().unwrap();
    let mail = app.store.destinations(user.id).await.unwrap()[0].clone();
    let page = alice.get("/destinations").await.body;
    // The site's default until the owner says otherwise.
    let default = tidings_store::default_delivery().describe();
    assert!(page.contains(&default), "{default}: {page}");
    let action = format!("/destinations/{}/delivery", mail.id);
    let digest = alice
        .submit(
            "/destinations",
            &action,
            &[
                ("mode", "digest"),
                ("every", "120"),
                ("daily", "08:30"),
                ("after", ""),
            ],
        )
        .await;
    assert_eq!(digest.status, StatusCode::OK, "{}", digest.body);
    assert!(
        digest.body.contains("digest: every 2 h, or daily at 08:30"),
        "{}",
        digest.body
    );
    let stored = app.store.destination(user.id, mail.id).await.unwrap();
    assert!(matches!(
        stored.delivery,
        tidings_store::DeliveryPolicy::Digest {
            every_minutes: Some(120),
            ..
        }
    ));
    for (fields, said) in [
        (vec![("mode", "digest")], "say when a digest goes out"),
        (
            vec![("mode", "digest"), ("every", "soon")],
            "not a whole number",
        ),
        (
            vec![("mode", "digest"), ("daily", "25:00")],
            "not a time of day",
        ),
        (vec![("mode", "weekly")], "neither immediate nor digest"),
    ] {
        let refused = alice.submit("/destinations", &action, &fields).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(refused.body.contains(said), "{fields:?}: {}", refused.body);
    }
    // Someone else's destination: not found.
    let mallory = signed_in(app, "mallory").await;
    let theirs = mallory
        .submit("/destinations", &action, &[("mode", "immediate")])
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);

    let quiet = alice
        .submit(
            "/settings",
            "/settings/schedule",
            &[
                ("time_zone", "Europe/Paris"),
                ("quiet_from", "22:00"),
                ("quiet_to", "07:00"),
            ],
        )
        .await;
    assert_eq!(quiet.status, StatusCode::OK, "{}", quiet.body);
    assert!(
        quiet
            .body
            .contains("Quiet hours 22:00 to 07:00, Europe/Paris"),
        "{}",
        quiet.body
    );
    assert!(
        quiet.body.contains("value=\"Europe/Paris\""),
        "{}",
        quiet.body
    );
    let schedule = app.store.schedule(user.id).await.unwrap();
    assert_eq!(schedule.time_zone(), "Europe/Paris");
    for (fields, said) in [
        (vec![("time_zone", "Mars/Olympus")], "not a time zone name"),
        (
            vec![("time_zone", "UTC"), ("quiet_from", "22:00")],
            "give both a start and an end",
        ),
    ] {
        let refused = alice
            .submit("/settings", "/settings/schedule", &fields)
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(refused.body.contains(said), "{fields:?}: {}", refused.body);
    }
    assert_eq!(
        app.store.schedule(user.id).await.unwrap(),
        schedule,
        "unchanged"
    );
    // The destinations page says what they are and where they are changed.
    let page = alice.get("/destinations").await.body;
    assert!(
        page.contains("Quiet hours: 22:00 to 07:00, Europe/Paris"),
        "{page}"
    );
}
