//! Integration tests.

mod ownership;
