//! The authentication state machine. Every protocol decision lives here: which login to send next, what an answer
//! means, whether and when to retry, whether the key manager is needed, and what a 401 on an API call means.
//! Drivers move bytes and sleep; see the crate docs for the loop.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, KeyManagerPolicy, LoginMethod};
use crate::error::{AuthError, FailureCause, SignError, TransportFailure, UsageError};
use crate::jwt::{Jwt, SignedJwt, UnsignedJwt, grants_simplified_key_delivery, login_jwt};
use crate::request::{LoginEndpoint, Purpose, agent_info, certificate_login, rsa_login};
use crate::response::{IssuedToken, LoginAnswer, agent_supports_simplified_key_delivery, read_login_answer};
use crate::retry::Jitter;
use crate::time::UnixTime;
use crate::tokens::{AuthorizationToken, Generation, KeyManagerToken, SessionToken, Tokens};
use crate::{HttpRequest, HttpResponse};

/// How many settled-by-the-machine request ids are remembered, so that late answers to them are accepted quietly.
const ABANDONED_MEMORY: usize = 64;

/// Identifies a login request handed to the driver; its answer or failure is reported with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

impl RequestId {
    /// The number, for bindings and logs.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// An id from its number, as a binding that stored [`get`](Self::get) hands it back.
    #[must_use]
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A login request to send. Report its outcome with [`Authenticator::handle_response`] or
/// [`Authenticator::handle_failure`] and the same `id`.
#[must_use = "a login request must be sent, and its outcome reported"]
pub struct LoginRequest {
    /// The id to report the outcome with.
    pub id: RequestId,
    /// Which login endpoint it calls. [`LoginEndpoint::uses_client_certificate`] says whether it must go through
    /// the mutual-TLS client.
    pub endpoint: LoginEndpoint,
    /// The request. Its body may hold a signed JWT: do not log it.
    pub request: HttpRequest,
}

impl LoginRequest {
    /// Whether it asks for the session token or the key-manager token.
    #[must_use]
    pub fn purpose(&self) -> Purpose {
        self.endpoint.purpose()
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("uri", self.request.uri())
            .finish_non_exhaustive()
    }
}

/// Where the machine stands.
///
/// ```text
///                 start / refresh                 session token
///  NeedsSession ───────────────────▶ (logging in) ───────────────▶ NeedsKeyManager ──km token──┐
///       ▲   ▲                              │                                                   ▼
///       │   └──── login failed ────────────┘◀── session token (SKD, or KM not needed) ─────▶ Ready
///       │                                                                                     │
///       └────── (same, from Expired) ◀── Expired ◀── 401 reported on the current generation ──┘
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// No usable tokens; a login is needed (or under way, see [`Authenticator::is_logging_in`]).
    NeedsSession,
    /// The session token is in hand; the key-manager token is still awaited.
    NeedsKeyManager,
    /// Tokens are available.
    Ready,
    /// The tokens were rejected with a 401; a new login is needed (or under way).
    Expired,
}

/// Whether the key-manager token was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyManagerOutcome {
    /// Logged in to the key manager.
    Obtained,
    /// Not needed: the session token grants simplified key delivery.
    SkippedBySimplifiedKeyDelivery,
    /// Not requested: the key-manager policy is `Never`.
    Disabled,
}

/// Something that happened, for the driver to act on or log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A login succeeded; [`Authenticator::tokens`] returns the new tokens.
    Authenticated {
        /// The new generation.
        generation: Generation,
        /// What happened with the key manager.
        key_manager: KeyManagerOutcome,
    },
    /// A login attempt failed in a way worth retrying; the next attempt is due after `delay`.
    RetryScheduled {
        /// The endpoint that failed.
        endpoint: LoginEndpoint,
        /// How many attempts have failed in a row.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// What went wrong.
        cause: FailureCause,
    },
    /// A login failed for good. The machine stays usable: a later [`Authenticator::start`] tries again.
    LoginFailed(AuthError),
    /// The tokens of `generation` were reported rejected; they are no longer handed out.
    Expired {
        /// The generation that expired.
        generation: Generation,
    },
}

/// What a reported 401 led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnauthorizedOutcome {
    /// Newer tokens than the reported ones are available: retry with [`Authenticator::tokens`].
    Stale {
        /// The current generation.
        current: Generation,
    },
    /// The tokens were expired and a login began: poll for its requests.
    LoginStarted,
    /// A login is already under way: wait for it.
    LoginInProgress,
}

#[derive(Debug)]
enum LegStatus {
    /// Waiting for the session answer before deciding (sequential key-manager login).
    Idle,
    Due,
    InFlight(RequestId),
    Backoff(UnixTime),
    Done(IssuedToken),
    Failed(AuthError),
}

#[derive(Debug)]
struct Leg {
    endpoint: LoginEndpoint,
    status: LegStatus,
    failures: u32,
}

impl Leg {
    fn new(endpoint: LoginEndpoint, due: bool) -> Self {
        Self { endpoint, status: if due { LegStatus::Due } else { LegStatus::Idle }, failures: 0 }
    }

    fn in_flight(&self) -> Option<RequestId> {
        match self.status {
            LegStatus::InFlight(id) => Some(id),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Login {
    session: Leg,
    /// `None` when the key manager is not needed.
    key_manager: Option<Leg>,
    /// The agent-version check, while one is due or out: the session granted SKD and a dedicated agent is
    /// configured, whose version decides whether the key manager can be skipped.
    agent_check: Option<AgentCheck>,
}

#[derive(Debug)]
enum AgentCheck {
    Due,
    InFlight(RequestId),
}

/// What became of one login attempt.
enum Outcome {
    Token(IssuedToken),
    Retry { cause: FailureCause, retry_after: Option<Duration> },
    Fatal(AuthError),
}

/// The sans-IO authentication machine for one bot.
///
/// Inputs: [`start`](Self::start) / [`refresh`](Self::refresh), [`handle_response`](Self::handle_response),
/// [`handle_failure`](Self::handle_failure), [`handle_timeout`](Self::handle_timeout),
/// [`report_unauthorized`](Self::report_unauthorized). Outputs: [`poll_request`](Self::poll_request),
/// [`poll_timeout`](Self::poll_timeout), [`poll_event`](Self::poll_event), [`state`](Self::state),
/// [`tokens`](Self::tokens). After any input, poll requests and events until each returns `None`.
#[derive(Debug)]
pub struct Authenticator {
    config: Config,
    tokens: Option<Arc<Tokens>>,
    latest: Generation,
    expired: bool,
    login: Option<Login>,
    abandoned: VecDeque<RequestId>,
    next_id: u64,
    events: VecDeque<Event>,
    jitter: Jitter,
    /// Whether the last session token granted SKD: if so, a re-login sends the session login alone first.
    last_skd: Option<bool>,
    /// The last JWT of the login under way; dropped when the login ends.
    jwt: Option<CachedJwt>,
}

/// A signed login JWT kept for the next requests. RS512 is deterministic: a request built in the same second
/// would carry the very same bytes, so it reuses them rather than pay for another signature (the two legs of a
/// parallel login share one). A JWT supplied through [`Authenticator::supply_jwt`] also serves the batch it was
/// signed for if the clock ticked into the next second meanwhile.
#[derive(Debug)]
struct CachedJwt {
    exp: u64,
    jwt: Jwt,
    /// Supplied for the batch about to go out, and no answer has come since.
    supplied: bool,
}

impl CachedJwt {
    fn usable_for(&self, exp: u64) -> bool {
        self.exp == exp || (self.supplied && self.exp.saturating_add(1) >= exp)
    }
}

impl Authenticator {
    /// A machine with no tokens. `seed` drives the backoff jitter: the same seed and inputs replay exactly.
    #[must_use]
    pub fn new(config: Config, seed: u64) -> Self {
        Self {
            config,
            tokens: None,
            latest: Generation(0),
            expired: false,
            login: None,
            abandoned: VecDeque::new(),
            next_id: 1,
            events: VecDeque::new(),
            jitter: Jitter::new(seed),
            last_skd: None,
            jwt: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        if self.tokens.is_some() {
            return State::Ready;
        }
        if let Some(login) = &self.login {
            let session_done = matches!(login.session.status, LegStatus::Done(_));
            if session_done && login.key_manager.is_some() {
                return State::NeedsKeyManager;
            }
        }
        if self.expired { State::Expired } else { State::NeedsSession }
    }

    /// Whether a login is under way.
    #[must_use]
    pub fn is_logging_in(&self) -> bool {
        self.login.is_some()
    }

    /// The current tokens; `None` unless [`State::Ready`].
    #[must_use]
    pub fn tokens(&self) -> Option<Arc<Tokens>> {
        self.tokens.clone()
    }

    /// The generation of the latest successful login (0 before the first).
    #[must_use]
    pub fn latest_generation(&self) -> Generation {
        self.latest
    }

    /// Begins a login unless tokens are available or a login is under way. Returns whether one began; poll for
    /// its requests.
    pub fn start(&mut self) -> bool {
        if self.tokens.is_some() || self.login.is_some() {
            return false;
        }
        self.begin_login();
        true
    }

    /// Begins a login even though tokens are available (they stay in use until the new ones arrive), unless one
    /// is under way. Returns whether one began; poll for its requests.
    pub fn refresh(&mut self) -> bool {
        if self.login.is_some() {
            return false;
        }
        self.begin_login();
        true
    }

    /// Drops the login under way, as when the task driving it was cancelled: answers to its requests will be
    /// accepted and ignored, and the next [`start`](Self::start) begins afresh. Returns whether there was one.
    pub fn abort_login(&mut self) -> bool {
        self.jwt = None;
        match self.login.take() {
            Some(login) => {
                self.abandon(&login);
                true
            }
            None => false,
        }
    }

    /// The next login request to send, or `None`. Call after every input until it returns `None`; requests
    /// returned together may be sent concurrently. `now` stamps the JWT.
    #[must_use = "a login request must be sent, and its outcome reported"]
    pub fn poll_request(&mut self, now: UnixTime) -> Option<LoginRequest> {
        self.handle_timeout(now);
        let login = self.login.as_mut()?;
        if matches!(login.agent_check, Some(AgentCheck::Due)) {
            let id = RequestId(self.next_id);
            self.next_id += 1;
            login.agent_check = Some(AgentCheck::InFlight(id));
            let request = agent_info(&self.config.endpoints);
            return Some(LoginRequest { id, endpoint: LoginEndpoint::AgentVersion, request });
        }
        let leg = if matches!(login.session.status, LegStatus::Due) {
            &mut login.session
        } else {
            login.key_manager.as_mut().filter(|leg| matches!(leg.status, LegStatus::Due))?
        };
        let endpoint = leg.endpoint;
        let request = match &self.config.method {
            LoginMethod::Certificate => certificate_login(endpoint, &self.config.endpoints),
            LoginMethod::Rsa(signer) => {
                let exp = now.as_secs().saturating_add(self.config.jwt_lifetime.as_secs());
                let jwt = match self.jwt.take() {
                    Some(cached) if cached.usable_for(exp) => cached,
                    _ => match login_jwt(self.config.username.as_str(), now, self.config.jwt_lifetime, signer.as_ref())
                    {
                        Ok(jwt) => CachedJwt { exp, jwt, supplied: false },
                        Err(error) => {
                            self.fail_login(AuthError::Signing(error));
                            return None;
                        }
                    },
                };
                let request = rsa_login(endpoint, &self.config.endpoints, &jwt.jwt);
                self.jwt = Some(jwt);
                request
            }
        };
        let id = RequestId(self.next_id);
        self.next_id += 1;
        leg.status = LegStatus::InFlight(id);
        Some(LoginRequest { id, endpoint, request })
    }

    /// A login JWT to sign before the next [`poll_request`](Self::poll_request), or `None` (no RSA login request
    /// due, or one already supplied). Sign it where signing does no harm (off a lock, off an async executor, in an
    /// HSM) and hand the result to [`supply_jwt`](Self::supply_jwt). Optional: without it, `poll_request` signs
    /// in place.
    #[must_use]
    pub fn poll_jwt(&mut self, now: UnixTime) -> Option<UnsignedJwt> {
        self.handle_timeout(now);
        let LoginMethod::Rsa(signer) = &self.config.method else { return None };
        let login = self.login.as_ref()?;
        let due = |leg: &Leg| matches!(leg.status, LegStatus::Due);
        if !due(&login.session) && !login.key_manager.as_ref().is_some_and(due) {
            return None;
        }
        let exp = now.as_secs().saturating_add(self.config.jwt_lifetime.as_secs());
        if self.jwt.as_ref().is_some_and(|cached| cached.usable_for(exp)) {
            return None;
        }
        Some(UnsignedJwt::new(self.config.username.as_str(), now, self.config.jwt_lifetime, Arc::clone(signer)))
    }

    /// The outcome of signing what [`poll_jwt`](Self::poll_jwt) handed out: the next requests carry the JWT, or the
    /// login fails with the signer's error. Ignored when the login has ended in the meantime.
    pub fn supply_jwt(&mut self, signed: Result<SignedJwt, SignError>) {
        if self.login.is_none() {
            return;
        }
        match signed {
            Ok(signed) => self.jwt = Some(CachedJwt { exp: signed.exp, jwt: signed.jwt, supplied: true }),
            Err(error) => self.fail_login(AuthError::Signing(error)),
        }
    }

    /// When the next retry is due, if one is waiting: call [`handle_timeout`](Self::handle_timeout) (or
    /// [`poll_request`](Self::poll_request)) at or after it. Changes after every input.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<UnixTime> {
        let login = self.login.as_ref()?;
        [Some(&login.session), login.key_manager.as_ref()]
            .into_iter()
            .flatten()
            .filter_map(|leg| match leg.status {
                LegStatus::Backoff(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Time has passed: retries due by `now` become requests to poll.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        if let Some(login) = &mut self.login {
            for leg in [Some(&mut login.session), login.key_manager.as_mut()].into_iter().flatten() {
                if matches!(leg.status, LegStatus::Backoff(at) if at <= now) {
                    leg.status = LegStatus::Due;
                }
            }
        }
    }

    /// The next event, or `None`. Call after every input until it returns `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The answer to request `id`. Any status is an answer: the machine decides what it means.
    pub fn handle_response(&mut self, id: RequestId, response: &HttpResponse, now: UnixTime) -> Result<(), UsageError> {
        let Some(purpose) = self.purpose_of(id)? else { return Ok(()) };
        if purpose == Purpose::AgentVersion {
            self.after_agent_check(agent_supports_simplified_key_delivery(response));
            return Ok(());
        }
        self.answered();
        let endpoint = self.leg(purpose).map_or(LoginEndpoint::RsaSession, |leg| leg.endpoint);
        let username = self.config.username.to_string();
        let outcome = match read_login_answer(response, now) {
            LoginAnswer::Token(token) => Outcome::Token(token),
            LoginAnswer::Retry { status, retry_after } => {
                Outcome::Retry { cause: FailureCause::Status(status), retry_after }
            }
            LoginAnswer::Rejected { status, server_message, clock_offset_secs } => {
                Outcome::Fatal(AuthError::Rejected { endpoint, username, status, server_message, clock_offset_secs })
            }
            LoginAnswer::Unusable { status, problem, body_prefix } => {
                Outcome::Fatal(AuthError::Protocol { endpoint, status, problem, body_prefix })
            }
        };
        self.settle(purpose, outcome, now);
        Ok(())
    }

    /// Request `id` failed below HTTP (timeout, connection refused or reset, TLS).
    pub fn handle_failure(
        &mut self,
        id: RequestId,
        failure: TransportFailure,
        now: UnixTime,
    ) -> Result<(), UsageError> {
        let Some(purpose) = self.purpose_of(id)? else { return Ok(()) };
        if purpose == Purpose::AgentVersion {
            // As the official SDKs do: an agent whose version cannot be read gets the key manager.
            self.after_agent_check(false);
            return Ok(());
        }
        self.answered();
        let outcome = if failure.kind.is_retryable() {
            Outcome::Retry { cause: FailureCause::Transport(failure), retry_after: None }
        } else {
            let endpoint = self.leg(purpose).map_or(LoginEndpoint::RsaSession, |leg| leg.endpoint);
            Outcome::Fatal(AuthError::Transport { endpoint, username: self.config.username.to_string(), failure })
        };
        self.settle(purpose, outcome, now);
        Ok(())
    }

    /// An API call made with the tokens of `generation` was answered 401. If those are the current tokens they
    /// expire and a login begins; if newer tokens exist, nothing changes. So any number of 401s on one generation
    /// cause one login.
    pub fn report_unauthorized(&mut self, generation: Generation) -> Result<UnauthorizedOutcome, UsageError> {
        if generation.0 == 0 || generation > self.latest {
            return Err(UsageError::UnknownGeneration { reported: generation.0, latest: self.latest.0 });
        }
        if generation < self.latest {
            if let Some(tokens) = &self.tokens {
                return Ok(UnauthorizedOutcome::Stale { current: tokens.generation });
            }
        } else if self.tokens.take().is_some() {
            self.expired = true;
            self.events.push_back(Event::Expired { generation });
        }
        if self.login.is_some() {
            Ok(UnauthorizedOutcome::LoginInProgress)
        } else {
            self.begin_login();
            Ok(UnauthorizedOutcome::LoginStarted)
        }
    }

    /// A login request was answered: a supplied JWT has served its batch.
    fn answered(&mut self) {
        if let Some(cached) = &mut self.jwt {
            cached.supplied = false;
        }
    }

    fn begin_login(&mut self) {
        let (session, key_manager) = match self.config.method {
            LoginMethod::Rsa(_) => (LoginEndpoint::RsaSession, LoginEndpoint::RsaKeyManager),
            LoginMethod::Certificate => (LoginEndpoint::CertificateSession, LoginEndpoint::CertificateKeyManager),
        };
        let parallel = self.config.parallel_login;
        let key_manager = match self.config.key_manager {
            KeyManagerPolicy::Never => None,
            KeyManagerPolicy::Always => Some(Leg::new(key_manager, parallel)),
            // A pod that granted SKD last time will very likely grant it again: ask it first, alone.
            KeyManagerPolicy::Auto => Some(Leg::new(key_manager, parallel && self.last_skd != Some(true))),
        };
        self.login = Some(Login { session: Leg::new(session, true), key_manager, agent_check: None });
    }

    /// Which leg request `id` belongs to: `Ok(None)` for a request the machine already gave up on.
    fn purpose_of(&mut self, id: RequestId) -> Result<Option<Purpose>, UsageError> {
        if let Some(login) = &self.login {
            if login.session.in_flight() == Some(id) {
                return Ok(Some(Purpose::Session));
            }
            if login.key_manager.as_ref().and_then(Leg::in_flight) == Some(id) {
                return Ok(Some(Purpose::KeyManager));
            }
            if matches!(login.agent_check, Some(AgentCheck::InFlight(check)) if check == id) {
                return Ok(Some(Purpose::AgentVersion));
            }
        }
        if let Some(position) = self.abandoned.iter().position(|&a| a == id) {
            self.abandoned.remove(position);
            return Ok(None);
        }
        Err(UsageError::UnknownRequest(id.0))
    }

    fn leg(&self, purpose: Purpose) -> Option<&Leg> {
        let login = self.login.as_ref()?;
        match purpose {
            Purpose::Session => Some(&login.session),
            Purpose::KeyManager => login.key_manager.as_ref(),
            Purpose::AgentVersion => None,
        }
    }

    fn leg_mut(&mut self, purpose: Purpose) -> Option<&mut Leg> {
        let login = self.login.as_mut()?;
        match purpose {
            Purpose::Session => Some(&mut login.session),
            Purpose::KeyManager => login.key_manager.as_mut(),
            Purpose::AgentVersion => None,
        }
    }

    fn settle(&mut self, purpose: Purpose, outcome: Outcome, now: UnixTime) {
        let outcome = match outcome {
            Outcome::Retry { cause, retry_after } => match self.schedule_retry(purpose, cause, retry_after, now) {
                Some(exhausted) => Outcome::Fatal(exhausted),
                None => return,
            },
            other => other,
        };
        match (purpose, outcome) {
            (_, Outcome::Retry { .. }) | (Purpose::AgentVersion, _) => {}
            (Purpose::Session, Outcome::Fatal(error)) => self.fail_login(error),
            (Purpose::KeyManager, Outcome::Fatal(error)) => {
                let verdict_pending = self.login.as_ref().is_some_and(|login| {
                    !matches!(login.session.status, LegStatus::Done(_)) || login.agent_check.is_some()
                });
                if self.config.key_manager == KeyManagerPolicy::Auto && verdict_pending {
                    // Simplified key delivery may yet make the key manager unnecessary: wait for the session (and
                    // the agent's version).
                    if let Some(leg) = self.leg_mut(purpose) {
                        leg.status = LegStatus::Failed(error);
                    }
                } else {
                    self.fail_login(error);
                }
            }
            (Purpose::Session, Outcome::Token(token)) => {
                let skd = grants_simplified_key_delivery(token.token.expose());
                if let Some(leg) = self.leg_mut(purpose) {
                    leg.status = LegStatus::Done(token);
                }
                self.after_session(skd);
            }
            (Purpose::KeyManager, Outcome::Token(token)) => {
                if let Some(leg) = self.leg_mut(purpose) {
                    leg.status = LegStatus::Done(token);
                }
                self.finish_if_complete();
            }
        }
    }

    /// Counts a retryable failure: schedules the next attempt, or returns the error when the policy is spent.
    fn schedule_retry(
        &mut self,
        purpose: Purpose,
        cause: FailureCause,
        retry_after: Option<Duration>,
        now: UnixTime,
    ) -> Option<AuthError> {
        let login = self.login.as_mut()?;
        let leg = match purpose {
            Purpose::Session => &mut login.session,
            Purpose::KeyManager => login.key_manager.as_mut()?,
            Purpose::AgentVersion => return None,
        };
        leg.failures += 1;
        if leg.failures >= self.config.retry.max_attempts() {
            return Some(AuthError::Unavailable {
                endpoint: leg.endpoint,
                username: self.config.username.to_string(),
                attempts: leg.failures,
                last: cause,
            });
        }
        let delay = self.config.retry.delay(leg.failures, retry_after, &mut self.jitter);
        leg.status = LegStatus::Backoff(now.saturating_add(delay));
        self.events.push_back(Event::RetryScheduled { endpoint: leg.endpoint, attempt: leg.failures, delay, cause });
        None
    }

    /// The session token arrived: decide whether the key manager is still needed.
    fn after_session(&mut self, skd: bool) {
        self.last_skd = Some(skd);
        let dedicated_agent = self.config.endpoints.agent != self.config.endpoints.pod;
        let Some(login) = self.login.as_mut() else { return };
        if skd && self.config.key_manager == KeyManagerPolicy::Auto && login.key_manager.is_some() {
            if dedicated_agent {
                // Only agents from 24.12 on deliver keys without the key manager: ask this one its version.
                login.agent_check = Some(AgentCheck::Due);
            } else {
                // The agent sits with the pod, which granted SKD: trust the claim.
                self.skip_key_manager();
            }
        } else {
            self.key_manager_needed();
        }
    }

    /// The agent answered (or failed to answer) its version.
    fn after_agent_check(&mut self, supports_skd: bool) {
        let Some(login) = self.login.as_mut() else { return };
        login.agent_check = None;
        if supports_skd { self.skip_key_manager() } else { self.key_manager_needed() }
    }

    fn skip_key_manager(&mut self) {
        let Some(login) = self.login.as_mut() else { return };
        if let Some(id) = login.key_manager.take().and_then(|leg| leg.in_flight()) {
            self.remember_abandoned(id);
        }
        self.finish_if_complete();
    }

    fn key_manager_needed(&mut self) {
        let Some(login) = self.login.as_mut() else { return };
        if let Some(leg) = login.key_manager.as_mut() {
            match std::mem::replace(&mut leg.status, LegStatus::Idle) {
                LegStatus::Idle => leg.status = LegStatus::Due,
                LegStatus::Failed(error) => return self.fail_login(error),
                other => leg.status = other,
            }
        }
        self.finish_if_complete();
    }

    fn finish_if_complete(&mut self) {
        let Some(login) = &self.login else { return };
        let LegStatus::Done(session) = &login.session.status else { return };
        let key_manager = match &login.key_manager {
            None => None,
            Some(Leg { status: LegStatus::Done(token), .. }) => Some(token.token.clone()),
            Some(_) => return,
        };
        let skd = grants_simplified_key_delivery(session.token.expose());
        let outcome = match (&key_manager, self.config.key_manager) {
            (Some(_), _) => KeyManagerOutcome::Obtained,
            (None, KeyManagerPolicy::Never) => KeyManagerOutcome::Disabled,
            (None, _) => KeyManagerOutcome::SkippedBySimplifiedKeyDelivery,
        };
        let session = SessionToken(session.token.clone());
        let authorization = match &login.session.status {
            LegStatus::Done(issued) => issued.authorization.clone().map(AuthorizationToken),
            _ => None,
        };
        // If the key-manager token came before the agent's version, that answer no longer matters.
        if let Some(login) = self.login.take() {
            self.abandon(&login);
        }
        self.latest = Generation(self.latest.0 + 1);
        let tokens = Tokens {
            generation: self.latest,
            session,
            key_manager: key_manager.map(KeyManagerToken),
            authorization,
            simplified_key_delivery: skd,
        };
        self.tokens = Some(Arc::new(tokens));
        self.expired = false;
        self.jwt = None;
        self.events.push_back(Event::Authenticated { generation: self.latest, key_manager: outcome });
    }

    fn fail_login(&mut self, error: AuthError) {
        self.jwt = None;
        if let Some(login) = self.login.take() {
            self.abandon(&login);
        }
        self.events.push_back(Event::LoginFailed(error));
    }

    fn abandon(&mut self, login: &Login) {
        let check = match login.agent_check {
            Some(AgentCheck::InFlight(id)) => Some(id),
            _ => None,
        };
        let legs = [login.session.in_flight(), login.key_manager.as_ref().and_then(Leg::in_flight)];
        for id in legs.into_iter().chain([check]).flatten() {
            self.remember_abandoned(id);
        }
    }

    fn remember_abandoned(&mut self, id: RequestId) {
        if self.abandoned.len() == ABANDONED_MEMORY {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back(id);
    }
}
