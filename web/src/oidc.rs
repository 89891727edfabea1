//! Sign-in through an OpenID Connect provider (`[web.oidc]`), with the `openidconnect`
//! crate: the authorization code flow with PKCE, and the ID token checked (signature
//! against the provider's published keys, issuer, audience, expiry, nonce).
//!
//! `/signin/oidc` starts a sign-in: a random state, nonce and PKCE verifier go into a
//! short-lived cookie signed with the server key `oidc` (HttpOnly, SameSite=Lax, so the
//! provider's redirect back brings it), and the browser goes to the provider.
//! `/signin/oidc/callback` takes the provider's answer: the cookie must be genuine and
//! fresh, the state must match it, the code is exchanged (with the verifier) and the ID
//! token must carry the nonce. The account is then found or made by the username claim
//! (`Store::provider_sign_in` says which names a sign-in may take), the groups claim
//! replaces the provider's part of `$my_groups`, and the browser gets a session like a
//! local sign-in's.
//!
//! The provider's discovery document (and keys) is read at start within the time limit; a
//! provider that cannot be reached then does not stop the site: the sign-in page says so and
//! the button tries again. It is read again after an hour, for rotated keys.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _, UserInfoClaims,
};
use serde_json::{Map, Value};
use tidings_store::{ProviderSignIn, ServerKey};

use crate::auth::see_other;
use crate::session::{self, Visitor};
use crate::view::{self, Nav};
use crate::{routes, AppState, Error, OidcConfig, WebConfig};

/// How long a started sign-in may take at the provider.
const FLOW_MS: i64 = 10 * 60 * 1000;
/// The discovery document (and the keys) is read again when older than this.
const REDISCOVER_AFTER: Duration = Duration::from_secs(3600);

/// The start and the callback.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(routes::SIGNIN_OIDC, get(start))
        .route(routes::SIGNIN_OIDC_CALLBACK, get(callback))
}

/// Every claim of an ID token or userinfo answer, by name: the username and groups claims
/// are configurable, so none is known in advance.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub(crate) struct Claims {
    #[serde(flatten)]
    all: Map<String, Value>,
}

impl AdditionalClaims for Claims {}

type IdFields = IdTokenFields<
    Claims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type Client = openidconnect::Client<
    Claims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured provider: its settings, an HTTP client with the time limit, and what
/// discovery found.
pub(crate) struct Provider {
    config: OidcConfig,
    redirect: String,
    http: Option<reqwest::Client>,
    found: Mutex<Found>,
}

#[derive(Default)]
struct Found {
    client: Option<(Arc<Client>, std::time::Instant)>,
    /// Why the latest discovery failed, when it did and none succeeded since.
    failure: Option<String>,
}

impl Provider {
    /// The provider of `config`, for a site at `base_url`. Nothing is fetched yet.
    pub(crate) fn new(config: OidcConfig, base_url: &str) -> Provider {
        // No redirects: a token endpoint that redirects could send the code elsewhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build();
        let http = match http {
            Ok(http) => Some(http),
            Err(err) => {
                tracing::error!(error = %err, "the sign-in provider's HTTP client");
                None
            }
        };
        Provider {
            redirect: format!(
                "{}{}",
                base_url.trim_end_matches('/'),
                routes::SIGNIN_OIDC_CALLBACK
            ),
            config,
            http,
            found: Mutex::new(Found::default()),
        }
    }

    fn found(&self) -> std::sync::MutexGuard<'_, Found> {
        self.found.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The name on the button.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Why the provider could not be reached, when the latest try failed and none worked.
    pub(crate) fn unreachable(&self) -> Option<String> {
        let found = self.found();
        match found.client {
            Some(_) => None,
            None => found.failure.clone(),
        }
    }

    /// The discovery at start: logs how it went.
    pub(crate) async fn discover_at_start(&self) {
        match self.client().await {
            Ok(_) => tracing::info!(issuer = %self.config.issuer, "sign-in provider found"),
            Err(why) => tracing::warn!(
                issuer = %self.config.issuer,
                error = %why,
                "the sign-in provider cannot be reached; the sign-in button tries again"
            ),
        }
    }

    /// The client, discovered now if never yet (or an hour ago), within the time limit.
    async fn client(&self) -> Result<Arc<Client>, String> {
        let cached = self.found().client.clone();
        if let Some((client, at)) = &cached {
            if at.elapsed() < REDISCOVER_AFTER {
                return Ok(client.clone());
            }
        }
        let limit = Duration::from_secs(self.config.timeout_secs.max(1));
        let fresh = match tokio::time::timeout(limit, self.discover()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no answer within {} seconds",
                self.config.timeout_secs
            )),
        };
        let mut found = self.found();
        match fresh {
            Ok(client) => {
                let client = Arc::new(client);
                found.client = Some((client.clone(), std::time::Instant::now()));
                found.failure = None;
                Ok(client)
            }
            Err(why) => {
                found.failure = Some(why.clone());
                match cached {
                    // Keys an hour old still beat none.
                    Some((client, _)) => Ok(client),
                    None => Err(why),
                }
            }
        }
    }

    async fn discover(&self) -> Result<Client, String> {
        let http = self.http.as_ref().ok_or("no HTTP client")?;
        let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| e.to_string())?;
        let metadata = CoreProviderMetadata::discover_async(issuer, http)
            .await
            .map_err(|e| error_chain(&e))?;
        let redirect = RedirectUrl::new(self.redirect.clone()).map_err(|e| e.to_string())?;
        let secret = self.config.secret()?.map(ClientSecret::new);
        Ok(Client::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect))
    }
}

/// An error and its causes, for the log and the page.
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

/// A started sign-in, kept in the browser in a signed cookie until the provider sends it
/// back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
    /// When it started, ms since the epoch.
    at: i64,
}

impl Flow {
    /// `payload.signature`, both URL-safe base64.
    fn seal(&self, key: &ServerKey) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let signature = key.sign(payload.as_bytes());
        format!("{payload}.{signature}")
    }

    /// The flow in a cookie, if the signature is the key's and it is not too old.
    fn open(sealed: &str, key: &ServerKey) -> Option<Flow> {
        let (payload, signature) = sealed.split_once('.')?;
        if !key.verify(payload.as_bytes(), signature) {
            return None;
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .ok()?;
        let flow: Flow = serde_json::from_slice(&json).ok()?;
        let age = tidings_store::now_ms() - flow.at;
        (0..=FLOW_MS).contains(&age).then_some(flow)
    }
}

/// The flow cookie's name, prefixed like the session's on https.
fn flow_cookie(config: &WebConfig) -> &'static str {
    if config.secure_cookies() {
        "__Host-tidings_oidc"
    } else {
        "tidings_oidc"
    }
}

/// `response` with `Set-Cookie: cookie` added.
fn with_cookie(mut response: Response, cookie: &str) -> Response {
    match HeaderValue::from_str(cookie) {
        Ok(value) => {
            response.headers_mut().append(SET_COOKIE, value);
        }
        Err(_) => tracing::error!("the sign-in cookie is not a valid header value"),
    }
    response
}

/// The server key the flow cookie is signed with.
async fn flow_key(state: &AppState) -> Result<ServerKey, Error> {
    Ok(state.store.server_key("oidc").await?)
}

/// Starts a sign-in at the provider.
async fn start(State(state): State<AppState>, visitor: Visitor) -> Result<Response, Error> {
    let Some(provider) = state.oidc.clone() else {
        return Err(Error::NotFound);
    };
    if visitor.user_id().is_some() {
        return Ok(see_other(routes::HOME));
    }
    let client = provider.client().await.map_err(|why| {
        tracing::warn!(error = %why, "the sign-in provider cannot be reached");
        Error::Unavailable(format!(
            "{} cannot be reached right now ({why}). Try again in a minute.",
            provider.name()
        ))
    })?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in &provider.config.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, csrf_state, nonce) = request.set_pkce_challenge(challenge).url();
    let flow = Flow {
        state: csrf_state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        at: tidings_store::now_ms(),
    };
    let cookie = session::set_cookie(
        &state.config,
        flow_cookie(&state.config),
        &flow.seal(&flow_key(&state).await?),
        Some(FLOW_MS / 1000),
    );
    Ok(with_cookie(
        Redirect::to(url.as_str()).into_response(),
        &cookie,
    ))
}

/// What the provider sends back to the callback.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct Answer {
    code: Option<String>,
    state: Option<String>,
    /// RFC 9207: the issuer that answers, when the provider says.
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Template)]
#[template(path = "web/signin_failed.html")]
struct FailedView {
    nav: Nav,
    provider: String,
    message: String,
}

/// The provider's answer: the sign-in is finished or refused with a page saying why; the
/// flow cookie is gone either way.
async fn callback(
    State(state): State<AppState>,
    visitor: Visitor,
    headers: HeaderMap,
    Query(answer): Query<Answer>,
) -> Result<Response, Error> {
    let Some(provider) = state.oidc.clone() else {
        return Err(Error::NotFound);
    };
    let forget = session::set_cookie(&state.config, flow_cookie(&state.config), "", Some(0));
    let response = match finish(&state, &provider, &visitor, &headers, answer).await {
        Ok(response) => response,
        Err(Refused(status, message)) => {
            tracing::info!(%message, "sign-in through the provider refused");
            let view = FailedView {
                nav: Nav::visitor(&state, &visitor),
                provider: provider.name().to_string(),
                message,
            };
            view::page(status, &view)?
        }
    };
    Ok(with_cookie(response, &forget))
}

/// A refused sign-in: the status and what the page says.
struct Refused(StatusCode, String);

impl From<Error> for Refused {
    fn from(err: Error) -> Self {
        let status = err.status();
        if let Error::Internal(cause) = &err {
            tracing::error!(%cause, "sign-in through the provider failed");
            return Refused(
                status,
                "The server could not complete the sign-in. Try again later.".into(),
            );
        }
        Refused(status, err.to_string())
    }
}

fn refused(message: impl Into<String>) -> Refused {
    Refused(StatusCode::BAD_REQUEST, message.into())
}

async fn finish(
    state: &AppState,
    provider: &Provider,
    visitor: &Visitor,
    headers: &HeaderMap,
    answer: Answer,
) -> Result<Response, Refused> {
    let name = provider.name();
    let again = "Start again from the sign-in page.";
    let key = flow_key(state).await?;
    let flow = session::cookie(headers, flow_cookie(&state.config))
        .and_then(|sealed| Flow::open(&sealed, &key))
        .ok_or_else(|| {
            refused(format!(
                "No sign-in through {name} was started in this browser in the last 10 minutes \
                 (or its cookie was altered). {again}"
            ))
        })?;
    // The state binds the answer to the sign-in this browser started (login CSRF).
    let given = answer.state.as_deref().unwrap_or_default();
    if !tidings_store::secret::tokens_equal(given, &flow.state) {
        return Err(refused(format!(
            "The answer from {name} does not belong to the sign-in this browser started (its \
             state does not match). {again}"
        )));
    }
    if let Some(error) = &answer.error {
        let detail = answer
            .error_description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(refused(format!(
            "{name} refused the sign-in ({error}{detail}). {again}"
        )));
    }
    if let Some(iss) = &answer.iss {
        if iss.trim_end_matches('/') != provider.config.issuer.trim_end_matches('/') {
            return Err(refused(format!(
                "The answer names another issuer ({iss}) than {name}'s. {again}"
            )));
        }
    }
    let code = answer
        .code
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| refused(format!("The answer from {name} has no code. {again}")))?;
    let client = provider.client().await.map_err(|why| {
        Refused(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{name} cannot be reached right now ({why}). Try again in a minute."),
        )
    })?;
    let http = provider
        .http
        .as_ref()
        .ok_or_else(|| Refused::from(Error::Internal("no HTTP client".into())))?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Refused::from(Error::Internal(format!("token endpoint: {e}"))))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
        .request_async(http)
        .await
        .map_err(|e| {
            Refused(
                StatusCode::BAD_GATEWAY,
                format!(
                    "{name} did not accept the sign-in code ({}). {again}",
                    error_chain(&e)
                ),
            )
        })?;
    let id_token = tokens.id_token().ok_or_else(|| {
        Refused(
            StatusCode::BAD_GATEWAY,
            format!("{name} sent no ID token. {again}"),
        )
    })?;
    let verifier = client.id_token_verifier();
    // Signature (the provider's published keys), issuer, audience, expiry and nonce.
    let claims = id_token
        .claims(&verifier, &Nonce::new(flow.nonce.clone()))
        .map_err(|e| {
            refused(format!(
                "The ID token from {name} is not valid ({}). {again}",
                error_chain(&e)
            ))
        })?;
    let subject = claims.subject().as_str().to_string();
    let mut found = FoundClaims::default();
    found.read(
        &provider.config,
        &claims.additional_claims().all,
        claims.preferred_username().map(|u| u.as_str()),
    );
    // Claims missing from the ID token may be at the userinfo endpoint.
    if found.missing() {
        if let Ok(request) = client.user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        ) {
            let info: Result<UserInfoClaims<Claims, CoreGenderClaim>, _> =
                request.request_async(http).await;
            match info {
                Ok(info) => found.read(
                    &provider.config,
                    &info.additional_claims().all,
                    info.preferred_username().map(|u| u.as_str()),
                ),
                Err(e) => tracing::warn!(error = %error_chain(&e), "userinfo request failed"),
            }
        }
    }
    let claim = &provider.config.username_claim;
    let username = found.username.ok_or_else(|| {
        refused(format!(
            "{name} sent no {claim:?} claim, which is the username here. Ask an admin."
        ))
    })?;
    if let Err(err) = tidings_store::validate_username(&username) {
        let reason = match err {
            tidings_store::StoreError::Invalid { reason, .. } => reason,
            other => other.to_string(),
        };
        return Err(refused(format!(
            "{name} gives you the username {username:?}, which cannot be a username here \
             ({reason}). Ask an admin."
        )));
    }
    let user = match state
        .store
        .provider_sign_in(&subject, &username)
        .await
        .map_err(Error::from)?
    {
        ProviderSignIn::Account { user, created } => {
            if created {
                tracing::info!(username = %user.username, "account created by a sign-in through the provider");
            }
            user
        }
        ProviderSignIn::Disabled => {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                format!("The account {username} is disabled. Ask an admin."),
            ))
        }
        ProviderSignIn::LocalAccount => {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "A local account named {username} exists here, and it is not linked to {name}: \
                     an account cannot be taken over by signing in elsewhere. If it is yours, sign \
                     in with its password, or ask an admin to hand it to {name} \
                     (tidings user provider {username})."
                ),
            ))
        }
        ProviderSignIn::OtherSubject => {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "The account {username} belongs to another person of {name}. Ask an admin."
                ),
            ))
        }
        ProviderSignIn::Renamed { username: account } => {
            return Err(Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "Your account here is {account}, but {name} now calls you {username}. \
                     Ask an admin."
                ),
            ))
        }
    };
    let skipped = state
        .store
        .set_provider_groups(&user.username, &found.groups)
        .await
        .map_err(Error::from)?;
    if !skipped.is_empty() {
        tracing::warn!(username = %user.username, ?skipped, "groups from the provider that are not group names here");
    }
    visitor.sign_in(state, user.id).await?;
    tracing::info!(username = %user.username, "signed in through the provider");
    Ok(see_other(routes::HOME))
}

/// The username and groups read from the claims.
#[derive(Default)]
struct FoundClaims {
    username: Option<String>,
    groups: BTreeSet<String>,
    groups_seen: bool,
}

impl FoundClaims {
    /// Whether the username or the groups claim is still missing.
    fn missing(&self) -> bool {
        self.username.is_none() || !self.groups_seen
    }

    /// Takes what is still missing from one set of claims. `preferred_username` is a
    /// standard claim the crate reads itself, so it is passed on its own too.
    fn read(
        &mut self,
        config: &OidcConfig,
        claims: &Map<String, Value>,
        preferred_username: Option<&str>,
    ) {
        if self.username.is_none() {
            self.username = match claims.get(&config.username_claim) {
                Some(Value::String(name)) => Some(name.clone()),
                _ if config.username_claim == "preferred_username" => {
                    preferred_username.map(str::to_string)
                }
                _ => None,
            };
        }
        if !self.groups_seen {
            match claims.get(&config.groups_claim) {
                Some(Value::Array(items)) => {
                    self.groups = items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                    self.groups_seen = true;
                }
                Some(Value::String(one)) => {
                    self.groups = one.split_whitespace().map(str::to_string).collect();
                    self.groups_seen = true;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_flow_cookie_is_signed_and_short_lived() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let store = tidings_store::Store::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let key = store
            .server_key("oidc")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let other_key = store
            .server_key("csrf")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let flow = Flow {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            at: tidings_store::now_ms(),
        };
        let sealed = flow.seal(&key);
        assert_eq!(Flow::open(&sealed, &key), Some(flow.clone()));
        assert_eq!(Flow::open(&sealed, &other_key), None);
        // Another payload under the same signature: refused.
        let (_, signature) = sealed.split_once('.').unwrap_or_default();
        let other = Flow {
            state: "forged".into(),
            ..flow.clone()
        };
        let forged_payload = other.seal(&key);
        let (payload, _) = forged_payload.split_once('.').unwrap_or_default();
        assert_eq!(Flow::open(&format!("{payload}.{signature}"), &key), None);
        let old = Flow {
            at: tidings_store::now_ms() - FLOW_MS - 1,
            ..flow
        };
        assert_eq!(Flow::open(&old.seal(&key), &key), None);
        assert_eq!(Flow::open("garbage", &key), None);
    }

    #[test]
    fn claims_are_read_by_their_configured_names() {
        let config = OidcConfig {
            username_claim: "nickname".into(),
            groups_claim: "roles".into(),
            ..OidcConfig::default()
        };
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"nickname": "alice", "roles": ["packager", 3, "infra"], "preferred_username": "x"}"#,
        )
        .unwrap_or_default();
        let mut found = FoundClaims::default();
        found.read(&config, &claims, Some("x"));
        assert_eq!(found.username.as_deref(), Some("alice"));
        assert_eq!(found.groups, ["infra", "packager"].map(String::from).into());
        assert!(!found.missing());
        // The standard claim, when that is the one configured; no groups claim yet.
        let mut standard = FoundClaims::default();
        standard.read(&OidcConfig::default(), &Map::new(), Some("bob"));
        assert_eq!(standard.username.as_deref(), Some("bob"));
        assert!(standard.missing());
    }
}
