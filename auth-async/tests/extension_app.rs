//! Extension apps against the fake pod, as in the blocking driver: RSA over HTTPS (E1, E3), certificate over
//! mutual TLS (E2, E4), the pair check, and user JWTs verified against the pod certificate.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{KEY, PUBLIC_KEY, https_server};
use symphony_auth_async::{Error, ExtensionAppClient};
use symphony_auth_core::driver::{ClientOptions, parse_certificates};
use symphony_auth_core::{
    AppBackendError, AppCredential, AppId, ClientIdentity, ExtensionApp, ExtensionAppError, PairCheckError, RsaSigner,
    UserJwtError,
};
use symphony_auth_testkit::{Endpoint, FakePodServer, UserJwt};

const APP: &str = "my-app";

fn options(server: &FakePodServer) -> ClientOptions {
    let mut options = ClientOptions::new();
    options.extra_roots = parse_certificates(server.ca_pem().as_bytes()).unwrap();
    options.timeout = Duration::from_secs(5);
    options
}

fn refused(error: Error) -> AppBackendError {
    match error {
        Error::ExtensionApp(error) => error,
        other => panic!("expected an extension-app error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_rsa_app_authenticates_checks_pairs_and_verifies_user_jwts() {
    let server = https_server(|pod| pod.add_extension_app(APP, PUBLIC_KEY).unwrap());
    let signer = Arc::new(RsaSigner::from_pem(KEY).unwrap());
    let app = ExtensionApp::new(server.rsa_endpoints(), AppId::new(APP).unwrap(), AppCredential::Rsa(signer));
    let client = ExtensionAppClient::new(app, &options(&server)).unwrap();
    let tokens = client.authenticate().await.unwrap();
    assert_eq!(tokens.app_id(), APP);
    let (app_token, symphony) = (tokens.app_token().expose_secret(), tokens.symphony_token().expose_secret());
    client.check_tokens(app_token, symphony).unwrap();
    assert_eq!(
        refused(client.check_tokens(app_token, "forged").unwrap_err()),
        AppBackendError::Pair(PairCheckError::Mismatch)
    );
    let now = SystemTime::now();
    let mint = |jwt: &UserJwt| server.pod().pod_certificate().unwrap().mint(jwt);
    let claims = client.verify_jwt(&mint(&UserJwt::valid(APP, 4242, "jdoe", now))).await.unwrap();
    assert_eq!(claims.user_id, 4242);
    let expired = mint(&UserJwt::valid(APP, 4242, "jdoe", now).expired(Duration::from_secs(10)));
    assert!(matches!(
        refused(client.verify_jwt(&expired).await.unwrap_err()),
        AppBackendError::UserJwt(UserJwtError::Expired { .. })
    ));
    let other = mint(&UserJwt::valid("other-app", 4242, "jdoe", now));
    assert!(matches!(
        refused(client.verify_jwt(&other).await.unwrap_err()),
        AppBackendError::UserJwt(UserJwtError::WrongAudience { .. })
    ));
    assert_eq!(server.counters().requests(Endpoint::PodCertificate), 1);
}

#[tokio::test]
async fn a_certificate_app_uses_mutual_tls_and_a_stranger_is_refused() {
    let server = https_server(|pod| pod.add_cert_extension_app(APP));
    let client = |cn: &str| {
        let identity = server.issue_client_identity(cn).unwrap();
        let mut options = options(&server);
        options.identity = Some(ClientIdentity::from_pem(identity.bundle_pem().as_bytes()).unwrap());
        let app = ExtensionApp::new(server.cert_endpoints(), AppId::new(APP).unwrap(), AppCredential::Certificate);
        ExtensionAppClient::new(app, &options).unwrap()
    };
    let app = client(APP);
    let tokens = app.authenticate().await.unwrap();
    app.check_tokens(tokens.app_token().expose_secret(), tokens.symphony_token().expose_secret()).unwrap();
    let jwt = server.pod().pod_certificate().unwrap().mint(&UserJwt::valid(APP, 7, "u", SystemTime::now()));
    assert_eq!(app.verify_jwt(&jwt).await.unwrap().user_id, 7);
    assert_eq!(server.counters().requests(Endpoint::AppPodCertificate), 1);
    assert_eq!(
        refused(client("stranger").authenticate().await.unwrap_err()),
        AppBackendError::Answer(ExtensionAppError::Rejected { status: 401 })
    );
}
