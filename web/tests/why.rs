//! Why / why not and previews (issue 11): each of my filters against one archived message,
//! with the predicates that decided; what a condition would have sent in the last 7 days,
//! before saving and for a saved filter; nobody sees another user's filters this way.

use reqwest::StatusCode;
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{ChannelKind, Delivery, FilterInput, NewDestination};

use crate::on_both;
use crate::support::App;

on_both!(
    the_why_page_explains_each_of_my_filters_and_only_mine,
    a_preview_counts_the_last_week_before_and_after_saving,
    a_condition_error_is_shown_where_it_is,
    a_topic_is_warned_about_unless_the_catalog_or_the_archive_has_it
);

pub(crate) async fn archive(
    app: &App,
    id: &str,
    app_name: &str,
    usernames: &[&str],
    packages: &[&str],
) {
    let message = Message::new(
        id,
        format!("org.fedoraproject.prod.{app_name}.thing.happened"),
        serde_json::json!({"release": "9", "user": "alice"}),
    );
    let metadata = Metadata {
        topic: message.topic.clone(),
        app: Some(app_name.into()),
        agent: Some("bob".into()),
        usernames: usernames.iter().map(|u| u.to_string()).collect(),
        packages: packages.iter().map(|u| u.to_string()).collect(),
        summary: format!("{id} happened"),
        url: Some(format!("https://example.org/{id}")),
        ..Metadata::default()
    };
    app.store
        .insert_message(&message, &metadata, "test")
        .await
        .unwrap()
        .expect("a new message");
}

async fn filter(app: &App, user_id: i64, name: &str, condition: &str, dest: Vec<i64>) -> i64 {
    let input = FilterInput {
        name: name.into(),
        condition: Condition::parse(condition).unwrap(),
        destination_ids: dest,
        delivery: Delivery::Instant,
        enabled: true,
    };
    app.store.create_filter(user_id, &input).await.unwrap().id
}

async fn the_why_page_explains_each_of_my_filters_and_only_mine(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let bob = app.browser();
    bob.signup("bob", "velvet crane harbour 43").await;
    let bob_id = app.store.user_by_name("bob").await.unwrap().unwrap().id;
    let dest = app
        .store
        .add_destination(NewDestination {
            user_id: me.id,
            channel: ChannelKind::Email,
            address: "alice@example.org",
            confirmed: true,
        })
        .await
        .unwrap();
    filter(app, me.id, "about-me", "usernames has $me", vec![dest.id]).await;
    filter(
        app,
        me.id,
        "bodhi-only",
        r#"app == "bodhi" and usernames has $me"#,
        vec![dest.id],
    )
    .await;
    filter(app, me.id, "nowhere", r#"body.release >= "40""#, vec![]).await;
    filter(
        app,
        bob_id,
        "bobs-secret-filter",
        "usernames has $me",
        vec![],
    )
    .await;
    archive(app, "msg-1", "buildsys", &["alice"], &["kernel"]).await;

    let page = alice.get("/filters/why?message=msg-1").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let body = &page.body;
    assert!(body.contains("msg-1 happened"), "{body}");
    // Each of hers, with its verdict and what decided it.
    assert!(
        body.contains("about-me</a>: <span class=\"status-sent\">matches"),
        "{body}"
    );
    assert!(
        body.contains("bodhi-only</a>: <span class=\"muted\">does not match"),
        "{body}"
    );
    assert!(body.contains("app is &#34;buildsys&#34;"), "{body}");
    assert!(
        body.contains("<mark>app == &#34;bodhi&#34;</mark>"),
        "{body}"
    );
    assert!(body.contains("$me is &#34;alice&#34;"), "{body}");
    // Numbers compare as numbers: "9" is below "40".
    assert!(
        body.contains("nowhere</a>: <span class=\"muted\">does not match"),
        "{body}"
    );
    assert!(body.contains("body.release is &#34;9&#34;"), "{body}");
    // Never anyone else's.
    assert!(!body.contains("bobs-secret-filter"), "{body}");
    let bobs = bob.get("/filters/why?message=msg-1").await;
    assert_eq!(bobs.status, StatusCode::OK);
    assert!(bobs.body.contains("bobs-secret-filter"), "{}", bobs.body);
    assert!(!bobs.body.contains("about-me"), "{}", bobs.body);
    // A matching filter that sends nowhere says so.
    filter(app, me.id, "silent", "packages has \"kernel\"", vec![]).await;
    let page = alice.get("/filters/why?message=msg-1").await;
    assert!(
        page.body
            .contains("It matches, but nothing is sent for it: it sends to no destination"),
        "{}",
        page.body
    );

    // An unknown id is a clear 404, the form kept.
    let missing = alice.get("/filters/why?message=no-such%3Cid%3E").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing
            .body
            .contains("No archived message has the id <code>no-such&#60;id&#62;</code>"),
        "{}",
        missing.body
    );
    // The bare page is a form; signed out, it is sign-in.
    let form = alice.get("/filters/why").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("name=\"message\""), "{}", form.body);
    let stranger = app.browser().get("/filters/why?message=msg-1").await;
    assert_eq!(stranger.status, StatusCode::SEE_OTHER);
    assert!(!stranger.body.contains("about-me"));
}

async fn a_preview_counts_the_last_week_before_and_after_saving(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    archive(app, "old-1", "bodhi", &["alice"], &[]).await;
    archive(app, "new-1", "bodhi", &["alice"], &[]).await;
    archive(app, "new-2", "bodhi", &["bob"], &[]).await;
    archive(app, "new-3", "buildsys", &["alice", "bob"], &[]).await;
    // Eight days ago: outside the window.
    app.sql(&format!(
        "UPDATE messages SET received_at = {} WHERE msg_id = 'old-1'",
        tidings_store::now_ms() - 8 * 86_400_000
    ))
    .await;

    // Before saving: the text being edited, nothing stored.
    let reply = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", ""),
                ("condition", "usernames has $me"),
                ("preview", "on"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        reply
            .body
            .contains("would have sent you <strong id=\"preview-count\">2</strong> notifications"),
        "{}",
        reply.body
    );
    // Newest first, each with its why link; the old one left out.
    let new3 = reply.body.find("new-3 happened").expect("new-3 listed");
    let new1 = reply.body.find("new-1 happened").expect("new-1 listed");
    assert!(new3 < new1, "{}", reply.body);
    assert!(!reply.body.contains("old-1 happened"), "{}", reply.body);
    assert!(
        reply.body.contains("/filters/why?message=new-3"),
        "{}",
        reply.body
    );
    assert!(app.store.filters(me.id).await.unwrap().is_empty());
    // A condition that does not read is the usual error, not a preview.
    let bad = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[("condition", "usernames hasnt $me"), ("preview", "on")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(!bad.body.contains("preview-count"), "{}", bad.body);

    // A saved filter: its own preview page; someone else's is 404.
    let id = filter(app, me.id, "bodhi", r#"app == "bodhi""#, vec![]).await;
    let saved = alice.get(&format!("/filters/{id}/preview")).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert!(
        saved
            .body
            .contains("<strong id=\"preview-count\">2</strong>"),
        "{}",
        saved.body
    );
    let bob = app.browser();
    bob.signup("bob", "velvet crane harbour 43").await;
    let other = bob.get(&format!("/filters/{id}/preview")).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert!(!other.body.contains("preview-count"));
}

async fn a_condition_error_is_shown_where_it_is(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let bad = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "x"),
                ("condition", "usernames has $me and\n  colour == 1"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("line 2, column 3"), "{}", bad.body);
    assert!(
        bad.body
            .contains("<pre class=\"error\" id=\"error-at\">  colour == 1\n  ^</pre>"),
        "{}",
        bad.body
    );
}

async fn a_topic_is_warned_about_unless_the_catalog_or_the_archive_has_it(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    archive(app, "custom-1", "customapp", &["alice"], &[]).await;
    for (topic, warned) in [
        ("org.fedoraproject.prod.bodhi.update.comment", false),
        ("org.fedoraproject.prod.customapp.thing.happened", false),
        ("org.fedoraproject.*.customapp.**", false),
        ("org.fedoraproject.prod.customapp.other", true),
    ] {
        let reply = alice
            .submit(
                "/filters/new",
                "/filters/new",
                &[
                    ("name", topic),
                    ("condition", &format!("topic ~ \"{topic}\"")),
                ],
            )
            .await;
        let said = reply.body.contains("no catalog entry has a topic like");
        assert_eq!(said, warned, "{topic}: {}", reply.body);
        let status = if warned {
            StatusCode::OK
        } else {
            StatusCode::SEE_OTHER
        };
        assert_eq!(reply.status, status, "{topic}: {}", reply.body);
    }
}
