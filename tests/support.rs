//! Harness: temp data folders, a real SMTP server (aiosmtpd writing a Maildir), a fresh
//! PostgreSQL database per test (or a PostgreSQL server of the test's own, to stop and
//! start), a small tmpfs to fill, and `tidings serve` as a child process.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` until it returns Some or `limit` passes.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Marks every process a test starts (and, through the environment, everything those start)
/// with the test process's id: `<pid>` or `<pid>:<tag>`.
pub const OWNER_ENV: &str = "TIDINGS_TEST_OWNER";

/// This test process's mark; the first call also ends what earlier runs left behind.
pub fn owner_mark() -> String {
    static REAPED: std::sync::Once = std::sync::Once::new();
    REAPED.call_once(reap_orphans);
    std::process::id().to_string()
}

/// The live (not zombie) processes whose environment carries exactly this mark.
pub fn marked(mark: &str) -> Vec<u32> {
    let wanted = format!("{OWNER_ENV}={mark}");
    processes()
        .filter(|(_, env)| env.contains(&wanted))
        .map(|(pid, _)| pid)
        .collect()
}

/// Every live process with its environment (zombies and unreadable ones left out).
fn processes() -> impl Iterator<Item = (u32, Vec<String>)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
            if state == "Z" {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            let env = environ
                .split(|b| *b == 0)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            Some((pid, env))
        })
}

/// A test run killed outright (SIGKILL, a CI time limit) runs no clean-up: on the next run,
/// kill whatever carries the mark of a test process that no longer exists.
fn reap_orphans() {
    let prefix = format!("{OWNER_ENV}=");
    for (pid, env) in processes() {
        let Some(owner) = env.iter().find_map(|e| e.strip_prefix(&prefix)) else {
            continue;
        };
        let owner = owner.split(':').next().unwrap_or_default();
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A real SMTP server: aiosmtpd storing every mail in a Maildir.
pub struct Smtp {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl Smtp {
    pub fn start(dir: &Path) -> Smtp {
        Smtp::start_on(dir, free_port())
    }

    /// On a given port (one a test's silent server held before, say).
    pub fn start_on(dir: &Path, port: u16) -> Smtp {
        let maildir = dir.join("maildir");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .env(OWNER_ENV, owner_mark())
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting aiosmtpd (pip install aiosmtpd)");
        let smtp = Smtp {
            child,
            port,
            maildir,
        };
        wait_for("aiosmtpd to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        smtp
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far, raw.
    pub fn mails(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .flat_map(|sub| {
                std::fs::read_dir(self.maildir.join(sub))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
            })
            .collect();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// Waits until at least `n` mails arrived; returns them all.
    pub fn wait_mails(&self, n: usize, limit: Duration) -> Vec<Vec<u8>> {
        wait_for(&format!("{n} mail(s) at the SMTP server"), limit, || {
            let mails = self.mails();
            (mails.len() >= n).then_some(mails)
        })
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PostgreSQL database made for one test, dropped after it.
pub struct PgDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDatabase {
    /// A fresh database, or None when `TIDINGS_TEST_POSTGRES` is unset outside CI. In CI
    /// (CI set) a missing PostgreSQL fails the test instead of skipping it.
    pub fn create() -> Option<PgDatabase> {
        let admin = match std::env::var("TIDINGS_TEST_POSTGRES") {
            Ok(url) => url,
            Err(_) if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
                panic!("TIDINGS_TEST_POSTGRES is not set in CI: the PostgreSQL tests must run")
            }
            Err(_) => {
                eprintln!("note: TIDINGS_TEST_POSTGRES unset; skipping the PostgreSQL half");
                return None;
            }
        };
        let name = format!("tidings_e2e_{}", uuid_like());
        runtime().block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connecting to TIDINGS_TEST_POSTGRES");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
        });
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        Some(PgDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        runtime().block_on(async move {
            use sqlx::Connection as _;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await;
            }
        });
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// One hub's settings and data folder; runs admin commands and `serve`.
pub struct Hub {
    pub dir: tempfile::TempDir,
    pub env: BTreeMap<String, String>,
    pub web_port: u16,
    /// Where `/metrics` is served (`metrics.listen`); the public web port has none.
    pub metrics_port: u16,
    pub zmq_endpoint: String,
    serve: Option<Child>,
}

impl Hub {
    pub fn new(smtp: Option<&Smtp>, database_url: Option<&str>) -> Hub {
        let dir = tempfile::tempdir().expect("temp dir");
        let web_port = free_port();
        let metrics_port = free_port();
        let zmq_endpoint = format!("tcp://127.0.0.1:{}", free_port());
        let mut env = BTreeMap::new();
        env.insert(
            "TIDINGS_DATA_DIR".into(),
            dir.path().join("data").display().to_string(),
        );
        env.insert(
            "TIDINGS_WEB__LISTEN".into(),
            format!("127.0.0.1:{web_port}"),
        );
        env.insert(
            "TIDINGS_METRICS__LISTEN".into(),
            format!("127.0.0.1:{metrics_port}"),
        );
        env.insert(
            "TIDINGS_BUS__ZMQ_ENDPOINTS".into(),
            format!("[\"{zmq_endpoint}\"]"),
        );
        env.insert(
            "TIDINGS_EMAIL__FROM".into(),
            "Tidings <tidings@hub.example.org>".into(),
        );
        env.insert("TIDINGS_MATCHER__POLL_MS".into(), "200".into());
        env.insert("TIDINGS_SENDER__POLL_MS".into(), "100".into());
        env.insert("TIDINGS_LOG__LEVEL".into(), "info".into());
        if let Some(smtp) = smtp {
            env.insert("TIDINGS_EMAIL__SMTP_URL".into(), smtp.url());
        }
        if let Some(url) = database_url {
            env.insert("TIDINGS_DATABASE_URL".into(), url.into());
        }
        Hub {
            dir,
            env,
            web_port,
            metrics_port,
            zmq_endpoint,
            serve: None,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .envs(&self.env)
            .env(OWNER_ENV, owner_mark());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        cmd
    }

    /// Runs a command to completion and returns its output; panics with stderr on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.output(args, None);
        assert!(
            out.status.success(),
            "tidings {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("running tidings");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("writing stdin");
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().expect("tidings output")
    }

    /// A user with a confirmed email destination and one filter.
    pub fn user_with_filter(&self, username: &str, address: &str, condition: &str) {
        self.run(&["user", "add", username]);
        self.run(&[
            "destination",
            "add",
            "--user",
            username,
            "--email",
            address,
            "--confirmed",
        ]);
        self.run(&[
            "filter",
            "add",
            "--user",
            username,
            "--name",
            "my filter",
            "--condition",
            condition,
        ]);
    }

    /// Starts `tidings serve` and waits until its web server answers.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).expect("log file");
        let child = self
            .command(&["serve"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting serve");
        self.serve = Some(child);
        let port = self.web_port;
        wait_for(
            "tidings serve to answer /healthz",
            Duration::from_secs(60),
            || {
                self.assert_running();
                http_get(port, "/healthz").filter(|body| body.contains("ok"))
            },
        );
    }

    fn assert_running(&self) {
        // A serve that exited cannot come up: say why instead of timing out.
        if let Some(child) = &self.serve {
            let id = child.id();
            if !Path::new(&format!("/proc/{id}")).exists() {
                panic!("tidings serve exited: {}", self.log());
            }
        }
    }

    /// The process id of `tidings serve`, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.serve.as_ref().map(Child::id)
    }

    /// SIGTERM, then waits up to `limit` for the exit. Returns the exit status (None if it
    /// did not exit in time; it is killed then) and how long it took.
    pub fn terminate(&mut self, limit: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let Some(mut child) = self.serve.take() else {
            panic!("tidings serve is not running");
        };
        let started = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM failed");
        loop {
            if let Some(status) = child.try_wait().expect("waiting for serve") {
                return (Some(status), started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.serve.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Waits until one line of serve's log contains every one of `parts`.
    pub fn wait_log_line(&self, what: &str, limit: Duration, parts: &[&str]) {
        wait_for(what, limit, || {
            self.log()
                .lines()
                .any(|line| parts.iter().all(|part| line.contains(part)))
                .then_some(())
        });
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::from_str(self.run(&["outbox", "stats"]).trim()).expect("stats JSON")
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP GET on loopback; the body on a 200, else None.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// An HTTP response: status, head (status line and headers) and body.
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    /// A header's value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// A minimal HTTP request on loopback (a 5 s read limit), with an optional bearer token and
/// JSON body. None when the connection fails or no answer comes in time.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Option<Response> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    stream.write_all(body).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Response {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

/// Whether a test that needs root or local tools may be skipped here: outside CI, yes (with
/// a note saying why); in CI it must run, so this fails.
pub fn skip_unless_ci(why: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") {
        panic!("CI must run this test, but {why}");
    }
    eprintln!("note: skipping: {why}");
    true
}

/// A small tmpfs of the test's own, to put a hub's data folder on and fill up. Unmounted
/// (lazily: the hub may still hold files) when dropped, also when the test fails.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None (outside CI) when mounting is not possible here: it needs root.
    pub fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted && skip_unless_ci("mounting a tmpfs needs root") {
            return None;
        }
        Some(SmallDisk { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a ballast file until the disk is full.
    pub fn fill(&self) {
        use std::io::Write as _;
        let mut ballast = std::fs::File::create(self.path().join("ballast")).expect("ballast");
        let chunk = vec![0x55u8; 64 * 1024];
        while ballast.write_all(&chunk).is_ok() {}
        while ballast.write_all(&[0x55]).is_ok() {}
    }

    /// Removes the ballast.
    pub fn free(&self) {
        std::fs::remove_file(self.path().join("ballast")).expect("removing the ballast");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// A PostgreSQL server of the test's own, on its own port and data folder, that the test
/// stops and starts: `initdb` and `pg_ctl` from Debian's packages, run as the `postgres`
/// user (initdb refuses root). Stopped for good when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PgServer {
    /// A fresh cluster, started. None (outside CI) when PostgreSQL's programs or root are
    /// missing.
    pub fn start() -> Option<PgServer> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|bin| bin.join("initdb").exists())
            .max_by_key(|bin| {
                bin.parent()
                    .and_then(|v| v.file_name())
                    .and_then(|v| v.to_str())
                    .and_then(|v| v.parse::<u32>().ok())
            });
        let Some(bin) = bin else {
            skip_unless_ci("PostgreSQL's initdb is not in /usr/lib/postgresql/*/bin");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !owned
            && skip_unless_ci(
                "the PostgreSQL server's folder cannot be given to the postgres user (not root?)",
            )
        {
            return None;
        }
        let server = PgServer {
            dir,
            bin,
            port: free_port(),
        };
        let out = server
            .as_postgres("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(server.data())
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.resume();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .env(OWNER_ENV, owner_mark());
        cmd.stdout(Stdio::null());
        cmd
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options, "-w", "-t", "60"])
            .args(args)
            .output()
            .expect("running pg_ctl")
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        let out = self.pg_ctl(&["-m", "fast", "stop"]);
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let out = self.pg_ctl(&["start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}

/// The peak resident memory of a process (VmHWM), in bytes.
pub fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmHWM in /proc status")
}

/// A ZeroMQ publisher bound where a hub subscribes (XPUB, so it knows when the hub has
/// subscribed).
pub struct Publisher {
    _ctx: zmq::Context,
    pub socket: zmq::Socket,
}

impl Publisher {
    /// Binds `endpoint` and waits for the hub's subscription.
    pub fn bind(endpoint: &str) -> Publisher {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::XPUB).expect("XPUB");
        socket.bind(endpoint).expect("bind");
        socket.set_rcvtimeo(30_000).expect("timeout");
        socket.set_linger(1_000).expect("linger");
        let publisher = Publisher { _ctx: ctx, socket };
        publisher.wait_subscribed();
        publisher
    }

    /// Waits until the hub (re)subscribes: XPUB hands subscriptions up as messages starting
    /// with 1.
    pub fn wait_subscribed(&self) {
        loop {
            let message = self.socket.recv_bytes(0).expect("the hub subscribes");
            if message.first() == Some(&1) {
                return;
            }
        }
    }

    pub fn send(&self, frames: &[Vec<u8>]) {
        self.socket.send_multipart(frames.iter(), 0).expect("send");
    }

    /// A fedmsg message: [topic, envelope].
    pub fn send_envelope(&self, envelope: &str) {
        let topic = serde_json::from_str::<serde_json::Value>(envelope)
            .ok()
            .and_then(|v| v["topic"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.send(&[topic.into_bytes(), envelope.as_bytes().to_vec()]);
    }
}

/// A fedmsg envelope as JSON text.
pub fn envelope(id: &str, topic: &str, body: serde_json::Value) -> String {
    serde_json::json!({ "topic": topic, "msg": body, "msg_id": id, "timestamp": 1_700_000_000.0, "i": 1 }).to_string()
}

/// The Message-ID header of a raw mail.
pub fn message_id(raw: &[u8]) -> String {
    let parsed = mailparse::parse_mail(raw).expect("a parsable mail");
    use mailparse::MailHeaderMap as _;
    parsed
        .headers
        .get_first_value("Message-ID")
        .expect("a Message-ID")
}
