//! The web crate's one integration-test binary: the real app served on a random port,
//! driven over HTTP with a cookie-keeping client, on SQLite and (when
//! `TIDINGS_TEST_POSTGRES` names a server) on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod support;

mod accounts;
mod admin;
mod api;
mod api_v1;
mod dashboard;
mod destinations;
mod feeds;
mod filters;
mod gallery;
mod mail_links;
mod mailbox;
mod me;
mod metrics;
mod oidc;
mod sessions;
mod settings;
mod throttle;
mod why;
