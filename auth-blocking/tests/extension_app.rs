//! Extension apps against the fake pod: RSA over HTTPS (E1, E3) and certificate over mutual TLS (E2, E4), the
//! pair check, and user JWTs verified against the pod certificate.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{KEY_2048, PUB_2048, https_server};
use symphony_auth_blocking::{Error, ExtensionAppClient};
use symphony_auth_core::driver::{ClientOptions, parse_certificates};
use symphony_auth_core::{
    AppBackendError, AppCredential, AppId, ClientIdentity, ExtensionApp, ExtensionAppError, PairCheckError, RsaSigner,
    UserJwtError,
};
use symphony_auth_testkit::{FakePodServer, UserJwt};

const APP: &str = "my-app";

fn options(server: &FakePodServer) -> ClientOptions {
    let mut options = ClientOptions::new();
    options.extra_roots = parse_certificates(server.ca_pem().as_bytes()).unwrap();
    options.timeout = Duration::from_secs(5);
    options
}

fn rsa_app(server: &FakePodServer) -> ExtensionAppClient {
    let signer = Arc::new(RsaSigner::from_pem(KEY_2048).unwrap());
    let app = ExtensionApp::new(server.rsa_endpoints(), AppId::new(APP).unwrap(), AppCredential::Rsa(signer));
    ExtensionAppClient::new(app, &options(server)).unwrap()
}

fn cert_app(server: &FakePodServer, cn: &str) -> ExtensionAppClient {
    let identity = server.issue_client_identity(cn).unwrap();
    let mut options = options(server);
    options.identity = Some(ClientIdentity::from_pem(identity.bundle_pem().as_bytes()).unwrap());
    let app = ExtensionApp::new(server.cert_endpoints(), AppId::new(APP).unwrap(), AppCredential::Certificate);
    ExtensionAppClient::new(app, &options).unwrap()
}

fn refused(error: Error) -> AppBackendError {
    match error {
        Error::ExtensionApp(error) => error,
        other => panic!("expected an extension-app error, got {other:?}"),
    }
}

#[test]
fn an_rsa_app_authenticates_over_https_and_checks_the_pair_it_was_given() {
    let server = https_server(|pod| pod.add_extension_app(APP, PUB_2048).unwrap());
    let client = rsa_app(&server);
    let tokens = client.authenticate().unwrap();
    assert_eq!(tokens.app_id(), APP);
    assert_eq!(tokens.app_token().expose_secret().len(), 128, "64 random bytes, hex");
    let expected = SystemTime::now() + Duration::from_secs(3600);
    assert!(tokens.expire_at().to_system_time() <= expected + Duration::from_secs(1));
    let (app_token, symphony) = (tokens.app_token().expose_secret(), tokens.symphony_token().expose_secret());
    client.check_tokens(app_token, symphony).unwrap();
    assert_eq!(
        refused(client.check_tokens(app_token, "forged").unwrap_err()),
        AppBackendError::Pair(PairCheckError::Mismatch)
    );
    assert_eq!(
        refused(client.check_tokens("0123456789abcdef", symphony).unwrap_err()),
        AppBackendError::Pair(PairCheckError::UnknownAppToken)
    );
    let second = client.authenticate().unwrap();
    assert_ne!(second.app_token().expose_secret(), app_token, "a fresh app token each time");
}

#[test]
fn an_app_the_pod_does_not_know_is_refused() {
    let server = https_server(|_| {});
    let error = refused(rsa_app(&server).authenticate().unwrap_err());
    assert_eq!(error, AppBackendError::Answer(ExtensionAppError::Rejected { status: 401 }));
}

#[test]
fn user_jwts_are_verified_against_the_pod_certificate_from_e3() {
    let server = https_server(|pod| pod.add_extension_app(APP, PUB_2048).unwrap());
    let client = rsa_app(&server);
    let now = SystemTime::now();
    let mint = |jwt: &UserJwt| server.pod().pod_certificate().unwrap().mint(jwt);
    let claims = client.verify_jwt(&mint(&UserJwt::valid(APP, 4242, "jdoe", now))).unwrap();
    assert_eq!((claims.user_id, claims.user.username.as_deref()), (4242, Some("jdoe")));
    let expired = mint(&UserJwt::valid(APP, 4242, "jdoe", now).expired(Duration::from_secs(10)));
    assert!(matches!(
        refused(client.verify_jwt(&expired).unwrap_err()),
        AppBackendError::UserJwt(UserJwtError::Expired { .. })
    ));
    let other_app = mint(&UserJwt::valid("other-app", 4242, "jdoe", now));
    assert_eq!(
        refused(client.verify_jwt(&other_app).unwrap_err()),
        AppBackendError::UserJwt(UserJwtError::WrongAudience { expected: APP.into() })
    );
    let forged = mint(&UserJwt::valid(APP, 4242, "jdoe", now).signed_by_another_key());
    assert_eq!(refused(client.verify_jwt(&forged).unwrap_err()), AppBackendError::UserJwt(UserJwtError::BadSignature));
    let counters = server.counters();
    assert_eq!(counters.requests(symphony_auth_testkit::Endpoint::PodCertificate), 1, "fetched once");
}

#[test]
fn a_certificate_app_uses_mutual_tls_for_e2_and_e4() {
    let server = https_server(|pod| pod.add_cert_extension_app(APP));
    let client = cert_app(&server, APP);
    let tokens = client.authenticate().unwrap();
    client.check_tokens(tokens.app_token().expose_secret(), tokens.symphony_token().expose_secret()).unwrap();
    let jwt = server.pod().pod_certificate().unwrap().mint(&UserJwt::valid(APP, 7, "u", SystemTime::now()));
    assert_eq!(client.verify_jwt(&jwt).unwrap().user_id, 7);
    let counters = server.counters();
    assert_eq!(counters.requests(symphony_auth_testkit::Endpoint::AppPodCertificate), 1);
    let stranger = cert_app(&server, "stranger");
    let error = refused(stranger.authenticate().unwrap_err());
    assert_eq!(error, AppBackendError::Answer(ExtensionAppError::Rejected { status: 401 }));
}

#[test]
fn a_certificate_app_without_a_certificate_is_a_configuration_error() {
    let server = https_server(|_| {});
    let app = ExtensionApp::new(server.cert_endpoints(), AppId::new(APP).unwrap(), AppCredential::Certificate);
    assert!(matches!(ExtensionAppClient::new(app, &options(&server)), Err(Error::Config(_))));
}
