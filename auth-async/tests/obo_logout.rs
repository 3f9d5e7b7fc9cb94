//! OBO, logout and simplified key delivery against the fake pod (async driver): RSA OBO over HTTPS, certificate OBO over mutual
//! TLS, logouts that really end sessions, and an SKD login that a slow key manager does not delay.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::{BOT, KEY, PUBLIC_KEY as PUB_2048, https_server, quick_retry, rsa_config, server};
use symphony_auth_async::{Bot, Error};
use symphony_auth_core::{self, AuthError, ClientIdentity, Config, LoginEndpoint, OboUser, RsaSigner, State};
use symphony_auth_testkit::{Endpoint, FakePodServer};

const APP: &str = "my-app";
const CERT_APP: &str = "cert-app";
const USER_ID: u64 = 12_345;

fn with_apps(pod: &mut symphony_auth_testkit::FakePod) {
    pod.add_rsa_app(APP, PUB_2048).unwrap();
    pod.add_cert_app(CERT_APP).unwrap();
    pod.add_user(USER_ID, "j.doe", true).unwrap();
    pod.add_user(USER_ID + 1, "r.roe", false).unwrap();
}

fn identity(server: &FakePodServer, cn: &str) -> ClientIdentity {
    let issued = match server.client_identity(cn) {
        Some(identity) => identity.clone(),
        None => server.issue_client_identity(cn).unwrap(),
    };
    ClientIdentity::from_pem(issued.bundle_pem().as_bytes()).unwrap()
}

fn rsa_obo(server: &FakePodServer, user: OboUser) -> Bot {
    let signer = Arc::new(RsaSigner::from_pem(KEY).unwrap());
    let config = Config::obo_rsa(server.rsa_endpoints(), APP, signer, user)
        .unwrap()
        .with_retry(quick_retry(Duration::from_millis(100)));
    Bot::builder(config)
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .client_identity(identity(server, APP))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn cert_obo(server: &FakePodServer, user: OboUser) -> Bot {
    let config = Config::obo_certificate(server.cert_endpoints(), CERT_APP, user)
        .unwrap()
        .with_retry(quick_retry(Duration::from_millis(100)));
    Bot::builder(config)
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .client_identity(identity(server, CERT_APP))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The pod's answer to a session-info call with `token`, sent as it is.
async fn session_info_status(bot: &Bot, token: &str) -> u16 {
    let mut request = symphony_auth_core::session_info(bot.config().endpoints());
    request.headers_mut().insert("sessionToken", token.parse().unwrap());
    bot.send_unauthenticated(request).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn rsa_obo_over_https_then_both_steps_again_after_the_session_expires() {
    let server = https_server(with_apps);
    let bot = rsa_obo(&server, OboUser::id(USER_ID));
    let info = bot.session_info().await.unwrap();
    assert_eq!((info.id, info.username.as_str()), (USER_ID, "j.doe"));
    let tokens = bot.tokens().await.unwrap();
    assert!(tokens.key_manager().is_none());

    server.pod().expire_sessions();
    assert_eq!(bot.session_info().await.unwrap().id, USER_ID);
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::AppLogin), 2, "the app session is redone");
    assert_eq!(counters.requests(Endpoint::OboUserLogin), 2);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 0);
}

#[tokio::test]
async fn certificate_obo_over_mutual_tls_by_username_and_its_refusals() {
    let server = server(with_apps);
    let bot = cert_obo(&server, OboUser::username("j.doe").unwrap());
    assert_eq!(bot.session_info().await.unwrap().id, USER_ID);
    assert_eq!(server.counters().requests(Endpoint::CertOboUsernameLogin), 1);

    let refused = cert_obo(&server, OboUser::username("r.roe").unwrap());
    match refused.tokens().await {
        Err(Error::Auth(AuthError::OboNotInstalled { status: 403, endpoint, .. })) => {
            assert_eq!(endpoint, LoginEndpoint::CertificateOboUsername);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let unknown = cert_obo(&server, OboUser::id(999));
    assert!(matches!(unknown.tokens().await, Err(Error::Auth(AuthError::OboUnknownUser { .. }))));
}

#[tokio::test]
async fn logout_ends_a_bot_session_and_the_next_call_logs_in_again() {
    let server = https_server(|_| {});
    let bot = Bot::builder(rsa_config(server.rsa_endpoints()))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .client_identity(identity(&server, BOT))
        .build()
        .unwrap();
    bot.logout().await.unwrap();
    assert_eq!(server.counters().requests(Endpoint::Logout), 0, "no tokens, nothing to end");
    let old = bot.tokens().await.unwrap();
    bot.logout().await.unwrap();
    assert_eq!(session_info_status(&bot, old.session().expose_secret()).await, 401, "the session really ended");
    assert_eq!(bot.state(), State::NeedsSession { logging_in: false });
    assert_eq!(bot.session_info().await.unwrap().username, BOT);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
}

#[tokio::test]
async fn logout_ends_an_obo_session() {
    let server = server(with_apps);
    let bot = cert_obo(&server, OboUser::id(USER_ID));
    let old = bot.tokens().await.unwrap();
    bot.logout().await.unwrap();
    assert_eq!(session_info_status(&bot, old.session().expose_secret()).await, 401);
    assert_eq!(server.pod().live_obo_sessions(SystemTime::now()), 0);
}

#[tokio::test]
async fn dropping_a_bot_does_not_log_out() {
    let server = server(with_apps);
    let bot = cert_obo(&server, OboUser::id(USER_ID));
    let token = bot.tokens().await.unwrap().session().expose_secret().to_owned();
    let other = cert_obo(&server, OboUser::id(USER_ID));
    drop(bot);
    assert_eq!(session_info_status(&other, &token).await, 200);
    assert_eq!(server.counters().requests(Endpoint::Logout), 0);
}

#[tokio::test]
async fn an_skd_login_does_not_wait_for_a_slow_key_manager() {
    let server = server(|pod| {
        pod.set_skd(true);
        pod.set_latency(Endpoint::KeyManagerLogin, Duration::from_secs(6));
    });
    let bot = Bot::builder(rsa_config(server.rsa_endpoints())).timeout(Duration::from_secs(30)).build().unwrap();
    let started = Instant::now();
    let tokens = bot.tokens().await.unwrap();
    let took = started.elapsed();
    assert!(tokens.simplified_key_delivery() && tokens.key_manager().is_none());
    assert!(took < Duration::from_secs(3), "the login waited for the key manager: {took:?}");
    // The key manager's request left beside the session's, but it may reach the fake after the login ended.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.counters().requests(Endpoint::KeyManagerLogin) == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::AgentInfo), 1, "the dedicated agent's version was read");
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1, "asked in parallel, not waited for");
}
