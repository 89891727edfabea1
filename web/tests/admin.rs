//! The admin pages: only admins see them (403 for everyone else, page by page and form by
//! form), default filters reach new accounts and are offered to existing ones, users are
//! searched and disabled, dead letters retried and discarded, charts drawn from what was
//! seeded, and the live bus view streams what is published, by topic.

use std::time::Duration;

use reqwest::StatusCode;
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{
    Delivery, FilterInput, NewDestination, Notification, TokenScope, DISABLED_ERROR,
};

use crate::on_both;
use crate::support::{csrf, App, Browser};

on_both!(
    admin_pages_refuse_everyone_else,
    default_filters_reach_new_accounts_and_are_offered_to_others,
    users_are_searched_paged_and_disabled,
    dead_letters_are_retried_and_discarded,
    charts_draw_what_was_archived,
    the_live_view_streams_published_messages_by_topic,
);

const PASSWORD: &str = "velvet crane harbour 42";

/// An admin account, signed in.
async fn admin(app: &App) -> Browser {
    app.store
        .create_user("root", Some(PASSWORD), true)
        .await
        .unwrap();
    let root = app.browser();
    let reply = root.signin("root", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    root
}

/// Every admin page, and every admin form's action.
const PAGES: &[&str] = &[
    "/admin",
    "/admin/defaults",
    "/admin/defaults/1",
    "/admin/users",
    "/admin/users/1",
    "/admin/dead",
    "/admin/charts",
    "/admin/catalog",
    "/admin/live",
    "/admin/live/events",
    "/admin/live.js",
];
const ACTIONS: &[&str] = &[
    "/admin/defaults",
    "/admin/defaults/1",
    "/admin/defaults/1/delete",
    "/admin/users/1/disable",
    "/admin/users/1/enable",
    "/admin/dead/retry",
    "/admin/dead/discard",
];

async fn admin_pages_refuse_everyone_else(app: &App) {
    let root = admin(app).await;
    let created = root
        .submit(
            "/admin/defaults",
            "/admin/defaults",
            &[
                ("name", "mine"),
                ("condition", "usernames has $me"),
                ("enabled", "on"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);

    let alice = app.browser_from("127.0.0.2");
    alice.signup("alice", PASSWORD).await;
    let home = alice.get("/").await.body;
    assert!(
        !home.contains(r#"href="/admin""#),
        "no admin link for alice"
    );
    let token = csrf(&home);
    for page in PAGES {
        let reply = alice.get(page).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "GET {page}");
        assert!(reply.body.contains("Admins only"), "GET {page}");
    }
    for action in ACTIONS {
        let reply = alice
            .post(
                action,
                &[
                    ("csrf", token.as_str()),
                    ("id", "1"),
                    ("name", "x"),
                    ("condition", "usernames has $me"),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "POST {action}");
    }
    // Nothing a refused form asked for happened.
    assert_eq!(app.store.default_filters().await.unwrap().len(), 1);
    assert!(!app.store.user(1).await.unwrap().disabled);

    let stranger = app.browser_from("127.0.0.3");
    for page in PAGES {
        let reply = stranger.get(page).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "GET {page}");
        assert_eq!(reply.location.as_deref(), Some("/signin"), "GET {page}");
    }

    let home = root.get("/").await.body;
    assert!(
        home.contains(r#"href="/admin""#),
        "the menu links the admin pages"
    );
    for page in PAGES.iter().filter(|p| !p.contains("events")) {
        let reply = root.get(page).await;
        assert_eq!(reply.status, StatusCode::OK, "GET {page}: {}", reply.body);
    }
}

async fn default_filters_reach_new_accounts_and_are_offered_to_others(app: &App) {
    let store = &app.store;
    let root = admin(app).await;
    // Bob and dave were here before.
    let bob = app.browser_from("127.0.0.2");
    bob.signup("bob", PASSWORD).await;
    let dave = app.browser_from("127.0.0.4");
    dave.signup("dave", PASSWORD).await;
    let bob_id = store.user_by_name("bob").await.unwrap().unwrap().id;
    store
        .add_destination(NewDestination {
            user_id: bob_id,
            channel: tidings_store::ChannelKind::Email,
            address: "bob@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    store
        .set_package_owners("kernel", &[tidings_store::Owner::user("bob")])
        .await
        .unwrap();
    for (id, packages) in [
        ("m1", vec!["kernel"]),
        ("m2", vec!["glibc"]),
        ("m3", vec!["kernel"]),
    ] {
        let message = Message::new(
            id,
            "org.fedoraproject.prod.bodhi.update.comment",
            serde_json::json!({}),
        );
        let metadata = Metadata {
            topic: message.topic.clone(),
            app: Some("bodhi".into()),
            packages: packages.into_iter().map(str::to_string).collect(),
            summary: format!("message {id}"),
            ..Metadata::default()
        };
        store
            .insert_message(&message, &metadata, "test")
            .await
            .unwrap();
    }

    // A condition that does not parse is refused, saying where.
    let form = |condition: &'static str, action: &'static str| {
        vec![
            ("name", "My packages"),
            ("condition", condition),
            ("delivery", "instant"),
            ("enabled", "on"),
            ("preview_users", "bob, dave"),
            ("action", action),
        ]
    };
    let bad = root
        .submit(
            "/admin/defaults",
            "/admin/defaults",
            &form("packages has (", "save"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("line 1, column"), "{}", bad.body);
    assert!(store.default_filters().await.unwrap().is_empty());

    // The preview tries it for bob and dave, each with their own $my_packages.
    let preview = root
        .submit(
            "/admin/defaults",
            "/admin/defaults",
            &form("packages has $my_packages", "preview"),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("<td>bob</td><td>2</td>"),
        "{}",
        preview.body
    );
    assert!(
        preview.body.contains("<td>dave</td><td>0</td>"),
        "{}",
        preview.body
    );
    assert!(
        store.default_filters().await.unwrap().is_empty(),
        "a preview saves nothing"
    );

    let saved = root
        .submit(
            "/admin/defaults",
            "/admin/defaults",
            &form("packages has $my_packages", "save"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let list = root.get("/admin/defaults").await.body;
    assert!(
        list.contains("My packages") && list.contains("packages has $my_packages"),
        "{list}"
    );

    // A new account starts with it, and the matcher is told.
    let before = store.last_change().await.unwrap();
    let carol = app.browser_from("127.0.0.3");
    carol.signup("carol", PASSWORD).await;
    let carol_id = store.user_by_name("carol").await.unwrap().unwrap().id;
    let filters = store.filters(carol_id).await.unwrap().filters;
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0].name, "My packages");
    assert_eq!(
        filters[0].condition.to_string(),
        "packages has $my_packages"
    );
    assert!(filters[0].enabled);
    assert!(store
        .changes_since(before)
        .await
        .unwrap()
        .iter()
        .any(|c| c.user_id == carol_id));
    let home = carol.get("/").await.body;
    assert!(
        !home.contains("default filter"),
        "nothing to offer carol: {home}"
    );
    // Her first destination is where it sends.
    let dest = store
        .add_destination(NewDestination {
            user_id: carol_id,
            channel: tidings_store::ChannelKind::Email,
            address: "carol@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    let filters = store.filters(carol_id).await.unwrap().filters;
    assert_eq!(filters[0].destination_ids, vec![dest.id]);

    // So does an account an admin makes from the command line's store call.
    let erin = store.create_user("erin", None, false).await.unwrap();
    assert_eq!(store.filters(erin.id).await.unwrap().filters.len(), 1);

    // Bob is offered it, adds it, and it sends to his destinations; his own filter of the
    // same name is left alone.
    store
        .create_filter(
            bob_id,
            &FilterInput {
                name: "My packages".into(),
                condition: Condition::parse("usernames has $me").unwrap(),
                destination_ids: vec![],
                delivery: Delivery::Instant,
                enabled: true,
            },
        )
        .await
        .unwrap();
    let home = bob.get("/").await.body;
    assert!(home.contains("1 new default filter is available"), "{home}");
    let template = store.default_filters().await.unwrap()[0].id.to_string();
    let added = bob
        .submit("/", "/defaults/add", &[("id", template.as_str())])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let filters = store.filters(bob_id).await.unwrap().filters;
    assert_eq!(filters.len(), 2);
    let copy = filters
        .iter()
        .find(|f| f.name == "My packages (2)")
        .unwrap();
    assert_eq!(copy.condition.to_string(), "packages has $my_packages");
    assert_eq!(copy.destination_ids.len(), 1);
    assert!(!bob.get("/").await.body.contains("new default filter"));

    // Dave says no thanks: no filter, no more offer.
    let dismissed = dave
        .submit("/", "/defaults/dismiss", &[("id", template.as_str())])
        .await;
    assert_eq!(dismissed.status, StatusCode::SEE_OTHER);
    let dave_id = store.user_by_name("dave").await.unwrap().unwrap().id;
    assert!(store.filters(dave_id).await.unwrap().filters.is_empty());
    assert!(!dave.get("/").await.body.contains("new default filter"));

    // Editing and deleting the default filter leaves the copies alone.
    let edit = format!("/admin/defaults/{template}");
    let page = root.get(&edit).await.body;
    assert!(page.contains("packages has $my_packages"), "{page}");
    let renamed = root
        .submit(
            &edit,
            &edit,
            &[
                ("name", "Renamed"),
                ("condition", "packages has $my_packages"),
                ("delivery", "instant"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.body);
    let t = &store.default_filters().await.unwrap()[0];
    assert_eq!((t.name.as_str(), t.enabled), ("Renamed", false));
    // Disabled: a new account does not get it.
    let frank = store.create_user("frank", None, false).await.unwrap();
    assert!(store.filters(frank.id).await.unwrap().filters.is_empty());
    let deleted = root.submit(&edit, &format!("{edit}/delete"), &[]).await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(store.default_filters().await.unwrap().is_empty());
    assert_eq!(store.filters(carol_id).await.unwrap().filters.len(), 1);
}

async fn users_are_searched_paged_and_disabled(app: &App) {
    let store = &app.store;
    let root = admin(app).await;
    for n in 0..55 {
        store
            .create_user(&format!("user{n:02}"), None, false)
            .await
            .unwrap();
    }
    let bob = app.browser_from("127.0.0.2");
    bob.signup("bob", PASSWORD).await;
    let bob_id = store.user_by_name("bob").await.unwrap().unwrap().id;
    let dest = store
        .add_destination(NewDestination {
            user_id: bob_id,
            channel: tidings_store::ChannelKind::Email,
            address: "bob@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    let filter = store
        .create_filter(
            bob_id,
            &FilterInput {
                name: "bob's builds".into(),
                condition: Condition::parse("usernames has $me").unwrap(),
                destination_ids: vec![dest.id],
                delivery: Delivery::Instant,
                enabled: true,
            },
        )
        .await
        .unwrap();

    let found = root.get("/admin/users?q=bo").await.body;
    assert!(found.contains(">bob</a>"), "{found}");
    assert!(!found.contains("user00"), "{found}");
    assert!(found.contains("1 account whose name contains"), "{found}");
    // 57 accounts, 50 a page.
    let first = root.get("/admin/users").await.body;
    assert!(first.contains("page 1 of 2"), "{first}");
    assert!(
        first.contains(">user00</a>") && !first.contains(">user48</a>"),
        "{first}"
    );
    let second = root.get("/admin/users?q=&page=2").await.body;
    assert!(
        second.contains(">user54</a>") && !second.contains(">user00</a>"),
        "{second}"
    );
    // '_' is a letter here, not a wildcard.
    let none = root.get("/admin/users?q=user_").await.body;
    assert!(none.contains("0 accounts"), "{none}");

    // Bob's page shows his filters, without a way to change them.
    let page_path = format!("/admin/users/{bob_id}");
    let page = root.get(&page_path).await.body;
    assert!(
        page.contains("bob&#x27;s builds") || page.contains("bob&#39;s builds"),
        "{page}"
    );
    assert!(page.contains("usernames has $me"), "{page}");
    assert!(
        !page.contains(&format!("/filters/{}/delete", filter.id)),
        "{page}"
    );

    // Something is queued for him; disabling him ends his session and that.
    let message = Message::new(
        "m-q",
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({}),
    );
    let id = store
        .insert_message(&message, &Metadata::default(), "test")
        .await
        .unwrap()
        .unwrap();
    store
        .complete_message(
            id,
            &[Notification {
                destination_id: dest.id,
                filters: vec![(filter.id, filter.name.clone())],
                digest: None,
            }],
        )
        .await
        .unwrap();
    let disabled = root
        .submit(&page_path, &format!("{page_path}/disable"), &[])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER, "{}", disabled.body);
    assert!(store.user(bob_id).await.unwrap().disabled);
    assert_eq!(bob.get("/").await.location.as_deref(), Some("/signin"));
    let again = bob.signin("bob", PASSWORD).await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a disabled user cannot sign in"
    );
    assert!(
        store.claim(10, 60_000).await.unwrap().is_empty(),
        "nothing is sent to bob"
    );
    let dead = store.dead_notifications(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].username, "bob");
    assert_eq!(dead[0].last_error.as_deref(), Some(DISABLED_ERROR));
    assert!(root.get(&page_path).await.body.contains("Disabled"));

    let enabled = root
        .submit(&page_path, &format!("{page_path}/enable"), &[])
        .await;
    assert_eq!(enabled.status, StatusCode::SEE_OTHER);
    assert!(!store.user(bob_id).await.unwrap().disabled);

    // An admin cannot lock themselves out here.
    let root_id = store.user_by_name("root").await.unwrap().unwrap().id;
    let own = format!("/admin/users/{root_id}");
    let refused = root.submit(&own, &format!("{own}/disable"), &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("your own account"),
        "{}",
        refused.body
    );
    assert!(!store.user(root_id).await.unwrap().disabled);
}

/// Queues one notification to a new confirmed destination of `user` and marks it dead.
pub(crate) async fn dead_one(app: &App, user_id: i64, address: &str, message_id: &str) -> i64 {
    let store = &app.store;
    let dest = store
        .add_destination(NewDestination {
            user_id,
            channel: tidings_store::ChannelKind::Email,
            address,
            confirmed: true,
        })
        .await
        .unwrap();
    let message = Message::new(
        message_id,
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({}),
    );
    let id = store
        .insert_message(&message, &Metadata::default(), "test")
        .await
        .unwrap()
        .unwrap();
    store
        .complete_message(
            id,
            &[Notification {
                destination_id: dest.id,
                filters: vec![(1, "f".into())],
                digest: None,
            }],
        )
        .await
        .unwrap();
    app.sql(&format!(
        "UPDATE outbox SET status = 'dead', attempts = 5, last_error = 'mailbox full {message_id}' \
         WHERE message_id = {id}"
    ))
    .await;
    id
}

async fn dead_letters_are_retried_and_discarded(app: &App) {
    let store = &app.store;
    let root = admin(app).await;
    let alice = store.create_user("alice", None, false).await.unwrap();
    for (n, address) in [
        "a1@example.org",
        "a2@example.org",
        "a3@example.org",
        "a4@example.org",
    ]
    .iter()
    .enumerate()
    {
        dead_one(app, alice.id, address, &format!("dead-{n}")).await;
    }
    let page = root.get("/admin/dead").await.body;
    for n in 0..4 {
        assert!(page.contains(&format!("mailbox full dead-{n}")), "{page}");
    }
    assert!(
        page.contains("<td>alice</td>") && page.contains("a1@example.org"),
        "{page}"
    );
    let ids: Vec<i64> = store
        .dead_notifications(10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids.len(), 4);

    // One retried: pending again, due now, attempts afresh.
    let one = ids[0].to_string();
    let retried = root
        .submit("/admin/dead", "/admin/dead/retry", &[("id", one.as_str())])
        .await;
    assert_eq!(retried.status, StatusCode::SEE_OTHER);
    let claimed = store.claim(10, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, ids[0]);
    // One discarded: gone.
    let two = ids[1].to_string();
    let discarded = root
        .submit(
            "/admin/dead",
            "/admin/dead/discard",
            &[("id", two.as_str())],
        )
        .await;
    assert_eq!(discarded.status, StatusCode::SEE_OTHER);
    let left: Vec<i64> = store
        .dead_notifications(10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(left, vec![ids[2], ids[3]]);
    // A form naming none does nothing (never "all").
    let empty = root.submit("/admin/dead", "/admin/dead/retry", &[]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(store.dead_notifications(10).await.unwrap().len(), 2);

    // "Discard all shown" posts every id on the page.
    let page = root.get("/admin/dead").await.body;
    let token = csrf(&page);
    let mut fields = vec![("csrf", token.as_str())];
    let shown: Vec<String> = left.iter().map(i64::to_string).collect();
    for id in &shown {
        assert!(
            page.contains(&format!(r#"name="id" value="{id}""#)),
            "{page}"
        );
        fields.push(("id", id.as_str()));
    }
    let all = root.post("/admin/dead/discard", &fields).await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    assert!(store.dead_notifications(10).await.unwrap().is_empty());
    assert!(root.get("/admin/dead").await.body.contains("None."));
}

async fn charts_draw_what_was_archived(app: &App) {
    let store = &app.store;
    let root = admin(app).await;
    let empty = root.get("/admin/charts").await.body;
    assert!(empty.contains("nothing in these hours"), "{empty}");
    for (n, app_name) in ["bodhi", "bodhi", "bodhi", "koji"].iter().enumerate() {
        let message = Message::new(
            format!("c{n}"),
            "org.fedoraproject.prod.x.y",
            serde_json::json!({}),
        );
        let metadata = Metadata {
            app: Some(app_name.to_string()),
            ..Metadata::default()
        };
        store
            .insert_message(&message, &metadata, "test")
            .await
            .unwrap();
    }
    let alice = store.create_user("alice", None, false).await.unwrap();
    dead_one(app, alice.id, "alice@example.org", "c-dead").await;
    let page = root.get("/admin/charts").await.body;
    assert_eq!(page.matches("<svg role=\"img\"").count(), 3, "{page}");
    assert!(page.contains("<title id=\"messages-title\">Messages per hour by app</title>"));
    assert!(
        page.contains("<desc id=\"messages-desc\">5 messages"),
        "{page}"
    );
    assert!(
        page.contains(" UTC: 3 messages from bodhi</title>"),
        "{page}"
    );
    assert!(
        page.contains(" UTC: 1 messages from koji</title>"),
        "{page}"
    );
    assert!(
        page.contains(" UTC: 1 notifications from email</title>"),
        "{page}"
    );
    assert!(
        page.contains("hour (UTC)") && page.contains("messages per hour"),
        "axis labels"
    );
}

async fn the_live_view_streams_published_messages_by_topic(app: &App) {
    let root = admin(app).await;
    let page = root.get("/admin/live?topic=org.example.*.wanted.**").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.body.contains("/admin/live.js"), "{}", page.body);
    let bad = root.get("/admin/live/events?topic=org.fedora*").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Other pages keep the site's policy.
    let other = root.get("/admin").await;
    let csp = other.headers["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("script-src"), "{csp}");

    let mut stream = root
        .client
        .get(format!(
            "{}/admin/live/events?topic=org.example.*.wanted.**",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let token = app
        .store
        .create_api_token("live", TokenScope::Publish)
        .await
        .unwrap();
    let publish = |id: &'static str, topic: &'static str| {
        let token = token.clone();
        let base = app.base.clone();
        async move {
            let body = serde_json::json!({"topic": topic, "msg": {}, "msg_id": id}).to_string();
            let reply = reqwest::Client::new()
                .post(format!("{base}/api/v1/messages"))
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(reply.status(), StatusCode::ACCEPTED);
        }
    };
    publish("live-1", "org.example.prod.unwanted.thing").await;
    publish("live-2", "org.example.prod.wanted.thing.done").await;
    let mut seen = String::new();
    let read = async {
        while !seen.contains("live-2") && !seen.contains("wanted.thing.done") {
            match stream.chunk().await.unwrap() {
                Some(chunk) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                None => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the published message arrives");
    assert!(
        seen.contains(r#""topic":"org.example.prod.wanted.thing.done""#),
        "{seen}"
    );
    assert!(
        seen.starts_with("data: ") || seen.contains("\ndata: "),
        "{seen}"
    );
    assert!(!seen.contains("unwanted"), "filtered by topic: {seen}");
    drop(stream);
}
