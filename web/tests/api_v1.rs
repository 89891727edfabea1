//! Issue 11: `/api/v1` with personal access tokens — made, listed and revoked on the
//! account's token page, scoped read or write, each seeing only its owner's data — and an
//! OpenAPI document that matches the routes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both;
use crate::support::{App, Browser};

on_both!(
    tokens_are_made_scoped_and_revoked_and_see_only_their_owners_data,
    the_openapi_document_names_every_route_and_each_answers,
    every_operation_refuses_a_token_of_too_small_a_scope,
    settings_follows_mutes_tokens_and_the_export_through_the_api,
    preview_why_gallery_builder_and_catalog_through_the_api,
    admin_calls_manage_defaults_users_and_dead_letters
);

/// Makes a token of `scope` on the token page; returns its secret.
async fn token(browser: &Browser, name: &str, scope: &str) -> String {
    let made = browser
        .submit(
            "/account/tokens",
            "/account/tokens",
            &[("name", name), ("scope", scope)],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    let start = made.body.find("tdp_").expect("the secret is shown once");
    made.body[start..].split('<').next().unwrap().to_string()
}

/// A call to the API: status and JSON body (`Null` when there is none).
async fn call(
    app: &App,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    let text = reply.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn tokens_are_made_scoped_and_revoked_and_see_only_their_owners_data(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let bob = app.browser();
    bob.signup("bob", "amber falcon orchard 17").await;
    let read = token(&alice, "reader", "read").await;
    let write = token(&alice, "writer", "write").await;
    let bobs = token(&bob, "bob's", "write").await;
    let page = alice.get("/account/tokens").await.body;
    assert!(page.contains("reader") && page.contains("writer"), "{page}");
    assert!(!page.contains(&read), "a secret is shown only once");
    assert!(!page.contains("bob&#39;s"), "{page}");
    let duplicate = alice
        .submit(
            "/account/tokens",
            "/account/tokens",
            &[("name", "reader"), ("scope", "read")],
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT, "{}", duplicate.body);
    let unknown = alice
        .submit(
            "/account/tokens",
            "/account/tokens",
            &[("name", "x"), ("scope", "admin")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    let (status, me) = call(app, Method::GET, "/api/v1/me", Some(&read), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["username"], "alice");

    // A read token cannot change anything; a write token can.
    let filter = json!({"name": "builds", "condition": r#"app == "buildsys""#});
    let (status, refused) = call(
        app,
        Method::POST,
        "/api/v1/filters",
        Some(&read),
        Some(filter.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused["error"]
        .as_str()
        .unwrap()
        .contains("needs scope write"));
    let (status, made) = call(
        app,
        Method::POST,
        "/api/v1/filters",
        Some(&write),
        Some(filter),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_i64().unwrap();
    let path = format!("/api/v1/filters/{id}");
    let (_, listed) = call(app, Method::GET, "/api/v1/filters", Some(&read), None).await;
    assert_eq!(listed["filters"][0]["name"], "builds");

    // Wrong input is a 400 that names the spot.
    let (status, bad) = call(
        app,
        Method::PUT,
        &path,
        Some(&write),
        Some(json!({"name": "b", "condition": "app == "})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .contains("condition: an error at line 1, column"),
        "{bad}"
    );
    let (status, bad) = call(
        app,
        Method::POST,
        "/api/v1/filters",
        Some(&write),
        Some(json!({"name": "b", "condition": "app == \"x\"", "colour": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().contains("colour"), "{bad}");
    let (status, saved) = call(
        app,
        Method::PUT,
        &path,
        Some(&write),
        Some(json!({"name": "all builds", "condition": r#"app == "buildsys""#, "enabled": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["enabled"], false);

    // Bob's token: alice's filter does not exist for him, and stays.
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = call(app, method, &path, Some(&bobs), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (_, theirs) = call(app, Method::GET, "/api/v1/filters", Some(&bobs), None).await;
    assert_eq!(theirs["filters"], json!([]));

    // Destinations are added unconfirmed; pause and resume.
    let (status, added) = call(
        app,
        Method::POST,
        "/api/v1/destinations",
        Some(&write),
        Some(json!({"channel": "email", "address": "alice@example.org"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["confirmed_at"], Value::Null);
    let (status, _) = call(
        app,
        Method::PUT,
        "/api/v1/pause",
        Some(&write),
        Some(json!({"days": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, paused) = call(app, Method::GET, "/api/v1/pause", Some(&read), None).await;
    assert!(paused["paused_until"].as_i64().is_some(), "{paused}");
    let (status, _) = call(
        app,
        Method::PUT,
        "/api/v1/pause",
        Some(&write),
        Some(json!({"days": 91})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(app, Method::DELETE, "/api/v1/pause", Some(&write), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(app, Method::DELETE, &path, Some(&write), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Revoked on the page: refused from then on. A service token is no personal token.
    let revoke = alice.get("/account/tokens").await.body;
    let action = revoke
        .split("action=\"")
        .filter_map(|s| s.split('"').next())
        .find(|a| a.starts_with("/account/tokens/") && a.ends_with("/revoke"))
        .expect("a revoke form")
        .to_string();
    let done = alice.submit("/account/tokens", &action, &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let left = app
        .store
        .personal_tokens(app.store.user_by_name("alice").await.unwrap().unwrap().id)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    let revoked = if left[0].name == "reader" {
        &write
    } else {
        &read
    };
    let (status, _) = call(app, Method::GET, "/api/v1/me", Some(revoked), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let service = app
        .store
        .create_api_token("ci", tidings_store::TokenScope::Admin)
        .await
        .unwrap();
    let (status, _) = call(app, Method::GET, "/api/v1/me", Some(&service), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A documented path with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every documented operation of `/api/v1` with the personal-token scope it names.
fn operations(doc: &Value) -> Vec<(Method, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(method) = [Method::GET, Method::POST, Method::PUT, Method::DELETE]
                .into_iter()
                .find(|m| m.as_str().eq_ignore_ascii_case(method))
            else {
                continue;
            };
            if let Some(scope) = op["x-scope"].as_str() {
                out.push((method, path.clone(), scope.to_string()));
            }
        }
    }
    out
}

async fn the_openapi_document_names_every_route_and_each_answers(app: &App) {
    let (status, doc) = call(app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    // Every /api/v1 route the site has (web/src/routes.rs is where every path is named).
    let source = include_str!("../src/routes.rs");
    let routes: Vec<&str> = source
        .split('"')
        .filter(|s| s.starts_with("/api/v1"))
        .collect();
    assert!(routes.len() >= 10, "{routes:?}");
    for route in &routes {
        assert!(
            paths.contains_key(*route),
            "{route} is not in the OpenAPI document"
        );
    }
    // And every documented operation is routed: without a token it is refused, not missing.
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            let Some(method) = [Method::GET, Method::POST, Method::PUT, Method::DELETE]
                .into_iter()
                .find(|m| m.as_str().eq_ignore_ascii_case(method))
            else {
                continue; // "parameters"
            };
            let concrete = concrete(path);
            let (status, _) = call(app, method.clone(), &concrete, None, None).await;
            let expected = if path == "/api/v1/openapi.json" {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(status, expected, "{method} {path}");
        }
    }
}

/// A personal token of `scope` for a new account (`admin`: an admin's).
async fn account_token(app: &App, name: &str, scope: &str) -> (i64, String) {
    let user = app
        .store
        .create_user(name, None, scope == "admin")
        .await
        .unwrap();
    let (_, secret) = app
        .store
        .create_personal_token(user.id, "t", scope.parse().unwrap())
        .await
        .unwrap();
    (user.id, secret)
}

/// Every person's call that changes something refuses a read token, and every admin call
/// refuses a write token (an admin's too) and an admin token whose owner is no longer an
/// admin: 403 before anything is looked up or changed.
async fn every_operation_refuses_a_token_of_too_small_a_scope(app: &App) {
    let (_, doc) = call(app, Method::GET, "/api/v1/openapi.json", None, None).await;
    let ops = operations(&doc);
    let count = |scope: &str| ops.iter().filter(|(_, _, s)| s == scope).count();
    assert!(
        count("read") >= 20 && count("write") >= 20 && count("admin") >= 15,
        "{ops:?}"
    );
    let (_, reader) = account_token(app, "reader", "read").await;
    let (_, writer) = account_token(app, "writer", "write").await;
    let (root_id, root_admin) = account_token(app, "root", "admin").await;
    let (_, root_write) = app
        .store
        .create_personal_token(root_id, "write", tidings_store::PersonalScope::Write)
        .await
        .unwrap();
    for (method, path, scope) in &ops {
        let target = concrete(path);
        let refused: &[&String] = match scope.as_str() {
            "write" => &[&reader],
            "admin" => &[&reader, &writer, &root_write],
            _ => &[],
        };
        for token in refused {
            let (status, body) =
                call(app, method.clone(), &target, Some(token), Some(json!({}))).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        }
    }
    // An admin token answers the admin calls; the same token once its owner is no longer
    // an admin does not.
    for path in ["/api/v1/admin/users", "/api/v1/admin/catalog"] {
        let (status, body) = call(app, Method::GET, path, Some(&root_admin), None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    app.sql(&format!(
        "UPDATE users SET is_admin = false WHERE id = {root_id}"
    ))
    .await;
    let (status, body) = call(
        app,
        Method::GET,
        "/api/v1/admin/users",
        Some(&root_admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not an admin"),
        "{body}"
    );
    // Nobody but an admin makes an admin token, and no token makes a larger one.
    let (status, body) = call(
        app,
        Method::POST,
        "/api/v1/tokens",
        Some(&writer),
        Some(json!({"name": "more", "scope": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let writer_id = app.store.user_by_name("writer").await.unwrap().unwrap().id;
    let made = app
        .store
        .create_personal_token(writer_id, "x", tidings_store::PersonalScope::Admin)
        .await;
    assert!(made.is_err(), "{made:?}");
}

async fn settings_follows_mutes_tokens_and_the_export_through_the_api(app: &App) {
    let alice = app
        .store
        .create_user("alice", Some(PASSWORD), false)
        .await
        .unwrap();
    let (_, token) = app
        .store
        .create_personal_token(alice.id, "t", tidings_store::PersonalScope::Write)
        .await
        .unwrap();
    let t = Some(token.as_str());

    // Time zone and quiet hours; a wrong zone names the field.
    let (status, saved) = call(
        app,
        Method::PUT,
        "/api/v1/settings/schedule",
        t,
        Some(json!({"time_zone": "Europe/Paris", "quiet_hours": {"from": "22:00", "to": "07:00"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["time_zone"], "Europe/Paris");
    assert_eq!(saved["quiet_hours"]["from"], "22:00");
    let (status, bad) = call(
        app,
        Method::PUT,
        "/api/v1/settings/schedule",
        t,
        Some(json!({"time_zone": "Mars/Olympus"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"].as_str().unwrap().contains("time_zone"),
        "{bad}"
    );

    // The default delivery, set on the destination that exists too.
    let (_, dest) = call(
        app,
        Method::POST,
        "/api/v1/destinations",
        t,
        Some(json!({"channel": "email", "address": "alice@example.org"})),
    )
    .await;
    let dest_id = dest["id"].as_i64().unwrap();
    let digest = json!({"mode": "digest", "every_minutes": 60});
    let (status, set) = call(
        app,
        Method::PUT,
        "/api/v1/settings/delivery",
        t,
        Some(json!({"delivery": digest, "apply_to_all": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["applied_to"], 1);
    let (_, settings) = call(app, Method::GET, "/api/v1/settings", t, None).await;
    assert_eq!(settings["default_delivery"]["every_minutes"], 60);
    let (_, shown) = call(
        app,
        Method::GET,
        &format!("/api/v1/destinations/{dest_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(shown["delivery"]["mode"], "digest", "{shown}");
    let (status, back) = call(
        app,
        Method::PUT,
        &format!("/api/v1/destinations/{dest_id}/delivery"),
        t,
        Some(json!({"mode": "immediate", "flood_max": 5, "flood_window_minutes": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["delivery"]["flood_max"], 5);
    let (status, _) = call(
        app,
        Method::PUT,
        &format!("/api/v1/destinations/{dest_id}/delivery"),
        t,
        Some(json!({"mode": "digest"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a digest needs a trigger");
    // A fresh link; a code is for chat destinations only.
    let (status, _) = call(
        app,
        Method::POST,
        &format!("/api/v1/destinations/{dest_id}/resend"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        app,
        Method::POST,
        &format!("/api/v1/destinations/{dest_id}/confirm"),
        t,
        Some(json!({"code": "123456"})),
    )
    .await;
    assert!(status.is_client_error(), "{status}");

    // Follows feed the variables.
    let (status, follows) = call(
        app,
        Method::POST,
        "/api/v1/follows",
        t,
        Some(json!({"kind": "package", "name": "kernel"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{follows}");
    let (_, me) = call(app, Method::GET, "/api/v1/me", t, None).await;
    assert_eq!(me["followed_packages"], json!(["kernel"]));
    let (status, _) = call(
        app,
        Method::POST,
        "/api/v1/follows",
        t,
        Some(json!({"kind": "team", "name": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        app,
        Method::DELETE,
        "/api/v1/follows/package/kernel",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        app,
        Method::DELETE,
        "/api/v1/follows/package/kernel",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Mutes: a package by name, and a message's thread.
    crate::why::archive(app, "mute-me", "bodhi", &["alice"], &["kernel"]).await;
    let (status, muted) = call(
        app,
        Method::POST,
        "/api/v1/mutes",
        t,
        Some(json!({"kind": "package", "value": "firefox", "days": 7})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{muted}");
    let (status, by_message) = call(
        app,
        Method::POST,
        "/api/v1/mutes",
        t,
        Some(json!({"kind": "package", "message": "mute-me"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{by_message}");
    assert_eq!(by_message["value"], "kernel");
    let (status, bad) = call(
        app,
        Method::POST,
        "/api/v1/mutes",
        t,
        Some(json!({"kind": "thread", "message": "nope"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad["error"].as_str().unwrap().contains("nope"), "{bad}");
    let (_, list) = call(app, Method::GET, "/api/v1/mutes", t, None).await;
    assert_eq!(list["mutes"].as_array().unwrap().len(), 2, "{list}");
    let mute_id = muted["id"].as_i64().unwrap();
    let (status, _) = call(
        app,
        Method::DELETE,
        &format!("/api/v1/mutes/{mute_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Tokens: listed without secrets, made no larger than the maker, revoked.
    let (status, made) = call(
        app,
        Method::POST,
        "/api/v1/tokens",
        t,
        Some(json!({"name": "ci", "scope": "read"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().unwrap().to_string();
    let (_, list) = call(app, Method::GET, "/api/v1/tokens", Some(&secret), None).await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret));
    let (status, _) = call(
        app,
        Method::DELETE,
        &format!("/api/v1/tokens/{}", made["token"]["id"]),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(app, Method::GET, "/api/v1/me", Some(&secret), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The export has what was set; signing out everywhere ends the browser's session.
    let (status, export) = call(app, Method::GET, "/api/v1/export", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(export["account"]["time_zone"], "Europe/Paris");
    assert_eq!(export["destinations"][0]["address"], "alice@example.org");
    let browser = app.browser();
    browser.signin("alice", PASSWORD).await;
    assert_eq!(browser.get("/settings").await.status, StatusCode::OK);
    let (status, ended) = call(app, Method::DELETE, "/api/v1/sessions", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ended["ended"], 1);
    assert_eq!(browser.get("/settings").await.status, StatusCode::SEE_OTHER);

    // Offered default filters: listed, added.
    app.store
        .create_default_filter(&tidings_store::DefaultFilterInput {
            name: "about me".into(),
            condition: tidings_rules::Condition::parse("usernames has $me").unwrap(),
            delivery: tidings_store::Delivery::Instant,
            enabled: true,
        })
        .await
        .unwrap();
    let (_, offered) = call(app, Method::GET, "/api/v1/defaults", t, None).await;
    assert_eq!(offered["offered"][0]["name"], "about me", "{offered}");
    let (status, added) = call(
        app,
        Method::POST,
        "/api/v1/defaults/add",
        t,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(added["added"], 1);
    let (_, offered) = call(app, Method::GET, "/api/v1/defaults", t, None).await;
    assert_eq!(offered["offered"], json!([]));
    // One dismissed is no longer offered, and not added.
    let other = app
        .store
        .create_default_filter(&tidings_store::DefaultFilterInput {
            name: "my packages".into(),
            condition: tidings_rules::Condition::parse("packages has $my_packages").unwrap(),
            delivery: tidings_store::Delivery::Instant,
            enabled: true,
        })
        .await
        .unwrap();
    let (status, dismissed) = call(
        app,
        Method::POST,
        "/api/v1/defaults/dismiss",
        t,
        Some(json!({ "ids": [other.id] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{dismissed}");
    assert_eq!(dismissed["dismissed"], 1);
    let (_, offered) = call(app, Method::GET, "/api/v1/defaults", t, None).await;
    assert_eq!(offered["offered"], json!([]));

    // Notifications, newest first and limited; a destination deleted is gone.
    crate::admin::dead_one(app, alice.id, "alice2@example.org", "note-1").await;
    crate::admin::dead_one(app, alice.id, "alice3@example.org", "note-2").await;
    let (status, listed) = call(app, Method::GET, "/api/v1/notifications?limit=1", t, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed["notifications"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["address"], "alice3@example.org", "{listed:?}");
    let (status, _) = call(
        app,
        Method::DELETE,
        &format!("/api/v1/destinations/{dest_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        app,
        Method::GET,
        &format!("/api/v1/destinations/{dest_id}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

const PASSWORD: &str = "velvet crane harbour 42";

async fn preview_why_gallery_builder_and_catalog_through_the_api(app: &App) {
    let (_, token) = account_token(app, "alice", "write").await;
    let t = Some(token.as_str());
    let (_, bobs) = account_token(app, "bob", "write").await;
    crate::why::archive(app, "msg-a", "buildsys", &["alice"], &["kernel"]).await;
    crate::why::archive(app, "msg-b", "bodhi", &["carol"], &["firefox"]).await;

    // A preview of text being written, with its warnings.
    let (status, preview) = call(
        app,
        Method::POST,
        "/api/v1/preview",
        t,
        Some(json!({"condition": "usernames has $me"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["count"], 1);
    assert_eq!(preview["latest"][0]["id"], "msg-a");
    // A body test reads the bodies (only what its paths reach): "9" is a number below 10.
    for (condition, count) in [
        ("body.release < 10 and body.user == $me", 2),
        ("body.release >= 10", 0),
        ("body.missing == 1 or body.user == \"alice\"", 2),
    ] {
        let (status, found) = call(
            app,
            Method::POST,
            "/api/v1/preview",
            t,
            Some(json!({ "condition": condition })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{found}");
        assert_eq!(found["count"], count, "{condition}: {found}");
    }
    let (_, warned) = call(
        app,
        Method::POST,
        "/api/v1/preview",
        t,
        Some(json!({"condition": "app == \"bodi\""})),
    )
    .await;
    assert!(warned["warnings"].to_string().contains("bodhi"), "{warned}");
    let (status, bad) = call(
        app,
        Method::POST,
        "/api/v1/preview",
        t,
        Some(json!({"condition": "app =="})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad["error"].as_str().unwrap().contains("line 1, column"),
        "{bad}"
    );

    // The gallery adds a filter; its preview and its feed.
    let (_, gallery) = call(app, Method::GET, "/api/v1/gallery", t, None).await;
    assert!(gallery["starters"].as_array().unwrap().len() >= 5);
    let (status, added) = call(app, Method::POST, "/api/v1/gallery/about-me", t, None).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let id = added["id"].as_i64().unwrap();
    let (status, _) = call(app, Method::POST, "/api/v1/gallery/no-such", t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, saved) = call(
        app,
        Method::GET,
        &format!("/api/v1/filters/{id}/preview"),
        t,
        None,
    )
    .await;
    assert_eq!(saved["count"], 1, "{saved}");
    let (_, feed) = call(
        app,
        Method::GET,
        &format!("/api/v1/filters/{id}/feed"),
        t,
        None,
    )
    .await;
    let (_, renewed) = call(
        app,
        Method::POST,
        &format!("/api/v1/filters/{id}/feed"),
        t,
        None,
    )
    .await;
    assert!(feed["url"].as_str().unwrap().contains("/feeds/"), "{feed}");
    assert_ne!(feed["url"], renewed["url"]);
    // Not bob's: his token sees no such filter.
    for path in [
        format!("/api/v1/filters/{id}/preview"),
        format!("/api/v1/filters/{id}/feed"),
    ] {
        let (status, _) = call(app, Method::GET, &path, Some(&bobs), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // Why (not): each of my filters, with what decided.
    let (status, why) = call(app, Method::GET, "/api/v1/why?message=msg-b", t, None).await;
    assert_eq!(status, StatusCode::OK, "{why}");
    assert_eq!(why["filters"][0]["matched"], false);
    assert!(
        why["filters"][0]["reasons"].to_string().contains("$me"),
        "{why}"
    );
    let (_, his) = call(
        app,
        Method::GET,
        "/api/v1/why?message=msg-b",
        Some(&bobs),
        None,
    )
    .await;
    assert_eq!(his["filters"], json!([]), "never another's filters");
    let (status, _) = call(app, Method::GET, "/api/v1/why?message=none", t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The builder writes a condition and reads it back.
    let builder = json!({"apps": ["bodhi"], "whose": {"my_packages": true}, "not_mine": true});
    let (status, written) = call(app, Method::POST, "/api/v1/builder", t, Some(builder)).await;
    assert_eq!(status, StatusCode::OK, "{written}");
    let text = written["condition"].as_str().unwrap().to_string();
    assert!(
        text.contains("app == \"bodhi\"") && text.contains("$my_packages"),
        "{text}"
    );
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("condition", &text)
        .finish();
    let (status, read) = call(
        app,
        Method::GET,
        &format!("/api/v1/builder?{query}"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["builder"]["apps"], json!(["bodhi"]));
    assert_eq!(read["builder"]["not_mine"], true);
    let (status, _) = call(
        app,
        Method::GET,
        "/api/v1/builder?condition=body.a%20%3D%3D%201%20or%20app%20%3D%3D%20%22x%22",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = call(app, Method::POST, "/api/v1/builder", t, Some(json!({}))).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "an empty builder matches everything"
    );

    // The catalog's apps, for choosing.
    let (_, catalog) = call(app, Method::GET, "/api/v1/catalog", t, None).await;
    assert!(
        catalog["apps"].to_string().contains("\"bodhi\""),
        "{catalog}"
    );
}

async fn admin_calls_manage_defaults_users_and_dead_letters(app: &App) {
    let (root_id, token) = account_token(app, "root", "admin").await;
    let t = Some(token.as_str());
    let alice = app.store.create_user("alice", None, false).await.unwrap();

    // Default filters: made (warned about), read, previewed, replaced, deleted.
    let (status, made) = call(
        app,
        Method::POST,
        "/api/v1/admin/defaults",
        t,
        Some(
            json!({"name": "builds", "condition": "app == \"bodi\" and packages has $my_packages"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert!(made["warnings"].to_string().contains("bodhi"), "{made}");
    let path = format!("/api/v1/admin/defaults/{}", made["id"]);
    let (status, replaced) = call(
        app,
        Method::PUT,
        &path,
        t,
        Some(json!({"name": "builds", "condition": "usernames has $me", "delivery": {"mode": "digest", "daily_at": "08:00"}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["digest"]["daily_at"], "08:00");
    crate::why::archive(app, "msg-alice", "bodhi", &["alice"], &[]).await;
    let (status, preview) = call(
        app,
        Method::POST,
        "/api/v1/admin/defaults/preview",
        t,
        Some(json!({"condition": "usernames has $me", "users": ["alice"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        preview["users"][0],
        json!({"username": "alice", "matches": 1})
    );
    let (_, list) = call(app, Method::GET, "/api/v1/admin/defaults", t, None).await;
    assert_eq!(list["defaults"].as_array().unwrap().len(), 1);
    // A new account starts with it.
    let newcomer = app
        .store
        .create_user("newcomer", None, false)
        .await
        .unwrap();
    let filters = app.store.filters(newcomer.id).await.unwrap();
    assert_eq!(filters.filters[0].name, "builds");
    let (status, _) = call(app, Method::DELETE, &path, t, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(app, Method::GET, &path, t, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Users: searched, read, disabled and enabled; never oneself.
    let (_, found) = call(app, Method::GET, "/api/v1/admin/users?q=ali", t, None).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["username"], "alice");
    let one = format!("/api/v1/admin/users/{}", alice.id);
    let (_, shown) = call(app, Method::GET, &one, t, None).await;
    assert_eq!(shown["user"]["username"], "alice");
    let (status, off) = call(app, Method::POST, &format!("{one}/disable"), t, None).await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["user"]["disabled"], true);
    let (_, on) = call(app, Method::POST, &format!("{one}/enable"), t, None).await;
    assert_eq!(on["user"]["disabled"], false);
    let (status, refused) = call(
        app,
        Method::POST,
        &format!("/api/v1/admin/users/{root_id}/disable"),
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // Dead letters: listed, one queued again, one discarded.
    crate::admin::dead_one(app, alice.id, "a1@example.org", "dead-1").await;
    crate::admin::dead_one(app, alice.id, "a2@example.org", "dead-2").await;
    let (_, dead) = call(app, Method::GET, "/api/v1/admin/dead", t, None).await;
    assert_eq!(dead["total"], 2, "{dead}");
    let first = dead["dead"][0]["id"].clone();
    let second = dead["dead"][1]["id"].clone();
    let (_, retried) = call(
        app,
        Method::POST,
        "/api/v1/admin/dead/retry",
        t,
        Some(json!({"ids": [first]})),
    )
    .await;
    assert_eq!(retried["queued"], 1);
    let (_, discarded) = call(
        app,
        Method::POST,
        "/api/v1/admin/dead/discard",
        t,
        Some(json!({"ids": [second]})),
    )
    .await;
    assert_eq!(discarded["discarded"], 1);
    let (_, dead) = call(app, Method::GET, "/api/v1/admin/dead", t, None).await;
    assert_eq!(dead["total"], 0, "{dead}");

    // Charts' numbers and the catalog report.
    let (status, charts) = call(app, Method::GET, "/api/v1/admin/charts?hours=24", t, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        charts["messages_per_hour"].to_string().contains("bodhi"),
        "{charts}"
    );
    let (status, _) = call(app, Method::GET, "/api/v1/admin/charts?hours=0", t, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, catalog) = call(app, Method::GET, "/api/v1/admin/catalog", t, None).await;
    assert!(catalog["entries"].as_u64().unwrap() > 10, "{catalog}");

    // The live bus: an event stream; a bad glob is refused.
    let reply = reqwest::Client::new()
        .get(format!("{}/api/v1/admin/live?topic=org.**", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    drop(reply);
    let (status, _) = call(app, Method::GET, "/api/v1/admin/live?topic=a..b", t, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
