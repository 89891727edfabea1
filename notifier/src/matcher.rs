//! The matching loop: keeps the match index in step with the store's change log (one
//! user at a time), then takes archived messages in order, finds the filters each one
//! satisfies, and queues one notification per destination — however many filters point
//! there — in the same transaction that marks the message processed.
//!
//! A filter whose stored row cannot be read never stops matching for anyone else: it is
//! left out of the index, quarantined in the store (so it stays out after a restart, and
//! its owner and the admin see why), logged once and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tidings_rules::{Index, IndexedFilter};
use tidings_store::{Filter, FilterList, Notification, Store, StoreError, StoredMessage};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{outage, ownership, Metrics, NotifierError};

/// The index plus what the matcher needs to turn filter ids into notifications.
pub struct Matcher {
    index: Index,
    filters: HashMap<i64, Filter>,
    by_owner: HashMap<i64, Vec<i64>>,
    last_change: i64,
    metrics: Arc<Metrics>,
}

impl Matcher {
    /// Loads every active filter, quarantining those that cannot be read.
    pub async fn load(store: &Store, metrics: Arc<Metrics>) -> Result<Matcher, NotifierError> {
        let mut matcher = Matcher {
            index: Index::default(),
            filters: HashMap::new(),
            by_owner: HashMap::new(),
            last_change: store.last_change().await?,
            metrics,
        };
        // Variables first, so each filter is filed once, under its owner's values.
        for (id, variables) in store.all_variables().await? {
            matcher.index.set_variables(id, variables);
        }
        let loaded = store.active_filters(None).await?;
        matcher.add_all(store, loaded).await;
        tracing::info!(filters = matcher.filters.len(), "match index built");
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
        }
        self.last_change = last;
        Ok(())
    }

    /// The notifications a message causes: one per destination, naming every filter.
    pub fn notifications(&self, message: &StoredMessage) -> Vec<Notification> {
        let mut by_destination: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
        for id in self.index.matches(&message.message, &message.metadata) {
            if let Some(filter) = self.filters.get(&id) {
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
            .map(|(destination_id, filters)| Notification {
                destination_id,
                filters,
            })
            .collect()
    }

    /// Matches every unprocessed message, in order, until none is left. Returns how many.
    pub async fn drain(&mut self, store: &Store, batch: i64) -> Result<usize, NotifierError> {
        let metrics = self.metrics.clone();
        let mut total = 0;
        loop {
            self.refresh(store).await?;
            let messages = store.unprocessed_messages(batch).await?;
            if messages.is_empty() {
                return Ok(total);
            }
            for message in &messages {
                // An ownership announcement changes variables before its own message is
                // matched, and before any later one.
                if ownership::is_announcement(&message.message.topic)
                    && ownership::apply(store, &message.message).await? > 0
                {
                    self.refresh(store).await?;
                }
                let notifications = self.notifications(message);
                store.complete_message(message.id, &notifications).await?;
                Metrics::bump(&metrics.matched);
                metrics.queued.fetch_add(
                    notifications.len() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            total += messages.len();
        }
    }
}

/// Runs the matcher until `shutdown`: after every wake-up, and every `poll` otherwise.
/// Wakes the sender when it queued something.
/// While the database is unavailable it waits with capped backoff (up to `retry_max`),
/// saying so once per outage rather than once per poll.
#[expect(
    clippy::too_many_arguments,
    reason = "the role's wiring, passed once by serve"
)]
pub async fn run(
    store: Store,
    batch: i64,
    poll: Duration,
    retry_max: Duration,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    wake_sender: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let mut matcher = loop {
        let loaded = outage::patiently("building the match index", retry_max, &shutdown, || {
            Matcher::load(&store, metrics.clone())
        });
        match loaded.await {
            None => return Ok(()),
            Some(Ok(m)) => break m,
            Some(Err(err)) => {
                tracing::error!(error = %err, "building the match index failed; retrying");
                if !outage::pause(&shutdown, Duration::from_secs(1)).await {
                    return Ok(());
                }
            }
        }
    };
    let mut backoff = outage::Backoff::new(retry_max);
    loop {
        let wait = match matcher.drain(&store, batch).await {
            Ok(n) => {
                if backoff.attempts() > 0 {
                    tracing::info!(
                        attempts = backoff.attempts(),
                        "the database is back; matching goes on"
                    );
                    backoff.reset();
                }
                tracing::debug!(messages = n, "matched");
                poll
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
                poll
            }
        };
        // Whatever woke us (a message, or a new destination whose confirmation is queued)
        // may have left work in the outbox.
        wake_sender.notify_one();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
