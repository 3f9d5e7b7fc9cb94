//! Logins against the fake pod on loopback: RSA, certificate (mutual TLS), simplified key delivery, parallel
//! login, and each kind of failure as a distinct typed error.

mod common;

use std::time::Duration;

use common::*;
use symphony_auth_async::{Bot, Error};
use symphony_auth_core::{
    AuthError, BaseUrl, Endpoints, Event, FailureCause, KeyManagerOutcome, ProtocolProblem, RetryPolicy, State,
    TransportFailure, TransportKind,
};
use symphony_auth_testkit::{Endpoint, Fault};

fn echo_body(response: &http::Response<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap()
}

#[test]
fn bot_is_send_sync_clone_and_errors_are_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Bot>();
    check::<Error>();
}

#[tokio::test]
async fn rsa_login_then_session_info_and_echo() {
    let server = server(|_| {});
    let bot = rsa_bot(&server);
    assert_eq!(bot.state(), State::NeedsSession { logging_in: false });

    let me = bot.session_info().await.unwrap();
    assert_eq!(me.username, BOT);
    assert_eq!(Some(me.id), server.pod().user_id(BOT));
    assert!(matches!(bot.state(), State::Ready { refreshing: false, .. }), "{:?}", bot.state());

    let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "hello")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(echo_body(&response)["message"], "hello");

    let tokens = bot.tokens().await.unwrap();
    assert_eq!(tokens.generation().get(), 1);
    assert!(tokens.key_manager().is_some());
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1);
    assert_eq!(counters.responses(Endpoint::Echo, 200), 1);
    // Nothing secret in the bot's Debug output.
    let printed = format!("{bot:?}");
    assert!(!printed.contains(tokens.session().expose_secret()), "{printed}");
}

#[tokio::test]
async fn certificate_login_over_mutual_tls_then_session_info_and_echo() {
    let server = server(|_| {});
    let bot = cert_builder(&server).build().unwrap();

    let me = bot.session_info().await.unwrap();
    assert_eq!(me.username, CERT_BOT);
    let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "over mTLS")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(echo_body(&response)["message"], "over mTLS");

    let counters = server.counters();
    assert_eq!(counters.responses(Endpoint::CertSessionLogin, 200), 1);
    assert_eq!(counters.responses(Endpoint::CertKeyManagerLogin, 200), 1);
    assert_eq!(counters.requests(Endpoint::SessionLogin), 0);
}

#[tokio::test]
async fn a_certificate_login_without_a_client_certificate_is_refused_at_build() {
    let server = server(|_| {});
    let config = symphony_auth_core::Config::certificate(server.cert_endpoints(), CERT_BOT).unwrap();
    let built = Bot::builder(config).extra_root_certificates_pem(server.ca_pem().as_bytes()).unwrap().build();
    assert!(matches!(built, Err(Error::Config(symphony_auth_core::ConfigError::MissingCredentials))), "{built:?}");
}

#[tokio::test]
async fn skd_skips_the_key_manager_and_echo_works_without_its_token() {
    let server = server(|pod| pod.set_skd(true));
    let events = Events::default();
    // Sequential login: the session answer (with SKD) comes first, so the key manager is never asked.
    let config = rsa_config(server.rsa_endpoints()).with_parallel_login(false);
    let bot = Bot::builder(config).on_event(events.hook()).build().unwrap();

    let tokens = bot.tokens().await.unwrap();
    assert!(tokens.simplified_key_delivery());
    assert!(tokens.key_manager().is_none());
    let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "skd")).await.unwrap();
    assert_eq!(response.status(), 200);

    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 0);
    assert!(events.take().contains(&Event::Authenticated {
        generation: tokens.generation(),
        key_manager: KeyManagerOutcome::SkippedBySimplifiedKeyDelivery,
    }));

    // A re-login after SKD asks the pod alone first, even with parallel login on.
    let parallel = Bot::builder(rsa_config(server.rsa_endpoints())).build().unwrap();
    parallel.tokens().await.unwrap();
    parallel.refresh().await.unwrap();
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 1, "only the first parallel login asks it");
}

#[tokio::test]
async fn skd_with_the_key_manager_down_still_reaches_ready() {
    // The session answer grants SKD, so the login completes without waiting for the key manager's answer.
    let server = server(|pod| {
        pod.set_skd(true);
        pod.set_key_manager_down(true);
    });
    let bot = rsa_bot(&server);
    let tokens = bot.tokens().await.unwrap();
    assert!(matches!(bot.state(), State::Ready { refreshing: false, .. }), "{:?}", bot.state());
    assert!(tokens.key_manager().is_none());
    let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "km down")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn parallel_login_overlaps_the_two_logins_and_sequential_does_not() {
    let server = server(|pod| {
        pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(100));
        pod.set_latency(Endpoint::KeyManagerLogin, Duration::from_millis(100));
    });
    rsa_bot(&server).tokens().await.unwrap();
    assert_eq!(server.peak_in_flight(), 2, "the session and key-manager logins were in flight together");

    server.reset_peaks();
    let sequential = Bot::builder(rsa_config(server.rsa_endpoints()).with_parallel_login(false)).build().unwrap();
    let tokens = sequential.tokens().await.unwrap();
    assert!(tokens.key_manager().is_some());
    assert_eq!(server.peak_in_flight(), 1, "one login at a time");
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 2);
}

#[tokio::test]
async fn a_401_at_login_is_rejected_naming_the_user_after_one_attempt() {
    let server = server(|pod| {
        pod.add_rsa_bot(BOT, OTHER_PUBLIC_KEY).unwrap(); // re-keyed: our signature no longer matches
    });
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).build().unwrap();
    let error = bot.tokens().await.unwrap_err();
    match &error {
        Error::Auth(AuthError::Rejected { username, status, .. }) => {
            assert_eq!(username, BOT);
            assert_eq!(*status, 401);
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(error.to_string().contains(BOT), "{error}");
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    assert_eq!(bot.state(), State::NeedsSession { logging_in: false });
}

/// The login at `endpoints` fails once, without retry.
async fn failed_login(endpoints: Endpoints, timeout: Duration) -> Error {
    let config = pod_only(rsa_config(endpoints)).with_retry(RetryPolicy::no_retry());
    let bot = Bot::builder(config).timeout(timeout).build().unwrap();
    bot.tokens().await.unwrap_err()
}

fn transport_kind_of_last_attempt(error: &Error) -> TransportKind {
    match error {
        Error::Auth(AuthError::Unavailable {
            last: FailureCause::Transport(TransportFailure { kind, .. }), ..
        }) => *kind,
        Error::Auth(AuthError::Transport { failure, .. }) => failure.kind,
        other => panic!("expected a transport failure, got {other:?}"),
    }
}

#[tokio::test]
async fn timeout_dropped_connection_malformed_body_and_untrusted_tls_are_four_distinct_errors() {
    // Timeout: the fake answers after 2 s, the client waits 200 ms.
    let slow = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_secs(2)));
    let timeout = failed_login(slow.rsa_endpoints(), Duration::from_millis(200)).await;
    assert_eq!(transport_kind_of_last_attempt(&timeout), TransportKind::Timeout, "{timeout}");

    // Dropped connection: the fake closes without answering.
    let closing = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::Close));
    let reset = failed_login(closing.rsa_endpoints(), Duration::from_secs(10)).await;
    assert_eq!(transport_kind_of_last_attempt(&reset), TransportKind::Reset, "{reset}");

    // Malformed body: a 200 whose JSON is cut short.
    let malformed = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::MalformedJson));
    let protocol = failed_login(malformed.rsa_endpoints(), Duration::from_secs(10)).await;
    assert!(
        matches!(&protocol, Error::Auth(AuthError::Protocol { problem: ProtocolProblem::NotJson, status: 200, .. })),
        "{protocol:?}"
    );

    // TLS trust failure: HTTPS to the fake without adding its CA.
    let tls_server = https_server(|_| {});
    let tls = failed_login(tls_server.rsa_endpoints(), Duration::from_secs(10)).await;
    assert!(matches!(&tls, Error::Auth(AuthError::Transport { .. })), "not retried: {tls:?}");
    assert_eq!(transport_kind_of_last_attempt(&tls), TransportKind::Tls, "{tls}");
    assert_eq!(tls_server.counters().total_requests(), 0, "no request got through");

    // And the transport kinds are told apart: Timeout, Reset, (protocol), Tls.
    let kinds = [timeout, reset, tls].map(|e| transport_kind_of_last_attempt(&e));
    assert_eq!(kinds, [TransportKind::Timeout, TransportKind::Reset, TransportKind::Tls]);
}

#[tokio::test]
async fn api_call_failures_are_typed_transport_errors() {
    let server = server(|_| {});
    // An agent that is not there: connection refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut endpoints = server.rsa_endpoints();
    endpoints.agent = BaseUrl::parse("agent", &dead_url).unwrap();
    let config = rsa_config(server.rsa_endpoints());
    let config = symphony_auth_core::Config::new(endpoints, BOT, config.method().clone()).unwrap();
    let bot = Bot::builder(config).timeout(Duration::from_millis(300)).build().unwrap();

    let kind = |result: Result<http::Response<Vec<u8>>, Error>| match result {
        Err(Error::Transport { kind, .. }) => kind,
        other => panic!("expected a transport error, got {other:?}"),
    };
    assert_eq!(kind(bot.send(symphony_auth_core::echo(bot.config().endpoints(), "x")).await), TransportKind::Connect);

    server.pod().inject(Endpoint::SessionInfo, 1, Fault::Close);
    assert_eq!(kind(bot.send(symphony_auth_core::session_info(bot.config().endpoints())).await), TransportKind::Reset);

    server.pod().inject(Endpoint::SessionInfo, 1, Fault::Delay(Duration::from_secs(2)));
    assert_eq!(
        kind(bot.send(symphony_auth_core::session_info(bot.config().endpoints())).await),
        TransportKind::Timeout
    );

    // A 4xx/5xx is an answer, not an error, and reaches the caller with its body.
    server.pod().inject(Endpoint::SessionInfo, 1, Fault::status(503));
    let response = bot.send(symphony_auth_core::session_info(bot.config().endpoints())).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(echo_body(&response)["code"], 503);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1, "no re-login for a 503");
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::OversizedBody(1024 * 1024)));
    let config = pod_only(rsa_config(server.rsa_endpoints())).with_retry(RetryPolicy::no_retry());
    let bot = Bot::builder(config).max_response_body(100).build().unwrap();
    let error = bot.tokens().await.unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::Protocol { problem: ProtocolProblem::BodyTooLarge, .. })),
        "{error:?}"
    );
    // The login answer cap does not depend on `max_response_body`; API answers do. (A refresh: the failed login
    // is cooling down, and plain callers get its error meanwhile.)
    assert_eq!(bot.tokens().await.unwrap_err(), error);
    bot.refresh().await.unwrap();
    match bot.session_info().await {
        Err(Error::Transport { kind: TransportKind::Other, detail }) => {
            assert!(detail.contains("100 bytes"), "{detail}")
        }
        other => panic!("expected an oversize error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_401_after_the_re_login_is_unauthorized_not_a_loop() {
    let server = server(|pod| pod.inject(Endpoint::SessionInfo, 2, Fault::status(401)));
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).build().unwrap();
    match bot.session_info().await {
        Err(Error::Unauthorized { generation }) => assert_eq!(generation, 2),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
    assert_eq!(server.counters().requests(Endpoint::SessionInfo), 2);
    // The refused tokens are expired; the next call logs in again and succeeds.
    assert!(matches!(bot.state(), State::Expired { logging_in: false, .. }), "{:?}", bot.state());
    bot.session_info().await.unwrap();
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 3);
}

#[tokio::test]
async fn no_process_global_crypto_provider_is_installed() {
    let server = server(|_| {});
    let bot = cert_builder(&server).build().unwrap();
    bot.session_info().await.unwrap();
    assert!(rustls::crypto::CryptoProvider::get_default().is_none());
}

#[test]
fn bad_settings_are_typed_errors() {
    let config = rsa_config(Endpoints::single("https://pod.example").unwrap());
    assert!(matches!(Bot::builder(config.clone()).extra_root_certificates_pem(b"nothing"), Err(Error::Tls(_))));
    let bad_cert = b"-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
    let built = Bot::builder(config.clone()).extra_root_certificates_pem(bad_cert).and_then(|b| b.build());
    assert!(matches!(built, Err(Error::Tls(_))), "{built:?}");
    match Bot::builder(config.clone()).proxy("http://user:secret@[bad") {
        Err(Error::Config(error)) => assert!(!error.to_string().contains("secret"), "{error}"),
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(Bot::builder(config).proxy("http://127.0.0.1:3128").unwrap().build().is_ok());
}
