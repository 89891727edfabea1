//! Ownership from the source: every `interval_secs` the notifier role reads dist-git's
//! owner map (`pagure_owner_alias.json`) and the members and sponsors of the configured
//! groups from a FASJSON-compatible API, and writes them as the sync's own rows
//! ([`Store::sync_ownership`]), so a new user's `$my_packages` and `$my_groups` are right
//! at their first sign-in, without an admin.
//!
//! The owner map is `{"rpms": {"php": ["remi", "@php-sig"]}, "modules": {…}, …}`: each
//! namespace's packages and their owners, `@name` a group. `rpms/php` is the package
//! `php` (bare, as Fedora's messages name rpms); other namespaces keep theirs:
//! `modules/php`, `container/php`, `flatpaks/php`.
//!
//! A fetch that fails (no answer, an error status, too slow, too large, not the expected
//! JSON, empty) is logged with its URL (and for JSON the line and column), counted in
//! `/metrics` (`tidings_ownership_sync_failures_total`, by source and fault), and what
//! the last sync wrote is kept. So is an owner map with fewer than half the packages
//! synced now (a truncated file upstream), unless nothing was synced yet.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tidings_store::{Owner, Store, StoreError, SyncSummary, SyncedOwnership};
use tokio_util::sync::CancellationToken;

use crate::config::OwnershipSyncConfig;
use crate::metrics::SyncFaultLabel;
use crate::{Metrics, NotifierError};

/// The owner map's namespace whose packages are named bare.
const RPMS: &str = "rpms";
/// The most FASJSON pages read for one group and role (a loop guard).
const MAX_PAGES: u64 = 10_000;

/// Why a fetch was not used. Logged and counted; the old data is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFault {
    /// No answer: refused, reset, a name that does not resolve.
    Request { url: String, reason: String },
    /// No whole answer within `timeout_secs`.
    Timeout { url: String, seconds: u64 },
    /// An answer that is not 200.
    Status { url: String, status: u16 },
    /// An answer larger than `max_response_bytes`.
    TooLarge { url: String, limit: usize },
    /// Not JSON, or not the expected shape.
    Malformed {
        url: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// An owner map without packages, or a group without members or sponsors.
    Empty { url: String },
    /// An owner map with fewer than half the packages synced now.
    Shrunk {
        url: String,
        stored: i64,
        read: usize,
    },
}

impl SyncFault {
    /// The fault's label in `/metrics`.
    pub fn label(&self) -> &'static str {
        match self {
            SyncFault::Request { .. } => "request",
            SyncFault::Timeout { .. } => "timeout",
            SyncFault::Status { .. } => "status",
            SyncFault::TooLarge { .. } => "too_large",
            SyncFault::Malformed { .. } => "malformed",
            SyncFault::Empty { .. } => "empty",
            SyncFault::Shrunk { .. } => "shrunk",
        }
    }
}

impl fmt::Display for SyncFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncFault::Request { url, reason } => write!(f, "{url}: no answer: {reason}"),
            SyncFault::Timeout { url, seconds } => {
                write!(f, "{url}: no whole answer within {seconds} s")
            }
            SyncFault::Status { url, status } => write!(f, "{url}: answered {status}"),
            SyncFault::TooLarge { url, limit } => {
                write!(f, "{url}: the answer is larger than {limit} bytes")
            }
            SyncFault::Malformed {
                url,
                line,
                column,
                reason,
            } => write!(f, "{url}: line {line} column {column}: {reason}"),
            SyncFault::Empty { url } => write!(f, "{url}: the answer lists nothing"),
            SyncFault::Shrunk { url, stored, read } => write!(
                f,
                "{url}: lists {read} packages where {stored} are synced now (fewer than half: \
                 a truncated file?)"
            ),
        }
    }
}

/// The sync's HTTP client and settings.
#[derive(Clone)]
pub struct OwnershipSync {
    config: OwnershipSyncConfig,
    client: reqwest::Client,
}

impl fmt::Debug for OwnershipSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnershipSync")
            .field("config", &self.config)
            .finish()
    }
}

/// What one sync did: the store's summary (none: nothing was written) and the faults.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    /// What was written.
    pub written: Option<SyncSummary>,
    /// Each fetch not used, by source (`owners`, `groups`).
    pub faults: Vec<(&'static str, SyncFault)>,
}

impl OwnershipSync {
    /// The sync for `config`; `None` when neither URL is set.
    pub fn new(config: &OwnershipSyncConfig) -> Result<Option<OwnershipSync>, NotifierError> {
        if !config.enabled() {
            return Ok(None);
        }
        let bad = |field: &'static str, reason: String| NotifierError::Config { field, reason };
        for (field, url) in [
            ("ownership.sync.owners_url", &config.owners_url),
            ("ownership.sync.groups_url", &config.groups_url),
        ] {
            if let Some(url) = url {
                match url::Url::parse(url) {
                    Ok(u) if ["http", "https"].contains(&u.scheme()) => {}
                    Ok(_) => return Err(bad(field, format!("{url:?} is not an http(s) URL"))),
                    Err(e) => return Err(bad(field, format!("{url:?} is not a URL: {e}"))),
                }
            }
        }
        if config.groups_url.is_some() && config.groups.is_empty() {
            return Err(bad(
                "ownership.sync.groups",
                "groups_url is set but no group is listed to sync".into(),
            ));
        }
        for (field, value) in [
            ("ownership.sync.interval_secs", config.interval_secs),
            ("ownership.sync.timeout_secs", config.timeout_secs),
            (
                "ownership.sync.max_response_bytes",
                config.max_response_bytes as u64,
            ),
            ("ownership.sync.page_size", u64::from(config.page_size)),
        ] {
            if value == 0 {
                return Err(bad(field, "must be at least 1".into()));
            }
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tidings/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                bad(
                    "ownership.sync",
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Some(OwnershipSync {
            config: config.clone(),
            client,
        }))
    }

    /// Syncs every `interval_secs`, the first at once, until `shutdown`. Faults are logged
    /// and counted; a database failure is logged and the next round tries again.
    pub async fn run(
        self,
        store: Store,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<(), NotifierError> {
        let every = Duration::from_secs(self.config.interval_secs);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                outcome = self.sync_once(&store, &metrics) => {
                    if let Err(err) = outcome {
                        tracing::warn!(error = %err, "ownership sync: not written; the next round tries again");
                    }
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One sync: reads what is configured, writes what was read, logs and counts faults.
    pub async fn sync_once(
        &self,
        store: &Store,
        metrics: &Metrics,
    ) -> Result<SyncOutcome, StoreError> {
        let mut outcome = SyncOutcome::default();
        let mut data = SyncedOwnership::default();
        if let Some(url) = &self.config.owners_url {
            match self.owner_map(url).await {
                Ok(packages) => {
                    let stored = store.synced_package_count().await?;
                    if stored > 0 && (packages.len() as i64) * 2 < stored {
                        outcome.faults.push((
                            "owners",
                            SyncFault::Shrunk {
                                url: url.clone(),
                                stored,
                                read: packages.len(),
                            },
                        ));
                    } else {
                        data.packages = Some(packages);
                    }
                }
                Err(fault) => outcome.faults.push(("owners", fault)),
            }
        }
        if let Some(base) = &self.config.groups_url {
            let mut groups = BTreeMap::new();
            for group in &self.config.groups {
                match self.group(base, group).await {
                    Ok(members) => {
                        groups.insert(group.clone(), members);
                    }
                    Err(fault) => {
                        data.kept_groups.insert(group.clone());
                        outcome.faults.push(("groups", fault));
                    }
                }
            }
            data.groups = Some(groups);
        }
        for (source, fault) in &outcome.faults {
            let source: &'static str = source;
            tracing::warn!(
                source,
                fault = fault.label(),
                "ownership sync: {fault}; the last synced data is kept"
            );
            metrics
                .ownership_sync_failures
                .get_or_create(&SyncFaultLabel {
                    source,
                    fault: fault.label(),
                })
                .inc();
        }
        let summary = store.sync_ownership(&data).await?;
        if summary.skipped_count > 0 {
            tracing::warn!(
                skipped = summary.skipped_count,
                first = ?summary.skipped,
                "ownership sync: names that are not valid here were left out"
            );
        }
        tracing::info!(
            owners_added = summary.owners_added,
            owners_removed = summary.owners_removed,
            members_added = summary.members_added,
            members_removed = summary.members_removed,
            accounts = summary.affected_users.len(),
            "ownership synced"
        );
        Metrics::bump(&metrics.ownership_syncs);
        outcome.written = Some(summary);
        Ok(outcome)
    }

    /// Reads and checks the owner map at `url`.
    pub async fn owner_map(
        &self,
        url: &str,
    ) -> Result<BTreeMap<String, BTreeSet<Owner>>, SyncFault> {
        let body = self.get(url, false).await?;
        let packages = parse_owner_map(url, &body)?;
        if packages.is_empty() {
            return Err(SyncFault::Empty { url: url.into() });
        }
        Ok(packages)
    }

    /// The members and sponsors of `group`, every page of both.
    pub async fn group(&self, base: &str, group: &str) -> Result<BTreeSet<String>, SyncFault> {
        let mut names = BTreeSet::new();
        let mut first_url = String::new();
        for role in ["members", "sponsors"] {
            let url = format!("{}/groups/{group}/{role}/", base.trim_end_matches('/'));
            if first_url.is_empty() {
                first_url = url.clone();
            }
            let mut page = 1u64;
            loop {
                let paged = format!(
                    "{url}?page_size={}&page_number={page}",
                    self.config.page_size
                );
                let body = self.get(&paged, true).await?;
                let (usernames, total_pages) = parse_fasjson_page(&paged, &body)?;
                names.extend(usernames);
                if page >= total_pages || page >= MAX_PAGES {
                    break;
                }
                page += 1;
            }
        }
        if names.is_empty() {
            return Err(SyncFault::Empty { url: first_url });
        }
        Ok(names)
    }

    /// The first page of `group`'s members: how many it lists and how many pages there
    /// are (what `tidings doctor` checks).
    pub async fn first_page(&self, base: &str, group: &str) -> Result<(usize, u64), SyncFault> {
        let url = format!(
            "{}/groups/{group}/members/?page_size={}&page_number=1",
            base.trim_end_matches('/'),
            self.config.page_size
        );
        let body = self.get(&url, true).await?;
        let (names, pages) = parse_fasjson_page(&url, &body)?;
        Ok((names.len(), pages))
    }

    /// GETs `url` and reads its whole answer, at most `max_response_bytes`.
    async fn get(&self, url: &str, fasjson: bool) -> Result<Vec<u8>, SyncFault> {
        let seconds = self.config.timeout_secs;
        let limit = self.config.max_response_bytes;
        let read = async {
            let mut request = self
                .client
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json");
            if fasjson {
                if let Some(token) = &self.config.groups_token {
                    request = request.bearer_auth(token);
                }
            }
            let failed = |err: reqwest::Error| {
                if err.is_timeout() {
                    SyncFault::Timeout {
                        url: url.into(),
                        seconds,
                    }
                } else {
                    SyncFault::Request {
                        url: url.into(),
                        reason: error_chain(&err),
                    }
                }
            };
            let mut answer = request.send().await.map_err(failed)?;
            if answer.status() != reqwest::StatusCode::OK {
                return Err(SyncFault::Status {
                    url: url.into(),
                    status: answer.status().as_u16(),
                });
            }
            let too_large = || SyncFault::TooLarge {
                url: url.into(),
                limit,
            };
            if answer
                .content_length()
                .is_some_and(|length| length > limit as u64)
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = answer.chunk().await.map_err(failed)? {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        // The client's own limit covers the answer's body too; this one makes sure.
        match tokio::time::timeout(Duration::from_secs(seconds), read).await {
            Ok(result) => result,
            Err(_) => Err(SyncFault::Timeout {
                url: url.into(),
                seconds,
            }),
        }
    }
}

/// An error with its sources: "error sending request: connection refused".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn json_fault(url: &str, err: &serde_json::Error) -> SyncFault {
    SyncFault::Malformed {
        url: url.into(),
        line: err.line(),
        column: err.column(),
        reason: err.to_string(),
    }
}

/// The owner map's packages and owners: `rpms/php` as `php`, `modules/php` as
/// `modules/php`; an owner `@sig` is the group `sig`.
pub fn parse_owner_map(
    url: &str,
    body: &[u8],
) -> Result<BTreeMap<String, BTreeSet<Owner>>, SyncFault> {
    let map: BTreeMap<String, BTreeMap<String, Vec<String>>> =
        serde_json::from_slice(body).map_err(|e| json_fault(url, &e))?;
    let mut packages: BTreeMap<String, BTreeSet<Owner>> = BTreeMap::new();
    for (namespace, entries) in map {
        for (name, owners) in entries {
            let package = if namespace == RPMS {
                name
            } else {
                format!("{namespace}/{name}")
            };
            let owners = owners
                .into_iter()
                .map(|owner| match owner.strip_prefix('@') {
                    Some(group) => Owner::group(group),
                    None => Owner::user(owner),
                })
                .collect();
            packages.insert(package, owners);
        }
    }
    Ok(packages)
}

/// A FASJSON page's usernames and its `page.total_pages` (1 when the answer has no
/// `page`: not paged).
pub fn parse_fasjson_page(url: &str, body: &[u8]) -> Result<(Vec<String>, u64), SyncFault> {
    let value: Value = serde_json::from_slice(body).map_err(|e| json_fault(url, &e))?;
    let shape = |reason: &str| SyncFault::Malformed {
        url: url.into(),
        line: 1,
        column: 1,
        reason: reason.into(),
    };
    let Some(result) = value.get("result").and_then(Value::as_array) else {
        return Err(shape(
            "expected an object with a \"result\" list (FASJSON's answer)",
        ));
    };
    let mut names = Vec::with_capacity(result.len());
    for item in result {
        let name = match item {
            Value::String(name) => Some(name.as_str()),
            Value::Object(user) => user.get("username").and_then(Value::as_str),
            _ => None,
        };
        match name {
            Some(name) => names.push(name.to_string()),
            None => {
                return Err(shape(
                    "a \"result\" entry is neither a username nor an object with \"username\"",
                ))
            }
        }
    }
    let total_pages = match value.get("page") {
        None | Some(Value::Null) => 1,
        Some(page) => page
            .get("total_pages")
            .and_then(Value::as_u64)
            .ok_or_else(|| shape("\"page\" has no \"total_pages\" number"))?,
    };
    Ok((names, total_pages))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn namespaces_and_groups() {
        let body = br#"{"rpms": {"php": ["remi", "@php-sig"]},
                        "modules": {"php": ["remi"]},
                        "container": {"php": []}}"#;
        let map = parse_owner_map("u", body).unwrap();
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            ["container/php", "modules/php", "php"]
        );
        assert_eq!(
            map["php"],
            [Owner::user("remi"), Owner::group("php-sig")].into()
        );
        assert!(map["container/php"].is_empty());
    }

    #[test]
    fn malformed_maps_name_line_and_column() {
        let err = parse_owner_map(
            "http://x/map.json",
            b"{\n  \"rpms\": {\"php\": [\"remi\",]}\n}",
        )
        .unwrap_err();
        let SyncFault::Malformed { line, url, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!((*line, url.as_str()), (2, "http://x/map.json"));
        assert!(err.to_string().contains("line 2 column"), "{err}");
        // The right JSON, the wrong shape.
        let err = parse_owner_map("u", br#"{"rpms": ["php"]}"#).unwrap_err();
        assert_eq!(err.label(), "malformed");
    }

    #[test]
    fn fasjson_pages() {
        let body = br#"{"result": [{"username": "alice"}, {"username": "bob"}],
            "page": {"total_results": 3, "page_size": 2, "page_number": 1, "total_pages": 2}}"#;
        assert_eq!(
            parse_fasjson_page("u", body).unwrap(),
            (vec!["alice".to_string(), "bob".to_string()], 2)
        );
        assert!(parse_fasjson_page("u", br#"{"members": []}"#).is_err());
        assert!(parse_fasjson_page("u", br#"{"result": [1]}"#).is_err());
    }
}
