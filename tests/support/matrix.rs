//! A real Matrix homeserver for the tests: Synapse (`matrix-synapse` from PyPI, installed by
//! `scripts/test` into `target/test-tools/synapse`), on SQLite, in the test's folder, on a
//! port of its own, with rate limits raised so tests are not slowed. Users are registered
//! through its shared-secret admin API (`register_new_matrix_user`), and a [`MatrixUser`]
//! is a second client reading what arrives, by the client-server API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use super::{free_port, owner_mark, wait_for, OWNER_ENV};

const SHARED_SECRET: &str = "tidings-test-registration-secret";
const PASSWORD: &str = "correct horse battery staple";

/// Where the Synapse virtualenv is: `TIDINGS_TEST_SYNAPSE` or `target/test-tools/synapse`.
fn venv() -> PathBuf {
    let venv = std::env::var_os("TIDINGS_TEST_SYNAPSE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/synapse"));
    assert!(
        venv.join("bin/python").exists(),
        "Synapse is not installed at {} (scripts/test installs it: python3 -m venv {0} && \
         {0}/bin/pip install matrix-synapse)",
        venv.display()
    );
    venv
}

pub struct Synapse {
    child: Child,
    pub port: u16,
    folder: PathBuf,
    http: reqwest::blocking::Client,
}

impl Synapse {
    /// Starts a homeserver named `localhost` and waits until it answers.
    pub fn start(dir: &Path) -> Synapse {
        let venv = venv();
        let folder = dir.join("synapse");
        std::fs::create_dir_all(&folder).expect("synapse folder");
        let port = free_port();
        let f = folder.display();
        let limit = "{per_second: 1000, burst_count: 1000}";
        let config = format!(
            "server_name: localhost\n\
             pid_file: {f}/homeserver.pid\n\
             listeners:\n  - port: {port}\n    tls: false\n    type: http\n    x_forwarded: false\n    bind_addresses: ['127.0.0.1']\n    resources:\n      - names: [client]\n        compress: false\n\
             database:\n  name: sqlite3\n  args:\n    database: {f}/homeserver.db\n\
             media_store_path: {f}/media\n\
             signing_key_path: {f}/localhost.signing.key\n\
             registration_shared_secret: {SHARED_SECRET}\n\
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
        std::fs::write(&config_path, config).expect("homeserver.yaml");
        let python = venv.join("bin/python");
        let keys = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(&config_path)
            .env(OWNER_ENV, owner_mark())
            .output()
            .expect("running Synapse to make its signing key");
        assert!(
            keys.status.success(),
            "Synapse --generate-keys: {}",
            String::from_utf8_lossy(&keys.stderr)
        );
        let log = std::fs::File::create(folder.join("synapse.log")).expect("log");
        let child = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config_path)
            .env(OWNER_ENV, owner_mark())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting Synapse");
        let mut synapse = Synapse {
            child,
            port,
            folder,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        };
        wait_for("Synapse to answer", Duration::from_secs(90), || {
            if let Ok(Some(status)) = synapse.child.try_wait() {
                panic!("Synapse exited ({status}): {}", synapse.log());
            }
            synapse
                .http
                .get(synapse.url("/_matrix/client/versions"))
                .send()
                .ok()
                .filter(|r| r.status().is_success())
        });
        synapse
    }

    /// The homeserver's base URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.folder.join("synapse.log")).unwrap_or_default()
    }

    /// Registers `name` through the shared-secret admin API and signs in as them.
    pub fn register(&self, name: &str) -> MatrixUser {
        let script = venv().join("bin/register_new_matrix_user");
        let out = Command::new(venv().join("bin/python"))
            .arg(script)
            .args([
                "-u",
                name,
                "-p",
                PASSWORD,
                "--no-admin",
                "-k",
                SHARED_SECRET,
            ])
            .arg(self.base())
            .env(OWNER_ENV, owner_mark())
            .output()
            .expect("register_new_matrix_user");
        assert!(
            out.status.success(),
            "registering {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let login: Value = self
            .http
            .post(self.url("/_matrix/client/v3/login"))
            .json(&json!({
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": name},
                "password": PASSWORD,
            }))
            .send()
            .and_then(|r| r.json())
            .expect("login");
        MatrixUser {
            id: login["user_id"].as_str().expect("user_id").to_string(),
            token: login["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
            base: self.base(),
            http: self.http.clone(),
            since: std::cell::RefCell::new(None),
        }
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A signed-in Matrix user: the hub's own account, or a person reading what arrives.
pub struct MatrixUser {
    pub id: String,
    pub token: String,
    base: String,
    http: reqwest::blocking::Client,
    since: std::cell::RefCell<Option<String>>,
}

/// A message event as a client sees it.
#[derive(Debug, Clone)]
pub struct Event {
    pub room: String,
    pub sender: String,
    pub content: Value,
}

impl MatrixUser {
    fn request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().expect("a Matrix request");
        let status = answer.status();
        let value: Value = answer.json().unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    /// One /sync: the rooms this user is invited to, and the message events since the last
    /// one.
    pub fn sync(&self) -> (Vec<String>, Vec<Event>) {
        let since = self.since.borrow().clone();
        let path = match since {
            Some(since) => format!("/_matrix/client/v3/sync?timeout=1000&since={since}"),
            None => "/_matrix/client/v3/sync?timeout=0".to_string(),
        };
        let value = self.request(reqwest::Method::GET, &path, None);
        *self.since.borrow_mut() = value["next_batch"].as_str().map(str::to_string);
        let invited = value["rooms"]["invite"]
            .as_object()
            .map(|rooms| rooms.keys().cloned().collect())
            .unwrap_or_default();
        let mut events = Vec::new();
        if let Some(rooms) = value["rooms"]["join"].as_object() {
            for (room, joined) in rooms {
                for event in joined["timeline"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if event["type"] == "m.room.message" {
                        events.push(Event {
                            room: room.clone(),
                            sender: event["sender"].as_str().unwrap_or_default().to_string(),
                            content: event["content"].clone(),
                        });
                    }
                }
            }
        }
        (invited, events)
    }

    /// Joins `room` (accepting an invitation).
    pub fn join(&self, room: &str) {
        self.request(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/join/{}", room.replace('#', "%23")),
            Some(json!({})),
        );
    }

    /// Leaves `room`.
    pub fn leave(&self, room: &str) {
        self.request(
            reqwest::Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(json!({})),
        );
    }

    /// Syncs until an invitation arrives, and returns its room.
    pub fn wait_invitation(&self, limit: Duration) -> String {
        wait_for(&format!("an invitation for {}", self.id), limit, || {
            self.sync().0.into_iter().next()
        })
    }

    /// Syncs until `n` message events arrived (counting from the first call), and returns
    /// them all.
    pub fn wait_messages(&self, seen: &mut Vec<Event>, n: usize, limit: Duration) -> Vec<Event> {
        wait_for(&format!("{n} messages for {}", self.id), limit, || {
            seen.extend(self.sync().1);
            (seen.len() >= n).then(|| seen.clone())
        })
    }
}
