//! Integration tests.

mod support;

mod ownership;
mod quarantine;
mod rebuild;
mod sender;
