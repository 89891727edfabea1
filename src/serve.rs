//! `tidings serve`: wires the store, the catalog, ingest, matcher, sender and web into one
//! process that stops cleanly on SIGINT or SIGTERM (one cancellation token for all).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tidings_notifier::sender::Channels;
use tidings_notifier::{email::Mailer, Derive, EmailConfig, Metrics};
use tidings_store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::Config;
use crate::inspect;

/// Sets up logging to stderr as the config says.
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log.level).with_context(|| {
        format!(
            "config key log.level: {:?} is not a log filter",
            config.log.level
        )
    })?;
    // PostgreSQL's notices arrive at info; the one every command caused ("relation
    // _sqlx_migrations already exists, skipping", from re-running migrations) is noise.
    // Filtered here rather than with client_min_messages, which poolers such as PgBouncer
    // may refuse as a startup parameter. A level that names them explicitly wins.
    let filter = match "sqlx::postgres::notice=warn".parse() {
        Ok(quiet) if !config.log.level.contains("sqlx::postgres::notice") => {
            filter.add_directive(quiet)
        }
        _ => filter,
    };
    // Colours only for a person at a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("setting up logging: {e}"))
}

/// The email settings, with the mailbox folder resolved against the data folder.
pub fn email_config(config: &Config) -> EmailConfig {
    EmailConfig {
        mailbox_dir: Some(config.mailbox_dir()),
        ..config.email.clone()
    }
}

/// The catalog in effect, as a metadata function; broken entries are logged and skipped.
pub fn derive(config: &Config) -> Derive {
    let (catalog, warnings) = inspect::load_catalog(&config.bus.catalog_dirs);
    for warning in warnings {
        tracing::warn!("schema catalog: {warning}");
    }
    tracing::info!(entries = catalog.len(), "schema catalog loaded");
    Arc::new(move |message| catalog.derive(message))
}

/// Runs the hub until a shutdown signal.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    config.prepare()?;
    let store = open_store(&config).await?;
    let email = email_config(&config);
    let mailer = Mailer::from_config(&email)?;
    let listener = tokio::net::TcpListener::bind(config.web.listen)
        .await
        .with_context(|| {
            format!(
                "config key web.listen: cannot listen on {}",
                config.web.listen
            )
        })?;
    let derive = derive(&config);
    let metrics = Arc::new(Metrics::default());
    let (wake_matcher, wake_sender) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let shutdown = CancellationToken::new();

    let metrics_listener = match config.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("config key metrics.listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let web_config = tidings_web::WebConfig {
        base_url: config.base_url(),
        session_hours: config.web.session_hours,
        session_idle_minutes: config.web.session_idle_minutes,
        allow_signup: config.web.allow_signup,
        mailbox_dir: config
            .email
            .smtp_url
            .is_none()
            .then(|| config.mailbox_dir()),
        client_address_header: config.web.client_address_header.clone(),
    };
    web_config.check().map_err(anyhow::Error::msg)?;
    let session_idle_ms = web_config.session_idle_ms();
    let web_metrics: Arc<dyn tidings_web::Metrics> = Arc::new(WebMetrics(metrics.clone()));
    let state = tidings_web::AppState::new(
        store.clone(),
        web_config,
        derive.clone(),
        wake_matcher.clone(),
    )
    .with_metrics(web_metrics.clone());
    let channels = Channels {
        mailer,
        email,
        base_url: config.base_url(),
    };

    let mut tasks = tokio::task::JoinSet::new();
    let retry_max = Duration::from_millis(config.database.retry_max_ms);
    tasks.spawn(tidings_notifier::ingest::run_zmq(
        tidings_notifier::ingest::ZmqIngest {
            endpoints: config.bus.zmq_endpoints.clone(),
            max_message_bytes: config.bus.max_message_bytes,
            retry_max,
        },
        store.clone(),
        derive,
        metrics.clone(),
        wake_matcher.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(tidings_notifier::matcher::run(
        store.clone(),
        config.matcher.batch,
        Duration::from_millis(config.matcher.poll_ms),
        retry_max,
        metrics.clone(),
        wake_matcher,
        wake_sender.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(tidings_notifier::sender::run(
        store.clone(),
        config.sender.clone(),
        channels,
        metrics.clone(),
        wake_sender,
        retry_max,
        shutdown.clone(),
    ));
    tasks.spawn(purge_sessions(
        store.clone(),
        session_idle_ms,
        shutdown.clone(),
    ));
    let web_shutdown = shutdown.clone();
    let web = tokio::spawn(async move { tidings_web::serve(state, listener, web_shutdown).await });
    let metrics_server = metrics_listener.map(|listener| {
        tokio::spawn(tidings_web::serve_metrics(
            web_metrics,
            listener,
            shutdown.clone(),
        ))
    });
    tracing::info!(listen = %config.web.listen, base_url = %config.base_url(), "tidings is running");

    tokio::select! {
        _ = signal() => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            // A loop only returns early on a fatal error (say, ZeroMQ cannot connect).
            shutdown.cancel();
            flatten(result)?;
        }
    }
    shutdown.cancel();
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = flatten(result) {
            tracing::error!(error = %err, "a worker stopped with an error");
        }
    }
    web.await.context("web task")?.context("web server")?;
    if let Some(server) = metrics_server {
        server
            .await
            .context("metrics task")?
            .context("metrics server")?;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Opens and migrates the database, waiting up to `database.start_timeout_secs` for a
/// server that cannot be reached yet.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url();
    let wait = Duration::from_secs(config.database.start_timeout_secs);
    Store::open_within(&url, wait)
        .await
        .with_context(|| format!("opening the database {}", tidings_store::redact(&url)))
}

/// Sessions that expired or went idle are removed hourly (the web refuses them anyway).
async fn purge_sessions(
    store: Store,
    idle_ms: i64,
    shutdown: CancellationToken,
) -> Result<(), tidings_notifier::NotifierError> {
    loop {
        match store.purge_sessions(idle_ms).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(sessions = n, "expired sessions removed"),
            Err(err) => tracing::warn!(error = %err, "removing expired sessions failed"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

/// The notifier's counters, as the web side reports into and serves them.
struct WebMetrics(Arc<Metrics>);

impl tidings_web::Metrics for WebMetrics {
    fn ingest(&self, outcome: tidings_web::Ingest) {
        let counter = match outcome {
            tidings_web::Ingest::Stored => &self.0.ingested,
            tidings_web::Ingest::Duplicate => &self.0.duplicates,
            tidings_web::Ingest::Rejected => &self.0.rejected,
        };
        Metrics::bump(counter);
    }

    fn render(&self) -> String {
        self.0.render()
    }
}

fn flatten(
    result: Result<Result<(), tidings_notifier::NotifierError>, tokio::task::JoinError>,
) -> anyhow::Result<()> {
    Ok(result.context("worker task")??)
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
