//! A webhook receiver for the tests: a Python HTTP server that records every POST and checks
//! its signature with the Standard Webhooks reference library (`standardwebhooks` from
//! PyPI), so what Tidings signs is checked by code that is not ours. How it answers is set
//! by a file the test writes: `ok` answers a challenge with it, `gone` 410, `redirect` 302,
//! `down` 503 with `Retry-After: 1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, owner_mark, wait_for, OWNER_ENV};

const RECEIVER: &str = r#"
import json, sys, pathlib
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from standardwebhooks.webhooks import Webhook

port, folder = int(sys.argv[1]), pathlib.Path(sys.argv[2])

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        secret = (folder / "secret").read_text().strip() if (folder / "secret").exists() else ""
        try:
            Webhook(secret).verify(body, dict(self.headers))
            verified = "yes"
        except Exception as e:
            verified = "no: %r" % (e,)
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                  "body": body.decode(), "verified": verified}
        mode = (folder / "mode").read_text().strip() if (folder / "mode").exists() else "ok"
        with open(folder / "received.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")
        if mode == "gone":
            self.send_response(410); self.end_headers(); return
        if mode == "redirect":
            self.send_response(302); self.send_header("Location", "/elsewhere"); self.end_headers(); return
        if mode == "down":
            self.send_response(503); self.send_header("Retry-After", "1"); self.end_headers(); return
        data = json.loads(body).get("data", {})
        answer = json.dumps({"challenge": data["challenge"]} if "challenge" in data else {}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: serde_json::Map<String, serde_json::Value>,
    pub body: serde_json::Value,
    /// "yes", or why the reference library refused the signature.
    pub verified: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
    }
}

pub struct WebhookReceiver {
    child: Child,
    pub port: u16,
    folder: PathBuf,
}

impl WebhookReceiver {
    pub fn start(dir: &Path) -> WebhookReceiver {
        let folder = dir.join("webhook");
        std::fs::create_dir_all(&folder).expect("receiver folder");
        let port = free_port();
        let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .env(OWNER_ENV, owner_mark())
            .args(["-c", RECEIVER, &port.to_string()])
            .arg(&folder)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(folder.join("receiver.log")).expect("log"))
            .spawn()
            .expect("starting the webhook receiver (python3 with standardwebhooks)");
        let receiver = WebhookReceiver {
            child,
            port,
            folder,
        };
        wait_for(
            "the webhook receiver to listen",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
        receiver
    }

    /// The URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The secret signatures are checked with.
    pub fn set_secret(&self, secret: &str) {
        std::fs::write(self.folder.join("secret"), secret).expect("secret file");
    }

    /// How it answers from now on: `ok`, `gone`, `redirect` or `down`.
    pub fn set_mode(&self, mode: &str) {
        std::fs::write(self.folder.join("mode"), mode).expect("mode file");
    }

    pub fn received(&self) -> Vec<Received> {
        let text = std::fs::read_to_string(self.folder.join("received.jsonl")).unwrap_or_default();
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("receiver record");
                Received {
                    path: v["path"].as_str().unwrap_or_default().to_string(),
                    headers: v["headers"].as_object().cloned().unwrap_or_default(),
                    body: serde_json::from_str(v["body"].as_str().unwrap_or("null"))
                        .unwrap_or(serde_json::Value::Null),
                    verified: v["verified"].as_str().unwrap_or_default().to_string(),
                }
            })
            .collect()
    }

    /// Waits until at least `n` POSTs arrived, and returns them all.
    pub fn wait_received(&self, n: usize, limit: Duration) -> Vec<Received> {
        wait_for(&format!("{n} webhook POSTs"), limit, || {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
