//! The JSON ingest API and the health check.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use tidings_store::TokenScope;

use crate::on_both;
use crate::support::App;

on_both!(ingest, token_scopes, ownership_imports_are_guarded);

async fn post(
    app: &App,
    token: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/messages", app.base))
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

async fn ingest(app: &App) {
    let token = app
        .store
        .create_api_token("koji", TokenScope::Publish)
        .await
        .unwrap();
    let envelope = json!({
        "topic": "org.fedoraproject.prod.koji.build.state.change",
        "msg": {"owner": "alice", "name": "tidings"},
        "msg_id": "2024-abc",
        "timestamp": 1_700_000_000.0
    })
    .to_string();

    let (status, body) = post(app, None, envelope.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].is_string());
    assert_eq!(
        post(app, Some("tid_wrong"), envelope.clone()).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.store.message_counts().await.unwrap().0, 0);

    let (status, body) = post(app, Some(&token), envelope.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"id": "2024-abc", "duplicate": false}));
    tokio::time::timeout(Duration::from_secs(5), app.wake.notified())
        .await
        .expect("the matcher is woken");
    let stored = app.store.unprocessed_messages(10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].source, "http:koji");
    assert_eq!(stored[0].message.sent_at, Some(1_700_000_000_000));

    let (status, body) = post(app, Some(&token), envelope).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"id": "2024-abc", "duplicate": true}));
    assert_eq!(app.store.message_counts().await.unwrap().0, 1);

    // Issue 12: a fedora-messaging message in the JSON form `fedora-messaging publish`
    // reads is taken as well, its headers kept.
    let fedora_messaging = json!({
        "topic": "org.fedoraproject.prod.bodhi.update.comment",
        "id": "90066146-493d-58b0-8be8-58d2d5a10b0a",
        "headers": {"fedora_messaging_user_alice": true, "sent-at": "2025-01-01T12:00:00+00:00"},
        "body": {"comment": {"text": "works"}},
        "queue": "ignored"
    })
    .to_string();
    let (status, body) = post(app, Some(&token), fedora_messaging).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let stored = app.store.unprocessed_messages(10).await.unwrap();
    let stored = stored
        .iter()
        .find(|m| m.message.id == "90066146-493d-58b0-8be8-58d2d5a10b0a")
        .expect("stored");
    assert_eq!(stored.message.sent_at, Some(1_735_732_800_000));
    assert_eq!(
        stored.message.headers["fedora_messaging_user_alice"],
        json!(true)
    );
    assert!(stored.metadata.usernames.iter().any(|u| u == "alice"));
    assert_eq!(app.store.message_counts().await.unwrap().0, 2);

    let (status, body) = post(app, Some(&token), "{\"topic\":\n  oops}").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let reason = body["error"].as_str().unwrap();
    assert!(reason.contains("line 2, column 3"), "{reason}");
    let (status, body) = post(app, Some(&token), r#"{"msg": {}}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("`topic`"),
        "{body}"
    );
    assert_eq!(app.store.rejected_count().await.unwrap(), 2);
    let rejected = app.store.rejected_messages(1).await.unwrap();
    assert_eq!(rejected[0].source, "http:koji");
    assert_eq!(rejected[0].raw, r#"{"msg": {}}"#);

    let huge = format!(
        r#"{{"topic":"t.x","msg":{{"pad":"{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    assert_eq!(
        post(app, Some(&token), huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(app.store.message_counts().await.unwrap().0, 2);

    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");
}

/// A PUT of an ownership import; (status, JSON reply).
async fn put_ownership(
    app: &App,
    query: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let reply = reqwest::Client::new()
        .put(format!("{}/api/v1/ownership{query}", app.base))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

fn envelope(id: &str) -> String {
    json!({"topic": "org.fedoraproject.prod.koji.tag", "msg": {}, "msg_id": id}).to_string()
}

const IMPORT: &str = r#"{"packages": {"tidings": {"users": ["alice"]}}}"#;

// Issue 8 item 7: any publisher token could replace every ownership record. Tokens now
// have a scope: publish, ownership, or admin (both); the wrong scope is 403, an unknown
// or revoked token 401.
async fn token_scopes(app: &App) {
    let scoped = |name: &'static str, scope| async move {
        app.store.create_api_token(name, scope).await.unwrap()
    };
    let publish = scoped("koji", TokenScope::Publish).await;
    let ownership = scoped("pkgdb-sync", TokenScope::Ownership).await;
    let admin = scoped("ops", TokenScope::Admin).await;

    let (status, body) = put_ownership(app, "?mode=replace", &publish, "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(reason.contains("scope ownership"), "{reason}");
    assert_eq!(
        put_ownership(app, "", &publish, IMPORT).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = post(app, Some(&ownership), envelope("m-1")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(app.store.message_counts().await.unwrap().0, 0);

    assert_eq!(
        post(app, Some(&publish), envelope("m-2")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        post(app, Some(&admin), envelope("m-3")).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        put_ownership(app, "", &ownership, IMPORT).await.0,
        StatusCode::OK
    );
    assert_eq!(
        put_ownership(app, "", &admin, IMPORT).await.0,
        StatusCode::OK
    );

    app.store.revoke_api_token("koji").await.unwrap();
    assert_eq!(
        post(app, Some(&publish), envelope("m-4")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let listed = app.store.api_tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|t| t.last_used_at.is_some()),
        "{listed:?}"
    );
}

// Issue 8 item 7: `mode=replace` with an empty import wiped every ownership record, and
// bodies up to 64 MiB were read. Empty replaces need allow_empty=true; the limit is 16 MiB.
async fn ownership_imports_are_guarded(app: &App) {
    let token = app
        .store
        .create_api_token("pkgdb-sync", TokenScope::Ownership)
        .await
        .unwrap();
    assert_eq!(
        put_ownership(app, "", &token, IMPORT).await.0,
        StatusCode::OK
    );
    let alice = || async {
        !app.store
            .package_owners("tidings")
            .await
            .unwrap()
            .is_empty()
    };
    for empty in ["{}", r#"{"packages": {}, "groups": {}}"#] {
        let (status, body) = put_ownership(app, "?mode=replace", &token, empty).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("allow_empty=true"),
            "{body}"
        );
        assert!(alice().await, "nothing was wiped");
    }
    let (status, body) = put_ownership(app, "?mode=merge", &token, "{}").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty merge changes nothing: {body}"
    );
    assert!(alice().await);
    let (status, body) = put_ownership(app, "?mode=replace&allow_empty=true", &token, "{}").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!alice().await, "asked for explicitly, the wipe happens");

    let huge = format!(
        r#"{{"packages": {{"p": {{"users": ["{}"]}}}}}}"#,
        "a".repeat(16 * 1024 * 1024)
    );
    assert_eq!(
        put_ownership(app, "", &token, huge).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}
