//! The chat servers of `tidings bench e2e --channel irc`: an ngircd of the bench's own
//! (Debian's `/usr/sbin/ngircd`, plain text on a free loopback port, its flood penalty off),
//! the hub's network `bench` pointed at it, and one IRC client per user, connected under the
//! user's name as nick before anything is sent, that counts the PRIVMSG lines it receives.
//! The hub's throttle (`flood_burst`, `flood_interval_ms`: 4 lines, then one per 2 s by
//! default, what public networks ask) is the config's unless `--irc-flood-burst` and
//! `--irc-flood-interval-ms` say otherwise.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tidings_store::ChannelKind;

use crate::bench_e2e::{BenchChannel, E2eArgs};
use crate::config::Config;

/// The hub's IRC network in the bench.
const NETWORK: &str = "bench";

/// A chat server the bench started, stopped when dropped.
pub(crate) struct ChatServer {
    child: Child,
    port: u16,
    /// Matrix: the homeserver's base URL (none: IRC).
    matrix: Option<String>,
}

/// The password of the bench's Matrix accounts.
const PASSWORD: &str = "bench horse battery staple";

impl ChatServer {
    /// Starts the server `channel` needs (none for email, webhooks and ntfy) with its files
    /// under `data`, and points the hub's config at it.
    pub(crate) fn start(
        config: &mut Config,
        args: &E2eArgs,
        data: &Path,
    ) -> anyhow::Result<Option<ChatServer>> {
        match args.channel {
            BenchChannel::Irc => {}
            BenchChannel::Matrix => return start_synapse(config, args, data).map(Some),
            _ => return Ok(None),
        }
        let binary = ["/usr/sbin/ngircd", "/usr/bin/ngircd"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .context("ngircd is not installed (apt-get install ngircd)")?;
        let folder = data.join("ngircd");
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port for ngircd")?
            .port();
        let conf = format!(
            "[Global]\nName = irc.bench\nInfo = Tidings bench\nAdminInfo1 = bench\n\
             AdminInfo2 = here\nAdminEMail = bench@example.org\nListen = 127.0.0.1\n\
             Ports = {port}\nMotdPhrase = bench\n[Limits]\nMaxConnectionsIP = 0\n\
             MaxPenaltyTime = 0\nMaxNickLength = 30\nPingTimeout = 300\n[Options]\nPAM = no\n\
             Ident = no\nDNS = no\n"
        );
        let conf_file = folder.join("ngircd.conf");
        std::fs::write(&conf_file, conf)
            .with_context(|| format!("writing {}", conf_file.display()))?;
        let log = std::fs::File::create(folder.join("ngircd.log")).context("ngircd log")?;
        let mut child = Command::new(&binary)
            .arg("-n")
            .arg("-f")
            .arg(&conf_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("ngircd log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait()? {
                bail!("ngircd exited ({status}); see {}", folder.display());
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                bail!("ngircd did not listen within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        config.channels.irc.enabled = true;
        let network = config
            .channels
            .irc
            .networks
            .entry(NETWORK.into())
            .or_default();
        network.server = format!("127.0.0.1:{port}");
        network.tls = false;
        network.nick = "tidings".into();
        if let Some(burst) = args.irc_flood_burst {
            network.flood_burst = burst;
        }
        if let Some(interval) = args.irc_flood_interval_ms {
            network.flood_interval_ms = interval;
        }
        Ok(Some(ChatServer {
            child,
            port,
            matrix: None,
        }))
    }

    /// The kind of destination the bench's users get.
    pub(crate) fn kind(&self) -> ChannelKind {
        match self.matrix {
            Some(_) => ChannelKind::Matrix,
            None => ChannelKind::Irc,
        }
    }

    /// User `name`'s destination address.
    pub(crate) fn address(&self, name: &str) -> String {
        match self.matrix {
            Some(_) => format!("@{name}:localhost"),
            None => format!("{name}@{NETWORK}"),
        }
    }

    /// Connects one reader per name, each registered (welcomed) before this returns; on
    /// Matrix, registers each name and syncs as them, joining every room they are invited
    /// to and counting the messages.
    pub(crate) async fn readers(&self, names: &[String]) -> anyhow::Result<Readers> {
        if let Some(base) = &self.matrix {
            return matrix_readers(base, names).await;
        }
        let port = self.port;
        let names = names.to_vec();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Readers> {
            let received = Arc::new(AtomicU64::new(0));
            let mut connections = Vec::new();
            for name in names {
                connections.push(reader(port, &name, received.clone())?);
            }
            Ok(Readers {
                received,
                _connections: connections,
                tasks: Vec::new(),
            })
        })
        .await
        .context("reader thread")?
    }
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bench's IRC clients: how many PRIVMSG lines they received in all.
pub(crate) struct Readers {
    received: Arc<AtomicU64>,
    _connections: Vec<TcpStream>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Readers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Readers {
    pub(crate) fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// One client, nick `nick`, welcomed; a thread then answers PINGs and counts PRIVMSGs
/// until the connection closes.
fn reader(port: u16, nick: &str, received: Arc<AtomicU64>) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).context("connecting to ngircd")?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n")?;
    let mut lines = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            bail!("ngircd closed the connection of {nick}");
        }
        if let Some(rest) = line.strip_prefix("PING") {
            write!(stream, "PONG{rest}")?;
        }
        if line.split(' ').nth(1) == Some("001") {
            break;
        }
        if line.split(' ').nth(1).is_some_and(|c| c.starts_with('4')) {
            bail!("ngircd refused {nick}: {}", line.trim());
        }
    }
    stream.set_read_timeout(None)?;
    let mut writer = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if let Some(rest) = line.strip_prefix("PING") {
                let _ = write!(writer, "PONG{rest}");
            } else if line.split(' ').nth(1) == Some("PRIVMSG") {
                received.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Ok(stream)
}

/// Starts Synapse from the virtualenv `--synapse-venv` (default `target/test-tools/synapse`,
/// where `scripts/test` installs it) on SQLite under `data`,
/// with open registration and rate limits raised as in the tests, registers the hub's
/// account and points `[channels.matrix]` at it.
fn start_synapse(config: &mut Config, args: &E2eArgs, data: &Path) -> anyhow::Result<ChatServer> {
    let venv = args
        .synapse_venv
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/synapse"));
    let python = venv.join("bin/python");
    if !python.exists() {
        bail!(
            "Synapse is not installed at {} (python3 -m venv {0} && {0}/bin/pip install \
             matrix-synapse; or give --synapse-venv)",
            venv.display()
        );
    }
    let folder = data.join("synapse");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("finding a free port for Synapse")?
        .port();
    let f = folder.display();
    let limit = "{per_second: 100000, burst_count: 100000}";
    let yaml = format!(
        "server_name: localhost\n\
         pid_file: {f}/homeserver.pid\n\
         listeners:\n  - port: {port}\n    tls: false\n    type: http\n    x_forwarded: false\n    bind_addresses: ['127.0.0.1']\n    resources:\n      - names: [client]\n        compress: false\n\
         database:\n  name: sqlite3\n  args:\n    database: {f}/homeserver.db\n\
         media_store_path: {f}/media\n\
         signing_key_path: {f}/localhost.signing.key\n\
         enable_registration: true\n\
         enable_registration_without_verification: true\n\
         report_stats: false\n\
         trusted_key_servers: []\n\
         suppress_key_server_warning: true\n\
         enable_metrics: false\n\
         presence:\n  enabled: false\n\
         rc_message: {limit}\n\
         rc_registration: {limit}\n\
         rc_login:\n  address: {limit}\n  account: {limit}\n  failed_attempts: {limit}\n\
         rc_joins:\n  local: {limit}\n  remote: {limit}\n\
         rc_invites:\n  per_room: {limit}\n  per_user: {limit}\n  per_issuer: {limit}\n\
         rc_admin_redaction: {limit}\n"
    );
    let config_path = folder.join("homeserver.yaml");
    std::fs::write(&config_path, yaml)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let keys = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
        .arg(&config_path)
        .output()
        .context("running Synapse to make its signing key")?;
    if !keys.status.success() {
        bail!(
            "Synapse --generate-keys: {}",
            String::from_utf8_lossy(&keys.stderr)
        );
    }
    let log = std::fs::File::create(folder.join("synapse.log")).context("synapse log")?;
    let mut child = Command::new(&python)
        .args(["-m", "synapse.app.homeserver", "-c"])
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting Synapse")?;
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let token = runtime.block_on(async {
        let http = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "Synapse exited ({status}); see {}/synapse.log",
                    folder.display()
                );
            }
            let up = http
                .get(format!("{base}/_matrix/client/versions"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                bail!("Synapse did not answer within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        register(&http, &base, "tidings").await
    });
    let token = match token {
        Ok(token) => token,
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err);
        }
    };
    config.channels.matrix.enabled = true;
    config.channels.matrix.homeserver = base.clone();
    config.channels.matrix.access_token = token;
    Ok(ChatServer {
        child,
        port,
        matrix: Some(base),
    })
}

/// Registers `name` (open registration, the dummy stage) and returns its access token.
async fn register(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let url = format!("{base}/_matrix/client/v3/register");
    let mut body = serde_json::json!({
        "username": name,
        "password": PASSWORD,
        "auth": {"type": "m.login.dummy"},
    });
    for _ in 0..2 {
        let answer = http.post(&url).json(&body).send().await?;
        let status = answer.status();
        let value: serde_json::Value = answer.json().await.unwrap_or_default();
        if status.is_success() {
            return value["access_token"]
                .as_str()
                .map(str::to_string)
                .context("no access_token in the registration");
        }
        match value["session"].as_str() {
            Some(session) if status.as_u16() == 401 => {
                body["auth"]["session"] = serde_json::json!(session);
            }
            _ => bail!("registering {name}: {status} {value}"),
        }
    }
    bail!("registering {name}: the dummy stage was not accepted")
}

/// Registers each name and starts a task per name that syncs as them, joins every room they
/// are invited to, and counts the message events the hub sends them.
async fn matrix_readers(base: &str, names: &[String]) -> anyhow::Result<Readers> {
    let http = reqwest::Client::new();
    let received = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for name in names {
        let token = register(&http, base, name).await?;
        let (http, base, received) = (http.clone(), base.to_string(), received.clone());
        tasks.push(tokio::spawn(async move {
            let mut since: Option<String> = None;
            let mut invited: Vec<String> = Vec::new();
            loop {
                // A timeline long enough that a sync during a burst is not cut short.
                let mut url = format!(
                    "{base}/_matrix/client/v3/sync?timeout=5000&filter=\
                     %7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A1000%7D%7D%7D"
                );
                if let Some(s) = &since {
                    url.push_str(&format!("&since={s}"));
                }
                let value: serde_json::Value = match http.get(&url).bearer_auth(&token).send().await
                {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if let Some(next) = value["next_batch"].as_str() {
                    since = Some(next.to_string());
                }
                // Invitations are joined; one whose join failed is tried again next time
                // (a sync lists an invitation once).
                if let Some(rooms) = value["rooms"]["invite"].as_object() {
                    invited.extend(rooms.keys().cloned());
                }
                let mut failed = Vec::new();
                for room in invited.drain(..) {
                    let joined = http
                        .post(format!("{base}/_matrix/client/v3/join/{room}"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if !joined {
                        failed.push(room);
                    }
                }
                invited = failed;
                if let Some(rooms) = value["rooms"]["join"].as_object() {
                    let messages = rooms
                        .values()
                        .flat_map(|r| {
                            r["timeline"]["events"]
                                .as_array()
                                .cloned()
                                .unwrap_or_default()
                        })
                        .filter(|e| {
                            e["type"] == "m.room.message"
                                && e["sender"].as_str() == Some("@tidings:localhost")
                        })
                        .count();
                    received.fetch_add(messages as u64, Ordering::Relaxed);
                }
            }
        }));
    }
    Ok(Readers {
        received,
        _connections: Vec::new(),
        tasks,
    })
}
