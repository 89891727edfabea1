//! Integration tests for tidings-rules, in one binary (see STYLE.md).

mod corpus;
mod depth;
mod equivalence;
mod explain;
mod language;
mod ordering;
mod strategies;
