//! Destinations: the user's email addresses, webhooks, ntfy topics, Matrix users and IRC
//! nicks and channels; the confirmation page their links point at, and the form a chat
//! destination's code is typed into (signed in: the code proves the account holder reads
//! that chat).
//! The link confirms on POST only: mail scanners prefetch every link in a message, and a GET
//! that changed state would confirm addresses nobody looked at. The link's token is checked
//! for shape before anything is rendered ([`LinkToken`]) and the form posts back to the
//! route built from it, never to the path as requested.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_store::{
    AccessToken, ChannelKind, ChannelSettings, ConfirmationMail, DeliveryPolicy, Destination,
    NewDestination, OutboxStatus, Schedule, TimeOfDay,
};

use crate::auth::see_other;
use crate::error::for_form;
use crate::routes::LinkToken;
use crate::session::{CurrentUser, Form, Visitor};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The destination and confirmation routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::DESTINATIONS, get(list).post(add))
        .route(routes::DESTINATION_DELETE, post(delete))
        .route(routes::DESTINATION_RESEND, post(resend))
        .route(routes::DESTINATION_CONFIRM, post(confirm_code))
        .route(routes::DESTINATION_DELIVERY, post(set_delivery))
        .route(routes::CONFIRM, get(confirm_page).post(confirm))
}

/// The values a delivery form (a destination's, the default one in settings) shows for a
/// policy: `templates/web/macros.html`'s `delivery_fields`.
pub(crate) struct PolicyForm {
    pub(crate) digest: bool,
    pub(crate) flood_max: String,
    pub(crate) flood_window: String,
    pub(crate) every: String,
    pub(crate) daily: String,
    pub(crate) after: String,
}

impl PolicyForm {
    pub(crate) fn of(policy: &DeliveryPolicy) -> PolicyForm {
        let (digest, flood_max, flood_window, every, daily, after) = match policy {
            DeliveryPolicy::Immediate {
                flood_max,
                flood_window_minutes,
            } => (false, *flood_max, *flood_window_minutes, None, None, None),
            DeliveryPolicy::Digest {
                every_minutes,
                daily_at,
                max_items,
            } => (
                true,
                DeliveryPolicy::DEFAULT_FLOOD_MAX,
                DeliveryPolicy::DEFAULT_FLOOD_WINDOW_MINUTES,
                *every_minutes,
                daily_at.as_ref(),
                *max_items,
            ),
        };
        let text = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        PolicyForm {
            digest,
            flood_max: flood_max.to_string(),
            flood_window: flood_window.to_string(),
            every: text(every),
            daily: daily.map(|at| at.to_string()).unwrap_or_default(),
            after: text(after),
        }
    }
}

/// One destination as a table row.
struct DestinationRow {
    channel: String,
    address: String,
    confirmed: String,
    /// For an unconfirmed one: what became of its confirmation mail.
    waiting: String,
    /// The confirmation mail failed for good: the address needs fixing or a resend.
    failed: bool,
    added: String,
    delete: String,
    resend: String,
    /// For an unconfirmed chat destination: where its code is posted.
    code: Option<String>,
    /// What its resend button sends.
    resend_what: &'static str,
    /// How its notifications go out, in words.
    delivery: String,
    /// Where its delivery settings are posted; none for a webhook (always at once).
    delivery_action: Option<String>,
    /// The delivery form's current values.
    /// The delivery form's values.
    policy: PolicyForm,
}

impl DestinationRow {
    fn new(d: &Destination, mails: &[ConfirmationMail]) -> Self {
        let mail = mails.iter().find(|m| m.destination_id == d.id);
        let (what, sent) = match d.channel {
            ChannelKind::Email => ("confirmation mail", "confirmation link sent"),
            ChannelKind::Matrix => (
                "confirmation code",
                "code sent in a direct room (accept the invitation to read it)",
            ),
            ChannelKind::Irc => ("confirmation code", "code sent"),
            ChannelKind::Webhook => (
                "challenge",
                "challenge posted, not answered yet; answer it, or follow the link it carries,",
            ),
            ChannelKind::Ntfy => ("confirmation", "confirmation link published to the topic"),
        };
        let (waiting, failed) = match mail {
            _ if d.is_confirmed() => (String::new(), false),
            Some(m) if m.status == OutboxStatus::Dead => (
                format!(
                    "the {what} could not be delivered: {}",
                    m.last_error.as_deref().unwrap_or("refused")
                ),
                true,
            ),
            _ if d.disabled_reason.is_some() => (
                format!(
                    "disabled: {}; resend the {what} to enable it again",
                    d.disabled_reason.as_deref().unwrap_or_default()
                ),
                true,
            ),
            Some(m) if m.status == OutboxStatus::Sent => {
                let then = if d.channel.confirms_by_code() {
                    "type it here to confirm"
                } else {
                    "follow it to confirm"
                };
                (format!("{sent} {}; {then}", view::when(m.queued_at)), false)
            }
            Some(m) if m.last_error.is_some() => (
                format!(
                    "sending the {what}; last attempt failed: {}",
                    m.last_error.as_deref().unwrap_or_default()
                ),
                false,
            ),
            _ => (format!("waiting for the {what} to be sent"), false),
        };
        DestinationRow {
            channel: d.channel.to_string(),
            address: d.address.clone(),
            confirmed: d.confirmed_at.map(view::when).unwrap_or_default(),
            waiting,
            failed,
            added: view::when(d.created_at),
            delete: routes::destination_delete(d.id),
            resend: routes::destination_resend(d.id),
            code: (d.channel.confirms_by_code() && !d.is_confirmed())
                .then(|| routes::destination_confirm(d.id)),
            delivery: if d.channel.delivers_in_order() {
                "at once, one by one, in order".to_string()
            } else {
                d.delivery.describe()
            },
            delivery_action: (!d.channel.delivers_in_order())
                .then(|| routes::destination_delivery(d.id)),
            policy: PolicyForm::of(&d.delivery),
            resend_what: match d.channel {
                ChannelKind::Webhook => "challenge",
                kind if kind.confirms_by_code() => "code",
                _ => "confirmation",
            },
        }
    }
}

#[derive(Template)]
#[template(path = "web/destinations.html")]
struct DestinationsView {
    nav: Nav,
    csrf: String,
    destinations: Vec<DestinationRow>,
    /// What the form sent back shows: typed values, an error, a notice, a new secret.
    shown: Shown,
    /// Whether webhooks can be added here.
    webhooks: bool,
    /// Whether ntfy topics can be added here.
    ntfy_topics: bool,
    /// Whether Matrix users can be added here.
    matrix: bool,
    /// The IRC networks nicks and channels can be added on (none: IRC is off).
    irc_networks: Vec<String>,
    per_address: i64,
    per_user: i64,
    /// The user's time zone and quiet hours, in a sentence (they are set in Settings).
    schedule: String,
}

/// What the destinations page shows besides the list.
#[derive(Default)]
struct Shown {
    /// The email address typed (a refused one, shown again).
    address: String,
    /// The webhook URL typed.
    webhook: String,
    /// The ntfy topic URL typed (never its access token).
    ntfy: String,
    /// The Matrix user ID typed.
    matrix: String,
    /// The IRC nick or channel typed, and its network.
    irc: String,
    irc_network: String,
    error: Option<String>,
    notice: Option<String>,
    /// A new webhook's signing secret: shown this once.
    secret: Option<String>,
}

async fn render(
    state: &AppState,
    me: &CurrentUser,
    shown: Shown,
) -> Result<DestinationsView, Error> {
    let destinations = state.store.destinations(me.id()).await?;
    let mails = state.store.confirmation_mails(me.id()).await?;
    let schedule = state.store.schedule(me.id()).await?;
    Ok(DestinationsView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        destinations: destinations
            .iter()
            .map(|d| DestinationRow::new(d, &mails))
            .collect(),
        shown,
        webhooks: state.config.channels.contains(&ChannelKind::Webhook),
        ntfy_topics: state.config.channels.contains(&ChannelKind::Ntfy),
        matrix: state.config.channels.contains(&ChannelKind::Matrix),
        irc_networks: if state.config.channels.contains(&ChannelKind::Irc) {
            state.config.irc_networks.clone()
        } else {
            Vec::new()
        },
        per_address: tidings_store::PER_ADDRESS,
        per_user: tidings_store::PER_USER,
        schedule: match schedule.quiet() {
            Some((from, to)) => format!("{from} to {to}, {}", schedule.time_zone()),
            None => format!("none; times are in {}", schedule.time_zone()),
        },
    })
}

async fn list(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    view::ok(&render(&state, &me, Shown::default()).await?)
}

async fn add(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    // An IRC destination is its nick or channel and the network picked from the list.
    let irc_address;
    let address = match form.text("network").trim() {
        "" => form.text("address").trim(),
        network => {
            irc_address = format!("{}@{network}", form.text("address").trim());
            irc_address.as_str()
        }
    };
    let channel = match form.text("channel") {
        "" => Ok(ChannelKind::Email),
        name => name
            .parse::<ChannelKind>()
            .map_err(|e| e.to_string())
            .and_then(|kind| {
                if state.config.channels.contains(&kind) {
                    Ok(kind)
                } else {
                    Err(format!("{kind} destinations are turned off on this site"))
                }
            }),
    };
    let typed = |error: String, kind: Option<ChannelKind>| {
        let mut shown = Shown {
            error: Some(error),
            ..Shown::default()
        };
        match kind {
            Some(ChannelKind::Webhook) => shown.webhook = address.to_string(),
            Some(ChannelKind::Ntfy) => shown.ntfy = address.to_string(),
            Some(ChannelKind::Matrix) => shown.matrix = address.to_string(),
            Some(ChannelKind::Irc) => {
                shown.irc = form.text("address").trim().to_string();
                shown.irc_network = form.text("network").trim().to_string();
            }
            Some(ChannelKind::Email) | None => shown.address = address.to_string(),
        }
        shown
    };
    let channel = match channel {
        Ok(channel) => channel,
        Err(error) => {
            return view::page(
                axum::http::StatusCode::BAD_REQUEST,
                &render(&state, &me, typed(error, None)).await?,
            )
        }
    };
    if channel == ChannelKind::Irc {
        let network = address.rsplit_once('@').map(|(_, n)| n).unwrap_or_default();
        if !state
            .config
            .irc_networks
            .iter()
            .any(|n| n.eq_ignore_ascii_case(network))
        {
            let known = state.config.irc_networks.join(", ");
            return view::page(
                axum::http::StatusCode::BAD_REQUEST,
                &render(
                    &state,
                    &me,
                    typed(
                        format!(
                            "network: {network:?} is not an IRC network of this site (it has: {known})"
                        ),
                        Some(channel),
                    ),
                )
                .await?,
            );
        }
    }
    // An ntfy topic's access token, if one was given: it goes into the settings, and is
    // never shown again.
    let token = form.text("token").trim();
    let settings = if channel != ChannelKind::Ntfy || token.is_empty() {
        None
    } else {
        match AccessToken::new(token) {
            Some(token) => Some(ChannelSettings::NtfyV1 { token: Some(token) }),
            None => {
                return view::page(
                    axum::http::StatusCode::BAD_REQUEST,
                    &render(
                        &state,
                        &me,
                        typed(
                            "the access token is printable ASCII without spaces (tk_…)".into(),
                            Some(channel),
                        ),
                    )
                    .await?,
                )
            }
        }
    };
    let new = NewDestination {
        user_id: me.id(),
        channel,
        address,
        confirmed: false,
    };
    let added = match settings {
        Some(settings) => {
            state
                .store
                .add_destination_with_settings(new, settings)
                .await
        }
        None => state.store.add_destination(new).await,
    };
    match for_form(added)? {
        Ok(added) => {
            // Tell the sender a confirmation is queued.
            state.wake.notify_one();
            let shown = match &added.settings {
                ChannelSettings::WebhookV1 { secret } => Shown {
                    notice: Some(format!(
                        "We are posting a challenge to {}. It is confirmed as soon as it answers \
                         with the challenge, or when you follow the link the challenge carries; \
                         nothing else is posted there before.",
                        added.address
                    )),
                    secret: Some(secret.expose().to_string()),
                    ..Shown::default()
                },
                ChannelSettings::NtfyV1 { .. } => Shown {
                    notice: Some(format!(
                        "We are publishing a confirmation link to {}. Open it on a device \
                         subscribed to the topic and confirm; nothing else is published there \
                         before.",
                        added.address
                    )),
                    ..Shown::default()
                },
                ChannelSettings::MatrixV1 {} => Shown {
                    notice: Some(format!(
                        "We are inviting {} to a direct room and sending a confirmation code \
                         there. Accept the invitation, then type the code below; nothing else \
                         is sent there before.",
                        added.address
                    )),
                    ..Shown::default()
                },
                ChannelSettings::IrcV1 {} => Shown {
                    notice: Some(format!(
                        "We are sending a confirmation code to {}. Type it below; nothing else \
                         is sent there before.",
                        added.address
                    )),
                    ..Shown::default()
                },
                ChannelSettings::EmailV1 {} => Shown {
                    notice: Some(format!(
                        "We sent a confirmation link to {}. Nothing else is sent there until you follow it.",
                        added.address
                    )),
                    ..Shown::default()
                },
            };
            view::ok(&render(&state, &me, shown).await?)
        }
        Err((status, message)) => view::page(
            status,
            &render(&state, &me, typed(message, Some(channel))).await?,
        ),
    }
}

/// Another confirmation mail, within the same limits as adding the address.
async fn resend(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    match for_form(state.store.resend_confirmation(me.id(), id).await)? {
        Ok(destination) => {
            state.wake.notify_one();
            let what = match destination.channel {
                ChannelKind::Email | ChannelKind::Ntfy => "confirmation link",
                ChannelKind::Webhook => "challenge",
                ChannelKind::Matrix | ChannelKind::Irc => "confirmation code",
            };
            let notice = format!(
                "We sent a new {what} to {}; earlier ones no longer work.",
                destination.address
            );
            let shown = Shown {
                notice: Some(notice),
                ..Shown::default()
            };
            view::ok(&render(&state, &me, shown).await?)
        }
        Err((status, message)) => {
            let shown = Shown {
                error: Some(message),
                ..Shown::default()
            };
            view::page(status, &render(&state, &me, shown).await?)
        }
    }
}

/// A chat destination's code, typed by its signed-in owner.
async fn confirm_code(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    form: Form,
) -> Result<Response, Error> {
    let confirmed = state
        .store
        .confirm_destination_code(me.id(), id, form.text("code"))
        .await;
    match for_form(confirmed)? {
        Ok(destination) => {
            tracing::info!(
                destination = destination.id,
                "destination confirmed by code"
            );
            let shown = Shown {
                notice: Some(format!(
                    "{} is confirmed: notifications can go there now.",
                    destination.address
                )),
                ..Shown::default()
            };
            view::ok(&render(&state, &me, shown).await?)
        }
        Err((status, message)) => {
            let shown = Shown {
                error: Some(message),
                ..Shown::default()
            };
            view::page(status, &render(&state, &me, shown).await?)
        }
    }
}

/// The page again after a settings form: with `notice`, or with the refusal and its status.
async fn settled<T>(
    state: &AppState,
    me: &CurrentUser,
    result: Result<T, (axum::http::StatusCode, String)>,
    notice: impl FnOnce(T) -> String,
) -> Result<Response, Error> {
    match result {
        Ok(value) => {
            let shown = Shown {
                notice: Some(notice(value)),
                ..Shown::default()
            };
            view::ok(&render(state, me, shown).await?)
        }
        Err((status, message)) => {
            let shown = Shown {
                error: Some(message),
                ..Shown::default()
            };
            view::page(status, &render(state, me, shown).await?)
        }
    }
}

/// A number typed in a form: none when empty; a refusal naming the field otherwise.
fn number(
    form: &Form,
    field: &'static str,
) -> Result<Option<u32>, (axum::http::StatusCode, String)> {
    let text = form.text(field).trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            format!("{field}: {text:?} is not a whole number"),
        )
    })
}

/// The digest a form's `every`, `daily` and `after` fields describe (a destination's
/// delivery form, a filter's form).
pub(crate) fn digest_policy(
    form: &Form,
) -> Result<DeliveryPolicy, (axum::http::StatusCode, String)> {
    let daily = form.text("daily").trim();
    let daily_at = if daily.is_empty() {
        None
    } else {
        Some(
            TimeOfDay::parse(daily)
                .map_err(|e| (axum::http::StatusCode::BAD_REQUEST, format!("daily: {e}")))?,
        )
    };
    Ok(DeliveryPolicy::Digest {
        every_minutes: number(form, "every")?,
        daily_at,
        max_items: number(form, "after")?,
    })
}

/// The delivery policy a destination's form describes.
pub(crate) fn policy(form: &Form) -> Result<DeliveryPolicy, (axum::http::StatusCode, String)> {
    let bad = |message: String| (axum::http::StatusCode::BAD_REQUEST, message);
    match form.text("mode") {
        "digest" => digest_policy(form),
        "immediate" => Ok(DeliveryPolicy::Immediate {
            flood_max: number(form, "flood_max")?.unwrap_or(DeliveryPolicy::DEFAULT_FLOOD_MAX),
            flood_window_minutes: number(form, "flood_window")?
                .unwrap_or(DeliveryPolicy::DEFAULT_FLOOD_WINDOW_MINUTES),
        }),
        other => Err(bad(format!(
            "mode: {other:?} is neither immediate nor digest"
        ))),
    }
}

/// How one destination gets its notifications.
async fn set_delivery(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    form: Form,
) -> Result<Response, Error> {
    let result = match policy(&form) {
        Ok(policy) => for_form(state.store.set_delivery(me.id(), id, &policy).await)?,
        Err(refused) => Err(refused),
    };
    settled(&state, &me, result, |d| {
        format!("{}: {}.", d.address, d.delivery.describe())
    })
    .await
}

/// The time zone and quiet hours a settings form describes.
pub(crate) fn schedule_from(form: &Form) -> Result<Schedule, (axum::http::StatusCode, String)> {
    let bad = |message: String| (axum::http::StatusCode::BAD_REQUEST, message);
    let time = |field: &'static str| {
        let text = form.text(field).trim();
        if text.is_empty() {
            Ok(None)
        } else {
            TimeOfDay::parse(text)
                .map(Some)
                .map_err(|e| bad(format!("{field}: {e}")))
        }
    };
    let from = time("quiet_from")?;
    let quiet = match (from, time("quiet_to")?) {
        (Some(from), Some(to)) => Some((from, to)),
        (None, None) => None,
        _ => {
            return Err(bad(
                "quiet hours: give both a start and an end, or neither".into()
            ))
        }
    };
    Schedule::new(form.text("time_zone"), quiet).map_err(|e| bad(e.to_string()))
}

/// What the page says once a schedule is saved.
pub(crate) fn schedule_saved(schedule: &Schedule) -> String {
    match schedule.quiet() {
        Some((from, to)) => format!(
            "Quiet hours {from} to {to}, {}: what arrives then waits for one digest when they end.",
            schedule.time_zone()
        ),
        None => format!("No quiet hours; times are in {}.", schedule.time_zone()),
    }
}

async fn delete(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.delete_destination(me.id(), id).await?;
    Ok(see_other(routes::DESTINATIONS))
}

#[derive(Template)]
#[template(path = "web/confirm.html")]
struct ConfirmView {
    nav: Nav,
    csrf: String,
    action: String,
    confirmed: Option<String>,
}

async fn confirm_page(
    State(state): State<AppState>,
    token: LinkToken,
    visitor: Visitor,
) -> Result<Response, Error> {
    view::ok(&ConfirmView {
        nav: Nav::visitor(&state, &visitor),
        csrf: visitor.csrf().to_string(),
        action: routes::confirm(&token),
        confirmed: None,
    })
}

/// The token alone authorises this (it was mailed to the address), so no sign-in is needed:
/// people often open the mail on another device.
async fn confirm(
    State(state): State<AppState>,
    token: LinkToken,
    form: Form,
) -> Result<Response, Error> {
    let destination = state.store.confirm_destination(token.as_str()).await?;
    tracing::info!(destination = destination.id, "destination confirmed");
    view::ok(&ConfirmView {
        nav: Nav::visitor(&state, &form.visitor),
        csrf: form.visitor.csrf().to_string(),
        action: String::new(),
        confirmed: Some(destination.address),
    })
}
