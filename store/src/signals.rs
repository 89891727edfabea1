//! Wake-ups between the pipeline's loops, in one process or across many: a stored message
//! or a changed preference wakes the matcher, a queued notification wakes the senders.
//!
//! [`Store::signal`] raises a wake-up and [`Store::wakes`] subscribes to one. In one
//! process they meet in a `watch` channel per kind. On PostgreSQL a signal is also sent as
//! a `NOTIFY` (from a background task, so raising one never waits and many collapse into
//! one), and the first subscription starts a `LISTEN` on a connection of its own that
//! reconnects after a loss and then raises every kind, since what was sent meanwhile is
//! gone. A wake-up is a hint, never the only way work is found: every loop also polls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::db::Db;
use crate::Store;

/// What a signal wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wake {
    /// The matcher: a message was stored, or someone's filters, destinations or variables
    /// changed (the change log signals this itself at commit).
    Matcher,
    /// The senders: something was queued in the outbox or became due.
    Sender,
}

impl Wake {
    const ALL: [Wake; 2] = [Wake::Matcher, Wake::Sender];

    /// The PostgreSQL notification channel.
    pub(crate) fn channel(self) -> &'static str {
        match self {
            Wake::Matcher => "tidings_matcher",
            Wake::Sender => "tidings_sender",
        }
    }

    fn from_channel(channel: &str) -> Option<Wake> {
        Wake::ALL.into_iter().find(|w| w.channel() == channel)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One loop's subscription to one kind of wake-up.
pub struct Wakes {
    rx: watch::Receiver<u64>,
}

impl Wakes {
    /// Resolves at the first signal since the last call (or since subscribing). Signals
    /// raised while the loop was busy are not lost, and many collapse into one wake-up.
    /// Cancel-safe: use it in `select!` beside a poll interval.
    pub async fn next(&mut self) {
        if self.rx.changed().await.is_err() {
            // The store is gone; only the loop's own poll or shutdown can end the wait.
            std::future::pending::<()>().await;
        }
    }
}

/// The per-store state behind signals and subscriptions.
pub(crate) struct Signals {
    /// Sent as the payload of our notifications, so the listener skips our own.
    instance: String,
    local: [watch::Sender<u64>; 2],
    pending: [AtomicBool; 2],
    flushing: AtomicBool,
    listening: AtomicBool,
    closed: CancellationToken,
}

impl Signals {
    pub(crate) fn new() -> Signals {
        Signals {
            instance: format!("{:016x}", rand::random::<u64>()),
            local: [watch::Sender::new(0), watch::Sender::new(0)],
            pending: [AtomicBool::new(false), AtomicBool::new(false)],
            flushing: AtomicBool::new(false),
            listening: AtomicBool::new(false),
            closed: CancellationToken::new(),
        }
    }

    /// Wakes this process's subscribers.
    fn raise(&self, wake: Wake) {
        self.local[wake.index()].send_modify(|n| *n = n.wrapping_add(1));
    }

    fn raise_all(&self) {
        for wake in Wake::ALL {
            self.raise(wake);
        }
    }

    /// Stops the listener.
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }
}

impl Store {
    /// Wakes whoever waits on `wake`, in this process and (on PostgreSQL) in every other
    /// one. Never waits and never fails: a wake-up that cannot be sent is left to the
    /// loops' polls. Call it after the commit that made the work visible.
    pub fn signal(&self, wake: Wake) {
        let signals = &self.signals;
        signals.raise(wake);
        let Db::Postgres(pool) = &*self.db else {
            return;
        };
        signals.pending[wake.index()].store(true, Ordering::SeqCst);
        if !signals.flushing.swap(true, Ordering::SeqCst) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(flush(self.signals.clone(), pool.clone()));
                }
                // Outside a runtime nothing can be sent; the other processes poll.
                Err(_) => signals.flushing.store(false, Ordering::SeqCst),
            }
        }
    }

    /// Subscribes to `wake`: signals from this process, and on PostgreSQL from every
    /// process on the database (the first subscription starts listening).
    pub fn wakes(&self, wake: Wake) -> Wakes {
        if let Db::Postgres(pool) = &*self.db {
            if !self.signals.listening.swap(true, Ordering::SeqCst) {
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        runtime.spawn(listen(self.signals.clone(), pool.clone()));
                    }
                    Err(_) => self.signals.listening.store(false, Ordering::SeqCst),
                }
            }
        }
        Wakes {
            rx: self.signals.local[wake.index()].subscribe(),
        }
    }

    /// A `Notify` whose pokes become `signal(wake)`, until `stop`: for code that wakes others
    /// by poking a `Notify` (ingest, the web's handlers). Pokes made while one is being
    /// passed on collapse into one.
    pub fn notify_signalling(&self, wake: Wake, stop: &CancellationToken) -> Arc<Notify> {
        let poked = Arc::new(Notify::new());
        let (store, stop, notify) = (self.clone(), stop.clone(), poked.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = notify.notified() => store.signal(wake),
                }
            }
        });
        poked
    }

    /// A `Notify` poked at every `wake` this store hears of, until `stop`: for loops that
    /// wait on a `Notify` (the sender).
    pub fn notify_woken_by(&self, wake: Wake, stop: &CancellationToken) -> Arc<Notify> {
        let woken = Arc::new(Notify::new());
        let mut wakes = self.wakes(wake);
        let (stop, notify) = (stop.clone(), woken.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => return,
                    _ = wakes.next() => notify.notify_one(),
                }
            }
        });
        woken
    }

    /// Wakes this process's subscribers only: after a commit whose transaction sent the
    /// notification to the others itself ([`Store::notify_in_transaction`]).
    pub(crate) fn signal_here(&self, wake: Wake) {
        self.signals.raise(wake);
    }

    /// The statement that, run inside a transaction, notifies the other processes when it
    /// commits (PostgreSQL); none on SQLite, whose subscribers are all in this process.
    pub(crate) fn notify_in_transaction(&self, wake: Wake) -> Option<String> {
        match &*self.db {
            Db::Postgres(_) => Some(Store::notify_sql(wake.channel(), &self.signals.instance)),
            Db::Sqlite(_) => None,
        }
    }
}

/// Sends the pending notifications until none is left; one task at a time.
async fn flush(signals: Arc<Signals>, pool: PgPool) {
    loop {
        for wake in Wake::ALL {
            if signals.pending[wake.index()].swap(false, Ordering::SeqCst) {
                let sql = Store::notify_sql(wake.channel(), &signals.instance);
                if let Err(err) = sqlx::query(&sql).execute(&pool).await {
                    tracing::debug!(channel = wake.channel(), error = %err,
                        "a wake-up could not be sent; the other processes' polls find the work");
                }
            }
        }
        signals.flushing.store(false, Ordering::SeqCst);
        // A signal raised after the swaps above saw this task still flushing and left its
        // notification to it: take it on, unless a new task already has.
        let more = Wake::ALL
            .iter()
            .any(|w| signals.pending[w.index()].load(Ordering::SeqCst));
        if !more || signals.flushing.swap(true, Ordering::SeqCst) {
            return;
        }
    }
}

/// The longest wait between attempts to listen again.
const RELISTEN_MAX: Duration = Duration::from_secs(10);

/// Listens for every kind of wake-up and raises it here, until the store closes.
async fn listen(signals: Arc<Signals>, pool: PgPool) {
    let mut retry = Duration::from_millis(100);
    let mut interrupted = false;
    loop {
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener
                .listen_all(Wake::ALL.iter().map(|w| w.channel()))
                .await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let connected = tokio::select! {
            _ = signals.closed.cancelled() => return,
            connected = connect => connected,
        };
        match connected {
            Ok(mut listener) => {
                if interrupted {
                    tracing::info!("wake-ups from other processes arrive again");
                }
                retry = Duration::from_millis(100);
                // Whatever was signalled while nobody listened is looked at now.
                signals.raise_all();
                loop {
                    let received = tokio::select! {
                        _ = signals.closed.cancelled() => return,
                        received = listener.try_recv() => received,
                    };
                    match received {
                        Ok(Some(note)) => {
                            if note.payload() != signals.instance {
                                if let Some(wake) = Wake::from_channel(note.channel()) {
                                    signals.raise(wake);
                                }
                            }
                        }
                        // The connection was lost and made again: some may be gone.
                        Ok(None) => signals.raise_all(),
                        Err(sqlx::Error::PoolClosed) => return,
                        Err(err) => {
                            tracing::warn!(error = %err,
                                "wake-ups from other processes are interrupted; polling meanwhile");
                            interrupted = true;
                            break;
                        }
                    }
                }
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(err) => {
                if !interrupted {
                    tracing::warn!(error = %err,
                        "cannot listen for wake-ups from other processes; polling meanwhile");
                    interrupted = true;
                }
            }
        }
        tokio::select! {
            _ = signals.closed.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(RELISTEN_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_their_wake() {
        for wake in Wake::ALL {
            assert_eq!(Wake::from_channel(wake.channel()), Some(wake));
        }
        assert_eq!(Wake::from_channel("other"), None);
    }

    #[tokio::test]
    async fn signals_collapse_and_are_not_lost_while_busy() {
        let signals = Signals::new();
        let mut wakes = Wakes {
            rx: signals.local[Wake::Sender.index()].subscribe(),
        };
        // Raised while the loop is busy: the next wait returns at once, once.
        signals.raise(Wake::Sender);
        signals.raise(Wake::Sender);
        tokio::time::timeout(Duration::from_secs(5), wakes.next())
            .await
            .unwrap_or_else(|_| panic!("a signal raised before the wait was lost"));
        let again = tokio::time::timeout(Duration::from_millis(50), wakes.next()).await;
        assert!(again.is_err(), "two signals woke twice");
        // The other kind does not wake it.
        signals.raise(Wake::Matcher);
        let other = tokio::time::timeout(Duration::from_millis(50), wakes.next()).await;
        assert!(other.is_err(), "a matcher signal woke the sender");
    }
}
