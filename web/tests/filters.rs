//! Filters through the pages: create, edit, parse errors, delete; and that nobody reaches
//! another user's filters or destinations.

use reqwest::StatusCode;
use tidings_store::{Channel, NewDestination};

use crate::on_both;
use crate::support::App;

on_both!(
    filter_lifecycle,
    users_are_isolated,
    unanchored_conditions_get_a_warning
);

async fn filter_lifecycle(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let dest = app
        .store
        .add_destination(NewDestination {
            user_id: me.id,
            channel: Channel::Email,
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

    let created = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "builds"),
                (
                    "condition",
                    r#"topic ~ "org.fedoraproject.*.koji.**" and packages has $my_packages"#,
                ),
                ("destination", &dest_id),
                ("enabled", "on"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location.as_deref(), Some("/filters"));
    let filters = app.store.filters(me.id).await.unwrap();
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
    let filter = app.store.filters(me.id).await.unwrap().remove(0);
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
    let filters = app.store.filters(me.id).await.unwrap();
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
    let filters = app.store.filters(me.id).await.unwrap();
    let page = carol.get(&format!("/filters/{}", filters[1].id)).await.body;
    assert!(page.contains(warning), "{page}");
}
