//! `tidings serve --demo`: a hub with something in it in the first minute. A demo
//! account (an admin, so the charts and the live bus view are open to it) with a confirmed
//! address in the local mailbox, the corpus's busiest packages as its packages, and three
//! filters; then the bundled corpus is replayed as a live bus, a message a second, with
//! fresh ids, through the same accept path as every bus (so it is archived, matched and
//! delivered like any message). Nothing is made twice: a second start reuses the account.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng as _;
use serde_json::{json, Value};
use tidings_notifier::bus::{Accept, Raw, Wire};
use tidings_notifier::{Derive, Metrics};
use tidings_rules::{Condition, Envelope};
use tidings_store::{
    ChannelKind, Delivery, DeliveryPolicy, FilterInput, NewDestination, Owner, Store,
};
use tokio_util::sync::CancellationToken;

/// The demo account's name.
pub const USER: &str = "demo";
/// Its address (mail to it lands in the local mailbox folder, readable under *Mailbox*).
const ADDRESS: &str = "demo@example.org";
/// The corpus, in the binary: the demo works wherever the binary is.
const CORPUS: &str = include_str!("../corpus/fedmsg-meta/messages.jsonl");
/// How often a corpus message is published.
const EVERY: Duration = Duration::from_secs(1);
/// How many of the corpus's busiest packages become the demo account's.
const PACKAGES: usize = 5;
/// The file in the data folder that keeps the demo account's password.
const PASSWORD_FILE: &str = "demo-password";

/// The corpus's envelopes.
fn corpus() -> anyhow::Result<Vec<Value>> {
    let envelopes: Vec<Value> = CORPUS
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|mut entry| entry["message"].take())
        .filter(|envelope| Envelope::from_value(envelope.clone()).is_ok())
        .collect();
    anyhow::ensure!(!envelopes.is_empty(), "the bundled corpus has no message");
    Ok(envelopes)
}

/// Creates the demo account and its data, unless it exists; says how to sign in.
pub async fn prepare(store: &Store, derive: &Derive, data_dir: &Path) -> anyhow::Result<()> {
    let password_file = data_dir.join(PASSWORD_FILE);
    if store.user_by_name(USER).await?.is_some() {
        eprintln!(
            "tidings: demo: sign in as {USER:?} with the password in {}",
            password_file.display()
        );
        return Ok(());
    }
    let password = passphrase();
    let user = store
        .create_user(USER, Some(&password), true)
        .await
        .context("creating the demo account")?;
    write_secret(&password_file, &password)?;
    let destination = store
        .add_destination(NewDestination {
            user_id: user.id,
            channel: ChannelKind::Email,
            address: ADDRESS,
            confirmed: true,
        })
        .await?;
    // The busiest packages of the corpus become the demo account's.
    let mut counts: HashMap<String, usize> = HashMap::new();
    for envelope in corpus()? {
        if let Ok(envelope) = Envelope::from_value(envelope) {
            for package in derive(&envelope.message).packages {
                *counts.entry(package).or_default() += 1;
            }
        }
    }
    let mut busiest: Vec<(String, usize)> = counts.into_iter().collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (package, _) in busiest.into_iter().take(PACKAGES) {
        let mut owners = store.package_owners(&package).await.unwrap_or_default();
        owners.push(Owner::user(USER));
        store.set_package_owners(&package, &owners).await?;
    }
    let filters = [
        (
            "My packages",
            "packages has $my_packages",
            Delivery::Instant,
        ),
        (
            "Failed builds",
            r#"topic ~ "org.fedoraproject.*.buildsys.build.state.change" and body.new == 3"#,
            Delivery::Instant,
        ),
        (
            "Bodhi, in a digest",
            r#"app == "bodhi""#,
            Delivery::digest(DeliveryPolicy::Digest {
                every_minutes: Some(10),
                daily_at: None,
                max_items: None,
            })?,
        ),
    ];
    for (name, condition, delivery) in filters {
        let input = FilterInput {
            name: name.into(),
            condition: Condition::parse(condition)
                .map_err(|e| anyhow::anyhow!("demo filter {name:?}: {e}"))?,
            destination_ids: vec![destination.id],
            delivery,
            enabled: true,
        };
        store.create_filter(user.id, &input).await?;
    }
    eprintln!(
        "tidings: demo: sign in as {USER:?} with the password {password:?} (kept in {}); a \
         corpus message is published every second",
        password_file.display()
    );
    Ok(())
}

/// Publishes the corpus, a message every [`EVERY`], with fresh ids, until `shutdown`.
pub async fn replay(
    store: Store,
    derive: Derive,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let corpus = corpus()?;
    let wake = store.notify_signalling(tidings_store::Wake::Matcher, &shutdown);
    let accept = Accept::new(store, derive, metrics, wake);
    let run = rand::thread_rng().gen::<u32>();
    let mut tick = tokio::time::interval(EVERY);
    for i in 0.. {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        let mut envelope = corpus[i % corpus.len()].clone();
        envelope["msg_id"] = json!(format!("demo-{run:08x}-{i}"));
        envelope["timestamp"] = json!(tidings_store::now_ms() / 1000);
        let raw = Raw {
            origin: "demo".into(),
            wire: Wire::Json(serde_json::to_vec(&envelope)?),
        };
        // A store that is down for a moment loses the demo a message, nothing more.
        if let Err(err) = accept.one(raw).await {
            tracing::warn!(error = %err, "demo: a corpus message was not published");
        }
    }
    Ok(())
}

/// A random passphrase of four words and a number: strong enough for the password rules,
/// easy to type.
fn passphrase() -> String {
    const WORDS: &[&str] = &[
        "amber", "birch", "cobalt", "delta", "ember", "fjord", "granite", "harbour", "indigo",
        "juniper", "kestrel", "lantern", "meadow", "nimbus", "orchid", "pebble", "quartz", "raven",
        "saffron", "thistle", "umber", "velvet", "willow", "zephyr",
    ];
    let mut rng = rand::thread_rng();
    let words: Vec<&str> = (0..4)
        .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
        .collect();
    format!("{} {}", words.join(" "), rng.gen_range(10..100))
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(file, "{secret}").with_context(|| format!("writing {}", path.display()))
}
