//! The route table the mail's links come from: the paths of the web pages a notification
//! points at, and the links built on them. The web router mounts these same constants, so a
//! link in a mail cannot point at a page that does not exist (a web test resolves every
//! link a mail carries against the router).

/// The page that confirms a destination (GET shows it, POST confirms).
pub const CONFIRM: &str = "/confirm/{token}";
/// The user's destinations, where a code sent to a chat destination is typed in.
pub const DESTINATIONS: &str = "/destinations";
/// A filter's Atom feed; the token ends in `.atom` (see [`Links::feed`]).
pub const FEED: &str = "/feeds/{token}";
/// The user's filters.
pub const FILTERS: &str = "/filters";
/// One filter's edit page.
pub const FILTER: &str = "/filters/{id}";
/// What was sent to the user.
pub const NOTIFICATIONS: &str = "/notifications";
/// The unsubscribe page (GET) and its RFC 8058 one-click action (POST, same URL).
pub const UNSUBSCRIBE: &str = "/unsubscribe/{token}";

/// Links under one public base URL (`https://tidings.example.org`, no trailing slash
/// needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    base: String,
}

impl Links {
    /// Links under `base_url`.
    pub fn new(base_url: &str) -> Links {
        Links {
            base: base_url.trim_end_matches('/').to_string(),
        }
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The confirmation page of the destination that `token` was issued for.
    pub fn confirm(&self, token: &str) -> String {
        format!("{}{}", self.base, CONFIRM.replace("{token}", token))
    }

    /// The unsubscribe page of the notification whose link carries `token`.
    pub fn unsubscribe(&self, token: &str) -> String {
        format!("{}{}", self.base, UNSUBSCRIBE.replace("{token}", token))
    }

    /// The RFC 8058 one-click URL (posted to by mail clients): the unsubscribe URL.
    pub fn one_click(&self, token: &str) -> String {
        self.unsubscribe(token)
    }

    /// The destinations page.
    pub fn destinations(&self) -> String {
        format!("{}{DESTINATIONS}", self.base)
    }

    /// The filters page.
    pub fn filters(&self) -> String {
        format!("{}{FILTERS}", self.base)
    }

    /// One filter's page.
    pub fn filter(&self, id: i64) -> String {
        format!("{}{}", self.base, FILTER.replace("{id}", &id.to_string()))
    }

    /// A filter's Atom feed, whose secret is `token` (`Store::feed_token`).
    pub fn feed(&self, token: &str) -> String {
        let path = FEED.replace("{token}", token);
        format!("{}{path}.atom", self.base)
    }

    /// The page listing the user's notifications.
    pub fn notifications(&self) -> String {
        format!("{}{NOTIFICATIONS}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fill_the_patterns_under_the_base() {
        let links = Links::new("https://t.example.org/");
        assert_eq!(links.confirm("abc"), "https://t.example.org/confirm/abc");
        assert_eq!(
            links.unsubscribe("abc"),
            "https://t.example.org/unsubscribe/abc"
        );
        assert_eq!(links.one_click("abc"), links.unsubscribe("abc"));
        assert_eq!(links.filters(), "https://t.example.org/filters");
        assert_eq!(links.filter(7), "https://t.example.org/filters/7");
        assert_eq!(links.notifications(), "https://t.example.org/notifications");
        assert_eq!(
            links.feed("7.abc"),
            "https://t.example.org/feeds/7.abc.atom"
        );
    }
}
