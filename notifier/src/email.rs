//! The email channel: turns a [`Rendered`] notification into a MIME mail and sends it over
//! SMTP (`smtp://`, plain or with STARTTLS, on connections of our own with `TCP_NODELAY`,
//! see `smtp`; `smtps://` through lettre's transport and pool), or to a local
//! mailbox folder of `.eml` files when no SMTP server is configured. Mails are multipart
//! text + HTML, carry the rendering's list headers (RFC 2369, RFC 8058) plus `List-Id`, and
//! a Message-ID that a resend keeps.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tidings_store::{ChannelKind, Destination};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::folder::Folder;
use crate::render::Rendered;
use crate::smtp::{SmtpPool, SmtpServer};
use crate::{EmailConfig, NotifierError};

/// Sends in flight with an SMTP server when `sender.concurrency` is unset: what measured
/// fastest against a local server, with `max_connections` (48) kept open (docs/performance.md).
const SMTP_PARALLELISM: usize = 64;

/// Sends in flight to the mailbox folder when `sender.concurrency` is unset: a 30,000-message
/// burst took 26.5 s at 64, 20.6 s at 256 and 19.4 s at 512, and a fifth less CPU from 64 to
/// 256 (docs/performance.md); past 256 the claims only grow, and so does what a crash may
/// write twice.
const FOLDER_PARALLELISM: usize = 256;

/// The sends in flight the email channel does well with these settings (see
/// [`Channel::parallelism`]): with SMTP a little more than its pool, since each send waits
/// on the server most of its time; for the folder, whose one writer takes mails as fast as
/// the file system creates files, enough that each claim takes many rows.
pub fn parallelism(config: &EmailConfig) -> usize {
    match config.smtp_url {
        Some(_) => SMTP_PARALLELISM,
        None => FOLDER_PARALLELISM,
    }
}

/// Where mail goes, and the most one send may take.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    timeout: Duration,
}

#[derive(Clone)]
enum Transport {
    /// An `smtp://` server, plain or upgraded with STARTTLS: our own pooled connections.
    Pooled(Arc<SmtpPool>),
    /// An `smtps://` server (TLS from the first byte): lettre's transport.
    Smtp(Arc<Smtp>),
    /// A folder of `.eml` files, written by one thread.
    Folder(Folder),
}

/// An SMTP transport (lettre's, with its connection pool) that is replaced after a send
/// times out: the timed-out send may have left its connection in the middle of a command,
/// and lettre would otherwise park that connection for reuse.
struct Smtp {
    url: String,
    timeout: Duration,
    max_connections: u32,
    current: Mutex<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Smtp {
    fn build(
        url: &str,
        timeout: Duration,
        max_connections: u32,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifierError> {
        // lettre's timeout covers connecting (and, on its blocking transport, each command);
        // the timeout around each whole send in `Mailer::send` covers the rest.
        Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| NotifierError::EmailConfig {
                field: "smtp_url",
                reason: format!("{}: {e}", tidings_store::redact(url)),
            })?
            .timeout(Some(timeout))
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(max_connections))
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
        match Smtp::build(&self.url, self.timeout, self.max_connections) {
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

/// One SMTP send that, should it be dropped before it ends (a timeout here or in the
/// sender), renews the transport: the connection may be left mid-command.
struct Renewing<'a> {
    smtp: Option<&'a Smtp>,
}

impl Renewing<'_> {
    async fn send(
        smtp: &Smtp,
        mail: Message,
    ) -> Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error> {
        let mut guard = Renewing { smtp: Some(smtp) };
        let result = smtp.transport().send(mail).await;
        guard.smtp = None;
        result
    }
}

impl Drop for Renewing<'_> {
    fn drop(&mut self) {
        if let Some(smtp) = self.smtp {
            smtp.renew();
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
        let pooled = config.smtp_url.as_deref().and_then(SmtpServer::from_url);
        let transport = match (&config.smtp_url, pooled) {
            (Some(_), Some(server)) => {
                // A host name TLS cannot check a certificate against is a mistake in the
                // settings, said at start, not at every send.
                if server.starttls.is_some() {
                    lettre::transport::smtp::client::TlsParameters::new(server.host.clone())
                        .map_err(|e| NotifierError::EmailConfig {
                            field: "smtp_url",
                            reason: format!("STARTTLS to {}: {e}", server.host),
                        })?;
                }
                Transport::Pooled(Arc::new(SmtpPool::new(
                    server,
                    config.max_connections.max(1) as usize,
                )))
            }
            (Some(url), None) => Transport::Smtp(Arc::new(Smtp {
                url: url.clone(),
                timeout,
                max_connections: config.max_connections.max(1),
                current: Mutex::new(Smtp::build(url, timeout, config.max_connections.max(1))?),
            })),
            (None, _) => {
                let mailbox = config.mailbox();
                std::fs::create_dir_all(&mailbox).map_err(|e| NotifierError::EmailConfig {
                    field: "mailbox_dir",
                    reason: format!("{}: {e}", mailbox.display()),
                })?;
                Transport::Folder(Folder::start(&mailbox).map_err(|e| {
                    NotifierError::EmailConfig {
                        field: "mailbox_dir",
                        reason: format!("{}: cannot start its writer: {e}", mailbox.display()),
                    }
                })?)
            }
        };
        Ok(Mailer { transport, timeout })
    }

    /// Sends one mail, within the configured time.
    pub async fn send(&self, mail: Message) -> SendResult {
        let send = async {
            match &self.transport {
                Transport::Pooled(smtp) => {
                    match smtp.send(mail.envelope(), &mail.formatted()).await {
                        Ok(_) => SendResult::Sent,
                        Err(e) => refused(e.is_permanent(), e.to_string()),
                    }
                }
                Transport::Smtp(smtp) => match Renewing::send(smtp, mail).await {
                    Ok(_) => SendResult::Sent,
                    Err(e) => refused(e.is_permanent(), e.to_string()),
                },
                Transport::Folder(folder) => match folder.write(mail.formatted()).await {
                    Ok(_) => SendResult::Sent,
                    Err(e) => SendResult::Retry {
                        after: None,
                        reason: e.to_string(),
                    },
                },
            }
        };
        match tokio::time::timeout(self.timeout, send).await {
            Ok(result) => result,
            // The send was dropped mid-way: its plain connection went with it, or
            // `Renewing` replaced lettre's transport.
            Err(_) => SendResult::Retry {
                after: None,
                reason: format!(
                    "no answer within {} (channels.email.timeout_secs)",
                    crate::sender::spoken(self.timeout)
                ),
            },
        }
    }

    /// The most one send may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A failed SMTP send: only a definite 5xx refusal is final; everything else (network,
/// 4xx) may pass.
fn refused(permanent: bool, reason: String) -> SendResult {
    if permanent {
        SendResult::Permanent(reason)
    } else {
        SendResult::Retry {
            after: None,
            reason,
        }
    }
}

/// The email channel: the mailer and the settings every mail carries.
#[derive(Clone)]
pub struct EmailChannel {
    mailer: Mailer,
    config: EmailConfig,
}

impl EmailChannel {
    /// The channel the settings describe. Fails at start on unusable settings.
    pub fn from_config(config: &EmailConfig) -> Result<EmailChannel, NotifierError> {
        Ok(EmailChannel {
            mailer: Mailer::from_config(config)?,
            config: config.clone(),
        })
    }
}

impl Channel for EmailChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn timeout(&self) -> Duration {
        self.mailer.timeout()
    }

    fn parallelism(&self) -> usize {
        parallelism(&self.config)
    }

    fn send<'a>(&'a self, to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a> {
        Box::pin(async move {
            match compose(rendered, &to.address, &self.config) {
                Ok(mail) => self.mailer.send(mail).await,
                Err(reason) => SendResult::Permanent(reason),
            }
        })
    }
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

/// Builds the mail for a rendered notification to `address`; the error says why it cannot
/// be built, for good.
pub fn compose(
    rendered: &Rendered,
    address: &str,
    config: &EmailConfig,
) -> Result<Message, String> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|e| format!("channels.email.from: {e}"))?;
    let to: Mailbox = address
        .parse()
        .map_err(|e| format!("address {address:?}: {e}"))?;
    let domain = from.email.domain().to_string();
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .message_id(Some(format!("<{}@{}>", rendered.id, domain)))
        .subject(rendered.subject.clone());
    // Every mail about one object refers to the same thread root, so mail readers show
    // an update's or a build's mails as one conversation.
    if let Some(thread) = &rendered.thread {
        let root = format!("<{thread}.thread@{domain}>");
        builder = builder.in_reply_to(root.clone()).references(root);
    }
    for (name, value) in &rendered.headers {
        let mut value = value.clone();
        if name.eq_ignore_ascii_case("List-Unsubscribe") {
            let token = rendered
                .links
                .unsubscribe
                .as_deref()
                .and_then(|u| u.rsplit('/').next());
            if let (Some(mailto), Some(token)) = (&config.unsubscribe_mailto, token) {
                value.push_str(&format!(
                    ", <mailto:{mailto}?subject=unsubscribe%20{token}>"
                ));
            }
            builder = builder.raw_header(header("List-Id", format!("<{}>", config.list_id)));
        }
        builder = builder.raw_header(header(name, value));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            rendered.text.clone(),
            rendered.html.clone(),
        ))
        .map_err(|e| format!("building the mail: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// issue 8 item 17: a 3 KB topic became one `X-Tidings-Topic` line of 3 KB, and strict
    /// servers refuse such a mail for good. However long the values, every line of the mail
    /// stays within SMTP's 998 octets.
    #[test]
    fn no_line_exceeds_998_octets_whatever_the_values() {
        use tidings_store::{Claimed, OutboxKind, StoredMessage};
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
            claim_token: "c".into(),
            destination: Destination {
                id: 1,
                user_id: 1,
                channel: ChannelKind::Email,
                address: "alice@example.org".into(),
                settings: ChannelKind::Email.new_settings(&[0; 24]),
                confirmed_at: Some(1),
                created_at: 1,
                disabled_reason: None,
                delivery: Default::default(),
            },
            username: "alice".into(),
            message: Some(std::sync::Arc::new(StoredMessage {
                id: 1,
                message,
                metadata,
                source: "test".into(),
                received_at: 1,
            })),
            filters: (0..20)
                .map(|i| (i, format!("{i} {}", "f\u{e9}".repeat(600))))
                .chain([(99, "g".repeat(5000))])
                .collect(),
            payload: None,
            unsubscribe_token: Some("t".repeat(43)),
            digest: None,
        };
        let config = EmailConfig {
            list_id: format!("{}.example.org", "l".repeat(2000)),
            unsubscribe_mailto: Some(format!("{}@example.org", "u".repeat(1500))),
            ..EmailConfig::default()
        };
        let base_url = format!("https://{}.example.org", "h".repeat(1500));
        let rendered = crate::render::Renderer::new(&base_url)
            .render(&claimed)
            .unwrap_or_else(|e| panic!("rendering: {e}"));
        let mail = compose(&rendered, "alice@example.org", &config)
            .unwrap_or_else(|e| panic!("composing: {e}"))
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
            max_connections: 16,
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
