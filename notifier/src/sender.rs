//! The sender: claims due outbox rows (never more than it has free slots, so a crash can
//! duplicate at most `concurrency` mails), sends each through its channel, and records the
//! outcome: sent, retry later (exponential backoff with jitter), or dead after the last
//! attempt or a permanent refusal.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tidings_store::{Claimed, OutboxKind, Outcome, Store};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::email::{self, Mailer, SendError};
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

/// Drains the outbox until `shutdown`; wakes on `wake` or every `poll_ms`.
pub async fn run(
    store: Store,
    config: SenderConfig,
    channels: Channels,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let lease_ms = (config.lease_secs as i64).saturating_mul(1000);
    loop {
        let free = slots.available_permits() as i64;
        let claimed = if free > 0 {
            store.claim(free, lease_ms).await.unwrap_or_else(|err| {
                tracing::error!(error = %err, "claiming outbox rows failed");
                Vec::new()
            })
        } else {
            Vec::new()
        };
        let busy = !claimed.is_empty();
        for row in claimed {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let (store, config, channels, metrics) = (
                store.clone(),
                config.clone(),
                channels.clone(),
                metrics.clone(),
            );
            tokio::spawn(async move {
                let result = deliver(&row, &channels).await;
                let outcome = outcome(&config, row.attempt, result);
                match &outcome {
                    Outcome::Sent => Metrics::bump(&metrics.sent),
                    Outcome::Retry { error, .. } => {
                        Metrics::bump(&metrics.retried);
                        tracing::warn!(outbox = row.id, attempt = row.attempt, %error, "send failed; will retry");
                    }
                    Outcome::Dead { error } => {
                        Metrics::bump(&metrics.dead);
                        tracing::error!(outbox = row.id, attempt = row.attempt, %error, "notification is dead");
                    }
                }
                // If recording fails the lease runs out and the row is sent again, with the
                // same Message-ID: at-least-once, never lost.
                if let Err(err) = store.record(&row, &outcome).await {
                    tracing::error!(outbox = row.id, error = %err, "recording a send failed");
                }
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
    // Let sends in flight finish (they hold slots) before returning.
    let _ = slots.acquire_many(config.concurrency.max(1) as u32).await;
    Ok(())
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
