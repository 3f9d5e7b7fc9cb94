//! An `arbitrary` script of inputs driving an RSA `Authenticator` (whose signer returns fixed bytes) through its one
//! output, as a driver does: poll and act on the output (sign now or later, send, wait), answer requests in any order
//! (status, body, `Retry-After` in seconds or as an HTTP date), fail them below HTTP, let time pass or go back, report
//! 401s, refresh, abandon the requests out, make the signer fail.
//!
//! Checks, after every input:
//! - no panic;
//! - no tokens are handed out (by `Done` or `tokens()`) with a generation that was reported 401 while current, until a
//!   new login completes; tokens handed out are always those of the latest generation;
//! - every `WaitUntil` is in the future and at most the policy's largest wait (300 s) away, also after the clock went
//!   back; every cool-down ends within `CoolDown::MAX`;
//! - `AwaitAnswers` only while requests are out; `Sign` and `Send` only while a login is under way;
//! - `report_unauthorized` refuses exactly generation 0 and generations above the latest; `refresh` begins a login
//!   exactly when none is under way;
//! - an answer to an id the machine handed out is accepted while fewer than 65 ids were ever handed out (the machine
//!   remembers the last 64 it gave up on), and an answer to an id never handed out is refused.

#![no_main]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arbitrary::Arbitrary;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use symphony_auth_core::{
    Authenticator, BaseUrl, Config, CoolDown, Endpoints, Generation, HttpResponse, JwtSigner, KeyManagerPolicy,
    Output, RequestId, RetryPolicy, SignError, Tokens, TransportFailure, TransportKind, UnauthorizedOutcome, UnixTime,
    UnsignedJwt,
};

/// A signer that returns the same 256 bytes for any message, or fails while `failing` is set.
#[derive(Debug, Default)]
struct ConstantSigner {
    failing: AtomicBool,
}

impl JwtSigner for ConstantSigner {
    fn sign_rs512(&self, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(SignError("the fuzz signer was told to fail".into()));
        }
        Ok(vec![0xA5; 256])
    }
}

#[derive(Arbitrary, Debug)]
enum Policy {
    Auto,
    Always,
    Never,
}

#[derive(Arbitrary, Debug)]
struct Setup {
    policy: Policy,
    parallel: bool,
    /// The agent on a host of its own, so that a session granting SKD makes the machine ask the agent's version.
    dedicated_agent: bool,
    max_attempts: u8,
    seed: u64,
    start_millis: u64,
}

#[derive(Arbitrary, Debug)]
enum Body {
    /// `{"token": "tok-N"}`, or a JWT-shaped token granting (or not) simplified key delivery.
    Token { skd: bool, authorization: bool },
    /// `{"version": "Agent-MAJOR.MINOR.0"}`, the agent-info answer.
    AgentVersion { major: u8, minor: u8 },
    /// `{"code":..,"message":..}`.
    Error { message: String },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Timeout,
    Connect,
    Reset,
    Tls,
    Other,
}

#[derive(Arbitrary, Debug)]
enum RetryAfter {
    Secs(u32),
    /// An HTTP date this many seconds from now (negative: in the past).
    Date(i16),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// Poll and act on the output; `sign_now` signs a `Sign` output at once rather than at a later `Supply`.
    Poll { sign_now: bool },
    /// Supply the signature of the last `Sign` output.
    Supply,
    /// Answer the outstanding request at `pick` (modulo their number).
    Answer { pick: u8, status: u16, body: Body, retry_after: Option<RetryAfter> },
    /// The outstanding request at `pick` failed below HTTP.
    Fail { pick: u8, kind: Kind },
    /// Answer a request id that was never handed out.
    AnswerUnknown,
    Advance { millis: u32 },
    /// The wall clock is set back.
    Back { millis: u32 },
    /// Far into the future.
    Leap { secs: u32 },
    Timeout,
    Report401 { generation: u8 },
    Refresh,
    Abandon,
    SignerFails(bool),
}

#[derive(Arbitrary, Debug)]
struct Script {
    setup: Setup,
    steps: Vec<Step>,
}

struct Driver {
    machine: Authenticator,
    signer: Arc<ConstantSigner>,
    now: UnixTime,
    outstanding: Vec<RequestId>,
    to_sign: Option<UnsignedJwt>,
    /// The highest request id handed out.
    issued: u64,
    tokens_made: u64,
    /// Generations reported 401 while they were the current ones.
    revoked: BTreeSet<u64>,
}

impl Driver {
    fn check_tokens(&self, tokens: &Tokens) {
        let generation = tokens.generation();
        assert!(!self.revoked.contains(&generation.get()), "tokens of generation {generation} handed out after a 401");
        assert_eq!(generation, self.machine.latest_generation(), "tokens handed out are not the latest");
        assert!(!tokens.session().expose_secret().is_empty());
    }

    fn check(&self) {
        if let Some(tokens) = self.machine.tokens() {
            self.check_tokens(&tokens);
        }
        assert_eq!(self.machine.tokens().is_some(), self.machine.state().is_ready(), "tokens() vs state()");
        if let Some((_, until)) = self.machine.cooling_down(self.now) {
            assert!(until.saturating_since(self.now) <= CoolDown::MAX, "an unbounded cool-down");
        }
    }

    fn poll(&mut self, sign_now: bool) {
        let logging_in = self.machine.state().is_logging_in();
        match self.machine.poll_output(self.now) {
            Output::Sign(jwt) => {
                assert!(self.machine.state().is_logging_in(), "Sign without a login");
                if sign_now {
                    self.machine.supply_jwt(jwt.sign(), self.now);
                } else {
                    self.to_sign = Some(jwt);
                }
            }
            Output::Send(batch) => {
                assert!(!batch.is_empty() && self.machine.state().is_logging_in(), "an empty or idle Send");
                for login in batch {
                    self.issued = self.issued.max(login.id.get());
                    self.outstanding.push(login.id);
                }
            }
            Output::AwaitAnswers => {
                assert!(logging_in && !self.outstanding.is_empty(), "AwaitAnswers with nothing out");
            }
            Output::WaitUntil(at) => {
                assert!(at > self.now, "a wait that is over");
                assert!(at.saturating_since(self.now) <= RetryPolicy::default().max_interval(), "an unbounded wait");
            }
            Output::Done(Ok(tokens)) => self.check_tokens(&tokens),
            Output::Done(Err(error)) => drop(format!("{error} {error:?}")),
        }
        while let Some(event) = self.machine.poll_event() {
            drop(format!("{event:?}"));
        }
    }

    fn token(&mut self, skd: bool) -> String {
        self.tokens_made += 1;
        if !skd && self.tokens_made % 2 == 0 {
            return format!("tok-{}", self.tokens_made);
        }
        let claims = serde_json::json!({ "sub": "fuzz.bot", "n": self.tokens_made, symphony_auth_core::SKD_CLAIM: skd });
        format!("eyJhbGciOiJSUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    fn response(&mut self, status: u16, body: &Body, retry_after: &Option<RetryAfter>) -> Option<HttpResponse> {
        let status = http::StatusCode::from_u16(100 + status % 900).ok()?;
        let body = match body {
            Body::Token { skd, authorization } => {
                let token = self.token(*skd);
                if *authorization {
                    serde_json::json!({ "token": token, "authorizationToken": "Bearer eyJhbGciOi.e30.c2ln" })
                } else {
                    serde_json::json!({ "token": token })
                }
                .to_string()
                .into_bytes()
            }
            Body::AgentVersion { major, minor } => {
                serde_json::json!({ "version": format!("Agent-{major}.{minor}.0") }).to_string().into_bytes()
            }
            Body::Error { message } => serde_json::json!({ "code": status.as_u16(), "message": message }).to_string().into_bytes(),
            Body::Raw(bytes) => bytes.clone(),
        };
        let mut builder = http::Response::builder().status(status);
        match retry_after {
            None => {}
            Some(RetryAfter::Secs(secs)) => builder = builder.header(http::header::RETRY_AFTER, *secs),
            Some(RetryAfter::Date(offset)) => {
                // An HTTP date cannot name a year past 9999 (`httpdate` panics there).
                let at = (self.now.as_secs() as i64 + i64::from(*offset)).clamp(0, 253_402_300_799) as u64;
                let date = httpdate::fmt_http_date(UnixTime::from_secs(at).to_system_time());
                builder = builder.header(http::header::RETRY_AFTER, date);
            }
            Some(RetryAfter::Raw(bytes)) => {
                if let Ok(value) = http::HeaderValue::from_bytes(bytes) {
                    builder = builder.header(http::header::RETRY_AFTER, value);
                }
            }
        }
        builder.body(body).ok()
    }

    fn answered(&mut self, result: Result<(), symphony_auth_core::UsageError>) {
        if self.issued <= 64 {
            result.expect("an answer to an id the machine handed out was refused");
        }
    }

    fn take(&mut self, pick: u8) -> Option<RequestId> {
        if self.outstanding.is_empty() {
            return None;
        }
        let at = usize::from(pick) % self.outstanding.len();
        Some(self.outstanding.remove(at))
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Poll { sign_now } => self.poll(*sign_now),
            Step::Supply => {
                if let Some(jwt) = self.to_sign.take() {
                    self.machine.supply_jwt(jwt.sign(), self.now);
                }
            }
            Step::Answer { pick, status, body, retry_after } => {
                let Some(response) = self.response(*status, body, retry_after) else { return };
                if let Some(id) = self.take(*pick) {
                    let result = self.machine.handle_response(id, &response, self.now);
                    self.answered(result);
                }
            }
            Step::Fail { pick, kind } => {
                let kind = match kind {
                    Kind::Timeout => TransportKind::Timeout,
                    Kind::Connect => TransportKind::Connect,
                    Kind::Reset => TransportKind::Reset,
                    Kind::Tls => TransportKind::Tls,
                    Kind::Other => TransportKind::Other,
                };
                if let Some(id) = self.take(*pick) {
                    let result = self.machine.handle_failure(id, TransportFailure::new(kind, "fuzz"), self.now);
                    self.answered(result);
                }
            }
            Step::AnswerUnknown => {
                let response = http::Response::new(br#"{"token":"x"}"#.to_vec());
                let result = self.machine.handle_response(RequestId::from_u64(0), &response, self.now);
                assert!(result.is_err(), "an answer to id 0, never handed out, was accepted");
            }
            Step::Advance { millis } => self.now = self.now.saturating_add(Duration::from_millis(u64::from(*millis))),
            Step::Back { millis } => {
                self.now = UnixTime::from_millis(self.now.as_millis().saturating_sub(u64::from(*millis)));
            }
            Step::Leap { secs } => self.now = self.now.saturating_add(Duration::from_secs(u64::from(*secs))),
            Step::Timeout => self.machine.handle_timeout(self.now),
            Step::Report401 { generation } => {
                let latest = self.machine.latest_generation().get();
                let generation = u64::from(*generation) % (latest + 2);
                let result = self.machine.report_unauthorized(Generation::from_u64(generation));
                assert_eq!(result.is_err(), generation == 0 || generation > latest, "report_unauthorized({generation})");
                match result {
                    Ok(UnauthorizedOutcome::Stale { current }) => assert!(generation < current.get()),
                    Ok(_) => {
                        assert_eq!(generation, latest);
                        self.revoked.insert(generation);
                    }
                    Err(_) => {}
                }
            }
            Step::Refresh => {
                let could = !self.machine.state().is_logging_in();
                assert_eq!(self.machine.refresh(self.now), could);
            }
            Step::Abandon => {
                self.machine.abandon_requests(self.now);
                self.outstanding.clear();
            }
            Step::SignerFails(failing) => self.signer.failing.store(*failing, Ordering::Relaxed),
        }
        self.check();
    }
}

fuzz_target!(|script: Script| {
    let setup = &script.setup;
    let policy = match setup.policy {
        Policy::Auto => KeyManagerPolicy::Auto,
        Policy::Always => KeyManagerPolicy::Always,
        Policy::Never => KeyManagerPolicy::Never,
    };
    let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
    if setup.dedicated_agent {
        endpoints.agent = BaseUrl::parse("agent", "https://agent.acme.com:8443/ctx").unwrap();
    }
    let signer = Arc::new(ConstantSigner::default());
    let retry = RetryPolicy::default().with_max_attempts(1 + u32::from(setup.max_attempts % 12)).unwrap();
    let config = Config::rsa(endpoints, "fuzz.bot", signer.clone())
        .unwrap()
        .with_key_manager(policy)
        .with_parallel_login(setup.parallel)
        .with_retry(retry);
    let mut driver = Driver {
        machine: Authenticator::new(config, setup.seed),
        signer,
        now: UnixTime::from_millis(setup.start_millis % (1 << 50)),
        outstanding: Vec::new(),
        to_sign: None,
        issued: 0,
        tokens_made: 0,
        revoked: BTreeSet::new(),
    };
    driver.check();
    for step in script.steps.iter().take(256) {
        driver.step(step);
    }
});
