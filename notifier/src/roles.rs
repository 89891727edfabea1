//! The notifier's roles, as library entry points: each takes the store, its settings and
//! one shutdown signal, and runs until that signal or a fatal error (which stops the rest
//! of the role too). `tidings serve` runs both beside the web in one process; `tidings
//! notifier` and `tidings sender` run one each, as many processes as wanted, against a
//! shared PostgreSQL database.
//!
//! - [`notifier`]: bus ingest, in every process, and the matcher, active in one process at
//!   a time (the others stand by to take over); and the ownership sync, if configured, in
//!   every process (a sync that finds nothing changed writes nothing).
//! - [`sender`]: drains the outbox; several share the work, each claiming other rows.
//!
//! The loops wake each other through the store ([`Store::signal`], [`Store::wakes`]), which
//! crosses processes on PostgreSQL. Ingest and the sender still poke and wait on a
//! `tokio::sync::Notify`; [`Store::notify_signalling`] and [`Store::notify_woken_by`] join
//! those to it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tidings_store::{Store, Wake};
use tokio_util::sync::CancellationToken;

use crate::bus::{self, AmqpIngest, ZmqIngest};
use crate::matcher::{self, MatcherSettings};
use crate::ownership_sync::OwnershipSync;
use crate::sender::{self, Channels};
use crate::{Derive, Metrics, NotifierError, SenderConfig};

/// What the notifier role needs besides the store.
#[derive(Clone)]
pub struct NotifierSettings {
    /// Where ingest listens and what it accepts.
    pub ingest: ZmqIngest,
    /// The AMQP queue consumed as well, if any.
    pub amqp: Option<AmqpIngest>,
    /// How the matcher runs.
    pub matcher: MatcherSettings,
    /// Derives each message's metadata.
    pub derive: Derive,
    /// The process's counters.
    pub metrics: Arc<Metrics>,
    /// Ownership from the source (`[ownership.sync]`), if configured.
    pub ownership_sync: Option<OwnershipSync>,
}

/// What the sender role needs besides the store.
#[derive(Clone)]
pub struct SenderSettings {
    /// How the outbox is drained.
    pub sender: SenderConfig,
    /// What it sends with.
    pub channels: Channels,
    /// The longest wait between attempts while the database is unavailable.
    pub retry_max: Duration,
    /// The process's counters.
    pub metrics: Arc<Metrics>,
}

/// Bus ingest and the matcher, until `shutdown`.
pub async fn notifier(
    store: Store,
    settings: NotifierSettings,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let stop = shutdown.child_token();
    let stored = store.notify_signalling(Wake::Matcher, &stop);
    let mut tasks: Vec<Task> = Vec::new();
    if let Some(amqp) = settings.amqp {
        tasks.push(Box::pin(bus::amqp::run_amqp(
            amqp,
            store.clone(),
            settings.derive.clone(),
            settings.metrics.clone(),
            stored.clone(),
            stop.clone(),
        )));
    }
    tasks.push(Box::pin(bus::zmq::run_zmq(
        settings.ingest,
        store.clone(),
        settings.derive,
        settings.metrics.clone(),
        stored,
        stop.clone(),
    )));
    if let Some(sync) = settings.ownership_sync {
        tasks.push(Box::pin(sync.run(
            store.clone(),
            settings.metrics.clone(),
            stop.clone(),
        )));
    }
    tasks.push(Box::pin(matcher::run(
        store,
        settings.matcher,
        settings.metrics,
        stop.clone(),
    )));
    together(tasks, &stop).await
}

/// The outbox sender, until `shutdown`.
pub async fn sender(
    store: Store,
    settings: SenderSettings,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let wake = store.notify_woken_by(Wake::Sender, &shutdown);
    sender::run(
        store,
        settings.sender,
        settings.channels,
        settings.metrics,
        wake,
        settings.retry_max,
        shutdown,
    )
    .await
}

/// A loop of a role: runs until shutdown, or fails.
pub type Task = std::pin::Pin<Box<dyn Future<Output = Result<(), NotifierError>> + Send>>;

/// Runs `tasks` side by side, each on the runtime's threads. The first to fail stops the
/// others through `stop` (which should be theirs) and its error is returned once all ended.
pub async fn together(tasks: Vec<Task>, stop: &CancellationToken) -> Result<(), NotifierError> {
    let mut running = tokio::task::JoinSet::new();
    for task in tasks {
        let stop = stop.clone();
        running.spawn(async move {
            let result = task.await;
            if result.is_err() {
                stop.cancel();
            }
            result
        });
    }
    let mut first = Ok(());
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(result) => first = first.and(result),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {}
        }
    }
    first
}
