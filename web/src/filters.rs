//! Filters: the list, the form that creates or edits one (the condition in its text form;
//! a parse error re-shows the form with the line and column), and deletion. A filter whose
//! stored row cannot be read is listed with why, and its form offers a fresh condition:
//! saving lifts its quarantine.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tidings_rules::condition::{BodyField, Builder, CmpOp, Whose};
use tidings_rules::delivery::DeliveryPolicy;
use tidings_rules::Condition;
use tidings_store::{Delivery, Destination, Filter, FilterInput, StoreError, UnreadableFilter};

use crate::auth::see_other;
use crate::error::for_form;
use crate::home::{FilterRow, UnreadableRow};
use crate::preview::MessageLine;
use crate::session::{CurrentUser, Form};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// The filter routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::FILTERS, get(list))
        .route(routes::FILTER_NEW, get(new_page).post(create))
        .route(routes::FILTER, get(edit_page).post(update))
        .route(routes::FILTER_DELETE, post(delete))
        .route(routes::FILTER_PREVIEW, get(preview_page))
}

/// A preview as the edit page shows it.
struct PreviewView {
    count: usize,
    scanned: usize,
    millis: u128,
    lines: Vec<MessageLine>,
}

/// What `condition` would have sent `me` in the last 7 days.
async fn preview_of(
    state: &AppState,
    me: &CurrentUser,
    condition: Condition,
) -> Result<PreviewView, Error> {
    let started = std::time::Instant::now();
    let variables = state.store.variables(me.id()).await?;
    let found =
        crate::preview::preview(&state.store, condition, variables, tidings_store::now_ms())
            .await?;
    Ok(PreviewView {
        count: found.count,
        scanned: found.scanned,
        millis: started.elapsed().as_millis(),
        lines: found.latest.iter().map(MessageLine::from).collect(),
    })
}

/// The offending line of a condition and a caret under the column, for the error display.
fn error_at(text: &str, line: usize, column: usize) -> Option<(String, String)> {
    let shown = text.lines().nth(line.checked_sub(1)?)?;
    let caret = format!("{}^", " ".repeat(column.saturating_sub(1)));
    Some((shown.to_string(), caret))
}

#[derive(Template)]
#[template(path = "web/filters.html")]
struct FiltersView {
    nav: Nav,
    csrf: String,
    filters: Vec<(FilterRow, String)>,
    unreadable: Vec<UnreadableRow>,
    /// Running mutes: what, until when, and where to end it.
    mutes: Vec<(String, String, String)>,
}

async fn list(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    let destinations = state.store.destinations(me.id()).await?;
    let filters = state.store.filters(me.id()).await?;
    let mutes = state.store.active_mutes(Some(me.id())).await?;
    view::ok(&FiltersView {
        mutes: mutes
            .into_iter()
            .map(|m| (m.label, view::when(m.until), routes::mute_delete(m.id)))
            .collect(),
        nav: Nav::user(&state, &me),
        csrf: me.visitor.csrf().to_string(),
        unreadable: filters.unreadable.iter().map(Into::into).collect(),
        filters: filters
            .filters
            .iter()
            .map(|f| {
                (
                    FilterRow::new(f, &destinations),
                    routes::filter_delete(f.id),
                )
            })
            .collect(),
    })
}

/// A destination offered in the form.
struct Choice {
    id: i64,
    address: String,
    confirmed: bool,
    checked: bool,
}

#[derive(Template)]
#[template(path = "web/filter_edit.html")]
struct FilterEditView {
    nav: Nav,
    csrf: String,
    /// `None` for a new filter.
    id: Option<i64>,
    action: String,
    name: String,
    condition: String,
    enabled: bool,
    choices: Vec<Choice>,
    /// Its own digest: on, and its every / daily / after fields as the form shows them.
    digest: bool,
    every: String,
    daily: String,
    after: String,
    error: Option<String>,
    /// The condition has no anchor (topic, person, package, agent, app), so every message
    /// must evaluate it: worth a warning, though it works.
    scan_warning: bool,
    /// The filter's feed, on a stored filter's page (its owner's only).
    feed: Option<FeedLink>,
    /// What looks wrong in the condition (see `Condition::warnings`).
    warnings: Vec<String>,
    /// Not saved because of `warnings`: the form offers to save anyway.
    confirm: bool,
    /// What the condition would have sent in the last 7 days, when asked for.
    preview: Option<PreviewView>,
    /// A condition error's line and a caret under its column.
    error_at: Option<(String, String)>,
    /// The builder form, filled from the condition when it fits.
    builder: BuilderForm,
}

/// The builder form as the page shows it.
struct BuilderForm {
    /// Why the condition does not fit the form, when it does not.
    note: Option<String>,
    /// Said after the form wrote the condition.
    written: bool,
    apps: Vec<(String, bool)>,
    /// Each app's catalog topics, ticked or not.
    topics: Vec<(String, Vec<(String, bool)>)>,
    /// (field name, label, ticked)
    whose: Vec<(&'static str, &'static str, bool)>,
    /// (value, label, selected); the first is "any".
    severities: Vec<(&'static str, &'static str, bool)>,
    not_mine: bool,
    body_path: String,
    /// (symbol, selected)
    body_ops: Vec<(&'static str, bool)>,
    body_value: String,
}

const OPS: [(&str, CmpOp); 6] = [
    ("==", CmpOp::Eq),
    ("!=", CmpOp::Ne),
    ("<", CmpOp::Lt),
    ("<=", CmpOp::Le),
    (">", CmpOp::Gt),
    (">=", CmpOp::Ge),
];

impl BuilderForm {
    fn new(state: &AppState, builder: &Builder, note: Option<String>) -> BuilderForm {
        let w = builder.whose;
        let body = builder.body.clone();
        let op = body.as_ref().map_or(CmpOp::Eq, |b| b.op);
        BuilderForm {
            note,
            written: false,
            apps: state
                .apps
                .apps
                .iter()
                .map(|a| (a.clone(), builder.apps.contains(a)))
                .collect(),
            topics: state
                .apps
                .topics
                .iter()
                .map(|(app, topics)| {
                    (
                        app.clone(),
                        topics
                            .iter()
                            .map(|t| (t.clone(), builder.topics.contains(t)))
                            .collect(),
                    )
                })
                .collect(),
            whose: vec![
                (
                    "whose_my_packages",
                    "my packages (mine and my groups')",
                    w.my_packages,
                ),
                ("whose_my_groups", "my groups", w.my_groups),
                (
                    "whose_followed_packages",
                    "packages I follow",
                    w.followed_packages,
                ),
                ("whose_me", "events about me", w.me),
                ("whose_followed_users", "people I follow", w.followed_users),
            ],
            severities: [
                ("", "any"),
                ("info", "info or more"),
                ("warning", "warning or more"),
                ("error", "error"),
            ]
            .into_iter()
            .map(|(value, label)| {
                let chosen = builder.severity.map(|s| s.as_str()).unwrap_or_default();
                (value, label, value == chosen)
            })
            .collect(),
            not_mine: builder.not_mine,
            body_path: body.as_ref().map(|b| b.path.clone()).unwrap_or_default(),
            body_ops: OPS.iter().map(|(sym, o)| (*sym, *o == op)).collect(),
            body_value: body.map(|b| b.value).unwrap_or_default(),
        }
    }

    /// The form for a condition's text: filled when it fits, else empty with why.
    fn for_text(state: &AppState, text: &str) -> BuilderForm {
        match Condition::parse(text) {
            Ok(condition) => match Builder::read(&condition) {
                Ok(builder) => BuilderForm::new(state, &builder, None),
                Err(why) => BuilderForm::new(
                    state,
                    &Builder::default(),
                    Some(format!("This condition is edited as text: {why}.")),
                ),
            },
            Err(_) => BuilderForm::new(
                state,
                &Builder::default(),
                Some("This condition is edited as text: it does not read yet.".into()),
            ),
        }
    }
}

/// The builder's fields of a posted form.
fn builder_of(form: &Form) -> Result<Builder, String> {
    let severity = match form.text("severity") {
        "" => None,
        name => Some(
            tidings_rules::Severity::parse(name)
                .ok_or_else(|| format!("severity: {name:?} is not a severity"))?,
        ),
    };
    let path = form.text("body_path").trim();
    let body = if path.is_empty() {
        None
    } else {
        let op = OPS
            .iter()
            .find(|(sym, _)| *sym == form.text("body_op"))
            .map(|(_, op)| *op)
            .ok_or_else(|| "body_op: choose a comparison".to_string())?;
        Some(BodyField {
            path: path.to_string(),
            op,
            value: form.text("body_value").to_string(),
        })
    };
    Ok(Builder {
        apps: form.all("app").map(str::to_string).collect(),
        topics: form.all("topic").map(str::to_string).collect(),
        whose: Whose {
            my_packages: form.checked("whose_my_packages"),
            my_groups: form.checked("whose_my_groups"),
            followed_packages: form.checked("whose_followed_packages"),
            me: form.checked("whose_me"),
            followed_users: form.checked("whose_followed_users"),
        },
        severity,
        not_mine: form.checked("not_mine"),
        body,
    })
}

/// What looks wrong in `condition` for this user: unknown apps, their empty variables,
/// numbers compared as text.
pub(crate) async fn warnings(
    state: &AppState,
    user_id: i64,
    condition: &Condition,
) -> Result<Vec<String>, Error> {
    let variables = state.store.variables(user_id).await?;
    let mut found = condition.warnings(&state.apps, Some(&variables));
    // A topic no catalog entry has is still fine when archived messages have it.
    for (topic, warning) in condition.unknown_topics(&state.apps) {
        let seen = state.store.topics_like(&like_pattern(&topic), 100).await?;
        if seen
            .iter()
            .any(|t| tidings_rules::condition::topic_glob_matches(&topic, t))
        {
            found.retain(|w| *w != warning);
        }
    }
    Ok(found)
}

/// A SQL `LIKE` pattern (escape `\\`) that every topic a topic glob matches also matches:
/// `*` and `**` become `%`.
fn like_pattern(glob: &str) -> String {
    let mut out = String::new();
    for (i, segment) in glob.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        match segment {
            "*" | "**" => out.push('%'),
            literal => {
                for c in literal.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    // `a.**.b` also matches `a.b`: let the dots around `**` go too.
    out.replace(".%.", "%")
        .replace("%.", "%")
        .replace(".%", "%")
}

/// A filter's feed URL and where to replace it.
struct FeedLink {
    url: String,
    renew: String,
}

/// What the form holds, whether from a stored filter or from a rejected POST.
struct Fields {
    name: String,
    condition: String,
    enabled: bool,
    destination_ids: Vec<i64>,
    delivery: Delivery,
}

impl From<&Filter> for Fields {
    fn from(filter: &Filter) -> Self {
        Fields {
            name: filter.name.clone(),
            condition: filter.condition.to_string(),
            enabled: filter.enabled,
            destination_ids: filter.destination_ids.clone(),
            delivery: filter.delivery.clone(),
        }
    }
}

/// The most of a stored condition shown back to its owner: enough to recognise it.
const STORED_SHOWN: usize = 300;

/// An unreadable filter's form: what could be read, an empty condition to write afresh,
/// and why the old one could not be read.
fn unreadable_fields(filter: &UnreadableFilter) -> (Fields, String) {
    let mut stored: String = filter.stored_condition.chars().take(STORED_SHOWN).collect();
    if stored.len() < filter.stored_condition.len() {
        stored.push('…');
    }
    let message = format!(
        "This filter could not be read: {}; edit or delete it. It matches nothing until a new \
         condition is saved. It was stored as: {stored}",
        filter.reason
    );
    let fields = Fields {
        name: filter.name.clone(),
        condition: String::new(),
        enabled: filter.enabled,
        destination_ids: filter.destination_ids.clone(),
        delivery: Delivery::Instant,
    };
    (fields, message)
}

fn edit_view(
    state: &AppState,
    me: &CurrentUser,
    id: Option<i64>,
    fields: Fields,
    destinations: &[Destination],
    error: Option<String>,
) -> FilterEditView {
    let shown = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    let condition_text = fields.condition.clone();
    let (digest, every, daily, after) = match fields.delivery.policy() {
        Some(DeliveryPolicy::Digest {
            every_minutes,
            daily_at,
            max_items,
        }) => (
            true,
            shown(*every_minutes),
            daily_at.map(|t| t.to_string()).unwrap_or_default(),
            shown(*max_items),
        ),
        _ => (false, "60".to_string(), String::new(), String::new()),
    };
    FilterEditView {
        nav: Nav::user(state, me),
        csrf: me.visitor.csrf().to_string(),
        id,
        action: id.map_or_else(|| routes::FILTER_NEW.to_string(), routes::filter),
        choices: destinations
            .iter()
            .map(|d| Choice {
                id: d.id,
                address: d.address.clone(),
                confirmed: d.is_confirmed(),
                checked: fields.destination_ids.contains(&d.id),
            })
            .collect(),
        scan_warning: tidings_rules::Condition::parse(&fields.condition)
            .is_ok_and(|c| !c.is_anchored()),
        digest,
        every,
        daily,
        after,
        name: fields.name,
        condition: fields.condition,
        enabled: fields.enabled,
        error,
        feed: None,
        warnings: Vec::new(),
        confirm: false,
        preview: None,
        error_at: None,
        builder: BuilderForm::for_text(state, &condition_text),
    }
}

async fn new_page(State(state): State<AppState>, me: CurrentUser) -> Result<Response, Error> {
    let destinations = state.store.destinations(me.id()).await?;
    let fields = Fields {
        name: String::new(),
        condition: "usernames has $me".to_string(),
        enabled: true,
        // A new filter feeds every confirmed address, which is what people usually want.
        destination_ids: destinations
            .iter()
            .filter(|d| d.is_confirmed())
            .map(|d| d.id)
            .collect(),
        delivery: Delivery::Instant,
    };
    view::ok(&edit_view(&state, &me, None, fields, &destinations, None))
}

async fn edit_page(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    stored_page(state, me, id, false).await
}

/// A saved filter's page with what it would have sent in the last 7 days.
async fn preview_page(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    stored_page(state, me, id, true).await
}

async fn stored_page(
    state: AppState,
    me: CurrentUser,
    id: i64,
    with_preview: bool,
) -> Result<Response, Error> {
    let (fields, error) = match state.store.filter(me.id(), id).await {
        Ok(filter) => {
            let error = filter.quarantine.as_ref().map(|q| {
                format!(
                    "This filter was set aside because it could not be read: {}. It reads now; \
                     save it to use it again.",
                    q.reason
                )
            });
            (Fields::from(&filter), error)
        }
        Err(StoreError::UnreadableFilter(filter)) => {
            let (fields, message) = unreadable_fields(&filter);
            (fields, Some(message))
        }
        Err(err) => return Err(err.into()),
    };
    let destinations = state.store.destinations(me.id()).await?;
    let token = state.store.feed_token(me.id(), id).await?;
    let stored = Condition::parse(&fields.condition).ok();
    let mut view = edit_view(&state, &me, Some(id), fields, &destinations, error);
    if let Some(condition) = stored {
        view.warnings = warnings(&state, me.id(), &condition).await?;
        if with_preview {
            view.preview = Some(preview_of(&state, &me, condition).await?);
        }
    }
    view.feed = Some(FeedLink {
        url: tidings_rules::links::Links::new(&state.config.base_url).feed(&token),
        renew: routes::filter_feed(id),
    });
    view::ok(&view)
}

async fn create(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    save(state, me, None, form).await
}

async fn update(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    form: Form,
) -> Result<Response, Error> {
    // Someone else's id is a 404 before anything in the form is looked at. An unreadable
    // filter is the owner's to repair: saving it replaces what could not be read.
    match state.store.filter(me.id(), id).await {
        Ok(_) | Err(StoreError::UnreadableFilter(_)) => {}
        Err(err) => return Err(err.into()),
    }
    save(state, me, Some(id), form).await
}

async fn save(
    state: AppState,
    me: CurrentUser,
    id: Option<i64>,
    form: Form,
) -> Result<Response, Error> {
    let fields = Fields {
        name: form.text("name").to_string(),
        condition: form.text("condition").to_string(),
        enabled: form.checked("enabled"),
        destination_ids: form
            .all("destination")
            .map(|d| d.parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| Error::BadRequest("destination: not a number".into()))?,
        delivery: Delivery::Instant,
    };
    // Its own digest, or as each destination says.
    let delivery = match form.text("delivery") {
        "digest" => crate::destinations::digest_policy(&form).and_then(|policy| {
            Delivery::digest(policy).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))
        }),
        _ => Ok(Delivery::Instant),
    };
    let mut fields = fields;
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err((status, message)) => {
            let destinations = state.store.destinations(me.id()).await?;
            fields.delivery = Delivery::Instant;
            let view = edit_view(&state, &me, id, fields, &destinations, Some(message));
            return view::page(status, &view);
        }
    };
    fields.delivery = delivery.clone();
    // The builder writes the condition from its fields: the form again, not saved.
    if !form.text("build").is_empty() {
        let destinations = state.store.destinations(me.id()).await?;
        let built = builder_of(&form)
            .and_then(|b| b.condition().map_err(|e| e.to_string()).map(|c| (b, c)));
        return match built {
            Ok((builder, condition)) => {
                fields.condition = condition.to_string();
                let found = warnings(&state, me.id(), &condition).await?;
                let mut view = edit_view(&state, &me, id, fields, &destinations, None);
                view.warnings = found;
                view.builder = BuilderForm::new(&state, &builder, None);
                view.builder.written = true;
                view::page(StatusCode::OK, &view)
            }
            Err(message) => {
                let builder = builder_of(&form).unwrap_or_default();
                let mut view = edit_view(
                    &state,
                    &me,
                    id,
                    fields,
                    &destinations,
                    Some(format!("The form cannot make a condition: {message}")),
                );
                view.builder = BuilderForm::new(&state, &builder, None);
                view::page(StatusCode::BAD_REQUEST, &view)
            }
        };
    }
    let condition = match Condition::parse(&fields.condition) {
        Ok(condition) => condition,
        Err(err) => {
            let destinations = state.store.destinations(me.id()).await?;
            let message = format!(
                "The condition has an error at line {}, column {}: {}",
                err.line, err.column, err.message
            );
            let at = error_at(&fields.condition, err.line, err.column);
            let mut view = edit_view(&state, &me, id, fields, &destinations, Some(message));
            view.error_at = at;
            return view::page(StatusCode::BAD_REQUEST, &view);
        }
    };
    // Previewed, not saved: the form again, with what it would have sent.
    if !form.text("preview").is_empty() {
        let destinations = state.store.destinations(me.id()).await?;
        let found = warnings(&state, me.id(), &condition).await?;
        let preview = preview_of(&state, &me, condition).await?;
        let mut view = edit_view(&state, &me, id, fields, &destinations, None);
        view.warnings = found;
        view.preview = Some(preview);
        return view::page(StatusCode::OK, &view);
    }
    // Warned about before it is saved; saved anyway once the owner says so.
    let found = warnings(&state, me.id(), &condition).await?;
    if !found.is_empty() && !form.checked("despite_warnings") {
        let destinations = state.store.destinations(me.id()).await?;
        let mut view = edit_view(&state, &me, id, fields, &destinations, None);
        view.warnings = found;
        view.confirm = true;
        return view::page(StatusCode::OK, &view);
    }
    let input = FilterInput {
        name: fields.name.clone(),
        condition,
        destination_ids: fields.destination_ids.clone(),
        delivery,
        enabled: fields.enabled,
    };
    let saved = match id {
        None => state.store.create_filter(me.id(), &input).await,
        Some(id) => state.store.update_filter(me.id(), id, &input).await,
    };
    match for_form(saved)? {
        Ok(_) => Ok(see_other(routes::FILTERS)),
        Err((status, message)) => {
            let destinations = state.store.destinations(me.id()).await?;
            let view = edit_view(&state, &me, id, fields, &destinations, Some(message));
            view::page(status, &view)
        }
    }
}

async fn delete(
    State(state): State<AppState>,
    me: CurrentUser,
    Path(id): Path<i64>,
    _form: Form,
) -> Result<Response, Error> {
    state.store.delete_filter(me.id(), id).await?;
    Ok(see_other(routes::FILTERS))
}
