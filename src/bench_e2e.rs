//! `tidings bench e2e`: the whole pipeline on a burst, through the real bus path and the
//! real roles. Users are set up from the corpus (package owners with FMN's classic
//! defaults, owning 1–3 packages each of the corpus's packages and as many synthetic ones,
//! and a few catch-all users); corpus messages are replayed with fresh ids by a
//! ZeroMQ publisher into the notifier role's ingest; the matcher and the sender role run as
//! `tidings serve` runs them, on the config in effect (embedded defaults: SQLite and the
//! mailbox folder, in a fresh data folder) or on `--database postgres://…`. Then a second
//! phase publishes at a steady rate and measures publish → accepted by the channel.
//!
//! Nothing may be lost: the notifications accepted must be exactly those the match index
//! says the messages cause.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tidings_notifier::matcher::Matcher;
use tidings_notifier::{roles, Metrics};
use tidings_rules::{Condition, Envelope};
use tidings_store::{
    ChannelKind, Delivery, FilterInput, ImportMode, OwnershipData, PackageOwners, Store,
    StoredMessage,
};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::serve;

/// FMN's classic defaults, each package owner's filters.
pub(crate) const CLASSIC: [&str; 3] = [
    "packages has $my_packages",
    "usernames has $me",
    r#"topic ~ "org.fedoraproject.*.buildsys.build.state.change" and packages has $my_packages and body.new == 3"#,
];

/// A catch-all user's one filter.
const EVERYTHING: &str = r#"topic ~ "**""#;

/// What to run.
#[derive(clap::Args, Debug, Clone)]
pub struct E2eArgs {
    /// Messages in the burst.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) messages: usize,
    /// The database (`postgres://…`, an empty database the bench may fill); default: SQLite
    /// in a fresh data folder.
    #[arg(long)]
    pub(crate) database: Option<String>,
    /// Package owners, each with FMN's classic defaults.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) owners: usize,
    /// Users with a catch-all filter.
    #[arg(long, default_value_t = 5)]
    pub(crate) catch_all: usize,
    /// Messages per second in the steady phase.
    #[arg(long, default_value_t = 500)]
    pub(crate) rate: u64,
    /// How long the steady phase publishes, in seconds (0: no steady phase).
    #[arg(long, default_value_t = 10)]
    pub(crate) steady_secs: u64,
    /// `sender.concurrency` for the run (default: the config's, else the channel's own).
    #[arg(long)]
    pub(crate) sender_concurrency: Option<usize>,
    /// `sender.poll_ms` for the run.
    #[arg(long, default_value_t = 5)]
    pub(crate) sender_poll_ms: u64,
    /// The longest either phase may take to deliver everything, in seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) timeout_secs: u64,
    /// The corpus replayed (JSON lines with a `message` envelope each).
    #[arg(long, default_value = crate::DEFAULT_CORPUS)]
    pub(crate) corpus: PathBuf,
    /// Keep the data folder afterwards (it is printed).
    #[arg(long)]
    pub(crate) keep: bool,
    /// Run no sender: measure ingest and matching alone, until every notification of the
    /// burst is queued (and check that each one is). No steady phase.
    #[arg(long)]
    pub(crate) no_send: bool,
    /// Where every user's notifications go: `email` (the config's: the mailbox folder by
    /// default) or `webhook` (a receiver in the bench's process that answers 200 to each
    /// signed POST; webhooks deliver in order, one in flight per destination).
    #[arg(long, value_enum, default_value_t = BenchChannel::Email)]
    pub(crate) channel: BenchChannel,
    /// The flood scenario (`tidings bench e2e --flood-max 20`): every owner's destination
    /// keeps this flood limit, and the burst is a mass rebuild of `--flood-packages`
    /// packages, each owned by `--owners / --flood-packages` people, so that each gets far
    /// more than the limit; checks that no destination got more than its limit at once per
    /// window and that everything else went out in summaries (see `bench_flood`). 0: the
    /// usual burst, with no flood limit.
    #[arg(long, default_value_t = 0)]
    pub(crate) flood_max: u32,
    /// The flood window of the flood scenario, in minutes: the summaries go out when it
    /// ends.
    #[arg(long, default_value_t = 1)]
    pub(crate) flood_window_minutes: u32,
    /// `--channel irc`: the hub's `flood_burst` on the bench's network (default: the
    /// config's).
    #[arg(long)]
    pub(crate) irc_flood_burst: Option<u32>,
    /// `--channel irc`: the hub's `flood_interval_ms` on the bench's network (default: the
    /// config's).
    #[arg(long)]
    pub(crate) irc_flood_interval_ms: Option<u64>,
    /// `--channel matrix`: the virtualenv Synapse is installed in (default:
    /// `target/test-tools/synapse` of this source tree).
    #[arg(long)]
    pub(crate) synapse_venv: Option<PathBuf>,
    /// Packages rebuilt in the flood scenario.
    #[arg(long, default_value_t = 100)]
    pub(crate) flood_packages: usize,
    /// The bus the messages travel on: `zmq` (fedmsg, from a publisher the bench binds) or
    /// `amqp` (fedora-messaging, published to `amq.topic` on `--amqp-url` and consumed
    /// from a queue of the bench's own, deleted afterwards).
    #[arg(long, value_enum, default_value_t = BenchBus::Zmq)]
    pub(crate) bus: BenchBus,
    /// `--bus amqp`: the broker.
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub(crate) amqp_url: String,
    /// `--bus amqp` on PostgreSQL: run the notifier role in this many `tidings notifier`
    /// processes (competing consumers of the queue; one matches, the others stand by)
    /// instead of in the bench's process (0).
    #[arg(long, default_value_t = 0)]
    pub(crate) notifier_processes: usize,
}

/// The bus of `tidings bench e2e`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchBus {
    /// fedmsg over ZeroMQ.
    Zmq,
    /// fedora-messaging over AMQP.
    Amqp,
}

/// The channel the bench's users are reached on.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchChannel {
    /// Email, as configured.
    Email,
    /// A webhook per user, to a receiver in the bench's process.
    Webhook,
    /// An ntfy topic per user, on a receiver in the bench's process that answers each
    /// publish as ntfy does.
    Ntfy,
    /// A nick per user on an ngircd the bench starts (`/usr/sbin/ngircd`), each read by a
    /// client of the bench's own (see `bench_chat`).
    Irc,
    /// A Matrix user per user on a Synapse the bench starts from the virtualenv
    /// `--synapse-venv` (see `bench_chat`); each joins the direct room the hub invites
    /// them to.
    Matrix,
}

/// Runs the benchmark and returns its figures as one JSON object.
pub fn run(config_file: Option<&Path>, args: E2eArgs) -> anyhow::Result<Value> {
    let mut config = Config::load(config_file)?;
    // The whole burst at once: flood limits would turn it into summaries, which is
    // measured apart (their figures are in docs/performance.md).
    tidings_store::set_default_delivery(tidings_store::DeliveryPolicy::Immediate {
        flood_max: 0,
        flood_window_minutes: 1,
    });
    let data = std::env::temp_dir().join(format!("tidings-bench-e2e-{}", std::process::id()));
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("clearing {}", data.display()))?;
    }
    config.data_dir = data.clone();
    config.database_url = args.database.clone();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for the bus")?
        .port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    config.bus.zmq_endpoints = vec![endpoint.clone()];
    if args.bus == BenchBus::Amqp {
        if args.flood_max > 0 {
            bail!("--flood-max runs on the ZeroMQ bus only");
        }
        config.bus.amqp = Some(crate::bench_amqp::bench_bus(&args.amqp_url));
    } else if args.notifier_processes > 0 {
        bail!("--notifier-processes needs --bus amqp (competing consumers of one queue)");
    }
    if args.notifier_processes > 0 && !config.database_url().starts_with("postgres") {
        bail!(
            "--notifier-processes needs PostgreSQL (--database postgres://…): processes share it"
        );
    }
    if args.sender_concurrency.is_some() {
        config.sender.concurrency = args.sender_concurrency;
    }
    config.sender.poll_ms = args.sender_poll_ms;
    config.metrics.listen = None;
    if args.channel == BenchChannel::Webhook {
        // The receiver is on loopback.
        config.channels.webhook.enabled = true;
        config.channels.webhook.allow_private_targets = true;
    }
    if args.channel == BenchChannel::Ntfy {
        config.channels.ntfy.enabled = true;
        config.channels.ntfy.allow_private_targets = true;
    }
    // The chat servers the bench starts (stopped when dropped, after the run).
    let chat = crate::bench_chat::ChatServer::start(&mut config, &args, &data)?;
    config.prepare()?;
    let figures = match args.flood_max {
        0 => crate::runtime()?.block_on(bench(
            (&config, config_file),
            &args,
            &endpoint,
            chat.as_ref(),
        )),
        _ => crate::runtime()?.block_on(crate::bench_flood::flood(&config, &args, &endpoint)),
    };
    drop(chat);
    // Whatever the outcome: a queue bound to `amq.topic` left behind would fill up.
    if let (BenchBus::Amqp, Some(bus)) = (args.bus, &config.bus.amqp) {
        if let Err(err) = crate::runtime()?.block_on(crate::bench_amqp::delete_queue(bus)) {
            eprintln!("tidings: {err:#}");
        }
    }
    if args.keep {
        eprintln!("tidings: data kept in {}", data.display());
    } else {
        let _ = std::fs::remove_dir_all(&data);
    }
    figures
}

async fn bench(
    (config, config_file): (&Config, Option<&Path>),
    args: &E2eArgs,
    endpoint: &str,
    chat: Option<&crate::bench_chat::ChatServer>,
) -> anyhow::Result<Value> {
    let store = serve::open_store(config).await?;
    if store.message_counts().await? != (0, 0) {
        bail!("the bench needs an empty database; this one has messages");
    }
    let derive = serve::derive(config);
    let corpus = Arc::new(load(&args.corpus)?);
    let packages: Vec<String> = corpus
        .iter()
        .flat_map(|envelope| {
            Envelope::from_value(envelope.clone())
                .map(|e| derive(&e.message).packages)
                .unwrap_or_default()
        })
        // Ownership takes plain package names; a few corpus messages name several at once.
        .filter(|p| !p.is_empty() && p.len() <= 200 && !p.contains([' ', ',', '"', '\'']))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let setup = Instant::now();
    let receiver = match args.channel {
        BenchChannel::Webhook | BenchChannel::Ntfy => Some(Receiver::start().await?),
        _ => None,
    };
    let names: Vec<String> = (0..args.owners)
        .map(|i| format!("owner{i}"))
        .chain((0..args.catch_all).map(|i| format!("watcher{i}")))
        .collect();
    let readers = match chat {
        Some(chat) => Some(chat.readers(&names).await?),
        None => None,
    };
    let reach = |name: &str| match (&receiver, args.channel, chat) {
        (Some(r), BenchChannel::Ntfy, _) => (ChannelKind::Ntfy, format!("{}/{name}", r.base)),
        (Some(r), _, _) => (ChannelKind::Webhook, format!("{}/hook/{name}", r.base)),
        (None, _, Some(chat)) => (chat.kind(), chat.address(name)),
        (None, _, None) => (ChannelKind::Email, format!("{name}@bench.example.org")),
    };
    users(&store, args, &packages, &reach).await?;
    let setup_s = setup.elapsed().as_secs_f64();

    let metrics = Arc::new(Metrics::default());
    let oracle = Matcher::load(&store, metrics.clone()).await?;
    // What the notifier archives: over AMQP, the message as it arrives from there.
    let arrives = |envelope: Value| match args.bus {
        BenchBus::Zmq => Envelope::from_value(envelope)
            .map(|e| e.message)
            .map_err(anyhow::Error::from),
        BenchBus::Amqp => crate::bench_amqp::over_amqp(&envelope),
    };
    let expected = |ids: std::ops::Range<usize>, prefix: &str| -> usize {
        ids.map(|i| {
            let envelope = fresh(&corpus, i, prefix);
            match arrives(envelope) {
                Ok(message) => {
                    let metadata = derive(&message);
                    oracle
                        .notifications(&StoredMessage {
                            id: 0,
                            message,
                            metadata,
                            source: String::new(),
                            received_at: 0,
                        })
                        .len()
                }
                Err(_) => 0,
            }
        })
        .sum()
    };
    let burst_expected = expected(0..args.messages, "burst");

    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let notifiers = match args.notifier_processes {
        0 => {
            let notifier = roles::notifier(
                store.clone(),
                serve::notifier_settings(config, &metrics, derive.clone())?,
                shutdown.clone(),
            );
            tasks.spawn(notifier);
            None
        }
        n => {
            let (config, config_file) = (config.clone(), config_file.map(Path::to_path_buf));
            Some(
                tokio::task::spawn_blocking(move || {
                    crate::bench_amqp::NotifierProcesses::start(config_file.as_deref(), &config, n)
                })
                .await
                .context("starting notifier processes")??,
            )
        }
    };
    if !args.no_send {
        let sender = roles::sender(
            store.clone(),
            serve::sender_settings(config, &metrics)?,
            shutdown.clone(),
        );
        tasks.spawn(sender);
    }

    let mut publisher = match &config.bus.amqp {
        Some(bus) if args.bus == BenchBus::Amqp => crate::bench_amqp::Feed::amqp(bus).await?,
        _ => crate::bench_amqp::Feed::Zmq(Publisher::bind(endpoint, Duration::from_secs(30))?),
    };
    let (count, burst_corpus) = (args.messages, corpus.clone());
    let started = Instant::now();
    let publisher = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        for i in 0..count {
            publisher.send(&fresh(&burst_corpus, i, "burst"))?;
        }
        publisher.flush()?;
        Ok(publisher)
    });
    let limit = Duration::from_secs(args.timeout_secs);
    let burst = watch(
        &store,
        args.messages as i64,
        burst_expected as i64,
        (started, limit),
        args.no_send,
    )
    .await;
    let mut publisher = publisher.await.context("publisher thread")??;
    let burst = match burst {
        Ok(burst) => burst,
        Err(err) => {
            shutdown.cancel();
            return Err(err);
        }
    };
    let mailbox = (args.channel == BenchChannel::Email)
        .then(|| mail_count(config))
        .flatten();

    let mut steady_expected = 0;
    let steady = if burst.complete() && !args.no_send && args.steady_secs > 0 && args.rate > 0 {
        let steady_count = (args.rate * args.steady_secs) as usize;
        steady_expected = expected(0..steady_count, "steady");
        let rate = args.rate;
        let corpus = corpus.clone();
        let published =
            tokio::task::spawn_blocking(move || -> anyhow::Result<(HashMap<String, i64>, _)> {
                let mut at = HashMap::with_capacity(steady_count);
                let start = Instant::now();
                for i in 0..steady_count {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let envelope = fresh(&corpus, i, "steady");
                    at.insert(format!("steady-{i}"), tidings_store::now_ms());
                    publisher.send(&envelope)?;
                    publisher.flush()?;
                }
                Ok((at, publisher))
            });
        let total_messages = (args.messages + steady_count) as i64;
        let total_expected = (burst_expected + steady_expected) as i64;
        let watched = watch(
            &store,
            total_messages,
            total_expected,
            (Instant::now(), limit),
            false,
        )
        .await;
        let (published, used) = published.await.context("publisher thread")??;
        publisher = used;
        let watched = match watched {
            Ok(watched) => watched,
            Err(err) => {
                shutdown.cancel();
                return Err(err);
            }
        };
        let mut latencies: Vec<i64> = store
            .sent_times("steady-")
            .await?
            .into_iter()
            .filter_map(|(id, sent)| published.get(&id).map(|at| sent - at))
            .collect();
        latencies.sort_unstable();
        let at = |p: f64| {
            latencies
                .get(((latencies.len().max(1) - 1) as f64 * p).round() as usize)
                .copied()
        };
        Some(json!({
            "rate_per_s": rate,
            "seconds": args.steady_secs,
            "messages": steady_count,
            "notifications_expected": steady_expected,
            "complete": watched.complete(),
            "notifications_measured": latencies.len(),
            "latency_ms_p50": at(0.50),
            "latency_ms_p99": at(0.99),
            "latency_ms_max": latencies.last(),
        }))
    } else {
        None
    };

    shutdown.cancel();
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(err)) = ended {
            tracing::error!(error = %err, "a role stopped with an error");
        }
    }
    let notifier_rss = notifiers.as_ref().map(|n| n.peak_rss_mb());
    drop(notifiers);
    publisher.close().await;
    let (pending, sending, sent, dead) = store.outbox_counts().await?;
    store.close().await;
    let folder_limit = match mailbox {
        Some(_) => Some(file_creation_rate(
            &config.mailbox_dir(),
            FOLDER_PROBE_FILES,
        )?),
        None => None,
    };
    let backend = match config.database_url().starts_with("sqlite:") {
        true => "sqlite",
        false => "postgres",
    };
    Ok(json!({
        "backend": backend,
        "bus": match args.bus {
            BenchBus::Zmq => "zmq",
            BenchBus::Amqp => "amqp",
        },
        "notifier_processes": args.notifier_processes,
        "notifier_peak_rss_mb": notifier_rss,
        "channel": match (args.channel, config.email().smtp_url.is_some()) {
            (BenchChannel::Webhook, _) => "webhook",
            (BenchChannel::Ntfy, _) => "ntfy",
            (BenchChannel::Irc, _) => "irc",
            (BenchChannel::Matrix, _) => "matrix",
            (BenchChannel::Email, true) => "smtp",
            (BenchChannel::Email, false) => "mailbox folder",
        },
        "webhook_posts": receiver
            .as_ref()
            .filter(|_| args.channel == BenchChannel::Webhook)
            .map(Receiver::posts),
        "ntfy_posts": receiver
            .as_ref()
            .filter(|_| args.channel == BenchChannel::Ntfy)
            .map(Receiver::posts),
        "chat_messages_received": readers.as_ref().map(|r| r.received()),
        "sender_concurrency": config
            .sender
            .concurrency
            .unwrap_or_else(|| tidings_notifier::email::parallelism(config.email())),
        "sender_poll_ms": config.sender.poll_ms,
        "owners": args.owners,
        "catch_all_users": args.catch_all,
        "corpus_packages": packages.len(),
        "setup_s": setup_s,
        "burst": burst.figures(args.messages, burst_expected),
        "mailbox_files": mailbox,
        "folder_files_per_s_one_thread": folder_limit,
        "steady": steady,
        "outbox": {"pending": pending, "sending": sending, "sent": sent, "dead": dead},
        "nothing_lost": match args.no_send {
            true => burst.complete() && pending as usize == burst_expected && sending + sent + dead == 0,
            false => burst.complete() && dead == 0 && pending == 0 && sending == 0 && sent as usize == burst_expected + steady_expected,
        },
        "sending": !args.no_send,
        "peak_rss_mb": crate::bench_match::peak_rss_mb(),
    }))
}

/// When each stage finished, in seconds from the start of the burst; a stage not
/// finished within the time limit is `None`.
struct Stages {
    ingested: Option<f64>,
    matched: Option<f64>,
    first_sent: Option<f64>,
    sent: Option<f64>,
    /// Notifications sent by the end of the watch (since it started).
    sent_count: i64,
    /// Seconds watched.
    watched: f64,
    /// Nothing is sent in this run (`--no-send`): matched is complete.
    no_send: bool,
}

impl Stages {
    fn complete(&self) -> bool {
        match self.no_send {
            true => self.matched.is_some(),
            false => self.sent.is_some(),
        }
    }

    /// Figures for `messages` messages causing `notifications` notifications.
    fn figures(&self, messages: usize, notifications: usize) -> Value {
        let rate = |n: f64, s: Option<f64>| s.map(|s| n / s.max(1e-3));
        let sending = self.sent.unwrap_or(self.watched) - self.first_sent.unwrap_or(0.0);
        json!({
            "messages": messages,
            "notifications_expected": notifications,
            "complete": self.complete(),
            "ingest_s": self.ingested,
            "ingest_per_s": rate(messages as f64, self.ingested),
            "match_s": self.matched,
            "match_per_s": rate(messages as f64, self.matched),
            "last_accepted_s": self.sent,
            "notifications_sent": self.sent_count,
            "send_per_s": self.sent_count as f64 / sending.max(1e-3),
            "watched_s": self.watched,
        })
    }
}

/// Watches the store until `messages` are archived and matched and `notifications` sent,
/// or `limit` passes (then the stages not reached are `None`); `notifications` counts
/// every notification sent since the database was new. Fails if more are sent than
/// expected, or fewer once nothing is left to send, or any is dead. With `no_send`, it
/// ends once every message is matched, and fails unless exactly `notifications` are
/// queued.
///
/// Each look reads the first entry of a few indexes (the highest message id, whether any
/// message is unmatched, any row unsent or dead), so that watching does not slow what it
/// watches: a full count of a 560,000-row outbox every 50 ms costs most of a core on
/// PostgreSQL. The rows sent are counted once, at the end.
async fn watch(
    store: &Store,
    messages: i64,
    notifications: i64,
    (start, limit): (Instant, Duration),
    no_send: bool,
) -> anyhow::Result<Stages> {
    let since = tidings_store::now_ms() - i64::try_from(start.elapsed().as_millis())?;
    let mut stages = Stages {
        ingested: None,
        matched: None,
        first_sent: None,
        sent: None,
        sent_count: 0,
        watched: 0.0,
        no_send,
    };
    loop {
        let now = start.elapsed().as_secs_f64();
        stages.watched = now;
        // Ids may skip a value, so the count is checked once the last id is reached.
        if stages.ingested.is_none()
            && store.last_message_id().await? >= messages
            && store.message_counts().await?.0 >= messages
        {
            stages.ingested = Some(now);
        }
        let backlog = store.backlog().await?;
        if backlog.dead {
            bail!("some notifications are dead");
        }
        if stages.ingested.is_some() && stages.matched.is_none() && !backlog.unmatched {
            stages.matched = Some(now);
            if no_send {
                // Nothing is sent in this run: queued is as far as it goes.
                let (pending, ..) = store.outbox_counts().await?;
                if pending != notifications {
                    bail!("{pending} notifications queued, {notifications} expected");
                }
                return Ok(stages);
            }
        }
        let done = stages.matched.is_some() && !backlog.unsent;
        if done || start.elapsed() > limit {
            let (sent_now, first) = store.sent_since(since).await?;
            stages.sent_count = sent_now;
            stages.first_sent = first.map(|at| (at - since) as f64 / 1000.0);
            let (sent, _) = store.sent_since(0).await?;
            if sent > notifications {
                bail!("{sent} notifications sent, {notifications} expected");
            }
            if done {
                if sent < notifications {
                    bail!("{sent} notifications sent, {notifications} expected: some were lost");
                }
                stages.sent = Some(now);
            }
            return Ok(stages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The package owners and the catch-all users, with confirmed destinations and filters.
async fn users(
    store: &Store,
    args: &E2eArgs,
    packages: &[String],
    reach: &dyn Fn(&str) -> (ChannelKind, String),
) -> anyhow::Result<()> {
    let classic: Vec<Condition> = CLASSIC
        .iter()
        .map(|c| Condition::parse(c).map_err(|e| anyhow::anyhow!("{c}: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let everything =
        Condition::parse(EVERYTHING).map_err(|e| anyhow::anyhow!("{EVERYTHING}: {e}"))?;
    let mut owned: BTreeMap<String, PackageOwners> = BTreeMap::new();
    for i in 0..args.owners {
        let name = format!("owner{i}");
        let conditions: Vec<(String, Condition)> = CLASSIC
            .iter()
            .zip(&classic)
            .map(|(text, c)| (text.to_string(), c.clone()))
            .collect();
        user(store, &name, &conditions, reach).await?;
        // One to three packages each, from the corpus's packages and as many synthetic
        // ones as there are owners (packages the corpus never mentions), so that a package
        // has about two owners, as in a distribution, not dozens.
        let pool = packages.len() + args.owners;
        for k in 0..1 + i % 3 {
            let n = (i * 7 + k * 13) % pool;
            let package = packages
                .get(n)
                .cloned()
                .unwrap_or_else(|| format!("bench-pkg-{n}"));
            owned.entry(package).or_default().users.insert(name.clone());
        }
    }
    for i in 0..args.catch_all {
        user(
            store,
            &format!("watcher{i}"),
            &[("everything".into(), everything.clone())],
            reach,
        )
        .await?;
    }
    let data = OwnershipData {
        groups: BTreeMap::new(),
        packages: owned,
    };
    store.import_ownership(&data, ImportMode::Replace).await?;
    Ok(())
}

async fn user(
    store: &Store,
    name: &str,
    filters: &[(String, Condition)],
    reach: &dyn Fn(&str) -> (ChannelKind, String),
) -> anyhow::Result<()> {
    let (channel, address) = reach(name);
    let (user_id, destination) =
        crate::bench_send::confirmed_user_on(store, name, channel, &address).await?;
    for (n, (_, condition)) in filters.iter().enumerate() {
        store
            .create_filter(
                user_id,
                &FilterInput {
                    name: format!("default {n}"),
                    condition: condition.clone(),
                    destination_ids: vec![destination],
                    delivery: Delivery::Instant,
                    enabled: true,
                },
            )
            .await?;
    }
    Ok(())
}

/// The corpus envelopes that decode.
pub(crate) fn load(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let envelopes: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|mut entry| entry["message"].take())
        .filter(|envelope| Envelope::from_value(envelope.clone()).is_ok())
        .collect();
    if envelopes.is_empty() {
        bail!("no message in {}", path.display());
    }
    Ok(envelopes)
}

/// Corpus message `i` (cycling) under the fresh id `<prefix>-<i>`.
fn fresh(corpus: &[Value], i: usize, prefix: &str) -> Value {
    let mut envelope = corpus[i % corpus.len()].clone();
    envelope["msg_id"] = json!(format!("{prefix}-{i}"));
    envelope
}

/// How many files the file-system probe creates.
const FOLDER_PROBE_FILES: usize = 20_000;

/// What the file system under the mailbox folder allows: files of a mail's size created per
/// second by one thread doing nothing else (`std::fs::write` in a loop), in a new folder
/// beside the mailbox (removed again), measured after the run so as not to slow it. The mailbox channel
/// cannot accept mail faster than this.
pub(crate) fn file_creation_rate(mailbox: &std::path::Path, files: usize) -> anyhow::Result<f64> {
    let probe = mailbox.with_file_name("file-probe");
    std::fs::create_dir_all(&probe).with_context(|| format!("creating {}", probe.display()))?;
    let mail = vec![b'x'; 3_000];
    let start = Instant::now();
    for i in 0..files {
        let path = probe.join(format!("{i:08}-0000000000000000.eml"));
        std::fs::write(&path, &mail).with_context(|| format!("writing {}", path.display()))?;
    }
    let rate = files as f64 / start.elapsed().as_secs_f64().max(1e-9);
    let _ = std::fs::remove_dir_all(&probe);
    Ok(rate)
}

/// How many mails the mailbox folder holds (none when mail goes by SMTP).
pub(crate) fn mail_count(config: &Config) -> Option<usize> {
    if config.email.smtp_url.is_some() {
        return None;
    }
    let entries = std::fs::read_dir(config.mailbox_dir()).ok()?;
    Some(entries.filter(|e| e.is_ok()).count())
}

/// A ZeroMQ publisher bound where the hub subscribes; XPUB, so it knows when the hub has.
pub(crate) struct Publisher {
    _ctx: zmq::Context,
    socket: zmq::Socket,
}

impl Publisher {
    pub(crate) fn bind(endpoint: &str, wait: Duration) -> anyhow::Result<Publisher> {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::XPUB).context("creating an XPUB socket")?;
        socket
            .set_sndhwm(0)
            .context("setting the send high-water mark")?;
        socket.set_linger(10_000).context("setting linger")?;
        socket
            .set_rcvtimeo(i32::try_from(wait.as_millis()).unwrap_or(i32::MAX))
            .context("setting the receive timeout")?;
        socket
            .bind(endpoint)
            .with_context(|| format!("binding {endpoint}"))?;
        loop {
            let event = socket
                .recv_bytes(0)
                .with_context(|| format!("waiting for the hub to subscribe at {endpoint}"))?;
            // A subscription is 0x01 followed by the topic prefix.
            if event.first() == Some(&1) {
                return Ok(Publisher { _ctx: ctx, socket });
            }
        }
    }

    pub(crate) fn send(&self, envelope: &Value) -> anyhow::Result<()> {
        let topic = envelope["topic"].as_str().unwrap_or_default().as_bytes();
        let body = envelope.to_string();
        self.socket
            .send_multipart([topic, body.as_bytes()], 0)
            .context("publishing")
    }
}

/// The webhook receiver of `--channel webhook`: an HTTP server in the bench's process that
/// answers 200 to every POST and counts them.
struct Receiver {
    base: String,
    posts: Arc<std::sync::atomic::AtomicU64>,
}

impl Receiver {
    async fn start() -> anyhow::Result<Receiver> {
        use axum::routing::post;
        let posts = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = posts.clone();
        let topics = posts.clone();
        let app = axum::Router::new()
            .route(
                "/hook/{name}",
                post(move || {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        "{}"
                    }
                }),
            )
            // An ntfy topic: ntfy answers a publish with the message as JSON.
            .route(
                "/{topic}",
                post(move || {
                    let counted = topics.clone();
                    async move {
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        r#"{"id":"bench","event":"message"}"#
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the webhook receiver")?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("tidings: the bench's webhook receiver stopped: {err}");
            }
        });
        Ok(Receiver { base, posts })
    }

    fn posts(&self) -> u64 {
        self.posts.load(std::sync::atomic::Ordering::Relaxed)
    }
}
