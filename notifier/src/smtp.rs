//! Plain SMTP (`smtp://` without `tls=`): connections of our own, opened with `TCP_NODELAY`
//! and reused from a small pool, speaking SMTP through lettre's [`AsyncSmtpConnection`].
//!
//! lettre (0.11.23) opens its connections with Nagle's algorithm on and writes a mail's body
//! and its closing `\r\n.\r\n` as two writes: the second waits for the server's delayed
//! acknowledgement of the first, 40 ms on Linux, on every mail (20 mails/s per connection
//! against aiosmtpd, where Python's `smtplib` does about 200). lettre merged the fix
//! (lettre/lettre#1159) after its latest release; until a release has it, plain SMTP
//! connections are opened here. With TLS, lettre's own transport is used as before.
//!
//! A connection is taken from the pool (checked with `NOOP`, as lettre's pool does), used
//! for one mail and put back unless it broke. A send that is dropped mid-way (its time ran
//! out) drops its connection with it: a connection left in the middle of a command is never
//! reused.

use std::sync::Mutex;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use tokio::net::TcpStream;

/// The port of `smtp://host` without a port, as lettre reads such a URL.
const SMTP_PORT: u16 = 25;

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
    /// The server's answer, or the connection failing mid-way.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
}

impl SmtpFailure {
    /// A definite 5xx refusal: sending again cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            SmtpFailure::Connect { .. } => false,
            SmtpFailure::Smtp(err) => err.is_permanent(),
        }
    }
}

/// Where a plain SMTP server is and how to greet it, read from an `smtp://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainServer {
    /// Host name or address.
    pub host: String,
    /// Port (25 unless the URL says).
    pub port: u16,
    /// The EHLO name: the URL's path if it has one, else this host's name.
    pub hello: ClientId,
    /// `user:password` from the URL, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl PlainServer {
    /// The server of an `smtp://` URL without a `tls` parameter, read as lettre reads it;
    /// `None` for any other URL (TLS, or `smtps://`), which lettre's transport serves.
    pub fn from_url(url: &str) -> Option<PlainServer> {
        let url = url::Url::parse(url).ok()?;
        if url.scheme() != "smtp" || url.query_pairs().any(|(k, _)| k == "tls") {
            return None;
        }
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
        Some(PlainServer {
            host,
            port: url.port().unwrap_or(SMTP_PORT),
            hello,
            credentials,
        })
    }
}

/// A plain SMTP server with a pool of open connections.
pub struct PlainSmtp {
    server: PlainServer,
    /// Idle connections kept for reuse, at most `max_idle`.
    idle: Mutex<Vec<AsyncSmtpConnection>>,
    max_idle: usize,
}

impl PlainSmtp {
    /// A pool for `server` keeping up to `max_idle` connections open between sends.
    pub fn new(server: PlainServer, max_idle: usize) -> PlainSmtp {
        PlainSmtp {
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

impl std::fmt::Debug for PlainSmtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSmtp")
            .field("host", &self.server.host)
            .field("port", &self.server.port)
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(url: &str) -> PlainServer {
        PlainServer::from_url(url).unwrap_or_else(|| panic!("{url} is plain SMTP"))
    }

    #[test]
    fn plain_urls_are_read_as_lettre_reads_them() {
        let server = plain("smtp://127.0.0.1:2525");
        assert_eq!((server.host.as_str(), server.port), ("127.0.0.1", 2525));
        assert_eq!(server.hello, ClientId::default());
        assert_eq!(server.credentials, None);

        let server = plain("smtp://mail.example.org");
        assert_eq!(server.port, 25);

        let server = plain("smtp://us%40er:p%20w@relay.example.org:587/hub.example.org");
        assert_eq!(
            server.credentials,
            Some(("us@er".to_string(), "p w".to_string()))
        );
        assert_eq!(server.hello, ClientId::Domain("hub.example.org".into()));
    }

    #[test]
    fn tls_urls_are_left_to_lettre() {
        for url in [
            "smtp://relay.example.org?tls=required",
            "smtp://relay.example.org:587?tls=opportunistic",
            "smtps://relay.example.org",
            "not a url",
        ] {
            assert_eq!(PlainServer::from_url(url), None, "{url}");
        }
    }
}
