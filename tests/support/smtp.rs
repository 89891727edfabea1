//! A real SMTP server for the tests: aiosmtpd (PyPI) storing every mail in a Maildir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, owner_mark, wait_for, OWNER_ENV};

/// aiosmtpd with a handler that stores the mail, then waits before answering (argv: port,
/// delay in seconds, Maildir).
const SLOW_SERVER: &str = r#"
import asyncio, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox

class Slow(Mailbox):
    def __init__(self, path, delay):
        super().__init__(path)
        self.delay = delay
    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(self.delay)
        return answer

port, delay, maildir = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
Controller(Slow(maildir, delay), hostname="127.0.0.1", port=port).start()
while True:
    time.sleep(3600)
"#;

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
        Smtp::spawn(dir, port, None)
    }

    /// A server that stores each mail at once but answers its DATA only after `delay`: the
    /// client cannot know the mail arrived until then.
    pub fn start_slow(dir: &Path, delay: Duration) -> Smtp {
        Smtp::spawn(dir, free_port(), Some(delay))
    }

    fn spawn(dir: &Path, port: u16, delay: Option<Duration>) -> Smtp {
        let maildir = dir.join("maildir");
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut command = Command::new(python);
        command.env(OWNER_ENV, owner_mark());
        match delay {
            None => command.args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ]),
            Some(delay) => command.args([
                "-c",
                SLOW_SERVER,
                &port.to_string(),
                &delay.as_secs_f64().to_string(),
            ]),
        };
        let child = command
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
        let mut files = self.files();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// How many mails arrived so far, without reading them.
    pub fn count(&self) -> usize {
        self.files().len()
    }

    /// Waits until at least `n` mails arrived, counting files only (cheap for thousands).
    pub fn wait_count(&self, n: usize, limit: Duration) {
        wait_for(&format!("{n} mail(s) at the SMTP server"), limit, || {
            (self.count() >= n).then_some(())
        });
    }

    fn files(&self) -> Vec<PathBuf> {
        ["new", "cur"]
            .iter()
            .flat_map(|sub| {
                std::fs::read_dir(self.maildir.join(sub))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
            })
            .collect()
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
