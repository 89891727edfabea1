//! IRC for the tests: a real IRC server (ngircd, from Debian's `ngircd` package) on free
//! ports, plain and TLS (a certificate for 127.0.0.1 from a CA made in the test's folder),
//! and a second IRC client, a person in the test (say `bob`), that joins channels and
//! records every PRIVMSG it receives, with the length of the line as the server sent it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, owner_mark, wait_for, OWNER_ENV};

/// Where ngircd is: Debian puts it in /usr/sbin, which need not be on PATH.
fn ngircd_binary() -> Option<PathBuf> {
    let sbin = PathBuf::from("/usr/sbin/ngircd");
    if sbin.exists() {
        return Some(sbin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("ngircd"))
            .find(|p| p.exists())
    })
}

/// An ngircd of the test's own, in the foreground, stopped when dropped.
pub struct Ngircd {
    child: Option<Child>,
    binary: PathBuf,
    folder: PathBuf,
    /// The plain-text port.
    pub port: u16,
    /// The TLS port.
    pub tls_port: u16,
    /// The CA that signed the server's certificate (for `tls_ca_file`).
    pub ca_file: PathBuf,
}

impl Ngircd {
    /// Starts ngircd with a config written into `dir`; None (after the note) when ngircd is
    /// not installed outside CI.
    pub fn start(dir: &Path) -> Option<Ngircd> {
        let Some(binary) = ngircd_binary() else {
            super::skip_unless_ci("ngircd is not installed (apt-get install ngircd)");
            return None;
        };
        let folder = dir.join("ngircd");
        std::fs::create_dir_all(&folder).expect("ngircd folder");
        let ca_file = make_certificates(&folder);
        let (port, tls_port) = (free_port(), free_port());
        let conf = format!(
            "[Global]\n\
             Name = irc.test\n\
             Info = Tidings test server\n\
             AdminInfo1 = Tidings tests\n\
             AdminInfo2 = here\n\
             AdminEMail = tests@example.org\n\
             Listen = 127.0.0.1\n\
             Ports = {port}\n\
             MotdPhrase = Tidings test server\n\
             [Limits]\n\
             MaxConnectionsIP = 0\n\
             MaxPenaltyTime = 0\n\
             MaxNickLength = 30\n\
             PingTimeout = 300\n\
             [Options]\n\
             PAM = no\n\
             Ident = no\n\
             DNS = no\n\
             [SSL]\n\
             CertFile = {cert}\n\
             KeyFile = {key}\n\
             Ports = {tls_port}\n",
            cert = folder.join("server.crt").display(),
            key = folder.join("server.key").display(),
        );
        std::fs::write(folder.join("ngircd.conf"), conf).expect("ngircd.conf");
        let mut server = Ngircd {
            child: None,
            binary,
            folder,
            port,
            tls_port,
            ca_file,
        };
        server.run();
        Some(server)
    }

    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.folder.join("ngircd.log"))
            .expect("ngircd log");
        let child = Command::new(&self.binary)
            .arg("-n")
            .arg("-f")
            .arg(self.folder.join("ngircd.conf"))
            .env(OWNER_ENV, owner_mark())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("starting ngircd");
        self.child = Some(child);
        let (port, tls_port) = (self.port, self.tls_port);
        wait_for("ngircd to listen", Duration::from_secs(60), || {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("ngircd exited ({status}): {}", self.log());
            }
            (TcpStream::connect(("127.0.0.1", port)).is_ok()
                && TcpStream::connect(("127.0.0.1", tls_port)).is_ok())
            .then_some(())
        });
    }

    /// Kills the server (every connection drops).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.join("ngircd.log")).unwrap_or_default()
    }
}

impl Drop for Ngircd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (a self-signed server
/// certificate would be a CA used as an end entity, which rustls refuses): `server.crt`
/// and `server.key`. Returns the CA's file.
fn make_certificates(folder: &Path) -> PathBuf {
    let pki = super::Pki::new(folder.to_path_buf(), "Tidings test CA");
    pki.issue("server", "localhost", None, super::SERVER);
    pki.ca()
}

/// One PRIVMSG as a client received it.
#[derive(Debug, Clone)]
pub struct Privmsg {
    /// The sender's nick.
    pub from: String,
    /// The nick or channel it was sent to.
    pub target: String,
    pub text: String,
    /// The whole line's length as the server sent it, CRLF included.
    pub wire_bytes: usize,
}

/// A person on IRC: registered, in some channels, recording what it receives.
pub struct IrcClient {
    writer: TcpStream,
    received: Arc<Mutex<Vec<Privmsg>>>,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl IrcClient {
    /// Connects to 127.0.0.1:`port` as `nick` and joins `channels`; returns once the server
    /// says it is in them.
    pub fn connect(port: u16, nick: &str, channels: &[&str]) -> IrcClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to ngircd");
        let mut writer = stream.try_clone().expect("socket clone");
        let received = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (got, seen, mut answer) = (
            received.clone(),
            lines.clone(),
            stream.try_clone().expect("socket clone"),
        );
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let wire_bytes = line.len();
                let text = line.trim_end_matches(['\r', '\n']).to_string();
                line.clear();
                seen.lock().expect("lines").push(text.clone());
                if let Some(token) = text.strip_prefix("PING ") {
                    let _ = answer.write_all(format!("PONG {token}\r\n").as_bytes());
                    continue;
                }
                let Some((prefix, rest)) = text.strip_prefix(':').and_then(|t| t.split_once(' '))
                else {
                    continue;
                };
                let Some(rest) = rest.strip_prefix("PRIVMSG ") else {
                    continue;
                };
                let (target, message) = rest.split_once(" :").unwrap_or((rest, ""));
                got.lock().expect("received").push(Privmsg {
                    from: prefix.split('!').next().unwrap_or(prefix).to_string(),
                    target: target.to_string(),
                    text: message.to_string(),
                    wire_bytes,
                });
            }
        });
        writer
            .write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick} in a test\r\n").as_bytes())
            .expect("registering");
        let client = IrcClient {
            writer: writer.try_clone().expect("socket clone"),
            received,
            lines,
        };
        client.wait_line("the welcome", |l| l.contains(" 001 "));
        for channel in channels {
            writer
                .write_all(format!("JOIN {channel}\r\n").as_bytes())
                .expect("joining");
            let end_of_names = format!(" 366 {nick} {channel} ");
            client.wait_line("the channel's names", |l| l.contains(&end_of_names));
        }
        client
    }

    /// Waits (up to 30 s) until the server sent a line that satisfies `check`.
    pub fn wait_line(&self, what: &str, check: impl Fn(&str) -> bool) {
        wait_for(what, Duration::from_secs(30), || {
            self.lines
                .lock()
                .expect("lines")
                .iter()
                .any(|l| check(l))
                .then_some(())
        });
    }

    pub fn received(&self) -> Vec<Privmsg> {
        self.received.lock().expect("received").clone()
    }

    /// Waits until a received PRIVMSG satisfies `check` and returns it.
    pub fn wait_privmsg(
        &self,
        what: &str,
        limit: Duration,
        check: impl Fn(&Privmsg) -> bool,
    ) -> Privmsg {
        let started = Instant::now();
        loop {
            if let Some(found) = self.received().into_iter().find(|m| check(m)) {
                return found;
            }
            assert!(
                started.elapsed() < limit,
                "timed out after {limit:?} waiting for {what}; received: {:#?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a raw line (CRLF added) and waits until the server answers with a line that
    /// contains `answer`.
    pub fn command(&mut self, line: &str, answer: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("writing to ngircd");
        self.wait_line(&format!("the answer to {line}"), |l| l.contains(answer));
    }

    pub fn quit(&mut self) {
        let _ = self.writer.write_all(b"QUIT :bye\r\n");
    }
}
