//! FakeNtfy: a stand-in for ntfy, which is not packaged here. A small Python HTTP server that
//! follows ntfy's documented publish API (https://docs.ntfy.sh/publish/) as far as Tidings
//! uses it: a POST or PUT to `/<topic>` whose body is the message, with the `Title`,
//! `Priority`, `Tags` and `Click` headers (and their `X-` and short forms; RFC 2047 encoded
//! values decoded, as ntfy does), or a JSON publish to `/`; it answers 200 with ntfy's
//! message JSON (`{"id", "time", "event": "message", "topic", "message", …}`). A topic given
//! a token (`set_token`) needs `Authorization: Bearer <token>`: without it, or with another,
//! it answers 401 `{"code": 40101, "http": 401, "error": "unauthorized"}`. Every publish is
//! recorded as a JSON line, with what it answered. It is a fake: it checks what Tidings
//! sends against the documented API, not against ntfy's own code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, owner_mark, wait_for, OWNER_ENV};

const FAKE_NTFY: &str = r#"
import json, sys, pathlib, re, time, secrets
from email.header import decode_header, make_header
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

port, folder = int(sys.argv[1]), pathlib.Path(sys.argv[2])
TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")
PRIORITIES = {"1": 1, "min": 1, "2": 2, "low": 2, "3": 3, "default": 3,
              "4": 4, "high": 4, "5": 5, "max": 5, "urgent": 5}

def header(headers, *names):
    for name in names:
        value = headers.get(name)
        if value is not None:
            return value
    return None

def decoded(value):
    # ntfy decodes RFC 2047 encoded words (=?UTF-8?B?...?=) in header values.
    if value is None:
        return None
    return str(make_header(decode_header(value)))

class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def publish(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        path = self.path.split("?", 1)[0]
        raw_title = header(self.headers, "X-Title", "Title", "t")
        fields = {
            "title": decoded(raw_title),
            "priority": header(self.headers, "X-Priority", "Priority", "prio", "p"),
            "tags": header(self.headers, "X-Tags", "Tags", "Tag", "ta"),
            "click": header(self.headers, "X-Click", "Click"),
        }
        if path == "/":
            # JSON publishing: {"topic", "message", "title", "priority", "tags", "click"}.
            try:
                doc = json.loads(body)
            except ValueError:
                doc = {}
            topic = doc.get("topic", "")
            message = doc.get("message", "")
            fields = {"title": doc.get("title"), "priority": doc.get("priority"),
                      "tags": ",".join(doc.get("tags", [])) or None, "click": doc.get("click")}
            if fields["priority"] is not None:
                fields["priority"] = str(fields["priority"])
        else:
            topic = path[1:]
            message = body.decode("utf-8", "replace")
        record = {"method": self.command, "path": self.path, "topic": topic, "message": message,
                  "raw_title": raw_title, "authorization": self.headers.get("Authorization"),
                  "headers": {k.lower(): v for k, v in self.headers.items()}}
        record.update(fields)
        tokens_file = folder / "tokens.json"
        tokens = json.loads(tokens_file.read_text()) if tokens_file.exists() else {}
        if not TOPIC.match(topic):
            status, answer = 404, {"code": 40401, "http": 404, "error": "page not found"}
        elif topic in tokens and self.headers.get("Authorization") != "Bearer " + tokens[topic]:
            status, answer = 401, {"code": 40101, "http": 401, "error": "unauthorized",
                                   "link": "https://ntfy.sh/docs/publish/#authentication"}
        elif fields["priority"] is not None and fields["priority"].lower() not in PRIORITIES:
            status, answer = 400, {"code": 40007, "http": 400, "error": "invalid priority"}
        else:
            now = int(time.time())
            status = 200
            answer = {"id": secrets.token_urlsafe(9)[:12], "time": now, "expires": now + 43200,
                      "event": "message", "topic": topic, "message": message or "triggered"}
            if fields["title"]:
                answer["title"] = fields["title"]
            if fields["priority"] is not None:
                answer["priority"] = PRIORITIES[fields["priority"].lower()]
            if fields["tags"]:
                answer["tags"] = [t.strip() for t in fields["tags"].split(",") if t.strip()]
            if fields["click"]:
                answer["click"] = fields["click"]
        record["status"] = status
        with open(folder / "published.jsonl", "a") as out:
            out.write(json.dumps(record) + "\n")
        self.answer(status, answer)

    do_POST = publish
    do_PUT = publish

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// One publish as the fake saw it.
#[derive(Debug, Clone)]
pub struct Published {
    pub method: String,
    pub topic: String,
    pub message: String,
    /// The title, RFC 2047 decoded.
    pub title: String,
    /// The `Title` header as it arrived.
    pub raw_title: String,
    pub priority: String,
    pub tags: String,
    pub click: String,
    pub authorization: String,
    /// What the fake answered.
    pub status: u16,
}

/// FakeNtfy: a stand-in for ntfy, which is not packaged here (see the module doc).
pub struct FakeNtfy {
    child: Child,
    pub port: u16,
    folder: PathBuf,
}

impl FakeNtfy {
    pub fn start(dir: &Path) -> FakeNtfy {
        let folder = dir.join("ntfy");
        std::fs::create_dir_all(&folder).expect("fake ntfy folder");
        let port = free_port();
        let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let child = Command::new(python)
            .env(OWNER_ENV, owner_mark())
            .args(["-c", FAKE_NTFY, &port.to_string()])
            .arg(&folder)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(folder.join("fake_ntfy.log")).expect("log"))
            .spawn()
            .expect("starting the fake ntfy server (python3)");
        let fake = FakeNtfy {
            child,
            port,
            folder,
        };
        wait_for(
            "the fake ntfy server to listen",
            Duration::from_secs(20),
            || std::net::TcpStream::connect(("127.0.0.1", port)).ok(),
        );
        fake
    }

    /// The URL of `topic` on it.
    pub fn url(&self, topic: &str) -> String {
        format!("http://127.0.0.1:{}/{topic}", self.port)
    }

    /// From now on `topic` takes publishes with this access token only.
    pub fn set_token(&self, topic: &str, token: &str) {
        let file = self.folder.join("tokens.json");
        let mut tokens: serde_json::Map<String, serde_json::Value> = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        tokens.insert(topic.into(), token.into());
        std::fs::write(&file, serde_json::Value::Object(tokens).to_string()).expect("tokens file");
    }

    pub fn published(&self) -> Vec<Published> {
        let text = std::fs::read_to_string(self.folder.join("published.jsonl")).unwrap_or_default();
        let s = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("fake ntfy record");
                Published {
                    method: s(&v, "method"),
                    topic: s(&v, "topic"),
                    message: s(&v, "message"),
                    title: s(&v, "title"),
                    raw_title: s(&v, "raw_title"),
                    priority: s(&v, "priority"),
                    tags: s(&v, "tags"),
                    click: s(&v, "click"),
                    authorization: s(&v, "authorization"),
                    status: v["status"].as_u64().unwrap_or_default() as u16,
                }
            })
            .collect()
    }

    /// Waits until at least `n` publishes arrived, and returns them all.
    pub fn wait_published(&self, n: usize, limit: Duration) -> Vec<Published> {
        wait_for(&format!("{n} ntfy publishes"), limit, || {
            let got = self.published();
            (got.len() >= n).then_some(got)
        })
    }
}

impl Drop for FakeNtfy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
