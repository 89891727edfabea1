//! Every URL of the site in one place: the path constants, the functions that build links
//! (templates call them too), and the root router that mounts each area's routes with the
//! layers they need.

use axum::extract::{FromRequestParts, Path};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::{
    admin, api, api_v1, auth, destinations, feeds, filters, gallery, home, mailbox, me, oidc,
    ownership, session, settings, tokens, unsubscribe, why, AppState,
};

// The pages mail links point at come from the route table the renderer builds mail links
// with, so a mail cannot link to a page the router does not have.
pub use tidings_rules::links::{
    CONFIRM, DESTINATIONS, FEED, FILTER, FILTERS, NOTIFICATIONS, UNSUBSCRIBE,
};

/// The dashboard.
pub const HOME: &str = "/";
/// Account creation.
pub const SIGNUP: &str = "/signup";
/// Sign-in.
pub const SIGNIN: &str = "/signin";
/// Sign-out (POST).
pub const SIGNOUT: &str = "/signout";
/// The signed-in user's account: password change, sign out everywhere.
pub const ACCOUNT: &str = "/account";
/// Changing the signed-in user's password (POST).
pub const ACCOUNT_PASSWORD: &str = "/account/password";
/// Ending every session of the signed-in user, this one too (POST).
pub const ACCOUNT_SIGNOUT_EVERYWHERE: &str = "/account/signout-everywhere";
/// The signed-in user's packages, groups and follows.
pub const ME: &str = "/me";
/// Following a person or package (POST).
pub const FOLLOWS: &str = "/me/follows";
/// Ending a follow (POST).
pub const FOLLOW_DELETE: &str = "/me/follows/delete";
/// Everything stored about the signed-in user, as a JSON download.
pub const ACCOUNT_EXPORT: &str = "/account/export";
/// Deleting the signed-in user's account and data (POST).
pub const ACCOUNT_DELETE: &str = "/account/delete";
/// Deleting a destination (POST).
pub const DESTINATION_DELETE: &str = "/destinations/{id}/delete";
/// Sending an unconfirmed destination a fresh confirmation link (POST).
pub const DESTINATION_RESEND: &str = "/destinations/{id}/resend";
/// Mutes what a notification is about for 30 days, from its unsubscribe page (POST).
pub const UNSUBSCRIBE_MUTE: &str = "/unsubscribe/{token}/mute";
/// Ends a mute made from an unsubscribe page (POST).
pub const UNSUBSCRIBE_UNMUTE: &str = "/unsubscribe/{token}/unmute";
/// Switches back on the filters an unsubscribe link switched off (POST).
pub const UNSUBSCRIBE_UNDO: &str = "/unsubscribe/{token}/undo";
/// Ends one of the signed-in user's mutes (POST).
pub const MUTE_DELETE: &str = "/mutes/{id}/delete";
/// How one of the user's destinations gets its notifications: at once or digests (POST).
pub const DESTINATION_DELIVERY: &str = "/destinations/{id}/delivery";
/// The signed-in user's settings: time zone, quiet hours, default delivery, pausing.
pub const SETTINGS: &str = "/settings";
/// The user's time zone and quiet hours (POST).
pub const SCHEDULE: &str = "/settings/schedule";
/// The delivery the user's new destinations start with (POST).
pub const DEFAULT_DELIVERY: &str = "/settings/delivery";
/// Pausing every notification for a while (POST).
pub const PAUSE: &str = "/settings/pause";
/// Ending a pause (POST).
pub const RESUME: &str = "/settings/resume";
/// Confirms one of the user's chat destinations by the code sent to it (POST).
pub const DESTINATION_CONFIRM: &str = "/destinations/{id}/confirm";
/// A new filter.
pub const FILTER_NEW: &str = "/filters/new";
/// Deleting a filter (POST).
pub const FILTER_DELETE: &str = "/filters/{id}/delete";
/// Replacing a filter's feed URL, which ends the old one (POST).
pub const FILTER_FEED: &str = "/filters/{id}/feed";
/// Why a message did or did not match each of the user's filters (`?message=ID`).
pub const FILTER_WHY: &str = "/filters/why";
/// What a saved filter would have sent in the last 7 days.
pub const FILTER_PREVIEW: &str = "/filters/{id}/preview";
/// Starting filters to add with one click.
pub const FILTER_GALLERY: &str = "/filters/gallery";
/// The local mailbox folder.
pub const MAILBOX: &str = "/mailbox";
/// One mail in the local mailbox folder.
pub const MAILBOX_MAIL: &str = "/mailbox/{name}";
/// Liveness and database check.
pub const HEALTHZ: &str = "/healthz";
/// Prometheus counters (on the metrics listener only, not on the site).
pub const METRICS: &str = "/metrics";
/// Publishers post fedmsg envelopes here.
pub const API_MESSAGES: &str = "/api/v1/messages";
/// Admins and scripts PUT ownership imports here (`?mode=merge|replace`).
pub const API_OWNERSHIP: &str = "/api/v1/ownership";
/// The OpenAPI document of `/api/v1`.
pub const API_OPENAPI: &str = "/api/v1/openapi.json";
/// The personal-token owner (`/api/v1`, personal access tokens).
pub const API_ME: &str = "/api/v1/me";
/// The owner's filters.
pub const API_FILTERS: &str = "/api/v1/filters";
/// One of the owner's filters.
pub const API_FILTER: &str = "/api/v1/filters/{id}";
/// The owner's destinations.
pub const API_DESTINATIONS: &str = "/api/v1/destinations";
/// One of the owner's destinations.
pub const API_DESTINATION: &str = "/api/v1/destinations/{id}";
/// The owner's latest notifications.
pub const API_NOTIFICATIONS: &str = "/api/v1/notifications";
/// The owner's pause of everything.
pub const API_PAUSE: &str = "/api/v1/pause";
/// The owner's settings: time zone, quiet hours, default delivery, pause.
pub const API_SETTINGS: &str = "/api/v1/settings";
/// The owner's time zone and quiet hours (PUT).
pub const API_SCHEDULE: &str = "/api/v1/settings/schedule";
/// The delivery the owner's new destinations start with (PUT).
pub const API_DEFAULT_DELIVERY: &str = "/api/v1/settings/delivery";
/// How one of the owner's destinations gets its notifications (PUT).
pub const API_DESTINATION_DELIVERY: &str = "/api/v1/destinations/{id}/delivery";
/// Confirming a chat destination by the code sent to it (POST).
pub const API_DESTINATION_CONFIRM: &str = "/api/v1/destinations/{id}/confirm";
/// Sending an unconfirmed destination a fresh link or code (POST).
pub const API_DESTINATION_RESEND: &str = "/api/v1/destinations/{id}/resend";
/// The owner's follows (GET) and a new one (POST).
pub const API_FOLLOWS: &str = "/api/v1/follows";
/// Ending a follow (DELETE).
pub const API_FOLLOW: &str = "/api/v1/follows/{kind}/{name}";
/// The owner's running mutes (GET) and a new one (POST).
pub const API_MUTES: &str = "/api/v1/mutes";
/// Ending a mute (DELETE).
pub const API_MUTE: &str = "/api/v1/mutes/{id}";
/// The owner's personal access tokens (GET) and a new one (POST).
pub const API_TOKENS: &str = "/api/v1/tokens";
/// Revoking one (DELETE).
pub const API_TOKEN: &str = "/api/v1/tokens/{id}";
/// Everything stored about the owner.
pub const API_EXPORT: &str = "/api/v1/export";
/// Every browser session of the owner (DELETE: sign out everywhere).
pub const API_SESSIONS: &str = "/api/v1/sessions";
/// The default filters offered to the owner.
pub const API_OFFERED: &str = "/api/v1/defaults";
/// Adding offered default filters (POST).
pub const API_OFFERED_ADD: &str = "/api/v1/defaults/add";
/// No longer offering them (POST).
pub const API_OFFERED_DISMISS: &str = "/api/v1/defaults/dismiss";
/// What a condition would have sent in the last 7 days (POST).
pub const API_PREVIEW: &str = "/api/v1/preview";
/// What a saved filter would have sent in the last 7 days.
pub const API_FILTER_PREVIEW: &str = "/api/v1/filters/{id}/preview";
/// A filter's feed URL (GET) and a new one that ends the old (POST).
pub const API_FILTER_FEED: &str = "/api/v1/filters/{id}/feed";
/// Why a message did or did not match each of the owner's filters (`?message=ID`).
pub const API_WHY: &str = "/api/v1/why";
/// The starting filters.
pub const API_GALLERY: &str = "/api/v1/gallery";
/// Adding one (POST).
pub const API_GALLERY_ADD: &str = "/api/v1/gallery/{key}";
/// The builder: its fields to a condition (POST), a condition to its fields (GET).
pub const API_BUILDER: &str = "/api/v1/builder";
/// The apps and topics the catalog knows.
pub const API_CATALOG: &str = "/api/v1/catalog";
/// Default filters (admin): the list (GET) and a new one (POST).
pub const API_ADMIN_DEFAULTS: &str = "/api/v1/admin/defaults";
/// One default filter (admin).
pub const API_ADMIN_DEFAULT: &str = "/api/v1/admin/defaults/{id}";
/// What a default filter would have matched for some users (admin, POST).
pub const API_ADMIN_DEFAULTS_PREVIEW: &str = "/api/v1/admin/defaults/preview";
/// Users, searched by name (admin, `?q=…&page=…`).
pub const API_ADMIN_USERS: &str = "/api/v1/admin/users";
/// One user with their destinations and filters (admin).
pub const API_ADMIN_USER: &str = "/api/v1/admin/users/{id}";
/// Disabling a user (admin, POST).
pub const API_ADMIN_USER_DISABLE: &str = "/api/v1/admin/users/{id}/disable";
/// Enabling a user (admin, POST).
pub const API_ADMIN_USER_ENABLE: &str = "/api/v1/admin/users/{id}/enable";
/// Dead notifications (admin).
pub const API_ADMIN_DEAD: &str = "/api/v1/admin/dead";
/// Queueing dead notifications again (admin, POST).
pub const API_ADMIN_DEAD_RETRY: &str = "/api/v1/admin/dead/retry";
/// Deleting dead notifications (admin, POST).
pub const API_ADMIN_DEAD_DISCARD: &str = "/api/v1/admin/dead/discard";
/// The charts' numbers (admin, `?hours=…`).
pub const API_ADMIN_CHARTS: &str = "/api/v1/admin/charts";
/// The schema catalog: loaded and skipped entries (admin).
pub const API_ADMIN_CATALOG: &str = "/api/v1/admin/catalog";
/// The live bus as server-sent events (admin, `?topic=GLOB`).
pub const API_ADMIN_LIVE: &str = "/api/v1/admin/live";
/// Making a personal access token (POST, account page).
pub const ACCOUNT_TOKENS: &str = "/account/tokens";
/// Revoking one (POST).
pub const ACCOUNT_TOKEN_REVOKE: &str = "/account/tokens/{id}/revoke";
/// The stylesheet.
pub const STYLE: &str = "/style.css";
/// Starts a sign-in through the OpenID Connect provider.
pub const SIGNIN_OIDC: &str = "/signin/oidc";
/// Where the OpenID Connect provider sends the browser back (the redirect URI).
pub const SIGNIN_OIDC_CALLBACK: &str = "/signin/oidc/callback";
/// The admin pages' index.
pub const ADMIN: &str = "/admin";
/// The default filters (GET) and a new one (POST).
pub const ADMIN_DEFAULTS: &str = "/admin/defaults";
/// One default filter: its form (GET) and its update (POST).
pub const ADMIN_DEFAULT: &str = "/admin/defaults/{id}";
/// Deleting a default filter (POST).
pub const ADMIN_DEFAULT_DELETE: &str = "/admin/defaults/{id}/delete";
/// Users, searched by name (`?q=…&page=…`).
pub const ADMIN_USERS: &str = "/admin/users";
/// One user: account state, destinations and filters (read-only).
pub const ADMIN_USER: &str = "/admin/users/{id}";
/// Disabling a user (POST).
pub const ADMIN_USER_DISABLE: &str = "/admin/users/{id}/disable";
/// Enabling a user (POST).
pub const ADMIN_USER_ENABLE: &str = "/admin/users/{id}/enable";
/// Dead notifications.
pub const ADMIN_DEAD: &str = "/admin/dead";
/// Queueing dead notifications again (POST, `id` fields).
pub const ADMIN_DEAD_RETRY: &str = "/admin/dead/retry";
/// Deleting dead notifications (POST, `id` fields).
pub const ADMIN_DEAD_DISCARD: &str = "/admin/dead/discard";
/// Charts of the last 48 hours.
pub const ADMIN_CHARTS: &str = "/admin/charts";
/// The schema catalog: loaded and skipped entries.
pub const ADMIN_CATALOG: &str = "/admin/catalog";
/// The live bus view (`?topic=GLOB`).
pub const ADMIN_LIVE: &str = "/admin/live";
/// The live bus view's server-sent events (`?topic=GLOB`).
pub const ADMIN_LIVE_EVENTS: &str = "/admin/live/events";
/// The live bus view's script.
pub const ADMIN_LIVE_JS: &str = "/admin/live.js";
/// Adding offered default filters to the signed-in user's filters (POST, `id` fields).
pub const DEFAULTS_ADD: &str = "/defaults/add";
/// No longer offering default filters to the signed-in user (POST, `id` fields).
pub const DEFAULTS_DISMISS: &str = "/defaults/dismiss";

/// Link to a destination's delete action.
pub fn destination_delete(id: i64) -> String {
    DESTINATION_DELETE.replace("{id}", &id.to_string())
}

/// Link to a filter's edit page.
pub fn filter(id: i64) -> String {
    FILTER.replace("{id}", &id.to_string())
}

/// Link to a filter's delete action.
pub fn filter_delete(id: i64) -> String {
    FILTER_DELETE.replace("{id}", &id.to_string())
}

/// Where a filter's feed URL is replaced.
pub fn filter_feed(id: i64) -> String {
    FILTER_FEED.replace("{id}", &id.to_string())
}

/// The why-page for one archived message (its bus id).
pub fn filter_why(msg_id: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("message", msg_id)
        .finish();
    format!("{FILTER_WHY}?{query}")
}

/// A default filter's admin page.
pub fn admin_default(id: i64) -> String {
    ADMIN_DEFAULT.replace("{id}", &id.to_string())
}

/// Where a default filter is deleted.
pub fn admin_default_delete(id: i64) -> String {
    ADMIN_DEFAULT_DELETE.replace("{id}", &id.to_string())
}

/// A user's admin page.
pub fn admin_user(id: i64) -> String {
    ADMIN_USER.replace("{id}", &id.to_string())
}

/// Where a user is disabled.
pub fn admin_user_disable(id: i64) -> String {
    ADMIN_USER_DISABLE.replace("{id}", &id.to_string())
}

/// Where a user is enabled.
pub fn admin_user_enable(id: i64) -> String {
    ADMIN_USER_ENABLE.replace("{id}", &id.to_string())
}

/// Link to a destination's resend action.
pub fn destination_resend(id: i64) -> String {
    DESTINATION_RESEND.replace("{id}", &id.to_string())
}

/// Where a destination's delivery settings are posted.
pub fn destination_delivery(id: i64) -> String {
    DESTINATION_DELIVERY.replace("{id}", &id.to_string())
}

/// Where a chat destination's code is posted.
pub fn destination_confirm(id: i64) -> String {
    DESTINATION_CONFIRM.replace("{id}", &id.to_string())
}

/// Link to a confirmation page.
pub fn confirm(token: &LinkToken) -> String {
    CONFIRM.replace("{token}", token.as_str())
}

/// Link to an unsubscribe page.
pub fn unsubscribe(token: &LinkToken) -> String {
    UNSUBSCRIBE.replace("{token}", token.as_str())
}

/// One of an unsubscribe page's own actions (`UNSUBSCRIBE_MUTE`, …) for `token`.
pub fn unsubscribe_action(pattern: &str, token: &LinkToken) -> String {
    pattern.replace("{token}", token.as_str())
}

/// Where one of the user's mutes is ended.
pub fn mute_delete(id: i64) -> String {
    MUTE_DELETE.replace("{id}", &id.to_string())
}

/// The secret in a mailed link: 43 URL-safe base64 characters, the shape of
/// `secret::new_token` and of a server-key signature (confirmation, and unsubscribe links
/// of mails queued before issue 9); or an unsubscribe link's 32-character alphanumeric uid,
/// a dot and such a signature. As an extractor it
/// answers anything else with 404 before a handler runs, so no page is ever rendered (or
/// form action built) from a path like `..%2Ffilters%2F3%2Fdelete`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken(String);

impl LinkToken {
    /// The token, if `text` has the shape of one.
    pub fn parse(text: &str) -> Option<LinkToken> {
        let secret = |s: &str| {
            s.len() == 43
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let shaped = match text.split_once('.') {
            Some((uid, signature)) => {
                uid.len() == 32
                    && uid.bytes().all(|b| b.is_ascii_alphanumeric())
                    && secret(signature)
            }
            None => secret(text),
        };
        shaped.then(|| LinkToken(text.to_string()))
    }

    /// The token as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for LinkToken {
    type Rejection = crate::Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, crate::Error> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| crate::Error::NotFound)?;
        LinkToken::parse(&text).ok_or(crate::Error::NotFound)
    }
}

/// Link to one mail in the mailbox (names are checked to be plain file names).
pub fn mailbox_mail(name: &str) -> String {
    MAILBOX_MAIL.replace("{name}", name)
}

/// The whole app. Pages get sessions; the API, the health check and the stylesheet do not.
pub fn router(state: AppState) -> Router {
    let hsts = state.config.hsts();
    let pages = Router::new()
        .merge(home::router())
        .merge(auth::router())
        .merge(destinations::router())
        .merge(filters::router())
        .merge(why::router())
        .merge(gallery::router())
        .merge(me::router())
        .merge(settings::router())
        .merge(tokens::router())
        .merge(feeds::page_router())
        .merge(unsubscribe::router())
        .merge(mailbox::router())
        .merge(oidc::router())
        .merge(admin::router())
        .route(DEFAULTS_ADD, axum::routing::post(admin::add_offered))
        .route(
            DEFAULTS_DISMISS,
            axum::routing::post(admin::dismiss_offered),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::layer,
        ))
        // Pages show personal data: never cache them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    Router::new()
        .merge(pages)
        .merge(api::router())
        .merge(api_v1::router())
        .merge(ownership::router())
        // Feeds are read without a session: the token in the URL is the proof, and the
        // response says how long it may be cached.
        .merge(feeds::router())
        .route(STYLE, get(style))
        .fallback(not_found)
        // A page may set its own (the live bus view allows its script); every other gets this.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Confirmation and unsubscribe URLs carry secrets: never leak them as referrers.
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
        // An https site tells browsers never to use plain http for it (none when http).
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            hsts,
        ))
        .with_state(state)
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/web/style.css"),
    )
}

async fn not_found() -> crate::Error {
    crate::Error::NotFound
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fill_the_patterns() {
        assert_eq!(filter(7), "/filters/7");
        assert_eq!(filter_delete(7), "/filters/7/delete");
        assert_eq!(filter_feed(7), "/filters/7/feed");
        assert_eq!(destination_delete(3), "/destinations/3/delete");
        assert_eq!(destination_resend(3), "/destinations/3/resend");
        let token = LinkToken::parse(&"a-_".repeat(15)[..43]).unwrap_or_else(|| panic!("token"));
        assert_eq!(confirm(&token), format!("/confirm/{}", token.as_str()));
        assert_eq!(
            unsubscribe(&token),
            format!("/unsubscribe/{}", token.as_str())
        );
        assert_eq!(mailbox_mail("a.eml"), "/mailbox/a.eml");
    }

    // Issue 8 item 3: only the shape of a real token is a link token.
    #[test]
    fn link_tokens_have_one_shape() {
        let real = tidings_store::secret::new_token();
        assert!(LinkToken::parse(&real).is_some(), "{real}");
        let uid = "A1".repeat(16);
        let unsubscribe = format!("{uid}.{real}");
        assert!(LinkToken::parse(&unsubscribe).is_some(), "{unsubscribe}");
        for bad in [
            "",
            "..%2Ffilters%2F3%2Fdelete",
            "../filters/3/delete",
            &real[..42],
            &format!("{real}A"),
            &format!("{}/", &real[..42]),
            &format!("{}=", &real[..42]),
            &format!("{}.", &real[..42]),
            &format!("{uid}A.{real}"),
            &format!("{uid}.{real}.{real}"),
            &format!("{}-.{real}", &uid[..31]),
            &format!("{uid}.{}", &real[..42]),
            &format!(".{real}"),
        ] {
            assert!(LinkToken::parse(bad).is_none(), "{bad:?}");
        }
    }
}
