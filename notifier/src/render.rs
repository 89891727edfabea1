//! Rendering, apart from transport: a claimed outbox row (its message, the filters that
//! matched, its links) becomes a channel-neutral [`Rendered`] notification: a subject, a
//! plain and an HTML body from the templates in `templates/email/`, the links it carries
//! (all built from the web's route table, [`tidings_rules::links`]) and headers such as
//! `List-Unsubscribe`. Each channel turns that into its own wire format.

use std::sync::Arc;

use askama::Template;
use tidings_rules::links::Links;
use tidings_store::{
    Claimed, DigestContents, DigestReason, OutboxKind, OutboxPayload, StoredMessage,
};

/// Why a row could not be rendered. A row that cannot be rendered never can: it is dead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// The links a notification carries, absolute.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderedLinks {
    /// The page of the message itself, from its metadata (web links only).
    pub message: Option<String>,
    /// The page listing the user's notifications.
    pub notifications: Option<String>,
    /// The user's filters page.
    pub filters: Option<String>,
    /// The unsubscribe page of this notification.
    pub unsubscribe: Option<String>,
    /// The RFC 8058 one-click URL.
    pub one_click: Option<String>,
    /// A destination's confirmation link.
    pub confirm: Option<String>,
    /// The destinations page, where a code sent to a chat destination is typed in.
    pub destinations: Option<String>,
}

impl RenderedLinks {
    /// Every link, for checks that each resolves.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        [
            &self.message,
            &self.notifications,
            &self.filters,
            &self.unsubscribe,
            &self.one_click,
            &self.confirm,
            &self.destinations,
        ]
        .into_iter()
        .filter_map(|l| l.as_deref())
    }
}

/// A notification ready for any channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Stable across resends (the outbox row's uid): the Message-ID, webhook-id, txnId.
    pub id: String,
    /// One line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// The links it carries.
    pub links: RenderedLinks,
    /// Headers a channel that has them passes on, as (name, value):
    /// `Auto-Submitted`, `List-Unsubscribe`, `List-Unsubscribe-Post`, `X-Tidings-*`.
    pub headers: Vec<(&'static str, String)>,
    /// For a notification: the message it is about, as archived (a webhook posts its body
    /// and metadata), and the names of the filters that matched.
    pub event: Option<(Arc<StoredMessage>, Vec<String>)>,
    /// For a confirmation: its one-time token, for channels whose far end can prove it
    /// received the message by answering with it (a webhook's challenge).
    pub challenge: Option<String>,
    /// What the notification is about, as a key shared by every notification about the
    /// same object (an update, a pull request, a build): mail threads on it
    /// (`In-Reply-To`/`References`). 32 hex digits; `None` when the message names no object.
    pub thread: Option<String>,
    /// The short form chat channels send (Matrix, IRC): one line of plain text and its HTML.
    pub chat: Chat,
}

/// A notification as a chat message: the subject and its link on one line, or a
/// confirmation code with where to type it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chat {
    /// One line of plain text (no newlines).
    pub text: String,
    /// The same as HTML (Matrix's `formatted_body`), every value escaped.
    pub html: String,
}

impl Rendered {
    /// The value of header `name`, if set.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Template)]
#[template(path = "email/notification.txt")]
struct NotificationText<'a> {
    summary: &'a str,
    details: Option<&'a str>,
    topic: &'a str,
    url: Option<&'a str>,
    filters: &'a str,
    manage_url: &'a str,
    unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/notification.html")]
struct NotificationHtml<'a> {
    summary: &'a str,
    details: Option<&'a str>,
    topic: &'a str,
    url: Option<&'a str>,
    filters: &'a str,
    manage_url: &'a str,
    unsubscribe_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.txt")]
struct ConfirmationText<'a> {
    site: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirmation.html")]
struct ConfirmationHtml<'a> {
    site: &'a str,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "chat/notification.txt")]
struct ChatNotificationText<'a> {
    subject: &'a str,
    url: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "chat/notification.html")]
struct ChatNotificationHtml<'a> {
    subject: &'a str,
    url: Option<&'a str>,
    filters: &'a str,
}

#[derive(Template)]
#[template(path = "chat/confirmation.txt")]
struct ChatConfirmationText<'a> {
    address: &'a str,
    code: &'a str,
    destinations: &'a str,
}

#[derive(Template)]
#[template(path = "chat/confirmation.html")]
struct ChatConfirmationHtml<'a> {
    address: &'a str,
    code: &'a str,
    destinations: &'a str,
}

/// A rendered chat message: trimmed, and its text on one line.
fn chat(text: String, html: String) -> Chat {
    Chat {
        text: one_line(text.trim()),
        html: html.trim().to_string(),
    }
}

#[derive(Template)]
#[template(path = "email/notice.txt")]
struct NoticeText<'a> {
    channel: &'a str,
    address: &'a str,
    reason: &'a str,
    destinations_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/notice.html")]
struct NoticeHtml<'a> {
    channel: &'a str,
    address: &'a str,
    reason: &'a str,
    destinations_url: &'a str,
}

/// One application's part of a digest.
struct DigestGroup {
    app: String,
    count: String,
    lines: Vec<DigestLine>,
    more: String,
}

/// One object in a digest (an update, a build): its latest summary and link, and how many
/// notifications were about it.
struct DigestLine {
    summary: String,
    url: Option<String>,
    count: usize,
}

#[derive(Template)]
#[template(path = "email/digest.txt")]
struct DigestText<'a> {
    headline: &'a str,
    groups: &'a [DigestGroup],
    unlisted: String,
    notifications_url: &'a str,
    destinations_url: &'a str,
}

#[derive(Template)]
#[template(path = "email/digest.html")]
struct DigestHtml<'a> {
    headline: &'a str,
    groups: &'a [DigestGroup],
    unlisted: String,
    notifications_url: &'a str,
    destinations_url: &'a str,
}

#[derive(Template)]
#[template(path = "chat/digest.txt")]
struct ChatDigestText<'a> {
    headline: &'a str,
    groups: &'a [DigestGroup],
    notifications_url: &'a str,
}

#[derive(Template)]
#[template(path = "chat/digest.html")]
struct ChatDigestHtml<'a> {
    headline: &'a str,
    groups: &'a [DigestGroup],
    notifications_url: &'a str,
}

/// Objects listed per application in a digest; the rest are counted.
const DIGEST_LINES: usize = 10;

/// `n` with thousands separated: 4,213.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One object while a digest is grouped: its key, where it was last seen, and its line.
struct Object {
    key: String,
    latest: usize,
    line: DigestLine,
}

/// A digest's notifications grouped by application (most first), and in each by object
/// (the latest first), each object once with how many were about it.
fn digest_groups(contents: &DigestContents) -> Vec<DigestGroup> {
    let mut apps: Vec<(String, usize, Vec<Object>)> = Vec::new();
    for (index, (stored, _)) in contents.items.iter().enumerate() {
        let metadata = &stored.metadata;
        let app = metadata.app.clone().unwrap_or_else(|| "other".into());
        let url = metadata
            .url
            .as_deref()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
        let key = url
            .map(|u| u.split('#').next().unwrap_or(u).to_string())
            .or_else(|| metadata.objects.first().cloned())
            .unwrap_or_else(|| stored.message.id.clone());
        let position = match apps.iter().position(|(a, ..)| *a == app) {
            Some(p) => p,
            None => {
                apps.push((app, 0, Vec::new()));
                apps.len() - 1
            }
        };
        let (_, n, objects) = &mut apps[position];
        *n += 1;
        let line = DigestLine {
            summary: subject_line(&metadata.summary),
            url: url.map(str::to_string),
            count: 1,
        };
        match objects.iter_mut().find(|o| o.key == key) {
            Some(object) => {
                object.latest = index;
                object.line = DigestLine {
                    count: object.line.count + 1,
                    ..line
                };
            }
            None => objects.push(Object {
                key,
                latest: index,
                line,
            }),
        }
    }
    apps.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    apps.into_iter()
        .map(|(app, n, mut objects)| {
            objects.sort_by_key(|o| std::cmp::Reverse(o.latest));
            objects.truncate(DIGEST_LINES);
            let listed: usize = objects.iter().map(|o| o.line.count).sum();
            DigestGroup {
                app,
                count: count(n),
                more: if n > listed {
                    count(n - listed)
                } else {
                    String::new()
                },
                lines: objects.into_iter().map(|o| o.line).collect(),
            }
        })
        .collect()
}

fn render<T: Template>(name: &'static str, template: &T) -> Result<String, RenderError> {
    template
        .render()
        .map_err(|e| RenderError(format!("rendering {name}: {e}")))
}

/// Renders claimed rows under one public base URL.
#[derive(Debug, Clone)]
pub struct Renderer {
    links: Links,
}

impl Renderer {
    /// A renderer whose links point under `base_url`.
    pub fn new(base_url: &str) -> Renderer {
        Renderer {
            links: Links::new(base_url),
        }
    }

    /// The links it builds.
    pub fn links(&self) -> &Links {
        &self.links
    }

    /// Renders one claimed row.
    pub fn render(&self, claimed: &Claimed) -> Result<Rendered, RenderError> {
        let base = self.links.base();
        match claimed.kind {
            OutboxKind::Digest => self.render_digest(claimed),
            OutboxKind::Notice => self.render_notice(claimed),
            OutboxKind::Confirmation if claimed.destination.channel.confirms_by_code() => {
                let code = claimed
                    .confirmation_token()
                    .ok_or_else(|| RenderError("confirmation without a code".into()))?;
                let destinations = self.links.destinations();
                let address = claimed.destination.address.as_str();
                let text = render(
                    "chat/confirmation.txt",
                    &ChatConfirmationText {
                        address,
                        code,
                        destinations: &destinations,
                    },
                )?;
                let html = render(
                    "chat/confirmation.html",
                    &ChatConfirmationHtml {
                        address,
                        code,
                        destinations: &destinations,
                    },
                )?;
                let chat = chat(text, html);
                Ok(Rendered {
                    id: claimed.uid.clone(),
                    subject: "Your Tidings confirmation code".into(),
                    text: chat.text.clone(),
                    html: chat.html.clone(),
                    links: RenderedLinks {
                        destinations: Some(destinations),
                        ..RenderedLinks::default()
                    },
                    headers: vec![("Auto-Submitted", "auto-generated".into())],
                    event: None,
                    challenge: Some(code.to_string()),
                    thread: None,
                    chat,
                })
            }
            OutboxKind::Confirmation => {
                let token = claimed
                    .confirmation_token()
                    .ok_or_else(|| RenderError("confirmation without a token".into()))?;
                let link = self.links.confirm(token);
                // Nothing the account holder chose (their username, say) goes into this
                // mail: it reaches whoever owns the address, who did not ask for it.
                let text = render(
                    "confirmation.txt",
                    &ConfirmationText {
                        site: base,
                        link: &link,
                    },
                )?;
                let html = render(
                    "confirmation.html",
                    &ConfirmationHtml {
                        site: base,
                        link: &link,
                    },
                )?;
                Ok(Rendered {
                    id: claimed.uid.clone(),
                    subject: "Confirm this address for Tidings notifications".into(),
                    text,
                    html,
                    links: RenderedLinks {
                        confirm: Some(link),
                        ..RenderedLinks::default()
                    },
                    headers: vec![("Auto-Submitted", "auto-generated".into())],
                    event: None,
                    challenge: Some(token.to_string()),
                    thread: None,
                    chat: Chat::default(),
                })
            }
            OutboxKind::Notification => {
                let stored = claimed
                    .message
                    .as_ref()
                    .ok_or_else(|| RenderError("notification without a message".into()))?;
                let metadata = &stored.metadata;
                let filters = claimed
                    .filters
                    .iter()
                    .map(|(_, name)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                // The link's secret is derived from the uid with a server key; the uid
                // itself is the Message-ID and no secret.
                let token = claimed.unsubscribe_token.as_deref().ok_or_else(|| {
                    RenderError("notification without an unsubscribe link".into())
                })?;
                let unsubscribe_url = self.links.unsubscribe(token);
                let manage_url = self.links.filters();
                // Only web links: a javascript: or data: URL from a message must not become
                // a link.
                let url = metadata
                    .url
                    .as_deref()
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
                let topic = stored.message.topic.as_str();
                let text = render(
                    "notification.txt",
                    &NotificationText {
                        summary: &metadata.summary,
                        details: metadata.details.as_deref(),
                        topic,
                        url,
                        filters: &filters,
                        manage_url: &manage_url,
                        unsubscribe_url: &unsubscribe_url,
                    },
                )?;
                let html = render(
                    "notification.html",
                    &NotificationHtml {
                        summary: &metadata.summary,
                        details: metadata.details.as_deref(),
                        topic,
                        url,
                        filters: &filters,
                        manage_url: &manage_url,
                        unsubscribe_url: &unsubscribe_url,
                    },
                )?;
                let mut headers = vec![
                    ("Auto-Submitted", "auto-generated".into()),
                    ("List-Unsubscribe", format!("<{unsubscribe_url}>")),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
                    ("X-Tidings-Filters", filters.clone()),
                    ("X-Tidings-Topic", one_line(topic)),
                ];
                // Headers to sort by, from the message's metadata: what sent it, about which
                // packages, who acted.
                if let Some(app) = &metadata.app {
                    headers.push(("X-Tidings-App", one_line(app)));
                }
                if !metadata.packages.is_empty() {
                    let packages: Vec<&str> = metadata
                        .packages
                        .iter()
                        .take(20)
                        .map(String::as_str)
                        .collect();
                    headers.push(("X-Tidings-Package", one_line(&packages.join(", "))));
                }
                if let Some(agent) = &metadata.agent {
                    headers.push(("X-Tidings-Agent", one_line(agent)));
                }
                let subject = subject_line(&metadata.summary);
                let chat = chat(
                    render(
                        "chat/notification.txt",
                        &ChatNotificationText {
                            subject: &subject,
                            url,
                        },
                    )?,
                    render(
                        "chat/notification.html",
                        &ChatNotificationHtml {
                            subject: &subject,
                            url,
                            filters: &filters,
                        },
                    )?,
                );
                Ok(Rendered {
                    id: claimed.uid.clone(),
                    subject,
                    text,
                    html,
                    headers,
                    links: RenderedLinks {
                        message: url.map(str::to_string),
                        notifications: Some(self.links.notifications()),
                        filters: Some(manage_url),
                        one_click: Some(self.links.one_click(token)),
                        unsubscribe: Some(unsubscribe_url),
                        confirm: None,
                        destinations: None,
                    },
                    event: Some((
                        stored.clone(),
                        claimed
                            .filters
                            .iter()
                            .map(|(_, name)| name.clone())
                            .collect(),
                    )),
                    challenge: None,
                    thread: thread_key(metadata),
                    chat,
                })
            }
        }
    }
}

impl Renderer {
    /// A word from the hub to a destination's owner: another of their destinations was
    /// paused, why, and where to mend it.
    fn render_notice(&self, claimed: &Claimed) -> Result<Rendered, RenderError> {
        let Some(OutboxPayload::PausedV1 {
            channel,
            address,
            reason,
        }) = &claimed.payload
        else {
            return Err(RenderError("notice without what it is about".into()));
        };
        let destinations_url = self.links.destinations();
        let text = render(
            "notice.txt",
            &NoticeText {
                channel,
                address,
                reason,
                destinations_url: &destinations_url,
            },
        )?;
        let html = render(
            "notice.html",
            &NoticeHtml {
                channel,
                address,
                reason,
                destinations_url: &destinations_url,
            },
        )?;
        let chat = chat(text.clone(), escape_html(&one_line(&text)));
        Ok(Rendered {
            id: claimed.uid.clone(),
            subject: subject_line(&format!("Tidings paused notifications to {address}")),
            text,
            html,
            links: RenderedLinks {
                destinations: Some(destinations_url),
                ..RenderedLinks::default()
            },
            headers: vec![("Auto-Submitted", "auto-generated".into())],
            event: None,
            challenge: None,
            thread: None,
            chat,
        })
    }

    /// A digest: what was collected, grouped, with a headline that says why.
    fn render_digest(&self, claimed: &Claimed) -> Result<Rendered, RenderError> {
        let contents = claimed
            .digest
            .as_ref()
            .ok_or_else(|| RenderError("digest without contents".into()))?;
        let groups = digest_groups(contents);
        let total = usize::try_from(contents.total).unwrap_or(0);
        let n = count(total);
        let s = if total == 1 { "" } else { "s" };
        let headline = match contents.reason {
            DigestReason::Flood => {
                let top = groups
                    .first()
                    .map(|g| format!(" from {}", g.app))
                    .unwrap_or_default();
                if groups.len() > 1 {
                    format!("And {n} more notification{s} (most{top})")
                } else {
                    format!("And {n} more notification{s}{top}")
                }
            }
            DigestReason::Quiet => format!("{n} notification{s} from your quiet hours"),
            DigestReason::Digest => match &contents.filter {
                Some((_, name)) => format!("Your digest of {name}: {n} notification{s}"),
                None => format!("Your digest: {n} notification{s}"),
            },
        };
        let mut headers = vec![
            ("Auto-Submitted", "auto-generated".into()),
            ("X-Tidings-Digest", format!("{total}")),
        ];
        if let Some((_, name)) = &contents.filter {
            headers.push(("X-Tidings-Filters", one_line(name)));
        }
        let notifications_url = self.links.notifications();
        let destinations_url = self.links.destinations();
        let unlisted = total.saturating_sub(contents.items.len());
        let unlisted = if unlisted > 0 {
            count(unlisted)
        } else {
            String::new()
        };
        let text = render(
            "digest.txt",
            &DigestText {
                headline: &headline,
                groups: &groups,
                unlisted: unlisted.clone(),
                notifications_url: &notifications_url,
                destinations_url: &destinations_url,
            },
        )?;
        let html = render(
            "digest.html",
            &DigestHtml {
                headline: &headline,
                groups: &groups,
                unlisted,
                notifications_url: &notifications_url,
                destinations_url: &destinations_url,
            },
        )?;
        let chat = chat(
            render(
                "chat/digest.txt",
                &ChatDigestText {
                    headline: &headline,
                    groups: &groups,
                    notifications_url: &notifications_url,
                },
            )?,
            render(
                "chat/digest.html",
                &ChatDigestHtml {
                    headline: &headline,
                    groups: &groups,
                    notifications_url: &notifications_url,
                },
            )?,
        );
        Ok(Rendered {
            id: claimed.uid.clone(),
            subject: format!("Tidings: {headline}"),
            text,
            html,
            links: RenderedLinks {
                notifications: Some(notifications_url),
                destinations: Some(destinations_url),
                ..RenderedLinks::default()
            },
            headers,
            event: None,
            challenge: None,
            thread: None,
            chat,
        })
    }
}

/// The thread a notification belongs to ([`Metadata::thread`](tidings_rules::Metadata::thread)),
/// hashed: 32 hex digits that name it in a Message-ID.
fn thread_key(metadata: &tidings_rules::Metadata) -> Option<String> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(metadata.thread()?.as_bytes());
    Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// `text` safe inside HTML.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value from a message as one header line: control characters (a newline in a topic)
/// become spaces.
fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One line, at most 200 characters: summaries can be long or hold newlines.
fn subject_line(summary: &str) -> String {
    let line: String = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_about_one_object_share_a_thread() {
        let meta = |app: &str, url: Option<&str>, objects: &[&str]| tidings_rules::Metadata {
            app: Some(app.into()),
            url: url.map(str::to_string),
            objects: objects.iter().map(|o| o.to_string()).collect(),
            ..tidings_rules::Metadata::default()
        };
        let update = Some("https://bodhi.fedoraproject.org/updates/FEDORA-2024-1");
        let comment = Some("https://bodhi.fedoraproject.org/updates/FEDORA-2024-1#comment-7");
        let other = Some("https://bodhi.fedoraproject.org/updates/FEDORA-2024-2");
        let a = thread_key(&meta("bodhi", update, &[]));
        assert_eq!(a.as_deref().map(str::len), Some(32));
        assert_eq!(a, thread_key(&meta("bodhi", comment, &[])));
        assert_ne!(a, thread_key(&meta("bodhi", other, &[])));
        assert_ne!(a, thread_key(&meta("pagure", update, &[])));
        assert!(thread_key(&meta("bodhi", None, &["repos/f40"])).is_some());
        assert_eq!(thread_key(&meta("bodhi", None, &[])), None);
        assert_eq!(thread_key(&meta("bodhi", Some("javascript:x"), &[])), None);
        assert_eq!(one_line("a\r\nb"), "a  b");
    }

    #[test]
    fn subjects_are_one_bounded_line() {
        assert_eq!(subject_line("a\n b\tc"), "a b c");
        assert_eq!(subject_line(&"x".repeat(300)).chars().count(), 201);
    }
}
