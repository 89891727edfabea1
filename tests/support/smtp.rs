//! A real SMTP server for the tests: aiosmtpd (PyPI) storing every mail in a Maildir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, owner_mark, wait_for, OWNER_ENV};

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
