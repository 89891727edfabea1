//! Issue 4, ownership end to end: `tidings ownership import` (CSV) feeds `$my_packages`, a
//! koji build of an owned package becomes a mail at a real SMTP server; a bad import is
//! refused whole; `PUT /api/v1/ownership` and a bus announcement change ownership while
//! `serve` runs, and the next messages follow the change.

use std::time::Duration;

use mailparse::MailHeaderMap as _;

use crate::support::{envelope, Hub, PgDatabase, Smtp};

const BUILD: &str = "org.fedoraproject.prod.buildsys.build.state.change";

/// A koji build of `package` (the shape the corpus has; its metadata names the package).
fn build(id: &str, package: &str) -> String {
    envelope(
        id,
        BUILD,
        serde_json::json!({"attribute": "state", "build_id": 12345, "instance": "primary",
            "name": package, "new": 1, "old": 0, "owner": "someone", "release": "1.fc40",
            "task_id": 4642, "version": "1.0"}),
    )
}

/// A minimal HTTP PUT on loopback: (status line, body).
fn http_put(port: u16, path: &str, token: &str, body: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

/// Waits for `n` mails, then a moment more, and checks no extra one came.
fn exactly(smtp: &Smtp, hub: &Hub, n: usize) -> Vec<Vec<u8>> {
    smtp.wait_mails(n, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1500));
    let mails = smtp.mails();
    assert_eq!(mails.len(), n, "expected {n} mails; log:\n{}", hub.log());
    mails
}

fn subjects(mails: &[Vec<u8>]) -> Vec<String> {
    let mut subjects: Vec<String> = mails
        .iter()
        .map(|raw| {
            let mail = mailparse::parse_mail(raw).expect("parsable mail");
            assert_eq!(
                mail.headers.get_first_value("To").as_deref(),
                Some("alice@example.org")
            );
            mail.headers.get_first_value("Subject").unwrap_or_default()
        })
        .collect();
    subjects.sort();
    subjects
}

fn ownership_end_to_end(database_url: Option<&str>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), database_url);
    hub.user_with_filter("alice", "alice@example.org", "packages has $my_packages");

    // alice owns eclipse-ptp through her group.
    let csv = hub.dir.path().join("owners.csv");
    std::fs::write(
        &csv,
        "record,name,member_kind,member\n\
         package,eclipse-ptp,group,java-sig\n\
         group,java-sig,user,alice\n",
    )
    .expect("csv");
    let out = hub.run(&["ownership", "import", &csv.display().to_string()]);
    assert!(
        out.contains("imported 1 packages and 1 groups (merge); 1 accounts re-indexed"),
        "{out}"
    );

    // A bad record: refused naming the line and field, nothing imported.
    let bad = hub.dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "record,name,member_kind,member\npackage,kernel,user,alice\npackage,kernel,user,Not Valid\n",
    )
    .expect("csv");
    let out = hub.output(
        &[
            "ownership",
            "import",
            "--replace",
            &bad.display().to_string(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("bad.csv: nothing imported") && err.contains("member: line 3"),
        "{err}"
    );
    // An empty file with --replace would delete everything: refused unless asked for.
    let empty = hub.dir.path().join("empty.json");
    std::fs::write(&empty, "{}").expect("json");
    let out = hub.output(
        &[
            "ownership",
            "import",
            "--replace",
            &empty.display().to_string(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("empty.json: nothing imported") && err.contains("--allow-empty"),
        "{err}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(hub.run(&["ownership", "show", "--user", "alice"]).trim())
            .expect("show prints JSON");
    assert_eq!(shown["me"], "alice", "{shown}");
    assert_eq!(
        shown["my_groups"],
        serde_json::json!(["java-sig"]),
        "{shown}"
    );
    assert_eq!(
        shown["my_packages"],
        serde_json::json!(["eclipse-ptp"]),
        "{shown}"
    );
    let token = hub
        .run(&["token", "add", "pkgdb-sync", "--scope", "ownership"])
        .trim()
        .to_string();

    hub.start();
    hub.publish(
        "first",
        &[build("b-1", "eclipse-ptp"), build("b-2", "kernel")],
    );
    let mails = exactly(&smtp, &hub, 1);
    let first = subjects(&mails);
    assert!(first[0].contains("eclipse-ptp"), "{first:?}");

    // The API replaces everything: alice now owns only tidings.
    let (status, body) = http_put(
        hub.web_port,
        "/api/v1/ownership?mode=replace",
        &token,
        r#"{"packages": {"tidings": {"users": ["alice"]}}}"#,
    );
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("\"affected_users\":1"), "{body}");
    let (status, body) = http_put(
        hub.web_port,
        "/api/v1/ownership",
        &token,
        r#"{"packages": {"tidings": {"users": ["Alice Smith"]}}}"#,
    );
    assert!(status.contains("400"), "{status} {body}");
    assert!(body.contains("users: package \\\"tidings\\\""), "{body}");
    let (status, _) = http_put(hub.web_port, "/api/v1/ownership", "wrong", "{}");
    assert!(status.contains("401"), "{status}");

    // The running matcher follows: eclipse-ptp no longer mails alice, tidings does; then a
    // bus announcement gives her firefox, and the build after it mails her too.
    let grant = envelope(
        "grant-1",
        "org.fedoraproject.prod.pagure.project.user.added",
        serde_json::json!({"agent": "admin", "new_user": "alice", "access": "commit",
            "project": {"name": "firefox", "namespace": "rpms"}}),
    );
    hub.publish(
        "second",
        &[
            build("b-3", "eclipse-ptp"),
            build("b-4", "tidings"),
            grant,
            build("b-5", "firefox"),
        ],
    );
    let mails = exactly(&smtp, &hub, 3);
    let all = subjects(&mails);
    assert!(
        all.iter().filter(|s| s.contains("eclipse-ptp")).count() == 1
            && all.iter().any(|s| s.contains("tidings-1.0"))
            && all.iter().any(|s| s.contains("firefox")),
        "{all:?}"
    );
    let shown = hub.run(&["ownership", "show", "--user", "alice"]);
    assert!(
        shown.contains("\"my_packages\":[\"firefox\",\"tidings\"]"),
        "{shown}"
    );
    // Asked for, replacing everything with nothing empties it.
    let empty = empty.display().to_string();
    let out = hub.run(&["ownership", "import", "--replace", "--allow-empty", &empty]);
    assert!(
        out.contains("imported 0 packages and 0 groups (replace)"),
        "{out}"
    );
    let shown = hub.run(&["ownership", "show", "--user", "alice"]);
    assert!(shown.contains("\"my_packages\":[]"), "{shown}");
}

#[test]
fn ownership_end_to_end_on_sqlite() {
    ownership_end_to_end(None);
}

#[test]
fn ownership_end_to_end_on_postgres() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    ownership_end_to_end(Some(&db.url));
}

#[test]
fn follows_from_the_command_line() {
    let hub = Hub::new(None, None);
    hub.run(&["user", "add", "alice"]);
    hub.run(&["follow", "add", "--user", "alice", "--person", "bob"]);
    hub.run(&["follow", "add", "--user", "alice", "--package", "PyYAML"]);
    let out = hub.output(
        &["follow", "add", "--user", "alice", "--person", "Bob B"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("person: \"Bob B\" is not a username"),
        "{out:?}"
    );
    assert_eq!(
        hub.run(&["follow", "list", "--user", "alice"]),
        "user\tbob\npackage\tPyYAML\n"
    );
    let shown = hub.run(&["ownership", "show", "--user", "alice"]);
    assert!(
        shown.contains("\"followed_users\":[\"bob\"]")
            && shown.contains("\"followed_packages\":[\"PyYAML\"]"),
        "{shown}"
    );
    hub.run(&["follow", "remove", "--user", "alice", "--person", "bob"]);
    let out = hub.output(
        &["follow", "remove", "--user", "alice", "--person", "bob"],
        None,
    );
    assert!(!out.status.success());
    assert_eq!(
        hub.run(&["follow", "list", "--user", "alice"]),
        "package\tPyYAML\n"
    );
}
