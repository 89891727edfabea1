//! The pure core of Tidings: what a bus message is, what we derive from it, the
//! condition language people write filters in, and the index that finds which filters
//! a message satisfies. No IO, no async: every other crate builds on this one.
//!
//! ```
//! use tidings_rules::{Condition, Index, IndexedFilter, Message, Metadata, Variables};
//!
//! let condition = Condition::parse(r#"topic ~ "org.fedoraproject.*.bodhi.**" and usernames has $me"#)
//!     .expect("valid condition");
//! let mut index = Index::default();
//! index.set_variables(7, Variables::for_user("alice"));
//! index.upsert(IndexedFilter { id: 1, owner: 7, condition });
//!
//! let message = Message::new(
//!     "m-1",
//!     "org.fedoraproject.prod.bodhi.update.comment",
//!     serde_json::json!({"comment": {"user": {"name": "bob"}, "text": "works"}, "update": {"user": {"name": "alice"}}}),
//! );
//! let mut metadata = Metadata::derive(&message);
//! metadata.usernames.insert("alice".to_string());
//! assert_eq!(index.matches(&message, &metadata), vec![1]);
//! ```
#![deny(missing_docs)]

pub mod channel;
pub mod condition;
pub mod delivery;
pub mod fedmsg;
pub mod index;
pub mod links;
pub mod message;
pub mod metadata;
pub mod time;

pub use channel::{
    irc_fold, AccessToken, Address, AddressError, ChannelKind, ChannelSettings, SigningSecret,
};
pub use condition::{Condition, ConditionError, Variables};
pub use fedmsg::{DecodeError, Envelope};
pub use index::{Anchor, Anchoring, Index, IndexedFilter, NaiveIndex};
pub use message::Message;
pub use metadata::{Catalog, CatalogError, Metadata, Severity};
