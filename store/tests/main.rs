//! The store's integration tests: one binary, every test run on a fresh SQLite file and on
//! a fresh PostgreSQL database (see `harness`).

mod harness;

mod confirmations;
mod destinations;
mod digests;
mod filters;
mod keys;
mod messages;
mod migration;
mod open;
mod outbox;
mod ownership;
mod provider;
mod quarantine;
mod sessions;
mod signals;
mod tokens;
mod users;
