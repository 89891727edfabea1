//! The sender: claims due outbox rows (never more than it has free slots, so a crash can
//! duplicate at most `concurrency` mails), sends each through its channel, and records the
//! outcome: sent, retry later (exponential backoff with jitter), or dead after the last
//! attempt or a permanent refusal.
//!
//! Every send has a time limit (the channel's), and so has the drain at shutdown
//! (`shutdown_grace_secs`). While the store cannot write, the sender sends nothing new: an
//! outcome that cannot be recorded is kept and recorded once the store is back, and no row
//! is claimed meanwhile. A mail whose outcome is lost is sent again when its lease runs out,
//! so sending on regardless would send it over and over.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tidings_store::{Claimed, OutboxKind, Outcome, Store};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::email::{self, Mailer, SendError};
use crate::outage::{self, Backoff};
use crate::{EmailConfig, Metrics, NotifierError, SenderConfig};

/// What the sender sends with.
#[derive(Clone)]
pub struct Channels {
    /// Email.
    pub mailer: Mailer,
    /// Email settings (From, List-Id, …).
    pub email: EmailConfig,
    /// Base URL of the web UI, for links.
    pub base_url: String,
}

/// The delay before attempt `attempt + 1`: base × 2^(attempt−1), capped, times a random
/// factor in [0.5, 1) so that many failures at once do not retry in lockstep.
pub fn backoff(config: &SenderConfig, attempt: i64) -> Duration {
    let exp = attempt.saturating_sub(1).clamp(0, 30) as u32;
    let ceiling = config
        .backoff_base_ms
        .saturating_mul(1u64 << exp)
        .min(config.backoff_max_ms);
    let jittered = (ceiling as f64 * rand::thread_rng().gen_range(0.5..1.0)) as u64;
    Duration::from_millis(jittered.max(1))
}

/// What to record after an attempt.
pub fn outcome(config: &SenderConfig, attempt: i64, result: Result<(), SendError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Sent,
        Err(err) if !err.transient => Outcome::Dead { error: err.reason },
        Err(err) if attempt >= config.max_attempts => Outcome::Dead {
            error: format!("gave up after {attempt} attempts: {}", err.reason),
        },
        Err(err) => {
            let at = tidings_store::now_ms() + backoff(config, attempt).as_millis() as i64;
            Outcome::Retry {
                error: err.reason,
                at,
            }
        }
    }
}

async fn deliver(claimed: &Claimed, channels: &Channels) -> Result<(), SendError> {
    if claimed.kind == OutboxKind::Notification && !claimed.destination.is_confirmed() {
        return Err(SendError {
            transient: false,
            reason: "destination is not confirmed".into(),
        });
    }
    let mail = email::compose(claimed, &channels.email, &channels.base_url)?;
    channels.mailer.send(mail).await
}

/// Drains the outbox until `shutdown`; wakes on `wake` or every `poll_ms`. While the store
/// is unavailable it waits, up to `retry_max` between attempts.
pub async fn run(
    store: Store,
    config: SenderConfig,
    channels: Channels,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    retry_max: Duration,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let lease_ms = (config.lease_secs as i64).saturating_mul(1000);
    // Sends whose outcome waits for the store to be able to write again.
    let unrecorded = Arc::new(AtomicUsize::new(0));
    let mut outage = Backoff::new(retry_max);
    loop {
        let free = slots.available_permits() as i64;
        let claimed = if free > 0 && unrecorded.load(Ordering::Acquire) == 0 {
            match store.claim(free, lease_ms).await {
                Ok(rows) => {
                    outage.reset();
                    rows
                }
                Err(err) if err.is_unavailable() => {
                    let wait = outage.fail();
                    tracing::warn!(error = %err, attempt = outage.attempts(), "the database is unavailable; sending waits");
                    if !outage::pause(&shutdown, wait).await {
                        break;
                    }
                    continue;
                }
                Err(err) => {
                    tracing::error!(error = %err, "claiming outbox rows failed");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let busy = !claimed.is_empty();
        for row in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let attempt = Attempt {
                store: store.clone(),
                config: config.clone(),
                channels: channels.clone(),
                metrics: metrics.clone(),
                unrecorded: unrecorded.clone(),
                retry_max,
                shutdown: shutdown.clone(),
            };
            tokio::spawn(async move {
                attempt.run(row).await;
                drop(permit);
            });
        }
        if busy && slots.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(config.poll_ms)) => {}
        }
    }
    // Let sends in flight finish (they hold slots), for a bounded time: what is still in
    // flight after it is left to its lease, which the next start reclaims.
    let all = config.concurrency.max(1) as u32;
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        let in_flight = all as usize - slots.available_permits();
        tracing::warn!(
            in_flight,
            grace_secs = config.shutdown_grace_secs,
            "sends still in flight at shutdown are left to their leases"
        );
    }
    Ok(())
}

/// One send and the recording of its outcome.
struct Attempt {
    store: Store,
    config: SenderConfig,
    channels: Channels,
    metrics: Arc<Metrics>,
    unrecorded: Arc<AtomicUsize>,
    retry_max: Duration,
    shutdown: CancellationToken,
}

impl Attempt {
    async fn run(self, row: Claimed) {
        let result = deliver(&row, &self.channels).await;
        let outcome = outcome(&self.config, row.attempt, result);
        match &outcome {
            Outcome::Sent => Metrics::bump(&self.metrics.sent),
            Outcome::Retry { error, .. } => {
                Metrics::bump(&self.metrics.retried);
                tracing::warn!(outbox = row.id, attempt = row.attempt, %error, "send failed; will retry");
            }
            Outcome::Dead { error } => {
                Metrics::bump(&self.metrics.dead);
                tracing::error!(outbox = row.id, attempt = row.attempt, %error, "notification is dead");
            }
        }
        let recorded = match self.store.record(&row, &outcome).await {
            Err(err) if err.is_unavailable() => {
                // Hold the outcome until the store can write again; claim nothing meanwhile.
                self.unrecorded.fetch_add(1, Ordering::AcqRel);
                let waited = outage::patiently(
                    "recording a send",
                    self.retry_max,
                    &self.shutdown,
                    || async { outage::widen(self.store.record(&row, &outcome).await) },
                )
                .await;
                self.unrecorded.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Some(recorded) => recorded,
                    // Shutting down: the lease brings the row back at the next start.
                    None => return,
                }
            }
            other => outage::widen(other),
        };
        // If recording fails the lease runs out and the row is sent again, with the same
        // Message-ID: at-least-once, never lost.
        if let Err(err) = recorded {
            tracing::error!(outbox = row.id, error = %err, "recording a send failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let config = SenderConfig {
            backoff_base_ms: 1000,
            backoff_max_ms: 10_000,
            ..SenderConfig::default()
        };
        for _ in 0..50 {
            let first = backoff(&config, 1).as_millis();
            assert!((500..1000).contains(&first), "{first}");
            let third = backoff(&config, 3).as_millis();
            assert!((2000..4000).contains(&third), "{third}");
            let late = backoff(&config, 40).as_millis();
            assert!((5000..10_000).contains(&late), "{late}");
        }
    }

    #[test]
    fn outcomes_follow_attempts_and_permanence() {
        let config = SenderConfig {
            max_attempts: 3,
            ..SenderConfig::default()
        };
        let transient = || {
            Err(SendError {
                transient: true,
                reason: "421 busy".into(),
            })
        };
        assert!(matches!(
            outcome(&config, 1, transient()),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            outcome(&config, 3, transient()),
            Outcome::Dead { .. }
        ));
        let permanent = Err(SendError {
            transient: false,
            reason: "550 no such user".into(),
        });
        assert_eq!(
            outcome(&config, 1, permanent),
            Outcome::Dead {
                error: "550 no such user".into()
            }
        );
        assert_eq!(outcome(&config, 1, Ok(())), Outcome::Sent);
    }
}
