//! Integration tests.

mod support;

mod bus;
mod filter_digests;
mod mutes;
mod ownership;
mod quarantine;
mod rebuild;
mod sender;
