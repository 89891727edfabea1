//! Feeds (issue 10): a filter's Atom feed at its secret URL, read back with a real XML
//! parser; caching with `ETag`; the URL shown to its owner only, renewed by them only; a
//! filter that cannot be read answers a feed that says so.

use std::collections::BTreeSet;

use quick_xml::events::Event;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use tidings_rules::{Condition, Message, Metadata};
use tidings_store::{Delivery, FilterInput};

use crate::on_both;
use crate::support::{App, Browser};

on_both!(
    the_feed_lists_what_the_filter_matches,
    only_the_owner_sees_and_renews_the_feed_url,
    a_filter_that_cannot_be_read_has_a_feed_that_says_so
);

/// An element as parsed: its attributes, its text (entities resolved) and its children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Node> + 'a {
        let name = name.to_string();
        self.children.iter().filter(move |c| c.name == name)
    }

    fn one(&self, name: &str) -> &Node {
        let mut found = self.all(name);
        let first = found
            .next()
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.name));
        assert!(found.next().is_none(), "two <{name}> in <{}>", self.name);
        first
    }

    fn text_of(&self, name: &str) -> &str {
        &self.one(name).text
    }

    fn link(&self, rel: &str) -> &str {
        self.all("link")
            .find(|l| l.attr("rel") == Some(rel))
            .and_then(|l| l.attr("href"))
            .unwrap_or_else(|| panic!("no link rel={rel}"))
    }
}

/// Parses a whole document with quick-xml (which checks that it is well formed: every end
/// tag matches, every entity is known) into its root element.
fn parse(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    let element = |e: &quick_xml::events::BytesStart| Node {
        name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
        attrs: e
            .attributes()
            .map(|a| {
                let a = a.expect("attribute");
                (
                    String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                    a.unescape_value().expect("attribute value").into_owned(),
                )
            })
            .collect(),
        ..Node::default()
    };
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("{e}: {xml}")) {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => {
                let node = element(&e);
                stack.last_mut().unwrap().children.push(node);
            }
            Event::End(_) => {
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Event::Text(t) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c,
                    None => match &*r.decode().unwrap() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("unknown entity &{other};"),
                    },
                };
                stack.last_mut().unwrap().text.push(c);
            }
            Event::CData(c) => stack
                .last_mut()
                .unwrap()
                .text
                .push_str(std::str::from_utf8(&c).unwrap()),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    let root = document.children.remove(0);
    assert_eq!(root.name, "feed");
    assert_eq!(root.attr("xmlns"), Some("http://www.w3.org/2005/Atom"));
    root
}

/// Archives a message about `usernames`, sent at `sent_s` (Unix seconds).
async fn archive(
    app: &App,
    id: &str,
    usernames: &[&str],
    summary: &str,
    url: Option<&str>,
    sent_s: i64,
) {
    let mut message = Message::new(
        id,
        "org.fedoraproject.prod.bodhi.update.comment",
        serde_json::json!({"comment": {"text": "<b>bold</b> & \"quoted\""}}),
    );
    message.sent_at = Some(sent_s * 1000);
    let metadata = Metadata {
        topic: message.topic.clone(),
        app: Some("bodhi".into()),
        agent: usernames.first().map(|u| u.to_string()),
        usernames: usernames.iter().map(|u| u.to_string()).collect(),
        summary: summary.into(),
        url: url.map(str::to_string),
        ..Metadata::default()
    };
    app.store
        .insert_message(&message, &metadata, "test")
        .await
        .unwrap()
        .expect("a new message");
}

async fn filter(app: &App, user_id: i64, name: &str, condition: &str) -> i64 {
    let input = FilterInput {
        name: name.into(),
        condition: Condition::parse(condition).unwrap(),
        destination_ids: vec![],
        delivery: Delivery::Instant,
        enabled: true,
    };
    app.store.create_filter(user_id, &input).await.unwrap().id
}

/// The feed URL shown on a filter's page, or `None` when the page shows none.
fn shown_url(html: &str) -> Option<String> {
    let marker = r#"class="feed-url" readonly value=""#;
    let start = html.find(marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_string())
}

/// The path of a feed URL under the app.
fn path_of(app: &App, url: &str) -> String {
    url.strip_prefix(&app.base)
        .unwrap_or_else(|| panic!("{url} is not under {}", app.base))
        .to_string()
}

async fn feed_path(app: &App, owner: &Browser, filter_id: i64) -> String {
    let page = owner.get(&format!("/filters/{filter_id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let url = shown_url(&page.body).unwrap_or_else(|| panic!("no feed URL in {}", page.body));
    let path = path_of(app, &url);
    assert!(
        path.starts_with("/feeds/") && path.ends_with(".atom"),
        "{path}"
    );
    path
}

async fn the_feed_lists_what_the_filter_matches(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let id = filter(app, me.id, "koji & <builds>", "usernames has $me").await;
    archive(
        app,
        "m1",
        &["alice"],
        "alice commented",
        Some("https://bodhi.example.org/updates/1"),
        1_700_000_000,
    )
    .await;
    archive(app, "m2", &["bob"], "bob commented", None, 1_700_000_100).await;
    archive(
        app,
        "m3",
        &["alice", "bob"],
        "a link that is no web page",
        Some("javascript:alert(1)"),
        1_700_000_200,
    )
    .await;
    archive(
        app,
        "m4 <&>",
        &["alice"],
        "<script>alert(1)</script> & more\non two lines",
        None,
        1_700_000_300,
    )
    .await;
    let path = feed_path(app, &alice, id).await;

    // No session needed: a fresh client with no cookies reads it.
    let reader = app.browser();
    let reply = reader.get(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.headers[CONTENT_TYPE],
        "application/atom+xml; charset=utf-8"
    );
    assert_eq!(reply.headers[CACHE_CONTROL], "private, max-age=60");
    let etag = reply.headers[ETAG].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    // Escaped, not raw markup.
    assert!(!reply.body.contains("<script>"), "{}", reply.body);
    assert!(!reply.body.contains("<b>"), "{}", reply.body);
    assert!(reply.body.contains("&lt;script&gt;"), "{}", reply.body);

    let feed = parse(&reply.body);
    assert_eq!(feed.text_of("title"), "Tidings: koji & <builds>");
    assert_eq!(feed.link("self"), format!("{}{path}", app.base));
    assert!(!feed.text_of("id").is_empty());
    assert_eq!(feed.text_of("updated"), "2023-11-14T22:18:20Z");
    let entries: Vec<&Node> = feed.all("entry").collect();
    let ids: Vec<&str> = entries.iter().map(|e| e.text_of("id")).collect();
    // Exactly the matching messages, newest first.
    assert_eq!(
        ids,
        [
            "tag:tidings,2026:message/m4%20%3C%26%3E",
            "tag:tidings,2026:message/m3",
            "tag:tidings,2026:message/m1"
        ]
    );
    let (m4, m3, m1) = (entries[0], entries[1], entries[2]);
    assert_eq!(
        m4.text_of("title"),
        "<script>alert(1)</script> & more on two lines"
    );
    assert!(m4
        .text_of("content")
        .contains("<b>bold</b> & \\\"quoted\\\""));
    assert_eq!(m4.text_of("updated"), "2023-11-14T22:18:20Z");
    assert_eq!(m4.one("author").text_of("name"), "alice");
    let terms: BTreeSet<&str> = m4.all("category").filter_map(|c| c.attr("term")).collect();
    assert_eq!(
        terms,
        BTreeSet::from(["bodhi", "org.fedoraproject.prod.bodhi.update.comment"])
    );
    assert_eq!(m1.link("alternate"), "https://bodhi.example.org/updates/1");
    // A link that is not http(s) is replaced by the hub's notifications page.
    assert_eq!(m3.link("alternate"), format!("{}/notifications", app.base));

    // Polling: the same ETag is a 304 with no body; another one a full answer.
    let again = reader
        .client
        .get(format!("{}{path}", app.base))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG].to_str().unwrap(), etag);
    assert!(again.text().await.unwrap().is_empty());
    let other = reader
        .client
        .get(format!("{}{path}", app.base))
        .header(IF_NONE_MATCH, "\"something else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    // A new message changes the ETag, and the feed shows it first.
    archive(app, "m5", &["alice"], "newest", None, 1_700_000_400).await;
    let changed = reader
        .client
        .get(format!("{}{path}", app.base))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()[ETAG].to_str().unwrap(), etag);
    let feed = parse(&changed.text().await.unwrap());
    assert_eq!(
        feed.all("entry").next().unwrap().text_of("id"),
        "tag:tidings,2026:message/m5"
    );
    assert_eq!(feed.all("entry").count(), 4);

    // Wrong tokens: all 404, whatever is wrong with them.
    let (good, _) = path
        .strip_suffix(".atom")
        .unwrap()
        .rsplit_once('.')
        .unwrap();
    let forged = format!("{good}.{}.atom", "A".repeat(43));
    for bad in [
        forged.as_str(),
        &path.replace(".atom", ""),
        &path.replace("/feeds/", &format!("/feeds/{}", 9)),
        "/feeds/garbage",
        "/feeds/1.x.atom",
        "/feeds/.atom",
    ] {
        assert_eq!(reader.get(bad).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

async fn only_the_owner_sees_and_renews_the_feed_url(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let id = filter(app, me.id, "mine", "usernames has $me").await;
    let path = feed_path(app, &alice, id).await;
    let page = format!("/filters/{id}");
    let renew = format!("/filters/{id}/feed");

    let bob = app.browser();
    bob.signup("bob", "plum kettle orbit 1974").await;
    let seen = bob.get(&page).await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND);
    assert!(!seen.body.contains("/feeds/"), "{}", seen.body);
    // Bob's own filter page shows his URL, not Alice's.
    let bob_id = app.store.user_by_name("bob").await.unwrap().unwrap().id;
    let his = filter(app, bob_id, "his", "usernames has $me").await;
    let his_path = feed_path(app, &bob, his).await;
    assert_ne!(his_path, path);
    // Bob cannot renew Alice's URL; it keeps working.
    let refused = bob.submit("/filters", &renew, &[]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(bob.get(&path).await.status, StatusCode::OK);
    // Without the CSRF token, not even Alice can.
    let forged = alice.post(&renew, &[]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(alice.get(&path).await.status, StatusCode::OK);

    // Alice renews it: the old URL is 404 at once, the new one works.
    let renewed = alice.submit(&page, &renew, &[]).await;
    assert_eq!(renewed.status, StatusCode::SEE_OTHER, "{}", renewed.body);
    assert_eq!(
        renewed.location.as_deref(),
        Some(format!("{page}#feed").as_str())
    );
    assert_eq!(app.browser().get(&path).await.status, StatusCode::NOT_FOUND);
    let new_path = feed_path(app, &alice, id).await;
    assert_ne!(new_path, path);
    assert_eq!(app.browser().get(&new_path).await.status, StatusCode::OK);
    // The store hands out the same URL the page shows.
    let token = app.store.feed_token(me.id, id).await.unwrap();
    assert_eq!(new_path, format!("/feeds/{token}.atom"));
    // Bob's URL was left alone.
    assert_eq!(app.browser().get(&his_path).await.status, StatusCode::OK);

    // A deleted filter's feed is gone; so is a disabled account's.
    app.store.delete_filter(me.id, id).await.unwrap();
    assert_eq!(
        app.browser().get(&new_path).await.status,
        StatusCode::NOT_FOUND
    );
    app.store.set_user_disabled("bob", true).await.unwrap();
    assert_eq!(
        app.browser().get(&his_path).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn a_filter_that_cannot_be_read_has_a_feed_that_says_so(app: &App) {
    let alice = app.browser();
    alice.signup("alice", "velvet crane harbour 42").await;
    let me = app.store.user_by_name("alice").await.unwrap().unwrap();
    let id = filter(app, me.id, "broken", "usernames has $me").await;
    archive(
        app,
        "m1",
        &["alice"],
        "alice commented",
        None,
        1_700_000_000,
    )
    .await;
    let path = feed_path(app, &alice, id).await;
    app.sql(&format!(
        "UPDATE filters SET condition = 'not a condition' WHERE id = {id}"
    ))
    .await;
    let reply = app.browser().get(&path).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let feed = parse(&reply.body);
    let entries: Vec<&Node> = feed.all("entry").collect();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].text_of("title").contains("set aside"),
        "{}",
        reply.body
    );
    assert!(
        entries[0].text_of("content").contains("could not be read"),
        "{}",
        reply.body
    );
    // Its owner still sees the URL on the page that offers the repair.
    assert_eq!(feed_path(app, &alice, id).await, path);
}
