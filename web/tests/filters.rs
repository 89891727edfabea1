//! Filters through the pages: create, edit, parse errors, delete; and that nobody reaches
//! another user's filters or destinations.

use reqwest::StatusCode;
use tidings_store::{ChannelKind, NewDestination, StoreError};

use crate::on_both;
use crate::support::App;

on_both!(
    filter_lifecycle,
    users_are_isolated,
    unanchored_conditions_get_a_warning,
    a_condition_too_deep_to_store_is_refused,
    an_unreadable_filter_is_shown_and_can_be_repaired_or_deleted,
    a_filter_gathers_its_own_digest_from_the_form,
    an_unknown_app_is_caught_before_saving
);

async fn filter_lifecycle(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
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
    let dest_id = dest.id.to_string();

    // A parse error re-shows the form with the line and column, keeping what was typed.
    let bad = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "builds"),
                ("condition", "usernames has $me and\n  topic ~"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("line 2, column"), "{}", bad.body);
    assert!(
        bad.body.contains("value=\"builds\""),
        "the name must be kept: {}",
        bad.body
    );
    assert!(app.store.filters(me.id).await.unwrap().is_empty());

    // Alice owns no package yet: warned before saving, saved once she says so.
    let fields = [
        ("name", "builds"),
        (
            "condition",
            r#"topic ~ "org.fedoraproject.*.koji.**" and packages has $my_packages"#,
        ),
        ("destination", &dest_id),
        ("enabled", "on"),
    ];
    let warned = alice.submit("/filters/new", "/filters/new", &fields).await;
    assert_eq!(warned.status, StatusCode::OK, "{}", warned.body);
    assert!(
        warned.body.contains("Not saved yet")
            && warned.body.contains("$my_packages is empty for you")
            && warned.body.contains("despite_warnings"),
        "{}",
        warned.body
    );
    assert!(app.store.filters(me.id).await.unwrap().is_empty());
    let mut anyway = fields.to_vec();
    anyway.push(("despite_warnings", "on"));
    let created = alice.submit("/filters/new", "/filters/new", &anyway).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location.as_deref(), Some("/filters"));
    let filters = app.store.filters(me.id).await.unwrap().filters;
    assert_eq!(filters.len(), 1);
    let filter = &filters[0];
    assert!(filter.enabled);
    assert_eq!(filter.destination_ids, vec![dest.id]);
    let list = alice.get("/filters").await.body;
    assert!(
        list.contains("builds") && list.contains("alice@example.org"),
        "{list}"
    );

    // A second filter of the same name is a friendly 409.
    let dup = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[("name", "builds"), ("condition", "usernames has $me")],
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert!(
        dup.body.contains("already have a filter with that name"),
        "{}",
        dup.body
    );

    // Edit: the form shows the condition as text; saving switches it off and renames it.
    let path = format!("/filters/{}", filter.id);
    let edit = alice.get(&path).await;
    assert!(
        edit.body.contains("packages has $my_packages"),
        "{}",
        edit.body
    );
    let saved = alice
        .submit(
            &path,
            &path,
            &[("name", "koji"), ("condition", "usernames has $me")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let filter = app.store.filter(me.id, filter.id).await.unwrap();
    assert_eq!(filter.name, "koji");
    assert!(!filter.enabled);
    assert!(filter.destination_ids.is_empty());

    let deleted = alice
        .submit("/filters", &format!("{path}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(app.store.filters(me.id).await.unwrap().is_empty());
    assert_eq!(alice.get(&path).await.status, StatusCode::NOT_FOUND);
}

async fn users_are_isolated(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    alice
        .submit(
            "/destinations",
            "/destinations",
            &[("address", "alice@example.org")],
        )
        .await;
    let made = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "mine"),
                ("condition", "usernames has $me"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let filter = app.store.filters(me.id).await.unwrap().filters.remove(0);
    let dest = app.store.destinations(me.id).await.unwrap().remove(0);

    let bob = app.browser();
    bob.signup("bob", "plum kettle orbit 1974").await;
    let path = format!("/filters/{}", filter.id);
    assert_eq!(bob.get(&path).await.status, StatusCode::NOT_FOUND);
    let change = bob
        .submit(
            "/filters",
            &path,
            &[
                ("name", "stolen"),
                ("condition", "usernames has $me"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(change.status, StatusCode::NOT_FOUND);
    assert_eq!(
        bob.submit("/filters", &format!("{path}/delete"), &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let dest_delete = format!("/destinations/{}/delete", dest.id);
    assert_eq!(
        bob.submit("/destinations", &dest_delete, &[]).await.status,
        StatusCode::NOT_FOUND
    );
    // Bob cannot point his own filter at Alice's address either.
    let borrow = bob
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "b"),
                ("condition", "usernames has $me"),
                ("destination", &dest.id.to_string()),
            ],
        )
        .await;
    assert_eq!(borrow.status, StatusCode::BAD_REQUEST);
    // Nor see her data on his pages.
    for page in ["/", "/filters", "/destinations", "/notifications"] {
        let body = bob.get(page).await.body;
        assert!(
            !body.contains("alice@example.org") && !body.contains(">mine<"),
            "{page} leaks: {body}"
        );
    }

    let filter_after = app.store.filter(me.id, filter.id).await.unwrap();
    assert_eq!(filter_after.name, "mine");
    assert!(filter_after.enabled);
    assert_eq!(app.store.destinations(me.id).await.unwrap().len(), 1);
}

/// Issue 4: the editor warns about filters the index must evaluate for every message.
async fn unanchored_conditions_get_a_warning(app: &App) {
    let carol = app.browser();
    carol.signup("carol", "velvet crane harbour 42").await;
    let warning = "names no topic, person, package, agent or app";
    let anchored = carol
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "a"),
                ("condition", "usernames has $me and severity >= error"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(anchored.status, StatusCode::SEE_OTHER, "{}", anchored.body);
    let me = app.store.user_by_name("carol").await.unwrap().unwrap();
    let filters = app.store.filters(me.id).await.unwrap().filters;
    let page = carol.get(&format!("/filters/{}", filters[0].id)).await.body;
    assert!(!page.contains(warning), "{page}");

    let scan = carol
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "b"),
                ("condition", "severity >= error"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(scan.status, StatusCode::SEE_OTHER, "{}", scan.body);
    let filters = app.store.filters(me.id).await.unwrap().filters;
    let page = carol.get(&format!("/filters/{}", filters[1].id)).await.body;
    assert!(page.contains(warning), "{page}");
}

/// Issue 8 item 2: the parser let through 64 levels of nesting whose stored form could not
/// be read back; the save was committed before that check, so the user got a 500 and the
/// row stayed. Now the form answers 400 with the reason, and nothing is written.
async fn a_condition_too_deep_to_store_is_refused(app: &App) {
    let dana = app.browser();
    dana.signup("dana", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("dana").await.unwrap().unwrap();
    let reported = "(usernames has $me or not ".repeat(63) + "usernames has $me" + &")".repeat(63);
    // 49 levels of `and`/`or`, with no more parentheses than the parser allows.
    let mut one_too_many = "usernames has $me".to_string();
    for level in 0..49 {
        let word = if level % 2 == 0 { "and" } else { "or" };
        one_too_many = format!("usernames has $me {word} ({one_too_many})");
    }
    for condition in [&reported, &one_too_many] {
        let refused = dana
            .submit(
                "/filters/new",
                "/filters/new",
                &[
                    ("name", "deep"),
                    ("condition", condition),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert!(
            refused.body.contains("nest deeper than 48 levels"),
            "{}",
            refused.body
        );
        assert!(refused.body.contains("line 1, column"), "{}", refused.body);
        assert!(app.store.filters(me.id).await.unwrap().is_empty(), "no row");
    }
    assert_eq!(dana.get("/filters").await.status, StatusCode::OK);

    // Replacing a good condition with one too deep leaves the filter as it was.
    let made = dana
        .submit(
            "/filters/new",
            "/filters/new",
            &[("name", "fine"), ("condition", "usernames has $me")],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let fine = app.store.filters(me.id).await.unwrap().filters.remove(0);
    let path = format!("/filters/{}", fine.id);
    let refused = dana
        .submit(
            &path,
            &path,
            &[("name", "fine"), ("condition", &one_too_many)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(app.store.filter(me.id, fine.id).await.unwrap(), fine);
}

/// Issue 8 item 2: a filter whose stored row cannot be read is shown to its owner, on
/// /filters and the dashboard, with why; saving a new condition repairs it (and lifts a
/// quarantine), and it can be deleted. Nobody else reaches it.
async fn an_unreadable_filter_is_shown_and_can_be_repaired_or_deleted(app: &App) {
    let erin = app.browser();
    erin.signup("erin", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("erin").await.unwrap().unwrap();
    for name in ["torn", "deep", "kept"] {
        let made = erin
            .submit(
                "/filters/new",
                "/filters/new",
                &[
                    ("name", name),
                    ("condition", "usernames has $me"),
                    ("enabled", "on"),
                ],
            )
            .await;
        assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    }
    let ids: Vec<i64> = app
        .store
        .filters(me.id)
        .await
        .unwrap()
        .filters
        .iter()
        .map(|f| f.id)
        .collect();
    let (torn, deep) = (ids[0], ids[1]);
    let nested = "{\"not\":".repeat(200) + "{\"topic_is\":\"a\"}" + &"}".repeat(200);
    app.sql(&format!(
        "UPDATE filters SET condition = '{{\"has\": ' WHERE id = {torn}"
    ))
    .await;
    app.sql(&format!(
        "UPDATE filters SET condition = '{nested}' WHERE id = {deep}"
    ))
    .await;
    // The matcher would set it aside on meeting it.
    let found = app.store.filters(me.id).await.unwrap();
    assert_eq!(found.unreadable.len(), 2, "{found:?}");
    assert!(app
        .store
        .quarantine_filter(&found.unreadable[1])
        .await
        .unwrap());

    let list = erin.get("/filters").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body
            .matches("this filter could not be read: condition: line 1")
            .count(),
        2,
        "{}",
        list.body
    );
    assert!(
        list.body.contains("nest deeper than 48 levels"),
        "{}",
        list.body
    );
    assert!(list.body.contains(">kept<"), "{}", list.body);
    let home = erin.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.body.contains("this filter could not be read"),
        "{}",
        home.body
    );

    let bob = app.browser();
    bob.signup("bob", "plum kettle orbit 1974").await;
    let deep_path = format!("/filters/{deep}");
    assert_eq!(bob.get(&deep_path).await.status, StatusCode::NOT_FOUND);

    let edit = erin.get(&deep_path).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(
        edit.body.contains("This filter could not be read"),
        "{}",
        edit.body
    );
    assert!(edit.body.contains("value=\"deep\""), "{}", edit.body);
    let repaired = erin
        .submit(
            &deep_path,
            &deep_path,
            &[
                ("name", "deep"),
                ("condition", "usernames has $me"),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(repaired.status, StatusCode::SEE_OTHER, "{}", repaired.body);
    let filter = app.store.filter(me.id, deep).await.unwrap();
    assert_eq!(filter.quarantine, None, "the quarantine is lifted");
    assert!(filter.enabled);

    let deleted = erin
        .submit("/filters", &format!("/filters/{torn}/delete"), &[])
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(matches!(
        app.store.filter(me.id, torn).await,
        Err(StoreError::NotFound)
    ));
    let list = erin.get("/filters").await.body;
    assert!(!list.contains("could not be read"), "{list}");

    // A row set aside that reads again (repaired by hand, say) stays out until it is saved.
    let kept = ids[2];
    app.sql(&format!(
        "UPDATE filters SET quarantined_at = 1, quarantine_reason = 'by hand' WHERE id = {kept}"
    ))
    .await;
    let list = erin.get("/filters").await.body;
    assert!(list.contains(">quarantined<"), "{list}");
    let home = erin.get("/").await.body;
    assert!(
        home.contains("(quarantined: save it to use it again)"),
        "{home}"
    );
    let edit = erin.get(&format!("/filters/{kept}")).await.body;
    assert!(
        edit.contains("set aside because it could not be read: by hand"),
        "{edit}"
    );
}

/// Issue 10: a filter's own digest is set on its form, shown on the list, read back into
/// the form, refused with the field at fault, and switched back to the destinations' rules.
async fn a_filter_gathers_its_own_digest_from_the_form(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let fields = |delivery: &'static str, every: &'static str, daily: &'static str| {
        vec![
            ("name", "updates"),
            ("condition", "usernames has $me"),
            ("enabled", "on"),
            ("delivery", delivery),
            ("every", every),
            ("daily", daily),
            ("after", ""),
        ]
    };
    let created = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &fields("digest", "", "08:30"),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let filter = app.store.filters(me.id).await.unwrap().filters[0].clone();
    assert_eq!(
        filter.delivery.policy(),
        Some(&tidings_store::DeliveryPolicy::Digest {
            every_minutes: None,
            daily_at: Some(tidings_store::TimeOfDay::parse("08:30").unwrap()),
            max_items: None,
        })
    );
    let list = alice.get("/filters").await.body;
    assert!(list.contains("digest: daily at 08:30"), "{list}");
    let path = format!("/filters/{}", filter.id);
    let form = alice.get(&path).await.body;
    assert!(
        form.contains(r#"value="digest" checked"#) && form.contains(r#"value="08:30""#),
        "{form}"
    );

    // Refused, with the field at fault, keeping the rest of what was typed.
    for (fields, said) in [
        (fields("digest", "", ""), "say when a digest goes out"),
        (fields("digest", "2", ""), "every_minutes: from 5 minutes"),
        (fields("digest", "", "25:00"), "daily: "),
    ] {
        let refused = alice.submit(&path, &path, &fields).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{fields:?}");
        assert!(refused.body.contains(said), "{fields:?}: {}", refused.body);
        assert!(
            refused.body.contains(r#"value="updates""#),
            "{}",
            refused.body
        );
    }

    let back = alice
        .submit(&path, &path, &fields("instant", "60", ""))
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
    let filter = app.store.filter(me.id, filter.id).await.unwrap();
    assert_eq!(filter.delivery, tidings_store::Delivery::Instant);
    assert!(!alice.get("/filters").await.body.contains("digest:"));
}

/// Issue 11: `app == "koji"` is valid but matches nothing (the app is `buildsys`): the
/// form says so, with the likely name, before saving; the edit page says it of a stored
/// filter too.
async fn an_unknown_app_is_caught_before_saving(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let fields = [
        ("name", "builds"),
        ("condition", r#"app == "bodi" and usernames has $me"#),
        ("enabled", "on"),
    ];
    let warned = alice.submit("/filters/new", "/filters/new", &fields).await;
    assert_eq!(warned.status, StatusCode::OK, "{}", warned.body);
    assert!(
        warned.body.contains(
            "no message comes from an app called &#34;bodi&#34;: did you mean &#34;bodhi&#34;?"
        ),
        "{}",
        warned.body
    );
    // What was typed is kept.
    assert!(
        warned.body.contains("app == &#34;bodi&#34;"),
        "{}",
        warned.body
    );
    assert!(app.store.filters(me.id).await.unwrap().is_empty());
    let fixed = [
        ("name", "builds"),
        ("condition", r#"app == "bodhi" and usernames has $me"#),
        ("enabled", "on"),
    ];
    let saved = alice.submit("/filters/new", "/filters/new", &fixed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);

    // Saved anyway, the stored filter's page still says it.
    let mut anyway = fields.to_vec();
    anyway[0] = ("name", "as written");
    anyway.push(("despite_warnings", "on"));
    let saved = alice.submit("/filters/new", "/filters/new", &anyway).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let stored = app.store.filters(me.id).await.unwrap().filters;
    let bodi = stored.iter().find(|f| f.name == "as written").unwrap();
    let page = alice.get(&format!("/filters/{}", bodi.id)).await.body;
    assert!(page.contains("did you mean &#34;bodhi&#34;"), "{page}");
    assert!(!page.contains("Not saved yet"), "{page}");
}
