//! The matching loop: keeps the match index in step with the store's change log (one
//! user at a time), then takes archived messages in order, finds the filters each one
//! satisfies, and queues one notification per destination — however many filters point
//! there — in the same transaction that marks the message processed.
//!
//! One process matches at a time (it holds the matcher's lock in the store); others stand
//! by. Besides following the change log, the index is rebuilt whole now and then.
//!
//! A filter whose stored row cannot be read never stops matching for anyone else: it is
//! left out of the index, quarantined in the store (so it stays out after a restart, and
//! its owner and the admin see why), logged once and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tidings_rules::delivery::DeliveryPolicy;
use tidings_rules::{Index, IndexedFilter};
use tidings_store::{
    Filter, FilterList, MatcherLock, Mute, Notification, Store, StoreError, StoredMessage, Wake,
    Wakes,
};
use tokio_util::sync::CancellationToken;

use crate::{outage, ownership, Metrics, NotifierError};

/// The index plus what the matcher needs to turn filter ids into notifications.
pub struct Matcher {
    index: Index,
    filters: HashMap<i64, Filter>,
    by_owner: HashMap<i64, Vec<i64>>,
    /// Each user's running mutes: their matches on what a mute names are skipped.
    mutes: HashMap<i64, Vec<Mute>>,
    last_change: i64,
    metrics: Arc<Metrics>,
}

impl Matcher {
    /// Loads every active filter, quarantining those that cannot be read. The change-log
    /// position is read first: a change committed while the filters are read is applied
    /// again by the next [`Matcher::refresh`], never missed.
    pub async fn load(store: &Store, metrics: Arc<Metrics>) -> Result<Matcher, NotifierError> {
        let mut matcher = Matcher {
            index: Index::default(),
            filters: HashMap::new(),
            by_owner: HashMap::new(),
            mutes: HashMap::new(),
            last_change: store.last_change().await?,
            metrics,
        };
        for mute in store.active_mutes(None).await? {
            matcher.mutes.entry(mute.user_id).or_default().push(mute);
        }
        // Variables first, so each filter is filed once, under its owner's values.
        for (id, variables) in store.all_variables().await? {
            matcher.index.set_variables(id, variables);
        }
        let loaded = store.active_filters(None).await?;
        matcher.add_all(store, loaded).await;
        Ok(matcher)
    }

    /// Indexes the filters that could be read and quarantines the rest.
    async fn add_all(&mut self, store: &Store, loaded: FilterList) {
        for filter in loaded.filters {
            self.add(filter);
        }
        for unreadable in loaded.unreadable {
            // Whether or not the mark is stored, the filter stays out of this index; a
            // mark that failed is tried again when the owner's filters are next read.
            match store.quarantine_filter(&unreadable).await {
                Ok(true) => {
                    Metrics::bump(&self.metrics.quarantined);
                    tracing::warn!(
                        filter = unreadable.id,
                        owner = unreadable.user_id,
                        name = %unreadable.name,
                        reason = %unreadable.reason,
                        "a filter could not be read; quarantined until its owner saves or deletes it"
                    );
                }
                // Saved meanwhile, or marked by another process: not ours to report.
                Ok(false) => {}
                Err(err) => tracing::error!(
                    filter = unreadable.id,
                    owner = unreadable.user_id,
                    reason = %unreadable.reason,
                    error = %err,
                    "a filter could not be read, and quarantining it failed; it matches nothing"
                ),
            }
        }
    }

    fn add(&mut self, filter: Filter) {
        self.index.upsert(IndexedFilter {
            id: filter.id,
            owner: filter.user_id,
            condition: filter.condition.clone(),
        });
        self.by_owner
            .entry(filter.user_id)
            .or_default()
            .push(filter.id);
        self.filters.insert(filter.id, filter);
    }

    /// Re-reads the filters and variables of every user named in the change log since the
    /// last call. Cost grows with the users who changed, not with all users.
    pub async fn refresh(&mut self, store: &Store) -> Result<(), NotifierError> {
        let changes = store.changes_since(self.last_change).await?;
        let Some(last) = changes.last() else {
            return Ok(());
        };
        let last = last.id;
        let mut users: Vec<i64> = changes.into_iter().map(|c| c.user_id).collect();
        users.sort_unstable();
        users.dedup();
        let count = users.len();
        for user_id in users {
            for id in self.by_owner.remove(&user_id).unwrap_or_default() {
                self.index.remove(id);
                self.filters.remove(&id);
            }
            match store.variables(user_id).await {
                Ok(variables) => self.index.set_variables(user_id, variables),
                // A deleted account: its filters are gone with it.
                Err(StoreError::NotFound) => {}
                Err(err) => return Err(err.into()),
            }
            let loaded = store.active_filters(Some(user_id)).await?;
            self.add_all(store, loaded).await;
            let mutes = store.active_mutes(Some(user_id)).await?;
            if mutes.is_empty() {
                self.mutes.remove(&user_id);
            } else {
                self.mutes.insert(user_id, mutes);
            }
        }
        tracing::debug!(
            users = count,
            change = last,
            "re-indexed the accounts whose preferences changed"
        );
        self.last_change = last;
        Ok(())
    }

    /// The notifications a message causes: one per destination, naming every filter; none
    /// for a user who muted what the message is about.
    pub fn notifications(&self, message: &StoredMessage) -> Vec<Notification> {
        let mut by_destination: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
        let now = tidings_store::now_ms();
        let muted = |owner: i64| {
            self.mutes
                .get(&owner)
                .is_some_and(|mutes| mutes.iter().any(|m| m.silences(&message.metadata, now)))
        };
        for id in self.index.matches(&message.message, &message.metadata) {
            if let Some(filter) = self.filters.get(&id).filter(|f| !muted(f.user_id)) {
                for destination in &filter.destination_ids {
                    by_destination
                        .entry(*destination)
                        .or_default()
                        .push((filter.id, filter.name.clone()));
                }
            }
        }
        by_destination
            .into_iter()
            .map(|(destination_id, filters)| {
                // A filter digest when every filter that matched gathers one: the first's.
                let digests: Option<Vec<(i64, &DeliveryPolicy)>> = filters
                    .iter()
                    .map(|(id, _)| {
                        let policy = self.filters.get(id)?.delivery.policy()?;
                        Some((*id, policy))
                    })
                    .collect();
                let digest = digests
                    .and_then(|d| d.into_iter().min_by_key(|(id, _)| *id))
                    .map(|(id, policy)| (id, policy.clone()));
                Notification {
                    destination_id,
                    filters,
                    digest,
                }
            })
            .collect()
    }

    /// Matches every unprocessed message, in order, until none is left. Returns how many.
    pub async fn drain(&mut self, store: &Store, batch: i64) -> Result<usize, NotifierError> {
        self.drain_until(store, batch, &CancellationToken::new())
            .await
    }

    /// As [`Matcher::drain`], but stops between batches once `stop` is cancelled: at
    /// shutdown a backlog of a burst is left for the next start (each batch is one
    /// transaction, so what is left is simply unprocessed).
    pub async fn drain_until(
        &mut self,
        store: &Store,
        batch: i64,
        stop: &CancellationToken,
    ) -> Result<usize, NotifierError> {
        let mut total = 0;
        loop {
            if stop.is_cancelled() {
                return Ok(total);
            }
            self.refresh(store).await?;
            let messages = store.unprocessed_messages(batch).await?;
            if messages.is_empty() {
                return Ok(total);
            }
            // One transaction per batch; an ownership announcement closes the batch before
            // it, since it changes variables before its own message is matched, and before
            // any later one.
            let mut done: Vec<(i64, Vec<Notification>)> = Vec::with_capacity(messages.len());
            for message in &messages {
                if ownership::is_announcement(&message.message.topic) {
                    self.complete(store, &mut done).await?;
                    if ownership::apply(store, &message.message).await? > 0 {
                        self.refresh(store).await?;
                    }
                }
                done.push((message.id, self.notifications(message)));
            }
            self.complete(store, &mut done).await?;
            total += messages.len();
        }
    }
}

impl Matcher {
    /// Queues the notifications of `done` and marks its messages processed, in one
    /// transaction, then counts them.
    async fn complete(
        &self,
        store: &Store,
        done: &mut Vec<(i64, Vec<Notification>)>,
    ) -> Result<(), NotifierError> {
        if done.is_empty() {
            return Ok(());
        }
        store.complete_messages(done).await?;
        self.metrics
            .matched_messages(done.iter().map(|(_, n)| n.len()));
        done.clear();
        Ok(())
    }
}

/// How the matcher runs (from the `[matcher]` and `[database]` settings).
#[derive(Debug, Clone)]
pub struct MatcherSettings {
    /// Messages matched per store round trip.
    pub batch: i64,
    /// How often to look for work when nothing woke the matcher.
    pub poll: Duration,
    /// The longest wait between attempts while the database is unavailable.
    pub retry_max: Duration,
    /// How often the whole index is rebuilt from the store, a backstop beside the change
    /// log (`None`: never).
    pub rebuild_every: Option<Duration>,
}

/// How often a standby tries to take the matcher's lock.
const STANDBY_RETRY: Duration = Duration::from_secs(1);

/// Why the active matcher stopped.
enum Ended {
    Shutdown,
    LockLost,
}

/// Runs the matcher until `shutdown`. Only the process holding the matcher's lock matches;
/// the others stand by and try to take it every second, so one takes over within a couple
/// of seconds when the active one dies. The active one matches after every wake-up and
/// every `poll` otherwise, rebuilds its index every `rebuild_every`, and wakes the senders
/// when it queued something or was woken (a confirmation may be waiting). While the
/// database is unavailable it waits with capped backoff, saying so once per outage.
pub async fn run(
    store: Store,
    settings: MatcherSettings,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let mut wakes = store.wakes(Wake::Matcher);
    loop {
        let Some(mut lock) = take_lock(&store, settings.retry_max, &shutdown).await else {
            return Ok(());
        };
        let ended = active(
            &store, &settings, &metrics, &mut lock, &mut wakes, &shutdown,
        )
        .await;
        lock.release().await;
        match ended {
            Ended::Shutdown => return Ok(()),
            Ended::LockLost => tracing::warn!(
                "the matcher lock was lost (its database session ended); standing by"
            ),
        }
    }
}

/// Waits until this process holds the matcher's lock; `None` at shutdown.
async fn take_lock(
    store: &Store,
    retry_max: Duration,
    shutdown: &CancellationToken,
) -> Option<MatcherLock> {
    let mut lock: Option<MatcherLock> = None;
    let (mut standing_by, mut backoff) = (false, outage::Backoff::new(retry_max));
    loop {
        let taken = match lock.as_mut() {
            Some(lock) => lock.try_take().await,
            None => match store.matcher_lock().await {
                Ok(new) => lock.insert(new).try_take().await,
                Err(err) => Err(err),
            },
        };
        let wait = match taken {
            Ok(true) => {
                tracing::info!("this process holds the matcher lock: matching");
                return lock;
            }
            Ok(false) => {
                if !standing_by {
                    tracing::info!(
                        "another process holds the matcher lock: standing by to take over"
                    );
                    standing_by = true;
                }
                backoff.reset();
                STANDBY_RETRY
            }
            Err(err) => {
                // The lock's connection is no good now: start again with a new one.
                lock = None;
                let wait = backoff.fail();
                if backoff.attempts() == 1 {
                    tracing::warn!(error = %err, "cannot try the matcher lock; trying again");
                }
                wait
            }
        };
        if !outage::pause(shutdown, wait).await {
            return None;
        }
    }
}

/// Matches while this process holds the lock.
async fn active(
    store: &Store,
    settings: &MatcherSettings,
    metrics: &Arc<Metrics>,
    lock: &mut MatcherLock,
    wakes: &mut Wakes,
    shutdown: &CancellationToken,
) -> Ended {
    let Some(mut matcher) = build(store, settings, metrics, shutdown).await else {
        return Ended::Shutdown;
    };
    let mut built_at = Instant::now();
    let mut backoff = outage::Backoff::new(settings.retry_max);
    let mut woken = true;
    loop {
        // Checked here too, not only while idle: a busy matcher is woken before any
        // check in the select below can finish.
        if !lock.check().await {
            return Ended::LockLost;
        }
        if settings
            .rebuild_every
            .is_some_and(|every| built_at.elapsed() >= every)
        {
            match Matcher::load(store, metrics.clone()).await {
                Ok(rebuilt) => {
                    matcher = rebuilt;
                    tracing::debug!("match index rebuilt from the store");
                }
                Err(err) => {
                    tracing::warn!(error = %err, "rebuilding the match index failed; keeping the current one")
                }
            }
            built_at = Instant::now();
        }
        let queued = metrics.queued.get();
        let wait = match matcher.drain_until(store, settings.batch, shutdown).await {
            Ok(n) => {
                if backoff.attempts() > 0 {
                    tracing::info!(
                        attempts = backoff.attempts(),
                        "the database is back; matching goes on"
                    );
                    backoff.reset();
                }
                tracing::debug!(messages = n, "matched");
                settings.poll
            }
            Err(err) if outage::is_outage(&err) => {
                let wait = backoff.fail();
                if backoff.attempts() == 1 {
                    tracing::warn!(error = %err, "the database is unavailable; matching waits for it");
                }
                wait
            }
            Err(err) => {
                tracing::error!(error = %err, "matching failed; will retry");
                settings.poll
            }
        };
        // Whatever woke us (a message, or a new destination whose confirmation is queued)
        // may have left work in the outbox.
        if woken || metrics.queued.get() != queued {
            store.signal(Wake::Sender);
        }
        woken = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ended::Shutdown,
            _ = lock.lost() => return Ended::LockLost,
            _ = wakes.next() => true,
            _ = tokio::time::sleep(wait) => false,
        };
    }
}

/// Builds the index, waiting out database outages; `None` at shutdown.
async fn build(
    store: &Store,
    settings: &MatcherSettings,
    metrics: &Arc<Metrics>,
    shutdown: &CancellationToken,
) -> Option<Matcher> {
    loop {
        let loaded = outage::patiently(
            "building the match index",
            settings.retry_max,
            shutdown,
            || Matcher::load(store, metrics.clone()),
        );
        match loaded.await? {
            Ok(matcher) => {
                tracing::info!(filters = matcher.filters.len(), "match index built");
                return Some(matcher);
            }
            Err(err) => {
                tracing::error!(error = %err, "building the match index failed; retrying");
                if !outage::pause(shutdown, Duration::from_secs(1)).await {
                    return None;
                }
            }
        }
    }
}
