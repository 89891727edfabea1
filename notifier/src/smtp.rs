//! SMTP over `smtp://` URLs (plain, or upgraded with STARTTLS by `tls=required` or
//! `tls=opportunistic`): connections of our own, opened with `TCP_NODELAY` and reused from
//! a small pool, speaking SMTP through lettre's [`AsyncSmtpConnection`].
//!
//! lettre (0.11.23) opens its connections with Nagle's algorithm on and writes a mail's body
//! and its closing `\r\n.\r\n` as two writes: the second waits for the server's delayed
//! acknowledgement of the first, 40 ms on Linux, on every mail (20 mails/s per connection
//! against aiosmtpd, where Python's `smtplib` does about 200). lettre merged the fix
//! (lettre/lettre#1159) after its latest release; until a release has it, `smtp://`
//! connections are opened here, and lettre upgrades them in place (`STARTTLS`, RFC 3207),
//! so the socket option holds under TLS too. `smtps://` (TLS from the first byte) is left to
//! lettre's own transport, stall included.
//!
//! A connection is taken from the pool (checked with `NOOP`, as lettre's pool does), used
//! for one mail and put back unless it broke. A send that is dropped mid-way (its time ran
//! out) drops its connection with it: a connection left in the middle of a command is never
//! reused.

use std::sync::Mutex;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

/// The port of `smtp://host` without a port, as lettre reads such a URL.
const SMTP_PORT: u16 = 25;
/// The port of `smtp://host?tls=…` without a port (submission, RFC 6409), as lettre reads it.
const SUBMISSION_PORT: u16 = 587;

/// Why a plain SMTP send failed.
#[derive(Debug, thiserror::Error)]
pub enum SmtpFailure {
    /// The TCP connection could not be opened.
    #[error("connecting to {server}: {source}")]
    Connect {
        /// `host:port`.
        server: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// `tls=required`, and the server does not offer STARTTLS.
    #[error(
        "{server} does not offer STARTTLS, which the URL requires (tls=required): nothing \
         is sent in the clear"
    )]
    NoStartTls {
        /// `host:port`.
        server: String,
    },
    /// The server's answer, or the connection failing mid-way.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl SmtpFailure {
    /// A definite 5xx refusal: sending again cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpFailure::Connect { .. } | SmtpFailure::NoStartTls { .. } => false,
            SmtpFailure::Smtp(err) => err.is_permanent(),
        }
    }
}

/// Whether a connection is upgraded with STARTTLS, from an `smtp://` URL's `tls` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartTls {
    /// `tls=required`: a server that does not offer it gets nothing.
    Required,
    /// `tls=opportunistic`: upgraded when the server offers it, plain otherwise.
    Opportunistic,
}

/// Where an SMTP server is and how to greet it, read from an `smtp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or address.
    pub host: String,
    /// Port (25 unless the URL says; 587 with `tls=`).
    pub port: u16,
    /// STARTTLS, if the URL asks for it.
    pub starttls: Option<StartTls>,
    /// The EHLO name: the URL's path if it has one, else this host's name.
    pub hello: ClientId,
    /// `user:password` from the URL, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl SmtpServer {
    /// The server of an `smtp://` URL (with no `tls` parameter, `tls=required` or
    /// `tls=opportunistic`), read as lettre reads it; `None` for any other URL (`smtps://`),
    /// which lettre's transport serves.
    pub fn from_url(url: &str) -> Option<SmtpServer> {
        let url = url::Url::parse(url).ok()?;
        if url.scheme() != "smtp" {
            return None;
        }
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v);
        let (starttls, default_port) = match tls.as_deref() {
            None => (None, SMTP_PORT),
            Some("required") => (Some(StartTls::Required), SUBMISSION_PORT),
            Some("opportunistic") => (Some(StartTls::Opportunistic), SUBMISSION_PORT),
            Some(_) => return None,
        };
        let host = url.host_str()?.to_string();
        let path = url.path().trim_matches('/');
        let hello = if path.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(path.to_string())
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = url
            .password()
            .map(|password| (decode(url.username()), decode(password)));
        Some(SmtpServer {
            host,
            port: url.port().unwrap_or(default_port),
            starttls,
            hello,
            credentials,
        })
    }
}

/// An SMTP server with a pool of open connections.
pub struct SmtpPool {
    server: SmtpServer,
    /// Idle connections kept for reuse, at most `max_idle`.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    max_idle: usize,
}

impl SmtpPool {
    /// A pool for `server` keeping up to `max_idle` connections open between sends.
    pub fn new(server: SmtpServer, max_idle: usize) -> SmtpPool {
        SmtpPool {
            server,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    /// Sends one mail on a pooled connection (or a new one). The caller bounds the time.
    pub async fn send(&self, envelope: &Envelope, mail: &[u8]) -> Result<Response, SmtpFailure> {
        let mut conn = self.connection().await?;
        let sent = conn.send(envelope, mail).await;
        self.recycle(conn);
        Ok(sent?)
    }

    /// An idle connection that still answers `NOOP`, or a new one.
    async fn connection(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        loop {
            let parked = self
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            match parked {
                Some(mut conn) => {
                    if conn.test_connected().await {
                        return Ok(conn);
                    }
                    conn.abort().await;
                }
                None => return self.connect().await,
            }
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let server = &self.server;
        let failed = |source| SmtpFailure::Connect {
            server: format!("{}:{}", server.host, server.port),
            source,
        };
        let tcp = TcpStream::connect((server.host.as_str(), server.port))
            .await
            .map_err(failed)?;
        // The point of this module: each write goes out at once.
        tcp.set_nodelay(true).map_err(failed)?;
        let mut conn =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &server.hello).await?;
        match server.starttls {
            Some(_) if conn.can_starttls() => {
                // Certificates checked against the web's roots, for the URL's host name.
                let tls = TlsParameters::new(server.host.clone())?;
                conn.starttls(tls, &server.hello).await?;
            }
            Some(StartTls::Required) => {
                conn.abort().await;
                return Err(SmtpFailure::NoStartTls {
                    server: format!("{}:{}", server.host, server.port),
                });
            }
            Some(StartTls::Opportunistic) | None => {}
        }
        if let Some((user, password)) = &server.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)
                .await?;
        }
        Ok(conn)
    }

    /// Puts a connection back for the next send, unless it broke or the pool is full.
    fn recycle(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

impl std::fmt::Debug for SmtpPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPool")
            .field("host", &self.server.host)
            .field("port", &self.server.port)
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(url: &str) -> SmtpServer {
        SmtpServer::from_url(url).unwrap_or_else(|| panic!("{url} is served here"))
    }

    #[test]
    fn smtp_urls_are_read_as_lettre_reads_them() {
        let plain = server("smtp://127.0.0.1:2525");
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 2525));
        assert_eq!(plain.hello, ClientId::default());
        assert_eq!((plain.credentials, plain.starttls), (None, None));

        assert_eq!(server("smtp://mail.example.org").port, 25);

        let relay = server("smtp://us%40er:p%20w@relay.example.org:2587/hub.example.org");
        assert_eq!(
            relay.credentials,
            Some(("us@er".to_string(), "p w".to_string()))
        );
        assert_eq!(relay.hello, ClientId::Domain("hub.example.org".into()));
        assert_eq!(relay.port, 2587);

        let required = server("smtp://relay.example.org?tls=required");
        assert_eq!(
            (required.starttls, required.port),
            (Some(StartTls::Required), 587)
        );
        let opportunistic = server("smtp://relay.example.org:25?tls=opportunistic");
        assert_eq!(
            (opportunistic.starttls, opportunistic.port),
            (Some(StartTls::Opportunistic), 25)
        );
    }

    #[test]
    fn tls_from_the_first_byte_is_left_to_lettre() {
        for url in [
            "smtps://relay.example.org",
            "smtp://relay.example.org?tls=wrapper",
            "not a url",
        ] {
            assert_eq!(SmtpServer::from_url(url), None, "{url}");
        }
    }
}
