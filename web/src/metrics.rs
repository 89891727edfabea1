//! The Prometheus endpoint, on a listener of its own (issue 8 item 10): counters say how
//! busy the hub is and how much input it refuses, which is nobody's business on the public
//! site. The binary binds `metrics.listen` (a private address) and serves this there; the
//! public router has no `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::{routes, Metrics};

/// What [`Metrics::render`] writes: the OpenMetrics text format, which Prometheus reads
/// with its histograms' and counters' types.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics router: `/metrics` and nothing else.
fn router(metrics: Arc<dyn Metrics>) -> Router {
    Router::new()
        .route(routes::METRICS, get(render))
        .with_state(metrics)
}

/// Serves `/metrics` on `listener` until `shutdown` is cancelled.
pub async fn serve_metrics(
    metrics: Arc<dyn Metrics>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Everything measured, in OpenMetrics text format.
async fn render(State(metrics): State<Arc<dyn Metrics>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, OPENMETRICS)], metrics.render())
}
