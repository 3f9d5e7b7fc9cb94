//! The bot's `tracing` output, captured at TRACE for every target with ureq's and rustls's `log` records bridged
//! in (`tracing-log`), holds the expected spans and events of a login with a retry, a 401 and its re-login, a
//! rejected login and a refusal during its cool-down, and no secret: not the key, not a token or its base64, no
//! JWT (`eyJ`), no 64-hex run. With ureq-proto's dump enabled at TRACE through the bridge, the bot refuses to send.

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use common::{BOT, KEY_2048, OTHER_KEY, one_shot, rsa_bot, rsa_config, server};
use symphony_auth_blocking::symphony_auth_core::{AuthError, CoolDown, TransportKind, session_info};
use symphony_auth_blocking::{Bot, Error};
use symphony_auth_testkit::{Endpoint, Fault};
use tracing_subscriber::filter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;

/// Everything the subscriber wrote.
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

/// While set, `ureq_proto` is recorded at DEBUG at most (as the CLI caps it); every other target at TRACE.
static QUIET_UREQ_PROTO: AtomicBool = AtomicBool::new(true);

/// The process-wide subscriber (login threads are the bot's own, so a thread-local one would miss them) and the
/// `log` bridge, installed once.
fn capture() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let filter = filter::dynamic_filter_fn(|metadata, _| {
            !(QUIET_UREQ_PROTO.load(Ordering::SeqCst)
                && metadata.target().starts_with("ureq_proto")
                && *metadata.level() == tracing::Level::TRACE)
        });
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(buffer.clone())
            .with_ansi(false)
            .with_span_events(FmtSpan::FULL);
        // A filter of the whole subscriber, so that `log_enabled!` through the bridge sees it too.
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(filter).with(layer))
            .expect("the only subscriber of this test binary");
        tracing_log::LogTracer::init().expect("the only logger of this test binary");
        buffer
    })
}

fn captured(buffer: &Buffer) -> String {
    String::from_utf8_lossy(&buffer.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
}

/// Fails when `text` holds a 16-character slice of a canary, a JWT's start or a run of 64 hex digits. rustls's
/// TRACE records of a handshake (their lines are told apart by their target) are spared the hex check only: they
/// print the hello randoms and public key shares in hex, which are public by design.
fn assert_no_secret(text: &str, canaries: &[String]) {
    for canary in canaries {
        for window in canary.as_bytes().windows(16.min(canary.len())) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!text.contains(window), "the trace holds {window:?} of a secret:\n{text}");
        }
    }
    assert!(!text.contains("eyJ"), "the trace holds a JWT:\n{text}");
    let mut in_rustls = false;
    for line in text.lines() {
        // A record's first line names its target; the lines of a multi-line record follow it.
        if line.starts_with(|c: char| c.is_ascii_digit()) {
            in_rustls = line.contains(" rustls::");
        }
        let mut run = 0;
        for c in line.chars() {
            run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
            assert!(in_rustls || run < 64, "the trace holds a 64-hex token: {line}");
        }
    }
}

/// The key's base64, each token, and each token's base64.
fn canaries(tokens: &[String]) -> Vec<String> {
    let key = std::str::from_utf8(KEY_2048).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
    let mut canaries = vec![key];
    for token in tokens {
        canaries.push(token.clone());
        canaries.push(base64::engine::general_purpose::STANDARD.encode(token));
        canaries.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
    }
    canaries
}

fn line<'a>(text: &'a str, message: &str) -> &'a str {
    text.lines().find(|line| line.contains(message)).unwrap_or_else(|| panic!("no {message:?} in:\n{text}"))
}

// One test: the subscriber, the `log` bridge and the ureq-proto switch are process-wide.
#[test]
fn the_trace_of_logins_shows_what_happened_and_no_secret() {
    let buffer = capture();

    // ureq-proto's dump enabled at TRACE through the bridge: nothing is sent.
    QUIET_UREQ_PROTO.store(false, Ordering::SeqCst);
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status(503)));
    let refused = rsa_bot(&server).tokens().unwrap_err();
    assert!(
        matches!(&refused, Error::Auth(AuthError::Transport { failure, .. }) if failure.kind == TransportKind::Refused),
        "{refused:?}"
    );
    assert_eq!(server.counters().total_requests(), 0, "nothing may be sent");
    assert!(line(&captured(buffer), "login failed").contains("class=\"refused\""));
    QUIET_UREQ_PROTO.store(true, Ordering::SeqCst);

    // A retry, a login, a 401 and the re-login.
    let bot = rsa_bot(&server);
    let first = bot.tokens().expect("login after a 503");
    server.pod().expire_all();
    assert_eq!(bot.send(session_info(bot.config().endpoints())).expect("a 401 is recovered").status(), 200);
    let second = bot.tokens().unwrap();
    assert!(second.generation() > first.generation());

    // A rejected login, then a caller refused while it cools down.
    let cool_down = CoolDown::new(Duration::from_secs(60), Duration::from_secs(60)).unwrap();
    let config = one_shot(rsa_config(server.rsa_endpoints(), OTHER_KEY)).with_cool_down(cool_down);
    let rejected = Bot::builder(config).build().unwrap();
    assert!(matches!(rejected.tokens(), Err(Error::Auth(AuthError::Rejected { .. }))));
    assert!(matches!(rejected.tokens(), Err(Error::Auth(AuthError::Rejected { .. }))));

    let text = captured(buffer);
    let span = format!("login{{username=\"{BOT}\" method=\"rsa\" session_endpoint=\"{}", server.pod_url());
    assert!(line(&text, "login started").contains(&span), "{text}");
    let retry = line(&text, "retry scheduled");
    for field in ["endpoint=POST /login/pubkey/authenticate", "attempt=1", "status=503", "delay_ms="] {
        assert!(retry.contains(field), "{field}: {retry}");
    }
    assert!(line(&text, "tokens refused with HTTP 401").contains("generation=1"), "{text}");
    assert!(line(&text, "login started reason=\"relogin\"").contains("reason=\"relogin\" attempt=1}"), "{text}");
    assert!(line(&text, "logged in generation=2").contains("key_manager=\"obtained\""), "{text}");
    let failed = line(&text, "class=\"rejected\"");
    assert!(failed.contains("login failed") && failed.contains("status=401"), "{failed}");
    assert!(line(&text, "cooling down").contains("class=\"rejected\""), "{text}");
    assert!(text.contains(" ureq::"), "ureq's log records are bridged in:\n{text}");
    assert!(!text.contains(" ureq_proto::util: "), "ureq-proto's dump is held back:\n{text}");

    let mut tokens = Vec::new();
    for t in [&first, &second] {
        tokens.push(t.session().expose_secret().to_owned());
        tokens.extend(t.key_manager().map(|k| k.expose_secret().to_owned()));
    }
    assert_no_secret(&text, &canaries(&tokens));
}
