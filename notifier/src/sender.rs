//! The sender: waits for a free send slot, claims due outbox rows (never more than it has
//! free slots, so a crash can duplicate at most `concurrency` sends), grouped by
//! destination, renders each, sends it through the channel registered for its
//! destination's kind, and records the outcome (in the same transaction as its next claim,
//! one round trip per batch): sent, retry later (exponential backoff with
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
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::channel::{Registry, SendResult};
use crate::email::EmailChannel;
use crate::irc::IrcChannel;
use crate::matrix::MatrixChannel;
use crate::ntfy::NtfyChannel;
use crate::outage::{self, Backoff};
use crate::render::Renderer;
use crate::webhook::WebhookChannel;
use crate::{
    EmailConfig, IrcConfig, MatrixConfig, Metrics, NotifierError, NtfyConfig, SenderConfig,
    WebhookConfig,
};

/// What the sender sends with: the channels by kind, and the renderer.
#[derive(Clone)]
pub struct Channels {
    /// One channel per destination kind.
    pub registry: Registry,
    /// Turns claimed rows into channel-neutral notifications.
    pub renderer: Renderer,
}

impl Channels {
    /// The email channel, with links under `base_url`.
    pub fn from_config(email: &EmailConfig, base_url: &str) -> Result<Channels, NotifierError> {
        Ok(Channels {
            registry: Registry::new().register(Arc::new(EmailChannel::from_config(email)?)),
            renderer: Renderer::new(base_url),
        })
    }

    /// With the webhook channel too, if `webhook` enables it.
    pub fn with_webhook(mut self, webhook: &WebhookConfig) -> Result<Channels, NotifierError> {
        if webhook.enabled {
            let channel = WebhookChannel::from_config(webhook, &self.user_agent())?;
            self.registry = self.registry.register(Arc::new(channel));
        }
        Ok(self)
    }

    /// With the ntfy channel too, if `ntfy` enables it.
    pub fn with_ntfy(mut self, ntfy: &NtfyConfig) -> Result<Channels, NotifierError> {
        if ntfy.enabled {
            let channel = NtfyChannel::from_config(ntfy, &self.user_agent())?;
            self.registry = self.registry.register(Arc::new(channel));
        }
        Ok(self)
    }

    /// With the Matrix channel too, if `matrix` enables it.
    pub fn with_matrix(mut self, matrix: &MatrixConfig) -> Result<Channels, NotifierError> {
        if matrix.enabled {
            let channel = MatrixChannel::from_config(matrix, &self.user_agent())?;
            self.registry = self.registry.register(Arc::new(channel));
        }
        Ok(self)
    }

    /// With the IRC channel too, if `irc` enables it.
    pub fn with_irc(mut self, irc: &IrcConfig) -> Result<Channels, NotifierError> {
        if irc.enabled {
            let channel = IrcChannel::from_config(irc)?;
            self.registry = self.registry.register(Arc::new(channel));
        }
        Ok(self)
    }

    /// How the HTTP channels name this hub to the servers they post to.
    fn user_agent(&self) -> String {
        format!(
            "Tidings/{} (+{})",
            env!("CARGO_PKG_VERSION"),
            self.renderer.links().base()
        )
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
        SendResult::Sent | SendResult::Confirmed => Outcome::Sent,
        SendResult::Permanent(error) | SendResult::Gone(error) => Outcome::Dead { error },
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
    // Only a confirmation goes to an unconfirmed (or since disabled) destination.
    if claimed.kind != OutboxKind::Confirmation && !claimed.destination.is_confirmed() {
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

/// Drains the outbox until `shutdown`. Each round trip to the store records the outcomes
/// of the sends that ended and claims as many rows as that leaves slots free, in one
/// transaction; the claimed rows start sending at once. While work is queued, a round trip
/// waits for a quarter of the slots (they free up within one send's time), so that each
/// moves many rows; otherwise every ended send is recorded at once, and when nothing is due
/// the sender waits for `wake` or `poll_ms`. While the store is unavailable it waits, up to
/// `retry_max` between attempts, and sends nothing new: a slot is free again only once its
/// outcome is recorded.
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
    let lease_ms = i64::try_from(config.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let idle = Duration::from_millis(config.poll_ms);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let (done, mut outcomes) = mpsc::unbounded_channel();
    let attempt = Attempt {
        config: config.clone(),
        channels: channels.clone(),
        metrics: metrics.clone(),
        done,
    };
    let gather = (concurrency / 4).max(1);
    // Sends started and not ended; ended sends whose outcomes wait for the next round trip.
    // Both hold a slot.
    let (mut in_flight, mut ended) = (0usize, Vec::<Done>::new());
    let mut first_ended = tokio::time::Instant::now();
    let (mut backlog, mut poked, mut stop_by) = (false, true, None);
    let mut outage = Backoff::new(retry_max);
    loop {
        while let Ok(end) = outcomes.try_recv() {
            if ended.is_empty() {
                first_ended = tokio::time::Instant::now();
            }
            in_flight -= 1;
            ended.extend(end);
        }
        let claimable = concurrency - in_flight;
        let stopping = stop_by.is_some();
        let go = if stopping {
            !ended.is_empty()
        } else if backlog {
            claimable >= gather || (!ended.is_empty() && first_ended.elapsed() >= RECORD_WITHIN)
        } else {
            !ended.is_empty() || poked
        };
        if go {
            let limit = if stopping { 0 } else { claimable as i64 };
            let pairs: Vec<(&Claimed, &Outcome)> =
                ended.iter().map(|d| (&d.row, &d.outcome)).collect();
            match store.record_and_claim(&pairs, limit, lease_ms).await {
                Ok(cycle) => {
                    outage.reset();
                    report_lost_leases(&ended, &cycle.recorded, &metrics);
                    apply_effects(&store, &mut ended, &cycle.recorded);
                    ended.clear();
                    poked = false;
                    let batches = cycle.claimed.unwrap_or_else(|err| {
                        tracing::error!(error = %err, "reading claimed outbox rows failed; they wait for their leases to run out");
                        Vec::new()
                    });
                    let rows: Vec<Claimed> =
                        batches.into_iter().flat_map(|batch| batch.rows).collect();
                    backlog = limit > 0 && rows.len() as i64 == limit;
                    if !rows.is_empty() {
                        in_flight += rows.len();
                        // One task drives the whole claim's sends at once: a task per send
                        // cost a spawn, and often a wake-up of another thread, per
                        // notification.
                        tokio::spawn(attempt.clone().run_all(rows));
                    }
                }
                Err(err) if err.is_unavailable() => {
                    let wait = outage.fail();
                    tracing::warn!(error = %err, attempt = outage.attempts(), "the database is unavailable; sending waits");
                    if !outage::pause(&shutdown, wait).await {
                        // Shutting down: the leases bring the rows back at the next start.
                        break;
                    }
                }
                Err(err) => {
                    // The leases run out and the rows are sent again, with the same uid:
                    // at-least-once, never lost.
                    tracing::error!(sends = ended.len(), error = %err, "recording sends and claiming failed");
                    ended.clear();
                    (backlog, poked) = (false, false);
                }
            }
            continue;
        }
        if stopping && in_flight == 0 {
            break;
        }
        let deadline = stop_by.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if !stopping => {
                stop_by = Some(tokio::time::Instant::now() + grace);
            }
            Some(end) = outcomes.recv() => {
                if ended.is_empty() {
                    first_ended = tokio::time::Instant::now();
                }
                in_flight -= 1;
                ended.extend(end);
            }
            _ = tokio::time::sleep_until(first_ended + RECORD_WITHIN), if backlog && !ended.is_empty() => {}
            _ = tokio::time::sleep_until(deadline), if stopping => {
                // What is still in flight is left to its lease, which the next start
                // reclaims.
                tracing::warn!(
                    in_flight,
                    grace_secs = config.shutdown_grace_secs,
                    "sends still in flight at shutdown are left to their leases"
                );
                break;
            }
            _ = wake.notified(), if !backlog && !stopping => poked = true,
            _ = tokio::time::sleep(idle), if !backlog && !stopping => poked = true,
        }
    }
    Ok(())
}

/// The longest an ended send waits for its outcome to be recorded while work is queued (a
/// round trip then waits for a quarter of the slots): well within any lease, and it bounds
/// how long a slow channel's few ended sends hold their slots.
const RECORD_WITHIN: Duration = Duration::from_millis(100);

/// What a recorded send does to its destination: confirms it (a webhook answered its
/// challenge) or disables it (a webhook answered 410 Gone). Applied only once the outcome
/// is recorded under its claim, off the sender's loop (these are rare, and each is one
/// small transaction).
fn apply_effects(store: &Store, ended: &mut [Done], recorded: &[Recorded]) {
    for (done, recorded) in ended.iter_mut().zip(recorded) {
        let Some(effect) = done.effect.take() else {
            continue;
        };
        if *recorded != Recorded::Current {
            continue;
        }
        let (store, destination) = (store.clone(), done.row.destination.id);
        tokio::spawn(async move {
            // A store that is briefly unavailable (SQLite busy, PostgreSQL restarting) must
            // not cost the confirmation: a few tries, a second apart at most.
            let mut wait = Duration::from_millis(100);
            for attempt in 1..=EFFECT_TRIES {
                let done = match &effect {
                    Effect::Confirm(token) => store.confirm_destination(token).await,
                    Effect::Disable(reason) => store.disable_destination(destination, reason).await,
                };
                match (done, &effect) {
                    (Ok(d), Effect::Confirm(_)) => {
                        tracing::info!(destination, address = %d.address, "confirmed: the destination answered its challenge");
                        return;
                    }
                    (Ok(d), Effect::Disable(reason)) => {
                        tracing::warn!(destination, address = %d.address, %reason, "destination disabled until its owner confirms it again");
                        return;
                    }
                    (Err(err), _) if err.is_unavailable() && attempt < EFFECT_TRIES => {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(1));
                    }
                    (Err(err), Effect::Confirm(_)) => {
                        tracing::warn!(destination, error = %err, "the destination answered its challenge, but confirming it failed; its owner can resend the challenge");
                        return;
                    }
                    (Err(err), Effect::Disable(_)) => {
                        tracing::error!(destination, error = %err, "disabling a gone destination failed");
                        return;
                    }
                }
            }
        });
    }
}

/// How many times a destination's confirmation or disabling is tried while the store is
/// unavailable.
const EFFECT_TRIES: u32 = 8;

/// Logs and counts the outcomes whose claim had been lost.
fn report_lost_leases(ended: &[Done], recorded: &[Recorded], metrics: &Metrics) {
    for (done, recorded) in ended.iter().zip(recorded) {
        if *recorded == Recorded::LeaseLost {
            Metrics::bump(&metrics.leases_lost);
            tracing::warn!(
                outbox = done.row.id,
                attempt = done.row.attempt,
                "the claim was lost before its outcome was recorded (its lease ran out); the \
                 outcome is dropped and the row's newer claim decides"
            );
        }
    }
}

/// The sends of one claim; each outcome goes back to the sender's loop as soon as that send
/// ends.
#[derive(Clone)]
struct Attempt {
    config: SenderConfig,
    channels: Channels,
    metrics: Arc<Metrics>,
    done: mpsc::UnboundedSender<Option<Done>>,
}

/// A finished send waiting to be recorded.
struct Done {
    row: Claimed,
    outcome: Outcome,
    /// What its recording does to the destination, if anything.
    effect: Option<Effect>,
}

/// A change to a send's destination that its result asks for.
enum Effect {
    /// Confirm it with this confirmation token.
    Confirm(String),
    /// Disable it, for this reason.
    Disable(String),
}

impl Attempt {
    async fn run_all(self, rows: Vec<Claimed>) {
        let mut sends: FuturesUnordered<_> = rows.into_iter().map(|row| self.run(row)).collect();
        while sends.next().await.is_some() {}
    }

    async fn run(&self, row: Claimed) {
        // Should this send never end (a panic in a channel), its slot still comes back.
        let slot = Slot {
            done: Some(self.done.clone()),
            row: row.id,
        };
        let result = deliver(&row, &self.channels).await;
        let effect = match &result {
            SendResult::Confirmed => row.confirmation_token().map(|t| Effect::Confirm(t.into())),
            SendResult::Gone(reason) => Some(Effect::Disable(reason.clone())),
            _ => None,
        };
        let outcome = outcome(&self.config, row.attempt, result);
        match &outcome {
            Outcome::Sent => {
                Metrics::bump(&self.metrics.sent);
                if let (OutboxKind::Notification, Some(message)) = (&row.kind, &row.message) {
                    self.metrics.delivered(
                        row.destination.channel.as_str(),
                        message.received_at,
                        tidings_store::now_ms(),
                    );
                }
            }
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
        slot.end(Done {
            row,
            outcome,
            effect,
        });
    }
}

/// A send's slot: given back with the send's outcome, or empty-handed if the send is
/// dropped before it ends (the row then waits for its lease to run out).
struct Slot {
    done: Option<mpsc::UnboundedSender<Option<Done>>>,
    row: i64,
}

impl Slot {
    fn end(mut self, done: Done) {
        if let Some(to) = self.done.take() {
            // The loop is gone only once it stopped waiting: the lease brings the row back.
            let _ = to.send(Some(done));
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(to) = self.done.take() {
            tracing::error!(
                outbox = self.row,
                "a send ended without an outcome; the row is sent again once its lease runs out"
            );
            let _ = to.send(None);
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
