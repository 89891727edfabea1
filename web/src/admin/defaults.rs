//! Default filters: the admin's list, the form that creates and edits one (with a preview
//! of what it would have matched for a few users), and the user's side: the dashboard's
//! offer of the default filters an account does not have yet.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tidings_rules::Condition;
use tidings_store::{DefaultFilter, DefaultFilterInput, Delivery, Preview};

use super::Admin;
use crate::auth::see_other;
use crate::error::for_form;
use crate::session::{CurrentUser, Form};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// How far back a preview looks.
pub(crate) const PREVIEW_DAYS: i64 = 7;
/// The most archived messages a preview reads (the newest).
pub(crate) const PREVIEW_SCAN: i64 = 5_000;
/// How many users a preview tries when the admin names none (the first by name).
pub(crate) const PREVIEW_USERS: i64 = 5;
/// The most users one preview tries.
const PREVIEW_MAX_USERS: usize = 20;

/// One default filter in the list.
pub(crate) struct Row {
    pub link: String,
    pub delete: String,
    pub name: String,
    pub condition: String,
    pub delivery: String,
    pub enabled: bool,
}

impl From<&DefaultFilter> for Row {
    fn from(t: &DefaultFilter) -> Self {
        Row {
            link: routes::admin_default(t.id),
            delete: routes::admin_default_delete(t.id),
            name: t.name.clone(),
            condition: t.condition.to_string(),
            delivery: t.delivery.describe(),
            enabled: t.enabled,
        }
    }
}

/// What the form holds.
#[derive(Default)]
pub(crate) struct Fields {
    pub name: String,
    pub condition: String,
    pub enabled: bool,
    pub digest: bool,
    pub every: String,
    pub daily: String,
    pub after: String,
    pub preview_users: String,
}

impl Fields {
    fn of(t: &DefaultFilter) -> Fields {
        let mut fields = Fields {
            name: t.name.clone(),
            condition: t.condition.to_string(),
            enabled: t.enabled,
            ..Fields::default()
        };
        if let Some(tidings_store::DeliveryPolicy::Digest {
            every_minutes,
            daily_at,
            max_items,
        }) = t.delivery.policy()
        {
            fields.digest = true;
            fields.every = every_minutes.map(|m| m.to_string()).unwrap_or_default();
            fields.daily = daily_at.map(|d| d.to_string()).unwrap_or_default();
            fields.after = max_items.map(|n| n.to_string()).unwrap_or_default();
        }
        fields
    }

    fn from_form(form: &Form) -> Fields {
        Fields {
            name: form.text("name").to_string(),
            condition: form.text("condition").to_string(),
            enabled: form.checked("enabled"),
            digest: form.text("delivery") == "digest",
            every: form.text("every").to_string(),
            daily: form.text("daily").to_string(),
            after: form.text("after").to_string(),
            preview_users: form.text("preview_users").to_string(),
        }
    }
}

/// A preview, as the page shows it.
pub(crate) struct PreviewView {
    pub days: i64,
    pub scanned: usize,
    pub truncated: bool,
    pub users: Vec<(String, usize)>,
}

#[derive(Template)]
#[template(path = "web/admin_defaults.html")]
struct DefaultsView {
    nav: Nav,
    csrf: String,
    /// The list (the list page), or none (an edit page).
    rows: Option<Vec<Row>>,
    /// Where the form posts.
    action: String,
    /// The template being edited, if any: its delete action.
    delete: Option<String>,
    fields: Fields,
    error: Option<String>,
    warnings: Vec<String>,
    preview: Option<PreviewView>,
    notice: Option<String>,
}

async fn view(
    state: &AppState,
    me: &CurrentUser,
    id: Option<i64>,
    fields: Fields,
) -> Result<DefaultsView, Error> {
    let rows = match id {
        None => Some(
            state
                .store
                .default_filters()
                .await?
                .iter()
                .map(Row::from)
                .collect(),
        ),
        Some(_) => None,
    };
    Ok(DefaultsView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        rows,
        action: id.map_or(routes::ADMIN_DEFAULTS.to_string(), routes::admin_default),
        delete: id.map(routes::admin_default_delete),
        fields,
        error: None,
        warnings: Vec::new(),
        preview: None,
        notice: None,
    })
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<Response, Error> {
    let fields = Fields {
        enabled: true,
        ..Fields::default()
    };
    view::ok(&view(&state, &me, None, fields).await?)
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let t = state.store.default_filter(id).await?;
    view::ok(&view(&state, &me, Some(id), Fields::of(&t)).await?)
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Admin(me): Admin,
    form: Form,
) -> Result<Response, Error> {
    save(state, me, None, form).await
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    form: Form,
) -> Result<Response, Error> {
    state.store.default_filter(id).await?;
    save(state, me, Some(id), form).await
}

/// The users a preview tries: those named (comma or space separated), or the first few.
pub(crate) async fn preview_users(state: &AppState, named: &str) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = named
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    names.dedup();
    if names.is_empty() {
        let (users, _) = state.store.search_users("", 0, PREVIEW_USERS).await?;
        names = users.into_iter().map(|u| u.username).collect();
    }
    names.truncate(PREVIEW_MAX_USERS);
    Ok(names)
}

async fn save(
    state: AppState,
    me: CurrentUser,
    id: Option<i64>,
    form: Form,
) -> Result<Response, Error> {
    let fields = Fields::from_form(&form);
    let mut page = view(&state, &me, id, Fields::default()).await?;
    let delivery = if fields.digest {
        crate::destinations::digest_policy(&form).and_then(|policy| {
            Delivery::digest(policy).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
        })
    } else {
        Ok(Delivery::Instant)
    };
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err((status, message)) => {
            page.fields = fields;
            page.error = Some(message);
            return view::page(status, &page);
        }
    };
    let condition = match Condition::parse(&fields.condition) {
        Ok(condition) => condition,
        Err(err) => {
            page.fields = fields;
            page.error = Some(format!(
                "The condition has an error at line {}, column {}: {}",
                err.line, err.column, err.message
            ));
            return view::page(StatusCode::BAD_REQUEST, &page);
        }
    };
    page.warnings = condition.warnings(&state.apps, None);
    if form.text("action") == "preview" {
        let users = preview_users(&state, &fields.preview_users).await?;
        let since = tidings_store::now_ms() - PREVIEW_DAYS * 86_400_000;
        let Preview {
            scanned,
            truncated,
            users,
        } = state
            .store
            .preview_condition(&condition, &users, since, PREVIEW_SCAN)
            .await?;
        page.preview = Some(PreviewView {
            days: PREVIEW_DAYS,
            scanned,
            truncated,
            users,
        });
        page.fields = fields;
        return view::ok(&page);
    }
    let input = DefaultFilterInput {
        name: fields.name.clone(),
        condition,
        delivery,
        enabled: fields.enabled,
    };
    let saved = match id {
        None => state.store.create_default_filter(&input).await,
        Some(id) => state.store.update_default_filter(id, &input).await,
    };
    match for_form(saved)? {
        Ok(saved) => {
            tracing::info!(admin = %me.user.username, default_filter = %saved.name, "default filter saved");
            Ok(see_other(routes::ADMIN_DEFAULTS))
        }
        Err((status, message)) => {
            page.fields = fields;
            page.error = Some(message);
            view::page(status, &page)
        }
    }
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.delete_default_filter(id).await?;
    tracing::info!(admin = %me.user.username, default_filter = id, "default filter deleted");
    Ok(see_other(routes::ADMIN_DEFAULTS))
}

/// The ids a dashboard form names (`id` fields; none: every one offered).
fn ids(form: &Form) -> Result<Vec<i64>, Error> {
    form.all("id")
        .map(|id| id.parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| Error::BadRequest("id: not a number".into()))
}

/// Adds offered default filters to the signed-in user's filters (POST from the dashboard).
pub(crate) async fn add_offered(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    state
        .store
        .add_default_filters(me.id(), &ids(&form)?)
        .await?;
    Ok(see_other(routes::FILTERS))
}

/// Stops offering default filters to the signed-in user (POST from the dashboard).
pub(crate) async fn dismiss_offered(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    state
        .store
        .dismiss_default_filters(me.id(), &ids(&form)?)
        .await?;
    Ok(see_other(routes::HOME))
}
