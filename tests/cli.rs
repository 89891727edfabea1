//! The command line: configuration errors name the key, admin commands validate like the
//! web, `inspect` reports bad lines by number and goes on.

use crate::support::Hub;

#[test]
fn bad_config_names_the_key() {
    let mut hub = Hub::new(None, None);
    hub.env
        .insert("TIDINGS_SENDER__CONCURRENCY".into(), "many".into());
    let out = hub.output(&["migrate"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config key sender.concurrency"), "{err}");
    assert!(err.contains("TIDINGS_SENDER__CONCURRENCY"), "{err}");

    let file = hub.dir.path().join("bad.toml");
    std::fs::write(&file, "[web]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").expect("config file");
    hub.env.remove("TIDINGS_SENDER__CONCURRENCY");
    let out = hub.output(&["--config", &file.display().to_string(), "migrate"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("lisen") && err.contains("bad.toml"), "{err}");
}

#[test]
fn admin_commands_validate_input() {
    let hub = Hub::new(None, None);
    // Issue 8 item 8: at least 12 characters, and not a common password.
    let out = hub.output(
        &["user", "add", "frank", "--password-stdin"],
        Some("short\n"),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password: use at least 12 characters"),
        "{out:?}"
    );
    let out = hub.output(
        &["user", "add", "frank", "--password-stdin"],
        Some("passwordpassword\n"),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password: too easy to guess"),
        "{out:?}"
    );
    let out = hub.output(
        &["user", "add", "frank", "--password-stdin"],
        Some("plum kettle orbit 1974\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let out = hub.output(&["user", "add", "Bad Name"], None);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("username"),
        "{out:?}"
    );
    let out = hub.output(&["user", "add", "frank"], None);
    assert!(!out.status.success(), "a duplicate user must fail");
    let out = hub.output(
        &[
            "destination",
            "add",
            "--user",
            "frank",
            "--email",
            "not-an-address",
        ],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an email address"),
        "{out:?}"
    );
    hub.run(&[
        "destination",
        "add",
        "--user",
        "frank",
        "--email",
        "frank@example.org",
    ]);
    let listed = hub.run(&["destination", "list", "--user", "frank"]);
    assert!(listed.contains("unconfirmed"), "{listed}");
    let out = hub.output(
        &[
            "filter",
            "add",
            "--user",
            "frank",
            "--name",
            "x",
            "--condition",
            "topic ~ \"a.*\" and\n usernames has $nobody",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2, column 16") && err.contains("$nobody"),
        "{err}"
    );
    hub.run(&[
        "filter",
        "add",
        "--user",
        "frank",
        "--name",
        "mine",
        "--condition",
        "usernames has $me",
    ]);
    assert!(hub
        .run(&["filter", "list", "--user", "frank"])
        .contains("usernames has $me"));
    // Valid but probably wrong: saved, and what looks wrong said on stderr.
    let out = hub.output(
        &[
            "filter",
            "add",
            "--user",
            "frank",
            "--name",
            "builds",
            "--condition",
            "app == \"bodi\"",
        ],
        None,
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "warning: no message comes from an app called \"bodi\": did you mean \"bodhi\"?"
        ),
        "{err}"
    );
}

#[test]
fn inspect_reports_bad_lines_and_goes_on() {
    let hub = Hub::new(None, None);
    let input = [
        r#"{"topic": "org.fedoraproject.prod.git.receive", "msg": {"commit": {"username": "ralph", "repo": "tidings"}}}"#,
        "{oops",
        r#"{"topic": "org.fedoraproject.prod.fas.user.create", "msg": {"agent": "ralph", "user": "newbie"}}"#,
    ]
    .join("\n");
    let out = hub.output(&["inspect"], Some(&input));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["app"], "git");
    assert_eq!(lines[1]["topic"], "org.fedoraproject.prod.fas.user.create");
    for key in [
        "topic",
        "app",
        "agent",
        "usernames",
        "packages",
        "groups",
        "severity",
        "summary",
        "url",
        "objects",
    ] {
        assert!(lines[0].get(key).is_some(), "{key} missing in {}", lines[0]);
    }
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(
        !out.status.success(),
        "a bad line makes the exit status non-zero"
    );
}

// Issue 8 items 6 and 7: the CLI validates addresses like the web (`ralph@@example.org` was
// accepted), and API tokens have scopes, can be listed (never the secret) and revoked.
#[test]
fn destinations_and_tokens_from_the_cli() {
    let hub = Hub::new(None, None);
    hub.run(&["user", "add", "ralph"]);
    let add = |email: &str| {
        hub.output(
            &["destination", "add", "--user", "ralph", "--email", email],
            None,
        )
    };
    let out = add("ralph@@example.org");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not an email address"),
        "{out:?}"
    );
    assert!(add(" Ralph@Example.ORG").status.success());
    let listed = hub.run(&["destination", "list", "--user", "ralph"]);
    assert!(listed.contains("Ralph@example.org"), "{listed}");

    let publish = hub.run(&["token", "add", "koji"]).trim().to_string();
    assert!(publish.starts_with("tid_"), "{publish}");
    hub.run(&["token", "add", "sync", "--scope", "ownership"]);
    let out = hub.output(&["token", "add", "x", "--scope", "root"], None);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("publish, ownership or admin"),
        "{out:?}"
    );
    let listed = hub.run(&["token", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(
        lines[0].starts_with("koji\tpublish\t") && lines[0].ends_with("never used"),
        "{listed}"
    );
    assert!(lines[1].starts_with("sync\townership\t"), "{listed}");
    assert!(
        !listed.contains(&publish[4..]),
        "never the secret: {listed}"
    );
    assert!(hub.run(&["token", "revoke", "koji"]).contains("revoked"));
    let out = hub.output(&["token", "revoke", "koji"], None);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no token named"),
        "{out:?}"
    );
    assert!(!hub.run(&["token", "list"]).contains("koji"));
}

/// Issue 11: `[web.oidc]` is checked at start naming the key, its secret is hidden by
/// `config show`, and `tidings user` makes and hands over accounts of the provider, whose
/// names local accounts cannot take.
#[test]
fn oidc_settings_and_provider_accounts() {
    let mut hub = Hub::new(None, None);
    hub.env
        .insert("TIDINGS_WEB__OIDC__ISSUER".into(), "sso.example.org".into());
    hub.env
        .insert("TIDINGS_WEB__OIDC__CLIENT_ID".into(), "tidings".into());
    let out = hub.output(&["migrate"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config key web.oidc.issuer"), "{err}");
    hub.env.insert(
        "TIDINGS_WEB__OIDC__ISSUER".into(),
        "https://sso.example.org/realms/community".into(),
    );
    hub.env.insert(
        "TIDINGS_WEB__OIDC__CLIENT_SECRET".into(),
        "very-secret-value".into(),
    );
    let shown = hub.run(&["config", "show"]);
    assert!(shown.contains("[web.oidc]"), "{shown}");
    assert!(!shown.contains("very-secret-value"), "{shown}");
    assert!(shown.contains(r#"client_secret = "***""#), "{shown}");

    hub.run(&["user", "add", "alice", "--provider"]);
    let out = hub.output(
        &["user", "add", "alice", "--password-stdin"],
        Some("velvet crane harbour 42\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sign-in provider"), "{err}");
    let bob = hub.output(
        &["user", "add", "bob", "--password-stdin"],
        Some("plum kettle orbit 1974\n"),
    );
    assert!(bob.status.success(), "{bob:?}");
    hub.run(&["user", "provider", "bob"]);
    let users = hub.run(&["user", "list"]);
    assert!(users.contains("alice\tprovider"), "{users}");
    assert!(users.contains("bob\tprovider"), "{users}");
}

// Issue 11: default filters from the command line; an account `user add` makes starts
// with every enabled one.
#[test]
fn default_filters_from_the_cli() {
    let hub = Hub::new(None, None);
    let out = hub.output(
        &[
            "default-filter",
            "add",
            "--name",
            "mine",
            "--condition",
            "usernames has (",
        ],
        None,
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--condition: line 1, column"),
        "{out:?}"
    );
    let added = hub.run(&[
        "default-filter",
        "add",
        "--name",
        "mine",
        "--condition",
        "usernames has $me or packages has $my_packages",
    ]);
    assert!(
        added.contains("added default filter \"mine\" (id 1)"),
        "{added}"
    );
    hub.run(&[
        "default-filter",
        "add",
        "--name",
        "later",
        "--condition",
        "usernames has $me",
        "--disabled",
    ]);
    let listed = hub.run(&["default-filter", "list"]);
    assert!(
        listed.contains("1\tmine\ton\tusernames has $me or packages has $my_packages"),
        "{listed}"
    );
    assert!(listed.contains("2\tlater\toff\t"), "{listed}");

    hub.run(&["user", "add", "frank"]);
    let filters = hub.run(&["filter", "list", "--user", "frank"]);
    assert!(
        filters.contains("mine\ton\tusernames has $me or packages has $my_packages"),
        "{filters}"
    );
    assert!(
        !filters.contains("later"),
        "a disabled one is not given: {filters}"
    );

    assert!(hub
        .run(&["default-filter", "remove", "1"])
        .contains("removed"));
    let out = hub.output(&["default-filter", "remove", "1"], None);
    assert!(!out.status.success(), "{out:?}");
    // Frank keeps his copy.
    assert!(hub
        .run(&["filter", "list", "--user", "frank"])
        .contains("mine"));
}

/// Issue 12: `tidings doctor` checks what a running hub needs, each within a time limit,
/// and says what is wrong and how to fix it.
#[test]
fn doctor_names_what_is_wrong_and_how_to_fix_it() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = crate::support::Smtp::start(tmp.path());
    let hub = Hub::new(Some(&smtp), None);
    let healthy = hub.output(&["doctor"], None);
    let report = String::from_utf8_lossy(&healthy.stdout).to_string();
    assert!(healthy.status.success(), "{report}\n{healthy:?}");
    assert!(report.contains("ok    database: sqlite://"), "{report}");
    assert!(report.contains("answers SMTP"), "{report}");
    assert!(report.contains(", 0 failed"), "{report}");

    let closed = crate::support::free_port();
    let broken = hub
        .command(&["doctor"])
        .env(
            "TIDINGS_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:{closed}/nowhere"),
        )
        .env(
            "TIDINGS_EMAIL__SMTP_URL",
            format!("smtp://127.0.0.1:{closed}"),
        )
        .env("TIDINGS_BUS__ZMQ_ENDPOINTS", "[\"udp://127.0.0.1:1\"]")
        .env(
            "TIDINGS_BUS__AMQP__URL",
            format!("amqp://guest:guest@127.0.0.1:{closed}/%2f"),
        )
        .output()
        .expect("running doctor");
    let report = String::from_utf8_lossy(&broken.stdout).to_string();
    assert_eq!(broken.status.code(), Some(1), "{report}");
    for (what, fix) in [
        ("FAIL  database: postgres://", "fix: check database_url"),
        ("FAIL  email: smtp://127.0.0.1", "fix: check email.smtp_url"),
        (
            "FAIL  bus: ZeroMQ udp://127.0.0.1:1",
            "fix: write ZeroMQ endpoints as tcp://",
        ),
        ("FAIL  bus: AMQP", "fix: check bus.amqp.url"),
    ] {
        assert!(report.contains(what), "{what} in:\n{report}");
        assert!(report.contains(fix), "{fix} in:\n{report}");
    }
    assert!(report.contains(", 4 failed"), "{report}");
}
