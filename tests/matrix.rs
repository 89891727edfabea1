//! Matrix end to end, through the built binary, against a real Synapse (from PyPI, on
//! SQLite) with a second client reading what arrives: a new Matrix destination invites its
//! user to a direct room and sends a code there once they joined; the code, typed in,
//! confirms it (a wrong one is counted); a bus message then arrives as a notice with its
//! HTML; a user who leaves the room has the destination disabled, not written to a room
//! nobody reads.

use std::time::Duration;

use crate::support::{envelope, wait_for, Event, Hub, MatrixUser, Synapse};

const FILTER: &str = r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#;
const WAIT: Duration = Duration::from_secs(60);

/// A comment by alice on the update of `build`.
fn publish(hub: &Hub, id: &str, build: &str) {
    let line = envelope(
        id,
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"user": {"name": "alice"}, "text": "works for me", "karma": 1,
            "update": {"alias": format!("FEDORA-2024-{id}"), "title": build}}, "agent": "alice"}),
    );
    hub.publish(id, &[line]);
}

/// A hub writing to Matrix as `bot` on `synapse`, with the user alice.
fn matrix_hub(hub: &mut Hub, synapse: &Synapse, bot: &MatrixUser) {
    for (key, value) in [
        ("ENABLED", "true".to_string()),
        ("HOMESERVER", synapse.base()),
        ("ACCESS_TOKEN", bot.token.clone()),
    ] {
        hub.env
            .insert(format!("TIDINGS_CHANNELS__MATRIX__{key}"), value);
    }
    hub.run(&["user", "add", "alice"]);
}

/// The id and state of alice's Matrix destination, from `destination list`.
fn destination(hub: &Hub) -> (String, String) {
    let list = hub.run(&["destination", "list", "--user", "alice"]);
    let line = list
        .lines()
        .find(|l| l.contains("\tmatrix\t"))
        .unwrap_or_else(|| panic!("no Matrix destination in {list}"));
    let fields: Vec<&str> = line.split('\t').collect();
    (fields[0].to_string(), fields[3].to_string())
}

/// The code a confirmation carries (`7KQ2M-XW4TD`).
fn code_in(text: &str) -> String {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| {
            w.len() == 11
                && w.as_bytes()[5] == b'-'
                && w.chars()
                    .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase())
        })
        .unwrap_or_else(|| panic!("no code in {text:?}"))
        .to_string()
}

fn body(event: &Event) -> &str {
    event.content["body"].as_str().unwrap_or_default()
}

#[test]
fn a_matrix_user_confirms_by_code_then_gets_notices_until_they_leave() {
    let mut hub = Hub::new(None, None);
    let synapse = Synapse::start(hub.dir.path());
    let bot = synapse.register("tidings");
    let bob = synapse.register("bob");
    matrix_hub(&mut hub, &synapse, &bot);
    let added = hub.run(&["destination", "add", "--user", "alice", "--matrix", &bob.id]);
    assert!(added.contains("confirmation code"), "{added}");
    hub.add_filter("alice", FILTER);
    hub.start();

    // An invitation to a direct room from the hub's account; the code once bob is in.
    let room = bob.wait_invitation(WAIT);
    bob.join(&room);
    let mut seen = Vec::new();
    let got = bob.wait_messages(&mut seen, 1, WAIT);
    let confirmation = &got[0];
    assert_eq!(confirmation.room, room);
    assert_eq!(confirmation.sender, bot.id);
    assert_eq!(confirmation.content["msgtype"], "m.notice");
    assert!(
        body(confirmation).contains("/destinations"),
        "{confirmation:?}"
    );
    let code = code_in(body(confirmation));
    assert!(confirmation.content["formatted_body"]
        .as_str()
        .is_some_and(|html| html.contains(&code) && html.contains("<a href=")));

    // Nothing but the confirmation before the code is typed in: a message published now
    // is not sent to the unconfirmed destination.
    publish(&hub, "m-0", "early-1.0-1.fc40");
    let (id, state) = destination(&hub);
    assert_eq!(state, "unconfirmed");
    let wrong = hub.output(
        &[
            "destination",
            "confirm",
            "--user",
            "alice",
            &id,
            "00000-00000",
        ],
        None,
    );
    assert!(!wrong.status.success());
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains("not the code") && said.contains("4 tries left"),
        "{said}"
    );
    let typed = code.to_lowercase().replace('-', " ");
    let confirmed = hub.run(&["destination", "confirm", "--user", "alice", &id, &typed]);
    assert!(
        confirmed.contains("confirmed destination matrix"),
        "{confirmed}"
    );
    assert_eq!(destination(&hub).1, "confirmed");

    // A notification: a notice in the same room, its link in the HTML.
    publish(&hub, "m-1", "tidings-1.0-1.fc40");
    let got = bob.wait_messages(&mut seen, 2, WAIT);
    let notice = &got[1];
    assert_eq!(notice.room, room);
    assert_eq!(notice.content["msgtype"], "m.notice");
    assert!(body(notice).contains("tidings-1.0-1.fc40"), "{notice:?}");
    assert!(!body(notice).contains('\n'), "one line: {notice:?}");
    let html = notice.content["formatted_body"]
        .as_str()
        .unwrap_or_default();
    assert!(html.contains("<a href=\"https://"), "{html}");
    assert_eq!(notice.content["format"], "org.matrix.custom.html");
    assert!(
        got.iter().all(|e| !body(e).contains("early-1.0")),
        "nothing reached the unconfirmed destination: {got:?}"
    );

    // Bob leaves: the next notification disables the destination instead of going into a
    // room nobody reads.
    bob.leave(&room);
    publish(&hub, "m-2", "late-1.0-1.fc40");
    wait_for("the destination to be disabled", WAIT, || {
        let (_, state) = destination(&hub);
        state.starts_with("disabled:").then_some(state)
    });
    let (_, state) = destination(&hub);
    assert!(state.contains("no longer in the direct room"), "{state}");
    hub.assert_running();
}
