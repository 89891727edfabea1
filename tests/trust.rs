//! Issue 12, Trust. fedmsg signatures: envelopes signed by fedmsg's own code
//! (`fedmsg.crypto.sign`, x509 backend, from PyPI in a virtualenv `scripts/test` makes)
//! with certificates an `openssl` CA of the test's issues. With `bus.verify_signatures` on,
//! a good one is archived and mailed; a tampered body, a certificate from another CA, an
//! expired or revoked one, a sender the routing policy does not allow and an unsigned
//! envelope are rejected, recorded with the reason and counted, over ZeroMQ and over the
//! HTTP API; each verdict is the one `fedmsg.crypto.validate` gives. With it off, unsigned
//! envelopes are archived.
//!
//! AMQP over TLS with client certificates, as Fedora's broker runs it: a RabbitMQ node of
//! the test's own with a TLS listener that requires a client certificate and logs in by
//! its common name (SASL EXTERNAL). A hub with the certificate consumes and `tidings
//! publish --amqp` publishes with it; without it, or with one from another CA, the
//! connection is refused with an error naming the setting to fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    http_request, owner_mark, skip_unless_ci, wait_for, Broker, Hub, Pki, RabbitServer, Smtp,
    TlsFiles, LEAF, OWNER_ENV, SERVER,
};

/// The Python of the virtualenv with fedmsg that `scripts/test` makes.
fn fedmsg_python() -> Option<PathBuf> {
    let venv = std::env::var("TIDINGS_TEST_FEDMSG").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/fedmsg"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    if python.exists() {
        return Some(python);
    }
    skip_unless_ci(&format!(
        "fedmsg is not installed in {} (scripts/test installs it)",
        venv.display()
    ));
    None
}

/// One envelope to sign: with which CA's certificate (`None`: unsigned), whether to change
/// its body afterwards.
struct Request<'a> {
    pki: Option<&'a Pki>,
    certname: &'a str,
    envelope: Value,
    tamper: bool,
}

/// Signs each request with `fedmsg.crypto.sign`; returns each envelope as JSON text and
/// whether `fedmsg.crypto.validate` accepts it (against `ca`, `crl` and `policy`).
fn sign(
    python: &Path,
    (ca, crl, policy): (&Path, &Path, &Value),
    requests: &[Request<'_>],
) -> Vec<(String, bool)> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/fedmsg_sign.py");
    let mut child = Command::new(python)
        .arg(script)
        .arg(ca)
        .arg(crl)
        .arg(policy.to_string())
        .env(OWNER_ENV, owner_mark())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running fedmsg_sign.py");
    let input: String = requests
        .iter()
        .map(|r| {
            json!({
                "ssldir": r.pki.map(|p| p.dir.display().to_string()),
                "certname": r.pki.map(|_| r.certname),
                "message": r.envelope,
                "tamper": r.tamper,
            })
            .to_string()
                + "\n"
        })
        .collect();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("writing requests");
    }
    let out = child.wait_with_output().expect("fedmsg_sign.py");
    assert!(
        out.status.success(),
        "fedmsg_sign.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<(String, bool)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let answer: Value = serde_json::from_str(line).expect("an answer");
            (
                answer["envelope"].to_string(),
                answer["fedmsg_valid"] == true,
            )
        })
        .collect();
    assert_eq!(answers.len(), requests.len());
    answers
}

fn envelope(id: &str, topic: &str, text: &str) -> Value {
    // Non-ASCII text and a float: fedmsg signs Python's JSON of them (`\u` escapes,
    // `repr` floats), which Tidings must write the same to check.
    json!({
        "topic": topic,
        "msg": {"comment": {"text": text, "karma": 1.5, "user": {"name": "alice"}}, "ratio": 1e-7, "sum": 0.1 + 0.2},
        "msg_id": id,
        "timestamp": 1_700_000_000,
        "i": 1,
        "username": "apache",
    })
}

/// `hub`'s stats once `done` holds of them (within a minute).
fn wait_stats(hub: &Hub, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for(what, Duration::from_secs(60), || {
        let stats = hub.stats();
        done(&stats).then_some(stats)
    })
}

#[test]
fn fedmsg_signatures_are_verified_against_the_ca() {
    let Some(python) = fedmsg_python() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let ca = Pki::new(tmp.path().join("fedmsg-ca"), "Tidings test fedmsg CA");
    ca.issue("bodhi", "bodhi-bodhi01.example.org", None, LEAF);
    ca.issue(
        "old",
        "old.example.org",
        Some(("20200101000000Z", "20200102000000Z")),
        LEAF,
    );
    ca.issue("gone", "gone.example.org", None, LEAF);
    ca.revoke("gone");
    let crl = ca.crl();
    let stranger = Pki::new(tmp.path().join("other-ca"), "Some other CA");
    stranger.issue("bodhi", "bodhi-bodhi01.example.org", None, LEAF);

    let topic = "org.test.prod.bodhi.update.comment";
    let policed = "org.test.prod.pkgdb.acl.update";
    let policy = json!({ policed: ["pkgdb.example.org"] });
    let request = |pki: Option<&'static str>, id: &str, topic: &str, tamper: bool| {
        (pki, id.to_string(), topic.to_string(), tamper)
    };
    let plan = [
        request(Some("bodhi"), "good-zmq", topic, false),
        request(Some("bodhi"), "tampered", topic, true),
        request(Some("stranger"), "stranger", topic, false),
        request(Some("old"), "expired", topic, false),
        request(Some("gone"), "revoked", topic, false),
        request(None, "unsigned", topic, false),
        request(Some("bodhi"), "policed", policed, false),
        request(Some("bodhi"), "good-http", topic, false),
        request(Some("bodhi"), "tampered-http", topic, true),
    ];
    let requests: Vec<Request<'_>> = plan
        .iter()
        .map(|(pki, id, topic, tamper)| Request {
            pki: pki.map(|name| if name == "stranger" { &stranger } else { &ca }),
            certname: match pki {
                Some("stranger") | None => "bodhi",
                Some(name) => name,
            },
            envelope: envelope(id, topic, "Ünïcode ☃ 😀 \"quoted\"\n"),
            tamper: *tamper,
        })
        .collect();
    let signed = sign(&python, (&ca.ca(), &crl, &policy), &requests);
    let verdicts: Vec<bool> = signed.iter().map(|(_, valid)| *valid).collect();
    // fedmsg's own verdicts: only the two good ones pass.
    assert_eq!(
        verdicts,
        [true, false, false, false, false, false, false, true, false],
        "fedmsg.crypto.validate"
    );

    let config = tmp.path().join("tidings.toml");
    std::fs::write(
        &config,
        format!(
            "[bus]\nverify_signatures = true\nca_cert = {:?}\ncrl = {:?}\n\
             [bus.routing_policy]\n{policed:?} = [\"pkgdb.example.org\"]\n",
            ca.ca().display().to_string(),
            crl.display().to_string()
        ),
    )
    .expect("config file");
    let mut hub = Hub::new(Some(&smtp), None);
    hub.env
        .insert("TIDINGS_CONFIG".into(), config.display().to_string());
    hub.user_with_filter("alice", "alice@example.org", r#"topic ~ "org.test.**""#);
    hub.start();

    let over_zmq: Vec<String> = signed[..7].iter().map(|(e, _)| e.clone()).collect();
    hub.publish("signed", &over_zmq);
    let token = hub.run(&["token", "add", "publisher"]).trim().to_string();
    let post = |envelope: &str| {
        http_request(
            hub.web_port,
            "POST",
            "/api/v1/messages",
            Some(&token),
            envelope.as_bytes(),
        )
        .expect("an answer")
    };
    let good = post(&signed[7].0);
    assert_eq!(good.status, 202, "{}", good.body);
    let tampered = post(&signed[8].0);
    assert_eq!(tampered.status, 400, "{}", tampered.body);
    assert!(
        tampered
            .body
            .contains("fedmsg signature: the signature does not match"),
        "{}",
        tampered.body
    );

    let stats = wait_stats(&hub, "2 archived and 7 rejected", |s| {
        s["messages"] == 2 && s["rejected"] == 7
    });
    let mails = smtp.wait_mails(2, Duration::from_secs(60));
    assert_eq!(mails.len(), 2, "{stats}");
    let text = mails
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .collect::<String>();
    assert!(text.contains("good-zmq") || text.contains(topic), "{text}");

    let rejected = hub.run(&["outbox", "rejected"]);
    for reason in [
        "fedmsg signature: the signature does not match the message (signed by \"bodhi-bodhi01.example.org\")",
        "was not issued by a CA in bus.ca_cert",
        "the certificate of \"old.example.org\" expired at 2020-01-02 00:00:00 UTC",
        "the certificate of \"gone.example.org\" (serial",
        "is revoked by the CRL in bus.crl",
        "the envelope is not signed: it has no `signature` (bus.verify_signatures is on)",
        "\"bodhi-bodhi01.example.org\" may not send on \"org.test.prod.pkgdb.acl.update\": bus.routing_policy allows only [\"pkgdb.example.org\"]",
    ] {
        assert!(rejected.contains(reason), "{reason}\nnot in:\n{rejected}");
    }
    let metrics = crate::support::http_get(hub.metrics_port, "/metrics").unwrap_or_default();
    assert!(
        metrics.contains("tidings_messages_rejected_total 7"),
        "{metrics}"
    );

    // With verification off (the default), an unsigned envelope is archived.
    hub.terminate(Duration::from_secs(30));
    hub.env.remove("TIDINGS_CONFIG");
    hub.start();
    let unsigned = envelope("unsigned-accepted", topic, "no signature");
    hub.publish("unsigned", &[unsigned.to_string()]);
    wait_stats(&hub, "the unsigned envelope archived", |s| {
        s["messages"] == 3
    });
}

/// A `[bus.amqp]` hub's settings to consume `broker`'s queue at `url` with `tls` (file
/// paths for `ca_cert`, `certfile`, `keyfile`).
fn amqp_tls(hub: &mut Hub, broker: &Broker, url: &str, tls: &[(&str, String)]) {
    broker.configure(hub);
    hub.env.insert("TIDINGS_BUS__AMQP__URL".into(), url.into());
    for (key, path) in tls {
        hub.env.insert(
            format!("TIDINGS_BUS__AMQP__TLS__{}", key.to_uppercase()),
            path.clone(),
        );
    }
}

/// `tidings doctor` for `hub` fails its AMQP check, saying `hint`.
fn doctor_says(hub: &Hub, hint: &str) {
    let doctor = hub.output(&["doctor"], None);
    let report = String::from_utf8_lossy(&doctor.stdout);
    eprintln!("{report}");
    assert!(!doctor.status.success(), "{report}");
    assert!(
        report.contains("FAIL  bus: AMQP") && report.contains(hint),
        "{hint}\nnot in:\n{report}"
    );
}

#[test]
fn amqp_over_tls_with_a_client_certificate() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let pki = Pki::new(tmp.path().join("broker-ca"), "Tidings test broker CA");
    pki.issue("server", "localhost", None, SERVER);
    // Logged in as its common name (EXTERNAL): the node's one user; a client that logged
    // in with a password (lapin's default is guest's) would be refused.
    pki.issue(
        "client",
        "tidings-hub",
        None,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let other = Pki::new(tmp.path().join("other-ca"), "Some other CA");
    other.issue(
        "client",
        "tidings-hub",
        None,
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    );
    let server = RabbitServer::start_tls(
        &TlsFiles {
            ca: pki.ca(),
            cert: pki.dir.join("server.crt"),
            key: pki.dir.join("server.key"),
        },
        "tidings-hub",
    );
    let broker = Broker::at(&server.url(), "tls");
    let url = server.tls_url();
    let certificate = [
        ("ca_cert", pki.file("ca.pem")),
        ("certfile", pki.file("client.crt")),
        ("keyfile", pki.file("client.key")),
    ];

    let mut hub = Hub::new(Some(&smtp), None);
    hub.user_with_filter("alice", "alice@example.org", "usernames has $me");
    amqp_tls(&mut hub, &broker, &url, &certificate);
    hub.start();
    hub.wait_log_line(
        "the AMQP consumer over TLS",
        Duration::from_secs(30),
        &["AMQP consumer connected"],
    );
    let message = json!({
        "topic": "org.test.prod.bodhi.update.comment",
        "headers": {"fedora_messaging_schema": "base.message", "fedora_messaging_user_alice": true},
        "id": "tls-1",
        "body": {"comment": "over TLS"},
    });
    let file = tmp.path().join("tls.jsonl");
    std::fs::write(&file, message.to_string()).expect("message file");
    let file = file.display().to_string();
    let publish = [
        "publish",
        "--amqp",
        &url,
        "--exchange",
        &broker.exchange,
        "--file",
        &file,
    ];
    hub.run(&publish);
    let mails = smtp.wait_mails(1, Duration::from_secs(60));
    assert_eq!(mails.len(), 1);
    wait_for("the queue to be drained", Duration::from_secs(30), || {
        (broker.waiting(&broker.queue) == 0).then_some(())
    });

    // Without a client certificate the broker refuses the connection; the error says
    // which settings to set: from doctor, from publish, and in the consuming hub's log.
    let mut bare = Hub::new(Some(&smtp), None);
    amqp_tls(&mut bare, &broker, &url, &certificate[..1]);
    // (The broker's alert says "certificate required"; when the connection is reset
    // before it is read, the hint says "may require".)
    doctor_says(
        &bare,
        "a client certificate: set bus.amqp.tls.certfile and bus.amqp.tls.keyfile",
    );
    let published = bare.output(&publish, None);
    let stderr = String::from_utf8_lossy(&published.stderr);
    eprintln!("publish without a client certificate: {stderr}");
    assert!(!published.status.success(), "{stderr}");
    assert!(stderr.contains("bus.amqp.tls.certfile"), "{stderr}");
    bare.start();
    bare.wait_log_line(
        "the refused connection named",
        Duration::from_secs(30),
        &["AMQP broker unavailable", "bus.amqp.tls.certfile"],
    );

    // A certificate from a CA the broker does not trust is refused as well.
    let mut stranger = Hub::new(Some(&smtp), None);
    amqp_tls(
        &mut stranger,
        &broker,
        &url,
        &[
            ("ca_cert", pki.file("ca.pem")),
            ("certfile", other.file("client.crt")),
            ("keyfile", other.file("client.key")),
        ],
    );
    doctor_says(
        &stranger,
        "the broker may not accept the client certificate in bus.amqp.tls.certfile",
    );

    // And without the broker's CA, its certificate is not trusted.
    let mut no_ca = Hub::new(Some(&smtp), None);
    amqp_tls(&mut no_ca, &broker, &url, &certificate[1..]);
    doctor_says(
        &no_ca,
        "the broker's certificate is not trusted: set bus.amqp.tls.ca_cert",
    );
    assert_eq!(hub.stats()["messages"], 1);
}
