//! Preferences: what each user set up — destinations (and their confirmation mails) and
//! filters (and the quarantine of those that cannot be read). Every write here changes what
//! the matcher must know, so each one appends to the change log in its transaction; rotating
//! a filter's feed URL (`feeds`) is the one that does not.

pub(crate) mod confirmations;
pub(crate) mod defaults;
pub(crate) mod destinations;
pub(crate) mod feeds;
pub(crate) mod filters;
pub(crate) mod mutes;
pub(crate) mod quarantine;
