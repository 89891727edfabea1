//! One role of a hub as a process of its own (`tidings web`, `tidings notifier`, `tidings
//! sender`), with its own log and its own `/metrics` listener, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::{free_port, http_get, wait_for, Hub};

/// A role process: `tidings <role>` with the hub's settings.
pub struct RoleProcess {
    pub name: String,
    pub metrics_port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Hub {
    /// Starts `tidings <role>` (named `name` in its log file and messages), with
    /// `/metrics` on a port of its own and any `extra` settings.
    pub fn spawn_role(&self, role: &str, name: &str, extra: &[(&str, &str)]) -> RoleProcess {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("role log file");
        let metrics_port = free_port();
        let mut cmd = self.command(&[role]);
        cmd.env(
            "TIDINGS_METRICS__LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        );
        for (key, value) in extra {
            cmd.env(key, value);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting tidings {role}: {e}"));
        let process = RoleProcess {
            name: name.to_string(),
            metrics_port,
            log,
            child: Some(child),
        };
        process.wait_log("it to run", &["tidings is running"]);
        process
    }
}

impl Hub {
    /// Starts `count` notifiers (`notifier-1`, …) consuming the hub's AMQP queue; returns
    /// once each one's consumer is connected.
    pub fn spawn_amqp_notifiers(&self, count: usize) -> Vec<RoleProcess> {
        (1..=count)
            .map(|n| {
                let notifier = self.spawn_role("notifier", &format!("notifier-{n}"), &[]);
                notifier.wait_log("its AMQP consumer", &["AMQP consumer connected"]);
                notifier
            })
            .collect()
    }
}

impl RoleProcess {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to a minute) until one line of the log contains every one of `parts`;
    /// fails at once, with the log, if the process exited.
    pub fn wait_log(&self, what: &str, parts: &[&str]) {
        let what = format!("{}: {what}", self.name);
        wait_for(&what, Duration::from_secs(60), || {
            let log = self.log();
            if log
                .lines()
                .any(|line| parts.iter().all(|part| line.contains(part)))
            {
                return Some(());
            }
            self.assert_running();
            None
        });
    }

    /// Fails, with the log, if the process exited.
    pub fn assert_running(&self) {
        if let Some(child) = &self.child {
            if !std::path::Path::new(&format!("/proc/{}", child.id())).exists() {
                panic!("{} exited:\n{}", self.name, self.log());
            }
        }
    }

    /// A counter from the process's `/metrics` (0 while it cannot be read).
    pub fn counter(&self, name: &str) -> u64 {
        http_get(self.metrics_port, "/metrics")
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let (key, value) = line.split_once(' ')?;
                    (key == name).then(|| value.trim().parse().ok())?
                })
            })
            .unwrap_or(0)
    }

    /// SIGKILL: no shutdown code runs, its database sessions are cut.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
