//! `tidings publish`: put messages on the bus. Over ZeroMQ it binds an XPUB socket and
//! sends only once a subscriber has subscribed (see `tidings_notifier::publish`); over
//! HTTP it posts to the hub's API and retries until the hub has stored each message.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tidings_rules::Envelope;

use crate::config::Config;

#[derive(clap::Args)]
pub struct PublishArgs {
    /// The topic, e.g. org.fedoraproject.prod.bodhi.update.comment.
    #[arg(long, requires = "body", conflicts_with = "file")]
    topic: Option<String>,
    /// The message body: JSON text.
    #[arg(long, requires = "topic")]
    body: Option<String>,
    /// The message id (default: a new `<year>-<uuid>`).
    #[arg(long, requires = "topic")]
    id: Option<String>,
    /// Publish every message in this JSON-lines file ("-" for stdin) instead: fedmsg
    /// envelopes, or fedora-messaging messages (`{"topic", "headers", "id", "body"}`).
    #[arg(long)]
    file: Option<PathBuf>,
    /// The ZeroMQ endpoint to bind (default: the first of bus.zmq_endpoints).
    #[arg(long)]
    endpoint: Option<String>,
    /// Post to this hub's HTTP API (its base URL) instead of ZeroMQ.
    #[arg(long, requires = "token", conflicts_with = "amqp")]
    http: Option<String>,
    /// Publish to this AMQP broker (`amqp://user:password@host:5672/%2f`, or `amqps://…`
    /// with the TLS settings of `[bus.amqp.tls]`) as fedora-messaging does (routing key =
    /// topic, message_id, headers, JSON body), instead of ZeroMQ.
    #[arg(long)]
    amqp: Option<String>,
    /// The exchange for --amqp.
    #[arg(long, default_value = "amq.topic", requires = "amqp")]
    exchange: String,
    /// The API token for --http (`tidings token add NAME` makes one).
    #[arg(long)]
    token: Option<String>,
    /// Seconds to wait for a subscriber (ZeroMQ) or for the hub (HTTP).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

fn envelopes(args: &PublishArgs) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    if let (Some(topic), Some(body)) = (&args.topic, &args.body) {
        let body: Value = serde_json::from_str(body).map_err(|e| {
            anyhow::anyhow!(
                "--body is not JSON: {} at line {}, column {}",
                e,
                e.line(),
                e.column()
            )
        })?;
        let id = args.id.clone().unwrap_or_else(new_id);
        let sent = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let envelope =
            json!({ "topic": topic, "msg": body, "msg_id": id, "timestamp": sent, "i": 1 });
        Envelope::from_value(envelope.clone()).context("--body")?;
        return Ok(vec![(topic.clone(), envelope.to_string().into_bytes())]);
    }
    let Some(path) = &args.file else {
        bail!("give --topic and --body, or --file")
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        ))
    };
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}: reading line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let envelope = Envelope::from_json(line.as_bytes())
            .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), n + 1))?;
        out.push((envelope.message.topic, line.into_bytes()));
    }
    Ok(out)
}

fn new_id() -> String {
    let year = 1970
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            / 31_556_952;
    format!("{year}-{}", uuid::Uuid::new_v4())
}

/// Runs `tidings publish`.
pub fn run(config: &Config, args: PublishArgs) -> anyhow::Result<ExitCode> {
    let messages = envelopes(&args)?;
    let timeout = Duration::from_secs(args.timeout);
    if let Some(base) = &args.http {
        let token = args.token.as_deref().unwrap_or_default();
        crate::runtime()?.block_on(post_all(base, token, &messages, timeout))?;
    } else if let Some(url) = &args.amqp {
        // Each line was checked to be a message when it was read.
        let decoded = messages
            .iter()
            .map(|(_, line)| Envelope::from_json(line).map(|e| e.message))
            .collect::<Result<Vec<_>, _>>()?;
        // The TLS settings of [bus.amqp.tls] (a client certificate, the broker's CA).
        let tls = config
            .bus
            .amqp
            .as_ref()
            .map(|amqp| amqp.tls.settings())
            .unwrap_or_default();
        crate::runtime()?.block_on(tidings_notifier::bus::amqp::publish_with(
            url,
            &tls,
            &args.exchange,
            &decoded,
        ))?;
    } else {
        let endpoint = match &args.endpoint {
            Some(e) => e.clone(),
            None => config
                .bus
                .zmq_endpoints
                .first()
                .cloned()
                .context("no --endpoint and bus.zmq_endpoints is empty")?,
        };
        tidings_notifier::publish::publish(&endpoint, &messages, timeout)?;
    }
    eprintln!("tidings: published {} message(s)", messages.len());
    Ok(ExitCode::SUCCESS)
}

async fn post_all(
    base: &str,
    token: &str,
    messages: &[(String, Vec<u8>)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/api/v1/messages", base.trim_end_matches('/'));
    for (n, (_, envelope)) in messages.iter().enumerate() {
        let deadline = Instant::now() + timeout;
        loop {
            let sent = client
                .post(&url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(envelope.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => break,
                // Refused for a reason retrying cannot fix: say so and stop.
                Ok(response) if response.status().is_client_error() => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    bail!("message {}: the hub refused it ({status}): {text}", n + 1);
                }
                Ok(response) if Instant::now() >= deadline => {
                    bail!("message {}: the hub answered {}", n + 1, response.status())
                }
                Err(err) if Instant::now() >= deadline => bail!("message {}: {err}", n + 1),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
    Ok(())
}
