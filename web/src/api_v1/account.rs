//! What the settings, destinations, "My packages", account and token pages do, for a
//! personal token's owner: time zone and quiet hours, the default delivery, a
//! destination's delivery, confirmation code and fresh link, follows, mutes, tokens,
//! the default filters offered, the export and signing out everywhere.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use tidings_store::{
    mute_options, DeliveryPolicy, FollowKind, MuteKind, MuteOption, PersonalScope, Schedule,
    StoreError, TimeOfDay, MUTE_MS,
};

use super::{bad, created, done, ok, store, Body, Id, Reader, Reply, Writer};
use crate::api::ApiError;
use crate::{routes, AppState};

/// The longest mute made here, in days.
const MUTE_DAYS_MAX: i64 = 90;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::API_SETTINGS, get(settings))
        .route(routes::API_SCHEDULE, put(set_schedule))
        .route(routes::API_DEFAULT_DELIVERY, put(set_default_delivery))
        .route(routes::API_DESTINATION_DELIVERY, put(set_delivery))
        .route(routes::API_DESTINATION_CONFIRM, post(confirm))
        .route(routes::API_DESTINATION_RESEND, post(resend))
        .route(routes::API_FOLLOWS, get(follows).post(follow))
        .route(routes::API_FOLLOW, delete(unfollow))
        .route(routes::API_MUTES, get(mutes).post(mute))
        .route(routes::API_MUTE, delete(unmute))
        .route(routes::API_TOKENS, get(tokens).post(make_token))
        .route(routes::API_TOKEN, delete(revoke_token))
        .route(routes::API_EXPORT, get(export))
        .route(routes::API_SESSIONS, delete(sign_out_everywhere))
        .route(routes::API_OFFERED, get(offered))
        .route(routes::API_OFFERED_ADD, post(add_offered))
        .route(routes::API_OFFERED_DISMISS, post(dismiss_offered))
}

async fn settings(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let schedule = state.store.schedule(user.id).await.map_err(store)?;
    let default = state
        .store
        .user_default_delivery(user.id)
        .await
        .map_err(store)?;
    ok(json!({
        "time_zone": schedule.time_zone(),
        "quiet_hours": schedule.quiet().map(|(from, to)| json!({"from": from, "to": to})),
        "default_delivery": default,
        "site_delivery": tidings_store::default_delivery(),
        "paused_until": state.store.paused_until(user.id).await.map_err(store)?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Quiet {
    from: TimeOfDay,
    to: TimeOfDay,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    time_zone: String,
    quiet_hours: Option<Quiet>,
}

async fn set_schedule(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<ScheduleBody>,
) -> Reply {
    let schedule = Schedule::new(&body.time_zone, body.quiet_hours.map(|q| (q.from, q.to)))
        .map_err(|e| bad(e.to_string()))?;
    state
        .store
        .set_schedule(user.id, &schedule)
        .await
        .map_err(store)?;
    settings(State(state), Reader(user)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultDeliveryBody {
    /// None: the site's default.
    delivery: Option<DeliveryPolicy>,
    /// Set it on every destination that can take it too.
    #[serde(default)]
    apply_to_all: bool,
}

async fn set_default_delivery(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<DefaultDeliveryBody>,
) -> Reply {
    state
        .store
        .set_user_default_delivery(user.id, body.delivery.as_ref())
        .await
        .map_err(store)?;
    let applied = if body.apply_to_all {
        crate::settings::apply_to_all(&state, user.id, body.delivery.as_ref()).await?
    } else {
        0
    };
    ok(json!({"default_delivery": body.delivery, "applied_to": applied}))
}

async fn set_delivery(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Id(id): Id,
    Body(policy): Body<DeliveryPolicy>,
) -> Reply {
    let saved = state
        .store
        .set_delivery(user.id, id, &policy)
        .await
        .map_err(store)?;
    ok(saved)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: String,
}

async fn confirm(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Id(id): Id,
    Body(body): Body<CodeBody>,
) -> Reply {
    let confirmed = state
        .store
        .confirm_destination_code(user.id, id, &body.code)
        .await
        .map_err(store)?;
    ok(confirmed)
}

async fn resend(State(state): State<AppState>, Writer(user, _): Writer, Id(id): Id) -> Reply {
    let destination = state
        .store
        .resend_confirmation(user.id, id)
        .await
        .map_err(store)?;
    state.wake.notify_one();
    ok(destination)
}

/// A follow's kind as a path or body names it.
fn follow_kind(kind: &str) -> Result<FollowKind, ApiError> {
    match kind {
        "user" => Ok(FollowKind::User),
        "package" => Ok(FollowKind::Package),
        other => Err(bad(format!("kind: {other:?} is neither user nor package"))),
    }
}

fn follows_json(list: Vec<(FollowKind, String)>) -> serde_json::Value {
    json!({"follows": list.into_iter().map(|(kind, name)| json!({"kind": kind, "name": name})).collect::<Vec<_>>()})
}

async fn follows(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    ok(follows_json(
        state.store.follows(user.id).await.map_err(store)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowBody {
    kind: String,
    name: String,
}

async fn follow(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<FollowBody>,
) -> Reply {
    let kind = follow_kind(&body.kind)?;
    state
        .store
        .follow(user.id, kind, body.name.trim())
        .await
        .map_err(store)?;
    created(follows_json(
        state.store.follows(user.id).await.map_err(store)?,
    ))
}

async fn unfollow(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Path((kind, name)): Path<(String, String)>,
) -> Reply {
    let kind = follow_kind(&kind)?;
    if !state
        .store
        .unfollow(user.id, kind, &name)
        .await
        .map_err(store)?
    {
        return Err(ApiError(StatusCode::NOT_FOUND, "not found".into()));
    }
    done()
}

async fn mutes(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let list = state
        .store
        .active_mutes(Some(user.id))
        .await
        .map_err(store)?;
    ok(json!({ "mutes": list }))
}

/// A mute: of a package by name, or of what an archived message is about (its thread, or
/// one of its packages), for `days` days (30 unless said).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    kind: String,
    /// The package's name (a package mute without a message).
    value: Option<String>,
    /// An archived message's bus id: mute its thread, or its package `value` (or first).
    message: Option<String>,
    days: Option<i64>,
}

async fn mute(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<MuteBody>,
) -> Reply {
    let days = body.days.unwrap_or(MUTE_MS / 86_400_000);
    if !(1..=MUTE_DAYS_MAX).contains(&days) {
        return Err(bad(format!(
            "days: {days} is not a whole number from 1 to {MUTE_DAYS_MAX}"
        )));
    }
    let kind = match body.kind.as_str() {
        "thread" => MuteKind::Thread,
        "package" => MuteKind::Package,
        other => {
            return Err(bad(format!(
                "kind: {other:?} is neither thread nor package (to pause everything, PUT {})",
                routes::API_PAUSE
            )))
        }
    };
    let option = match (&body.message, kind) {
        (Some(id), _) => {
            let stored = match state.store.archived_message(id).await {
                Err(StoreError::NotFound) => {
                    return Err(bad(format!(
                        "message: no archived message has the id {id:?}"
                    )))
                }
                other => other.map_err(store)?,
            };
            mute_options(&stored.metadata)
                .into_iter()
                .find(|o| o.kind == kind && body.value.as_ref().is_none_or(|v| *v == o.value))
                .ok_or_else(|| {
                    bad(format!(
                        "kind: message {id:?} has no {} to mute{}",
                        kind.as_str(),
                        body.value
                            .as_ref()
                            .map(|v| format!(" called {v:?}"))
                            .unwrap_or_default()
                    ))
                })?
        }
        (None, MuteKind::Package) => {
            let name = body.value.as_deref().unwrap_or("").trim();
            if name.is_empty() || name.len() > 200 {
                return Err(bad("value: name the package (1 to 200 characters)"));
            }
            MuteOption {
                kind,
                value: name.to_string(),
                label: format!("the package {name}"),
            }
        }
        (None, _) => {
            return Err(bad(
                "message: a thread is muted from a message; give its id",
            ))
        }
    };
    let until = tidings_store::now_ms().saturating_add(days.saturating_mul(86_400_000));
    let made = state
        .store
        .mute(user.id, &option, until)
        .await
        .map_err(store)?;
    created(made)
}

async fn unmute(State(state): State<AppState>, Writer(user, _): Writer, Id(id): Id) -> Reply {
    state.store.unmute(user.id, id).await.map_err(store)?;
    done()
}

async fn tokens(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let list = state.store.personal_tokens(user.id).await.map_err(store)?;
    ok(json!({ "tokens": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    name: String,
    scope: String,
}

/// A new token, never of a larger scope than the one that asks for it (a `write` token
/// cannot make an `admin` one).
async fn make_token(
    State(state): State<AppState>,
    Writer(user, scope): Writer,
    Body(body): Body<TokenBody>,
) -> Reply {
    let wanted = body.scope.parse::<PersonalScope>().map_err(store)?;
    if !scope.allows(wanted) {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("a token of scope {scope} cannot make one of scope {wanted}"),
        ));
    }
    let (token, secret) = state
        .store
        .create_personal_token(user.id, &body.name, wanted)
        .await
        .map_err(store)?;
    created(json!({"token": token, "secret": secret}))
}

async fn revoke_token(State(state): State<AppState>, Writer(user, _): Writer, Id(id): Id) -> Reply {
    state
        .store
        .revoke_personal_token(user.id, id)
        .await
        .map_err(store)?;
    done()
}

async fn export(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    ok(crate::auth::export_json(&state, &user).await?)
}

async fn sign_out_everywhere(State(state): State<AppState>, Writer(user, _): Writer) -> Reply {
    let ended = state
        .store
        .end_sessions(user.id, None)
        .await
        .map_err(store)?;
    tracing::info!(username = %user.username, sessions = ended, "signed out everywhere (API)");
    ok(json!({ "ended": ended }))
}

async fn offered(State(state): State<AppState>, Reader(user): Reader) -> Reply {
    let list = state
        .store
        .offered_default_filters(user.id)
        .await
        .map_err(store)?;
    ok(json!({"offered": list.iter().map(super::admin::default_json).collect::<Vec<_>>()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ids {
    /// None or empty: every one offered.
    #[serde(default)]
    ids: Vec<i64>,
}

async fn add_offered(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<Ids>,
) -> Reply {
    let added = state
        .store
        .add_default_filters(user.id, &body.ids)
        .await
        .map_err(store)?;
    ok(json!({ "added": added }))
}

async fn dismiss_offered(
    State(state): State<AppState>,
    Writer(user, _): Writer,
    Body(body): Body<Ids>,
) -> Reply {
    let dismissed = state
        .store
        .dismiss_default_filters(user.id, &body.ids)
        .await
        .map_err(store)?;
    ok(json!({ "dismissed": dismissed }))
}
