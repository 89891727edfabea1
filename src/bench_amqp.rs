//! `tidings bench e2e --bus amqp`: the burst and the steady phase published as
//! fedora-messaging publishes them, to the broker's `amq.topic`, and consumed from a queue
//! of the bench's own (deleted afterwards) by the notifier role — in the bench's process,
//! or in `--notifier-processes N` processes of its own (`tidings notifier`, competing
//! consumers on PostgreSQL).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;
use tidings_notifier::bus::amqp::{self, AmqpPublisher};
use tidings_rules::{Envelope, Message};

use crate::bench_e2e::Publisher;
use crate::config::{Amqp, Config};

/// The queue the bench's notifiers consume (the process id keeps runs apart).
pub(crate) fn bench_bus(url: &str) -> Amqp {
    Amqp {
        url: url.to_string(),
        exchange: "amq.topic".into(),
        queue: format!("tidings-bench-{}", std::process::id()),
        routing_keys: vec!["#".into()],
        ..Amqp::default()
    }
}

/// The message a corpus envelope becomes once it has travelled over AMQP: what the
/// notifier archives and matches (its `sent-at` header, its headers as AMQP carries them).
pub(crate) fn over_amqp(envelope: &Value) -> anyhow::Result<Message> {
    let message = Envelope::from_value(envelope.clone())
        .map_err(|e| anyhow::anyhow!("a corpus envelope does not decode: {e}"))?
        .message;
    Envelope::from_fedora_messaging(
        message.topic.clone(),
        Some(message.id.clone()),
        amqp::published_headers(&message),
        message.body.clone(),
    )
    .map(|e| e.message)
    .map_err(|e| anyhow::anyhow!("message {} over AMQP: {e}", message.id))
}

/// Where the bench publishes: the ZeroMQ publisher it binds, or an AMQP connection.
pub(crate) enum Feed {
    Zmq(Publisher),
    Amqp {
        publisher: Box<AmqpPublisher>,
        runtime: tokio::runtime::Handle,
        pending: Vec<Message>,
    },
}

/// Messages published to AMQP at once (their confirmations awaited together).
const AMQP_CHUNK: usize = 512;

impl Feed {
    /// Connects to the broker (from within the bench's runtime).
    pub(crate) async fn amqp(bus: &Amqp) -> anyhow::Result<Feed> {
        let publisher = AmqpPublisher::connect(&bus.url, &bus.tls.settings(), &bus.exchange)
            .await
            .with_context(|| format!("publishing to {}", bus.exchange))?;
        Ok(Feed::Amqp {
            publisher: Box::new(publisher),
            runtime: tokio::runtime::Handle::current(),
            pending: Vec::with_capacity(AMQP_CHUNK),
        })
    }

    /// Publishes `envelope` (over AMQP: once [`AMQP_CHUNK`] are gathered, or at
    /// [`Feed::flush`]). Called from a blocking thread.
    pub(crate) fn send(&mut self, envelope: &Value) -> anyhow::Result<()> {
        match self {
            Feed::Zmq(publisher) => publisher.send(envelope),
            Feed::Amqp { pending, .. } => {
                let message = Envelope::from_value(envelope.clone())
                    .map_err(|e| anyhow::anyhow!("a corpus envelope does not decode: {e}"))?
                    .message;
                pending.push(message);
                if pending.len() >= AMQP_CHUNK {
                    self.flush()?;
                }
                Ok(())
            }
        }
    }

    /// Publishes what is gathered and waits for the broker's confirmations.
    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        if let Feed::Amqp {
            publisher,
            runtime,
            pending,
        } = self
        {
            runtime
                .block_on(publisher.send(pending))
                .context("publishing over AMQP")?;
            pending.clear();
        }
        Ok(())
    }

    /// Closes the connection (AMQP).
    pub(crate) async fn close(self) {
        if let Feed::Amqp { publisher, .. } = self {
            (*publisher).close().await;
        }
    }
}

/// Deletes the bench's queue (and its dead-letter queue).
pub(crate) async fn delete_queue(bus: &Amqp) -> anyhow::Result<()> {
    amqp::delete_queues(&bus.ingest(Duration::from_secs(1)))
        .await
        .with_context(|| format!("deleting the bench's queue {}", bus.queue))
}

/// `tidings notifier` processes of the bench's own, killed when dropped.
pub(crate) struct NotifierProcesses {
    children: Vec<(Child, PathBuf)>,
}

impl NotifierProcesses {
    /// Starts `count` notifier processes on `config` (its database and its `[bus.amqp]`),
    /// each logging to a file in the data folder, and waits until each consumes.
    pub(crate) fn start(
        config_file: Option<&Path>,
        config: &Config,
        count: usize,
    ) -> anyhow::Result<NotifierProcesses> {
        let exe = std::env::current_exe().context("finding the tidings binary")?;
        let Some(bus) = &config.bus.amqp else {
            bail!("notifier processes consume AMQP: --bus amqp");
        };
        let mut started = NotifierProcesses {
            children: Vec::new(),
        };
        for n in 1..=count {
            let log = config.data_dir.join(format!("notifier-{n}.log"));
            let file = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let mut command = Command::new(&exe);
            if let Some(path) = config_file {
                command.arg("--config").arg(path);
            }
            let endpoints = serde_json::to_string(&config.bus.zmq_endpoints)?;
            let keys = serde_json::to_string(&bus.routing_keys)?;
            let child = command
                .arg("notifier")
                .env("TIDINGS_DATA_DIR", &config.data_dir)
                .env("TIDINGS_DATABASE_URL", config.database_url())
                .env("TIDINGS_BUS__ZMQ_ENDPOINTS", endpoints)
                .env("TIDINGS_BUS__AMQP__URL", &bus.url)
                .env("TIDINGS_BUS__AMQP__EXCHANGE", &bus.exchange)
                .env("TIDINGS_BUS__AMQP__QUEUE", &bus.queue)
                .env("TIDINGS_BUS__AMQP__ROUTING_KEYS", keys)
                .env("TIDINGS_BUS__AMQP__PREFETCH", bus.prefetch.to_string())
                // As in the bench's process: the burst at once, no flood limit.
                .env("TIDINGS_DELIVERY__FLOOD_MAX", "0")
                .env("TIDINGS_LOG__LEVEL", "info")
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .with_context(|| format!("starting {} notifier", exe.display()))?;
            started.children.push((child, log));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        for (child, log) in &mut started.children {
            loop {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                if text.contains("AMQP consumer connected") {
                    break;
                }
                if let Some(status) = child.try_wait()? {
                    bail!("a notifier process exited ({status}):\n{text}");
                }
                if Instant::now() > deadline {
                    bail!("a notifier process did not consume within 60 s:\n{text}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(started)
    }

    /// The processes' peak memory (VmHWM), in MB.
    pub(crate) fn peak_rss_mb(&self) -> Vec<f64> {
        self.children
            .iter()
            .map(|(child, _)| {
                std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    .ok()
                    .and_then(|status| {
                        status.lines().find_map(|line| {
                            let kb = line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?;
                            kb.trim().parse::<f64>().ok()
                        })
                    })
                    .map_or(0.0, |kb| kb / 1024.0)
            })
            .collect()
    }
}

impl Drop for NotifierProcesses {
    fn drop(&mut self) {
        for (child, _) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
