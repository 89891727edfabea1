//! End-to-end tests through the built `tidings` binary against real servers: PostgreSQL
//! (and SQLite), an SMTP server (aiosmtpd, from PyPI), ZeroMQ. `scripts/test` starts or
//! installs them.

mod support;

mod bad_input;
mod browser;
mod cli;
mod crash;
mod email;
mod hashing;
mod outbox;
mod ownership;
mod quarantine;
