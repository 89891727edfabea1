//! The fedmsg-meta corpus: real Fedora bus messages with the metadata fedmsg_meta derived.

use std::sync::OnceLock;

use serde_json::Value;
use tidings_rules::{Envelope, Message, Metadata};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/fedmsg-meta/messages.jsonl"
);

/// Every corpus message that decodes, with generic metadata plus the corpus's own
/// usernames and packages (as the schema catalog would find them).
pub fn messages() -> &'static [(Message, Metadata)] {
    static MESSAGES: OnceLock<Vec<(Message, Metadata)>> = OnceLock::new();
    MESSAGES.get_or_init(|| {
        let text = std::fs::read_to_string(PATH)
            .unwrap_or_else(|e| panic!("the corpus must be at {PATH} (see corpus/README.md): {e}"));
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter_map(|mut entry| {
                let envelope = Envelope::from_value(entry["message"].take()).ok()?;
                let message = envelope.message;
                let mut metadata = Metadata::derive(&message);
                let names = |key: &str| -> Vec<String> {
                    entry["expected"][key]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                metadata.usernames.extend(names("usernames"));
                metadata.packages.extend(names("packages"));
                Some((message, metadata))
            })
            .collect()
    })
}

#[test]
fn corpus_decodes() {
    let messages = messages();
    assert!(
        messages.len() > 300,
        "only {} corpus messages decoded",
        messages.len()
    );
}
