//! Tests of catalog loading (validation wording and positions) and entry selection.

use serde_json::json;

use super::{Catalog, CatalogError, Severity};
use crate::Message;

fn load(files: &[(&str, &str)]) -> (Catalog, Vec<CatalogError>) {
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    Catalog::load(&sources)
}

fn msg(topic: &str, body: serde_json::Value) -> Message {
    Message::new("1", topic, body)
}

#[test]
fn shipped_catalog_loads_cleanly() {
    let (catalog, errors) = Catalog::load(&Catalog::shipped_sources());
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(!catalog.is_empty());
}

#[test]
fn broken_entries_are_skipped_with_file_line_and_reason() {
    let text = r#"# admin's extra catalog
[[entry]]
topic = "myapp.thing.done"
summary = "{who} did a thing"
usernames = ["who | lower"]

[[entry]]
topic = "myapp.other"
usernames = ["who", "x | frobnicate"]

[[entry]]
summary = "no topic here"

[[entry]]
topic = "myapp.bad.*x"

[[entry]]
topic = "myapp.sev"
severity = "loud"
colour = "red"

[[entry]]
topic = "myapp.tpl"
url = "https://x/{id"
packages = 7
"#;
    let (catalog, errors) = load(&[("extra.toml", text)]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "extra.toml:9:21: entry skipped: in `x | frobnicate`: unknown filter `frobnicate` at character 5",
            "extra.toml:11:1: entry skipped: missing key `topic`",
            "extra.toml:15:9: entry skipped: topic pattern `myapp.bad.*x`: `*` and `**` must be whole segments",
            "extra.toml:20:10: entry skipped: unknown key `colour` (expected one of topic, bus, app, severity, agent, usernames, packages, groups, objects, summary, url, details)",
            "extra.toml:25:12: entry skipped: `packages` must be a string or an array of strings, found a number",
        ]
    );
    // The good entry still loads and works.
    assert_eq!(catalog.len(), 1);
    let meta = catalog.derive(&msg(
        "org.example.prod.myapp.thing.done",
        json!({"who": "Ann"}),
    ));
    assert_eq!(meta.summary, "Ann did a thing");
    assert_eq!(meta.usernames.into_iter().collect::<Vec<_>>(), ["ann"]);
}

#[test]
fn template_and_severity_errors_are_positioned() {
    let text = "[[entry]]\ntopic = \"a.b\"\nurl = \"https://x/{id\"\n\n[[entry]]\ntopic = \"a.c\"\nseverity = \"loud\"\n";
    let (_, errors) = load(&[("t.toml", text)]);
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "t.toml:3:7: entry skipped: in `https://x/{id`: expected `}` to close the placeholder at character 14",
            "t.toml:7:12: entry skipped: severity `loud` is not one of debug, info, warning, error",
        ]
    );
}

#[test]
fn a_syntax_error_skips_only_that_file() {
    let good = "[[entry]]\ntopic = \"a.b\"\nsummary = \"ok\"\n";
    let bad = "[[entry]]\ntopic = \"a.c\"\nsummary = \"unterminated\n";
    let (catalog, errors) = load(&[("bad.toml", bad), ("good.toml", good)]);
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].file.as_str(), errors[0].line), ("bad.toml", 3));
    assert!(
        errors[0].reason.starts_with("file skipped: "),
        "{}",
        errors[0].reason
    );
    assert_eq!(
        catalog.derive(&msg("o.f.prod.a.b", json!({}))).summary,
        "ok"
    );
}

#[test]
fn most_specific_pattern_wins_and_later_files_override() {
    let shipped = r#"
[[entry]]
topic = "app.**"
summary = "any"
[[entry]]
topic = "app.*.done"
summary = "one-star"
[[entry]]
topic = "app.x.done"
summary = "exact"
[[entry]]
topic = ["**.done", "*.y.done"]
summary = "wild"
"#;
    let admin = "[[entry]]\ntopic = \"app.x.done\"\nsummary = \"admin\"\nseverity = \"error\"\n";
    let (catalog, errors) = load(&[("a.toml", shipped), ("b.toml", admin)]);
    assert!(errors.is_empty(), "{errors:?}");
    let summary = |t: &str| catalog.derive(&msg(t, json!({}))).summary;
    assert_eq!(summary("org.f.prod.app.x.done"), "admin");
    assert_eq!(summary("org.f.prod.app.z.done"), "one-star");
    assert_eq!(summary("org.f.prod.app.z.started"), "any");
    assert_eq!(summary("org.f.prod.other.y.done"), "wild");
    assert_eq!(summary("org.f.prod.other.q.z.done"), "wild");
    assert_eq!(summary("org.f.prod.other.q.z"), "other.q.z");
    let meta = catalog.derive(&msg("org.f.prod.app.x.done", json!({})));
    assert_eq!(meta.severity, Severity::Error);
}

#[test]
fn absent_keys_fall_back_and_headers_add_flags() {
    let text = "[[entry]]\ntopic = \"app.ev\"\nsummary = \"{thing.name} happened\"\nurl = [\"https://x/{id}\", \"https://x/\"]\n";
    let (catalog, _) = load(&[("a.toml", text)]);
    let mut m = msg(
        "org.f.prod.app.ev",
        json!({"user": "bob", "thing": {"name": "T"}}),
    );
    m.headers
        .insert("fedora_messaging_user_carol".into(), json!(true));
    m.headers
        .insert("fedora_messaging_severity".into(), json!(30));
    let meta = catalog.derive(&m);
    assert_eq!(meta.app.as_deref(), Some("app"));
    assert_eq!(meta.summary, "T happened");
    assert_eq!(meta.url.as_deref(), Some("https://x/"));
    assert_eq!(
        meta.usernames.into_iter().collect::<Vec<_>>(),
        ["bob", "carol"]
    );
    assert_eq!(meta.severity, Severity::Warning);
}

#[test]
fn keys_inherit_from_broader_patterns_but_not_from_replaced_entries() {
    let shipped = r#"
[[entry]]
topic = "app.**"
usernames = ["who"]
url = "https://x/{id}"
summary = "broad"
[[entry]]
topic = "app.thing.done"
summary = ["{missing}", "specific {id}"]
[[entry]]
topic = "app.thing.gone"
summary = "{missing}"
"#;
    let admin = "[[entry]]\ntopic = \"app.**\"\nsummary = \"admin broad\"\n";
    let (catalog, errors) = load(&[("a.toml", shipped)]);
    assert!(errors.is_empty(), "{errors:?}");
    let body = json!({"who": "bob", "id": 7});
    let meta = catalog.derive(&msg("org.f.prod.app.thing.done", body.clone()));
    assert_eq!(meta.summary, "specific 7");
    assert_eq!(meta.url.as_deref(), Some("https://x/7"));
    assert_eq!(meta.usernames.into_iter().collect::<Vec<_>>(), ["bob"]);
    // No template of the specific entry renders: the broader entry's list is tried next.
    let meta = catalog.derive(&msg("org.f.prod.app.thing.gone", body.clone()));
    assert_eq!(meta.summary, "broad");
    // An admin's entry with the same pattern replaces the shipped one entirely.
    let (catalog, _) = load(&[("a.toml", shipped), ("b.toml", admin)]);
    let meta = catalog.derive(&msg("org.f.prod.app.other", body));
    assert_eq!(meta.summary, "admin broad");
    assert_eq!(meta.url, None);
    assert!(meta.usernames.is_empty(), "{:?}", meta.usernames);
}

/// Issue 10: "a Bodhi comment mail did not contain the comment". The catalog's `details`
/// carry the event's own words: the comment, the build's state and its task (logs) link.
#[test]
fn details_carry_the_events_own_words() {
    let catalog = Catalog::shipped();
    let comment = catalog.derive(&msg(
        "org.fedoraproject.prod.bodhi.update.comment",
        json!({"comment": {"user": {"name": "alice"}, "karma": 1,
            "text": "Works for me.\nTested on F40.", "update": {"alias": "FEDORA-2024-1"}}}),
    ));
    assert_eq!(
        comment.details.as_deref(),
        Some("Works for me.\nTested on F40.")
    );
    let build = catalog.derive(&msg(
        "org.fedoraproject.prod.buildsys.build.state.change",
        json!({"build_id": 1, "instance": "primary", "name": "eclipse-ptp", "new": 3, "old": 0,
            "owner": "bob", "release": "1.fc40", "task_id": 4642, "version": "6.0.3"}),
    ));
    assert_eq!(
        build.details.as_deref(),
        Some("State: failed (was building). Task and logs: http://koji.fedoraproject.org/koji/taskinfo?taskID=4642")
    );
    let long = catalog.derive(&msg(
        "org.fedoraproject.prod.bodhi.update.comment",
        json!({"comment": {"text": "é".repeat(3000), "update": {"alias": "A"}}}),
    ));
    let details = long.details.unwrap_or_default();
    assert!(details.len() <= super::MAX_DETAILS + '…'.len_utf8() && details.ends_with('…'));
    let plain = catalog.derive(&msg(
        "org.fedoraproject.prod.fas.user.create",
        json!({"user": "x"}),
    ));
    assert_eq!(plain.details, None);
}

#[test]
fn entries_for_one_bus_come_first_for_its_messages() {
    let (catalog, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        r#"
[[entry]]
topic = "bodhi.update.comment"
summary = "{comment.user.name} commented (fedmsg_meta's words)"
url = "https://bodhi/{comment.update.alias}"

[[entry]]
topic = "bodhi.**"
bus = "fedora-messaging"
app = "Bodhi"
summary = "{comment.user.name} commented on {comment.update.alias}"
"#
        .to_string(),
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let body =
        serde_json::json!({"comment": {"user": {"name": "ann"}, "update": {"alias": "FEDORA-1"}}});
    let fedmsg = Message::new(
        "1",
        "org.fedoraproject.prod.bodhi.update.comment",
        body.clone(),
    );
    let meta = catalog.derive(&fedmsg);
    assert_eq!(meta.summary, "ann commented (fedmsg_meta's words)");
    assert_eq!(meta.app.as_deref(), Some("bodhi"));
    let mut amqp = fedmsg.clone();
    amqp.headers.insert(
        "fedora_messaging_schema".into(),
        serde_json::json!("bodhi.update.comment.v1"),
    );
    let meta = catalog.derive(&amqp);
    // The broad entry for its bus wins over the specific one for both ...
    assert_eq!(meta.summary, "ann commented on FEDORA-1");
    // ... app names are kept in lower case, and keys it leaves out still come from the rest.
    assert_eq!(meta.app.as_deref(), Some("bodhi"));
    assert_eq!(meta.url.as_deref(), Some("https://bodhi/FEDORA-1"));
    // A message the fedmsg→AMQP bridge carried has no schema of its own: fedmsg's entries.
    amqp.headers.insert(
        "fedora_messaging_schema".into(),
        serde_json::json!("base.message"),
    );
    assert_eq!(
        catalog.derive(&amqp).summary,
        "ann commented (fedmsg_meta's words)"
    );
    let (_, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"a.b\"\nbus = \"zeromq\"\n".to_string(),
    )]);
    assert!(
        errors[0]
            .to_string()
            .contains("bus `zeromq` is not one of fedmsg, fedora-messaging"),
        "{}",
        errors[0]
    );
}

#[test]
fn apps_entries_name_are_known_apps_in_lower_case() {
    let (catalog, errors) = Catalog::load(&[(
        "koji.toml".to_string(),
        "[[entry]]\ntopic = \"buildsys.**\"\nbus = \"fedora-messaging\"\napp = \"Koji\"\n"
            .to_string(),
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let names = catalog.app_names();
    assert!(names.apps.contains("koji"), "{:?}", names.apps);
    assert!(names.apps.contains("buildsys"), "{:?}", names.apps);
}

#[test]
fn json_filter_reads_json_text_and_an_empty_url_means_no_link() {
    let text = r#"
[[entry]]
topic = "ipa.*"
bus = "fedora-messaging"
usernames = ["P | json('user')", "P | json('uid')"]
groups = ["P | json('cn')", "P | json('a.b')", "junk | json('cn')"]
summary = "{P | json('user') | count} users"
url = ""

[[entry]]
topic = "ipa.*"
url = "https://ipa/{P | json('cn')}"
"#;
    let (catalog, errors) = Catalog::load(&[("t.toml".to_string(), text.to_string())]);
    assert!(errors.is_empty(), "{errors:?}");
    let mut m = Message::new(
        "1",
        "org.fedoraproject.prod.ipa.x",
        json!({"P": "{\"cn\": \"devs\", \"user\": [\"a\", \"b\"], \"a\": {\"b\": 7}}", "junk": "{nope"}),
    );
    m.headers
        .insert("fedora_messaging_schema".into(), json!("journal.ipa.x.v1"));
    let meta = catalog.derive(&m);
    assert_eq!(meta.usernames, ["a", "b"].map(String::from).into());
    assert_eq!(meta.groups, ["7", "devs"].map(String::from).into());
    assert_eq!(meta.summary, "2 users");
    // The bus entry's empty url hides the other entry's link.
    assert_eq!(meta.url, None);
    m.headers.clear();
    assert_eq!(catalog.derive(&m).url.as_deref(), Some("https://ipa/devs"));
}

#[test]
fn filters_and_steps_for_the_schema_classes_words() {
    let toml = r#"
[[entry]]
topic = "bodhi.update.request.*"
summary = "{agent} submitted {update.user.name | unless_same('agent') | suffix(\"'s\") || 'their'} update ({update.builds[].nvr | join(' ') | ellipsis(10)})"
"#;
    let (catalog, errors) = Catalog::load(&[("t.toml".to_string(), toml.to_string())]);
    assert!(errors.is_empty(), "{errors:?}");
    let message = |agent: &str, nvrs: &[&str]| {
        let builds: Vec<_> = nvrs.iter().map(|n| serde_json::json!({"nvr": n})).collect();
        Message::new(
            "1",
            "org.fedoraproject.prod.bodhi.update.request.stable",
            serde_json::json!({"agent": agent, "update": {"user": {"name": "ann"}, "builds": builds}}),
        )
    };
    // Someone else acted: the owner's update; ten characters or more are cut with `…`.
    assert_eq!(
        catalog
            .derive(&message("bob", &["abc-1-1", "x-1-1"]))
            .summary,
        "bob submitted ann's update (abc-1-1 x-…)"
    );
    // The owner acted: their update; a shorter list stays whole, exactly ten gets `…`.
    assert_eq!(
        catalog.derive(&message("ann", &["ab-1-1"])).summary,
        "ann submitted their update (ab-1-1)"
    );
    assert_eq!(
        catalog.derive(&message("ann", &["abcd-1-1.x"])).summary,
        "ann submitted their update (abcd-1-1.x…)"
    );
    let (_, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"a.b\"\nsummary = \"{a | unless_same('b |')}\"\n".to_string(),
    )]);
    assert!(
        errors[0].to_string().contains("unless_same"),
        "{}",
        errors[0]
    );
    let toml = r#"
[[entry]]
topic = "a.b"
packages = ["name | when('namespace', 'rpms', 'flatpaks')"]
agent = "owner | unless('new', '1', '3') || owner | unless('old')"
"#;
    let (catalog, errors) = Catalog::load(&[("t.toml".to_string(), toml.to_string())]);
    assert!(errors.is_empty(), "{errors:?}");
    let derive = |body| catalog.derive(&Message::new("1", "org.fedoraproject.prod.a.b", body));
    let meta =
        derive(serde_json::json!({"name": "x", "namespace": "rpms", "owner": "o", "new": 1}));
    assert_eq!(meta.packages.iter().collect::<Vec<_>>(), ["x"]);
    assert_eq!(meta.agent.as_deref(), Some("o"), "no `old`: the owner");
    let meta = derive(
        serde_json::json!({"name": "x", "namespace": "tests", "owner": "o", "old": 0, "new": 3}),
    );
    assert!(meta.packages.is_empty());
    assert_eq!(meta.agent, None, "a finished build has no agent");
    let meta = derive(serde_json::json!({"owner": "o", "old": 0, "new": 4}));
    assert_eq!(meta.agent.as_deref(), Some("o"));
    let (catalog, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"a.c\"\npackages = [\"p[distro = 'Fedora'].name\"]\n".to_string(),
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let body = serde_json::json!({"p": [
        {"distro": "Alpine", "name": "a"}, {"distro": "Fedora", "name": "f"}, {"name": "n"}
    ]});
    let meta = catalog.derive(&Message::new("1", "org.fedoraproject.prod.a.c", body));
    assert_eq!(meta.packages.iter().collect::<Vec<_>>(), ["f"]);
    let (_, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"a.c\"\npackages = [\"p[distro].name\"]\n".to_string(),
    )]);
    assert!(
        errors[0].to_string().contains("[key='value']"),
        "{}",
        errors[0]
    );
    let (catalog, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"a.d\"\nsummary = \"{t | shorten(3, '...')}\"\n".to_string(),
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let summary = |t: &str| {
        let body = serde_json::json!({ "t": t });
        catalog
            .derive(&Message::new("1", "org.fedoraproject.prod.a.d", body))
            .summary
    };
    assert_eq!(summary("abc"), "abc");
    assert_eq!(summary("abcd"), "abc...");
    // `url = ""` keeps a broader entry's link off.
    let toml = "[[entry]]\ntopic = \"a.**\"\nurl = \"https://a/{x}\"\n\n[[entry]]\ntopic = \"a.e\"\nurl = \"\"\n";
    let (catalog, errors) = Catalog::load(&[("t.toml".to_string(), toml.to_string())]);
    assert!(errors.is_empty(), "{errors:?}");
    let body = serde_json::json!({ "x": "1" });
    let derive = |topic: &str| catalog.derive(&Message::new("1", topic, body.clone())).url;
    assert_eq!(
        derive("org.fedoraproject.prod.a.f").as_deref(),
        Some("https://a/1")
    );
    assert_eq!(derive("org.fedoraproject.prod.a.e"), None);
    let toml = "[[entry]]\ntopic = \"a.g\"\nsummary = \"{t | strftime('%a, %d %b %Y %H:%M:%S %Z') || 'none'}\"\n";
    let (catalog, errors) = Catalog::load(&[("t.toml".to_string(), toml.to_string())]);
    assert!(errors.is_empty(), "{errors:?}");
    let summary = |t: serde_json::Value| {
        let body = serde_json::json!({ "t": t });
        catalog
            .derive(&Message::new("1", "org.fedoraproject.prod.a.g", body))
            .summary
    };
    assert_eq!(
        summary(json!("2023-06-09T07:16:27.818161+00:00")),
        "Fri, 09 Jun 2023 07:16:27 UTC"
    );
    assert_eq!(
        summary(json!("2023-06-09T07:16:27+02:00")),
        "Fri, 09 Jun 2023 07:16:27 UTC+02:00"
    );
    assert_eq!(
        summary(json!("2023-06-09T07:16:27")),
        "Fri, 09 Jun 2023 07:16:27 "
    );
    assert_eq!(summary(json!("yesterday")), "none");
    let (_, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"a.g\"\nsummary = \"{t | strftime('%Q')}\"\n".to_string(),
    )]);
    assert!(
        errors[0].to_string().contains("bad format"),
        "{}",
        errors[0]
    );
}

#[test]
fn only_suffix_keeps_fedora_addresses_as_account_names() {
    let (catalog, errors) = load(&[(
        "t.toml",
        r#"
[[entry]]
topic = "mailman.receive"
usernames = ["msg.from | after_last('<') | strip_suffix('>') | only_suffix('@fedoraproject.org')"]
summary = "{msg.from | after_last('<') | strip_suffix('>') | strip_suffix('@fedoraproject.org')} wrote"
"#,
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let fedora = catalog.derive(&msg(
        "org.fedoraproject.prod.mailman.receive",
        json!({"msg": {"from": "Ann Example <ann@fedoraproject.org>"}}),
    ));
    assert_eq!(fedora.usernames.iter().collect::<Vec<_>>(), ["ann"]);
    assert_eq!(fedora.summary, "ann wrote");
    let other = catalog.derive(&msg(
        "org.fedoraproject.prod.mailman.receive",
        json!({"msg": {"from": "bob@example.org"}}),
    ));
    assert!(other.usernames.is_empty(), "{:?}", other.usernames);
    assert_eq!(other.summary, "bob@example.org wrote");
}

#[test]
fn reject_containing_drops_addresses_where_a_user_name_belongs() {
    let (catalog, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"git.receive\"\nusernames = [\"who | reject_containing('@')\"]\n"
            .to_string(),
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let derive = |who: &str| {
        catalog
            .derive(&Message::new(
                "1",
                "org.fedoraproject.prod.git.receive",
                serde_json::json!({ "who": who }),
            ))
            .usernames
    };
    assert!(derive("ann@example.com").is_empty());
    assert!(derive("ann").contains("ann"));
}

#[test]
fn ellipsis_cuts_long_titles_as_fedmsg_meta_did() {
    let (catalog, errors) = Catalog::load(&[(
        "t.toml".to_string(),
        "[[entry]]\ntopic = \"bodhi.update.edit\"\nsummary = \"{title | ellipsis(10, '...')}\"\n"
            .to_string(),
    )]);
    assert!(errors.is_empty(), "{errors:?}");
    let summary = |title: &str| {
        catalog
            .derive(&Message::new(
                "1",
                "org.fedoraproject.prod.bodhi.update.edit",
                serde_json::json!({ "title": title }),
            ))
            .summary
    };
    assert_eq!(summary("short"), "short");
    assert_eq!(summary("éxactly-10"), "éxactly-10...");
    assert_eq!(summary("a-much-longer-title"), "a-much-lon...");
}

/// Issue 13: the people a Pagure comment is about are among its usernames on both buses:
/// the ticket's author and the people the comment mentions, not only the commenter.
#[test]
fn a_pagure_comment_names_the_ticket_s_author_and_who_it_mentions() {
    let catalog = Catalog::shipped();
    let body = json!({
        "agent": "pingou",
        "project": {"name": "tidings", "fullname": "tidings", "namespace": null,
                    "full_url": "https://pagure.io/tidings"},
        "issue": {"id": 7, "title": "Mails are late", "user": {"name": "ralph"},
                  "assignee": null, "full_url": "https://pagure.io/tidings/issue/7",
                  "comments": [{"id": 1, "comment": "first", "user": {"name": "ralph"}},
                               {"id": 2, "comment": "@ralph @decause: fixed in 1.2", "user": {"name": "pingou"}}]}
    });
    let mut m = Message::new("1", "io.pagure.prod.pagure.issue.comment.added", body);
    let fedmsg = catalog.derive(&m).usernames;
    m.headers.insert(
        "fedora_messaging_schema".into(),
        json!("pagure.issue.comment.added"),
    );
    let amqp = catalog.derive(&m).usernames;
    for usernames in [fedmsg, amqp] {
        let want: std::collections::BTreeSet<String> =
            ["decause", "pingou", "ralph"].map(String::from).into();
        assert_eq!(usernames, want);
    }
}
