//! The gallery (issue 11): starting filters — FMN's defaults, the mirror operators' sync
//! events, a few more — each added with one click (a POST with the session's CSRF token),
//! sending to every confirmed destination. Each can be previewed first: what it would
//! have sent in the last 7 days.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tidings_rules::Condition;
use tidings_store::{Delivery, FilterInput, StoreError};

use crate::auth::see_other;
use crate::preview::MessageLine;
use crate::session::{CurrentUser, Form};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error};

/// A starting filter.
pub struct Starter {
    /// Its key in the form.
    pub key: &'static str,
    /// The name it is added under.
    pub name: &'static str,
    /// What it is for.
    pub about: &'static str,
    /// Its condition.
    pub condition: &'static str,
}

/// The gallery, in the order shown.
pub const STARTERS: &[Starter] = &[
    Starter {
        key: "my-packages",
        name: "My packages",
        about: "Anything about a package you (or your groups) own: FMN's first default.",
        condition: "packages has $my_packages",
    },
    Starter {
        key: "about-me",
        name: "About me",
        about: "Events that name you, except what you did yourself: FMN's second default.",
        condition: "usernames has $me and not agent == $me",
    },
    Starter {
        key: "failed-builds",
        name: "My failed builds",
        about: "Koji builds of your packages that failed (build state 3).",
        condition: r#"topic ~ "org.fedoraproject.*.buildsys.build.state.change" and packages has $my_packages and body.new == 3"#,
    },
    Starter {
        key: "update-comments",
        name: "Comments on my updates",
        about: "Bodhi comments on updates that concern you, by others.",
        condition: r#"topic ~ "org.fedoraproject.*.bodhi.update.comment" and usernames has $me and not agent == $me"#,
    },
    Starter {
        key: "negative-karma",
        name: "Negative karma on my packages",
        about: "Bodhi comments with negative karma on updates of your packages.",
        condition: r#"topic ~ "org.fedoraproject.*.bodhi.update.comment" and body.comment.karma < 0 and packages has $my_packages"#,
    },
    Starter {
        key: "followed",
        name: "People and packages I follow",
        about: "Anything about the people and packages you follow on My packages.",
        condition: "packages has any $followed_packages or usernames has any $followed_users",
    },
    Starter {
        key: "mirror-sync",
        name: "Mirror: updates synced",
        about: "For mirror operators: each finished sync of the updates and updates-testing repositories (the tree below /pub/fedora/linux/updates/).",
        condition: r#"topic ~ "org.fedoraproject.*.bodhi.updates.fedora.sync" and body.repo in ["updates", "updates-testing"]"#,
    },
    Starter {
        key: "mirror-stable-40",
        name: "Mirror: stable updates, Fedora 40 and later",
        about: "For mirror operators: syncs of the stable updates repository of releases 40 and later (numbers compare as numbers).",
        condition: r#"topic ~ "org.fedoraproject.*.bodhi.updates.fedora.sync" and body.repo == "updates" and body.release >= 40"#,
    },
    Starter {
        key: "infra-trouble",
        name: "Infrastructure trouble",
        about: "Warnings and errors from the infrastructure apps.",
        condition: r#"app in ["ansible", "nagios", "fedimg"] and severity >= warning"#,
    },
];

/// The gallery routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route(routes::FILTER_GALLERY, get(page).post(add))
}

#[derive(Deserialize)]
struct Params {
    preview: Option<String>,
}

struct Shown {
    starter: &'static Starter,
    preview_link: String,
    preview: Option<(usize, Vec<MessageLine>)>,
}

#[derive(Template)]
#[template(path = "web/filter_gallery.html")]
struct GalleryView {
    nav: Nav,
    csrf: String,
    starters: Vec<Shown>,
}

async fn page(
    State(state): State<AppState>,
    me: CurrentUser,
    Query(params): Query<Params>,
) -> Result<Response, Error> {
    let mut starters = Vec::new();
    for starter in STARTERS {
        let preview = match params.preview.as_deref() {
            Some(key) if key == starter.key => {
                let condition = parse(starter)?;
                let variables = state.store.variables(me.id()).await?;
                let found = crate::preview::preview(
                    &state.store,
                    condition,
                    variables,
                    tidings_store::now_ms(),
                )
                .await?;
                Some((
                    found.count,
                    found.latest.iter().map(MessageLine::from).collect(),
                ))
            }
            _ => None,
        };
        starters.push(Shown {
            starter,
            preview_link: format!(
                "{}?preview={}#{}",
                routes::FILTER_GALLERY,
                starter.key,
                starter.key
            ),
            preview,
        });
    }
    view::ok(&GalleryView {
        nav: Nav::user(&state, &me),
        csrf: me.visitor.csrf().to_string(),
        starters,
    })
}

pub(crate) fn parse(starter: &Starter) -> Result<Condition, Error> {
    Condition::parse(starter.condition)
        .map_err(|e| Error::Internal(format!("gallery filter {}: {e}", starter.key)))
}

/// Adds the chosen starter as a filter of the user's, to every confirmed destination,
/// under its name (or its name and a number, when the user has one so named).
async fn add(
    State(state): State<AppState>,
    me: CurrentUser,
    form: Form,
) -> Result<Response, Error> {
    let filter = add_starter(&state, me.id(), form.text("starter")).await?;
    Ok(see_other(&routes::filter(filter.id)))
}

/// Adds the starter called `key` as a filter of `user_id`'s (the page's button and
/// `POST /api/v1/gallery/{key}`).
pub(crate) async fn add_starter(
    state: &AppState,
    user_id: i64,
    key: &str,
) -> Result<tidings_store::Filter, Error> {
    let starter = STARTERS.iter().find(|s| s.key == key).ok_or_else(|| {
        Error::BadRequest(format!("starter: no starting filter is called {key:?}"))
    })?;
    let destinations = state.store.destinations(user_id).await?;
    let mut input = FilterInput {
        name: starter.name.to_string(),
        condition: parse(starter)?,
        destination_ids: destinations
            .iter()
            .filter(|d| d.is_confirmed())
            .map(|d| d.id)
            .collect(),
        delivery: Delivery::Instant,
        enabled: true,
    };
    for n in 2..=20 {
        match state.store.create_filter(user_id, &input).await {
            Ok(filter) => {
                tracing::info!(
                    user = user_id,
                    filter = filter.id,
                    starter = starter.key,
                    "gallery filter added"
                );
                return Ok(filter);
            }
            Err(StoreError::Conflict { .. }) => input.name = format!("{} ({n})", starter.name),
            Err(err) => return Err(err.into()),
        }
    }
    Err(Error::Conflict(format!(
        "name: you have too many filters called {:?} already",
        starter.name
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_starter_reads_and_prints_as_written() {
        let mut keys = std::collections::BTreeSet::new();
        for s in STARTERS {
            assert!(keys.insert(s.key), "{} twice", s.key);
            let c = Condition::parse(s.condition).unwrap_or_else(|e| panic!("{}: {e}", s.key));
            assert_eq!(c.to_string(), s.condition);
        }
    }
}
