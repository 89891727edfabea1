//! The IRC channel: one persistent connection per configured network
//! (`[channels.irc.networks.<name>]`), owned by a task of its own, that writes each
//! notification as `PRIVMSG` lines to a nick or a channel.
//!
//! - **Connection.** Plain TCP or TLS (rustls, the Mozilla roots plus `tls_ca_file` for a
//!   private CA; the certificate must name the host of `server`). With `sasl_username` set the
//!   hub signs in with SASL PLAIN (IRCv3 `CAP LS 302`, `CAP REQ :sasl`, `AUTHENTICATE`)
//!   before registering, and a server that does not offer SASL, or refuses the account, is a
//!   failed connection (never a silent fallback to an anonymous one). A nick in use (433)
//!   is tried again with `_` appended, up to [`NICK_TRIES`] times.
//! - **Reconnection.** A connection that fails or drops is made again after a wait that
//!   doubles from [`BACKOFF_FIRST`] up to [`BACKOFF_MAX`], each wait cut by a random part of
//!   up to a half so that many hubs do not come back at once; a send while the network is
//!   down is answered at once with a retry naming why. A server silent for [`IDLE_PING`] is
//!   pinged, and one silent for as long again is taken for gone. Channels the hub joined
//!   are joined again after a reconnect.
//! - **Targets.** A nick gets a private message. For a channel the hub joins it first (once;
//!   it remembers the channels it is in, and forgets one it is kicked or refused from).
//! - **Lines.** `Rendered::chat.text` is sent, split into as many `PRIVMSG` lines as it
//!   takes for each line, as other clients receive it (with the server's
//!   `:nick!user@host ` prefix, allowing [`USER_ALLOWANCE`] bytes for the user and
//!   [`HOST_ALLOWANCE`] for the host) and its CRLF, to stay within RFC 2812's 512 bytes.
//!   Lines are cut between UTF-8 characters, at a space where there is one.
//! - **Throttling.** Every line the hub writes (JOIN, PRIVMSG, PING) goes through a token
//!   bucket per network: `flood_burst` lines at once, then one per `flood_interval_ms`. A
//!   send whose lines could not all go out within its time limit is not started; it is
//!   answered `RateLimited` with the wait (which does not count as a failed attempt).
//! - **What `Sent` proves.** After a notification's lines the hub sends `PING :tidings-<n>`
//!   and waits for the server's matching `PONG`. Servers answer a client's commands in
//!   order, so by the PONG every error the server had about those lines has arrived: `Sent`
//!   means the server accepted every line for delivery to the nick or channel (IRC keeps
//!   no receipts, so it does not prove a person read it). An error numeric about the
//!   target before the PONG decides the outcome: no such nick (401, 406) is a retry (the
//!   person may be back on the network soon, and IRC keeps nothing for the absent;
//!   `sender.max_attempts` ends it, dead with the server's words); a full channel (471),
//!   too many channels (405) or a name held for now (437) is a retry; every other
//!   refusal (403 no such channel, 404 cannot send, 473/474/475 invite-only, banned, bad
//!   key, 477 registered nicks only, …) is permanent, with the server's text. No PONG
//!   within the time limit, or a connection that breaks during a send, is a retry: the
//!   lines may have gone out, so a notification can arrive twice (at-least-once).
//! - **Order.** One network's sends are written one at a time, in the order they reach its
//!   task, over one connection: notifications the sender hands over in order arrive in
//!   order.
//! - **Confirmation.** An IRC destination is confirmed by the code in its confirmation
//!   message, typed in by its owner; this channel sends that message like any other.
//! - **Shutdown.** When the channel is dropped (the sender stopped), each network's task
//!   says `QUIT` and closes, taking at most [`QUIT_WITHIN`]; nothing waits for it.
//!
//! Every network operation has a time limit: connecting and registering `timeout_secs`,
//! each send `timeout_secs` from the moment it is handed over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rand::Rng as _;
use tidings_rules::irc_fold;
use tidings_store::{ChannelKind, Destination};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};
use tokio_rustls::rustls;

use crate::channel::{Channel, SendFuture, SendResult};
use crate::render::Rendered;
use crate::{IrcConfig, IrcNetworkConfig, NotifierError};

/// RFC 2812: the most bytes of a line, CRLF included.
pub const MAX_LINE: usize = 512;
/// The bytes allowed for the user part of the prefix the server puts before the hub's lines.
pub const USER_ALLOWANCE: usize = 10;
/// The bytes allowed for the host part of that prefix.
pub const HOST_ALLOWANCE: usize = 63;
/// The first wait before connecting again.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait before connecting again.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long a server may be silent before the hub pings it (and again before it gives up).
pub const IDLE_PING: Duration = Duration::from_secs(90);
/// The longest the goodbye (`QUIT`) may take at shutdown.
pub const QUIT_WITHIN: Duration = Duration::from_secs(2);
/// How many nicks are tried (`tidings`, `tidings_`, …) when the nick is in use.
pub const NICK_TRIES: usize = 5;
/// The longest one line may take to write (the server's window was full that long).
const WRITE_WITHIN: Duration = Duration::from_secs(30);
/// The longest line read from a server; a longer one breaks the connection.
const MAX_READ: usize = 16 * 1024;
/// Sends waiting for one network's task.
const QUEUE: usize = 1024;

/// Writes notifications to IRC nicks and channels.
pub struct IrcChannel {
    timeout: Duration,
    networks: HashMap<String, Network>,
}

/// One configured network and the handle to its connection's task.
struct Network {
    name: String,
    config: Arc<IrcNetworkConfig>,
    tls: Option<tokio_rustls::TlsConnector>,
    /// The task's queue, once it runs (it is started inside the runtime, on first need).
    queue: Mutex<Option<mpsc::Sender<Job>>>,
}

/// One send handed to a network's task.
struct Job {
    target: String,
    text: String,
    deadline: Instant,
    reply: oneshot::Sender<SendResult>,
}

impl IrcChannel {
    /// The channel for `config`'s networks. Checks what can be checked before connecting (a
    /// server of the form `host:port`, a readable CA file, a SASL password with the
    /// account); inside a runtime it starts connecting at once.
    pub fn from_config(config: &IrcConfig) -> Result<Self, NotifierError> {
        let mut networks = HashMap::new();
        for (name, net) in &config.networks {
            let field = "channels.irc.networks";
            let bad = |reason: String| NotifierError::Config {
                field,
                reason: format!("{name}: {reason}"),
            };
            let (host, _) = split_server(&net.server)
                .ok_or_else(|| bad(format!("server must be host:port (got {:?})", net.server)))?;
            if net.nick.is_empty() || net.nick.contains([' ', '\r', '\n', '\0', ':']) {
                return Err(bad(format!("nick {:?} is not an IRC nick", net.nick)));
            }
            if net.sasl_username.is_some() != net.sasl_password.is_some() {
                return Err(bad(
                    "sasl_username and sasl_password go together: set both or neither".into(),
                ));
            }
            if net.flood_burst == 0 || net.timeout_secs == 0 {
                return Err(bad("timeout_secs and flood_burst must be at least 1".into()));
            }
            let tls = match net.tls {
                true => Some(tls_connector(net.tls_ca_file.as_deref()).map_err(&bad)?),
                false => None,
            };
            if tls.is_some() {
                rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                    bad(format!(
                        "server host {host:?} cannot be checked against a certificate: {e}"
                    ))
                })?;
            }
            networks.insert(
                name.clone(),
                Network {
                    name: name.clone(),
                    config: Arc::new(net.clone()),
                    tls,
                    queue: Mutex::new(None),
                },
            );
        }
        let timeout = config
            .networks
            .values()
            .map(|n| n.timeout_secs)
            .max()
            .unwrap_or(30);
        let channel = IrcChannel {
            timeout: Duration::from_secs(timeout),
            networks,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            for network in channel.networks.values() {
                let _ = network.queue();
            }
        }
        Ok(channel)
    }

    async fn deliver(&self, to: &Destination, rendered: &Rendered) -> SendResult {
        let Some((target, network)) = to.address.rsplit_once('@') else {
            return SendResult::Permanent(format!(
                "{:?} is not an IRC address (target@network)",
                to.address
            ));
        };
        let Some(net) = self.networks.get(&network.to_ascii_lowercase()) else {
            return SendResult::Permanent(format!(
                "{network:?} is not a configured IRC network (channels.irc.networks has: {})",
                self.networks.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        let Some(queue) = net.queue() else {
            return SendResult::Retry {
                after: None,
                reason: format!(
                    "IRC network {}: its connection task is not running",
                    net.name
                ),
            };
        };
        // A little before the sender's own cut-off, so that the reason is ours.
        let limit = Duration::from_secs(net.config.timeout_secs);
        let deadline = Instant::now() + limit - limit / 10;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            target: target.to_string(),
            text: rendered.chat.text.clone(),
            deadline,
            reply,
        };
        match queue.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return SendResult::RateLimited(Duration::from_millis(
                    net.config.flood_interval_ms.max(1000),
                ))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return SendResult::Retry {
                    after: None,
                    reason: format!("IRC network {}: the connection task ended", net.name),
                }
            }
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => SendResult::Retry {
                after: None,
                reason: format!("IRC network {}: the connection task ended", net.name),
            },
        }
    }
}

impl Network {
    /// The task's queue, starting the task if it is not running (None outside a runtime).
    fn queue(&self) -> Option<mpsc::Sender<Job>> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = queue.as_ref().filter(|q| !q.is_closed()) {
            return Some(sender.clone());
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (sender, jobs) = mpsc::channel(QUEUE);
        let task = Task {
            name: self.name.clone(),
            config: self.config.clone(),
            tls: self.tls.clone(),
            jobs,
            channels: BTreeMap::new(),
            joined: HashSet::new(),
            throttle: Throttle::new(
                self.config.flood_burst,
                Duration::from_millis(self.config.flood_interval_ms),
            ),
            pings: 0,
            stale: HashSet::new(),
        };
        runtime.spawn(task.run());
        *queue = Some(sender.clone());
        Some(sender)
    }
}

impl Channel for IrcChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Irc
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends to one network are written one after another over its one connection, so a
    /// few at once keep each network's queue fed.
    fn parallelism(&self) -> usize {
        8
    }

    fn send<'a>(&'a self, to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(self.deliver(to, rendered))
    }
}

/// `host` and `port` of `host:port` (`[v6]:port` too).
fn split_server(server: &str) -> Option<(&str, u16)> {
    let (host, port) = server.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// A TLS client trusting the Mozilla roots and the certificates in `ca_file`.
fn tls_connector(ca_file: Option<&std::path::Path>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("tls_ca_file {}: cannot read it: {e}", path.display()))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                format!("tls_ca_file {}: not PEM certificates: {e}", path.display())
            })?;
            roots.add(cert).map_err(|e| {
                format!(
                    "tls_ca_file {}: a certificate is unusable: {e}",
                    path.display()
                )
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "tls_ca_file {}: holds no PEM certificate",
                path.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A byte stream to a server, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One line of the IRC protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who sent it (`irc.example.org`, `nick!user@host`), if it says.
    pub prefix: Option<String>,
    /// The command or three-digit numeric, upper-cased.
    pub command: String,
    /// The parameters, the trailing one (after ` :`) last.
    pub params: Vec<String>,
}

impl Message {
    /// Parses one line (without its CRLF); IRCv3 tags are skipped. None for an empty line.
    pub fn parse(line: &str) -> Option<Message> {
        let mut rest = line.trim_end_matches(['\r', '\n']);
        if let Some(tagged) = rest.strip_prefix('@') {
            rest = tagged.split_once(' ').map(|(_, r)| r).unwrap_or("");
        }
        rest = rest.trim_start_matches(' ');
        let prefix = match rest.strip_prefix(':') {
            Some(prefixed) => {
                let (prefix, r) = prefixed.split_once(' ').unwrap_or((prefixed, ""));
                rest = r;
                Some(prefix.to_string())
            }
            None => None,
        };
        let mut params = Vec::new();
        let (command, mut rest) = match rest.trim_start_matches(' ').split_once(' ') {
            Some((command, r)) => (command, r),
            None => (rest.trim_start_matches(' '), ""),
        };
        if command.is_empty() {
            return None;
        }
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing.to_string());
                break;
            }
            match rest.split_once(' ') {
                Some((param, r)) => {
                    params.push(param.to_string());
                    rest = r;
                }
                None => {
                    params.push(rest.to_string());
                    break;
                }
            }
        }
        Some(Message {
            prefix,
            command: command.to_ascii_uppercase(),
            params,
        })
    }

    /// The nick of the prefix (`nick` of `nick!user@host`).
    fn nick(&self) -> Option<&str> {
        let prefix = self.prefix.as_deref()?;
        Some(prefix.split(['!', '@']).next().unwrap_or(prefix))
    }

    /// The three-digit numeric, if the command is one.
    fn numeric(&self) -> Option<u16> {
        match self.command.len() {
            3 => self.command.parse().ok(),
            _ => None,
        }
    }

    /// The last parameter: the human-readable text of most replies.
    fn text(&self) -> &str {
        self.params.last().map(String::as_str).unwrap_or_default()
    }

    /// The parameter at `i`, or "".
    fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or_default()
    }
}

/// The most bytes of text a `PRIVMSG` to `target` from `nick` may carry: what is left of
/// [`MAX_LINE`] after CRLF, the command, the target and the prefix the server adds.
pub fn text_budget(nick: &str, target: &str) -> usize {
    let prefix = 1 + nick.len() + 1 + USER_ALLOWANCE + 1 + HOST_ALLOWANCE + 1;
    let command = "PRIVMSG ".len() + target.len() + " :".len();
    MAX_LINE.saturating_sub(2 + prefix + command).max(16)
}

/// `text` as lines of at most `budget` bytes each: cut at line breaks, then between UTF-8
/// characters, at the last space that leaves a line at least half full where there is one.
/// NUL and CR/LF never reach a line; empty lines are left out.
pub fn split_text(text: &str, budget: usize) -> Vec<String> {
    let budget = budget.max(4);
    let mut lines = Vec::new();
    for paragraph in text.split(['\r', '\n']) {
        let mut rest: &str = paragraph;
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.len() <= budget {
                break;
            }
            let mut cut = budget;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let space = match rest.as_bytes().get(cut) {
                Some(b' ') => Some(cut),
                _ => rest[..cut].rfind(' '),
            };
            if let Some(space) = space.filter(|space| *space >= budget / 2) {
                cut = space;
            }
            let line = rest[..cut].trim_end_matches(' ').replace('\0', "");
            if !line.is_empty() {
                lines.push(line);
            }
            rest = &rest[cut..];
        }
        let line = rest.trim_end_matches(' ').replace('\0', "");
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// The SASL PLAIN message for `username`/`password` (no separate authorization identity),
/// as the `AUTHENTICATE` lines that carry it: base64 in pieces of 400 bytes, and `+` after
/// a last piece of exactly 400 (or for an empty message).
pub fn sasl_plain(username: &str, password: &str) -> Vec<String> {
    let encoded = BASE64.encode(format!("{username}\0{username}\0{password}"));
    let mut lines: Vec<String> = encoded
        .as_bytes()
        .chunks(400)
        .map(|chunk| format!("AUTHENTICATE {}", String::from_utf8_lossy(chunk)))
        .collect();
    if encoded.len() % 400 == 0 {
        lines.push("AUTHENTICATE +".into());
    }
    lines
}

/// A token bucket in the form IRC servers count lines: each line moves a clock one
/// interval on, and a line may go while the clock is less than `burst` intervals ahead of
/// now.
#[derive(Debug, Clone)]
pub struct Throttle {
    burst: u32,
    interval: Duration,
    clock: Option<Instant>,
}

impl Throttle {
    /// `burst` lines at once, then one per `interval`.
    pub fn new(burst: u32, interval: Duration) -> Throttle {
        Throttle {
            burst: burst.max(1),
            interval,
            clock: None,
        }
    }

    /// Takes a line's place at `now` and returns how long to wait before writing it.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let start = self.clock.map_or(now, |clock| clock.max(now));
        let ahead = self.interval.saturating_mul(self.burst - 1);
        let wait = start.saturating_duration_since(now).saturating_sub(ahead);
        self.clock = Some(start + self.interval);
        wait
    }

    /// How long the last of `lines` lines would wait if they were reserved at `now`.
    pub fn wait_for(&self, lines: usize, now: Instant) -> Duration {
        let mut trial = self.clone();
        (0..lines).fold(Duration::ZERO, |_, _| trial.reserve(now))
    }
}

/// The wait before connecting again after `failures` failures in a row, before jitter:
/// doubling from [`BACKOFF_FIRST`], at most [`BACKOFF_MAX`].
pub fn backoff_ceiling(failures: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(BACKOFF_MAX)
}

/// The wait with jitter: between a half and all of [`backoff_ceiling`].
fn backoff(failures: u32) -> Duration {
    let ceiling = backoff_ceiling(failures);
    ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// What one error numeric about a send's target makes of it.
pub fn judge_numeric(code: u16, target: &str, text: &str) -> SendResult {
    let said = format!("{code} {target} :{text}");
    match code {
        401 | 406 => SendResult::Retry {
            after: None,
            reason: format!("no such nick on the network now (the server said: {said})"),
        },
        405 | 437 | 471 => SendResult::Retry {
            after: None,
            reason: format!("the server refused for now: {said}"),
        },
        _ => SendResult::Permanent(format!("the server refused: {said}")),
    }
}

/// One connection to a server, registered.
struct Conn {
    reader: BufReader<tokio::io::ReadHalf<Box<dyn Io>>>,
    writer: tokio::io::WriteHalf<Box<dyn Io>>,
    /// What was read of a line not yet complete (reads are resumed, so cancel-safe).
    partial: Vec<u8>,
    /// The hub's nick on this connection.
    nick: String,
}

impl Conn {
    fn new(stream: Box<dyn Io>, nick: &str) -> Conn {
        let (reader, writer) = tokio::io::split(stream);
        Conn {
            reader: BufReader::new(reader),
            writer,
            partial: Vec::new(),
            nick: nick.to_string(),
        }
    }

    /// Writes one line (CRLF added), within [`WRITE_WITHIN`]: a server that stops reading
    /// is a broken connection.
    async fn write(&mut self, line: &str) -> Result<(), String> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let writer = &mut self.writer;
        let written = tokio::time::timeout(WRITE_WITHIN, async move {
            writer.write_all(&bytes).await?;
            writer.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing to the server: {e}")),
            Err(_) => Err(format!(
                "writing to the server: it took nothing in {} s",
                WRITE_WITHIN.as_secs()
            )),
        }
    }

    /// The next message from the server (empty lines skipped). Cancel-safe: a line read
    /// in part is kept for the next call.
    async fn read(&mut self) -> Result<Message, String> {
        loop {
            let room = (MAX_READ + 1).saturating_sub(self.partial.len()) as u64;
            let read = (&mut self.reader)
                .take(room)
                .read_until(b'\n', &mut self.partial)
                .await
                .map_err(|e| format!("reading from the server: {e}"))?;
            if read == 0 && !self.partial.ends_with(b"\n") {
                if self.partial.len() > MAX_READ {
                    return Err(format!("the server sent a line over {MAX_READ} bytes"));
                }
                return Err("the server closed the connection".into());
            }
            if !self.partial.ends_with(b"\n") {
                continue;
            }
            let line = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            if let Some(message) = Message::parse(&line) {
                return Ok(message);
            }
        }
    }
}

/// How a connection ended.
enum Ended {
    /// The channel was dropped: say goodbye and stop.
    Closed,
    /// The connection failed: connect again.
    Broken(String),
}

/// A network's connection task.
struct Task {
    name: String,
    config: Arc<IrcNetworkConfig>,
    tls: Option<tokio_rustls::TlsConnector>,
    jobs: mpsc::Receiver<Job>,
    /// Channels the hub has been asked to write to, folded → as named (joined again after
    /// a reconnect).
    channels: BTreeMap<String, String>,
    /// Channels (folded) the server said the hub is in on this connection.
    joined: HashSet<String>,
    throttle: Throttle,
    pings: u64,
    /// Tokens of PINGs whose PONG a send stopped waiting for: until they come, error
    /// numerics may be about those lines, not the current send's.
    stale: HashSet<String>,
}

impl Task {
    async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            let reason = match self.connect().await {
                Ok(mut conn) => {
                    tracing::info!(network = %self.name, nick = %conn.nick, "IRC connection up");
                    failures = 0;
                    match self.serve(&mut conn).await {
                        Ended::Closed => {
                            let _ = tokio::time::timeout(
                                QUIT_WITHIN,
                                conn.write("QUIT :Tidings is stopping"),
                            )
                            .await;
                            return;
                        }
                        Ended::Broken(reason) => reason,
                    }
                }
                Err(reason) => reason,
            };
            failures = failures.saturating_add(1);
            let wait = backoff(failures);
            tracing::warn!(
                network = %self.name,
                server = %self.config.server,
                error = %reason,
                retry_in_ms = wait.as_millis() as u64,
                "IRC connection failed"
            );
            // Sends while the network is down are answered at once.
            let until = Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    job = self.jobs.recv() => match job {
                        None => return,
                        Some(job) => {
                            let _ = job.reply.send(SendResult::Retry {
                                after: Some(until.saturating_duration_since(Instant::now())),
                                reason: format!(
                                    "not connected to IRC network {} ({}): {reason}",
                                    self.name, self.config.server
                                ),
                            });
                        }
                    },
                }
            }
        }
    }

    /// Connects, signs in and registers, within `timeout_secs`.
    async fn connect(&mut self) -> Result<Conn, String> {
        let limit = Duration::from_secs(self.config.timeout_secs);
        let deadline = Instant::now() + limit;
        let server = &self.config.server;
        let late = || {
            format!(
                "connecting to {server}: no welcome within {} s",
                limit.as_secs()
            )
        };
        let tcp = timeout_at(deadline, TcpStream::connect(server))
            .await
            .map_err(|_| late())?
            .map_err(|e| format!("connecting to {server}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Io> = match &self.tls {
            Some(connector) => {
                let (host, _) =
                    split_server(server).ok_or_else(|| format!("{server:?} is not host:port"))?;
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| format!("TLS name {host:?}: {e}"))?;
                let tls = timeout_at(deadline, connector.connect(name, tcp))
                    .await
                    .map_err(|_| late())?
                    .map_err(|e| format!("TLS with {server}: {e}"))?;
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        let mut conn = Conn::new(stream, &self.config.nick);
        timeout_at(deadline, register(&mut conn, &self.config))
            .await
            .map_err(|_| late())??;
        self.joined.clear();
        self.stale.clear();
        Ok(conn)
    }

    /// Serves sends over a registered connection until it breaks or the channel is dropped.
    async fn serve(&mut self, conn: &mut Conn) -> Ended {
        // Back into the channels written to before.
        let channels: Vec<String> = self.channels.values().cloned().collect();
        for channel in channels {
            let wait = self.throttle.reserve(Instant::now());
            if let Err(reason) = self
                .listen(conn, Instant::now() + wait, None, &mut None)
                .await
            {
                return Ended::Broken(reason);
            }
            if let Err(reason) = conn.write(&format!("JOIN {channel}")).await {
                return Ended::Broken(reason);
            }
        }
        let mut heard = Instant::now();
        let mut pinged = false;
        loop {
            tokio::select! {
                job = self.jobs.recv() => {
                    let Some(job) = job else { return Ended::Closed };
                    if job.reply.is_closed() {
                        continue;
                    }
                    match self.send(conn, &job).await {
                        Ok(result) => {
                            let _ = job.reply.send(result);
                        }
                        Err(reason) => {
                            let _ = job.reply.send(SendResult::Retry {
                                after: None,
                                reason: format!("IRC network {}: {reason}", self.name),
                            });
                            return Ended::Broken(reason);
                        }
                    }
                    heard = Instant::now();
                }
                message = conn.read() => match message {
                    Ok(message) => {
                        heard = Instant::now();
                        pinged = false;
                        if let Err(reason) = self.observe(conn, &message, None, &mut None).await {
                            return Ended::Broken(reason);
                        }
                    }
                    Err(reason) => return Ended::Broken(reason),
                },
                _ = tokio::time::sleep_until(heard + IDLE_PING) => {
                    if pinged {
                        return Ended::Broken(format!(
                            "the server was silent for {} s",
                            2 * IDLE_PING.as_secs()
                        ));
                    }
                    if let Err(reason) = conn.write("PING :tidings-keepalive").await {
                        return Ended::Broken(reason);
                    }
                    pinged = true;
                    heard = Instant::now();
                }
            }
        }
    }

    /// Writes one send's lines and waits for the server to have dealt with them. Err when
    /// the connection broke.
    async fn send(&mut self, conn: &mut Conn, job: &Job) -> Result<SendResult, String> {
        let folded = irc_fold(&job.target);
        let mut lines = Vec::new();
        if job.target.starts_with(['#', '&']) {
            self.channels
                .entry(folded.clone())
                .or_insert_with(|| job.target.clone());
            if !self.joined.contains(&folded) {
                lines.push(format!("JOIN {}", job.target));
            }
        }
        let text = split_text(&job.text, text_budget(&conn.nick, &job.target));
        if text.is_empty() {
            return Ok(SendResult::Permanent("the message is empty".into()));
        }
        lines.extend(text.iter().map(|t| format!("PRIVMSG {} :{t}", job.target)));
        self.pings += 1;
        let token = format!("tidings-{}", self.pings);
        lines.push(format!("PING :{token}"));
        let now = Instant::now();
        let wait = self.throttle.wait_for(lines.len(), now);
        if now + wait >= job.deadline {
            return Ok(SendResult::RateLimited(wait.max(Duration::from_secs(1))));
        }
        let mut refused = None;
        let mut written = Vec::new();
        for line in &lines {
            let wait = self.throttle.reserve(Instant::now());
            self.listen(conn, Instant::now() + wait, Some(&folded), &mut refused)
                .await?;
            // Refused already (say, the JOIN): the rest of the message is not written, but
            // the PING still is, so that what the server says about it is heard now.
            if refused.is_some() && line.starts_with("PRIVMSG ") {
                continue;
            }
            match timeout_at(job.deadline, conn.write(line)).await {
                Ok(written_ok) => written_ok?,
                Err(_) => return Err("writing to the server took too long".into()),
            }
            written.push(line);
        }
        loop {
            match timeout_at(job.deadline, conn.read()).await {
                Err(_) => {
                    self.stale.insert(token);
                    return Ok(refused.unwrap_or_else(|| SendResult::Retry {
                        after: None,
                        reason: format!(
                            "IRC network {}: the server did not answer PING within the time \
                             limit ({} of {} lines written); the message may have been delivered",
                            self.name,
                            written.len(),
                            lines.len()
                        ),
                    }));
                }
                Ok(message) => {
                    let message = message?;
                    if message.command == "PONG" && message.text() == token {
                        return Ok(refused.unwrap_or(SendResult::Sent));
                    }
                    self.observe(conn, &message, Some(&folded), &mut refused)
                        .await?;
                }
            }
        }
    }

    /// Reads and deals with what the server says until `until`.
    async fn listen(
        &mut self,
        conn: &mut Conn,
        until: Instant,
        target: Option<&str>,
        refused: &mut Option<SendResult>,
    ) -> Result<(), String> {
        while Instant::now() < until {
            match timeout_at(until, conn.read()).await {
                Err(_) => break,
                Ok(message) => self.observe(conn, &message?, target, refused).await?,
            }
        }
        Ok(())
    }

    /// Deals with one message: answers PINGs, keeps track of the nick and the channels the
    /// hub is in, and records an error numeric about `target` (folded) in `refused`.
    async fn observe(
        &mut self,
        conn: &mut Conn,
        message: &Message,
        target: Option<&str>,
        refused: &mut Option<SendResult>,
    ) -> Result<(), String> {
        let ours = message
            .nick()
            .is_some_and(|nick| irc_fold(nick) == irc_fold(&conn.nick));
        match message.command.as_str() {
            "PING" => conn.write(&format!("PONG :{}", message.text())).await?,
            "PONG" => {
                self.stale.remove(message.text());
            }
            "ERROR" => return Err(format!("the server closed the link: {}", message.text())),
            "NICK" if ours => conn.nick = message.param(0).to_string(),
            "JOIN" if ours => {
                self.joined.insert(irc_fold(message.param(0)));
            }
            "PART" if ours => {
                self.joined.remove(&irc_fold(message.param(0)));
            }
            "KICK" if irc_fold(message.param(1)) == irc_fold(&conn.nick) => {
                // Not joined again by itself: only when something is sent there next.
                self.joined.remove(&irc_fold(message.param(0)));
                self.channels.remove(&irc_fold(message.param(0)));
            }
            _ => {
                let Some(code) = message.numeric().filter(|c| (400..600).contains(c)) else {
                    return Ok(());
                };
                let about = message.param(1);
                if matches!(code, 403 | 405 | 437 | 471 | 473 | 474 | 475 | 477) {
                    self.joined.remove(&irc_fold(about));
                }
                // Refused for good: not joined again after a reconnect (a later send to it
                // tries once more).
                if matches!(code, 403 | 473 | 474 | 475 | 477) {
                    self.channels.remove(&irc_fold(about));
                }
                if refused.is_none()
                    && self.stale.is_empty()
                    && target.is_some_and(|t| t == irc_fold(about))
                {
                    *refused = Some(judge_numeric(code, about, message.text()));
                }
            }
        }
        Ok(())
    }
}

/// Registers on a fresh connection: SASL PLAIN first if the network has an account, then
/// NICK and USER, until the welcome (001).
async fn register(conn: &mut Conn, config: &IrcNetworkConfig) -> Result<(), String> {
    let sasl = config
        .sasl_username
        .as_deref()
        .zip(config.sasl_password.as_deref());
    if sasl.is_some() {
        conn.write("CAP LS 302").await?;
    }
    let mut nick = config.nick.clone();
    let mut tries = 1;
    conn.write(&format!("NICK {nick}")).await?;
    conn.write(&format!("USER {} 0 * :Tidings notifications", config.nick))
        .await?;
    let mut offered = String::new();
    loop {
        let message = conn.read().await?;
        let fail = |what: &str| Err(format!("{what} (the server said: {})", message.text()));
        match message.command.as_str() {
            "PING" => conn.write(&format!("PONG :{}", message.text())).await?,
            "ERROR" => return fail("the server closed the link"),
            "001" => {
                conn.nick = message.param(0).to_string();
                return Ok(());
            }
            "433" | "436" if tries < NICK_TRIES => {
                tries += 1;
                nick.push('_');
                conn.write(&format!("NICK {nick}")).await?;
            }
            "433" | "436" => {
                return fail(&format!(
                    "the nick {nick} and {} more are in use",
                    tries - 1
                ))
            }
            "432" => return fail(&format!("the server refuses the nick {nick}")),
            "464" | "465" => return fail("the server refused the hub"),
            "CAP" => match message.param(1).to_ascii_uppercase().as_str() {
                "LS" => {
                    offered.push(' ');
                    offered.push_str(message.text());
                    // `CAP * LS * :…` says more lines follow.
                    if message.param(2) == "*" && message.params.len() > 3 {
                        continue;
                    }
                    let sasl_offered = offered.split_whitespace().any(|cap| {
                        let (name, mechanisms) = cap.split_once('=').unwrap_or((cap, ""));
                        name == "sasl"
                            && (mechanisms.is_empty()
                                || mechanisms
                                    .split(',')
                                    .any(|m| m.eq_ignore_ascii_case("PLAIN")))
                    });
                    if !sasl_offered {
                        let _ = conn.write("CAP END").await;
                        return Err(format!(
                            "sasl_username is set but the server does not offer SASL PLAIN \
                             (its capabilities:{offered})"
                        ));
                    }
                    conn.write("CAP REQ :sasl").await?;
                }
                "ACK" if message.text().split_whitespace().any(|c| c == "sasl") => {
                    conn.write("AUTHENTICATE PLAIN").await?;
                }
                "NAK" => {
                    let _ = conn.write("CAP END").await;
                    return fail("the server would not enable SASL");
                }
                _ => {}
            },
            "AUTHENTICATE" if message.param(0) == "+" => {
                if let Some((username, password)) = sasl {
                    for line in sasl_plain(username, password) {
                        conn.write(&line).await?;
                    }
                }
            }
            "903" => conn.write("CAP END").await?,
            "902" | "904" | "905" | "906" | "908" => {
                let _ = conn.write("CAP END").await;
                return fail(&format!(
                    "SASL PLAIN sign-in as {:?} failed",
                    config.sasl_username.as_deref().unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn messages_parse_with_prefix_params_and_trailing_text() {
        let m = Message::parse(":irc.test 401 tidings nobody :No such nick or channel name\r\n")
            .unwrap();
        assert_eq!(m.prefix.as_deref(), Some("irc.test"));
        assert_eq!(m.numeric(), Some(401));
        assert_eq!(
            m.params,
            ["tidings", "nobody", "No such nick or channel name"]
        );
        let m = Message::parse("@time=2024 :bob!~bob@host PRIVMSG #chan :hi: there").unwrap();
        assert_eq!(m.nick(), Some("bob"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#chan", "hi: there"]);
        let m = Message::parse("ping irc.test").unwrap();
        assert_eq!(m.command, "PING");
        assert_eq!(m.text(), "irc.test");
        assert_eq!(m.prefix, None);
        let m = Message::parse(":irc.test CAP * LS * :multi-prefix sasl=PLAIN").unwrap();
        assert_eq!(m.params, ["*", "LS", "*", "multi-prefix sasl=PLAIN"]);
        assert_eq!(Message::parse("\r\n"), None);
        assert_eq!(Message::parse(":only.prefix"), None);
    }

    #[test]
    fn lines_stay_under_512_bytes_with_the_prefix_and_cut_between_characters() {
        let nick = "tidings";
        let target = "#fedora-test";
        let budget = text_budget(nick, target);
        let worst_prefix = 1 + nick.len() + 1 + USER_ALLOWANCE + 1 + HOST_ALLOWANCE + 1;
        for text in [
            "😀".repeat(400),
            "word ".repeat(300),
            format!("{}{}", "x".repeat(1000), "é".repeat(333)),
            "a".repeat(budget),
        ] {
            let lines = split_text(&text, budget);
            assert!(lines.len() >= 2 || text.len() <= budget);
            for line in &lines {
                let full = worst_prefix + format!("PRIVMSG {target} :{line}\r\n").len();
                assert!(full <= MAX_LINE, "{full} bytes");
                assert!(!line.is_empty());
            }
            let joined: String = lines.concat();
            assert_eq!(joined.replace(' ', ""), text.replace(' ', ""));
        }
        // At a space when there is one in the second half.
        let lines = split_text("aaaa bbbb cccc", 10);
        assert_eq!(lines, ["aaaa bbbb", "cccc"]);
        // Line breaks and NULs never reach the wire.
        assert_eq!(split_text("one\r\ntwo\0\n\n", 100), ["one", "two"]);
        assert!(split_text("   ", 100).is_empty());
    }

    #[test]
    fn sasl_plain_is_base64_of_the_nul_separated_account() {
        assert_eq!(
            sasl_plain("tidings", "hunter2"),
            ["AUTHENTICATE dGlkaW5ncwB0aWRpbmdzAGh1bnRlcjI="]
        );
        // A message of exactly 400 base64 bytes ends with `+`; longer ones are in pieces.
        let long = sasl_plain("u", &"p".repeat(296));
        assert_eq!(long.len(), 2, "{long:?}");
        assert_eq!(long[0].len(), "AUTHENTICATE ".len() + 400);
        assert_eq!(long[1], "AUTHENTICATE +");
        let longer = sasl_plain("u", &"p".repeat(400));
        assert_eq!(longer.len(), 2);
        assert_ne!(longer[1], "AUTHENTICATE +");
    }

    #[test]
    fn the_throttle_lets_a_burst_through_then_one_line_per_interval() {
        let second = Duration::from_secs(1);
        let mut t = Throttle::new(4, 2 * second);
        let now = Instant::now();
        let waits: Vec<Duration> = (0..6).map(|_| t.reserve(now)).collect();
        assert_eq!(waits, [0, 0, 0, 0, 2, 4].map(Duration::from_secs).to_vec());
        // Idle long enough and the burst is back.
        assert_eq!(t.wait_for(4, now + 20 * second), Duration::ZERO);
        assert_eq!(t.wait_for(5, now + 20 * second), 2 * second);
        // wait_for reserves nothing.
        assert_eq!(t.reserve(now + 20 * second), Duration::ZERO);
        let mut one = Throttle::new(1, second);
        assert_eq!(one.reserve(now), Duration::ZERO);
        assert_eq!(one.reserve(now), second);
    }

    #[test]
    fn reconnect_waits_double_up_to_a_minute() {
        assert_eq!(backoff_ceiling(1), BACKOFF_FIRST);
        assert_eq!(backoff_ceiling(2), 2 * BACKOFF_FIRST);
        assert_eq!(backoff_ceiling(4), 8 * BACKOFF_FIRST);
        assert_eq!(backoff_ceiling(100), BACKOFF_MAX);
        for failures in 1..10 {
            let wait = backoff(failures);
            assert!(wait <= backoff_ceiling(failures) && wait >= backoff_ceiling(failures) / 2);
        }
    }

    /// A scripted fake IRC server (ngircd, which the end-to-end tests use, has no SASL): it
    /// expects each line of `script` in turn from the client and answers it with the raw
    /// text beside it.
    async fn fake_server(
        script: Vec<(&'static str, &'static str)>,
    ) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            for (want, answer) in script {
                let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
                    .await
                    .expect("the client said nothing")
                    .unwrap()
                    .expect("the client hung up");
                assert_eq!(line, want);
                write.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        (addr, server)
    }

    fn sasl_network(server: &str) -> IrcNetworkConfig {
        IrcNetworkConfig {
            server: server.into(),
            tls: false,
            sasl_username: Some("tidings".into()),
            sasl_password: Some("hunter2".into()),
            ..IrcNetworkConfig::default()
        }
    }

    async fn register_with(config: &IrcNetworkConfig) -> Result<Conn, String> {
        let stream = TcpStream::connect(&config.server).await.unwrap();
        let mut conn = Conn::new(Box::new(stream), &config.nick);
        tokio::time::timeout(Duration::from_secs(5), register(&mut conn, config))
            .await
            .expect("registration hung")?;
        Ok(conn)
    }

    #[tokio::test]
    async fn sasl_plain_signs_in_before_registering_against_a_fake_server() {
        let (addr, server) = fake_server(vec![
            (
                "CAP LS 302",
                ":fake.test CAP * LS * :multi-prefix\r\n:fake.test CAP * LS :sasl=EXTERNAL,PLAIN\r\n",
            ),
            ("NICK tidings", ""),
            ("USER tidings 0 * :Tidings notifications", ""),
            ("CAP REQ :sasl", ":fake.test CAP * ACK :sasl\r\n"),
            ("AUTHENTICATE PLAIN", "AUTHENTICATE +\r\n"),
            (
                "AUTHENTICATE dGlkaW5ncwB0aWRpbmdzAGh1bnRlcjI=",
                ":fake.test 900 tidings tidings!t@h tidings :You are now logged in\r\n\
                 :fake.test 903 tidings :SASL authentication successful\r\n",
            ),
            (
                "CAP END",
                ":fake.test 433 * tidings :Nickname is already in use\r\n",
            ),
            ("NICK tidings_", ":fake.test 001 tidings_ :Welcome\r\n"),
        ])
        .await;
        let conn = register_with(&sasl_network(&addr)).await.unwrap();
        assert_eq!(conn.nick, "tidings_");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn sasl_is_never_skipped_when_the_server_lacks_it_or_refuses_the_account() {
        let (addr, server) = fake_server(vec![
            ("CAP LS 302", ":fake.test CAP * LS :multi-prefix\r\n"),
            ("NICK tidings", ""),
            ("USER tidings 0 * :Tidings notifications", ""),
            ("CAP END", ""),
        ])
        .await;
        let err = register_with(&sasl_network(&addr)).await.err().unwrap();
        assert!(err.contains("does not offer SASL PLAIN"), "{err}");
        server.await.unwrap();

        let (addr, server) = fake_server(vec![
            ("CAP LS 302", ":fake.test CAP * LS :sasl\r\n"),
            ("NICK tidings", ""),
            ("USER tidings 0 * :Tidings notifications", ""),
            ("CAP REQ :sasl", ":fake.test CAP * ACK :sasl\r\n"),
            ("AUTHENTICATE PLAIN", "AUTHENTICATE +\r\n"),
            (
                "AUTHENTICATE dGlkaW5ncwB0aWRpbmdzAGh1bnRlcjI=",
                ":fake.test 904 tidings :SASL authentication failed\r\n",
            ),
            ("CAP END", ""),
        ])
        .await;
        let err = register_with(&sasl_network(&addr)).await.err().unwrap();
        assert!(
            err.contains("SASL PLAIN sign-in as \"tidings\" failed"),
            "{err}"
        );
        assert!(err.contains("SASL authentication failed"), "{err}");
        server.await.unwrap();
    }

    #[test]
    fn error_numerics_say_retry_or_give_up() {
        assert!(matches!(
            judge_numeric(401, "nobody", "No such nick"),
            SendResult::Retry { reason, .. } if reason.contains("No such nick")
        ));
        assert!(matches!(
            judge_numeric(474, "#chan", "Cannot join channel (+b)"),
            SendResult::Permanent(reason) if reason.contains("474 #chan :Cannot join channel (+b)")
        ));
        assert!(matches!(
            judge_numeric(404, "#c", "x"),
            SendResult::Permanent(_)
        ));
        assert!(matches!(
            judge_numeric(471, "#c", "full"),
            SendResult::Retry { .. }
        ));
        assert_eq!(
            split_server("irc.libera.chat:6697"),
            Some(("irc.libera.chat", 6697))
        );
        assert_eq!(split_server("[::1]:6667"), Some(("::1", 6667)));
        assert_eq!(split_server("nohost"), None);
    }
}
