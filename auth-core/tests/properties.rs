//! The machine and its single flight checked against a small reference model over generated sequences of inputs:
//! answers in any order (with `Retry-After` in seconds and as an HTTP date), failures, signing through
//! `Output::Sign` + `supply_jwt`, time passing and going backwards, 401s (during a login too), refreshes, abandoned
//! requests, and callers that join, follow, lead and leave.
//!
//! The model states what the protocol allows, not how the machine does it:
//! - **tokens**: tokens handed out (by `Done` or `tokens()`) belong to the newest login, were never reported with a
//!   401, carry a session token the pod issued to a session login and used by no other generation, and a
//!   key-manager token the pod issued exactly when the policy (and the session's SKD claim) requires one;
//! - **waits**: a retry is scheduled for the n-th failure in a row of that endpoint with exactly the capped
//!   `Retry-After`, or the capped exponential backoff shortened by at most the jitter; `WaitUntil` is the earliest of
//!   those deadlines (moved back with the clock), and no endpoint is sent again before its deadline;
//! - **logins**: a login begins only when it is needed (no valid tokens, no cool-down running) or asked for
//!   (`refresh`, `Want::Fresh`); after a failure callers get that error until the cool-down, growing with failures in
//!   a row, ends; followers get the outcome of the login they followed.

mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use support::{START, response, token_body};
use symphony_auth_core::{
    AuthError, Authenticator, BaseUrl, Caller, Config, CoolDown, Endpoints, Event, Flight, Generation, HttpResponse,
    KeyManagerPolicy, LoginEndpoint, Output, RequestId, RetryPolicy, Step as FlightStep, Tokens, TransportFailure,
    TransportKind, UnauthorizedOutcome, UnixTime, UnsignedJwt, UsageError, Want,
};

// ---------------------------------------------------------------------------------------------------------------
// Generated inputs.

#[derive(Clone, Debug)]
enum RetryAfter {
    Secs(u64),
    /// An HTTP date this many seconds after (or before) the answer.
    Date(i64),
    Junk,
}

#[derive(Clone, Debug)]
enum Answer {
    Token { skd: bool },
    AgentVersion { supports_skd: bool },
    Status { status: u16, retry_after: Option<RetryAfter> },
    Garbage,
    Failure(TransportKind),
}

fn retry_after() -> impl Strategy<Value = Option<RetryAfter>> {
    prop_oneof![
        3 => Just(None),
        2 => (0u64..200_000).prop_map(|s| Some(RetryAfter::Secs(s))),
        2 => (-30i64..200).prop_map(|s| Some(RetryAfter::Date(s))),
        1 => Just(Some(RetryAfter::Junk)),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        5 => any::<bool>().prop_map(|skd| Answer::Token { skd }),
        2 => any::<bool>().prop_map(|supports_skd| Answer::AgentVersion { supports_skd }),
        4 => (prop::sample::select(vec![500u16, 502, 503, 429, 408, 400, 401, 403, 404, 302]), retry_after())
            .prop_map(|(status, retry_after)| Answer::Status { status, retry_after }),
        1 => Just(Answer::Garbage),
        2 => prop::sample::select(vec![
            TransportKind::Timeout,
            TransportKind::Connect,
            TransportKind::Reset,
            TransportKind::Tls,
            TransportKind::Other,
        ])
        .prop_map(Answer::Failure),
    ]
}

/// The machine's configuration: what the model needs to know of it.
#[derive(Clone, Debug)]
struct Setup {
    attempts: u32,
    initial_ms: u64,
    multiplier: f64,
    max_interval_secs: u64,
    jitter: f64,
    cool_first_ms: u64,
    cool_max_secs: u64,
    policy: KeyManagerPolicy,
    parallel: bool,
    dedicated_agent: bool,
    seed: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        (1u32..7, 10u64..2_000, prop::sample::select(vec![1.0, 1.5, 2.0, 3.0]), 2u64..120),
        (prop::sample::select(vec![0.0, 0.2, 0.5, 1.0]), 0u64..3_000, 3u64..100),
        (
            prop::sample::select(vec![KeyManagerPolicy::Auto, KeyManagerPolicy::Always, KeyManagerPolicy::Never]),
            any::<bool>(),
            any::<bool>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (attempts, initial_ms, multiplier, max_interval_secs),
                (jitter, cool_first_ms, cool_max_secs),
                (policy, parallel, dedicated_agent, seed),
            )| Setup {
                attempts,
                initial_ms,
                multiplier,
                max_interval_secs,
                jitter,
                cool_first_ms,
                cool_max_secs,
                policy,
                parallel,
                dedicated_agent,
                seed,
            },
        )
}

impl Setup {
    fn retry(&self) -> RetryPolicy {
        RetryPolicy::new(
            self.attempts,
            Duration::from_millis(self.initial_ms),
            self.multiplier,
            Duration::from_secs(self.max_interval_secs),
        )
        .unwrap()
        .with_jitter(self.jitter)
        .unwrap()
    }

    fn cool_down(&self) -> CoolDown {
        let first = Duration::from_millis(self.cool_first_ms);
        CoolDown::new(first, Duration::from_secs(self.cool_max_secs).max(first)).unwrap()
    }

    fn config(&self) -> Config {
        let mut endpoints = Endpoints::single("https://pod.example").unwrap();
        if self.dedicated_agent {
            endpoints.agent = BaseUrl::parse("agent", "https://agent.example").unwrap();
        }
        Config::rsa(endpoints, "bot.user", Arc::new(support::ConstantSigner))
            .unwrap()
            .with_retry(self.retry())
            .with_cool_down(self.cool_down())
            .with_key_manager(self.policy)
            .with_parallel_login(self.parallel)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The reference model.

fn is_login_leg(endpoint: LoginEndpoint) -> bool {
    !matches!(endpoint, LoginEndpoint::AgentVersion)
}

fn shift(t: UnixTime, back: u64) -> UnixTime {
    UnixTime::from_millis(t.as_millis().saturating_sub(back))
}

struct Model {
    setup: Setup,
    /// The latest `now` the machine was given, for the clock going backwards.
    clock: Option<UnixTime>,
    /// Session tokens the pod issued, with whether they grant SKD; key-manager tokens the pod issued.
    issued_sessions: HashMap<String, bool>,
    issued_key_manager: HashSet<String>,
    /// The session token handed out with each generation.
    session_of: HashMap<u64, String>,
    /// Successful logins so far.
    logins_done: u64,
    /// Generations reported with a 401.
    revoked: BTreeSet<u64>,
    login_active: bool,
    /// Failed attempts in a row, per endpoint, in the login under way.
    failures: HashMap<LoginEndpoint, u32>,
    /// When each endpoint in backoff may be sent again.
    deadlines: HashMap<LoginEndpoint, UnixTime>,
    /// Failed logins in a row.
    consecutive: u32,
    /// The last failed login's error and the end of its cool-down.
    failure: Option<(AuthError, UnixTime)>,
    /// A failed login not yet handed out by `Done`.
    undelivered: Option<AuthError>,
    /// The retry the next `RetryScheduled` of this endpoint must have: the `Retry-After` given, if any.
    expected_retry: HashMap<LoginEndpoint, Option<Duration>>,
    /// Whether the current step may begin a login, and as a refresh of valid tokens.
    may_begin: Option<bool>,
}

impl Model {
    fn new(setup: Setup) -> Self {
        Self {
            setup,
            clock: None,
            issued_sessions: HashMap::new(),
            issued_key_manager: HashSet::new(),
            session_of: HashMap::new(),
            logins_done: 0,
            revoked: BTreeSet::new(),
            login_active: false,
            failures: HashMap::new(),
            deadlines: HashMap::new(),
            consecutive: 0,
            failure: None,
            undelivered: None,
            expected_retry: HashMap::new(),
            may_begin: None,
        }
    }

    fn valid_tokens(&self) -> bool {
        self.logins_done > 0 && !self.revoked.contains(&self.logins_done)
    }

    fn cooling(&self, now: UnixTime) -> bool {
        self.failure.as_ref().is_some_and(|(_, until)| now < *until)
    }

    /// The machine was given `now`: a clock set back moves every deadline back by as much.
    fn observe(&mut self, now: UnixTime) {
        let Some(seen) = self.clock.replace(now) else { return };
        if now >= seen {
            return;
        }
        let back = seen.as_millis() - now.as_millis();
        for deadline in self.deadlines.values_mut() {
            *deadline = shift(*deadline, back);
        }
        if let Some((_, until)) = &mut self.failure {
            *until = shift(*until, back);
        }
    }

    /// The cool-down after `consecutive` failed logins: `first`, doubling, capped.
    fn cool_down(&self, consecutive: u32) -> Duration {
        let first = Duration::from_millis(self.setup.cool_first_ms);
        let max = Duration::from_secs(self.setup.cool_max_secs).max(first);
        let mut wait = first;
        for _ in 1..consecutive {
            wait = wait.saturating_mul(2).min(max);
        }
        wait.min(max)
    }

    /// Expected bounds of the retry after the `attempt`-th failure: the capped `Retry-After`, or the capped
    /// exponential backoff shortened by at most the jitter.
    fn retry_bounds(&self, attempt: u32, retry_after: Option<Duration>) -> (Duration, Duration) {
        let cap = Duration::from_secs(self.setup.max_interval_secs);
        if let Some(after) = retry_after {
            let exact = after.min(cap);
            return (exact, exact);
        }
        let base = (self.setup.initial_ms as f64 / 1000.0) * self.setup.multiplier.powi(attempt as i32 - 1);
        let base = base.min(cap.as_secs_f64());
        let low = base * (1.0 - self.setup.jitter);
        let slack = 0.001;
        (Duration::from_secs_f64((low - slack).max(0.0)), Duration::from_secs_f64(base + slack))
    }

    /// Checks tokens handed out against what the pod issued and what was reported.
    fn check_tokens(&mut self, tokens: &Tokens) -> Result<(), TestCaseError> {
        let generation = tokens.generation().get();
        prop_assert!(!self.revoked.contains(&generation), "tokens of generation {generation} handed out after a 401");
        prop_assert_eq!(generation, self.logins_done, "tokens handed out are those of the newest login");
        let session = tokens.session().expose_secret().to_owned();
        let skd =
            *self.issued_sessions.get(&session).ok_or_else(|| TestCaseError::fail("a session token never issued"))?;
        match self.session_of.get(&generation) {
            Some(known) => prop_assert_eq!(known, &session, "one generation, one session token"),
            None => {
                prop_assert!(
                    !self.session_of.values().any(|s| *s == session),
                    "a session token handed out again under a new generation"
                );
                self.session_of.insert(generation, session);
            }
        }
        prop_assert_eq!(tokens.simplified_key_delivery(), skd);
        match tokens.key_manager() {
            Some(km) => {
                prop_assert!(self.issued_key_manager.contains(km.expose_secret()), "a key-manager token never issued");
                prop_assert!(self.setup.policy != KeyManagerPolicy::Never);
            }
            None => prop_assert!(
                self.setup.policy == KeyManagerPolicy::Never || (self.setup.policy == KeyManagerPolicy::Auto && skd),
                "tokens without the key-manager token the policy requires"
            ),
        }
        Ok(())
    }

    /// Feeds the events of one step, in order, checking each.
    fn events(&mut self, events: Vec<Event>, now: UnixTime) -> Result<Vec<Event>, TestCaseError> {
        for event in &events {
            match event {
                Event::LoginStarted { refresh } => {
                    prop_assert!(!self.login_active, "a login began while one was under way");
                    match self.may_begin.take() {
                        Some(as_refresh) => prop_assert_eq!(*refresh, as_refresh),
                        None => prop_assert!(false, "a login began that nobody asked for and none needed"),
                    }
                    self.login_active = true;
                    self.failures.clear();
                    self.deadlines.clear();
                }
                Event::RetryScheduled { endpoint, attempt, max_attempts, delay, .. } => {
                    prop_assert!(self.login_active);
                    let failures = self.failures.get(endpoint).copied().unwrap_or(0);
                    prop_assert_eq!(*attempt, failures, "the attempt count of {:?}", endpoint);
                    prop_assert!(*attempt < *max_attempts && *max_attempts == self.setup.attempts);
                    let retry_after = self
                        .expected_retry
                        .remove(endpoint)
                        .ok_or_else(|| TestCaseError::fail(format!("a retry of {endpoint:?} nothing failed")))?;
                    let (low, high) = self.retry_bounds(*attempt, retry_after);
                    prop_assert!(
                        low <= *delay && *delay <= high,
                        "retry {} of {:?} after {:?}, expected {:?}..={:?} (Retry-After {:?})",
                        attempt,
                        endpoint,
                        delay,
                        low,
                        high,
                        retry_after
                    );
                    self.deadlines.insert(*endpoint, now.saturating_add(*delay));
                }
                Event::Authenticated { generation, .. } => {
                    prop_assert!(self.login_active);
                    prop_assert_eq!(generation.get(), self.logins_done + 1);
                    self.logins_done += 1;
                    self.end_login();
                    self.consecutive = 0;
                    self.failure = None;
                }
                Event::LoginFailed { error, cool_down } => {
                    prop_assert!(self.login_active);
                    self.end_login();
                    self.consecutive += 1;
                    prop_assert_eq!(
                        *cool_down,
                        self.cool_down(self.consecutive),
                        "cool-down after {} failures",
                        self.consecutive
                    );
                    prop_assert!(*cool_down <= CoolDown::MAX);
                    self.failure = Some((error.clone(), now.saturating_add(*cool_down)));
                    self.undelivered = Some(error.clone());
                }
                Event::Expired { generation } => {
                    prop_assert!(self.revoked.contains(&generation.get()));
                }
                other => prop_assert!(false, "unknown event {other:?}"),
            }
        }
        // Every retryable failure got its retry, unless it spent the policy.
        for (endpoint, _) in self.expected_retry.drain() {
            let failures = self.failures.get(&endpoint).copied().unwrap_or(0);
            prop_assert!(
                failures >= self.setup.attempts || !self.login_active,
                "no retry scheduled for {endpoint:?} after failure {failures}"
            );
        }
        self.may_begin = None;
        Ok(events)
    }

    fn end_login(&mut self) {
        self.login_active = false;
        self.failures.clear();
        self.deadlines.clear();
    }

    /// A retryable failure of `endpoint` was reported: the next retry must follow `retry_after`.
    fn failed(&mut self, endpoint: LoginEndpoint, retry_after: Option<Duration>) {
        *self.failures.entry(endpoint).or_default() += 1;
        self.expected_retry.insert(endpoint, retry_after);
    }

    /// A poll may begin a login when it is needed.
    fn before_poll(&mut self, now: UnixTime) {
        if !self.login_active && self.undelivered.is_none() && !self.valid_tokens() && !self.cooling(now) {
            self.may_begin = Some(false);
        }
    }

    /// Checks a `Done` a caller got: the undelivered failure, the valid tokens, or the cooling failure.
    fn check_done(&mut self, outcome: &Result<Arc<Tokens>, AuthError>, now: UnixTime) -> Result<(), TestCaseError> {
        prop_assert!(!self.login_active, "Done while a login is under way");
        if let Some(error) = self.undelivered.take() {
            prop_assert_eq!(outcome.as_ref().err(), Some(&error), "a failed login is reported first");
            return Ok(());
        }
        match outcome {
            Ok(tokens) => self.check_tokens(tokens),
            Err(error) => {
                prop_assert!(!self.valid_tokens(), "an error while valid tokens exist");
                prop_assert!(self.cooling(now), "an old error after its cool-down");
                prop_assert_eq!(Some(error), self.failure.as_ref().map(|(e, _)| e));
                Ok(())
            }
        }
    }

    /// Checks `WaitUntil(at)`: the earliest deadline, in the future, within the policy's cap.
    fn check_wait(&self, at: UnixTime, now: UnixTime) -> Result<(), TestCaseError> {
        prop_assert!(at > now, "a wait that is over");
        let earliest = self.deadlines.values().min().copied();
        prop_assert_eq!(Some(at), earliest, "the wait is the earliest retry deadline");
        prop_assert!(
            at.saturating_since(now) <= Duration::from_secs(self.setup.max_interval_secs),
            "an unbounded wait"
        );
        Ok(())
    }

    /// Checks a request about to be sent: never before its deadline.
    fn check_send(&mut self, endpoint: LoginEndpoint, now: UnixTime) -> Result<(), TestCaseError> {
        if let Some(deadline) = self.deadlines.remove(&endpoint) {
            prop_assert!(deadline <= now, "{endpoint:?} sent before its backoff ended");
        }
        if endpoint == LoginEndpoint::AgentVersion {
            prop_assert!(self.setup.dedicated_agent && self.setup.policy == KeyManagerPolicy::Auto);
        }
        if matches!(endpoint, LoginEndpoint::RsaKeyManager) {
            prop_assert!(self.setup.policy != KeyManagerPolicy::Never);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The simulated pod: unique tokens, and answers built for the endpoint they answer.

#[derive(Default)]
struct Pod {
    issued: u64,
}

impl Pod {
    fn answer(
        &mut self,
        model: &mut Model,
        endpoint: LoginEndpoint,
        answer: &Answer,
        now: UnixTime,
    ) -> Result<HttpResponse, TransportFailure> {
        self.issued += 1;
        let n = self.issued;
        let retry_after = |ra: &Option<RetryAfter>| -> Option<(String, Option<Duration>)> {
            match ra {
                None => None,
                Some(RetryAfter::Secs(s)) => Some((s.to_string(), Some(Duration::from_secs(*s)))),
                Some(RetryAfter::Date(offset)) => {
                    let at_secs = (now.as_secs() as i64 + offset) as u64;
                    let date = httpdate::fmt_http_date(UnixTime::from_secs(at_secs).to_system_time());
                    let wait = UnixTime::from_secs(at_secs).saturating_since(now);
                    Some((date, Some(wait)))
                }
                Some(RetryAfter::Junk) => Some(("soon".into(), None)),
            }
        };
        let leg = is_login_leg(endpoint);
        match answer {
            Answer::Token { skd } => {
                let token = match endpoint {
                    LoginEndpoint::RsaSession => {
                        let claims =
                            format!(r#"{{"sub":"bot.user","sessionId":"s{n}","canUseSimplifiedKeyDelivery":{skd}}}"#);
                        let token = format!("eyJhbGciOiJSUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims));
                        model.issued_sessions.insert(token.clone(), *skd);
                        token
                    }
                    _ => {
                        let token = format!("km-{n}");
                        model.issued_key_manager.insert(token.clone());
                        token
                    }
                };
                Ok(response(200, token_body(&token), None))
            }
            Answer::AgentVersion { supports_skd } => {
                let version = if *supports_skd { "Agent-24.12.0" } else { "Agent-24.11.9" };
                Ok(response(200, format!(r#"{{"version":"{version}"}}"#), None))
            }
            Answer::Status { status, retry_after: ra } => {
                let header = retry_after(ra);
                let retryable = *status >= 500 || *status == 429 || *status == 408;
                if leg && retryable {
                    model.failed(endpoint, header.as_ref().and_then(|(_, wait)| *wait));
                }
                let mut builder = http::Response::builder().status(*status);
                if let Some((value, _)) = header {
                    builder = builder.header("retry-after", value);
                }
                Ok(builder.body(Vec::new()).unwrap())
            }
            Answer::Garbage => Ok(response(200, "{".into(), None)),
            Answer::Failure(kind) => {
                if leg && kind.is_retryable() {
                    model.failed(endpoint, None);
                }
                Err(TransportFailure::new(*kind, "generated"))
            }
        }
    }
}

/// Requests handed out and not answered: those of the login under way, and those of ended logins (answered late,
/// and ignored).
#[derive(Default)]
struct Network {
    current: Vec<(RequestId, LoginEndpoint)>,
    late: Vec<RequestId>,
}

impl Network {
    /// The login ended or its requests were abandoned: their answers are late now.
    fn retire(&mut self) {
        self.late.extend(self.current.drain(..).map(|(id, _)| id));
        // The machine remembers the last 64 ids it gave up on.
        if self.late.len() > 60 {
            self.late.drain(..self.late.len() - 60);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Property 1: one machine, one driver.

#[derive(Clone, Debug)]
enum Input {
    Poll,
    Supply { fail: bool },
    Answer { pick: usize, answer: Answer },
    Late { pick: usize },
    Advance(u64),
    Back(u64),
    Timeout,
    Unauthorized { back: u64 },
    Refresh,
    Abandon,
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        8 => Just(Input::Poll),
        3 => prop::sample::select(vec![false, false, false, true]).prop_map(|fail| Input::Supply { fail }),
        8 => (any::<usize>(), answer()).prop_map(|(pick, answer)| Input::Answer { pick, answer }),
        1 => any::<usize>().prop_map(|pick| Input::Late { pick }),
        3 => prop_oneof![0u64..2_000, 0u64..400_000].prop_map(Input::Advance),
        1 => (0u64..300_000).prop_map(Input::Back),
        1 => Just(Input::Timeout),
        2 => (0u64..3).prop_map(|back| Input::Unauthorized { back }),
        1 => Just(Input::Refresh),
        1 => Just(Input::Abandon),
    ]
}

fn drain(machine: &mut Authenticator) -> Vec<Event> {
    std::iter::from_fn(|| machine.poll_event()).collect()
}

fn run_machine(setup: Setup, inputs: Vec<Input>) -> Result<(), TestCaseError> {
    let mut machine = Authenticator::new(setup.config(), setup.seed);
    let mut model = Model::new(setup);
    let mut pod = Pod::default();
    let mut network = Network::default();
    let mut now = START;
    let mut to_sign: Option<UnsignedJwt> = None;
    for input in inputs {
        match input {
            Input::Poll => {
                model.observe(now);
                model.before_poll(now);
                let output = machine.poll_output(now);
                let events = model.events(drain(&mut machine), now)?;
                if events.iter().any(|e| matches!(e, Event::Authenticated { .. } | Event::LoginFailed { .. })) {
                    network.retire();
                }
                match output {
                    Output::Sign(jwt) => {
                        prop_assert!(model.login_active, "Sign with no login");
                        prop_assert_eq!(jwt.exp(), now.as_secs() + 240);
                        to_sign = Some(jwt);
                    }
                    Output::Send(batch) => {
                        prop_assert!(model.login_active && !batch.is_empty());
                        for login in batch {
                            model.check_send(login.endpoint, now)?;
                            network.current.push((login.id, login.endpoint));
                        }
                    }
                    Output::AwaitAnswers => {
                        prop_assert!(model.login_active && !network.current.is_empty(), "awaiting nothing");
                    }
                    Output::WaitUntil(at) => {
                        prop_assert!(model.login_active);
                        model.check_wait(at, now)?;
                    }
                    Output::Done(outcome) => model.check_done(&outcome, now)?,
                }
            }
            Input::Supply { fail } => {
                if let Some(jwt) = to_sign.take() {
                    let signed = if fail { Err(symphony_auth_core::SignError("generated".into())) } else { jwt.sign() };
                    model.observe(now);
                    machine.supply_jwt(signed, now);
                    model.events(drain(&mut machine), now)?;
                    if !model.login_active {
                        network.retire();
                    }
                }
            }
            Input::Answer { pick, answer } => {
                if network.current.is_empty() {
                    continue;
                }
                let (id, endpoint) = network.current.remove(pick % network.current.len());
                model.observe(now);
                let result = match pod.answer(&mut model, endpoint, &answer, now) {
                    Ok(response) => machine.handle_response(id, &response, now),
                    Err(failure) => machine.handle_failure(id, failure, now),
                };
                prop_assert!(result.is_ok(), "an answer to a request out was refused: {result:?}");
                model.events(drain(&mut machine), now)?;
                if !model.login_active {
                    network.retire();
                }
            }
            Input::Late { pick } => {
                if network.late.is_empty() {
                    continue;
                }
                let id = network.late.remove(pick % network.late.len());
                model.observe(now);
                let result = machine.handle_response(id, &response(200, token_body("late"), None), now);
                prop_assert!(result.is_ok(), "a late answer was refused: {result:?}");
                prop_assert_eq!(
                    machine.handle_response(id, &response(200, token_body("late"), None), now),
                    Err(UsageError::UnknownRequest(id.get())),
                    "a second answer to the same request"
                );
                prop_assert!(drain(&mut machine).is_empty(), "a late answer changed something");
            }
            Input::Advance(ms) => now = now.saturating_add(Duration::from_millis(ms)),
            Input::Back(ms) => now = shift(now, ms),
            Input::Timeout => {
                model.observe(now);
                machine.handle_timeout(now);
                prop_assert!(drain(&mut machine).is_empty());
            }
            Input::Unauthorized { back } => {
                let latest = model.logins_done;
                let generation = latest.saturating_sub(back);
                let outcome = machine.report_unauthorized(Generation::from_u64(generation));
                if generation == 0 {
                    prop_assert_eq!(outcome, Err(UsageError::UnknownGeneration { reported: 0, latest }));
                } else if generation < latest {
                    prop_assert_eq!(outcome, Ok(UnauthorizedOutcome::Stale { current: Generation::from_u64(latest) }));
                } else if model.revoked.insert(generation) {
                    prop_assert_eq!(outcome, Ok(UnauthorizedOutcome::Expired));
                } else {
                    prop_assert_eq!(outcome, Ok(UnauthorizedOutcome::AlreadyExpired));
                }
                model.events(drain(&mut machine), now)?;
            }
            Input::Refresh => {
                model.observe(now);
                let may = !model.login_active;
                if may {
                    model.may_begin = Some(model.valid_tokens());
                }
                prop_assert_eq!(machine.refresh(now), may);
                if may {
                    model.undelivered = None;
                    model.failure = None;
                }
                model.events(drain(&mut machine), now)?;
            }
            Input::Abandon => {
                model.observe(now);
                for (_, endpoint) in &network.current {
                    if is_login_leg(*endpoint) {
                        model.failed(*endpoint, None);
                    }
                }
                machine.abandon_requests(now);
                network.retire();
                model.events(drain(&mut machine), now)?;
            }
        }
        // Whatever `tokens()` hands out obeys the model too.
        if let Some(tokens) = machine.tokens() {
            model.check_tokens(&tokens)?;
        }
        prop_assert_eq!(machine.state().is_logging_in(), model.login_active);
        prop_assert_eq!(machine.latest_generation().get(), model.logins_done);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Property 2: callers sharing one machine through the flight.

#[derive(Clone, Debug)]
enum CallerInput {
    Join { slot: usize, want: u8 },
    Poll { slot: usize },
    Supply { slot: usize },
    Answer { pick: usize, answer: Answer },
    Leave { slot: usize },
    Advance(u64),
}

const SLOTS: usize = 4;

fn caller_input() -> impl Strategy<Value = CallerInput> {
    prop_oneof![
        3 => (0..SLOTS, 0u8..6).prop_map(|(slot, want)| CallerInput::Join { slot, want }),
        8 => (0..SLOTS).prop_map(|slot| CallerInput::Poll { slot }),
        3 => (0..SLOTS).prop_map(|slot| CallerInput::Supply { slot }),
        6 => (any::<usize>(), answer()).prop_map(|(pick, answer)| CallerInput::Answer { pick, answer }),
        1 => (0..SLOTS).prop_map(|slot| CallerInput::Leave { slot }),
        2 => prop_oneof![0u64..2_000, 0u64..400_000].prop_map(CallerInput::Advance),
    ]
}

enum Role {
    Idle,
    /// Joined, or leading between steps.
    Active(Caller),
    Signing(Caller, UnsignedJwt),
    /// Following since this many leader outcomes.
    Following(Caller, usize),
}

fn run_flight(setup: Setup, inputs: Vec<CallerInput>) -> Result<(), TestCaseError> {
    let mut flight = Flight::new(Authenticator::new(setup.config(), setup.seed));
    let mut model = Model::new(setup);
    let mut pod = Pod::default();
    let mut network = Network::default();
    let mut now = START;
    let mut roles: Vec<Role> = (0..SLOTS).map(|_| Role::Idle).collect();
    let mut leader: Option<usize> = None;
    // Every outcome a leader got, in order: what followers receive.
    let mut outcomes: Vec<Result<Arc<Tokens>, AuthError>> = Vec::new();
    let mut wants: Vec<Option<Want>> = vec![None; SLOTS];
    let drain = |flight: &mut Flight| -> Vec<Event> { std::iter::from_fn(|| flight.poll_event()).collect() };
    for input in inputs {
        match input {
            CallerInput::Join { slot, want } => {
                if !matches!(roles[slot], Role::Idle) {
                    continue;
                }
                let latest = model.logins_done;
                let want = match want {
                    0..=2 => Want::Current,
                    3 => Want::Fresh,
                    _ if latest == 0 => Want::Current,
                    4 => Want::Newer(Generation::from_u64(latest)),
                    _ => Want::Newer(Generation::from_u64(latest - 1).max(Generation::from_u64(1))),
                };
                if let Want::Newer(generation) = want {
                    model.revoked.insert(generation.get());
                }
                let caller = flight.join(want).unwrap();
                model.events(drain(&mut flight), now)?;
                roles[slot] = Role::Active(caller);
                wants[slot] = Some(want);
            }
            CallerInput::Poll { slot } => {
                let (mut caller, following) = match std::mem::replace(&mut roles[slot], Role::Idle) {
                    Role::Idle => continue,
                    Role::Signing(caller, jwt) => {
                        roles[slot] = Role::Signing(caller, jwt);
                        continue;
                    }
                    Role::Active(caller) => (caller, None),
                    Role::Following(caller, since) => (caller, Some(since)),
                };
                model.observe(now);
                let want = wants[slot].unwrap();
                // Whether this poll makes (or keeps) the caller the leader: it leads unless its followed login ended,
                // valid tokens serve it, or another caller leads.
                let served = following.is_some_and(|since| since < outcomes.len())
                    || (want != Want::Fresh && flight.machine().tokens().is_some());
                let takes_lead = leader.is_none() && !served;
                let leads = leader == Some(slot) || takes_lead;
                if takes_lead && want == Want::Fresh && following.is_none() && !model.login_active {
                    // A fresh caller that leads refreshes.
                    model.may_begin = Some(model.valid_tokens());
                    model.undelivered = None;
                    model.failure = None;
                } else if leads {
                    model.before_poll(now);
                }
                let step = flight.poll(&mut caller, now);
                let events = model.events(drain(&mut flight), now)?;
                if events.iter().any(|e| matches!(e, Event::Authenticated { .. } | Event::LoginFailed { .. })) {
                    network.retire();
                }
                let lead = |leader: &mut Option<usize>| -> Result<(), TestCaseError> {
                    prop_assert!(leads, "a caller that should not lead got a leader's step");
                    prop_assert!(leader.is_none() || *leader == Some(slot), "two leaders");
                    *leader = Some(slot);
                    Ok(())
                };
                match step {
                    FlightStep::Sign(jwt) => {
                        lead(&mut leader)?;
                        roles[slot] = Role::Signing(caller, jwt);
                    }
                    FlightStep::Send(batch) => {
                        lead(&mut leader)?;
                        for login in batch {
                            model.check_send(login.endpoint, now)?;
                            network.current.push((login.id, login.endpoint));
                        }
                        roles[slot] = Role::Active(caller);
                    }
                    FlightStep::AwaitAnswers => {
                        lead(&mut leader)?;
                        prop_assert!(!network.current.is_empty(), "awaiting nothing");
                        roles[slot] = Role::Active(caller);
                    }
                    FlightStep::WaitUntil(at) => {
                        lead(&mut leader)?;
                        model.check_wait(at, now)?;
                        roles[slot] = Role::Active(caller);
                    }
                    FlightStep::Follow => {
                        prop_assert!(leader.is_some_and(|l| l != slot), "following no one");
                        roles[slot] = Role::Following(caller, following.unwrap_or(outcomes.len()));
                    }
                    FlightStep::Done { outcome, wake_followers } => {
                        wants[slot] = None;
                        let led = leads;
                        prop_assert_eq!(wake_followers, led, "only a leader wakes followers");
                        match following {
                            Some(since) if since < outcomes.len() => {
                                // The outcome of the latest login that ended since it began to follow.
                                match (&outcome, outcomes.last().unwrap()) {
                                    (Ok(a), Ok(b)) => prop_assert!(Arc::ptr_eq(a, b), "a follower got other tokens"),
                                    (Err(a), Err(b)) => prop_assert_eq!(a, b),
                                    (a, b) => prop_assert!(false, "a follower got {a:?}, the leader {b:?}"),
                                }
                            }
                            _ if led => {
                                prop_assert!(!flight.has_leader());
                                leader = None;
                                model.check_done(&outcome, now)?;
                                outcomes.push(outcome.clone());
                            }
                            _ => {
                                // Served without a login: the valid tokens.
                                let tokens = outcome.as_ref().map_err(|e| TestCaseError::fail(format!("{e}")))?;
                                prop_assert!(want != Want::Fresh);
                                model.check_tokens(tokens)?;
                            }
                        }
                        if let (Ok(tokens), Want::Newer(generation)) = (&outcome, want) {
                            prop_assert!(
                                tokens.generation() > generation,
                                "Newer({generation:?}) got {:?}",
                                tokens.generation()
                            );
                        }
                    }
                }
            }
            CallerInput::Supply { slot } => {
                roles[slot] = match std::mem::replace(&mut roles[slot], Role::Idle) {
                    Role::Signing(caller, jwt) => {
                        flight.supply_jwt(jwt.sign(), now);
                        model.events(drain(&mut flight), now)?;
                        Role::Active(caller)
                    }
                    other => other,
                };
            }
            CallerInput::Answer { pick, answer } => {
                if network.current.is_empty() {
                    continue;
                }
                let (id, endpoint) = network.current.remove(pick % network.current.len());
                model.observe(now);
                let result = match pod.answer(&mut model, endpoint, &answer, now) {
                    Ok(response) => flight.handle_response(id, &response, now),
                    Err(failure) => flight.handle_failure(id, failure, now),
                };
                prop_assert!(result.is_ok(), "{result:?}");
                model.events(drain(&mut flight), now)?;
                if !model.login_active {
                    network.retire();
                }
            }
            CallerInput::Leave { slot } => {
                let caller = match std::mem::replace(&mut roles[slot], Role::Idle) {
                    Role::Idle => continue,
                    Role::Active(caller) | Role::Following(caller, _) | Role::Signing(caller, _) => caller,
                };
                wants[slot] = None;
                model.observe(now);
                let was_leader = leader == Some(slot);
                if was_leader {
                    // Its requests still out count as failed attempts.
                    for (_, endpoint) in &network.current {
                        if is_login_leg(*endpoint) {
                            model.failed(*endpoint, None);
                        }
                    }
                    network.retire();
                    leader = None;
                }
                prop_assert_eq!(flight.leave(&caller, now), was_leader);
                model.events(drain(&mut flight), now)?;
            }
            CallerInput::Advance(ms) => now = now.saturating_add(Duration::from_millis(ms)),
        }
        if let Some(tokens) = flight.machine().tokens() {
            model.check_tokens(&tokens)?;
        }
        prop_assert_eq!(flight.has_leader(), leader.is_some());
    }
    Ok(())
}

/// N callers of one generation get the tokens of one login; then N reports of a 401 on them, made before, during and
/// after the re-login (whose answers come after `answer_after` rounds), cause exactly one more.
fn run_storm(callers: usize, reports: usize, answer_after: usize) -> Result<(), TestCaseError> {
    let mut flight = Flight::new(Authenticator::new(support::fast_config(10), 3));
    let mut sessions = 0;
    let mut storm = |flight: &mut Flight, want: Want, count: usize| -> Result<Vec<Arc<Tokens>>, TestCaseError> {
        let mut callers: Vec<Caller> = Vec::new();
        let mut done: Vec<Option<Arc<Tokens>>> = Vec::new();
        let mut held = Vec::new();
        for round in 0..count + answer_after + 10 {
            if callers.len() < count {
                callers.push(flight.join(want).unwrap());
                done.push(None);
            }
            if round >= answer_after {
                for login in held.drain(..) {
                    let symphony_auth_core::LoginRequest { id, .. } = login;
                    flight.handle_response(id, &response(200, token_body("t"), None), START).unwrap();
                }
            }
            for (i, caller) in callers.iter_mut().enumerate() {
                if done[i].is_some() {
                    continue;
                }
                match flight.poll(caller, START) {
                    FlightStep::Sign(jwt) => flight.supply_jwt(jwt.sign(), START),
                    FlightStep::Send(batch) => {
                        sessions += batch.iter().filter(|l| l.endpoint == LoginEndpoint::RsaSession).count();
                        held.extend(batch);
                    }
                    FlightStep::Done { outcome, .. } => done[i] = Some(outcome.unwrap()),
                    FlightStep::Follow | FlightStep::AwaitAnswers | FlightStep::WaitUntil(_) => {}
                }
            }
            if callers.len() == count && done.iter().all(Option::is_some) {
                return Ok(done.into_iter().flatten().collect());
            }
        }
        Err(TestCaseError::fail("the callers did not all get an answer"))
    };
    let first = storm(&mut flight, Want::Current, callers)?;
    prop_assert!(first.iter().all(|t| Arc::ptr_eq(t, &first[0])), "one login, the same tokens for all");
    let g1 = first[0].generation();
    let second = storm(&mut flight, Want::Newer(g1), reports)?;
    prop_assert!(second.iter().all(|t| t.generation() == Generation::from_u64(2)));
    prop_assert_eq!(
        sessions,
        2,
        "{} callers, then {} reports of a 401 on one generation: two logins",
        callers,
        reports
    );
    Ok(())
}

fn persistence() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions")))
}

/// 256 cases, or `PROPTEST_CASES` (a mutation-testing run lowers it to test more mutants in its time).
#[allow(clippy::disallowed_methods)] // a test's own setting, not the crate's
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// One machine driven by one driver through generated inputs obeys the model.
    #[test]
    fn the_machine_obeys_the_model(setup in setup(), inputs in prop::collection::vec(input(), 1..150)) {
        run_machine(setup, inputs)?;
    }

    /// Callers that join, follow, lead and leave one flight obey the model.
    #[test]
    fn the_flight_obeys_the_model(setup in setup(), inputs in prop::collection::vec(caller_input(), 1..150)) {
        run_flight(setup, inputs)?;
    }

    /// N callers cause one login, and N reports of a 401 on its tokens one more.
    #[test]
    fn n_callers_and_n_401s_cause_one_login_each(callers in 1usize..40, reports in 1usize..40, answer_after in 0usize..40) {
        run_storm(callers, reports, answer_after)?;
    }
}
