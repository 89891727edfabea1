//! Integration tests.

mod support;

mod bus;
mod mutes;
mod ownership;
mod quarantine;
mod rebuild;
mod sender;
