//! What the machine's events look like in `tracing`: captured as text by a formatting subscriber at TRACE, fed
//! directly and through a machine whose login fails and then cools down.
#![allow(clippy::disallowed_types, reason = "a subscriber's writer is shared across threads: the test's buffer")]

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use super::{LoginTrace, cause_class, class, status};
use crate::config::{Config, Endpoints, KeyManagerPolicy};
use crate::endpoint::LoginEndpoint;
use crate::error::{AuthError, FailureCause, ProtocolProblem, SignError, TransportFailure, TransportKind};
use crate::machine::{Authenticator, Event, KeyManagerOutcome, Output};
use crate::retry::{CoolDown, RetryPolicy};
use crate::signer::JwtSigner;
use crate::time::UnixTime;
use crate::tokens::Generation;

/// The text a subscriber wrote.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Self;

    fn make_writer(&'a self) -> Self {
        self.clone()
    }
}

#[derive(Debug)]
struct Constant;

impl JwtSigner for Constant {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![0; 4])
    }
}

fn rsa() -> Config {
    Config::rsa(Endpoints::single("https://pod.example").unwrap(), "bot.user", Arc::new(Constant)).unwrap()
}

fn certificate() -> Config {
    Config::certificate(Endpoints::single("https://pod.example").unwrap(), "cert.bot").unwrap()
}

/// What `run` traced, at TRACE, with span closes.
fn traced(run: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

/// What tracing records of `events` of a machine with `config`, each polled at its clock in seconds.
fn traced_events(config: &Config, events: &[(u64, Event)]) -> String {
    let mut trace = LoginTrace::default();
    traced(|| events.iter().for_each(|(at, event)| trace.event(config, Some(UnixTime::from_secs(*at)), event)))
}

fn rejected() -> AuthError {
    AuthError::Rejected {
        endpoint: LoginEndpoint::RsaSession,
        username: "bot.user".into(),
        status: 401,
        server_message: None,
        clock_offset_secs: None,
    }
}

fn line<'a>(text: &'a str, message: &str) -> &'a str {
    text.lines().find(|line| line.contains(message)).unwrap_or_else(|| panic!("no {message:?} in:\n{text}"))
}

#[test]
fn a_login_is_a_span_with_the_method_the_endpoints_and_the_attempt() {
    let retry = Event::RetryScheduled {
        endpoint: LoginEndpoint::RsaKeyManager,
        attempt: 2,
        max_attempts: 5,
        delay: Duration::from_millis(1500),
        cause: FailureCause::Status(503),
    };
    let done = Event::Authenticated { generation: Generation::from_u64(1), key_manager: KeyManagerOutcome::Obtained };
    let text = traced_events(&rsa(), &[(100, Event::LoginStarted { refresh: false }), (101, retry), (103, done)]);

    let span = "login{username=\"bot.user\" method=\"rsa\" \
                session_endpoint=\"https://pod.example/login/pubkey/authenticate\" \
                key_manager_endpoint=\"https://pod.example/relay/pubkey/authenticate\" reason=\"initial\"";
    assert!(line(&text, "login started").contains(span), "{text}");
    let retried = line(&text, "retry scheduled");
    assert!(retried.starts_with(" WARN"), "{retried}");
    assert!(retried.contains("attempt=3}"), "the span counts the next attempt: {retried}");
    for field in [
        "endpoint=POST /relay/pubkey/authenticate",
        " attempt=2 max_attempts=5",
        "delay_ms=1500",
        "cause_class=\"status\"",
        "status=503",
        "cause=HTTP 503",
    ] {
        assert!(retried.contains(field), "{field}: {retried}");
    }
    let logged_in = line(&text, "logged in");
    assert!(logged_in.contains("generation=1 key_manager=\"obtained\" elapsed_ms=3000"), "{logged_in}");
    assert!(logged_in.contains(" generation=1}"), "recorded on the span: {logged_in}");
    assert!(line(&text, "simplified key delivery decision").contains("skd=false"), "{text}");
    assert!(line(&text, ": close").starts_with(" INFO login{"), "the span closes when the login ends: {text}");
}

#[test]
fn certificate_logins_name_their_endpoints_and_a_pod_only_bot_has_no_key_manager() {
    let text = traced_events(&certificate(), &[(1, Event::LoginStarted { refresh: false })]);
    let started = line(&text, "login started");
    assert!(started.contains("method=\"certificate\""), "{started}");
    assert!(started.contains("session_endpoint=\"https://pod.example/sessionauth/v1/authenticate\""), "{started}");
    assert!(started.contains("key_manager_endpoint=\"https://pod.example/keyauth/v1/authenticate\""), "{started}");

    let pod_only = rsa().with_key_manager(KeyManagerPolicy::Never);
    let text = traced_events(&pod_only, &[(1, Event::LoginStarted { refresh: false })]);
    assert!(!line(&text, "login started").contains("key_manager_endpoint"), "{text}");
}

#[test]
fn a_401_a_relogin_a_refresh_the_skd_decision_and_a_logout() {
    let skd = KeyManagerOutcome::SkippedBySimplifiedKeyDelivery;
    let g = Generation::from_u64;
    let text = traced_events(
        &rsa(),
        &[
            (1, Event::LoginStarted { refresh: false }),
            (1, Event::Authenticated { generation: g(1), key_manager: skd }),
            (5, Event::Expired { generation: g(1) }),
            (5, Event::LoginStarted { refresh: false }),
            (6, Event::Authenticated { generation: g(2), key_manager: KeyManagerOutcome::Disabled }),
            (9, Event::LoginStarted { refresh: true }),
            (9, Event::LoggedOut { generation: g(2) }),
        ],
    );
    let expired = line(&text, "tokens refused with HTTP 401");
    assert!(expired.starts_with(" WARN") && expired.contains("generation=1"), "{expired}");
    assert!(expired.contains("username=\"bot.user\""), "{expired}");
    let starts: Vec<_> = text.lines().filter(|l| l.contains("login started")).collect();
    assert_eq!(starts.len(), 3, "{text}");
    assert!(starts[0].contains("reason=\"initial\""), "{}", starts[0]);
    assert!(starts[1].contains("reason=\"relogin\""), "after a 401: {}", starts[1]);
    assert!(starts[2].contains("reason=\"refresh\""), "{}", starts[2]);
    assert!(line(&text, "simplified key delivery decision").contains("skd=true key_manager=\"skipped\""), "{text}");
    assert!(line(&text, "logged in generation=2").contains("key_manager=\"disabled\""), "{text}");
    assert!(line(&text, "logged out").contains("generation=2"), "{text}");
}

#[test]
fn a_failure_by_class_and_the_login_after_it() {
    let failed = Event::LoginFailed { error: rejected(), cool_down: Duration::from_secs(2) };
    let text = traced_events(
        &rsa(),
        &[
            (1, Event::LoginStarted { refresh: false }),
            (2, failed),
            (9, Event::LoginStarted { refresh: false }),
            (9, Event::Authenticated { generation: Generation::from_u64(1), key_manager: KeyManagerOutcome::Obtained }),
            (20, Event::LoginStarted { refresh: false }),
        ],
    );
    let failure = line(&text, "login failed");
    for field in [
        "ERROR",
        "class=\"rejected\"",
        "status=401",
        "cool_down_ms=2000",
        "elapsed_ms=1000",
        "rejected bot \"bot.user\"",
    ] {
        assert!(failure.contains(field), "{field}: {failure}");
    }
    let starts: Vec<_> = text.lines().filter(|l| l.contains("login started")).collect();
    assert!(starts[1].contains("reason=\"after_failure\""), "{}", starts[1]);
    assert!(starts[2].contains("reason=\"initial\""), "a success forgets the failure: {}", starts[2]);
}

#[test]
fn events_without_their_login_start_are_traced_outside_a_span() {
    let retry = Event::RetryScheduled {
        endpoint: LoginEndpoint::RsaSession,
        attempt: 1,
        max_attempts: 3,
        delay: Duration::from_millis(10),
        cause: FailureCause::Transport(TransportFailure::new(TransportKind::Timeout, "slow")),
    };
    let done = Event::Authenticated { generation: Generation::from_u64(1), key_manager: KeyManagerOutcome::Obtained };
    let text = traced_events(&rsa(), &[(1, retry), (2, done)]);
    assert!(line(&text, "retry scheduled").starts_with(" WARN symphony_auth_core::trace:"), "{text}");
    assert!(line(&text, "retry scheduled").contains("cause_class=\"timeout\""), "{text}");
    assert!(!line(&text, "logged in").contains("elapsed_ms"), "no start, no duration: {text}");
}

/// A certificate bot whose only login is refused with a 401, and a cool-down of a minute.
fn refused_machine() -> Authenticator {
    let config = certificate()
        .with_key_manager(KeyManagerPolicy::Never)
        .with_retry(RetryPolicy::no_retry())
        .with_cool_down(CoolDown::new(Duration::from_secs(60), Duration::from_secs(60)).unwrap());
    Authenticator::new(config, 1)
}

#[test]
fn a_machine_traces_its_events_as_they_are_polled_and_each_refusal_while_cooling_down() {
    let mut machine = refused_machine();
    let at = UnixTime::from_secs;
    let text = traced(|| {
        let Output::Send(batch) = machine.poll_output(at(100)) else { panic!("a login request") };
        while machine.poll_event().is_some() {}
        let refusal = http::Response::builder().status(401).body(Vec::new()).unwrap();
        machine.handle_response(batch[0].id, &refusal, at(101)).unwrap();
        assert!(matches!(machine.poll_output(at(101)), Output::Done(Err(AuthError::Rejected { .. }))));
        while machine.poll_event().is_some() {}
        // Within the cool-down: the same error, no login.
        assert!(matches!(machine.poll_output(at(131)), Output::Done(Err(AuthError::Rejected { .. }))));
    });
    let started = line(&text, "login started");
    assert!(started.contains("login{username=\"cert.bot\" method=\"certificate\""), "{started}");
    let failed = line(&text, "login failed");
    assert!(
        failed.contains("class=\"rejected\" endpoint=\"POST /sessionauth/v1/authenticate\" status=401"),
        "{failed}"
    );
    assert!(failed.contains("cool_down_ms=60000 elapsed_ms=1000"), "{failed}");
    assert_eq!(text.matches("login refused: the last login failed and is cooling down").count(), 1, "{text}");
    let refused = line(&text, "cooling down");
    assert!(refused.starts_with(" WARN") && refused.contains("class=\"rejected\""), "{refused}");
    assert!(refused.contains("remaining_ms=30000"), "{refused}");

    // Events not polled are not traced.
    let mut machine = refused_machine();
    let text = traced(|| {
        let _ = machine.poll_output(at(100));
    });
    assert_eq!(text, "", "traced only as polled");
}

#[test]
fn failures_and_causes_are_classed() {
    let transport = |kind| AuthError::Transport {
        endpoint: LoginEndpoint::RsaSession,
        username: "bot.user".into(),
        failure: TransportFailure::new(kind, "detail"),
    };
    let unavailable = |last| AuthError::Unavailable {
        endpoint: LoginEndpoint::RsaSession,
        username: "bot.user".into(),
        attempts: 3,
        last,
    };
    let protocol = AuthError::Protocol {
        endpoint: LoginEndpoint::RsaSession,
        status: 200,
        problem: ProtocolProblem::NotJson,
        body_prefix: String::new(),
    };
    let obo = AuthError::OboNotInstalled {
        endpoint: LoginEndpoint::RsaOboUserId,
        app_id: "app".into(),
        user: "user id 1".into(),
        status: 403,
    };
    let unknown = AuthError::OboUnknownUser { endpoint: LoginEndpoint::RsaOboUserId, user: "user id 1".into() };
    let signing = AuthError::Signing(SignError("hsm".into()));
    let cases = [
        (rejected(), "rejected", Some(401)),
        (unavailable(FailureCause::Status(503)), "unavailable", Some(503)),
        (unavailable(FailureCause::Transport(TransportFailure::new(TransportKind::Reset, ""))), "unavailable", None),
        (transport(TransportKind::Tls), "tls", None),
        (transport(TransportKind::Refused), "refused", None),
        (transport(TransportKind::Connect), "transport", None),
        (protocol, "protocol", Some(200)),
        (signing, "signing", None),
        (obo, "obo", Some(403)),
        (unknown, "obo", None),
    ];
    for (error, expected_class, expected_status) in cases {
        assert_eq!((class(&error), status(&error)), (expected_class, expected_status), "{error}");
    }
    let cause = |kind| FailureCause::Transport(TransportFailure::new(kind, ""));
    for (kind, expected) in [
        (TransportKind::Timeout, "timeout"),
        (TransportKind::Connect, "connect"),
        (TransportKind::Reset, "reset"),
        (TransportKind::Tls, "tls"),
        (TransportKind::Refused, "refused"),
        (TransportKind::Other, "transport"),
    ] {
        assert_eq!(cause_class(&cause(kind)), expected);
    }
    assert_eq!(cause_class(&FailureCause::Status(429)), "status");
}
