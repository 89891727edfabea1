//! "My packages": the variables a user's filters see and where each comes from, and
//! follows added and removed on the page, each user seeing only their own.

use reqwest::StatusCode;
use tidings_store::{FollowKind, Owner};

use crate::on_both;
use crate::support::App;

on_both!(my_packages_say_where_they_come_from_and_follows_are_mine);

async fn my_packages_say_where_they_come_from_and_follows_are_mine(app: &App) {
    let store = &app.store;
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let empty = alice.get("/me").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("matches nothing yet"), "{}", empty.body);
    assert!(empty.body.contains(r#"href="/me""#), "the menu links to it");

    store.add_group_member("python-sig", "alice").await.unwrap();
    store
        .set_package_owners("kernel", &[Owner::user("alice")])
        .await
        .unwrap();
    store
        .set_package_owners(
            "python3",
            &[Owner::group("python-sig"), Owner::user("alice")],
        )
        .await
        .unwrap();
    let page = alice.get("/me").await.body;
    assert!(page.contains("python-sig"), "{page}");
    assert!(
        page.contains("<td>kernel</td><td>yours</td>")
            && page.contains("<td>python3</td><td>yours</td>")
            && page.contains("<td>python3</td><td>through the group python-sig</td>"),
        "{page}"
    );

    // Follows: added, listed, refused with the reason, removed.
    let follow = |kind: &'static str, name: &'static str| {
        let alice = &alice;
        async move {
            alice
                .submit("/me", "/me/follows", &[("kind", kind), ("name", name)])
                .await
        }
    };
    assert_eq!(
        follow("package", "glibc").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(follow("user", "ralph").await.status, StatusCode::SEE_OTHER);
    let me = store.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(
        store.follows(me.id).await.unwrap(),
        vec![
            (FollowKind::User, "ralph".to_string()),
            (FollowKind::Package, "glibc".to_string())
        ]
    );
    let page = alice.get("/me").await.body;
    assert!(
        page.contains("<td>glibc</td>") && page.contains("<td>ralph</td>"),
        "{page}"
    );
    let bad = follow("group", "x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("neither user nor package"),
        "{}",
        bad.body
    );
    let bad = follow("package", "no spaces allowed").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);

    // Bob sees none of it, and cannot end alice's follows.
    let bob = app.browser_from("127.0.0.2");
    bob.signup("bob", "plum kettle orbit 1974").await;
    let theirs = bob.get("/me").await.body;
    assert!(
        !theirs.contains("glibc") && !theirs.contains("kernel"),
        "{theirs}"
    );
    let tried = bob
        .submit(
            "/me",
            "/me/follows/delete",
            &[("kind", "package"), ("name", "glibc")],
        )
        .await;
    assert_eq!(tried.status, StatusCode::SEE_OTHER);
    assert_eq!(store.follows(me.id).await.unwrap().len(), 2);

    let gone = alice
        .submit(
            "/me",
            "/me/follows/delete",
            &[("kind", "package"), ("name", "glibc")],
        )
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(
        store.follows(me.id).await.unwrap(),
        vec![(FollowKind::User, "ralph".to_string())]
    );
    assert_eq!(
        app.browser().get("/me").await.location.as_deref(),
        Some("/signin")
    );
}
