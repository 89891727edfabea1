//! Integration tests for tidings-rules, in one binary (see STYLE.md).

mod corpus;
mod depth;
mod equivalence;
mod language;
mod strategies;
