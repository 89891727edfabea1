//! The Matrix channel: the hub writes to each Matrix user in a direct room its own account
//! (`[channels.matrix]`: a homeserver and an access token) opens with them, through the
//! client-server API.
//!
//! - **The direct room.** The first message to a user opens a private room with
//!   `is_direct` and invites them, and lists it in the hub account's `m.direct` account
//!   data, where any later start (or another sender) finds it again. Nothing is sent until
//!   the user has joined: while they are invited, the send waits (rate limited, so no
//!   attempt is counted) for up to `invite_wait_secs`, then gives up; a new code invites
//!   them anew. A confirmation is the first message, so a user who never joins never gets
//!   anything else.
//! - **A user who left.** A confirmation opens a fresh room; a notification disables the
//!   destination (`Gone`): its owner confirms it again, which invites them to a new room.
//!   Membership is asked before every message, so none goes to a room they left.
//! - **Each notification once.** It is sent as `m.notice` (clients do not answer notices)
//!   with a plain body and an HTML `formatted_body`, under the outbox row's uid as the
//!   transaction id: a retry after a lost answer is the same event, not a second one.
//! - **Limits.** 429 waits `retry_after_ms` (or `Retry-After`); 5xx, timeouts and network
//!   errors are retried; a refused access token is retried (the admin fixes it, and the
//!   rows go out); other 4xx are permanent, with the homeserver's `errcode` and `error`.
//!   Every request has `timeout_secs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tidings_store::{ChannelKind, Destination};
use tokio::sync::{Mutex, OnceCell};

use crate::channel::{Channel, SendFuture, SendResult};
use crate::http::{self, Scope};
use crate::render::Rendered;
use crate::{MatrixConfig, NotifierError};

/// How the shared HTTP code names this channel.
const SCOPE: Scope = Scope {
    section: "channels.matrix",
    what_goes: "Matrix requests go",
};

/// How long a 429 without a hint waits.
const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(5);

/// How often a send waiting for an invitee to join looks again.
const INVITE_POLL: Duration = Duration::from_secs(5);

/// Writes notifications to Matrix users.
pub struct MatrixChannel {
    client: reqwest::Client,
    homeserver: reqwest::Url,
    token: String,
    timeout: Duration,
    parallelism: usize,
    invite_wait: Duration,
    /// The hub account's user ID (`whoami`), asked once.
    me: OnceCell<String>,
    /// The direct room known for each user, by user ID; each behind its own lock, so that
    /// two sends to one user never open two rooms.
    rooms: Mutex<HashMap<String, Arc<Mutex<Option<Room>>>>>,
    /// Held while `m.direct` is read, changed and written back.
    direct: Mutex<()>,
}

/// A direct room and when its invitee was invited.
#[derive(Debug, Clone)]
struct Room {
    id: String,
    /// When this process invited them (or first saw them invited).
    invited_at: Instant,
}

/// A request that did not come to an answer worth reading: what the send comes to.
type Failed = SendResult;

impl MatrixChannel {
    /// The channel for `config`'s account; `user_agent` names this hub to the homeserver.
    pub fn from_config(config: &MatrixConfig, user_agent: &str) -> Result<Self, NotifierError> {
        let mut homeserver =
            reqwest::Url::parse(&config.homeserver).map_err(|e| NotifierError::Config {
                field: "channels.matrix.homeserver",
                reason: format!("{:?} is not a URL: {e}", config.homeserver),
            })?;
        if !matches!(homeserver.scheme(), "https" | "http") || homeserver.cannot_be_a_base() {
            return Err(NotifierError::Config {
                field: "channels.matrix.homeserver",
                reason: format!("{:?} is not an https:// URL", config.homeserver),
            });
        }
        // Paths are appended segment by segment.
        if !homeserver.path().ends_with('/') {
            let path = format!("{}/", homeserver.path());
            homeserver.set_path(&path);
        }
        let token = config.access_token.trim().to_string();
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(NotifierError::Config {
                field: "channels.matrix.access_token",
                reason: "must be the hub account's access token (printable ASCII)".into(),
            });
        }
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        // The homeserver is the admin's, not a user's: no private-address check.
        let client = http::client(SCOPE, timeout, config.max_connections, true, user_agent)?;
        Ok(MatrixChannel {
            client,
            homeserver,
            token,
            timeout,
            parallelism: config.max_connections.max(1),
            invite_wait: Duration::from_secs(config.invite_wait_secs.max(1)),
            me: OnceCell::new(),
            rooms: Mutex::new(HashMap::new()),
            direct: Mutex::new(()),
        })
    }

    /// `/_matrix/client/v3/` followed by `segments`, each percent-encoded.
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.homeserver.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["_matrix", "client", "v3"])
                .extend(segments);
        }
        url
    }

    /// One request with the account's token: the answer's status and JSON body (`Null`
    /// when it has none), or what the send comes to when there was no answer.
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value, Option<Duration>), Failed> {
        let mut request = self
            .client
            .request(method, self.url(segments))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let mut answer = request
            .send()
            .await
            .map_err(|err| http::failed_request(SCOPE, &err))?;
        let after = http::retry_after(answer.headers());
        let text = http::read_some(&mut answer).await;
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok((answer.status(), value, after))
    }

    /// [`MatrixChannel::call`], with any answer but a 2xx made what the send comes to.
    async fn ok(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        doing: &str,
    ) -> Result<Value, Failed> {
        let (status, value, after) = self.call(method, segments, body).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(judge(status, &value, after, doing))
        }
    }

    /// The hub account's user ID.
    async fn me(&self) -> Result<&str, Failed> {
        self.me
            .get_or_try_init(|| async {
                let value = self
                    .ok(
                        Method::GET,
                        &["account", "whoami"],
                        None,
                        "asking who we are",
                    )
                    .await?;
                value["user_id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| SendResult::Retry {
                        after: None,
                        reason: "the homeserver's whoami answer has no user_id".into(),
                    })
            })
            .await
            .map(String::as_str)
    }

    /// The hub account's `m.direct` list: rooms by user ID.
    async fn direct_rooms(&self) -> Result<serde_json::Map<String, Value>, Failed> {
        let me = self.me().await?.to_string();
        let (status, value, after) = self
            .call(
                Method::GET,
                &["user", &me, "account_data", "m.direct"],
                None,
            )
            .await?;
        match status {
            s if s.is_success() => Ok(value.as_object().cloned().unwrap_or_default()),
            StatusCode::NOT_FOUND => Ok(serde_json::Map::new()),
            _ => Err(judge(status, &value, after, "reading m.direct")),
        }
    }

    /// Opens a direct room with `user`, inviting them, and lists it first in `m.direct`.
    async fn open_room(&self, user: &str) -> Result<Room, Failed> {
        let created = self
            .ok(
                Method::POST,
                &["createRoom"],
                Some(&json!({
                    "preset": "trusted_private_chat",
                    "is_direct": true,
                    "invite": [user],
                    "name": "Tidings notifications",
                    "topic": "Notifications from Tidings. Manage them on the Tidings web site.",
                })),
                "opening a direct room",
            )
            .await?;
        let id = created["room_id"]
            .as_str()
            .ok_or_else(|| SendResult::Retry {
                after: None,
                reason: "the homeserver's createRoom answer has no room_id".into(),
            })?
            .to_string();
        let _listing = self.direct.lock().await;
        let mut direct = self.direct_rooms().await?;
        let mut rooms: Vec<Value> = direct
            .get(user)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        rooms.retain(|r| r.as_str() != Some(id.as_str()));
        rooms.insert(0, Value::String(id.clone()));
        direct.insert(user.to_string(), Value::Array(rooms));
        let me = self.me().await?.to_string();
        self.ok(
            Method::PUT,
            &["user", &me, "account_data", "m.direct"],
            Some(&Value::Object(direct)),
            "listing the direct room in m.direct",
        )
        .await?;
        tracing::info!(user, room = %id, "opened a direct Matrix room");
        Ok(Room {
            id,
            invited_at: Instant::now(),
        })
    }

    /// `user`'s membership of `room`: `join`, `invite`, `leave`, `ban`, or `None` when the
    /// room has no such member (or the hub account is no longer in it).
    async fn membership(&self, room: &str, user: &str) -> Result<Option<String>, Failed> {
        let (status, value, after) = self
            .call(
                Method::GET,
                &["rooms", room, "state", "m.room.member", user],
                None,
            )
            .await?;
        match status {
            s if s.is_success() => Ok(value["membership"].as_str().map(str::to_string)),
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => Ok(None),
            _ => Err(judge(status, &value, after, "reading the room's members")),
        }
    }

    /// The room to send to `user` in, once they have joined it: opened and waited for if
    /// need be (see the module comment).
    async fn room_for(&self, user: &str, confirmation: bool) -> Result<String, Failed> {
        let entry = self
            .rooms
            .lock()
            .await
            .entry(user.to_string())
            .or_default()
            .clone();
        let mut known = entry.lock().await;
        if known.is_none() {
            let listed = self
                .direct_rooms()
                .await?
                .get(user)
                .and_then(Value::as_array)
                .and_then(|rooms| rooms.first())
                .and_then(Value::as_str)
                .map(str::to_string);
            *known = match listed {
                Some(id) => Some(Room {
                    id,
                    invited_at: Instant::now(),
                }),
                None => Some(self.open_room(user).await?),
            };
        }
        let Some(room) = known.as_mut() else {
            return Err(SendResult::Retry {
                after: None,
                reason: "no direct room".into(),
            });
        };
        // Asked before every message: one sent after the user left would reach no one.
        match self.membership(&room.id, user).await?.as_deref() {
            Some("join") => Ok(room.id.clone()),
            Some("invite") if room.invited_at.elapsed() < self.invite_wait => {
                Err(SendResult::RateLimited(INVITE_POLL))
            }
            Some("invite") => {
                *known = None;
                Err(SendResult::Permanent(format!(
                    "{user} did not accept the invitation to the direct room within {} s; \
                     a new code invites them again",
                    self.invite_wait.as_secs()
                )))
            }
            // Left, banned, or never a member of a room we listed: a confirmation starts
            // over in a new room; a notification cannot reach them any more.
            other => {
                let what = other.unwrap_or("not a member");
                if confirmation {
                    *known = Some(self.open_room(user).await?);
                    Err(SendResult::RateLimited(INVITE_POLL))
                } else {
                    *known = None;
                    Err(SendResult::Gone(format!(
                        "{user} is no longer in the direct room Tidings writes to ({what}); \
                         confirm the destination again to be invited to a new one"
                    )))
                }
            }
        }
    }

    /// Forgets `user`'s room, so that the next send looks it up again.
    async fn forget(&self, user: &str) {
        self.rooms.lock().await.remove(user);
    }

    async fn deliver(&self, to: &Destination, rendered: &Rendered) -> SendResult {
        let user = to.address.as_str();
        let confirmation = rendered.challenge.is_some() && rendered.event.is_none();
        let room = match self.room_for(user, confirmation).await {
            Ok(room) => room,
            Err(result) => return result,
        };
        let content = content(rendered);
        let answer = self
            .call(
                Method::PUT,
                &["rooms", &room, "send", "m.room.message", &rendered.id],
                Some(&content),
            )
            .await;
        match answer {
            Ok((status, _, _)) if status.is_success() => SendResult::Sent,
            Ok((status, value, after)) => {
                if status == StatusCode::FORBIDDEN {
                    // Not in the room any more (kicked, or the room is gone): look again.
                    self.forget(user).await;
                    return SendResult::Retry {
                        after: None,
                        reason: format!(
                            "the homeserver refused the message ({}); the room is looked up \
                             again",
                            said(&value, status)
                        ),
                    };
                }
                judge(status, &value, after, "sending the message")
            }
            Err(failed) => failed,
        }
    }
}

impl Channel for MatrixChannel {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Matrix
    }

    fn timeout(&self) -> Duration {
        // A send makes a few requests (the membership and the message; whoami, m.direct
        // and opening a room when there is no room yet): each has this time limit, and so
        // has the whole send.
        self.timeout
    }

    fn parallelism(&self) -> usize {
        self.parallelism
    }

    fn send<'a>(&'a self, to: &'a Destination, rendered: &'a Rendered) -> SendFuture<'a> {
        // The sender cuts the whole send off after `timeout`, as every channel's.
        Box::pin(self.deliver(to, rendered))
    }
}

/// The message event's content: a notice with the chat text and its HTML.
pub fn content(rendered: &Rendered) -> Value {
    json!({
        "msgtype": "m.notice",
        "body": rendered.chat.text,
        "format": "org.matrix.custom.html",
        "formatted_body": rendered.chat.html,
    })
}

/// The homeserver's own words: `errcode: error`, or the status.
fn said(value: &Value, status: StatusCode) -> String {
    match (value["errcode"].as_str(), value["error"].as_str()) {
        (Some(code), Some(error)) => format!("{code}: {error}"),
        (Some(code), None) => code.to_string(),
        (None, Some(error)) => error.to_string(),
        (None, None) => format!("HTTP {status}"),
    }
}

/// What an answer other than 2xx comes to, `doing` saying what was asked.
pub fn judge(
    status: StatusCode,
    value: &Value,
    after: Option<Duration>,
    doing: &str,
) -> SendResult {
    let said = said(value, status);
    if status == StatusCode::TOO_MANY_REQUESTS || value["errcode"] == "M_LIMIT_EXCEEDED" {
        let hinted = value["retry_after_ms"]
            .as_u64()
            .map(Duration::from_millis)
            .or(after);
        return SendResult::RateLimited(
            hinted
                .unwrap_or(DEFAULT_RATE_LIMIT)
                .min(Duration::from_secs(3600)),
        );
    }
    if status == StatusCode::UNAUTHORIZED {
        return SendResult::Retry {
            after: None,
            reason: format!(
                "{doing}: the homeserver refused the hub's access token ({said}); set a valid \
                 one in channels.matrix.access_token"
            ),
        };
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return SendResult::Retry {
            after,
            reason: format!("{doing}: {said}"),
        };
    }
    SendResult::Permanent(format!("{doing}: {said}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_wait_what_the_homeserver_asks() {
        let limited = json!({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", "retry_after_ms": 2500});
        assert_eq!(
            judge(StatusCode::TOO_MANY_REQUESTS, &limited, None, "sending"),
            SendResult::RateLimited(Duration::from_millis(2500))
        );
        assert_eq!(
            judge(
                StatusCode::TOO_MANY_REQUESTS,
                &Value::Null,
                Some(Duration::from_secs(7)),
                "sending"
            ),
            SendResult::RateLimited(Duration::from_secs(7))
        );
        assert_eq!(
            judge(StatusCode::TOO_MANY_REQUESTS, &Value::Null, None, "sending"),
            SendResult::RateLimited(DEFAULT_RATE_LIMIT)
        );
    }

    #[test]
    fn answers_are_judged_with_the_homeservers_words() {
        let unknown =
            json!({"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token passed."});
        assert!(matches!(
            judge(StatusCode::UNAUTHORIZED, &unknown, None, "sending"),
            SendResult::Retry { reason, .. } if reason.contains("M_UNKNOWN_TOKEN")
                && reason.contains("channels.matrix.access_token")
        ));
        assert!(matches!(
            judge(StatusCode::BAD_GATEWAY, &Value::Null, None, "sending"),
            SendResult::Retry { .. }
        ));
        let bad = json!({"errcode": "M_INVALID_PARAM", "error": "bad user"});
        assert_eq!(
            judge(StatusCode::BAD_REQUEST, &bad, None, "opening a direct room"),
            SendResult::Permanent("opening a direct room: M_INVALID_PARAM: bad user".into())
        );
    }

    #[test]
    fn the_content_is_a_notice_with_html() {
        let rendered = Rendered {
            id: "uid-1".into(),
            subject: "s".into(),
            text: String::new(),
            html: String::new(),
            links: Default::default(),
            headers: Vec::new(),
            event: None,
            challenge: None,
            thread: None,
            chat: crate::render::Chat {
                text: "a <b> c".into(),
                html: "a &lt;b&gt; c".into(),
            },
        };
        let content = content(&rendered);
        assert_eq!(content["msgtype"], "m.notice");
        assert_eq!(content["body"], "a <b> c");
        assert_eq!(content["formatted_body"], "a &lt;b&gt; c");
        assert_eq!(content["format"], "org.matrix.custom.html");
    }

    #[test]
    fn paths_are_encoded_segment_by_segment() {
        let config = MatrixConfig {
            enabled: true,
            homeserver: "http://127.0.0.1:8008/base".into(),
            access_token: "syt_x".into(),
            ..MatrixConfig::default()
        };
        let channel = MatrixChannel::from_config(&config, "t");
        let url = channel.as_ref().map(|c| {
            c.url(&["rooms", "!a:b/c", "state", "m.room.member", "@u:x"])
                .to_string()
        });
        assert_eq!(
            url.ok().as_deref(),
            Some("http://127.0.0.1:8008/base/_matrix/client/v3/rooms/!a:b%2Fc/state/m.room.member/@u:x")
        );
    }
}
