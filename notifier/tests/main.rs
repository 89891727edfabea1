//! Integration tests.

mod support;

mod bus;
mod ownership;
mod quarantine;
mod rebuild;
mod sender;
