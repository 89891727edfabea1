//! The JSON ingest API and the health check.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::on_both;
use crate::support::App;

on_both!(ingest);

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
    let token = app.store.create_api_token("koji").await.unwrap();
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
    assert_eq!(app.store.message_counts().await.unwrap().0, 1);

    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");
}
