//! End-to-end tests through the built `tidings` binary against real servers: PostgreSQL
//! (and SQLite), an SMTP server (aiosmtpd, from PyPI), ZeroMQ. `scripts/test` starts or
//! installs them.

mod support;

mod amqp;
mod bad_input;
mod bridge;
mod browser;
mod bus_limits;
mod cli;
mod crash;
mod database_outage;
mod demo;
mod digests;
mod email;
mod faults;
mod flood_burst;
mod full_disk;
mod hashing;
mod irc;
mod matrix;
mod ntfy;
mod operations;
mod outbox;
mod ownership;
mod ownership_sync;
mod publishing;
mod quarantine;
mod roles;
mod slow_smtp;
mod smtp_timeouts;
mod trust;
mod webhook;
