//! The email channel: SMTP through lettre (TLS per the URL), or a local mailbox folder of
//! `.eml` files when no SMTP server is configured. Mails are multipart text + HTML from the
//! askama templates in `templates/email/`, with list headers (RFC 2369, RFC 8058), a header
//! naming the filters that caused the mail, and a Message-ID that a resend keeps.

use askama::Template;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tidings_store::{Claimed, OutboxKind};

use crate::{EmailConfig, NotifierError};

/// Why a send failed, and whether trying again could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// A temporary failure (connection refused, 4xx): retry later.
    pub transient: bool,
    /// What went wrong.
    pub reason: String,
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A folder of `.eml` files.
    Folder(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport the settings name. Fails at start on an unusable URL.
    pub fn from_config(config: &EmailConfig) -> Result<Mailer, NotifierError> {
        config
            .from
            .parse::<Mailbox>()
            .map_err(|e| NotifierError::EmailConfig {
                field: "from",
                reason: format!("{:?} is not an address: {e}", config.from),
            })?;
        match &config.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| NotifierError::EmailConfig {
                        field: "smtp_url",
                        reason: format!("{}: {e}", tidings_store::redact(url)),
                    })?
                    .build();
                Ok(Mailer::Smtp(transport))
            }
            None => {
                let mailbox = config.mailbox();
                std::fs::create_dir_all(&mailbox).map_err(|e| NotifierError::EmailConfig {
                    field: "mailbox_dir",
                    reason: format!("{}: {e}", mailbox.display()),
                })?;
                Ok(Mailer::Folder(AsyncFileTransport::new(&mailbox)))
            }
        }
    }

    /// Sends one mail.
    pub async fn send(&self, mail: Message) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(smtp) => smtp.send(mail).await.map(drop).map_err(|e| SendError {
                // Only a definite 5xx refusal is final; everything else (network, 4xx) may pass.
                transient: !e.is_permanent(),
                reason: e.to_string(),
            }),
            Mailer::Folder(folder) => folder.send(mail).await.map(drop).map_err(|e| SendError {
                transient: true,
                reason: e.to_string(),
            }),
        }
    }
}

#[derive(Template)]
#[template(path = "email/notification.txt")]
struct NotificationText<'a> {
    summary: &'a str,
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

fn render<T: Template>(name: &'static str, template: &T) -> Result<String, NotifierError> {
    template.render().map_err(|e| NotifierError::Template {
        template: name,
        reason: e.to_string(),
    })
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// Builds the mail for a claimed outbox row.
pub fn compose(
    claimed: &Claimed,
    config: &EmailConfig,
    base_url: &str,
) -> Result<Message, SendError> {
    let permanent = |reason: String| SendError {
        transient: false,
        reason,
    };
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| permanent(format!("email.from: {e}")))?;
    let to: Mailbox = claimed
        .destination
        .address
        .parse()
        .map_err(|e| permanent(format!("address {:?}: {e}", claimed.destination.address)))?;
    let domain = from.email.domain().to_string();
    let base = base_url.trim_end_matches('/');
    let builder = Message::builder()
        .from(from)
        .to(to)
        .message_id(Some(format!("<{}@{}>", claimed.uid, domain)))
        .raw_header(header("Auto-Submitted", "auto-generated".into()));
    let (builder, text, html) = match claimed.kind {
        OutboxKind::Confirmation => {
            let token = claimed
                .payload
                .as_ref()
                .and_then(|p| p.get("token"))
                .and_then(|t| t.as_str())
                .ok_or_else(|| permanent("confirmation without a token".into()))?;
            let link = format!("{base}/confirm/{token}");
            // Nothing the account holder chose (their username, say) goes into this mail:
            // it reaches whoever owns the address, who did not ask for it.
            let text = render(
                "confirmation.txt",
                &ConfirmationText {
                    site: base,
                    link: &link,
                },
            );
            let html = render(
                "confirmation.html",
                &ConfirmationHtml {
                    site: base,
                    link: &link,
                },
            );
            (
                builder.subject("Confirm this address for Tidings notifications"),
                text,
                html,
            )
        }
        OutboxKind::Notification => {
            let stored = claimed
                .message
                .as_ref()
                .ok_or_else(|| permanent("notification without a message".into()))?;
            let metadata = &stored.metadata;
            let filters = claimed
                .filters
                .iter()
                .map(|(_, name)| name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            // The link's secret is derived from the uid with a server key; the uid itself
            // is the Message-ID and no secret.
            let token = claimed
                .unsubscribe_token
                .as_deref()
                .ok_or_else(|| permanent("notification without an unsubscribe link".into()))?;
            let unsubscribe_url = format!("{base}/unsubscribe/{token}");
            let manage_url = format!("{base}/filters");
            let mut unsubscribe = format!("<{unsubscribe_url}>");
            if let Some(mailto) = &config.unsubscribe_mailto {
                unsubscribe.push_str(&format!(
                    ", <mailto:{mailto}?subject=unsubscribe%20{token}>"
                ));
            }
            // Only web links: a javascript: or data: URL from a message must not become a link.
            let url = metadata
                .url
                .as_deref()
                .filter(|u| u.starts_with("https://") || u.starts_with("http://"));
            let view = (
                metadata.summary.as_str(),
                stored.message.topic.as_str(),
                url,
            );
            let text = render(
                "notification.txt",
                &NotificationText {
                    summary: view.0,
                    topic: view.1,
                    url: view.2,
                    filters: &filters,
                    manage_url: &manage_url,
                    unsubscribe_url: &unsubscribe_url,
                },
            );
            let html = render(
                "notification.html",
                &NotificationHtml {
                    summary: view.0,
                    topic: view.1,
                    url: view.2,
                    filters: &filters,
                    manage_url: &manage_url,
                    unsubscribe_url: &unsubscribe_url,
                },
            );
            let builder = builder
                .subject(subject_line(&metadata.summary))
                .raw_header(header("List-Id", format!("<{}>", config.list_id)))
                .raw_header(header("List-Unsubscribe", unsubscribe))
                .raw_header(header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".into(),
                ))
                .raw_header(header("X-Tidings-Filters", filters.clone()))
                .raw_header(header("X-Tidings-Topic", stored.message.topic.clone()));
            (builder, text, html)
        }
    };
    let (text, html) = (
        text.map_err(|e| permanent(e.to_string()))?,
        html.map_err(|e| permanent(e.to_string()))?,
    );
    builder
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| permanent(format!("building the mail: {e}")))
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
    fn subjects_are_one_bounded_line() {
        assert_eq!(subject_line("a\n b\tc"), "a b c");
        assert_eq!(subject_line(&"x".repeat(300)).chars().count(), 201);
    }

    /// The SMTP pool spawns onto the runtime when built, as in `serve`.
    #[tokio::test]
    async fn smtp_urls_are_checked_at_start() {
        let config = EmailConfig {
            smtp_url: Some("ftp://nope".into()),
            mailbox_dir: Some(std::env::temp_dir()),
            from: "Tidings <tidings@example.org>".into(),
            list_id: "tidings.example.org".into(),
            unsubscribe_mailto: None,
        };
        let err = Mailer::from_config(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("email.smtp_url: ftp://nope"), "{err}");
        let ok = EmailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            ..config.clone()
        };
        assert!(Mailer::from_config(&ok).is_ok());
        let tls = EmailConfig {
            smtp_url: Some("smtps://user:secret@mail.example.org".into()),
            ..config.clone()
        };
        assert!(Mailer::from_config(&tls).is_ok());
        let bad_from = EmailConfig {
            from: "not an address".into(),
            ..config
        };
        assert!(Mailer::from_config(&bad_from).is_err());
    }
}
