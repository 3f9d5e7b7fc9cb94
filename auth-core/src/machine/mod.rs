//! The authentication state machine. Every protocol decision lives here: which login to send next, what an answer
//! means, whether and when to retry, whether the key manager is needed, what a 401 on an API call means, and how
//! long a failed login keeps answering with its error. A driver runs one loop over [`Output`].
//!
//! ```text
//!                   poll_output / refresh                      session token
//!  NeedsSession ─────────────────────────▶ NeedsSession ───────────────────────▶ NeedsKeyManager
//!  {logging_in: false}                     {logging_in: true}                            │
//!       ▲    ▲                                 │    │ session token, key manager       │ key-manager token
//!       │    └─── login failed (cool-down) ────┘    │ not needed (SKD + agent ≥ 24.12,   │ (or, under SKD, the
//!       │                                           │ policy Never)                      │  agent's version)
//!       │                                           ▼                                    ▼
//!       │   Expired {logging_in} ◀── 401 on the current generation ── Ready {generation, refreshing}
//!       └────────── (as NeedsSession, from Expired) ───┘                 ▲   │ refresh: a login under way,
//!                                                                        └───┘ the old tokens still in use
//! ```

mod login;
mod output;
mod transitions;

pub use output::{Event, KeyManagerOutcome, LoginRequest, Output, RequestId, State, UnauthorizedOutcome};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use crate::HttpResponse;
use crate::config::{Config, KeyManagerPolicy, LoginMethod};
use crate::endpoint::{LoginEndpoint, Purpose};
use crate::error::{AuthError, FailureCause, SignError, TransportFailure, TransportKind, UsageError};
use crate::jwt::{Jwt, SignedJwt, UnsignedJwt};
use crate::obo::obo_user_login;
use crate::request::{agent_info, certificate_login, rsa_login};
use crate::response::{LoginAnswer, agent_supports_simplified_key_delivery, read_login_answer_with};
use crate::retry::Jitter;
use crate::time::UnixTime;
use crate::tokens::{Generation, SessionToken, Tokens};

use login::{AgentCheck, Leg, LegStatus, Login};

/// How many settled-by-the-machine request ids are remembered, so that late answers to them are accepted quietly.
const ABANDONED_MEMORY: usize = 64;

/// The result of a login that failed, kept to answer callers during its cool-down.
#[derive(Debug)]
struct Failure {
    error: AuthError,
    /// Until when callers get this error without a new login.
    until: UnixTime,
    /// Failed logins in a row, for the growth of the cool-down.
    consecutive: u32,
    /// Whether a poll has handed it out; it is handed out at least once, however short the cool-down.
    delivered: bool,
}

/// What the bot holds.
#[derive(Debug)]
enum Held {
    Nothing,
    Tokens(Arc<Tokens>),
    Expired(Generation),
}

/// A login JWT signed for requests whose `exp` would be `exp`: every login request of that second carries it, so
/// that a parallel login costs one signature. A JWT supplied through [`Authenticator::supply_jwt`] also serves the
/// batch it was signed for however late it comes, while at least half its lifetime is left: under load (a thousand
/// bots signing on two cores) signatures queue for seconds, and asking again for every late one would sign forever.
#[derive(Debug)]
struct CachedJwt {
    exp: u64,
    jwt: Jwt,
    /// Supplied for the batch about to go out, and no answer has come since.
    supplied: bool,
}

impl CachedJwt {
    /// Whether requests whose fresh JWT would have `exp` may carry this one, signed with `lifetime_secs`.
    fn usable_for(&self, exp: u64, lifetime_secs: u64) -> bool {
        self.exp == exp || (self.supplied && self.exp.saturating_add((lifetime_secs / 2).max(1)) >= exp)
    }
}

/// What became of one login attempt.
enum Outcome {
    Token(crate::response::IssuedToken),
    Retry { cause: FailureCause, retry_after: Option<Duration> },
    Fatal(AuthError),
}

/// The sans-IO authentication machine for one bot.
///
/// The loop: call [`poll_output`](Self::poll_output) and do what it says until it returns [`Output::Done`];
/// report answers with [`handle_response`](Self::handle_response) / [`handle_failure`](Self::handle_failure) and
/// signatures with [`supply_jwt`](Self::supply_jwt). Other inputs: [`refresh`](Self::refresh),
/// [`report_unauthorized`](Self::report_unauthorized), [`abandon_requests`](Self::abandon_requests),
/// [`handle_timeout`](Self::handle_timeout). Events ([`poll_event`](Self::poll_event)) are for logs only.
///
/// Time is an input: every call that needs it takes `now`. A `now` earlier than one seen before (the wall clock
/// was set back) moves every pending deadline back by as much, so that no wait grows.
#[derive(Debug)]
pub struct Authenticator {
    config: Config,
    held: Held,
    login: Option<Login>,
    failure: Option<Failure>,
    latest: Generation,
    /// The latest `now` seen.
    clock: Option<UnixTime>,
    abandoned: VecDeque<RequestId>,
    next_id: u64,
    events: VecDeque<Event>,
    jitter: Jitter,
    /// Whether the last session token granted simplified key delivery.
    last_skd: Option<bool>,
    jwt: Option<CachedJwt>,
    /// What the events polled so far mean for the `tracing` of those to come.
    #[cfg(feature = "tracing")]
    trace: crate::trace::LoginTrace,
}

impl Authenticator {
    /// A machine with no tokens. `seed` drives the backoff jitter: the same seed and inputs replay exactly.
    #[must_use]
    pub fn new(config: Config, seed: u64) -> Self {
        Self {
            config,
            held: Held::Nothing,
            login: None,
            failure: None,
            latest: Generation(0),
            clock: None,
            abandoned: VecDeque::new(),
            next_id: 1,
            events: VecDeque::new(),
            jitter: Jitter::new(seed),
            last_skd: None,
            jwt: None,
            #[cfg(feature = "tracing")]
            trace: crate::trace::LoginTrace::default(),
        }
    }

    /// A seed for the jitter of an API call's retries, drawn from the machine's own generator so that a run
    /// replays from the machine's seed.
    pub(crate) fn next_seed(&mut self) -> u64 {
        self.jitter.next_u64()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        let logging_in = self.login.is_some();
        match (&self.held, &self.login) {
            (Held::Tokens(tokens), _) => State::Ready { generation: tokens.generation, refreshing: logging_in },
            (_, Some(login)) if login.session_done().is_some() => State::NeedsKeyManager,
            (Held::Expired(generation), _) => State::Expired { generation: *generation, logging_in },
            (Held::Nothing, _) => State::NeedsSession { logging_in },
        }
    }

    /// The current tokens, if any.
    #[must_use]
    pub fn tokens(&self) -> Option<Arc<Tokens>> {
        match &self.held {
            Held::Tokens(tokens) => Some(Arc::clone(tokens)),
            _ => None,
        }
    }

    /// The generation of the latest successful login (0 before the first).
    #[must_use]
    pub fn latest_generation(&self) -> Generation {
        self.latest
    }

    /// The latest `now` the machine was told.
    #[must_use]
    pub fn last_seen(&self) -> Option<UnixTime> {
        self.clock
    }

    /// The last login's failure while it is still handed out instead of a new login: the error and the end of its
    /// cool-down. A `now` before the last time the machine was told is read as the clock stepping back, as the next
    /// input would read it, so the cool-down left never exceeds its length.
    #[must_use]
    pub fn cooling_down(&self, now: UnixTime) -> Option<(&AuthError, UnixTime)> {
        let failure = self.failure.as_ref()?;
        let until = match self.clock {
            Some(seen) if now < seen => shift_back(failure.until, seen.saturating_since(now)),
            _ => failure.until,
        };
        (now < until).then_some((&failure.error, until))
    }

    /// What to do next. Begins a login when there are no tokens, none is under way and no failed login is cooling
    /// down. Time passes here too: retries due by `now` become requests.
    pub fn poll_output(&mut self, now: UnixTime) -> Output {
        self.handle_timeout(now);
        if self.login.is_none() {
            // A failed login is reported once before anything else, so that a failed refresh is not hidden by the
            // tokens it meant to replace.
            if let Some(failure) = self.failure.as_mut().filter(|f| !f.delivered) {
                failure.delivered = true;
                return Output::Done(Err(failure.error.clone()));
            }
            if let Held::Tokens(tokens) = &self.held {
                return Output::Done(Ok(Arc::clone(tokens)));
            }
            if let Some((error, _until)) = self.cooling_down(now) {
                #[cfg(feature = "tracing")]
                crate::trace::refused(&self.config, error, _until.saturating_since(now));
                return Output::Done(Err(error.clone()));
            }
            self.begin_login(false);
        }
        if let Some(output) = self.next_work(now) {
            return output;
        }
        self.conclude(now);
        match self.next_work(now) {
            Some(output) => output,
            // `conclude` ended the login (or left a request due, which `next_work` hands out).
            None => self.poll_output(now),
        }
    }

    /// The work the login under way needs, if any.
    fn next_work(&mut self, now: UnixTime) -> Option<Output> {
        let login = self.login.as_mut()?;
        if login.agent_check == Some(AgentCheck::Due) {
            let id = RequestId(self.next_id);
            self.next_id += 1;
            login.agent_check = Some(AgentCheck::InFlight(id));
            let mut request = agent_info(&self.config.endpoints);
            self.config.default_headers.apply(LoginEndpoint::AgentVersion.service(), request.headers_mut());
            return Some(Output::Send(vec![LoginRequest { id, endpoint: LoginEndpoint::AgentVersion, request }]));
        }
        if login.legs().any(Leg::is_due) {
            let signs = login.legs().any(|leg| leg.is_due() && leg.endpoint.signs_jwt());
            if let (true, LoginMethod::Rsa(signer)) = (signs, &self.config.method) {
                let exp = now.as_secs().saturating_add(self.config.jwt_lifetime.as_secs());
                if !self.jwt.as_ref().is_some_and(|cached| cached.usable_for(exp, self.config.jwt_lifetime.as_secs())) {
                    let (username, lifetime) = (self.config.username.as_str(), self.config.jwt_lifetime);
                    return Some(Output::Sign(UnsignedJwt::new(username, now, lifetime, Arc::clone(signer))));
                }
            }
            return Some(Output::Send(self.send_due()));
        }
        if login.in_flight().next().is_some() {
            return Some(Output::AwaitAnswers);
        }
        login.next_deadline().map(Output::WaitUntil)
    }

    /// Hands out every due leg as a request.
    fn send_due(&mut self) -> Vec<LoginRequest> {
        let mut batch = Vec::with_capacity(2);
        let Some(login) = self.login.as_mut() else { return batch };
        let app_session = login.app_session.clone().map(SessionToken);
        for leg in [Some(&mut login.session), login.key_manager.as_mut()].into_iter().flatten() {
            if !leg.is_due() {
                continue;
            }
            let mut request = match (&self.jwt, &self.config.obo, &app_session) {
                (_, Some(user), Some(app)) if leg.endpoint.is_obo_user() => {
                    obo_user_login(leg.endpoint, &self.config.endpoints, user, app)
                }
                (Some(cached), _, _) if leg.endpoint.signs_jwt() => {
                    rsa_login(leg.endpoint, &self.config.endpoints, &cached.jwt)
                }
                _ => certificate_login(leg.endpoint, &self.config.endpoints),
            };
            self.config.default_headers.apply(leg.endpoint.service(), request.headers_mut());
            let id = RequestId(self.next_id);
            self.next_id += 1;
            leg.status = LegStatus::InFlight(id);
            batch.push(LoginRequest { id, endpoint: leg.endpoint, request });
        }
        batch
    }

    /// The outcome of signing what [`Output::Sign`] handed out: the next requests carry the JWT, or the login fails
    /// with the signer's error. Ignored when no login is under way.
    pub fn supply_jwt(&mut self, signed: Result<SignedJwt, SignError>, now: UnixTime) {
        self.observe(now);
        if self.login.is_none() {
            return;
        }
        match signed {
            Ok(signed) => self.jwt = Some(CachedJwt { exp: signed.exp, jwt: signed.jwt, supplied: true }),
            Err(error) => self.fail_login(AuthError::Signing(error), now),
        }
    }

    /// Time has passed. Retries due by `now` become requests at the next poll. Idempotent; a `now` earlier than
    /// one seen before moves pending deadlines back by the difference.
    pub fn handle_timeout(&mut self, now: UnixTime) {
        self.observe(now);
        if let Some(login) = &mut self.login {
            for leg in login.legs_mut() {
                if leg.backoff_until().is_some_and(|until| until <= now) {
                    leg.status = LegStatus::Due;
                }
            }
        }
    }

    /// Keeps deadlines relative when the wall clock steps back.
    fn observe(&mut self, now: UnixTime) {
        let Some(seen) = self.clock.replace(now) else { return };
        if now >= seen {
            return;
        }
        let back = seen.saturating_since(now);
        let shift = |t: UnixTime| shift_back(t, back);
        if let Some(login) = &mut self.login {
            for leg in login.legs_mut() {
                if let LegStatus::Backoff { since, until } = leg.status {
                    leg.status = LegStatus::Backoff { since: shift(since), until: shift(until) };
                }
            }
        }
        if let Some(failure) = &mut self.failure {
            failure.until = shift(failure.until);
        }
    }

    /// The next event, or `None`. Events are for logs and metrics; drain them after each input.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        #[cfg(feature = "tracing")]
        if let Some(event) = &event {
            self.trace.event(&self.config, self.clock, event);
        }
        event
    }

    /// Begins a login even though tokens are available (they stay in use until the new ones arrive) or a failed
    /// login is cooling down, unless one is under way. Returns whether one began.
    pub fn refresh(&mut self, now: UnixTime) -> bool {
        self.observe(now);
        if self.login.is_some() {
            return false;
        }
        if let Some(failure) = &mut self.failure {
            failure.until = now;
            failure.delivered = true;
        }
        self.begin_login(true);
        true
    }

    /// The requests handed out so far will never be reported (the task driving the login was cancelled, or it
    /// panicked). Each counts as a failed attempt, so that the backoff and any `Retry-After` still hold for whoever
    /// drives the login next; late answers to them are accepted and ignored.
    pub fn abandon_requests(&mut self, now: UnixTime) {
        self.observe(now);
        let Some(login) = self.login.as_mut() else { return };
        let ids: Vec<RequestId> = login.in_flight().collect();
        if let Some(AgentCheck::InFlight(_)) = login.agent_check {
            login.agent_check = Some(AgentCheck::Due);
        }
        for id in ids {
            self.remember_abandoned(id);
        }
        self.answered();
        let abandoned: Vec<Purpose> = [Purpose::Session, Purpose::KeyManager]
            .into_iter()
            .filter(|purpose| self.leg(*purpose).is_some_and(|leg| leg.in_flight().is_some()))
            .collect();
        for purpose in abandoned {
            let cause = FailureCause::Transport(TransportFailure::new(
                TransportKind::Other,
                "abandoned: the caller driving the login stopped before the answer",
            ));
            self.settle(purpose, Outcome::Retry { cause, retry_after: None }, now);
        }
    }

    /// The answer to request `id`. Any status is an answer: the machine decides what it means.
    ///
    /// # Errors
    /// [`UsageError::UnknownRequest`] for an id this machine never handed out.
    pub fn handle_response(&mut self, id: RequestId, response: &HttpResponse, now: UnixTime) -> Result<(), UsageError> {
        self.observe(now);
        let Some((purpose, endpoint)) = self.purpose_of(id)? else { return Ok(()) };
        if purpose == Purpose::AgentVersion {
            self.after_agent_check(agent_supports_simplified_key_delivery(response), now);
            return Ok(());
        }
        self.answered();
        let username = self.config.username.to_string();
        // The certificate OBO user logins answer `{"sessionToken": ...}` rather than a `Token` (PROTOCOL §15.22).
        let field = match endpoint {
            LoginEndpoint::CertificateOboUserId | LoginEndpoint::CertificateOboUsername => "sessionToken",
            _ => "token",
        };
        let obo_user = self.config.obo.as_ref().filter(|_| endpoint.is_obo_user()).map(ToString::to_string);
        let outcome = match (read_login_answer_with(response, now, field), obo_user) {
            (LoginAnswer::Rejected { status: status @ (401 | 403), .. }, Some(user)) => {
                Outcome::Fatal(AuthError::OboNotInstalled { endpoint, app_id: username, user, status })
            }
            (LoginAnswer::Unusable { status: 404, .. }, Some(user)) => {
                Outcome::Fatal(AuthError::OboUnknownUser { endpoint, user })
            }
            (answer, _) => self.outcome_of(answer, endpoint, username),
        };
        self.settle(purpose, outcome, now);
        Ok(())
    }

    /// What a login answer means for its leg.
    fn outcome_of(&self, answer: LoginAnswer, endpoint: LoginEndpoint, username: String) -> Outcome {
        match answer {
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
        }
    }

    /// Request `id` failed below HTTP (timeout, connection refused or reset, TLS).
    ///
    /// # Errors
    /// [`UsageError::UnknownRequest`] for an id this machine never handed out.
    pub fn handle_failure(
        &mut self,
        id: RequestId,
        failure: TransportFailure,
        now: UnixTime,
    ) -> Result<(), UsageError> {
        self.observe(now);
        let Some((purpose, endpoint)) = self.purpose_of(id)? else { return Ok(()) };
        if purpose == Purpose::AgentVersion {
            // As the official SDKs do: an agent whose version cannot be read gets the key manager.
            self.after_agent_check(false, now);
            return Ok(());
        }
        self.answered();
        let outcome = if failure.kind.is_retryable() {
            Outcome::Retry { cause: FailureCause::Transport(failure), retry_after: None }
        } else {
            Outcome::Fatal(AuthError::Transport { endpoint, username: self.config.username.to_string(), failure })
        };
        self.settle(purpose, outcome, now);
        Ok(())
    }

    /// An API call made with the tokens of `generation` was answered 401. If those are the current tokens they
    /// expire, and the next poll logs in again; if newer tokens exist, nothing changes. So any number of 401s on
    /// one generation cause one login.
    ///
    /// # Errors
    /// [`UsageError::UnknownGeneration`] for a generation this machine never issued.
    pub fn report_unauthorized(&mut self, generation: Generation) -> Result<UnauthorizedOutcome, UsageError> {
        if generation.0 == 0 || generation > self.latest {
            return Err(UsageError::UnknownGeneration { reported: generation.0, latest: self.latest.0 });
        }
        if generation < self.latest {
            return Ok(UnauthorizedOutcome::Stale { current: self.latest });
        }
        match self.held {
            Held::Tokens(_) => {
                self.held = Held::Expired(generation);
                self.events.push_back(Event::Expired { generation });
                Ok(UnauthorizedOutcome::Expired)
            }
            Held::Expired(_) | Held::Nothing => Ok(UnauthorizedOutcome::AlreadyExpired),
        }
    }

    /// The tokens of `generation` were logged out: if they are the current ones, they are no longer handed out and
    /// the next poll logs in again. Returns whether they were forgotten.
    pub(crate) fn forget_tokens(&mut self, generation: Generation) -> bool {
        if !matches!(&self.held, Held::Tokens(tokens) if tokens.generation == generation) {
            return false;
        }
        self.held = Held::Nothing;
        self.events.push_back(Event::LoggedOut { generation });
        true
    }

    /// A login request was answered: a supplied JWT has served its batch.
    fn answered(&mut self) {
        if let Some(cached) = &mut self.jwt {
            cached.supplied = false;
        }
    }

    fn begin_login(&mut self, refresh: bool) {
        self.events.push_back(Event::LoginStarted { refresh: refresh && matches!(self.held, Held::Tokens(_)) });
        if self.config.obo.is_some() {
            // OBO: the app's own session first; the user step follows it (see `settle`). No key manager.
            let app = match self.config.method {
                LoginMethod::Rsa(_) => LoginEndpoint::RsaAppSession,
                LoginMethod::Certificate => LoginEndpoint::CertificateAppSession,
            };
            let session = Leg::new(app, true);
            self.login = Some(Login { session, key_manager: None, agent_check: None, app_session: None });
            return;
        }
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
        self.login =
            Some(Login { session: Leg::new(session, true), key_manager, agent_check: None, app_session: None });
    }

    /// Which leg request `id` belongs to, with its endpoint: `Ok(None)` for a request the machine gave up on.
    fn purpose_of(&mut self, id: RequestId) -> Result<Option<(Purpose, LoginEndpoint)>, UsageError> {
        if let Some(login) = &self.login {
            for leg in login.legs() {
                if leg.in_flight() == Some(id) {
                    return Ok(Some((leg.endpoint.purpose(), leg.endpoint)));
                }
            }
            if login.agent_check == Some(AgentCheck::InFlight(id)) {
                return Ok(Some((Purpose::AgentVersion, LoginEndpoint::AgentVersion)));
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
}

/// `t` moved `back` earlier, as a deadline moves when the wall clock steps back.
fn shift_back(t: UnixTime, back: Duration) -> UnixTime {
    UnixTime::from_millis(t.as_millis().saturating_sub(duration_millis(back)))
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
