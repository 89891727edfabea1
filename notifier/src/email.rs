//! The email channel: SMTP through lettre (TLS per the URL), or a local mailbox folder of
//! `.eml` files when no SMTP server is configured. Mails are multipart text + HTML from the
//! askama templates in `templates/email/`, with list headers (RFC 2369, RFC 8058), a header
//! naming the filters that caused the mail, and a Message-ID that a resend keeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Where mail goes, and the most one send may take.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    timeout: Duration,
}

#[derive(Clone)]
enum Transport {
    /// An SMTP server.
    Smtp(Arc<Smtp>),
    /// A folder of `.eml` files.
    Folder(AsyncFileTransport<Tokio1Executor>),
}

/// An SMTP transport (lettre's, with its connection pool) that is replaced after a send
/// times out: the timed-out send may have left its connection in the middle of a command,
/// and lettre would otherwise park that connection for reuse.
struct Smtp {
    url: String,
    timeout: Duration,
    current: Mutex<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Smtp {
    fn build(
        url: &str,
        timeout: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifierError> {
        // lettre's timeout covers connecting (and, on its blocking transport, each command);
        // the timeout around each whole send in `Mailer::send` covers the rest.
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| NotifierError::EmailConfig {
                field: "smtp_url",
                reason: format!("{}: {e}", tidings_store::redact(url)),
            })?
            .timeout(Some(timeout))
            .build())
    }

    fn transport(&self) -> AsyncSmtpTransport<Tokio1Executor> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A fresh transport; the old pool closes its connections once its last send is done.
    fn renew(&self) {
        match Smtp::build(&self.url, self.timeout) {
            Ok(fresh) => {
                *self
                    .current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
            }
            Err(err) => tracing::error!(error = %err, "renewing the SMTP transport failed"),
        }
    }
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
        if config.timeout_secs == 0 {
            return Err(NotifierError::EmailConfig {
                field: "timeout_secs",
                reason: "must be at least 1".into(),
            });
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(Arc::new(Smtp {
                url: url.clone(),
                timeout,
                current: Mutex::new(Smtp::build(url, timeout)?),
            })),
            None => {
                let mailbox = config.mailbox();
                std::fs::create_dir_all(&mailbox).map_err(|e| NotifierError::EmailConfig {
                    field: "mailbox_dir",
                    reason: format!("{}: {e}", mailbox.display()),
                })?;
                Transport::Folder(AsyncFileTransport::new(&mailbox))
            }
        };
        Ok(Mailer { transport, timeout })
    }

    /// Sends one mail, within the configured time.
    pub async fn send(&self, mail: Message) -> Result<(), SendError> {
        let send = async {
            match &self.transport {
                Transport::Smtp(smtp) => {
                    smtp.transport()
                        .send(mail)
                        .await
                        .map(drop)
                        .map_err(|e| SendError {
                            // Only a definite 5xx refusal is final; everything else (network,
                            // 4xx) may pass.
                            transient: !e.is_permanent(),
                            reason: e.to_string(),
                        })
                }
                Transport::Folder(folder) => {
                    folder.send(mail).await.map(drop).map_err(|e| SendError {
                        transient: true,
                        reason: e.to_string(),
                    })
                }
            }
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(result) => result,
            Err(_) => {
                if let Transport::Smtp(smtp) = &self.transport {
                    smtp.renew();
                }
                Err(SendError {
                    transient: true,
                    reason: format!(
                        "no answer within {} s (email.timeout_secs)",
                        self.timeout.as_secs()
                    ),
                })
            }
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

/// The longest header value written, in bytes. lettre folds values at spaces; a value that
/// cannot be folded (one long word) still leaves its line, name included, under SMTP's
/// 998-octet limit, which strict servers enforce by refusing the mail for good.
const HEADER_VALUE_MAX: usize = 900;

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), bounded(value))
}

/// The value, cut to `HEADER_VALUE_MAX` bytes on a character boundary and marked with
/// "..." (ASCII, so that a cut ASCII value is not re-encoded as RFC 2047 words).
fn bounded(mut value: String) -> String {
    if value.len() > HEADER_VALUE_MAX {
        let mut cut = HEADER_VALUE_MAX - 3;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
        value.push_str("...");
    }
    value
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

    /// issue 8 item 17: a 3 KB topic became one `X-Tidings-Topic` line of 3 KB, and strict
    /// servers refuse such a mail for good. However long the values, every line of the mail
    /// stays within SMTP's 998 octets.
    #[test]
    fn no_line_exceeds_998_octets_whatever_the_values() {
        use tidings_store::{Channel, Destination, StoredMessage};
        let message = tidings_rules::Message::new(
            "m".repeat(3000),
            "org.example.".repeat(400),
            serde_json::json!({}),
        );
        let metadata = tidings_rules::Metadata {
            summary: format!("{} {}", "\u{fc}".repeat(3000), "y".repeat(3000)),
            url: Some(format!("https://example.org/{}", "p".repeat(3000))),
            ..tidings_rules::Metadata::default()
        };
        let claimed = Claimed {
            id: 1,
            kind: OutboxKind::Notification,
            uid: "u".repeat(32),
            attempt: 1,
            destination: Destination {
                id: 1,
                user_id: 1,
                channel: Channel::Email,
                address: "alice@example.org".into(),
                confirmed_at: Some(1),
                created_at: 1,
            },
            username: "alice".into(),
            message: Some(StoredMessage {
                id: 1,
                message,
                metadata,
                source: "test".into(),
                received_at: 1,
            }),
            filters: (0..20)
                .map(|i| (i, format!("{i} {}", "f\u{e9}".repeat(600))))
                .chain([(99, "g".repeat(5000))])
                .collect(),
            payload: None,
            unsubscribe_token: Some("t".repeat(43)),
        };
        let config = EmailConfig {
            list_id: format!("{}.example.org", "l".repeat(2000)),
            unsubscribe_mailto: Some(format!("{}@example.org", "u".repeat(1500))),
            ..EmailConfig::default()
        };
        let base_url = format!("https://{}.example.org", "h".repeat(1500));
        let mail = compose(&claimed, &config, &base_url)
            .unwrap_or_else(|e| panic!("composing: {}", e.reason))
            .formatted();
        let text = String::from_utf8_lossy(&mail);
        for line in text.split("\r\n") {
            assert!(
                line.len() <= 998,
                "a line of {} octets: {:.80}…",
                line.len(),
                line
            );
        }
        let parsed = text.split("\r\n\r\n").next().unwrap_or_default();
        assert!(
            parsed.contains("X-Tidings-Topic: org.example.org.example."),
            "{parsed:.2000}"
        );
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
            timeout_secs: 30,
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
