//! `tidings doctor` (issue 12): checks what a running Tidings needs — the configuration,
//! the data folder, the database, the buses, the SMTP server, every configured chat
//! channel and the ownership sync's sources — each within a time limit, and prints one line per check: `ok` with what was
//! found, or `FAIL` with what is wrong and how to fix it. Exit status 1 when anything
//! failed. It opens the database as `tidings serve` does (so migrations are applied).

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::config::Config;

/// The longest any one check may take.
const LIMIT: Duration = Duration::from_secs(10);

/// One check's outcome: what was found, or what is wrong and how to fix it.
type Outcome = Result<String, (String, String)>;

/// `check`, or a failure once [`LIMIT`] passed.
async fn limited(check: impl Future<Output = Outcome>, fix: &str) -> Outcome {
    match tokio::time::timeout(LIMIT, check).await {
        Ok(outcome) => outcome,
        Err(_) => Err((
            format!("no answer within {} s", LIMIT.as_secs()),
            fix.to_string(),
        )),
    }
}

/// Runs every check and prints the report.
pub async fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let mut checks: Vec<(String, Outcome)> = Vec::new();
    checks.push(("configuration".into(), Ok(config_summary(config))));
    checks.push(("data folder".into(), data_folder(config)));
    checks.push(("database".into(), database(config).await));
    for endpoint in &config.bus.zmq_endpoints {
        checks.push((format!("bus: ZeroMQ {endpoint}"), zmq_endpoint(endpoint)));
    }
    if let Some(amqp) = &config.bus.amqp {
        checks.push(("bus: AMQP".into(), amqp_broker(config, amqp).await));
    }
    if config.bus.verify_signatures {
        checks.push(("bus: fedmsg signatures".into(), signatures(config)));
    }
    checks.push(("email".into(), email(config).await));
    let channels = &config.channels;
    if channels.matrix.enabled {
        checks.push(("matrix".into(), matrix(config).await));
    }
    if channels.irc.enabled {
        for (name, network) in &channels.irc.networks {
            checks.push((format!("irc: {name}"), tcp(&network.server).await));
        }
    }
    checks.extend(ownership_sync(config).await);
    let mut failed = 0;
    for (what, outcome) in &checks {
        match outcome {
            Ok(found) => println!("ok    {what}: {found}"),
            Err((wrong, fix)) => {
                failed += 1;
                println!("FAIL  {what}: {wrong}\n      fix: {fix}");
            }
        }
    }
    println!("{} check(s), {failed} failed", checks.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn config_summary(config: &Config) -> String {
    let (catalog, warnings) = crate::inspect::load_catalog(&config.bus.catalog_dirs);
    let mut found = format!(
        "loaded; {} schema catalog entries, site {}",
        catalog.len(),
        config.base_url()
    );
    if !warnings.is_empty() {
        found.push_str(&format!(
            "; {} catalog entries skipped (see `tidings inspect`)",
            warnings.len()
        ));
    }
    found
}

/// The CA (and CRL) fedmsg signatures are checked against load.
fn signatures(config: &Config) -> Outcome {
    let fix = "set bus.ca_cert (and bus.crl, if used) to readable PEM files: the CA that issues \
               the publishers' signing certificates and its revocation list";
    config
        .trust()
        .map_err(|e| (format!("{e:#}"), fix.to_string()))?;
    let shown = |path: &Option<std::path::PathBuf>| {
        path.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    Ok(match &config.bus.crl {
        Some(_) => format!(
            "checked against the CA in {}, revocations from {}",
            shown(&config.bus.ca_cert),
            shown(&config.bus.crl)
        ),
        None => format!("checked against the CA in {}", shown(&config.bus.ca_cert)),
    })
}

fn data_folder(config: &Config) -> Outcome {
    let dir = &config.data_dir;
    let fix = format!(
        "create {} and let the user Tidings runs as write to it, or set data_dir",
        dir.display()
    );
    std::fs::create_dir_all(dir).map_err(|e| (format!("{}: {e}", dir.display()), fix.clone()))?;
    tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| (format!("cannot write in {}: {e}", dir.display()), fix))?;
    Ok(format!("{} is writable", dir.display()))
}

async fn database(config: &Config) -> Outcome {
    let url = config.database_url();
    let shown = tidings_store::redact(&url);
    let fix = "check database_url (user, password, host, port, database name) and that the \
               server runs and accepts connections from here";
    limited(
        async {
            let store = tidings_store::Store::open_within(&url, Duration::from_secs(5))
                .await
                .map_err(|e| (format!("{shown}: {e}"), fix.to_string()))?;
            let counts = store.message_counts().await;
            store.close().await;
            let (messages, _) = counts.map_err(|e| (format!("{shown}: {e}"), fix.to_string()))?;
            Ok(format!("{shown}: {messages} message(s) archived"))
        },
        fix,
    )
    .await
}

fn zmq_endpoint(endpoint: &str) -> Outcome {
    let fix = "write ZeroMQ endpoints as tcp://host:port (a fedmsg publisher's PUB socket)";
    let rest = endpoint
        .strip_prefix("tcp://")
        .ok_or_else(|| ("not a tcp:// endpoint".to_string(), fix.to_string()))?;
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(
            "well formed (a subscriber cannot tell whether a publisher is there: publish one \
             message to see it arrive)"
                .into(),
        ),
        _ => Err(("no host:port after tcp://".into(), fix.to_string())),
    }
}

async fn amqp_broker(config: &Config, amqp: &crate::config::Amqp) -> Outcome {
    let bus = amqp.ingest(Duration::from_millis(config.database.retry_max_ms));
    let fix = "check bus.amqp.url (user, password, host, port, virtual host), \
               [bus.amqp.tls] for amqps:// (ca_cert, certfile, keyfile), and that the \
               exchange exists on the broker";
    limited(
        async {
            tidings_notifier::bus::amqp::check(&bus)
                .await
                .map_err(|e| (e.to_string(), fix.to_string()))?;
            Ok(format!(
                "{}: connected, exchange {} is there",
                bus.redacted_url(),
                bus.exchange
            ))
        },
        fix,
    )
    .await
}

/// A TCP connection to `address` (`host:port`).
async fn tcp(address: &str) -> Outcome {
    let fix = format!("check that {address} is right and reachable from here (firewall, DNS)");
    limited(
        async {
            TcpStream::connect(address)
                .await
                .map_err(|e| (format!("{address}: {e}"), fix.clone()))?;
            Ok(format!("{address} takes connections"))
        },
        &fix,
    )
    .await
}

async fn email(config: &Config) -> Outcome {
    let email = config.email();
    let Some(smtp) = &email.smtp_url else {
        let dir = config.mailbox_dir();
        let fix = format!(
            "let Tidings write to {} or set email.mailbox_dir; or set email.smtp_url to send \
             real mail",
            dir.display()
        );
        std::fs::create_dir_all(&dir)
            .map_err(|e| (format!("{}: {e}", dir.display()), fix.clone()))?;
        return Ok(format!(
            "no SMTP server: mail is written to the folder {} (set email.smtp_url to send it)",
            dir.display()
        ));
    };
    let fix = "check email.smtp_url (smtp://host:25, smtp://host:587?tls=required or \
               smtps://host:465) and that the server takes connections from here";
    let url = url::Url::parse(smtp).map_err(|e| {
        (
            format!("email.smtp_url does not parse: {e}"),
            fix.to_string(),
        )
    })?;
    let host = url.host_str().unwrap_or("localhost").to_string();
    let port = url
        .port()
        .unwrap_or(if url.scheme() == "smtps" { 465 } else { 25 });
    let shown = format!("{}://{host}:{port}", url.scheme());
    if url.scheme() == "smtps" {
        return tcp(&format!("{host}:{port}"))
            .await
            .map(|found| format!("{found} (TLS from the first byte: not spoken to further)"));
    }
    limited(
        async {
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| (format!("{shown}: {e}"), fix.to_string()))?;
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let greeting = lines
                .next_line()
                .await
                .map_err(|e| (format!("{shown}: {e}"), fix.to_string()))?
                .unwrap_or_default();
            if !greeting.starts_with("220") {
                return Err((
                    format!("{shown} did not greet as an SMTP server: {greeting:?}"),
                    fix.to_string(),
                ));
            }
            write
                .write_all(b"EHLO tidings-doctor\r\nQUIT\r\n")
                .await
                .map_err(|e| (format!("{shown}: {e}"), fix.to_string()))?;
            let answer = lines
                .next_line()
                .await
                .map_err(|e| (format!("{shown}: {e}"), fix.to_string()))?
                .unwrap_or_default();
            if !answer.starts_with("250") {
                return Err((format!("{shown} refused EHLO: {answer:?}"), fix.to_string()));
            }
            Ok(format!("{shown} answers SMTP"))
        },
        fix,
    )
    .await
}

async fn matrix(config: &Config) -> Outcome {
    let matrix = &config.channels.matrix;
    let base = matrix.homeserver.trim_end_matches('/').to_string();
    let fix = "check channels.matrix.homeserver and channels.matrix.access_token (the hub \
               account's; `/_matrix/client/v3/account/whoami` must accept it)";
    limited(
        async {
            let client = reqwest::Client::builder()
                .timeout(LIMIT)
                .build()
                .map_err(|e| (e.to_string(), fix.to_string()))?;
            let reply = client
                .get(format!("{base}/_matrix/client/v3/account/whoami"))
                .bearer_auth(&matrix.access_token)
                .send()
                .await
                .map_err(|e| (format!("{base}: {e}"), fix.to_string()))?;
            let status = reply.status();
            let body: serde_json::Value = reply.json().await.unwrap_or_default();
            match body["user_id"].as_str() {
                Some(user) if status.is_success() => Ok(format!("{base}: signed in as {user}")),
                _ => Err((format!("{base} answered {status}: {body}"), fix.to_string())),
            }
        },
        fix,
    )
    .await
}

/// `[ownership.sync]`'s sources, when set: the owner map is read whole and parsed; the
/// first page of the first group's members is read from the FASJSON API.
async fn ownership_sync(config: &Config) -> Vec<(String, Outcome)> {
    use tidings_notifier::ownership_sync::OwnershipSync;
    let sync_config = &config.ownership.sync;
    let sync = match OwnershipSync::new(sync_config) {
        Ok(Some(sync)) => sync,
        Ok(None) => return Vec::new(),
        Err(err) => {
            let fix =
                "correct [ownership.sync] (see docs/deploy.md, \"Ownership from the source\")";
            return vec![("ownership sync".into(), Err((err.to_string(), fix.into())))];
        }
    };
    let mut checks = Vec::new();
    if let Some(url) = &sync_config.owners_url {
        let fix = "set ownership.sync.owners_url to dist-git's owner map, \
                   https://src.fedoraproject.org/extras/pagure_owner_alias.json";
        let check = async {
            let packages = sync
                .owner_map(url)
                .await
                .map_err(|fault| (fault.to_string(), fix.to_string()))?;
            let groups: std::collections::BTreeSet<&str> = packages
                .values()
                .flatten()
                .filter(|o| o.kind == tidings_store::OwnerKind::Group)
                .map(|o| o.name.as_str())
                .collect();
            Ok(format!(
                "{url}: {} packages, owned by users and {} groups",
                packages.len(),
                groups.len()
            ))
        };
        checks.push((
            "ownership sync: owners".to_string(),
            limited(check, fix).await,
        ));
    }
    if let (Some(base), Some(group)) = (&sync_config.groups_url, sync_config.groups.first()) {
        let fix = "set ownership.sync.groups_url to a FASJSON API's base URL (its \
                   /groups/NAME/members/ answers a \"result\" list), and groups_token if it \
                   takes one; Fedora's own FASJSON needs Kerberos, which Tidings cannot do";
        let check = async {
            let (members, pages) = sync
                .first_page(base, group)
                .await
                .map_err(|fault| (fault.to_string(), fix.to_string()))?;
            Ok(format!(
                "{base}: group {group}: {members} members on page 1 of {pages}"
            ))
        };
        checks.push((
            "ownership sync: groups".to_string(),
            limited(check, fix).await,
        ));
    }
    checks
}
