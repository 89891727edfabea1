//! `tidings bridge` (issue 12): fedmsg over ZeroMQ to fedora-messaging over AMQP and back,
//! as its own process. The bridge itself is `tidings_notifier::bus::bridge`; this file turns
//! `[bridge]` and `[bus.amqp]` into its settings, serves its counters on `metrics.listen`,
//! and stops it on SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tidings_notifier::bus::bridge::{self, BridgeCounts, BridgeSettings};
use tidings_notifier::bus::AmqpIngest;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// The bridge's settings from the config, or what is wrong with them, naming the key.
pub fn settings(config: &Config) -> anyhow::Result<BridgeSettings> {
    let section = &config.bridge;
    let amqp = config.bus.amqp.clone().unwrap_or_default();
    if section.zmq_endpoints.is_empty() && section.publish_endpoint.is_empty() {
        anyhow::bail!(
            "config keys bridge.zmq_endpoints and bridge.publish_endpoint: both are empty, so \
             there is nothing to bridge; set one or both"
        );
    }
    if section.queue == amqp.queue {
        anyhow::bail!(
            "config key bridge.queue: must differ from bus.amqp.queue ({:?}), or the bridge \
             would take messages meant for the notifiers",
            amqp.queue
        );
    }
    if section.routing_keys.is_empty() && !section.publish_endpoint.is_empty() {
        anyhow::bail!(
            "config key bridge.routing_keys: name at least one topic pattern (\"#\": all) for \
             bridge.publish_endpoint to carry"
        );
    }
    Ok(BridgeSettings {
        amqp: AmqpIngest {
            queue: section.queue.clone(),
            routing_keys: section.routing_keys.clone(),
            ..amqp.ingest(Duration::from_millis(config.database.retry_max_ms))
        },
        zmq_endpoints: section.zmq_endpoints.clone(),
        exchange: section.exchange.clone(),
        publish_endpoint: (!section.publish_endpoint.is_empty())
            .then(|| section.publish_endpoint.clone()),
        buffer: section.buffer,
        max_message_bytes: config.bus.max_message_bytes,
        derive: crate::serve::derive(config),
    })
}

/// Runs the bridge until a shutdown signal, or until it fails.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    let settings = settings(config)?;
    let counts = Arc::new(BridgeCounts::default());
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(addr) = config.metrics.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("config key metrics.listen: cannot listen on {addr}"))?;
        let served = tidings_web::serve_metrics(
            Arc::new(Counters(counts.clone())),
            listener,
            shutdown.clone(),
        );
        tasks.spawn(async move { served.await.context("metrics server") });
    }
    let bridged = bridge::run(settings, counts, shutdown.clone());
    tasks.spawn(async move { bridged.await.context("bridge") });
    tracing::info!(role = "bridge", "tidings is running");
    let mut outcome = Ok(());
    tokio::select! {
        _ = crate::serve::signal() => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            outcome = result.context("bridge task").and_then(|r| r);
        }
    }
    shutdown.cancel();
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = result.context("bridge task").and_then(|r| r) {
            tracing::error!(error = %format!("{err:#}"), "the bridge stopped with an error");
        }
    }
    tracing::info!("stopped");
    outcome
}

/// The bridge's counters, served as `/metrics`.
struct Counters(Arc<BridgeCounts>);

impl tidings_web::Metrics for Counters {
    /// The bridge takes nothing through the HTTP API.
    fn ingest(&self, _: tidings_web::Ingest) {}

    fn render(&self) -> String {
        self.0.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_what_is_wrong() {
        let mut config = Config::default();
        assert!(
            settings(&config).is_ok(),
            "the defaults bridge AMQP to ZeroMQ"
        );
        config.bridge.publish_endpoint.clear();
        let err = settings(&config).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("nothing to bridge")),
            "{err:?}"
        );
        config.bridge.publish_endpoint = "tcp://127.0.0.1:9940".into();
        config.bridge.queue = "tidings".into();
        let err = settings(&config).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("config key bridge.queue")),
            "{err:?}"
        );
    }
}
