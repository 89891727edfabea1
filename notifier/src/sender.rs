//! The sender: waits for a free send slot, claims due outbox rows (never more than it has
//! free slots, so a crash can duplicate at most `concurrency` sends), grouped by
//! destination, renders each, sends it through the channel registered for its
//! destination's kind, and records the outcome: sent, retry later (exponential backoff with
//! jitter, never sooner than the channel asked), rate limited (later, without counting an
//! attempt), or dead after the last attempt or a permanent refusal.
//!
//! Every send is cut off after its channel's timeout, which must be shorter than the lease
//! (checked at start): a slow send ends before another claim can take its row. Recording is
//! fenced by the claim token, so should a send outlive its claim anyway, its late outcome
//! is dropped (logged and counted as a lost lease) instead of overwriting a newer one.
//!
//! While the store cannot write, the sender sends nothing new: an outcome that cannot be
//! recorded is kept and recorded once the store is back, and no row is claimed meanwhile.
//! The drain at shutdown is bounded too (`shutdown_grace_secs`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use tidings_store::{Claimed, OutboxKind, Outcome, Recorded, Store};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::channel::{Registry, SendResult};
use crate::email::EmailChannel;
use crate::outage::{self, Backoff};
use crate::render::Renderer;
use crate::{EmailConfig, Metrics, NotifierError, SenderConfig};

/// What the sender sends with: the channels by kind, and the renderer.
#[derive(Clone)]
pub struct Channels {
    /// One channel per destination kind.
    pub registry: Registry,
    /// Turns claimed rows into channel-neutral notifications.
    pub renderer: Renderer,
}

impl Channels {
    /// The channels configured today (email), with links under `base_url`.
    pub fn from_config(email: &EmailConfig, base_url: &str) -> Result<Channels, NotifierError> {
        Ok(Channels {
            registry: Registry::new().register(Arc::new(EmailChannel::from_config(email)?)),
            renderer: Renderer::new(base_url),
        })
    }
}

/// Refuses a lease that a send could outlast: every channel's timeout must be shorter.
pub fn check_lease(config: &SenderConfig, registry: &Registry) -> Result<(), NotifierError> {
    let lease = Duration::from_secs(config.lease_secs);
    for channel in registry.iter() {
        if lease <= channel.timeout() {
            return Err(NotifierError::SenderConfig {
                field: "lease_secs",
                reason: format!(
                    "{} s is not longer than channels.{}.timeout_secs ({} s): a send could \
                     outlast its claim and be sent twice; make the lease longer",
                    config.lease_secs,
                    channel.kind(),
                    channel.timeout().as_secs_f64()
                ),
            });
        }
    }
    Ok(())
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

fn later(wait: Duration) -> i64 {
    tidings_store::now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

/// What to record after an attempt.
pub fn outcome(config: &SenderConfig, attempt: i64, result: SendResult) -> Outcome {
    match result {
        SendResult::Sent => Outcome::Sent,
        SendResult::Permanent(error) => Outcome::Dead { error },
        SendResult::RateLimited(after) => Outcome::RateLimited {
            error: format!("rate limited by the channel for {} ms", after.as_millis()),
            at: later(after),
        },
        SendResult::Retry { reason, .. } if attempt >= config.max_attempts => Outcome::Dead {
            error: format!("gave up after {attempt} attempts: {reason}"),
        },
        SendResult::Retry { after, reason } => {
            let wait = backoff(config, attempt).max(after.unwrap_or_default());
            Outcome::Retry {
                error: reason,
                at: later(wait),
            }
        }
    }
}

/// A duration as a log line says it: whole seconds as `N s`, otherwise `N ms`.
pub fn spoken(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

/// Renders and sends one claimed row, within its channel's timeout.
async fn deliver(claimed: &Claimed, channels: &Channels) -> SendResult {
    if claimed.kind == OutboxKind::Notification && !claimed.destination.is_confirmed() {
        return SendResult::Permanent("destination is not confirmed".into());
    }
    let kind = claimed.destination.channel;
    let Some(channel) = channels.registry.get(kind) else {
        return SendResult::Retry {
            after: None,
            reason: format!("no {kind} channel is configured"),
        };
    };
    let rendered = match channels.renderer.render(claimed) {
        Ok(rendered) => rendered,
        Err(err) => return SendResult::Permanent(err.to_string()),
    };
    let timeout = channel.timeout();
    match tokio::time::timeout(timeout, channel.send(&claimed.destination, &rendered)).await {
        Ok(result) => result,
        Err(_) => SendResult::Retry {
            after: None,
            reason: format!(
                "no answer within {} (channels.{kind}.timeout_secs)",
                spoken(timeout)
            ),
        },
    }
}

/// Drains the outbox until `shutdown`. It waits for a free slot, then claims as many rows
/// as there are free slots; when nothing is due it waits for `wake` or `poll_ms`. While the
/// store is unavailable it waits, up to `retry_max` between attempts.
pub async fn run(
    store: Store,
    config: SenderConfig,
    channels: Channels,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    retry_max: Duration,
    shutdown: CancellationToken,
) -> Result<(), NotifierError> {
    check_lease(&config, &channels.registry)?;
    let concurrency = config.concurrency(&channels.registry);
    tracing::debug!(concurrency, "sending");
    let slots = Arc::new(Semaphore::new(concurrency));
    let lease_ms = i64::try_from(config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let idle = Duration::from_millis(config.poll_ms);
    // Outcomes go to one recorder, which writes whatever has gathered in one transaction.
    // A slot is freed only once its outcome is recorded: while the store cannot write, the
    // slots stay taken and nothing new is claimed or sent.
    let (done, outcomes) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record(
        store.clone(),
        outcomes,
        metrics.clone(),
        retry_max,
        shutdown.clone(),
    ));
    let mut outage = Backoff::new(retry_max);
    let gather = (concurrency / 4).max(1);
    let mut backlog = false;
    loop {
        // Free slots first: a claimed row starts sending at once, so its lease is spent on
        // sending, never on waiting for a slot. While work is queued, a claim waits for a
        // quarter of the slots to free up (they do within one send's time), so that one
        // round trip claims many rows.
        let want = if backlog { gather } else { 1 };
        let mut held = Vec::with_capacity(want);
        while held.len() < want {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => held.push(permit),
                    Err(_) => break,
                },
            }
        }
        if held.len() < want {
            break;
        }
        let free = (held.len() + slots.available_permits()) as i64;
        let batches = match store.claim_batches(free, lease_ms).await {
            Ok(batches) => {
                outage.reset();
                batches
            }
            Err(err) if err.is_unavailable() => {
                drop(held);
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
        };
        let claimed: usize = batches.iter().map(|b| b.rows.len()).sum();
        backlog = claimed as i64 == free;
        if batches.is_empty() {
            drop(held);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(idle) => {}
            }
            continue;
        }
        // One task drives the whole claim's sends at once: a task per send cost a spawn,
        // and often a wake-up of another thread, per notification.
        let mut sends = Vec::with_capacity(claimed);
        for row in batches.into_iter().flat_map(|batch| batch.rows) {
            // Only this loop takes slots, and it claimed no more than were free.
            let permit = match held.pop() {
                Some(permit) => permit,
                None => match slots.clone().acquire_owned().await {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            sends.push((row, permit));
        }
        let attempt = Attempt {
            config: config.clone(),
            channels: channels.clone(),
            metrics: metrics.clone(),
            done: done.clone(),
        };
        tokio::spawn(attempt.run_all(sends));
    }
    // Let sends in flight finish (they hold slots), for a bounded time: what is still in
    // flight after it is left to its lease, which the next start reclaims.
    let all = u32::try_from(concurrency).unwrap_or(u32::MAX);
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
    drop(done);
    if tokio::time::timeout(Duration::from_secs(1), recorder)
        .await
        .is_err()
    {
        tracing::warn!("outcomes still unrecorded at shutdown are left to their leases");
    }
    Ok(())
}

/// The sends of one claim; each outcome goes to the recorder with the slot it holds as soon
/// as that send ends.
struct Attempt {
    config: SenderConfig,
    channels: Channels,
    metrics: Arc<Metrics>,
    done: mpsc::UnboundedSender<Done>,
}

/// A finished send waiting to be recorded, holding its slot until it is.
struct Done {
    row: Claimed,
    outcome: Outcome,
    _slot: OwnedSemaphorePermit,
}

impl Attempt {
    async fn run_all(self, sends: Vec<(Claimed, OwnedSemaphorePermit)>) {
        let mut sends: FuturesUnordered<_> = sends
            .into_iter()
            .map(|(row, slot)| self.run(row, slot))
            .collect();
        while sends.next().await.is_some() {}
    }

    async fn run(&self, row: Claimed, slot: OwnedSemaphorePermit) {
        let result = deliver(&row, &self.channels).await;
        let outcome = outcome(&self.config, row.attempt, result);
        match &outcome {
            Outcome::Sent => Metrics::bump(&self.metrics.sent),
            Outcome::Retry { error, .. } => {
                Metrics::bump(&self.metrics.retried);
                tracing::warn!(outbox = row.id, attempt = row.attempt, %error, "send failed; will retry");
            }
            Outcome::RateLimited { error, .. } => {
                Metrics::bump(&self.metrics.rate_limited);
                tracing::info!(outbox = row.id, attempt = row.attempt, %error, "the channel asked to wait");
            }
            Outcome::Dead { error } => {
                Metrics::bump(&self.metrics.dead);
                tracing::error!(outbox = row.id, attempt = row.attempt, %error, "notification is dead");
            }
        }
        // The recorder is gone only at shutdown: the lease brings the row back.
        let _ = self.done.send(Done {
            row,
            outcome,
            _slot: slot,
        });
    }
}

/// The most outcomes recorded in one transaction.
const RECORD_BATCH: usize = 512;

/// Records outcomes as they come, all that have gathered in one transaction, until every
/// sender of outcomes is gone. While the store is unavailable it waits (holding the slots
/// of the outcomes it holds). If recording fails otherwise, the leases run out and the
/// rows are sent again, with the same uid: at-least-once, never lost.
async fn record(
    store: Store,
    mut outcomes: mpsc::UnboundedReceiver<Done>,
    metrics: Arc<Metrics>,
    retry_max: Duration,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let pairs: Vec<(&Claimed, &Outcome)> = batch.iter().map(|d| (&d.row, &d.outcome)).collect();
        let recorded = outage::patiently("recording sends", retry_max, &shutdown, || async {
            outage::widen(store.record_many(&pairs).await)
        })
        .await;
        match recorded {
            Some(Ok(recorded)) => {
                for (done, recorded) in batch.iter().zip(recorded) {
                    if recorded == Recorded::LeaseLost {
                        Metrics::bump(&metrics.leases_lost);
                        tracing::warn!(
                            outbox = done.row.id,
                            attempt = done.row.attempt,
                            "the claim was lost before its outcome was recorded (its lease ran \
                             out); the outcome is dropped and the row's newer claim decides"
                        );
                    }
                }
            }
            Some(Err(err)) => {
                tracing::error!(sends = batch.len(), error = %err, "recording sends failed")
            }
            // Shutting down: the leases bring the rows back at the next start.
            None => {}
        }
        batch.clear();
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
            backoff_base_ms: 10,
            backoff_max_ms: 10,
            ..SenderConfig::default()
        };
        let transient = |after| SendResult::Retry {
            after,
            reason: "421 busy".into(),
        };
        assert!(matches!(
            outcome(&config, 1, transient(None)),
            Outcome::Retry { .. }
        ));
        // A channel's retry-after wins over a shorter backoff.
        let before = tidings_store::now_ms();
        match outcome(&config, 1, transient(Some(Duration::from_secs(60)))) {
            Outcome::Retry { at, .. } => assert!(at >= before + 60_000, "{at}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome(&config, 3, transient(None)),
            Outcome::Dead { .. }
        ));
        // Rate limits never kill, however many attempts.
        match outcome(&config, 3, SendResult::RateLimited(Duration::from_secs(5))) {
            Outcome::RateLimited { at, .. } => assert!(at >= before + 5_000, "{at}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            outcome(&config, 1, SendResult::Permanent("550 no such user".into())),
            Outcome::Dead {
                error: "550 no such user".into()
            }
        );
        assert_eq!(outcome(&config, 1, SendResult::Sent), Outcome::Sent);
    }
}
