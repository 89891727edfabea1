//! The pipeline's tables: the message archive (with rejected input and the change log the
//! matcher follows) and the outbox of what is still to send.

pub(crate) mod changes;
pub(crate) mod digests;
pub(crate) mod messages;
pub(crate) mod outbox;
pub(crate) mod stats;
