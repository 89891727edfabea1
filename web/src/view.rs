//! What every page shares: the navigation bar's data, rendering a view into a response, and
//! showing times. Views themselves sit beside their handlers.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::session::{CurrentUser, Visitor};
use crate::{AppState, Error};

/// The data the base layout needs.
pub(crate) struct Nav {
    /// Show the links at all (error pages do not know who is asking).
    pub shown: bool,
    /// Whether the session is signed in.
    pub signed_in: bool,
    /// The signed-in user's name, when known.
    pub username: Option<String>,
    /// The session's CSRF token, for the sign-out button.
    pub csrf: String,
    /// Whether to link the mailbox folder.
    pub mailbox: bool,
    /// Whether to offer sign-up.
    pub signup: bool,
    /// Whether to link the admin pages (the signed-in user is an admin).
    pub admin: bool,
}

impl Nav {
    /// For pages that need sign-in.
    pub fn user(state: &AppState, current: &CurrentUser) -> Nav {
        Nav {
            username: Some(current.user.username.clone()),
            admin: current.user.is_admin,
            ..Nav::visitor(state, &current.visitor)
        }
    }

    /// For pages anyone may see.
    pub fn visitor(state: &AppState, visitor: &Visitor) -> Nav {
        Nav {
            shown: true,
            signed_in: visitor.user_id().is_some(),
            username: None,
            csrf: visitor.csrf().to_string(),
            mailbox: state.config.mailbox_dir.is_some(),
            signup: state.config.signup_allowed(),
            admin: false,
        }
    }

    /// For pages rendered without knowing the session.
    pub fn hidden() -> Nav {
        Nav {
            shown: false,
            signed_in: false,
            username: None,
            csrf: String::new(),
            mailbox: false,
            signup: false,
            admin: false,
        }
    }
}

/// Renders a view as an HTML response with this status.
pub(crate) fn page(status: StatusCode, view: &impl Template) -> Result<Response, Error> {
    Ok((status, Html(view.render()?)).into_response())
}

/// Renders a view as a 200 HTML response.
pub(crate) fn ok(view: &impl Template) -> Result<Response, Error> {
    page(StatusCode::OK, view)
}

/// A time (ms since the epoch) as `2024-05-01 12:34 UTC`.
pub fn when(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = tidings_rules::time::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// An optional time, or a dash.
pub(crate) fn when_opt(ms: Option<i64>) -> String {
    ms.map(when).unwrap_or_else(|| "—".to_string())
}

/// The names in an outbox row's filters column (`[[id, name], …]`), joined.
pub(crate) fn filter_names(filters_json: &str) -> String {
    serde_json::from_str::<Vec<(i64, String)>>(filters_json)
        .map(|filters| {
            filters
                .into_iter()
                .map(|(_, name)| name)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(when(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(when(1_714_566_896_000), "2024-05-01 12:34 UTC");
        assert_eq!(when(-60_000), "1969-12-31 23:59 UTC");
        assert_eq!(when_opt(None), "—");
    }

    #[test]
    fn lists_filter_names() {
        assert_eq!(filter_names(r#"[[1,"mine"],[2,"builds"]]"#), "mine, builds");
        assert_eq!(filter_names("not json"), "");
    }
}
