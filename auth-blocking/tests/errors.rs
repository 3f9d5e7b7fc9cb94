//! Every failure arrives typed: timeouts, dropped connections, malformed bodies and TLS trust failures apart, at
//! login and on API calls; and the builder's own errors.

mod common;

use std::time::Duration;

use common::{KEY_2048, https_server, one_shot, rsa_bot, rsa_builder, rsa_config, server};
use symphony_auth_blocking::symphony_auth_core::{
    self, AuthError, ClientIdentity, Config, ConfigError, Endpoints, FailureCause, MAX_RESPONSE_BODY, ProtocolProblem,
    TransportFailure, TransportKind,
};
use symphony_auth_blocking::{Bot, Error};
use symphony_auth_testkit::{Endpoint, Fault};

/// The kind of transport failure that exhausted a one-attempt login.
fn unavailable_kind(error: &Error) -> TransportKind {
    match error {
        Error::Auth(AuthError::Unavailable {
            attempts: 1,
            last: FailureCause::Transport(TransportFailure { kind, .. }),
            ..
        }) => *kind,
        other => panic!("expected a login unavailable after a transport failure, got {other:?}"),
    }
}

fn one_shot_bot(endpoints: Endpoints) -> symphony_auth_blocking::BotBuilder {
    Bot::builder(one_shot(rsa_config(endpoints, KEY_2048)))
}

#[test]
fn login_timeout_is_a_timeout() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_secs(3)));
    let bot = one_shot_bot(server.rsa_endpoints()).timeout(Duration::from_millis(300)).build().unwrap();
    assert_eq!(unavailable_kind(&bot.tokens().unwrap_err()), TransportKind::Timeout);
}

#[test]
fn login_connection_dropped_is_a_reset() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::Close));
    let bot = one_shot_bot(server.rsa_endpoints()).build().unwrap();
    assert_eq!(unavailable_kind(&bot.tokens().unwrap_err()), TransportKind::Reset);
}

#[test]
fn login_connection_refused_is_a_connect_failure() {
    // A port that was free a moment ago: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bot = one_shot_bot(Endpoints::single(&format!("http://127.0.0.1:{port}")).unwrap()).build().unwrap();
    assert_eq!(unavailable_kind(&bot.tokens().unwrap_err()), TransportKind::Connect);
}

#[test]
fn a_name_that_does_not_resolve_is_a_connect_failure() {
    // `.invalid` never resolves (RFC 6761).
    let bot = one_shot_bot(Endpoints::single("https://nonexistent.invalid").unwrap()).build().unwrap();
    assert_eq!(unavailable_kind(&bot.tokens().unwrap_err()), TransportKind::Connect);
}

#[test]
fn login_malformed_body_is_a_protocol_error() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::MalformedJson));
    let bot = one_shot_bot(server.rsa_endpoints()).build().unwrap();
    let error = bot.tokens().unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::Protocol { status: 200, problem: ProtocolProblem::NotJson, .. })),
        "{error:?}"
    );
}

#[test]
fn login_oversized_body_is_read_no_further_than_the_cap() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::OversizedBody(MAX_RESPONSE_BODY * 4)));
    let bot = one_shot_bot(server.rsa_endpoints()).build().unwrap();
    let error = bot.tokens().unwrap_err();
    assert!(
        matches!(error, Error::Auth(AuthError::Protocol { problem: ProtocolProblem::BodyTooLarge, .. })),
        "{error:?}"
    );
}

#[test]
fn login_to_an_untrusted_server_is_a_tls_failure_and_not_retried() {
    let server = https_server(|_| {});
    // The fake's CA is not added: its certificate chains to nothing the bot trusts.
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048)).build().unwrap();
    let error = bot.tokens().unwrap_err();
    match &error {
        Error::Auth(AuthError::Transport { failure, .. }) => assert_eq!(failure.kind, TransportKind::Tls),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    // Not retried (the policy allows 5 attempts): nothing even reached the pod.
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 0);
}

#[test]
fn certificate_login_without_a_client_certificate_on_the_mtls_listener_is_a_tls_failure() {
    let server = server(|_| {});
    // An identity the fake's CA did not sign: the handshake is refused.
    let stranger = foreign_identity();
    let config = Config::certificate(server.cert_endpoints(), "cert-bot").unwrap();
    let bot = Bot::builder(config)
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .client_identity(stranger)
        .build()
        .unwrap();
    let error = bot.tokens().unwrap_err();
    match &error {
        Error::Auth(AuthError::Transport { failure, .. }) => assert_eq!(failure.kind, TransportKind::Tls, "{failure}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

/// A client identity from a second fake pod: valid, but signed by another CA.
fn foreign_identity() -> ClientIdentity {
    let other = common::server(|_| {});
    let identity = other.client_identity("cert-bot").expect("generated");
    ClientIdentity::from_pem(identity.bundle_pem().as_bytes()).unwrap()
}

#[test]
fn the_four_login_failures_are_distinct() {
    let timeout = {
        let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_secs(3)));
        one_shot_bot(server.rsa_endpoints()).timeout(Duration::from_millis(300)).build().unwrap().tokens().unwrap_err()
    };
    let reset = {
        let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::Close));
        one_shot_bot(server.rsa_endpoints()).build().unwrap().tokens().unwrap_err()
    };
    let malformed = {
        let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::MalformedJson));
        one_shot_bot(server.rsa_endpoints()).build().unwrap().tokens().unwrap_err()
    };
    let tls = {
        let server = https_server(|_| {});
        one_shot_bot(server.rsa_endpoints()).build().unwrap().tokens().unwrap_err()
    };
    let shapes = [&timeout, &reset, &malformed, &tls].map(|e| match e {
        Error::Auth(AuthError::Unavailable { last: FailureCause::Transport(f), .. }) => {
            format!("unavailable/{:?}", f.kind)
        }
        Error::Auth(AuthError::Transport { failure, .. }) => format!("transport/{:?}", failure.kind),
        Error::Auth(AuthError::Protocol { problem, .. }) => format!("protocol/{problem:?}"),
        other => format!("{other:?}"),
    });
    assert_eq!(shapes, ["unavailable/Timeout", "unavailable/Reset", "protocol/NotJson", "transport/Tls"]);
}

#[test]
fn api_call_timeout_and_reset_are_transport_errors() {
    let server = server(|_| {});
    let bot = rsa_builder(&server).timeout(Duration::from_millis(500)).build().unwrap();
    bot.tokens().unwrap();

    server.pod().set_latency(Endpoint::Echo, Duration::from_secs(3));
    let error = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "slow")).unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportKind::Timeout, .. }), "{error:?}");

    server.pod().set_latency(Endpoint::Echo, Duration::ZERO);
    server.pod().inject(Endpoint::Echo, 1, Fault::Close);
    let error = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "dropped")).unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportKind::Reset, .. }), "{error:?}");

    // The bot carries on.
    assert_eq!(bot.send(symphony_auth_core::echo(bot.config().endpoints(), "ok")).unwrap().status(), 200);
}

#[test]
fn api_answers_over_the_size_cap_are_refused() {
    let server = server(|_| {});
    let bot = rsa_builder(&server).max_response_body(64).build().unwrap();
    let error = bot.send(symphony_auth_core::echo(bot.config().endpoints(), &"x".repeat(100))).unwrap_err();
    assert!(matches!(error, Error::Transport { kind: TransportKind::Other, .. }), "{error:?}");
    assert_eq!(bot.send(symphony_auth_core::echo(bot.config().endpoints(), "short")).unwrap().status(), 200);
}

#[test]
fn session_info_errors_are_typed() {
    let server = server(|pod| pod.inject(Endpoint::SessionInfo, 1, Fault::status(500)));
    let bot = rsa_bot(&server);
    assert_eq!(bot.session_info().unwrap_err(), Error::SessionInfo(symphony_auth_core::SessionInfoError::Status(500)));
}

#[test]
fn builder_errors() {
    let config = || rsa_config(Endpoints::single("https://acme.symphony.com").unwrap(), KEY_2048);
    assert!(matches!(Bot::builder(config()).extra_root_certificates_pem(b"not pem"), Err(Error::Tls(_))));
    let garbage = b"-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
    let built = Bot::builder(config()).extra_root_certificates_pem(garbage).unwrap().build();
    assert!(matches!(built, Err(Error::Tls(_))), "{built:?}");

    let socks = Bot::builder(config()).proxy("socks5://user:secret@proxy.example:1080").unwrap_err();
    assert!(matches!(socks, Error::Config(ConfigError::InvalidUrl { which: "proxy", .. })), "{socks:?}");
    assert!(!socks.to_string().contains("secret"), "{socks}");
    assert!(Bot::builder(config()).proxy("http://proxy.example:3128").is_ok());

    let cert = Config::certificate(Endpoints::single("https://acme.symphony.com").unwrap(), "cert-bot").unwrap();
    assert_eq!(Bot::builder(cert).build().unwrap_err(), Error::Config(ConfigError::MissingCredentials));
}
