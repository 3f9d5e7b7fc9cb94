//! The bot's `tracing` output, captured at TRACE for every target with reqwest's (and, when its `logging`
//! feature is on, rustls's) `log` records bridged in (`tracing-log`), holds the expected spans and events of an RSA
//! login with a retry, a 401 and its re-login, a certificate login, a rejected login and a refusal during its
//! cool-down, and no secret: not the keys, not a token or its base64, no JWT (`eyJ`), no 64-hex run.

mod common;

use std::io;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use common::{BOT, CERT_BOT, KEY, cert_builder, rsa_bot, server};
use symphony_auth_async::{Bot, Error};
use symphony_auth_core::{AuthError, Config, CoolDown, RetryPolicy, RsaSigner, session_info};
use symphony_auth_testkit::{Endpoint, Fault};
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

/// The process-wide subscriber (the runtime's worker threads run the bot's tasks) and the `log` bridge, installed
/// once.
fn capture() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(buffer.clone())
            .with_ansi(false)
            .with_span_events(FmtSpan::FULL);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
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
    let key = std::str::from_utf8(KEY).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
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

// One test: the subscriber and the `log` bridge are process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_of_logins_shows_what_happened_and_no_secret() {
    let buffer = capture();
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status(503)));

    // A retry, a login, a 401 and the re-login.
    let bot = rsa_bot(&server);
    let first = bot.tokens().await.expect("login after a 503");
    server.pod().expire_all();
    let replayed = bot.send(session_info(bot.config().endpoints())).await.expect("a 401 is recovered");
    assert_eq!(replayed.status(), 200);
    let second = bot.tokens().await.unwrap();
    assert!(second.generation() > first.generation());

    // A certificate login.
    let cert = cert_builder(&server).build().unwrap();
    let cert_tokens = cert.tokens().await.expect("certificate login");

    // A rejected login (a username the pod does not know), then a caller refused while it cools down.
    let signer = Arc::new(RsaSigner::from_pem(KEY).unwrap());
    let cool_down = CoolDown::new(Duration::from_secs(60), Duration::from_secs(60)).unwrap();
    let config = Config::rsa(server.rsa_endpoints(), "nobody", signer)
        .unwrap()
        .with_retry(RetryPolicy::no_retry())
        .with_cool_down(cool_down);
    let rejected = Bot::builder(config).build().unwrap();
    assert!(matches!(rejected.tokens().await, Err(Error::Auth(AuthError::Rejected { .. }))));
    assert!(matches!(rejected.tokens().await, Err(Error::Auth(AuthError::Rejected { .. }))));

    let text = captured(buffer);
    let span = format!("login{{username=\"{BOT}\" method=\"rsa\" session_endpoint=\"{}", server.pod_url());
    assert!(line(&text, "login started").contains(&span), "{text}");
    let retry = line(&text, "retry scheduled");
    for field in ["endpoint=POST /login/pubkey/authenticate", "attempt=1", "status=503", "delay_ms="] {
        assert!(retry.contains(field), "{field}: {retry}");
    }
    assert!(line(&text, "tokens refused with HTTP 401").contains("generation=1"), "{text}");
    assert!(line(&text, "login started reason=\"relogin\"").contains(&span), "{text}");
    assert!(line(&text, "logged in generation=2").contains("key_manager=\"obtained\""), "{text}");
    let cert_span = format!("login{{username=\"{CERT_BOT}\" method=\"certificate\"");
    assert!(line(&text, &cert_span).contains("/sessionauth/v1/authenticate"), "{text}");
    let failed = line(&text, "class=\"rejected\"");
    assert!(failed.contains("login failed") && failed.contains("status=401"), "{failed}");
    assert!(line(&text, "cooling down").contains("class=\"rejected\""), "{text}");
    assert!(text.contains(" reqwest::connect: "), "reqwest's log records are bridged in:\n{text}");

    let mut tokens = Vec::new();
    for t in [&first, &second, &cert_tokens] {
        tokens.push(t.session().expose_secret().to_owned());
        tokens.extend(t.key_manager().map(|k| k.expose_secret().to_owned()));
    }
    let mut canaries = canaries(&tokens);
    let identity = server.client_identity(CERT_BOT).unwrap().bundle_pem();
    let keys: Vec<String> = identity
        .split("-----BEGIN ")
        .filter(|block| block.lines().next().is_some_and(|label| label.contains("PRIVATE KEY")))
        .map(|block| block.lines().skip(1).take_while(|l| !l.starts_with("-----")).collect())
        .collect();
    assert_eq!(keys.len(), 1, "the certificate's key is a canary");
    canaries.extend(keys);
    assert_no_secret(&text, &canaries);
}
