//! With a logger recording every target at TRACE, RSA and certificate logins, API calls and a 401 recovery through
//! reqwest, hyper and rustls log plenty and hold no token, JWT or key.

mod common;

use std::fmt::Write as _;
use std::sync::Mutex;

use common::{CERT_BOT, KEY, cert_builder, rsa_bot, server};
use symphony_auth_core::{echo, session_info};

struct Capture {
    text: Mutex<String>,
}

static CAPTURE: Capture = Capture { text: Mutex::new(String::new()) };

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut text = self.text.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(text, "{} {} {}", record.level(), record.target(), record.args());
    }

    fn flush(&self) {}
}

fn captured() -> String {
    CAPTURE.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

/// The base64 of every private-key PEM block in `pem` (certificates are public: rustls logs them).
fn private_key_bodies(pem: &str) -> Vec<String> {
    pem.split("-----BEGIN ")
        .skip(1)
        .filter(|block| block.lines().next().is_some_and(|label| label.contains("PRIVATE KEY")))
        .map(|block| block.lines().skip(1).take_while(|l| !l.starts_with("-----")).collect())
        .collect()
}

// One test: the logger is process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_at_trace_holds_no_secret() {
    log::set_logger(&CAPTURE).expect("the only logger of this test binary");
    log::set_max_level(log::LevelFilter::Trace);
    let server = server(|_| {});

    let rsa = rsa_bot(&server);
    let first = rsa.tokens().await.expect("RSA login");
    assert_eq!(rsa.send(echo(rsa.config().endpoints(), "hello")).await.unwrap().status(), 200);
    server.pod().expire_all();
    let replayed = rsa.send(session_info(rsa.config().endpoints())).await.expect("a 401 is recovered");
    assert_eq!(replayed.status(), 200);
    let second = rsa.tokens().await.unwrap();
    assert!(second.generation() > first.generation());

    let cert = cert_builder(&server).build().unwrap();
    assert_eq!(cert.session_info().await.expect("certificate login over mutual TLS").username, CERT_BOT);
    let cert_tokens = cert.tokens().await.unwrap();

    let text = captured();
    assert!(text.contains("TRACE rustls"), "rustls's TRACE records are captured:\n{text}");
    let mut canaries = private_key_bodies(std::str::from_utf8(KEY).unwrap());
    canaries.extend(private_key_bodies(&server.client_identity(CERT_BOT).unwrap().bundle_pem()));
    assert_eq!(canaries.len(), 2, "both keys are canaries");
    canaries.push("eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9".to_owned());
    for tokens in [&first, &second, &cert_tokens] {
        canaries.push(tokens.session().expose_secret().to_owned());
        canaries.extend(tokens.key_manager().map(|t| t.expose_secret().to_owned()));
    }
    assert_no_canary(&text, &canaries);
}
