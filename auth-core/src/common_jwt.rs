//! Common JWT: the OAuth2-style access token of `POST /login/idm/tokens` (A5), sent as `Authorization: Bearer`.
//!
//! ```text
//! API call needs a bearer? ── no ──────────────────────────────────────────▶ send with the session tokens
//!        │ yes (config: pod calls, or the request carries `BearerAuth`)
//!        ▼
//! cached token of this login (or the login's own `authorizationToken`, once), not within the leeway of its
//! expiry? ── yes ─▶ attach it, send
//!        │ no
//!        ▼
//! A5 with the session token ── 200 ──▶ cache (expiry: `exp`, else `expires_in`, minus the leeway) ─▶ attach, send
//!        │ 401
//!        ▼
//! full login (once per call), then A5 again
//!
//! a 401 on a call that carried a bearer drops the cached token; the replay fetches a fresh one through A5
//! ```
//!
//! The token is refreshed **before** it expires, so a call never goes out with a token about to lapse; the
//! `Bearer ` prefix is stripped from what the pod sends and added once on the way out.

use std::fmt;
use std::time::Duration;

use http::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use serde::Deserialize;

use crate::config::Endpoints;
use crate::error::{ProtocolProblem, TransportFailure};
use crate::jwt::decode_claims;
use crate::request::USER_AGENT_VALUE;
use crate::response::MAX_RESPONSE_BODY;
use crate::time::UnixTime;
use crate::tokens::{Generation, SESSION_TOKEN_HEADER, SecretHeader, Tokens};
use crate::{HttpRequest, HttpResponse};

#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
mod jwks;
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
pub use jwks::{AccessTokenKeys, parse_access_token_keys};

/// A5's path, on the pod.
pub const ACCESS_TOKEN_PATH: &str = "/login/idm/tokens";
/// A6's path, on the pod: the keys that sign access tokens.
pub const ACCESS_TOKEN_KEYS_PATH: &str = "/login/idm/keys";
/// The default leeway: an access token is refreshed this long before it expires (BDK-Java uses 5 s; a little
/// more covers a slow call and a clock that drifts).
pub const DEFAULT_COMMON_JWT_LEEWAY: Duration = Duration::from_secs(30);

/// When and how the Common JWT is used. Off unless set with [`Config::with_common_jwt`](crate::Config::with_common_jwt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommonJwtSettings {
    scope: String,
    leeway: Duration,
    on_pod_calls: bool,
}

impl Default for CommonJwtSettings {
    fn default() -> Self {
        Self::per_call()
    }
}

impl CommonJwtSettings {
    /// As BDK-Java's `commonJwt.enabled: true`: every pod call carries `Authorization: Bearer <access token>`
    /// instead of `sessionToken`; requests with [`BearerAuth`] carry it too.
    #[must_use]
    pub fn on_pod_calls() -> Self {
        Self { scope: String::new(), leeway: DEFAULT_COMMON_JWT_LEEWAY, on_pod_calls: true }
    }

    /// Only requests that carry [`BearerAuth`] in their extensions get the bearer, beside the session tokens (the
    /// profile-manager API, for example).
    #[must_use]
    pub fn per_call() -> Self {
        Self { scope: String::new(), leeway: DEFAULT_COMMON_JWT_LEEWAY, on_pod_calls: false }
    }

    /// The `scope` query parameter of A5 (space-separated; empty by default, as BDK-Java sends).
    #[must_use]
    pub fn with_scope(mut self, scope: &str) -> Self {
        scope.clone_into(&mut self.scope);
        self
    }

    /// How long before its expiry an access token is refreshed.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The scope.
    #[must_use]
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The leeway.
    #[must_use]
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Whether pod calls carry the bearer instead of `sessionToken`.
    #[must_use]
    pub fn replaces_session_token_on_pod_calls(&self) -> bool {
        self.on_pod_calls
    }
}

/// A request extension: this call carries `Authorization: Bearer <access token>` (beside the session tokens),
/// whether or not the configuration puts it on every pod call. Needs [`CommonJwtSettings`] in the configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BearerAuth;

/// An access token from A5, without its `Bearer ` prefix. `Debug` prints a placeholder.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretHeader,
    header: HeaderValue,
    expires_at: UnixTime,
    refresh_at: UnixTime,
    generation: Generation,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The token. Never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.value.expose()
    }

    /// `Bearer <token>`, marked sensitive.
    #[must_use]
    pub fn header_value(&self) -> HeaderValue {
        self.header.clone()
    }

    /// When it expires.
    #[must_use]
    pub fn expires_at(&self) -> UnixTime {
        self.expires_at
    }

    /// From when it is refreshed rather than used: its expiry minus the leeway.
    #[must_use]
    pub fn refresh_at(&self) -> UnixTime {
        self.refresh_at
    }

    /// The login whose session token obtained it.
    #[must_use]
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// Sets `Authorization: Bearer <token>`; with `replace_session`, removes `sessionToken`.
    pub fn authorize<B>(&self, request: &mut http::Request<B>, replace_session: bool) {
        request.headers_mut().insert(AUTHORIZATION, self.header_value());
        if replace_session {
            request.headers_mut().remove(SESSION_TOKEN_HEADER);
        }
    }
}

/// A5: `POST {pod}/login/idm/tokens?scope=<scope>` with `sessionToken`, no body.
#[must_use]
pub fn access_token_request(endpoints: &Endpoints, scope: &str, tokens: &Tokens) -> HttpRequest {
    let path = format!("{ACCESS_TOKEN_PATH}?scope={}", encode_query(scope));
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(endpoints.pod.join(&path))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        .body(Vec::new())
        .unwrap_or_else(|_| Request::new(Vec::new()));
    request.headers_mut().insert(SESSION_TOKEN_HEADER, tokens.session().header_value());
    request
}

/// A6: `GET {pod}/login/idm/keys`, public: the JWKS that signs access tokens.
#[must_use]
pub fn access_token_keys_request(endpoints: &Endpoints) -> HttpRequest {
    Request::builder()
        .method(Method::GET)
        .uri(endpoints.pod.join(ACCESS_TOKEN_KEYS_PATH))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        .body(Vec::new())
        .unwrap_or_else(|_| Request::new(Vec::new()))
}

/// Percent-encodes a scope for the query: unreserved characters as they are, a space as `%20`.
fn encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why A5 gave no usable access token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// A status other than 200 and 401 (401 means a new login, which the flight does).
    #[error("the access-token call (POST /login/idm/tokens) answered HTTP {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// A 200 that could not be used.
    #[error("the access-token answer is unusable: {problem}")]
    Protocol {
        /// What was wrong.
        problem: ProtocolProblem,
    },
    /// A 200 whose token has neither an `exp` claim nor an `expires_in`: when to refresh it is unknown.
    #[error("the access token has no expiry (no `exp` claim, no `expires_in`)")]
    NoExpiry,
    /// A 401 from A5 right after a fresh login.
    #[error("the access-token call was refused with 401 right after a new login")]
    Unauthorized,
    /// The access token failed the optional check against the JWKS (A6).
    #[error("the access token does not verify against the pod's JWKS: {0}")]
    Unverified(&'static str),
    /// A5 failed below HTTP.
    #[error("the access-token call failed: {0}")]
    Transport(TransportFailure),
}

/// Reads a 200 A5 answer: `{"token_type":"Bearer","expires_in":s,"access_token":"<JWT>"}`. The expiry is the
/// earlier of the JWT's `exp` and `now + expires_in`, whichever are present.
///
/// # Errors
/// [`AccessTokenError`].
pub fn parse_access_token(
    response: &HttpResponse,
    generation: Generation,
    leeway: Duration,
    now: UnixTime,
) -> Result<AccessToken, AccessTokenError> {
    #[derive(Deserialize)]
    struct Wire {
        access_token: Option<String>,
        #[serde(default, deserialize_with = "crate::extension_app::number_or_digits")]
        expires_in: Option<u64>,
    }
    if response.status() != StatusCode::OK {
        return Err(AccessTokenError::Status { status: response.status().as_u16() });
    }
    let protocol = |problem| AccessTokenError::Protocol { problem };
    if response.body().len() > MAX_RESPONSE_BODY {
        return Err(protocol(ProtocolProblem::BodyTooLarge));
    }
    let wire: Wire = serde_json::from_slice(response.body()).map_err(|_| protocol(ProtocolProblem::NotJson))?;
    let raw = zeroize::Zeroizing::new(wire.access_token.ok_or(protocol(ProtocolProblem::MissingToken))?);
    let token = strip_bearer(&raw);
    if token.is_empty() {
        return Err(protocol(ProtocolProblem::EmptyToken));
    }
    let value = SecretHeader::new(token).ok_or(protocol(ProtocolProblem::TokenNotAHeaderValue))?;
    let from_claim = decode_claims(token).and_then(|claims| claims.get("exp")?.as_u64()).map(UnixTime::from_secs);
    let from_lifetime = wire.expires_in.map(|secs| now.saturating_add(Duration::from_secs(secs)));
    let expires_at = match (from_claim, from_lifetime) {
        (Some(a), Some(b)) => a.min(b),
        (Some(at), None) | (None, Some(at)) => at,
        (None, None) => return Err(AccessTokenError::NoExpiry),
    };
    let refresh_at = UnixTime::from_millis(
        expires_at.as_millis().saturating_sub(u64::try_from(leeway.as_millis()).unwrap_or(u64::MAX)),
    );
    let mut header = bearer_header(token).ok_or(protocol(ProtocolProblem::TokenNotAHeaderValue))?;
    header.set_sensitive(true);
    Ok(AccessToken { value, header, expires_at, refresh_at, generation })
}

/// `Bearer <token>` in a buffer wiped on drop.
fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut text = zeroize::Zeroizing::new(Vec::with_capacity(7 + token.len()));
    text.extend_from_slice(b"Bearer ");
    text.extend_from_slice(token.as_bytes());
    let shared = bytes::Bytes::from_owner(text);
    HeaderValue::from_maybe_shared(shared).ok()
}

fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    if value.eq_ignore_ascii_case("bearer") {
        return "";
    }
    match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

/// What an API call needs before it is sent, as the flight sees it.
#[derive(Debug)]
#[must_use = "a bearer step is work the driver must do"]
pub enum Bearer {
    /// The call carries no bearer.
    NotNeeded,
    /// Attach this token ([`ApiCall::request_with`](crate::ApiCall::request_with)).
    Attach(AccessToken),
    /// Send this A5 request first, then hand its outcome to
    /// [`Flight::handle_bearer`](crate::Flight::handle_bearer) (or through a
    /// [`BearerLease`](crate::BearerLease)), and wake the callers that follow it.
    Fetch(HttpRequest),
    /// Another caller's A5 call for the same session is out: wait until woken (as a login follower waits), then
    /// ask again. Concurrent callers share one A5 call, as they share one login.
    Follow,
    /// A5 refused the session token of this generation (for another caller): obtain tokens newer than it
    /// (`Want::Newer`), then ask again.
    Relogin(Generation),
}

/// What came of an A5 call.
#[derive(Debug)]
#[must_use = "a bearer step is work the driver must do"]
pub enum BearerStep {
    /// Attach this token and send the call.
    Attach(AccessToken),
    /// The session token was refused: obtain tokens newer than this generation (`Want::Newer`), then ask for the
    /// bearer again.
    Relogin(Generation),
    /// Give up.
    Fail(AccessTokenError),
}

/// The flight's cached access token.
#[derive(Debug, Default)]
pub(crate) struct BearerCache {
    current: Option<AccessToken>,
    refreshes: u64,
    /// The login whose `authorizationToken` was looked at: it is used once, never again after a refusal.
    seeded: Option<Generation>,
    /// The login whose session token a caller's A5 call is out with: other callers follow it.
    fetching: Option<Generation>,
    /// The latest login whose session token A5 refused: callers holding its tokens log in rather than ask A5.
    refused_session: Option<Generation>,
}

impl BearerCache {
    /// The cached token, when it belongs to `tokens`' login and is not due for refresh at `now`.
    pub(crate) fn usable(&self, tokens: &Tokens, now: UnixTime) -> Option<AccessToken> {
        self.current.as_ref().filter(|t| t.generation == tokens.generation() && now < t.refresh_at).cloned()
    }

    /// The `authorizationToken` a login returned beside the session token, as BDK-Java uses it before any A5
    /// call: kept when its JWT `exp` shows it is not due for refresh at `now`.
    pub(crate) fn seed_from_login(&mut self, tokens: &Tokens, leeway: Duration, now: UnixTime) -> Option<AccessToken> {
        self.seeded = Some(tokens.generation());
        let value = tokens.authorization()?;
        let exp = decode_claims(value.expose_secret())?.get("exp")?.as_u64()?;
        let expires_at = UnixTime::from_secs(exp);
        let refresh_at = UnixTime::from_millis(
            expires_at.as_millis().saturating_sub(u64::try_from(leeway.as_millis()).unwrap_or(u64::MAX)),
        );
        if now >= refresh_at {
            return None;
        }
        let mut header = bearer_header(value.expose_secret())?;
        header.set_sensitive(true);
        let token =
            AccessToken { value: value.0.clone(), header, expires_at, refresh_at, generation: tokens.generation() };
        self.current = Some(token.clone());
        Some(token)
    }

    pub(crate) fn store(&mut self, token: AccessToken) {
        self.refreshes += 1;
        self.current = Some(token);
    }

    /// Drops the cached token when it is the one a refused call carried.
    pub(crate) fn refused(&mut self, expires_at: UnixTime, generation: Generation) {
        if self.current.as_ref().is_some_and(|t| t.expires_at == expires_at && t.generation == generation) {
            self.current = None;
        }
    }

    /// Whether an A5 call with the session of `generation` is out.
    pub(crate) fn is_fetching(&self, generation: Generation) -> bool {
        self.fetching == Some(generation)
    }

    /// A caller sends A5 with the session of `generation` (a newer login's call takes the place of an older one).
    pub(crate) fn start_fetch(&mut self, generation: Generation) {
        self.fetching = Some(generation);
    }

    /// The A5 call with the session of `generation` is over (answered, failed, or given up).
    pub(crate) fn end_fetch(&mut self, generation: Generation) {
        if self.fetching == Some(generation) {
            self.fetching = None;
        }
    }

    /// A5 refused the session of `generation`.
    pub(crate) fn refuse_session(&mut self, generation: Generation) {
        self.refused_session = self.refused_session.max(Some(generation));
    }

    /// Whether A5 refused the session of `generation` (or of a later login).
    pub(crate) fn is_session_refused(&self, generation: Generation) -> bool {
        self.refused_session.is_some_and(|refused| refused >= generation)
    }

    pub(crate) fn seeded_generation(&self) -> Option<Generation> {
        self.seeded
    }

    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes
    }
}

#[cfg(test)]
mod tests;
