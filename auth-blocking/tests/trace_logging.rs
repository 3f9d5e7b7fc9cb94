//! With a logger at TRACE for every target, nothing secret reaches the log: ureq-proto's hex dump of every
//! request and response (target `ureq_proto::util`) makes the bot refuse to send, and with that one target at DEBUG
//! a full login, an API call and a 401 recovery log plenty while holding no token, JWT or key.

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use common::{KEY_2048, rsa_bot, server};
use symphony_auth_blocking::Error;
use symphony_auth_blocking::symphony_auth_core::{AuthError, TransportKind, session_info};

/// Records every target at TRACE, except `ureq_proto` at DEBUG while `QUIET_UREQ_PROTO` is set.
struct Capture {
    text: Mutex<String>,
}

static QUIET_UREQ_PROTO: AtomicBool = AtomicBool::new(false);
static CAPTURE: Capture = Capture { text: Mutex::new(String::new()) };
/// The logger and its filter are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        let quiet = QUIET_UREQ_PROTO.load(Ordering::SeqCst) && metadata.target().starts_with("ureq_proto");
        !quiet || metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(text, "{} {} {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the capture (once), sets the filter and empties the record.
fn capture(quiet_ureq_proto: bool) -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if log::set_logger(&CAPTURE).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
    QUIET_UREQ_PROTO.store(quiet_ureq_proto, Ordering::SeqCst);
    CAPTURE.text.lock().unwrap_or_else(|e| e.into_inner()).clear();
    guard
}

fn captured() -> String {
    CAPTURE.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The base64 of the key fixture, the first line of every login JWT (`{"alg":"RS512","typ":"JWT"}`), and the
/// given tokens.
fn canaries(tokens: &[&str]) -> Vec<String> {
    let key: String = std::str::from_utf8(KEY_2048).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
    let mut canaries = vec![key, "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9".to_owned()];
    canaries.extend(tokens.iter().map(|t| (*t).to_owned()));
    canaries
}

/// Fails when `text` holds a canary or any 16-character slice of one.
fn assert_no_canary(text: &str, canaries: &[String]) {
    for canary in canaries {
        let bytes = canary.as_bytes();
        for window in bytes.windows(16.min(bytes.len())) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "the log holds {window:?} of a secret:\n{text}");
        }
    }
}

#[test]
fn the_bot_refuses_to_send_while_ureq_proto_dumps_at_trace() {
    let _guard = capture(false);
    let server = server(|_| {});
    let bot = rsa_bot(&server);

    let error = bot.tokens().unwrap_err();
    match &error {
        Error::Auth(AuthError::Transport { failure, .. }) => {
            assert_eq!(failure.kind, TransportKind::Refused);
            assert!(failure.detail.contains("ureq_proto=debug"), "{error}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(server.counters().total_requests(), 0, "nothing may be sent");
    let call = bot.send(session_info(bot.config().endpoints()));
    assert!(matches!(call, Err(Error::Auth(AuthError::Transport { .. }))), "{call:?}");
    assert_eq!(server.counters().total_requests(), 0, "nothing may be sent");
    assert_no_canary(&format!("{error} {error:?}\n{}", captured()), &canaries(&[]));
}

#[test]
fn with_ureq_proto_at_debug_a_login_and_a_recovery_log_no_secret() {
    let _guard = capture(true);
    let server = server(|_| {});
    let bot = rsa_bot(&server);

    let first = bot.tokens().expect("login works with ureq_proto at DEBUG");
    let info = bot.session_info().expect("an API call works");
    assert_eq!(info.username, common::BOT);
    server.pod().expire_all();
    let replayed = bot.send(session_info(bot.config().endpoints())).expect("a 401 is recovered");
    assert_eq!(replayed.status(), 200);
    let second = bot.tokens().unwrap();
    assert!(second.generation() > first.generation());

    let text = captured();
    assert!(text.contains("DEBUG ureq"), "other targets are recorded:\n{text}");
    assert!(!text.contains("ureq_proto::util"), "the dump is filtered:\n{text}");
    let mut secrets = vec![first.session().expose_secret(), second.session().expose_secret()];
    secrets.extend(first.key_manager().map(|t| t.expose_secret()));
    secrets.extend(second.key_manager().map(|t| t.expose_secret()));
    assert_no_canary(&text, &canaries(&secrets));
}
