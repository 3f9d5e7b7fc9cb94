//! An `arbitrary` script of steps driving an RSA `Authenticator` whose signer returns fixed bytes. Steps: answer
//! the oldest outstanding request (status, body, `Retry-After`), fail it below HTTP, advance time, report a 401 on
//! a generation, start, refresh, abort, pre-sign through `poll_jwt`/`supply_jwt`, make the signer fail. After each
//! step the driver polls every request and event, as a real driver does.
//!
//! Checks, after each step and after the polling that follows it:
//! - no panic;
//! - `tokens().is_some() == (state() == State::Ready)`;
//! - current tokens carry `latest_generation()`, and `Authenticated` reports that generation with tokens present;
//! - no login under way means no retry timer (`poll_timeout() == None`);
//! - `report_unauthorized` refuses exactly generation 0 and generations above the latest;
//! - an answer to an id the machine handed out is accepted while fewer than 65 ids were ever handed out (the
//!   machine remembers the last 64 it gave up on), and an answer to an id never handed out is refused.

#![no_main]

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arbitrary::Arbitrary;
use symphony_auth_core::{
    Authenticator, BaseUrl, Config, Endpoints, Event, Generation, HttpResponse, JwtSigner, KeyManagerPolicy,
    RequestId, RetryPolicy, SignError, State, TransportFailure, TransportKind, UnixTime,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;

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
enum Step {
    /// Answer the oldest outstanding request.
    Answer { status: u16, body: Body, retry_after: Option<u32> },
    /// The oldest outstanding request failed below HTTP.
    Fail(Kind),
    /// Answer a request id that was never handed out.
    AnswerUnknown,
    Advance { millis: u32 },
    AdvanceToTimeout,
    /// Far into the future.
    Leap { secs: u64 },
    Report401 { generation: u8 },
    Start,
    Refresh,
    Abort,
    /// Sign through `poll_jwt` / `supply_jwt` rather than inside `poll_request`.
    PreSign,
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
    outstanding: VecDeque<RequestId>,
    /// The highest request id handed out.
    issued: u64,
    tokens_made: u64,
}

impl Driver {
    fn check(&self) {
        let machine = &self.machine;
        assert_eq!(machine.tokens().is_some(), machine.state() == State::Ready, "tokens() vs state()");
        if let Some(tokens) = machine.tokens() {
            assert_eq!(tokens.generation(), machine.latest_generation(), "current tokens are not the latest");
        }
        if !machine.is_logging_in() {
            assert_eq!(machine.poll_timeout(), None, "a retry timer without a login");
        }
    }

    /// What a driver does after every input: send every request, read every event.
    fn pump(&mut self) {
        while let Some(request) = self.machine.poll_request(self.now) {
            self.issued = self.issued.max(request.id.get());
            self.outstanding.push_back(request.id);
        }
        while let Some(event) = self.machine.poll_event() {
            match event {
                Event::Authenticated { generation, .. } => {
                    let tokens = self.machine.tokens().expect("Authenticated without tokens");
                    assert_eq!(generation, tokens.generation());
                    assert!(!tokens.session().expose_secret().is_empty());
                }
                Event::RetryScheduled { attempt, .. } => assert!(attempt >= 1),
                Event::Expired { generation } => assert!(generation.get() >= 1),
                Event::LoginFailed(error) => drop(format!("{error} {error:?}")),
                _ => {}
            }
        }
        self.check();
    }

    fn token(&mut self, skd: bool) -> String {
        self.tokens_made += 1;
        if !skd && self.tokens_made % 2 == 0 {
            return format!("tok-{}", self.tokens_made);
        }
        let claims = serde_json::json!({ "sub": "fuzz.bot", "n": self.tokens_made, symphony_auth_core::SKD_CLAIM: skd });
        format!("eyJhbGciOiJSUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    fn response(&mut self, status: u16, body: &Body, retry_after: Option<u32>) -> Option<HttpResponse> {
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
        if let Some(secs) = retry_after {
            builder = builder.header(http::header::RETRY_AFTER, secs);
        }
        builder.body(body).ok()
    }

    fn answered(&mut self, result: Result<(), symphony_auth_core::UsageError>) {
        if self.issued <= 64 {
            result.expect("an answer to an id the machine handed out was refused");
        }
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Answer { status, body, retry_after } => {
                let Some(response) = self.response(*status, body, *retry_after) else { return };
                if let Some(id) = self.outstanding.pop_front() {
                    let result = self.machine.handle_response(id, &response, self.now);
                    self.answered(result);
                }
            }
            Step::Fail(kind) => {
                let kind = match kind {
                    Kind::Timeout => TransportKind::Timeout,
                    Kind::Connect => TransportKind::Connect,
                    Kind::Reset => TransportKind::Reset,
                    Kind::Tls => TransportKind::Tls,
                    Kind::Other => TransportKind::Other,
                };
                if let Some(id) = self.outstanding.pop_front() {
                    let failure = TransportFailure::new(kind, "fuzz");
                    let result = self.machine.handle_failure(id, failure, self.now);
                    self.answered(result);
                }
            }
            Step::AnswerUnknown => {
                let response = http::Response::new(br#"{"token":"x"}"#.to_vec());
                let result = self.machine.handle_response(RequestId::from_u64(0), &response, self.now);
                assert!(result.is_err(), "an answer to id 0, never handed out, was accepted");
            }
            Step::Advance { millis } => {
                self.now = self.now.saturating_add(Duration::from_millis(u64::from(*millis)));
                self.machine.handle_timeout(self.now);
            }
            Step::AdvanceToTimeout => {
                if let Some(at) = self.machine.poll_timeout() {
                    self.now = self.now.max(at);
                    self.machine.handle_timeout(self.now);
                }
            }
            Step::Leap { secs } => {
                self.now = self.now.saturating_add(Duration::from_secs(*secs));
                self.machine.handle_timeout(self.now);
            }
            Step::Report401 { generation } => {
                let latest = self.machine.latest_generation().get();
                let generation = u64::from(*generation) % (latest + 2);
                let result = self.machine.report_unauthorized(Generation::from_u64(generation));
                assert_eq!(result.is_err(), generation == 0 || generation > latest, "report_unauthorized({generation})");
                if result.is_ok() && self.machine.tokens().is_some() {
                    // Only a stale report leaves the tokens in place.
                    assert!(generation < latest);
                }
            }
            Step::Start => {
                let could = self.machine.tokens().is_none() && !self.machine.is_logging_in();
                assert_eq!(self.machine.start(), could);
            }
            Step::Refresh => {
                let could = !self.machine.is_logging_in();
                assert_eq!(self.machine.refresh(), could);
            }
            Step::Abort => {
                let was = self.machine.is_logging_in();
                assert_eq!(self.machine.abort_login(), was);
                assert!(!self.machine.is_logging_in());
            }
            Step::PreSign => {
                if let Some(unsigned) = self.machine.poll_jwt(self.now) {
                    let _ = unsigned.signing_input();
                    self.machine.supply_jwt(unsigned.sign());
                }
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
        now: UnixTime::from_millis(setup.start_millis),
        outstanding: VecDeque::new(),
        issued: 0,
        tokens_made: 0,
    };
    driver.check();
    for step in script.steps.iter().take(256) {
        driver.step(step);
        driver.pump();
    }
});
