//! Issue 12: every example in `docs/publishing.md` is run as written, against a running hub
//! consuming a real RabbitMQ — curl (HTTP), Python `requests` (HTTP), fedora-messaging's
//! own client from PyPI (AMQP) and `tidings publish` (ZeroMQ) — and each one's message is
//! archived. An example that stops working fails here, so the page cannot rot.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Broker, Hub, BIN};

/// The page's examples: each fenced block right after a `<!-- test: NAME -->` line.
fn examples() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/publishing.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- test: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "{name}: no code block after its marker"
        );
        let code: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        found.push((name.to_string(), code.join("\n")));
    }
    found
}

/// fedora-messaging's Python, from the virtualenv `scripts/test` installs it into.
fn fedora_messaging_python() -> String {
    let venv = std::env::var("TIDINGS_TEST_FEDORA_MESSAGING").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/test-tools/fedora-messaging"
        )
        .into()
    });
    let python = format!("{venv}/bin/python");
    assert!(
        Path::new(&python).exists(),
        "fedora-messaging is not installed in {venv} (scripts/test installs it; or set \
         TIDINGS_TEST_FEDORA_MESSAGING)"
    );
    python
}

#[test]
fn every_publishing_example_in_the_docs_is_stored() {
    let broker = Broker::start("publishing");
    let mut hub = Hub::new(None, None);
    broker.start_hub(&mut hub);
    let token = hub.run(&["token", "add", "my-app"]).trim().to_string();
    let config = hub.dir.path().join("fedora-messaging.toml");
    std::fs::write(
        &config,
        format!(
            "amqp_url = \"{}\"\npublish_exchange = \"{}\"\n",
            broker.url, broker.exchange
        ),
    )
    .expect("fedora-messaging config");
    let bin_dir = Path::new(BIN).parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["curl", "python-requests", "fedora-messaging", "zeromq"]
    );
    for (name, code) in &examples {
        let mut command = match name.as_str() {
            "curl" | "zeromq" => {
                let mut c = Command::new("bash");
                c.args(["-euo", "pipefail", "-c", code]);
                c
            }
            "python-requests" => {
                let mut c = Command::new("python3");
                c.args(["-c", code]);
                c
            }
            "fedora-messaging" => {
                let mut c = Command::new(fedora_messaging_python());
                c.args(["-c", code]);
                c
            }
            other => panic!("no way to run the example {other:?}"),
        };
        let out = command
            .env("HUB_URL", format!("http://127.0.0.1:{}", hub.web_port))
            .env("HUB_TOKEN", &token)
            .env("AMQP_URL", &broker.url)
            .env("ZMQ_ENDPOINT", &hub.zmq_endpoint)
            .env("FEDORA_MESSAGING_CONF", &config)
            .env("PATH", &path)
            .envs(hub.env.iter())
            .output()
            .unwrap_or_else(|e| panic!("running the {name} example: {e}"));
        assert!(
            out.status.success(),
            "the {name} example failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // One message each, all stored, none refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = hub.stats();
        if stats["messages"] == 4 {
            assert_eq!(stats["rejected"], 0, "{stats}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "4 messages expected: {stats}\n{}",
            hub.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
