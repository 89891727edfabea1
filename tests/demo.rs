//! Issue 11: `tidings serve --demo` makes a demo account whose password it prints and
//! keeps in the data folder, and replays the bundled corpus as a live bus, so that real
//! notifications arrive within the first minute; a second start reuses the account.

use std::time::Duration;

use crate::support::{wait_for, Hub, Smtp};

#[test]
fn serve_demo_fills_the_hub_with_live_data() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let smtp = Smtp::start(tmp.path());
    let mut hub = Hub::new(Some(&smtp), None);
    hub.start_with(&["serve", "--demo"]);
    let password_file = hub.dir.path().join("data").join("demo-password");
    let password = std::fs::read_to_string(&password_file).expect("the demo password file");
    let password = password.trim().to_string();
    assert!(
        hub.log().contains(&password),
        "the password is printed: {}",
        hub.log()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password_file)
            .expect("metadata")
            .permissions(),
    );
    assert_eq!(mode & 0o077, 0, "only its owner reads it: {mode:o}");
    let filters = hub.run(&["filter", "list", "--user", "demo"]);
    for name in ["My packages", "Failed builds", "Bodhi, in a digest"] {
        assert!(filters.contains(name), "{filters}");
    }
    // A live bus: messages are archived and matched, and mail arrives in the first minute.
    let mails = smtp.wait_mails(1, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&mails[0]);
    assert!(text.contains("demo@example.org"), "{text}");
    let stats = wait_for("demo messages archived", Duration::from_secs(30), || {
        let stats = hub.run(&["outbox", "stats"]);
        (!stats.contains("sent: 0")).then_some(stats)
    });
    assert!(!stats.is_empty());

    // A second start keeps the account and its password.
    hub.terminate(Duration::from_secs(20));
    hub.start_with(&["serve", "--demo"]);
    let again = std::fs::read_to_string(&password_file).expect("the demo password file");
    assert_eq!(again.trim(), password);
    assert!(hub.log().contains("with the password in"), "{}", hub.log());
    let users = hub.run(&["user", "list"]);
    assert_eq!(users.matches("demo").count(), 1, "{users}");
}
