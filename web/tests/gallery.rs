//! The builder and the gallery (issue 11): the form writes a condition and reads a stored
//! one back; a starting filter is added with one click (CSRF-checked), for the clicking
//! user only.

use reqwest::StatusCode;
use tidings_store::{ChannelKind, NewDestination};

use crate::on_both;
use crate::support::App;

on_both!(
    the_builder_writes_the_condition_and_reads_it_back,
    a_gallery_filter_is_added_with_one_click
);

async fn the_builder_writes_the_condition_and_reads_it_back(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let page = alice.get("/filters/new").await;
    assert_eq!(page.status, StatusCode::OK);
    // Apps and their topics come from the catalog.
    assert!(
        page.body.contains("name=\"app\" value=\"bodhi\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("value=\"bodhi.update.comment\""),
        "{}",
        page.body
    );

    let built = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "mine"),
                ("condition", ""),
                ("whose_my_packages", "on"),
                ("whose_me", "on"),
                ("app", "bodhi"),
                ("topic", "bodhi.update.comment"),
                ("severity", "warning"),
                ("not_mine", "on"),
                ("body_path", "release"),
                ("body_op", ">="),
                ("body_value", "40"),
                ("build", "on"),
            ],
        )
        .await;
    assert_eq!(built.status, StatusCode::OK, "{}", built.body);
    let text = r#"app == "bodhi" and topic ~ "**.bodhi.update.comment" and (packages has $my_packages or usernames has $me) and severity >= warning and not agent == $me and body.release >= 40"#;
    let escaped = text.replace('"', "&#34;").replace('>', "&#62;");
    assert!(built.body.contains(&escaped), "{}", built.body);
    assert!(
        built.body.contains("id=\"builder-written\""),
        "{}",
        built.body
    );
    // Written, not saved.
    assert!(app.store.filters(me.id).await.unwrap().is_empty());
    // A form that says nothing names the field.
    let empty = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "x"),
                ("condition", ""),
                ("body_op", "=="),
                ("build", "on"),
            ],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
    assert!(
        empty.body.contains("apps: choose at least one"),
        "{}",
        empty.body
    );

    // Saved as text, it opens with the form filled in.
    let saved = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[
                ("name", "mine"),
                ("condition", text),
                ("despite_warnings", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let id = app.store.filters(me.id).await.unwrap().filters[0].id;
    let page = alice.get(&format!("/filters/{id}")).await.body;
    assert!(
        page.contains("name=\"whose_my_packages\" value=\"on\" checked"),
        "{page}"
    );
    assert!(
        page.contains("name=\"whose_me\" value=\"on\" checked"),
        "{page}"
    );
    assert!(
        !page.contains("name=\"whose_my_groups\" value=\"on\" checked"),
        "{page}"
    );
    assert!(page.contains("value=\"bodhi\" checked"), "{page}");
    assert!(
        page.contains("<option value=\"bodhi.update.comment\" selected>"),
        "{page}"
    );
    assert!(
        page.contains("<option value=\"warning\" selected>"),
        "{page}"
    );
    assert!(page.contains("name=\"body_value\" value=\"40\""), "{page}");
    assert!(!page.contains("builder-note"), "{page}");
    // One that does not fit opens in text mode, saying why.
    let other = alice
        .submit(
            "/filters/new",
            "/filters/new",
            &[("name", "ralph"), ("condition", r#"usernames has "ralph""#)],
        )
        .await;
    assert_eq!(other.status, StatusCode::SEE_OTHER, "{}", other.body);
    let filters = app.store.filters(me.id).await.unwrap().filters;
    let ralph = filters.iter().find(|f| f.name == "ralph").unwrap();
    let page = alice.get(&format!("/filters/{}", ralph.id)).await.body;
    assert!(
        page.contains("This condition is edited as text: `usernames has &#34;ralph&#34;` has no place in the form"),
        "{page}"
    );
}

async fn a_gallery_filter_is_added_with_one_click(app: &App) {
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
    let page = alice.get("/filters/gallery").await;
    assert_eq!(page.status, StatusCode::OK);
    for name in [
        "My packages",
        "About me",
        "My failed builds",
        "Mirror: updates synced",
    ] {
        assert!(page.body.contains(name), "{name}: {}", page.body);
    }
    // Without the form's CSRF token: refused, nothing added.
    let forged = alice
        .post("/filters/gallery", &[("starter", "mirror-sync")])
        .await;
    assert_ne!(forged.status, StatusCode::SEE_OTHER);
    assert!(app.store.filters(me.id).await.unwrap().is_empty());

    let added = alice
        .submit(
            "/filters/gallery",
            "/filters/gallery",
            &[("starter", "mirror-sync")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let filters = app.store.filters(me.id).await.unwrap().filters;
    assert_eq!(filters.len(), 1);
    assert_eq!(filters[0].name, "Mirror: updates synced");
    assert_eq!(filters[0].destination_ids, vec![dest.id]);
    assert!(filters[0]
        .condition
        .to_string()
        .contains("bodhi.updates.fedora.sync"));
    assert_eq!(added.location, Some(format!("/filters/{}", filters[0].id)));
    // Twice: a second one, numbered. Bob's filters are untouched.
    let again = alice
        .submit(
            "/filters/gallery",
            "/filters/gallery",
            &[("starter", "mirror-sync")],
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let names: Vec<String> = app
        .store
        .filters(me.id)
        .await
        .unwrap()
        .filters
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert!(
        names.contains(&"Mirror: updates synced (2)".to_string()),
        "{names:?}"
    );
    assert!(app.store.filters(bob_id).await.unwrap().is_empty());
    // An unknown starter names the field.
    let bad = alice
        .submit(
            "/filters/gallery",
            "/filters/gallery",
            &[("starter", "nope")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("starter: no starting filter"),
        "{}",
        bad.body
    );
    // The preview link previews that one.
    let preview = alice.get("/filters/gallery?preview=about-me").await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("id=\"preview-about-me\""),
        "{}",
        preview.body
    );
    assert!(
        !preview.body.contains("id=\"preview-my-packages\""),
        "{}",
        preview.body
    );
}
