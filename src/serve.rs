//! The roles this process runs, built from the config: all of them (`tidings serve`) or one
//! (`tidings web`, `tidings notifier`, `tidings sender`, beside the others on a shared
//! PostgreSQL database). The roles themselves live in the library crates; this file turns
//! settings into their arguments and stops them all, cleanly, on SIGINT or SIGTERM (one
//! cancellation token for all).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tidings_notifier::roles::{self, NotifierSettings, SenderSettings};
use tidings_notifier::sender::{self, Channels};
use tidings_notifier::{Derive, EmailConfig, MatcherSettings, Metrics};
use tidings_store::{Store, Wake};
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
        ..config.email().clone()
    }
}

/// The catalog in effect; broken entries are logged and skipped.
pub fn catalog(config: &Config) -> Arc<tidings_rules::Catalog> {
    catalog_and_report(config).0
}

/// The catalog in effect, and what loading it did (for the admin's catalog page).
fn catalog_and_report(
    config: &Config,
) -> (Arc<tidings_rules::Catalog>, Arc<tidings_web::CatalogReport>) {
    let (catalog, report) = inspect::load_catalog_report(&config.bus.catalog_dirs);
    for warning in inspect::load_catalog_warnings(&report) {
        tracing::warn!("schema catalog: {warning}");
    }
    tracing::info!(entries = catalog.len(), "schema catalog loaded");
    (Arc::new(catalog), Arc::new(report))
}

/// The catalog in effect, as a metadata function.
pub fn derive(config: &Config) -> Derive {
    derive_with(catalog(config))
}

fn derive_with(catalog: Arc<tidings_rules::Catalog>) -> Derive {
    Arc::new(move |message| catalog.derive(message))
}

/// A role this process can run: the web (pages and API), the notifier (bus ingest and the
/// matcher) or a sender (the outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Web,
    Notifier,
    Sender,
}

impl Role {
    /// Every role: what `tidings serve` runs.
    pub const ALL: [Role; 3] = [Role::Web, Role::Notifier, Role::Sender];

    fn command(self) -> &'static str {
        match self {
            Role::Web => "tidings web",
            Role::Notifier => "tidings notifier",
            Role::Sender => "tidings sender",
        }
    }
}

/// Runs `roles` in this process until a shutdown signal (SIGINT, SIGTERM) or a fatal
/// error in one of them, which stops the others. `demo`: with a demo account and the
/// corpus replayed as a live bus (`tidings serve --demo`, see `demo.rs`).
pub async fn run(config: Config, roles: &[Role], demo: bool) -> anyhow::Result<()> {
    config.prepare()?;
    if let [role] = roles {
        // Split roles meet only in the database: wake-ups between them and the one
        // active matcher need PostgreSQL's LISTEN/NOTIFY and advisory locks.
        if !config.shared_database() {
            anyhow::bail!(
                "{} runs one role beside others that share its database, which must be \
                 PostgreSQL (database_url = \"postgres://…\"); on SQLite, run every role in \
                 one process with `tidings serve`",
                role.command()
            );
        }
    }
    let store = open_store(&config).await?;
    let metrics = Arc::new(Metrics::default());
    let shutdown = CancellationToken::new();
    // The catalog is loaded once, by the first role that derives metadata.
    let catalog = std::cell::OnceCell::new();
    let loaded_with_report = || {
        catalog
            .get_or_init(|| self::catalog_and_report(&config))
            .clone()
    };
    let loaded = || loaded_with_report().0;
    let derived = || derive_with(loaded());
    if demo {
        // Before the site answers: the account is there when its first page loads.
        crate::demo::prepare(&store, &derived(), &config.data_dir).await?;
    }
    // Listeners are bound (and settings checked) before anything starts.
    let web = match roles.contains(&Role::Web) {
        true => {
            let (catalog, report) = loaded_with_report();
            Some(web_role(&config, &store, &metrics, (&catalog, &report), &shutdown).await?)
        }
        false => None,
    };
    let metrics_listener = match config.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("config key metrics.listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some((state, listener)) = web {
        let stop = shutdown.clone();
        tasks.spawn(async move {
            tidings_web::run(state, listener, stop)
                .await
                .context("web server")
        });
    }
    if roles.contains(&Role::Notifier) {
        let settings = notifier_settings(&config, &metrics, derived())?;
        let role = roles::notifier(store.clone(), settings, shutdown.clone());
        tasks.spawn(async move { role.await.context("notifier") });
    }
    if roles.contains(&Role::Sender) {
        let settings = sender_settings(&config, &metrics)?;
        let role = roles::sender(store.clone(), settings, shutdown.clone());
        tasks.spawn(async move { role.await.context("sender") });
    }
    if demo {
        let replay =
            crate::demo::replay(store.clone(), derived(), metrics.clone(), shutdown.clone());
        tasks.spawn(async move { replay.await.context("demo") });
    }
    if let Some(listener) = metrics_listener {
        let served = tidings_web::serve_metrics(
            Arc::new(WebMetrics(metrics.clone())),
            listener,
            shutdown.clone(),
        );
        tasks.spawn(async move { served.await.context("metrics server") });
        // The gauges read from the store (backlog, outbox by state), fresh at each scrape
        // within this period.
        let watch = metrics
            .clone()
            .watch(store.clone(), GAUGES_EVERY, shutdown.clone());
        tasks.spawn(async move {
            watch.await;
            Ok(())
        });
    }
    tracing::info!(?roles, "tidings is running");

    let mut outcome = Ok(());
    tokio::select! {
        _ = signal() => tracing::info!("shutting down"),
        Some(result) = tasks.join_next() => {
            // A role only returns early on a fatal error (say, ZeroMQ cannot connect).
            outcome = flatten(result);
        }
    }
    shutdown.cancel();
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = flatten(result) {
            tracing::error!(error = %format!("{err:#}"), "a role stopped with an error");
        }
    }
    store.close().await;
    tracing::info!(
        ingested = metrics.ingested.get(),
        duplicates = metrics.duplicates.get(),
        rejected = metrics.rejected.get(),
        matched = metrics.matched.get(),
        queued = metrics.queued.get(),
        sent = metrics.sent.get(),
        retried = metrics.retried.get(),
        dead = metrics.dead.get(),
        "stopped"
    );
    outcome
}

/// The notifier role's settings, from the config.
pub fn notifier_settings(
    config: &Config,
    metrics: &Arc<Metrics>,
    derive: Derive,
) -> anyhow::Result<NotifierSettings> {
    let retry_max = Duration::from_millis(config.database.retry_max_ms);
    Ok(NotifierSettings {
        ingest: tidings_notifier::bus::ZmqIngest {
            endpoints: config.bus.zmq_endpoints.clone(),
            max_message_bytes: config.bus.max_message_bytes,
            retry_max,
            trust: config.trust()?,
        },
        amqp: config.bus.amqp.as_ref().map(|amqp| amqp.ingest(retry_max)),
        matcher: MatcherSettings {
            batch: config.matcher.batch,
            poll: Duration::from_millis(config.matcher.poll_ms),
            retry_max,
            rebuild_every: (config.matcher.rebuild_minutes > 0)
                .then(|| Duration::from_secs(config.matcher.rebuild_minutes * 60)),
        },
        derive,
        metrics: metrics.clone(),
        ownership_sync: tidings_notifier::ownership_sync::OwnershipSync::new(
            &config.ownership.sync,
        )?,
    })
}

/// The sender role's settings, from the config.
pub fn sender_settings(config: &Config, metrics: &Arc<Metrics>) -> anyhow::Result<SenderSettings> {
    let email = email_config(config);
    let channels = Channels::from_config(&email, &config.base_url())?
        .with_webhook(&config.channels.webhook)?
        .with_ntfy(&config.channels.ntfy)?
        .with_matrix(&config.channels.matrix)?
        .with_irc(&config.channels.irc)?;
    // Before anything runs: a lease a send could outlast is refused by name.
    sender::check_lease(&config.sender, &channels.registry)?;
    Ok(SenderSettings {
        sender: config.sender.clone(),
        channels,
        retry_max: Duration::from_millis(config.database.retry_max_ms),
        metrics: metrics.clone(),
    })
}

/// The web role's state and bound listener.
async fn web_role(
    config: &Config,
    store: &Store,
    metrics: &Arc<Metrics>,
    (catalog, report): (
        &Arc<tidings_rules::Catalog>,
        &Arc<tidings_web::CatalogReport>,
    ),
    shutdown: &CancellationToken,
) -> anyhow::Result<(tidings_web::AppState, tokio::net::TcpListener)> {
    let derive = derive_with(catalog.clone());
    let listener = tokio::net::TcpListener::bind(config.web.listen)
        .await
        .with_context(|| {
            format!(
                "config key web.listen: cannot listen on {}",
                config.web.listen
            )
        })?;
    let web_config = tidings_web::WebConfig {
        base_url: config.base_url(),
        session_hours: config.web.session_hours,
        session_idle_minutes: config.web.session_idle_minutes,
        allow_signup: config.web.allow_signup,
        mailbox_dir: config
            .email()
            .smtp_url
            .is_none()
            .then(|| config.mailbox_dir()),
        client_address_header: config.web.client_address_header.clone(),
        channels: tidings_store::ChannelKind::ALL
            .into_iter()
            .filter(|kind| match kind {
                tidings_store::ChannelKind::Email => true,
                tidings_store::ChannelKind::Webhook => config.channels.webhook.enabled,
                tidings_store::ChannelKind::Ntfy => config.channels.ntfy.enabled,
                tidings_store::ChannelKind::Matrix => config.channels.matrix.enabled,
                tidings_store::ChannelKind::Irc => config.channels.irc.enabled,
            })
            .collect(),
        irc_networks: config.channels.irc.networks.keys().cloned().collect(),
        oidc: config.web.oidc.clone(),
    };
    web_config.check().map_err(anyhow::Error::msg)?;
    // The handlers poke this; the store passes it on to the matcher, wherever it runs.
    let wake = store.notify_signalling(Wake::Matcher, shutdown);
    let state = tidings_web::AppState::new(store.clone(), web_config, derive, wake)
        .with_trust(config.trust()?)
        .with_metrics(Arc::new(WebMetrics(metrics.clone())))
        .with_apps(catalog.app_names())
        .with_catalog(report.as_ref().clone());
    Ok((state, listener))
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

/// How often the `/metrics` gauges are read from the store.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

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

fn flatten(result: Result<anyhow::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    result.context("role task")?
}

/// SIGINT or SIGTERM.
pub(crate) async fn signal() {
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
