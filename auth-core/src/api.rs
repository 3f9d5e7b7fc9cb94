//! The API-call step: send with the tokens attached → on a 401, one shared re-login and one replay → a second 401
//! is an error, not a loop; and, when enabled, retries of 5xx, 429 and transport failures with backoff. Pure: a
//! driver sends what [`ApiCall::request`] builds and feeds back what came of it.
//!
//! ```text
//! let mut call = flight.api_call(request)?;              (under the lock: a jitter seed and the policy)
//! let mut tokens = tokens(Want::Current)?;
//! loop {
//!     let outcome = send(call.request(&tokens)?);
//!     match flight.handle_api(&mut call, outcome, now) {       (under the lock)
//!         ApiStep::Return(response) => return Ok(response),
//!         ApiStep::Relogin(generation) => tokens = tokens(Want::Newer(generation))?,
//!         ApiStep::RetryAt(at) => sleep until at,
//!         ApiStep::Fail(error) => return Err(error),
//!     }
//! }
//! ```

use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{Method, StatusCode};

use crate::common_jwt::{AccessToken, BearerAuth};
use crate::config::Config;
use crate::error::{TransportFailure, UsageError};
use crate::retry::{Jitter, RetryPolicy, parse_retry_after};
use crate::time::UnixTime;
use crate::tokens::{Generation, Target, Tokens};
use crate::{HttpRequest, HttpResponse};

/// Retries of ordinary API calls: 5xx, 429 and retryable transport failures, with the policy's backoff and the
/// server's `Retry-After` (capped by the policy). Only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS,
/// TRACE) are retried, unless [`all_methods`](Self::all_methods) is set or a request carries [`Idempotent`] in its
/// extensions.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiRetry {
    policy: RetryPolicy,
    all_methods: bool,
}

impl Default for ApiRetry {
    /// The BDK policy: 10 attempts, 500 ms doubling up to 300 s, with jitter; idempotent methods only.
    fn default() -> Self {
        Self { policy: RetryPolicy::default(), all_methods: false }
    }
}

impl ApiRetry {
    /// Retries with `policy`, idempotent methods only.
    #[must_use]
    pub fn new(policy: RetryPolicy) -> Self {
        Self { policy, all_methods: false }
    }

    /// Retries every method, POST included: for APIs whose calls are safe to repeat.
    #[must_use]
    pub fn all_methods(mut self) -> Self {
        self.all_methods = true;
        self
    }

    /// The backoff policy.
    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

/// A request extension saying that this request may be repeated even though its method is not idempotent (a POST
/// that creates nothing, for example), so that [`ApiRetry`] applies to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Idempotent;

/// What to do after an attempt of an API call.
#[derive(Debug)]
#[must_use = "a step is work the driver must do"]
pub enum ApiStep {
    /// Hand this response to the caller, whatever its status.
    Return(HttpResponse),
    /// The tokens of this generation were refused: obtain newer ones (the single flight's `Want::Newer`), then
    /// send [`ApiCall::request`] again. Happens once per call.
    Relogin(Generation),
    /// Send [`ApiCall::request`] again at this instant, with the same tokens (a call with a Common JWT asks the
    /// flight for its bearer again first: after a 401 it is a fresh one).
    RetryAt(UnixTime),
    /// Give up with this error.
    Fail(ApiError),
}

/// Why an API call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The tokens of a fresh login were refused too. They are expired: the next call logs in again.
    #[error("the API call was refused with 401 right after a new login (tokens of generation {generation})")]
    Unauthorized {
        /// The generation of the refused tokens.
        generation: u64,
    },
    /// The call failed below HTTP, after `attempts` attempts.
    #[error("the API call failed after {attempts} attempt(s): {failure}")]
    Transport {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        failure: TransportFailure,
    },
}

/// One API call in progress: the request, the tokens it was last sent with, and its replay and retry counts.
#[derive(Debug)]
pub struct ApiCall {
    parts: http::request::Parts,
    body: Vec<u8>,
    target: Target,
    retry: Option<RetryPolicy>,
    jitter: Jitter,
    /// Attempts that failed in a retryable way, in a row.
    failures: u32,
    /// The generation of the tokens of the last attempt.
    sent_with: Option<Generation>,
    replayed: bool,
    /// Whether the call carries a Common JWT bearer, and whether it replaces `sessionToken`.
    bearer: Option<BearerUse>,
    /// The expiry and generation of the bearer the last attempt carried.
    sent_bearer: Option<(UnixTime, Generation)>,
    /// The bearer of an attempt refused with 401, for the flight to drop.
    refused_bearer: Option<(UnixTime, Generation)>,
    /// Whether an A5 401 already caused a login for this call.
    bearer_relogin: bool,
    /// False for a call whose body cannot be sent twice: its first answer is the caller's, whatever it is.
    replayable: bool,
}

/// How a call carries the Common JWT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BearerUse {
    replace_session: bool,
}

impl ApiCall {
    /// A call of `request` under `config`'s services and API retry policy; `seed` drives the jitter.
    ///
    /// # Errors
    /// [`UsageError::ForeignUri`] for a URI outside the configured services: tokens are never sent anywhere else.
    pub fn new(request: HttpRequest, config: &Config, seed: u64) -> Result<Self, UsageError> {
        let target = config.endpoints().target_of(request.uri())?;
        let service = config.endpoints().service_of(request.uri());
        let (mut parts, body) = request.into_parts();
        if let Some(service) = service {
            config.default_headers().apply(service, &mut parts.headers);
        }
        let retry = config
            .api_retry()
            .filter(|retry| {
                retry.all_methods || is_idempotent(&parts.method) || parts.extensions.get::<Idempotent>().is_some()
            })
            .map(|retry| retry.policy.clone());
        let bearer = config.common_jwt().and_then(|settings| {
            let on_pod = settings.replaces_session_token_on_pod_calls() && target == Target::Pod;
            let asked = parts.extensions.get::<BearerAuth>().is_some();
            (on_pod || asked).then_some(BearerUse { replace_session: on_pod })
        });
        Ok(Self {
            parts,
            body,
            target,
            retry,
            jitter: Jitter::new(seed),
            failures: 0,
            sent_with: None,
            replayed: false,
            bearer,
            sent_bearer: None,
            refused_bearer: None,
            bearer_relogin: false,
            replayable: true,
        })
    }

    /// The call is sent once only, because its body cannot be sent again (a stream a middleware was handed): a
    /// 401 and a retryable status are returned as they are, and a failure below HTTP fails the call. A refused
    /// Common JWT is still forgotten by the flight. The next call after such a 401 hits it too and logs in again.
    #[must_use]
    pub fn without_replay(mut self) -> Self {
        self.replayable = false;
        self
    }

    /// Whether the call may be sent more than once (see [`without_replay`](Self::without_replay)).
    #[must_use]
    pub fn is_replayable(&self) -> bool {
        self.replayable
    }

    /// The headers the call is sent with, before the tokens.
    #[cfg(test)]
    pub(crate) fn parts_for_tests(&self) -> &http::HeaderMap {
        &self.parts.headers
    }

    /// Whether the call carries a Common JWT: ask the flight for one ([`Flight::bearer`](crate::Flight::bearer))
    /// before each attempt.
    #[must_use]
    pub fn wants_bearer(&self) -> bool {
        self.bearer.is_some()
    }

    /// Where the call goes, and so which tokens it carries.
    #[must_use]
    pub fn target(&self) -> Target {
        self.target
    }

    /// The request to send now, with `tokens` attached (marked sensitive). Extensions are not carried over.
    pub fn request(&mut self, tokens: &Tokens) -> HttpRequest {
        self.request_with(tokens, None)
    }

    /// As [`request`](Self::request), with the Common JWT `bearer` the flight gave for this attempt (as
    /// `Authorization: Bearer`, in place of `sessionToken` on pod calls when so configured). A call that
    /// [wants a bearer](Self::wants_bearer) and gets none goes out with the session tokens only.
    pub fn request_with(&mut self, tokens: &Tokens, bearer: Option<&AccessToken>) -> HttpRequest {
        let body = self.body.clone();
        self.build(body, tokens, bearer)
    }

    /// As [`request_with`](Self::request_with) without the body: the method, URI, version and headers of this
    /// attempt, for a middleware that sends its caller's own body (which the call was made without) with them.
    pub fn request_head(&mut self, tokens: &Tokens, bearer: Option<&AccessToken>) -> http::Request<()> {
        self.build((), tokens, bearer)
    }

    fn build<B>(&mut self, body: B, tokens: &Tokens, bearer: Option<&AccessToken>) -> http::Request<B> {
        let mut request = http::Request::new(body);
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = self.parts.uri.clone();
        *request.version_mut() = self.parts.version;
        *request.headers_mut() = self.parts.headers.clone();
        tokens.authorize(&mut request, self.target);
        self.sent_bearer = None;
        if self.bearer.is_some() {
            // A bearer from an earlier attempt is never resent: only the one given for this attempt goes out.
            request.headers_mut().remove(http::header::AUTHORIZATION);
        }
        if let (Some(using), Some(bearer)) = (self.bearer, bearer) {
            bearer.authorize(&mut request, using.replace_session);
            self.sent_bearer = Some((bearer.expires_at(), bearer.generation()));
        }
        self.sent_with = Some(tokens.generation());
        request
    }

    /// What came of the last attempt: a response, or a failure below HTTP.
    pub fn handle(&mut self, outcome: Result<HttpResponse, TransportFailure>, now: UnixTime) -> ApiStep {
        match outcome {
            Ok(response) => self.handle_response(response, now),
            Err(failure) => self.handle_failure(failure, now),
        }
    }

    /// The answer to the last attempt.
    pub fn handle_response(&mut self, response: HttpResponse, now: UnixTime) -> ApiStep {
        let status = response.status();
        if !self.replayable {
            if status == StatusCode::UNAUTHORIZED {
                self.refused_bearer = self.sent_bearer.take();
            }
            return ApiStep::Return(response);
        }
        if status == StatusCode::UNAUTHORIZED {
            let generation = self.sent_with.unwrap_or_default();
            if self.replayed {
                return ApiStep::Fail(ApiError::Unauthorized { generation: generation.get() });
            }
            self.replayed = true;
            // A refused bearer is refreshed through A5 first (the session may still be good); the flight drops
            // it, and the replay asks for a fresh one, which logs in again only if A5 refuses the session.
            if let Some(refused) = self.sent_bearer.take() {
                self.refused_bearer = Some(refused);
                return ApiStep::RetryAt(now);
            }
            return ApiStep::Relogin(generation);
        }
        let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        if retryable {
            let retry_after = response.headers().get(RETRY_AFTER).and_then(|value| parse_retry_after(value, now));
            if let Some(at) = self.next_attempt(retry_after, now) {
                return ApiStep::RetryAt(at);
            }
        }
        ApiStep::Return(response)
    }

    /// The bearer of the last attempt, when it was refused with a 401.
    pub(crate) fn take_refused_bearer(&mut self) -> Option<(UnixTime, Generation)> {
        self.refused_bearer.take()
    }

    /// Whether an A5 401 may still cause a login for this call (once), and marks that it did.
    pub(crate) fn bearer_relogin(&mut self) -> bool {
        !std::mem::replace(&mut self.bearer_relogin, true)
    }

    /// The last attempt failed below HTTP.
    pub fn handle_failure(&mut self, failure: TransportFailure, now: UnixTime) -> ApiStep {
        if failure.kind.is_retryable() && self.replayable {
            if let Some(at) = self.next_attempt(None, now) {
                return ApiStep::RetryAt(at);
            }
        } else {
            self.failures += 1;
        }
        ApiStep::Fail(ApiError::Transport { attempts: self.failures, failure })
    }

    /// Counts a retryable failure; when the policy allows another attempt, when it is due.
    fn next_attempt(&mut self, retry_after: Option<Duration>, now: UnixTime) -> Option<UnixTime> {
        self.failures += 1;
        let policy = self.retry.as_ref()?;
        if self.failures >= policy.max_attempts() {
            return None;
        }
        Some(now.saturating_add(policy.delay(self.failures, retry_after, &mut self.jitter)))
    }
}

fn is_idempotent(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::PUT, Method::DELETE, Method::OPTIONS, Method::TRACE].contains(method)
}

#[cfg(test)]
mod tests;
