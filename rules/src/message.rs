//! The message model: one event on the bus, independent of which bus carried it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One event on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The bus-wide unique id (fedmsg `msg_id`, AMQP `message_id`); duplicates are dropped.
    pub id: String,
    /// Dotted topic, e.g. `org.fedoraproject.prod.bodhi.update.comment`.
    pub topic: String,
    /// When the publisher sent it, in milliseconds since the Unix epoch, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    /// The JSON body (fedmsg `msg`).
    pub body: serde_json::Value,
    /// Transport headers (AMQP headers, fedmsg envelope extras such as `username`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, serde_json::Value>,
}

impl Message {
    /// A message with no send time and no headers.
    pub fn new(id: impl Into<String>, topic: impl Into<String>, body: serde_json::Value) -> Self {
        Message {
            id: id.into(),
            topic: topic.into(),
            sent_at: None,
            body,
            headers: BTreeMap::new(),
        }
    }

    /// The value at a dotted path in the body (`comment.user.name`), if present.
    pub fn body_path(&self, path: &str) -> Option<&serde_json::Value> {
        path.split('.')
            .try_fold(&self.body, |value, key| match value {
                serde_json::Value::Object(map) => map.get(key),
                serde_json::Value::Array(items) => {
                    key.parse::<usize>().ok().and_then(|i| items.get(i))
                }
                _ => None,
            })
    }
}
