//! Issue 11: `/api/v1` with personal access tokens — made, listed and revoked on the
//! account's token page, scoped read or write, each seeing only its owner's data — and an
//! OpenAPI document that matches the routes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both;
use crate::support::{App, Browser};

on_both!(
    tokens_are_made_scoped_and_revoked_and_see_only_their_owners_data,
    the_openapi_document_names_every_route_and_each_answers
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
            let concrete = path.replace("{id}", "1");
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
