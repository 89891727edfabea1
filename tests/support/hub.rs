//! One hub under test: its data folder and settings, the admin commands, and `tidings serve`
//! as a child process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, http_get, owner_mark, wait_for, Smtp, BIN, OWNER_ENV};

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
        // Tests shorten `sender.lease_secs` down to 2 s, and every channel's timeout must be
        // shorter than the lease; the HTTP channels' receivers here answer at once.
        env.insert("TIDINGS_CHANNELS__WEBHOOK__TIMEOUT_SECS".into(), "1".into());
        env.insert("TIDINGS_CHANNELS__NTFY__TIMEOUT_SECS".into(), "1".into());
        env.insert("TIDINGS_SENDER__POLL_MS".into(), "100".into());
        // Bursts arrive whole: the flood limit is tested where it is set (tests/digests.rs).
        env.insert("TIDINGS_DELIVERY__FLOOD_MAX".into(), "0".into());
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

    /// A confirmed email destination for an existing user.
    pub fn confirmed_destination(&self, username: &str, address: &str) {
        self.run(&[
            "destination",
            "add",
            "--user",
            username,
            "--email",
            address,
            "--confirmed",
        ]);
    }

    /// A user with a confirmed email destination and one filter.
    pub fn user_with_filter(&self, username: &str, address: &str, condition: &str) {
        self.run(&["user", "add", username]);
        self.confirmed_destination(username, address);
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

    /// Lets the HTTP channels (webhook, ntfy) reach this machine's own addresses, where the
    /// tests' receivers listen.
    pub fn allow_private_targets(&mut self) {
        for channel in ["WEBHOOK", "NTFY"] {
            self.env.insert(
                format!("TIDINGS_CHANNELS__{channel}__ALLOW_PRIVATE_TARGETS"),
                "true".into(),
            );
        }
    }

    /// A filter of `user`'s named "my filter", delivering to every destination they have.
    pub fn add_filter(&self, user: &str, condition: &str) {
        self.run(&[
            "filter",
            "add",
            "--user",
            user,
            "--name",
            "my filter",
            "--condition",
            condition,
        ]);
    }

    /// Starts `tidings serve` and waits until its web server answers.
    pub fn start(&mut self) {
        self.start_with(&["serve"]);
    }

    /// Starts `tidings ARGS…` (a `serve` with options) and waits until its web server
    /// answers.
    pub fn start_with(&mut self, args: &[&str]) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).expect("log file");
        let child = self
            .command(args)
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

    pub fn assert_running(&self) {
        // A serve that exited cannot come up: say why instead of timing out.
        if let Some(child) = &self.serve {
            let id = child.id();
            // An exited child not yet waited for is a zombie: its /proc entry stays.
            let stat = std::fs::read_to_string(format!("/proc/{id}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            if !Path::new(&format!("/proc/{id}")).exists() || zombie {
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

    /// Publishes `lines` (fedmsg envelopes) on the hub's ZeroMQ endpoint with `tidings
    /// publish`, from a file named after `name`.
    pub fn publish(&self, name: &str, lines: &[String]) {
        let file = self.dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&file, lines.join("\n")).expect("writing messages");
        let file = file.display().to_string();
        self.run(&[
            "publish",
            "--endpoint",
            &self.zmq_endpoint,
            "--file",
            &file,
            "--timeout",
            "30",
        ]);
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
