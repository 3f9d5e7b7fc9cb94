//! The language-neutral vectors in `conformance/login-vectors.json`, run against every signer.

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use symphony_auth_core::{
    AuthError, Authenticator, Endpoints, Event, JwtSigner, KeyManagerPolicy, LoginEndpoint, UnixTime,
    certificate_login, grants_simplified_key_delivery, login_jwt, rsa_login,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../conformance/login-vectors.json")).unwrap()
}

// Tests read their fixtures from disk; the crate itself never does.
#[allow(clippy::disallowed_methods)]
fn read_key(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

// One push per signer compiled in: `vec![]` cannot leave an element out by feature.
#[allow(clippy::vec_init_then_push)]
fn signers(key: &[u8]) -> Vec<Arc<dyn JwtSigner>> {
    let mut all: Vec<Arc<dyn JwtSigner>> = Vec::new();
    #[cfg(feature = "rsa-signer")]
    all.push(Arc::new(symphony_auth_core::RsaSigner::from_pem(key).unwrap()));
    #[cfg(feature = "ring-signer")]
    all.push(Arc::new(symphony_auth_core::RingSigner::from_pem(key).unwrap()));
    all
}

fn jwt_for(vector: &Value, signer: &dyn JwtSigner) -> String {
    let now = UnixTime::from_millis(vector["now_unix_ms"].as_u64().unwrap());
    let lifetime = Duration::from_secs(vector["lifetime_secs"].as_u64().unwrap());
    login_jwt(vector["username"].as_str().unwrap(), now, lifetime, signer).unwrap().expose_secret().to_owned()
}

#[test]
fn login_jwts_are_byte_identical_to_openssl_for_every_signer() {
    for vector in vectors()["login_jwt"].as_array().unwrap() {
        for signer in signers(&read_key(vector["key"].as_str().unwrap())) {
            assert_eq!(
                jwt_for(vector, signer.as_ref()),
                vector["jwt"].as_str().unwrap(),
                "{} with {signer:?}",
                vector["name"]
            );
        }
    }
}

#[test]
fn login_requests_match_exactly() {
    let all = vectors();
    let jwt_vector = &all["login_jwt"][0];
    let signer = signers(&read_key(jwt_vector["key"].as_str().unwrap())).remove(0);
    let jwt = login_jwt(
        jwt_vector["username"].as_str().unwrap(),
        UnixTime::from_millis(jwt_vector["now_unix_ms"].as_u64().unwrap()),
        Duration::from_secs(jwt_vector["lifetime_secs"].as_u64().unwrap()),
        signer.as_ref(),
    )
    .unwrap();
    for vector in all["requests"].as_array().unwrap() {
        let endpoints = Endpoints::single(vector["base_url"].as_str().unwrap()).unwrap();
        let endpoint = match vector["endpoint"].as_str().unwrap() {
            "RsaSession" => LoginEndpoint::RsaSession,
            "RsaKeyManager" => LoginEndpoint::RsaKeyManager,
            "CertificateSession" => LoginEndpoint::CertificateSession,
            _ => LoginEndpoint::CertificateKeyManager,
        };
        let request = if endpoint.uses_client_certificate() {
            certificate_login(endpoint, &endpoints)
        } else {
            rsa_login(endpoint, &endpoints, &jwt)
        };
        let name = &vector["name"];
        assert_eq!(request.method().as_str(), vector["method"], "{name}");
        assert_eq!(request.uri().to_string(), vector["uri"].as_str().unwrap(), "{name}");
        for (header, value) in vector["headers"].as_object().unwrap() {
            assert_eq!(request.headers()[header.as_str()], value.as_str().unwrap(), "{name} {header}");
        }
        for header in vector["absent_headers"].as_array().into_iter().flatten() {
            assert!(!request.headers().contains_key(header.as_str().unwrap()), "{name} {header}");
        }
        match vector.get("body_json") {
            Some(body) => assert_eq!(&serde_json::from_slice::<Value>(request.body()).unwrap(), body, "{name}"),
            None => assert_eq!(request.body().as_slice(), vector["body"].as_str().unwrap().as_bytes(), "{name}"),
        }
    }
}

#[test]
fn skd_verdicts_match() {
    for vector in vectors()["skd"].as_array().unwrap() {
        let token = match vector.get("claims") {
            Some(claims) => format!("eyJhbGciOiJSUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string())),
            None => vector["token"].as_str().unwrap().to_owned(),
        };
        assert_eq!(grants_simplified_key_delivery(&token), vector["skd"].as_bool().unwrap(), "{vector}");
    }
}

#[test]
fn login_answers_are_classified_as_the_vectors_say() {
    for vector in vectors()["login_responses"].as_array().unwrap() {
        let config = support::fast_config(2).with_key_manager(KeyManagerPolicy::Never);
        let mut machine = Authenticator::new(config, 0);
        machine.start();
        let request = machine.poll_request(support::START).unwrap();
        let mut builder = http::Response::builder().status(vector["status"].as_u64().unwrap() as u16);
        for (name, value) in vector["headers"].as_object().into_iter().flatten() {
            builder = builder.header(name.as_str(), value.as_str().unwrap());
        }
        let response = builder.body(vector["body"].as_str().unwrap().as_bytes().to_vec()).unwrap();
        machine.handle_response(request.id, &response, support::START).unwrap();
        let event = machine.poll_event();
        match (vector["outcome"].as_str().unwrap(), &event) {
            ("token", Some(Event::Authenticated { .. })) => {
                assert_eq!(machine.tokens().unwrap().session().expose_secret(), vector["token"].as_str().unwrap());
            }
            ("rejected", Some(Event::LoginFailed(AuthError::Rejected { .. }))) => {}
            ("protocol", Some(Event::LoginFailed(AuthError::Protocol { problem, .. }))) => {
                assert_eq!(format!("{problem:?}"), vector["problem"].as_str().unwrap());
            }
            ("retry", Some(Event::RetryScheduled { delay, .. })) => {
                if let Some(secs) = vector["retry_after_secs"].as_u64() {
                    assert_eq!(*delay, Duration::from_secs(secs));
                }
            }
            (expected, got) => panic!("{vector}: expected {expected}, got {got:?}"),
        }
    }
}
