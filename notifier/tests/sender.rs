//! The sender against a test-only channel (issue 9): a channel's retry-after, rate limit and
//! permanent refusal are each honoured, a sent row is recorded, a hanging send is cut off
//! at the channel's timeout, the lease must outlast that timeout, and a queue drains as fast
//! as slots free up (no fixed sleep while work is queued), with as many sends in flight as
//! configured, or, unset, as the channel does well; a send lost to a panic gives its slot
//! back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tidings_notifier::channel::{Channel, Registry, SendFuture, SendResult};
use tidings_notifier::render::{Rendered, Renderer};
use tidings_notifier::sender::{self, Channels};
use tidings_notifier::{Metrics, NotifierError, SenderConfig};
use tidings_rules::{Message, Metadata};
use tidings_store::{ChannelKind, Destination, Notification, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::support::{store, subscriber};

/// A channel for tests only: answers each send with the next scripted result (then `Sent`),
/// after `delay`, and notes when each send started and for which notification, and the
/// most sends it had in flight at once. It says it does [`PARALLELISM`] sends well at once.
struct TestOnlyChannel {
    script: Mutex<VecDeque<SendResult>>,
    delay: Duration,
    timeout: Duration,
    sends: Mutex<Vec<(String, Instant)>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// The test-only channel's own parallelism.
const PARALLELISM: usize = 3;

impl TestOnlyChannel {
    fn new(script: Vec<SendResult>, delay: Duration) -> Arc<TestOnlyChannel> {
        Arc::new(TestOnlyChannel {
            script: Mutex::new(script.into()),
            delay,
            timeout: Duration::from_secs(1),
            sends: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        })
    }

    fn sends(&self) -> Vec<(String, Instant)> {
        self.sends.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Channel for TestOnlyChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn parallelism(&self) -> usize {
        PARALLELISM
    }

    fn send<'a>(&'a self, _to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(async move {
            if let Ok(mut sends) = self.sends.lock() {
                sends.push((rendered.id.clone(), Instant::now()));
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            next.unwrap_or(SendResult::Sent)
        })
    }
}

fn config() -> SenderConfig {
    SenderConfig {
        concurrency: Some(4),
        lease_secs: 5,
        max_attempts: 2,
        backoff_base_ms: 10,
        backoff_max_ms: 10,
        poll_ms: 20,
        shutdown_grace_secs: 5,
    }
}

/// A store with `count` notifications queued for one confirmed destination.
async fn queued(count: usize) -> (tempfile::TempDir, Store) {
    let (dir, store) = store().await;
    let (_, destination) = subscriber(&store, "alice", "topic ~ \"**\"").await;
    for i in 0..count {
        let message = Message::new(format!("m-{i}"), "org.example.test", serde_json::json!({}));
        let metadata = Metadata {
            summary: format!("message {i}"),
            ..Metadata::default()
        };
        let id = store
            .insert_message(&message, &metadata, "test")
            .await
            .expect("archived")
            .expect("new");
        let to = Notification {
            destination_id: destination,
            filters: vec![(1, "mine".into())],
            digest: None,
        };
        store.complete_message(id, &[to]).await.expect("queued");
    }
    (dir, store)
}

/// Runs the real sender with `channel` until `done` holds of the outbox counts (pending,
/// sending, sent, dead), or fails after 20 s.
async fn drain(
    store: &Store,
    config: SenderConfig,
    channel: Arc<dyn Channel>,
    done: impl Fn((i64, i64, i64, i64)) -> bool,
) -> Result<(), NotifierError> {
    let shutdown = CancellationToken::new();
    let channels = Channels {
        registry: Registry::new().register(channel),
        renderer: Renderer::new("http://tidings.test"),
    };
    let running = tokio::spawn(sender::run(
        store.clone(),
        config,
        channels,
        Arc::new(Metrics::default()),
        Arc::new(Notify::new()),
        Duration::from_millis(100),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if running.is_finished() {
            return running.await.unwrap_or(Ok(()));
        }
        let counts = store.outbox_counts().await.expect("counts");
        if done(counts) {
            break;
        }
        assert!(Instant::now() < deadline, "not drained: {counts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap_or(Ok(()))
}

fn gaps(sends: &[(String, Instant)]) -> Vec<Duration> {
    sends.windows(2).map(|w| w[1].1 - w[0].1).collect()
}

fn finished(counts: (i64, i64, i64, i64)) -> bool {
    counts.0 == 0 && counts.1 == 0
}

#[tokio::test]
async fn sent_is_recorded_once() {
    let (_dir, store) = queued(1).await;
    let channel = TestOnlyChannel::new(vec![], Duration::ZERO);
    drain(&store, config(), channel.clone(), finished)
        .await
        .expect("sender");
    assert_eq!(store.outbox_counts().await.expect("counts"), (0, 0, 1, 0));
    assert_eq!(channel.sends().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (_dir, store) = queued(1).await;
    let after = Duration::from_millis(1500);
    let channel = TestOnlyChannel::new(
        vec![SendResult::Retry {
            after: Some(after),
            reason: "503 come back later".into(),
        }],
        Duration::ZERO,
    );
    drain(&store, config(), channel.clone(), finished)
        .await
        .expect("sender");
    let sends = channel.sends();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert!(
        gaps(&sends)[0] >= after,
        "re-sent early: {:?}",
        gaps(&sends)
    );
    assert_eq!(store.outbox_counts().await.expect("counts"), (0, 0, 1, 0));
}

#[tokio::test]
async fn rate_limits_are_honoured_and_cost_no_attempt() {
    let (_dir, store) = queued(1).await;
    let wait = Duration::from_millis(400);
    // Three rate limits with max_attempts = 2: had they counted, the row would be dead.
    let channel = TestOnlyChannel::new(vec![SendResult::RateLimited(wait); 3], Duration::ZERO);
    drain(&store, config(), channel.clone(), finished)
        .await
        .expect("sender");
    let sends = channel.sends();
    assert_eq!(sends.len(), 4, "{sends:?}");
    assert!(
        gaps(&sends).iter().all(|g| *g >= wait),
        "re-sent early: {:?}",
        gaps(&sends)
    );
    assert_eq!(store.outbox_counts().await.expect("counts"), (0, 0, 1, 0));
}

#[tokio::test]
async fn permanent_refusals_are_dead_at_once() {
    let (_dir, store) = queued(1).await;
    let channel = TestOnlyChannel::new(
        vec![SendResult::Permanent("550 no such user".into())],
        Duration::ZERO,
    );
    drain(&store, config(), channel.clone(), finished)
        .await
        .expect("sender");
    assert_eq!(store.outbox_counts().await.expect("counts"), (0, 0, 0, 1));
    assert_eq!(channel.sends().len(), 1);
    let dead = store.dead_notifications(10).await.expect("dead");
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such user"));
}

#[tokio::test]
async fn a_hanging_send_is_cut_off_at_the_channel_timeout() {
    let (_dir, store) = queued(1).await;
    let channel = Arc::new(TestOnlyChannel {
        script: Mutex::new(VecDeque::new()),
        delay: Duration::from_secs(3600),
        timeout: Duration::from_millis(300),
        sends: Mutex::new(Vec::new()),
        in_flight: AtomicUsize::new(0),
        most_in_flight: AtomicUsize::new(0),
    });
    let config = SenderConfig {
        max_attempts: 1,
        ..config()
    };
    let started = Instant::now();
    drain(&store, config, channel.clone(), finished)
        .await
        .expect("sender");
    assert!(started.elapsed() < Duration::from_secs(5));
    let dead = store.dead_notifications(10).await.expect("dead");
    let error = dead[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("no answer within 300 ms"), "{error}");
}

#[tokio::test]
async fn a_lease_not_longer_than_the_send_timeout_is_refused() {
    let (_dir, store) = queued(0).await;
    let channel = TestOnlyChannel::new(vec![], Duration::ZERO);
    let config = SenderConfig {
        lease_secs: 1,
        ..config()
    };
    let err = drain(&store, config, channel, |_| false)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("sender.lease_secs: 1 s is not longer than channels.email.timeout_secs"),
        "{err}"
    );
}

// Issue 9: with every slot busy the sender slept `poll_ms` instead of waiting for a slot,
// so throughput was concurrency ÷ poll interval. With a 10 s poll, 40 sends of 20 ms on 4
// slots take about 0.2 s only if the sender waits on the slots themselves.
#[tokio::test]
async fn a_queue_drains_as_slots_free_up() {
    let (_dir, store) = queued(40).await;
    let channel = TestOnlyChannel::new(vec![], Duration::from_millis(20));
    let config = SenderConfig {
        poll_ms: 10_000,
        ..config()
    };
    let started = Instant::now();
    drain(&store, config, channel.clone(), |c| c.2 == 40)
        .await
        .expect("sender");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let mut ids: Vec<String> = channel.sends().into_iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "each sent once");
    // `sender.concurrency = 4` wins over the channel's own 3.
    assert_eq!(channel.most_in_flight.load(Ordering::SeqCst), 4);
}

// Unset, `sender.concurrency` is what the channels do well (the mailbox folder 256, SMTP 64):
// never more sends in flight than the channel said, and that many while work is queued.
#[tokio::test]
async fn unset_concurrency_is_the_channels_own() {
    let (_dir, store) = queued(30).await;
    let channel = TestOnlyChannel::new(vec![], Duration::from_millis(20));
    let config = SenderConfig {
        concurrency: None,
        ..config()
    };
    drain(&store, config, channel.clone(), |c| c.2 == 30)
        .await
        .expect("sender");
    assert_eq!(channel.sends().len(), 30);
    assert_eq!(channel.most_in_flight.load(Ordering::SeqCst), PARALLELISM);
}

/// A channel for tests only whose first send panics; the rest are sent.
struct PanicsOnceChannel {
    sends: AtomicUsize,
}

impl Channel for PanicsOnceChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn parallelism(&self) -> usize {
        1
    }

    fn send<'a>(&'a self, _to: &'a Destination, _rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(async move {
            if self.sends.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a channel bug (this panic is the test)");
            }
            SendResult::Sent
        })
    }
}

/// A send that never ends (here, a channel that panics) gives its slot back: with one slot,
/// the other rows are still sent, and the row whose send was lost is sent once its lease
/// runs out.
#[tokio::test]
async fn a_lost_send_gives_its_slot_back() {
    let (_dir, store) = queued(3).await;
    let channel = Arc::new(PanicsOnceChannel {
        sends: AtomicUsize::new(0),
    });
    let config = SenderConfig {
        concurrency: Some(1),
        lease_secs: 2,
        ..config()
    };
    drain(&store, config, channel.clone(), finished)
        .await
        .expect("sender");
    assert_eq!(store.outbox_counts().await.expect("counts"), (0, 0, 3, 0));
    assert_eq!(
        channel.sends.load(Ordering::SeqCst),
        4,
        "one lost, then three sent"
    );
}
