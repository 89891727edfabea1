//! Decoding fedmsg envelopes: the JSON frame of a `[topic, envelope]` ZeroMQ message, or
//! one line of `tidings inspect` input, into a [`Message`].

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Message;

/// The longest topic accepted, in bytes. Real topics are under 100 (the corpus's longest is
/// 83); the bound keeps header lines in mail short and index keys small.
pub const MAX_TOPIC_BYTES: usize = 255;

/// The longest message id accepted, in bytes (real ids are under 50). A longer one would
/// not fit PostgreSQL's unique index on ids past about 2.7 KB.
pub const MAX_ID_BYTES: usize = 255;

/// Why a frame or envelope could not become a message. Each names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// A text field is longer than accepted.
    #[error("envelope field `{field}` is {length} bytes long; at most {max} are accepted")]
    TooLong {
        /// The field name.
        field: &'static str,
        /// Its length in bytes.
        length: usize,
        /// The most accepted.
        max: usize,
    },
    /// A text field holds control characters (a NUL cannot even be stored).
    #[error("envelope field `{field}` contains control characters")]
    ControlCharacters {
        /// The field name.
        field: &'static str,
    },
    /// The body is not JSON; line and column point into the frame.
    #[error("envelope is not valid JSON at line {line}, column {column}: {reason}")]
    Json {
        /// 1-based line in the frame.
        line: usize,
        /// 1-based column in the frame.
        column: usize,
        /// What the JSON parser expected.
        reason: String,
    },
    /// The envelope is JSON but not an object.
    #[error("envelope must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("envelope field `{field}` is missing")]
    Missing {
        /// The field name.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("envelope field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// The type the field must have.
        expected: &'static str,
        /// The type that was found.
        found: &'static str,
    },
    /// The ZeroMQ topic frame is not UTF-8 text.
    #[error("topic frame is not UTF-8")]
    TopicNotUtf8,
    /// The ZeroMQ message did not have exactly two frames.
    #[error("expected 2 frames [topic, envelope], got {0}")]
    FrameCount(usize),
}

/// A decoded fedmsg envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The message it carries.
    pub message: Message,
}

/// The JSON type name of a value, for error messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Envelope {
    /// Decodes the two frames of a fedmsg ZeroMQ message.
    pub fn from_frames(frames: &[Vec<u8>]) -> Result<Envelope, DecodeError> {
        let [topic, body] = frames else {
            return Err(DecodeError::FrameCount(frames.len()));
        };
        std::str::from_utf8(topic).map_err(|_| DecodeError::TopicNotUtf8)?;
        Envelope::from_json(body)
    }

    /// Decodes one envelope from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        // Checking UTF-8 once for the whole frame is cheaper than the parser checking each
        // string; a frame that is not UTF-8 (or not JSON) is parsed again as bytes so the
        // error is the one the byte parser gives.
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text).or_else(|_| serde_json::from_slice(bytes)),
            Err(_) => serde_json::from_slice(bytes),
        };
        let value: Value = parsed.map_err(|e| DecodeError::Json {
            line: e.line(),
            column: e.column(),
            reason: e
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
                .to_string(),
        })?;
        Envelope::from_value(value)
    }

    /// Decodes one envelope from a parsed JSON value: a fedmsg envelope (`topic`, `msg`,
    /// `msg_id`, ...) or a fedora-messaging message in the JSON form `fedora-messaging
    /// publish` reads and its consumers dump (`topic`, `headers`, `id`, `body`, and an
    /// ignored `queue`), told apart by `msg` or `body`.
    pub fn from_value(value: Value) -> Result<Envelope, DecodeError> {
        let Value::Object(mut map) = value else {
            return Err(DecodeError::NotAnObject {
                found: json_type(&value),
            });
        };
        if !map.contains_key("msg") && map.contains_key("body") {
            let topic =
                text_field(&mut map, "topic")?.ok_or(DecodeError::Missing { field: "topic" })?;
            let id = text_field(&mut map, "id")?;
            let headers = match map.remove("headers") {
                None | Some(Value::Null) => serde_json::Map::new(),
                Some(Value::Object(headers)) => headers,
                Some(other) => {
                    return Err(DecodeError::WrongType {
                        field: "headers",
                        expected: "an object",
                        found: json_type(&other),
                    })
                }
            };
            let body = map.remove("body").unwrap_or(Value::Null);
            return Envelope::from_fedora_messaging(topic, id, headers, body);
        }
        let topic = match map.remove("topic") {
            Some(Value::String(t)) if t.chars().any(char::is_control) => {
                return Err(DecodeError::ControlCharacters { field: "topic" })
            }
            Some(Value::String(t)) if t.len() > MAX_TOPIC_BYTES => {
                return Err(DecodeError::TooLong {
                    field: "topic",
                    length: t.len(),
                    max: MAX_TOPIC_BYTES,
                })
            }
            Some(Value::String(t)) if !t.is_empty() => t,
            Some(Value::String(_)) => {
                return Err(DecodeError::WrongType {
                    field: "topic",
                    expected: "a non-empty string",
                    found: "an empty string",
                })
            }
            Some(other) => {
                return Err(DecodeError::WrongType {
                    field: "topic",
                    expected: "a string",
                    found: json_type(&other),
                })
            }
            None => return Err(DecodeError::Missing { field: "topic" }),
        };
        let body = match map.remove("msg") {
            Some(body @ Value::Object(_)) => body,
            Some(other) => {
                return Err(DecodeError::WrongType {
                    field: "msg",
                    expected: "an object",
                    found: json_type(&other),
                })
            }
            None => return Err(DecodeError::Missing { field: "msg" }),
        };
        let sent_at = match map.get("timestamp") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64().map(|secs| (secs * 1000.0).round() as i64),
            Some(other) => {
                return Err(DecodeError::WrongType {
                    field: "timestamp",
                    expected: "a number",
                    found: json_type(other),
                })
            }
        };
        let id = match map.remove("msg_id") {
            Some(Value::String(id)) if id.chars().any(char::is_control) => {
                return Err(DecodeError::ControlCharacters { field: "msg_id" })
            }
            Some(Value::String(id)) if id.len() > MAX_ID_BYTES => {
                return Err(DecodeError::TooLong {
                    field: "msg_id",
                    length: id.len(),
                    max: MAX_ID_BYTES,
                })
            }
            Some(Value::String(id)) if !id.is_empty() => id,
            None | Some(Value::Null) => derived_id(&topic, &map, &body),
            Some(other) => {
                return Err(DecodeError::WrongType {
                    field: "msg_id",
                    expected: "a non-empty string",
                    found: json_type(&other),
                })
            }
        };
        // fedmsg 1.x envelopes may carry a `headers` object (AMQP headers, when the message
        // came through a bridge): its entries are the message's headers as over AMQP, beside
        // the envelope's own extras (`username`, `i`, ...), which win a clash.
        let nested = match map.remove("headers") {
            Some(Value::Object(nested)) => nested,
            Some(other) => {
                map.insert("headers".into(), other);
                serde_json::Map::new()
            }
            None => serde_json::Map::new(),
        };
        let mut headers: BTreeMap<String, Value> = nested.into_iter().collect();
        headers.extend(map);
        Ok(Envelope {
            message: Message {
                id,
                topic,
                sent_at,
                body,
                headers,
            },
        })
    }
}

impl Envelope {
    /// A fedora-messaging message (AMQP 0-9-1, as Fedora publishes today): the routing key
    /// is the topic, `message_id` the id, the JSON body the body, and the AMQP headers
    /// (`fedora_messaging_schema`, `fedora_messaging_severity`, `sent-at`,
    /// `fedora_messaging_user_*`, ...) the headers, `sent-at` (RFC 3339) the send time. A
    /// message without an id gets one derived from what it carries, as old fedmsg ones do.
    pub fn from_fedora_messaging(
        topic: String,
        id: Option<String>,
        headers: serde_json::Map<String, Value>,
        body: Value,
    ) -> Result<Envelope, DecodeError> {
        let topic = checked_text("topic", topic, MAX_TOPIC_BYTES)?;
        if !body.is_object() {
            return Err(DecodeError::WrongType {
                field: "body",
                expected: "an object",
                found: json_type(&body),
            });
        }
        let sent_at = match headers.get("sent-at") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(
                chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| DecodeError::WrongType {
                        field: "sent-at",
                        expected: "an RFC 3339 time like 2025-01-01T12:00:00+00:00",
                        found: "other text",
                    })?
                    .timestamp_millis(),
            ),
            Some(other) => {
                return Err(DecodeError::WrongType {
                    field: "sent-at",
                    expected: "a string",
                    found: json_type(other),
                })
            }
        };
        let id = match id {
            Some(id) => checked_text("id", id, MAX_ID_BYTES)?,
            None => {
                // The send time stands where fedmsg's `timestamp` does.
                let mut when = serde_json::Map::new();
                if let Some(sent) = headers.get("sent-at") {
                    when.insert("timestamp".into(), sent.clone());
                }
                derived_id(&topic, &when, &body)
            }
        };
        Ok(Envelope {
            message: Message {
                id,
                topic,
                sent_at,
                body,
                headers: headers.into_iter().collect(),
            },
        })
    }
}

/// A text field taken out of an envelope: none when absent or null.
fn text_field(
    map: &mut serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, DecodeError> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            found: json_type(&other),
        }),
    }
}

/// A topic or id as accepted: non-empty, without control characters, not too long.
fn checked_text(field: &'static str, text: String, max: usize) -> Result<String, DecodeError> {
    if text.is_empty() {
        return Err(DecodeError::WrongType {
            field,
            expected: "a non-empty string",
            found: "an empty string",
        });
    }
    if text.chars().any(char::is_control) {
        return Err(DecodeError::ControlCharacters { field });
    }
    if text.len() > max {
        return Err(DecodeError::TooLong {
            field,
            length: text.len(),
            max,
        });
    }
    Ok(text)
}

/// Old fedmsg publishers sent no `msg_id`; a digest of what they did send stands in, so that
/// the same message heard twice is still recognised as one.
fn derived_id(topic: &str, rest: &serde_json::Map<String, Value>, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(topic.as_bytes());
    for key in ["timestamp", "i", "username"] {
        hasher.update(b"\0");
        if let Some(value) = rest.get(key) {
            hash_json(&mut hasher, value);
        }
    }
    hasher.update(b"\0");
    hash_json(&mut hasher, body);
    format!("derived-{}", hex::encode(&hasher.finalize()[..16]))
}

/// Feeds a value's compact JSON text (as `Value::to_string` writes it) to the hasher
/// without building the text, in chunks of a stack buffer.
fn hash_json(hasher: &mut Sha256, value: &Value) {
    struct Feed<'h> {
        hasher: &'h mut Sha256,
        buf: [u8; 512],
        len: usize,
    }
    impl std::io::Write for Feed<'_> {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.len + data.len() > self.buf.len() {
                self.flush()?;
            }
            if data.len() >= self.buf.len() {
                self.hasher.update(data);
            } else {
                self.buf[self.len..self.len + data.len()].copy_from_slice(data);
                self.len += data.len();
            }
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.hasher.update(&self.buf[..self.len]);
            self.len = 0;
            Ok(())
        }
    }
    let mut feed = Feed {
        hasher,
        buf: [0; 512],
        len: 0,
    };
    // Writing to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut feed, value);
    let _ = std::io::Write::flush(&mut feed);
}

#[cfg(test)]
mod tests {

    // Issue 12: the fedora-messaging JSON form, as `fedora-messaging publish` reads it.
    #[test]
    fn fedora_messaging_json_is_read_whole() {
        let raw = br#"{"topic": "org.fedoraproject.prod.bodhi.update.comment", "id": "90066146-493d-58b0-8be8-58d2d5a10b0a",
            "headers": {"fedora_messaging_schema": "bodhi.update.comment.v1", "fedora_messaging_severity": 20,
                        "fedora_messaging_user_alice": true, "sent-at": "2025-01-01T12:00:00+00:00"},
            "body": {"comment": {"karma": 1}}, "queue": "q"}"#;
        let env = Envelope::from_json(raw).unwrap();
        let m = env.message;
        assert_eq!(m.id, "90066146-493d-58b0-8be8-58d2d5a10b0a");
        assert_eq!(m.topic, "org.fedoraproject.prod.bodhi.update.comment");
        assert_eq!(m.sent_at, Some(1_735_732_800_000));
        assert_eq!(
            m.headers["fedora_messaging_user_alice"],
            serde_json::json!(true)
        );
        assert_eq!(m.body["comment"]["karma"], 1);
        // Without an id: one derived from the topic, body and send time, the same each time.
        let bare = br#"{"topic": "a.b", "body": {"x": 1}, "headers": {"sent-at": "2025-01-01T12:00:00Z"}}"#;
        let first = Envelope::from_json(bare).unwrap().message.id;
        assert!(first.starts_with("derived-"), "{first}");
        assert_eq!(Envelope::from_json(bare).unwrap().message.id, first);
    }

    #[test]
    fn fedora_messaging_faults_name_the_field() {
        for (raw, field) in [
            (&br#"{"body": {}}"#[..], "`topic` is missing"),
            (
                br#"{"topic": "a.b", "body": [1]}"#,
                "`body` must be an object",
            ),
            (
                br#"{"topic": "a.b", "body": {}, "headers": []}"#,
                "`headers` must be an object",
            ),
            (
                br#"{"topic": "a.b", "body": {}, "id": 5}"#,
                "`id` must be a string",
            ),
            (
                br#"{"topic": "a.b", "body": {}, "headers": {"sent-at": "yesterday"}}"#,
                "`sent-at` must be an RFC 3339 time",
            ),
            (
                br#"{"topic": "", "body": {}}"#,
                "`topic` must be a non-empty string",
            ),
        ] {
            let err = Envelope::from_json(raw).unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    use super::*;

    #[test]
    fn decodes_a_full_envelope() {
        let env = Envelope::from_json(
            br#"{"topic":"org.fedoraproject.prod.git.receive","msg":{"a":1},"msg_id":"2024-x","timestamp":1344350850.5,"i":1,"username":"apache"}"#,
        )
        .expect("valid");
        assert_eq!(env.message.id, "2024-x");
        assert_eq!(env.message.sent_at, Some(1_344_350_850_500));
        assert_eq!(
            env.message.headers.get("username"),
            Some(&Value::from("apache"))
        );
    }

    /// A bridged envelope's `headers` object is the message's headers, as over AMQP: a
    /// user flag in it counts as one in AMQP headers would; the envelope's own extras win.
    #[test]
    fn an_envelopes_headers_object_is_flattened_into_the_headers() {
        let env = Envelope::from_json(
            br#"{"topic":"a.b","msg":{},"msg_id":"x","username":"amqp-bridge","headers":{"fedora_messaging_user_alice":true,"username":"other"}}"#,
        )
        .expect("valid");
        assert_eq!(
            env.message.headers.get("fedora_messaging_user_alice"),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            env.message.headers.get("username"),
            Some(&Value::from("amqp-bridge"))
        );
        assert!(!env.message.headers.contains_key("headers"));
    }

    /// A NUL in the topic or id cannot be stored in PostgreSQL; refused at decode, it
    /// cannot stall ingest.
    #[test]
    fn control_characters_in_topic_or_id_are_refused() {
        assert_eq!(
            Envelope::from_json(br#"{"topic":"a.\u0000.b","msg":{}}"#),
            Err(DecodeError::ControlCharacters { field: "topic" })
        );
        assert_eq!(
            Envelope::from_json(br#"{"topic":"a.b","msg":{},"msg_id":"x\ny"}"#),
            Err(DecodeError::ControlCharacters { field: "msg_id" })
        );
    }

    /// issue 8 item 17: a 3 KB topic made mail header lines no server accepts, and a 3 KB
    /// id failed PostgreSQL's unique index on every retry. Both are refused at decode,
    /// naming the field; the longest allowed pass.
    #[test]
    fn topic_and_id_lengths_are_limited() {
        let envelope = |topic: &str, id: &str| {
            serde_json::json!({"topic": topic, "msg": {}, "msg_id": id}).to_string()
        };
        let long = "a".repeat(3000);
        assert_eq!(
            Envelope::from_json(envelope(&long, "x").as_bytes()),
            Err(DecodeError::TooLong {
                field: "topic",
                length: 3000,
                max: MAX_TOPIC_BYTES
            })
        );
        let err = Envelope::from_json(envelope("a.b", &long).as_bytes()).expect_err("too long");
        assert_eq!(
            err.to_string(),
            "envelope field `msg_id` is 3000 bytes long; at most 255 are accepted"
        );
        let topic = "t".repeat(MAX_TOPIC_BYTES);
        let id = "\u{e9}".repeat(MAX_ID_BYTES / 2);
        let env = Envelope::from_json(envelope(&topic, &id).as_bytes()).expect("at the limit");
        assert_eq!((env.message.topic, env.message.id), (topic, id));
    }

    #[test]
    fn missing_msg_id_gets_a_stable_derived_id() {
        let raw = br#"{"topic":"t.a","msg":{"a":1},"timestamp":5}"#;
        let a = Envelope::from_json(raw).expect("valid");
        let b = Envelope::from_json(raw).expect("valid");
        assert!(a.message.id.starts_with("derived-"));
        assert_eq!(a.message.id, b.message.id);
        // The digest is of the texts `Value::to_string` gives (ids already stored depend on it).
        let long = "x".repeat(2000);
        let raw = serde_json::json!({"topic": "t.b", "i": 3, "username": "u\u{e9}",
            "msg": {"k": long, "n": [1.5, null, true], "o": {"q": "\"\n"}}});
        let env = Envelope::from_value(raw.clone()).expect("valid");
        let mut hasher = Sha256::new();
        hasher.update(b"t.b");
        for key in ["timestamp", "i", "username"] {
            hasher.update(b"\0");
            let text = raw.get(key).map(Value::to_string).unwrap_or_default();
            hasher.update(text.as_bytes());
        }
        hasher.update(b"\0");
        hasher.update(raw["msg"].to_string().as_bytes());
        let want = format!("derived-{}", hex::encode(&hasher.finalize()[..16]));
        assert_eq!(env.message.id, want);
    }

    #[test]
    fn errors_name_the_field_and_position() {
        assert_eq!(
            Envelope::from_json(br#"{"msg":{}}"#),
            Err(DecodeError::Missing { field: "topic" })
        );
        assert_eq!(
            Envelope::from_json(br#"{"topic":"x","msg":[1]}"#),
            Err(DecodeError::WrongType {
                field: "msg",
                expected: "an object",
                found: "an array"
            })
        );
        let err = Envelope::from_json(b"{\"topic\":\n  oops}").expect_err("bad json");
        assert!(
            matches!(
                err,
                DecodeError::Json {
                    line: 2,
                    column: 3,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            Envelope::from_frames(&[b"x".to_vec()]),
            Err(DecodeError::FrameCount(1))
        );
    }
}
