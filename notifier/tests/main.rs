//! Integration tests.

mod support;

mod ownership;
mod quarantine;
