//! Settings: the signed-in user's time zone and quiet hours, the delivery their new
//! destinations start with, and pausing everything for a while (a holiday: nothing is
//! queued for them until the pause ends or they resume).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::destinations::{policy, schedule_from, schedule_saved, PolicyForm};
use crate::error::for_form;
use crate::session::{CurrentUser, Form};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The longest pause, in days.
pub(crate) const PAUSE_DAYS_MAX: i64 = 90;

/// The page and its forms.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::SETTINGS, get(page))
        .route(routes::SCHEDULE, post(set_schedule))
        .route(routes::DEFAULT_DELIVERY, post(set_default_delivery))
        .route(routes::PAUSE, post(pause))
        .route(routes::RESUME, post(resume))
}

#[derive(Template)]
#[template(path = "web/settings.html")]
struct SettingsView {
    nav: Nav,
    csrf: String,
    time_zone: String,
    quiet_from: String,
    quiet_to: String,
    /// Whether new destinations follow the site's default.
    site_default: bool,
    /// The site's default, in words.
    site_delivery: String,
    /// The values of the default delivery form.
    policy: PolicyForm,
    /// When the running pause ends, if there is one.
    paused_until: Option<String>,
    pause_days_max: i64,
    notice: Option<String>,
    error: Option<String>,
}

async fn view(
    state: &AppState,
    me: &CurrentUser,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SettingsView, Error> {
    let schedule = state.store.schedule(me.id()).await?;
    let (quiet_from, quiet_to) = match schedule.quiet() {
        Some((from, to)) => (from.to_string(), to.to_string()),
        None => (String::new(), String::new()),
    };
    let default = state.store.user_default_delivery(me.id()).await?;
    let site = tidings_store::default_delivery();
    Ok(SettingsView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        time_zone: schedule.time_zone().to_string(),
        quiet_from,
        quiet_to,
        site_default: default.is_none(),
        site_delivery: site.describe(),
        policy: PolicyForm::of(default.as_ref().unwrap_or(&site)),
        paused_until: state.store.paused_until(me.id()).await?.map(view::when),
        pause_days_max: PAUSE_DAYS_MAX,
        notice,
        error,
    })
}

async fn page(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    view::ok(&view(&state, &me, None, None).await?)
}

/// The page again with what a form did: a notice, or the refusal and its status.
async fn settled(
    state: &AppState,
    me: &CurrentUser,
    result: Result<String, (StatusCode, String)>,
) -> Result<Response, Error> {
    match result {
        Ok(notice) => view::ok(&view(state, me, Some(notice), None).await?),
        Err((status, message)) => view::page(status, &view(state, me, None, Some(message)).await?),
    }
}

async fn set_schedule(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let result = match schedule_from(&form) {
        Ok(schedule) => for_form(state.store.set_schedule(me.id(), &schedule).await)?
            .map(|()| schedule_saved(&schedule)),
        Err(refused) => Err(refused),
    };
    settled(&state, &me, result).await
}

/// The delivery new destinations start with; `apply` sets it on every destination the
/// user has now too (those that can take it: a webhook's go at once, in order).
async fn set_default_delivery(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let chosen = match form.text("mode") {
        "site" => Ok(None),
        _ => policy(&form).map(Some),
    };
    let result = match chosen {
        Ok(chosen) => {
            match for_form(
                state
                    .store
                    .set_user_default_delivery(me.id(), chosen.as_ref())
                    .await,
            )? {
                Ok(()) => {
                    let applied = if form.text("apply") == "on" {
                        apply_to_all(&state, me.id(), chosen.as_ref()).await?
                    } else {
                        0
                    };
                    let what = match &chosen {
                        Some(policy) => policy.describe(),
                        None => format!(
                            "the site's default ({})",
                            tidings_store::default_delivery().describe()
                        ),
                    };
                    Ok(match applied {
                        0 => format!("New destinations get their notifications {what}."),
                        n => format!(
                            "New destinations get their notifications {what}; so do your {n} \
                             destination(s) that can."
                        ),
                    })
                }
                Err(refused) => Err(refused),
            }
        }
        Err(refused) => Err(refused),
    };
    settled(&state, &me, result).await
}

/// Sets `chosen` (or the site's default) on each of the user's destinations that can
/// take it; how many did.
pub(crate) async fn apply_to_all(
    state: &AppState,
    user_id: i64,
    chosen: Option<&tidings_store::DeliveryPolicy>,
) -> Result<usize, Error> {
    let policy = chosen
        .cloned()
        .unwrap_or_else(tidings_store::default_delivery);
    let mut applied = 0;
    for destination in state.store.destinations(user_id).await? {
        if destination.channel.delivers_in_order() {
            continue;
        }
        state
            .store
            .set_delivery(user_id, destination.id, &policy)
            .await?;
        applied += 1;
    }
    Ok(applied)
}

async fn pause(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let days = form.text("days").trim();
    let result = match days.parse::<i64>() {
        Ok(days) if (1..=PAUSE_DAYS_MAX).contains(&days) => {
            let until = tidings_store::now_ms().saturating_add(days.saturating_mul(86_400_000));
            for_form(state.store.pause_everything(me.id(), until).await)?.map(|mute| {
                format!(
                    "Everything is paused until {}: nothing is sent to you until then, or \
                     until you resume.",
                    view::when(mute.until)
                )
            })
        }
        _ => Err((
            StatusCode::BAD_REQUEST,
            format!("days: {days:?} is not a whole number from 1 to {PAUSE_DAYS_MAX}"),
        )),
    };
    settled(&state, &me, result).await
}

async fn resume(
    State(state): State<AppState>,
    me: CurrentUser,
    _form: Form,
) -> Result<Response, Error> {
    let notice = if state.store.resume_everything(me.id()).await? {
        "Resumed: what your filters match from now on is sent again."
    } else {
        "Nothing was paused."
    };
    settled(&state, &me, Ok(notice.to_string())).await
}
