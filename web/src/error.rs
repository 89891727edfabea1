//! The web crate's error type. Handlers return `Result<_, Error>` and use `?` on store calls;
//! the mapping from store errors to statuses lives here, once. Internal causes are logged
//! and never shown: the client sees a generic page.

use askama::Template;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use tidings_store::StoreError;

use crate::routes;
use crate::view::Nav;

/// How long a client told [`Error::Busy`] should wait, in seconds.
const BUSY_RETRY_SECS: u64 = 5;

/// What can go wrong serving a page.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such page, or the row belongs to someone else.
    #[error("not found")]
    NotFound,
    /// The page needs a signed-in user.
    #[error("sign-in required")]
    SignInRequired,
    /// A signed-in user who is not an admin asked for an admin page.
    #[error("admins only")]
    Forbidden,
    /// A POST without the session's CSRF token.
    #[error("the form was stale or not sent from this site")]
    Csrf,
    /// The input was refused; the text is for the user.
    #[error("{0}")]
    BadRequest(String),
    /// The change clashes with existing data; the text is for the user.
    #[error("{0}")]
    Conflict(String),
    /// A rate limit refused the request; the text is for the user.
    #[error("{0}")]
    TooMany(String),
    /// A genuine link that is too old; the text is for the user.
    #[error("{0}")]
    Expired(String),
    /// Too much password hashing is queued already; the client should retry shortly.
    #[error("busy")]
    Busy,
    /// Something the page needs cannot be reached (the sign-in provider); the text is for
    /// the user.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; the text is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Error::NotFound,
            StoreError::Busy => Error::Busy,
            StoreError::Invalid { field, reason } => {
                Error::BadRequest(format!("{field}: {reason}"))
            }
            StoreError::Conflict { constraint } => Error::Conflict(conflict_message(&constraint)),
            StoreError::RateLimited { reason } => Error::TooMany(reason),
            StoreError::Expired { what } => Error::Expired(format!(
                "{what} has expired. Sign in to manage your filters and destinations instead."
            )),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<askama::Error> for Error {
    fn from(err: askama::Error) -> Self {
        Error::Internal(format!("rendering a template: {err}"))
    }
}

/// Says in words what clashed. SQLite names columns (`users.username`), PostgreSQL names
/// constraints (`users_username_key`); both start with the table.
fn conflict_message(constraint: &str) -> String {
    let table = constraint
        .split(['.', ','])
        .next()
        .unwrap_or_default()
        .trim();
    let message = if constraint == tidings_store::CONFIRMED_ADDRESS {
        "That address is confirmed by another account, and an address belongs to one account. \
         If it is yours, remove it from the other account first."
    } else if table == "users" || constraint.starts_with("users_") {
        "That username is taken; choose another."
    } else if table == "default_filters" || constraint.starts_with("default_filters_") {
        "There is a default filter with that name already."
    } else if table == "destinations" || constraint.starts_with("destinations_") {
        "You already have that address."
    } else if table == "filters" || constraint.starts_with("filters_") {
        "You already have a filter with that name."
    } else {
        "That clashes with something that changed meanwhile; reload and try again."
    };
    message.to_string()
}

impl Error {
    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NotFound => StatusCode::NOT_FOUND,
            Error::SignInRequired => StatusCode::SEE_OTHER,
            Error::Csrf => StatusCode::FORBIDDEN,
            Error::Forbidden => StatusCode::FORBIDDEN,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Conflict(_) => StatusCode::CONFLICT,
            Error::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Expired(_) => StatusCode::GONE,
            Error::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message to show beside a form, when the error is the user's to fix.
    pub(crate) fn form_message(&self) -> Option<String> {
        match self {
            Error::BadRequest(message) | Error::Conflict(message) | Error::TooMany(message) => {
                Some(message.clone())
            }
            _ => None,
        }
    }
}

/// Splits a store result for a form handler: `Ok(Ok(value))` on success, `Ok(Err((status,
/// message)))` when the user should fix the form, `Err` for everything else.
pub(crate) fn for_form<T>(
    result: Result<T, StoreError>,
) -> Result<Result<T, (StatusCode, String)>, Error> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(err) => {
            let err = Error::from(err);
            match err.form_message() {
                Some(message) => Ok(Err((err.status(), message))),
                None => Err(err),
            }
        }
    }
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorView {
    nav: Nav,
    title: &'static str,
    message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let (title, message) = match &self {
            Error::SignInRequired => return Redirect::to(routes::SIGNIN).into_response(),
            Error::NotFound => ("Not found", "There is nothing here.".to_string()),
            Error::Forbidden => (
                "Admins only",
                "This page is for the hub's admins.".to_string(),
            ),
            Error::Csrf => (
                "Form expired",
                "This form was stale or was not sent from this site. Go back, reload the page and try again."
                    .to_string(),
            ),
            Error::BadRequest(message) => ("Bad request", message.clone()),
            Error::Conflict(message) => ("Conflict", message.clone()),
            Error::TooMany(message) => ("Too many requests", message.clone()),
            Error::Expired(message) => ("Link expired", message.clone()),
            Error::Unavailable(message) => ("Unavailable", message.clone()),
            Error::Busy => (
                "Busy",
                format!("The server is checking many passwords at once. Try again in {BUSY_RETRY_SECS} seconds."),
            ),
            Error::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                (
                    "Something went wrong",
                    "The server could not complete this request. Try again later.".to_string(),
                )
            }
        };
        let view = ErrorView {
            nav: Nav::hidden(),
            title,
            message,
        };
        let mut response = match view.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(%err, "rendering the error page");
                (status, title).into_response()
            }
        };
        if matches!(self, Error::Busy) {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(BUSY_RETRY_SECS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses() {
        assert_eq!(
            Error::from(StoreError::NotFound).status(),
            StatusCode::NOT_FOUND
        );
        let invalid = Error::from(StoreError::Invalid {
            field: "name",
            reason: "too long".into(),
        });
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
        assert_eq!(invalid.form_message().as_deref(), Some("name: too long"));
        let taken = Error::from(StoreError::Conflict {
            constraint: "users.username".into(),
        });
        assert_eq!(taken.status(), StatusCode::CONFLICT);
        assert!(taken
            .form_message()
            .unwrap_or_default()
            .contains("username"));
        let hash = Error::from(StoreError::Hash("secret detail".into()));
        assert_eq!(hash.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(hash.form_message(), None);
    }

    #[test]
    fn conflicts_read_both_backends() {
        for c in ["filters.user_id, filters.name", "filters_user_id_name_key"] {
            assert!(conflict_message(c).contains("filter"), "{c}");
        }
        for c in [
            "destinations.user_id, destinations.channel, destinations.address",
            "destinations_user_id_channel_address_key",
        ] {
            assert!(conflict_message(c).contains("address"), "{c}");
        }
        assert!(conflict_message("users_username_key").contains("username"));
        assert!(conflict_message(tidings_store::CONFIRMED_ADDRESS).contains("another account"));
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = Error::Internal("password=hunter2".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("Something went wrong"), "{body}");
        assert!(!body.contains("hunter2"), "{body}");
    }
}
