//! What a bot's events look like in `tracing`: captured as text by a formatting subscriber at TRACE, through the
//! options the builder hands a driver.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{Config, KeyManagerPolicy, LoginMethod};
use crate::driver::tests::{BOT_PEM, Capture, certificate, rsa};
use crate::driver::{BotBuilder, ClientOptions};
use crate::endpoint::LoginEndpoint;
use crate::error::{AuthError, FailureCause, TransportFailure, TransportKind};
use crate::identity::ClientIdentity;
use crate::machine::{Event, KeyManagerOutcome};
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

/// What tracing records of the events handed to the options of a bot built with `config`, batch by batch.
fn traced(config: Config, batches: &[&[Event]]) -> String {
    let mut builder = BotBuilder::<Capture>::new(config);
    if matches!(builder.config().method(), LoginMethod::Certificate) {
        builder = builder.client_identity(ClientIdentity::from_pem(BOT_PEM).unwrap());
    }
    let (_, options) = builder.build().unwrap();
    traced_with(&options, |options| batches.iter().for_each(|events| options.emit(events)))
}

fn traced_with(options: &ClientOptions, emit: impl FnOnce(&ClientOptions)) -> String {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::with_default(subscriber, || emit(options));
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
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
    let text = traced(rsa(), &[&[Event::LoginStarted { refresh: false }], &[retry], &[done]]);

    let span = "login{username=bot.user method=\"rsa\" \
                session_endpoint=https://pod.example/login/pubkey/authenticate \
                key_manager_endpoint=\"https://pod.example/relay/pubkey/authenticate\" reason=\"initial\"";
    assert!(line(&text, "login started").contains(span), "{text}");
    let retried = line(&text, "retry scheduled");
    assert!(retried.contains("attempt=3"), "the span counts the next attempt: {retried}");
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
    assert!(logged_in.contains("generation=1 key_manager=\"obtained\" elapsed_ms="), "{logged_in}");
    assert!(logged_in.contains("login{") && logged_in.contains("generation=1}"), "recorded on the span: {logged_in}");
    assert!(line(&text, "simplified key delivery decision").contains("skd=false"), "{text}");
    assert!(line(&text, ": close").starts_with(" INFO login{"), "the span closes when the login ends: {text}");
}

#[test]
fn certificate_logins_name_their_endpoints_and_a_pod_only_bot_has_no_key_manager() {
    let text = traced(certificate(), &[&[Event::LoginStarted { refresh: false }]]);
    let started = line(&text, "login started");
    assert!(started.contains("method=\"certificate\""), "{started}");
    assert!(started.contains("session_endpoint=https://pod.example/sessionauth/v1/authenticate"), "{started}");
    assert!(started.contains("key_manager_endpoint=\"https://pod.example/keyauth/v1/authenticate\""), "{started}");

    let text = traced(rsa().with_key_manager(KeyManagerPolicy::Never), &[&[Event::LoginStarted { refresh: false }]]);
    assert!(!line(&text, "login started").contains("key_manager_endpoint"), "{text}");
}

#[test]
fn a_401_a_relogin_and_the_skd_decision() {
    let skd = KeyManagerOutcome::SkippedBySimplifiedKeyDelivery;
    let text = traced(
        rsa(),
        &[
            &[Event::LoginStarted { refresh: false }],
            &[Event::Authenticated { generation: Generation::from_u64(1), key_manager: skd }],
            &[Event::Expired { generation: Generation::from_u64(1) }],
            &[Event::LoginStarted { refresh: false }],
            &[Event::Authenticated { generation: Generation::from_u64(2), key_manager: skd }],
            &[Event::LoginStarted { refresh: true }],
            &[Event::LoggedOut { generation: Generation::from_u64(2) }],
        ],
    );
    let expired = line(&text, "tokens refused with HTTP 401");
    assert!(expired.contains("WARN") && expired.contains("generation=1"), "{expired}");
    let starts: Vec<_> = text.lines().filter(|l| l.contains("login started")).collect();
    assert_eq!(starts.len(), 3, "{text}");
    assert!(starts[0].contains("reason=\"initial\""), "{}", starts[0]);
    assert!(starts[1].contains("reason=\"relogin\""), "after a 401: {}", starts[1]);
    assert!(starts[2].contains("reason=\"refresh\""), "{}", starts[2]);
    assert!(line(&text, "simplified key delivery decision").contains("skd=true key_manager=\"skipped\""), "{text}");
    assert!(line(&text, "logged out").contains("generation=2"), "{text}");
}

#[test]
fn failures_by_class_then_refusals_while_cooling_down() {
    let (_, options) = BotBuilder::<Capture>::new(rsa()).build().unwrap();
    let failed = Event::LoginFailed { error: rejected(), cool_down: Duration::from_secs(2) };
    let text = traced_with(&options, |options| {
        options.emit(&[Event::LoginStarted { refresh: false }]);
        // The leader whose login failed in this poll: not a refusal.
        options.emit_answer(&Err(rejected()), true, &[failed.clone()]);
        // A follower of that login: not a refusal either.
        options.emit_answer(&Err(rejected()), false, &[]);
        // A caller that finds the failure cooling down.
        options.emit_answer(&Err(rejected()), true, &[]);
        options.emit(&[Event::LoginStarted { refresh: false }]);
    });
    let failure = line(&text, "login failed");
    for field in ["ERROR", "class=\"rejected\"", "status=401", "cool_down_ms=2000", "rejected bot \"bot.user\""] {
        assert!(failure.contains(field), "{field}: {failure}");
    }
    assert_eq!(text.matches("login refused: the last login failed and is cooling down").count(), 1, "{text}");
    assert!(line(&text, "cooling down").contains("class=\"rejected\""), "{text}");
    let again = text.lines().filter(|l| l.contains("login started")).nth(1).unwrap();
    assert!(again.contains("reason=\"after_failure\""), "{again}");
}

#[test]
fn transport_failures_are_classed_by_kind() {
    let error = |kind| AuthError::Transport {
        endpoint: LoginEndpoint::RsaSession,
        username: "bot.user".into(),
        failure: TransportFailure::new(kind, "detail"),
    };
    assert_eq!(super::class(&error(TransportKind::Tls)), "tls");
    assert_eq!(super::class(&error(TransportKind::Refused)), "refused");
    assert_eq!(super::class(&error(TransportKind::Connect)), "transport");
    assert_eq!(super::class(&rejected()), "rejected");
}

#[test]
fn options_made_without_a_bot_and_a_subscriber_off_trace_nothing() {
    let text = traced_with(&ClientOptions::new(), |options| options.emit(&[Event::LoginStarted { refresh: false }]));
    assert_eq!(text, "", "no tracer outside a built bot");
    let (_, options) = BotBuilder::<Capture>::new(rsa()).build().unwrap();
    let text = traced_with(&options, |options| options.emit(&[Event::LoginStarted { refresh: false }]));
    assert!(text.contains("login started"), "{text}");
}
