//! Issue 12: the multi-process fault test. Three `tidings notifier` processes and two
//! `tidings sender` processes on one PostgreSQL and one RabbitMQ, both of the test's own
//! (their own ports and data folders, not the machine's), while a publisher sends a burst of
//! fedora-messaging messages over AMQP, each of which should become one mail:
//!
//! - one notifier is killed with SIGKILL once it has ingested some (its unacknowledged
//!   deliveries come again to the others);
//! - one sender is killed with SIGKILL once it has sent some (its claimed rows are sent by
//!   the other once their lease runs out: the in-flight window);
//! - the RabbitMQ node is stopped, left down a few seconds and started again (the publisher
//!   retries what was not confirmed; the notifiers connect again by themselves);
//! - the PostgreSQL server is stopped, left down a few seconds and started again (the
//!   notifiers hold what they consumed, unacknowledged, until it is archived; the senders
//!   hold their outcomes until they are recorded).
//!
//! At the end every message is archived exactly once, every expected mail arrived, and a
//! mail arrived twice only inside the in-flight window, counted and bounded below.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::amqp::{about_alice, wait_stats_for};
use crate::support::{
    message_id, timed_out_sends, wait_for, Broker, Hub, PgServer, RabbitServer, Smtp,
};

/// Messages in the burst, each about alice: one mail each.
const TOTAL: usize = 500;
/// Messages per publish (one connection, publisher confirms).
const CHUNK: usize = 20;
/// The pause between chunks: the burst lasts long enough for every fault to land in it.
const PACE: Duration = Duration::from_millis(400);
/// Each sender's sends in flight (`sender.concurrency`): a killed sender's claimed rows, the
/// most it can leave to be sent again.
const CONCURRENCY: usize = 8;
/// `sender.lease_secs`: longer than the database's outage, so that the surviving sender's
/// claims outlive it and only the killed sender's rows are taken over.
const LEASE_SECS: u64 = 15;
/// How long the broker stays down.
const BROKER_OUTAGE: Duration = Duration::from_secs(4);
/// How long the database stays down: longer than the store's pool waits for a connection
/// (5 s), so that archiving fails and ingest's own waiting is what holds the messages.
const DATABASE_OUTAGE: Duration = Duration::from_secs(8);
/// How long the mail server waits before answering each mail.
const SMTP_DELAY: Duration = Duration::from_millis(300);
const INGESTED: &str = "tidings_messages_ingested_total";
const DUPLICATES: &str = "tidings_messages_duplicate_total";
const SENT: &str = "tidings_notifications_sent_total";
const LEASES_LOST: &str = "tidings_outbox_leases_lost_total";

#[test]
fn notifiers_and_senders_survive_kills_and_restarts_of_the_broker_and_the_database() {
    let Some(pg) = PgServer::start() else {
        return;
    };
    let started = Instant::now();
    let mut rabbit = RabbitServer::start();
    let broker = Broker::at(&rabbit.url(), "faults");
    let tmp = tempfile::tempdir().expect("temp dir");
    // A mail server that keeps each mail at once and answers 300 ms later: a sender busy
    // with the burst has sends in flight, so the one killed leaves mails delivered but not
    // recorded.
    let smtp = Smtp::start_slow(tmp.path(), SMTP_DELAY);
    let mut hub = Hub::new(Some(&smtp), Some(&pg.url()));
    broker.configure(&mut hub);
    for (key, value) in [
        // A small window, so that every notifier has work and the killed one had some.
        ("TIDINGS_BUS__AMQP__PREFETCH", "20".to_string()),
        ("TIDINGS_SENDER__CONCURRENCY", CONCURRENCY.to_string()),
        ("TIDINGS_SENDER__LEASE_SECS", LEASE_SECS.to_string()),
        ("TIDINGS_CHANNELS__EMAIL__TIMEOUT_SECS", "5".to_string()),
        // Back to work within a second of the database's return.
        ("TIDINGS_DATABASE__RETRY_MAX_MS", "1000".to_string()),
    ] {
        hub.env.insert(key.into(), value);
    }
    hub.run(&["migrate"]);
    hub.user_with_filter("alice", "alice@example.org", "usernames has $me");
    let mut notifiers = hub.spawn_amqp_notifiers(3);
    let mut senders: Vec<_> = (1..=2)
        .map(|n| hub.spawn_role("sender", &format!("sender-{n}"), &[]))
        .collect();
    eprintln!("everything up after {:?}", started.elapsed());

    // The burst goes on in steps, so that each fault lands in the middle of it.
    let publisher = Publisher::start(rabbit.url(), broker.exchange.clone());
    let mid_burst = |fault: &str| {
        let published = publisher.published();
        eprintln!(
            "{fault} after {:?}: {published} of {TOTAL} published, {} mails",
            started.elapsed(),
            smtp.count()
        );
        assert!(published < TOTAL, "{fault} came after the burst");
    };

    publisher.allow(100);
    wait_for(
        "the first notifier to ingest",
        Duration::from_secs(60),
        || (notifiers[0].counter(INGESTED) > 0).then_some(()),
    );
    notifiers[0].kill();
    mid_burst("notifier-1 killed");

    // Killed while it sends: some of its claims are sent and not yet recorded.
    publisher.allow(200);
    wait_for(
        "the first sender to be busy",
        Duration::from_secs(60),
        || {
            let sent = senders[0].counter(SENT);
            // Mails the server has kept and not yet answered: sends in flight.
            let kept_unanswered = smtp.count() as u64 > sent + senders[1].counter(SENT);
            (sent >= 10 && kept_unanswered).then_some(())
        },
    );
    senders[0].kill();
    mid_burst("sender-1 killed");

    // The broker goes while the burst is being published and consumed: the publisher's
    // chunk in flight is not confirmed (it publishes it again), the notifiers' unsettled
    // deliveries come again once they consume again.
    publisher.allow(350);
    publisher.wait_published(240);
    rabbit.stop();
    mid_burst("RabbitMQ stopped");
    std::thread::sleep(BROKER_OUTAGE);
    rabbit.restart();
    for notifier in &notifiers[1..] {
        wait_for(
            &format!("{} to consume again", notifier.name),
            // Its backoff doubles up to 30 s while the node boots.
            Duration::from_secs(120),
            || (notifier.log().matches("AMQP consumer connected").count() >= 2).then_some(()),
        );
    }
    eprintln!("consuming again after {:?}", started.elapsed());

    // The database goes while messages are consumed, matched and sent; more are published
    // meanwhile, and wait with the notifiers (unacknowledged) or in the queue.
    publisher.allow(450);
    publisher.wait_published(380);
    pg.stop();
    mid_burst("PostgreSQL stopped");
    std::thread::sleep(DATABASE_OUTAGE);
    pg.resume();
    mid_burst("PostgreSQL started again");

    publisher.finish();
    eprintln!("all published after {:?}", started.elapsed());
    // Archived exactly once each: ids are unique in the archive, so TOTAL rows is every
    // message, none missing, whatever was redelivered or published twice.
    let stats = wait_stats_for(
        &hub,
        "every message archived",
        Duration::from_secs(120),
        |s| s["messages"] == TOTAL && s["processed"] == TOTAL,
    );
    assert_eq!(stats["rejected"], 0, "{stats}");
    // Every expected mail, and then no send left pending or claimed (a late second copy
    // would come from one of those).
    let counts = wait_for("every expected mail", Duration::from_secs(120), || {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for raw in smtp.mails() {
            *counts.entry(message_id(&raw)).or_default() += 1;
        }
        (counts.len() >= TOTAL).then_some(counts)
    });
    let stats = wait_stats_for(&hub, "the outbox drained", Duration::from_secs(60), |s| {
        s["outbox"]["pending"] == 0 && s["outbox"]["sending"] == 0
    });
    eprintln!("all mail after {:?}: {stats}", started.elapsed());
    assert_eq!(counts.len(), TOTAL, "one mail per message: {stats}");
    assert_eq!(stats["outbox"]["sent"], TOTAL, "{stats}");
    assert_eq!(stats["outbox"]["dead"], 0, "{stats}");

    // Twice only inside the in-flight window: the killed sender's claimed rows (at most its
    // concurrency), plus any send cut off by its time limit (the server may have taken it)
    // and any outcome that lost its lease.
    let resent: usize = counts.values().map(|n| n - 1).sum();
    let timed_out: usize = senders.iter().map(|s| timed_out_sends(&s.log())).sum();
    let leases_lost = senders[1].counter(LEASES_LOST) as usize;
    let bound = CONCURRENCY + timed_out + leases_lost;
    eprintln!(
        "mails twice: {resent} (bound {bound}: {CONCURRENCY} in flight at the kill, \
         {timed_out} timed out, {leases_lost} leases lost); notifiers' duplicates dropped: {:?}",
        notifiers[1..]
            .iter()
            .map(|n| n.counter(DUPLICATES))
            .collect::<Vec<_>>()
    );
    assert!(
        resent <= bound,
        "{resent} mails sent twice, more than the in-flight window of {bound}"
    );
    assert!(senders[1].counter(SENT) > 0);
    // The survivors waited out both outages instead of exiting, and saw them.
    for survivor in notifiers[1..].iter().chain(&senders[1..]) {
        survivor.assert_running();
        let log = survivor.log();
        eprintln!(
            "{}: {} line(s) about the database being unavailable, {} about AMQP; {}",
            survivor.name,
            log.matches("database is unavailable").count(),
            log.lines().filter(|l| l.contains("AMQP")).count(),
            log.lines()
                .filter(|l| l.contains("AMQP") || l.contains("unavailable"))
                .take(12)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // Nothing left behind in the broker: every delivery was acknowledged.
    let check = Broker::at(&rabbit.url(), "faults");
    assert_eq!(check.waiting(&check.queue), 0);
    assert_eq!(check.waiting(&format!("{}.dead", check.queue)), 0);
    eprintln!("done after {:?}", started.elapsed());
}

/// Publishes the burst from a thread of its own, `CHUNK` messages at a time with publisher
/// confirms, retrying a chunk until the broker confirms it (while the node is down, say). A
/// chunk that failed half-way is published again whole: those messages reach the queue
/// twice, and the notifiers must archive them once.
struct Publisher {
    published: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    fn start(url: String, exchange: String) -> Publisher {
        let published = Arc::new(AtomicUsize::new(0));
        let allowed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (published, allowed, stop) = (published.clone(), allowed.clone(), stop.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let messages = about_alice("burst", TOTAL);
                for chunk in messages.chunks(CHUNK) {
                    while published.load(Ordering::SeqCst) + chunk.len()
                        > allowed.load(Ordering::SeqCst)
                    {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let sent = runtime
                            .block_on(tidings_notifier::bus::amqp::publish(&url, &exchange, chunk));
                        match sent {
                            Ok(()) => break,
                            Err(err) => {
                                eprintln!("publishing a chunk failed, again in a moment: {err}");
                                std::thread::sleep(Duration::from_millis(500));
                            }
                        }
                    }
                    published.fetch_add(chunk.len(), Ordering::SeqCst);
                    std::thread::sleep(PACE);
                }
            })
        };
        Publisher {
            published,
            allowed,
            stop,
            thread: Some(thread),
        }
    }

    /// Lets the burst go on up to `count` messages in all.
    fn allow(&self, count: usize) {
        self.allowed.store(count, Ordering::SeqCst);
    }

    /// Waits until the broker confirmed at least `count` messages.
    fn wait_published(&self, count: usize) {
        wait_for(
            &format!("{count} messages published"),
            Duration::from_secs(120),
            || (self.published() >= count).then_some(()),
        );
    }

    /// Messages the broker confirmed so far.
    fn published(&self) -> usize {
        self.published.load(Ordering::SeqCst)
    }

    /// Waits until every message is confirmed.
    fn finish(mut self) {
        self.allow(TOTAL);
        self.wait_published(TOTAL);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the publisher thread");
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
