//! Issue 8 item 10: `/metrics` was public. It is served only on a listener of its own.

use std::sync::Arc;

use reqwest::StatusCode;
use tokio_util::sync::CancellationToken;

use crate::support::{App, Db};

struct Counters;

impl tidings_web::Metrics for Counters {
    fn ingest(&self, _: tidings_web::Ingest) {}

    fn render(&self) -> String {
        "tidings_messages_ingested_total 7\n".into()
    }
}

#[tokio::test]
async fn metrics_are_served_only_on_their_own_listener() {
    let app = App::start(Db::Sqlite).await.unwrap();
    let public = app.browser().get("/metrics").await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert!(!public.body.contains("tidings_"), "{}", public.body);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(tidings_web::serve_metrics(
        Arc::new(Counters),
        listener,
        shutdown.clone(),
    ));
    let reply = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.text().await.unwrap(),
        "tidings_messages_ingested_total 7\n"
    );
    let other = reqwest::get(format!("http://{addr}/signin")).await.unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND, "nothing else there");
    shutdown.cancel();
    server.await.unwrap().unwrap();
    app.stop().await;
}
