//! The extension-app (E1–E4) and Common JWT (A5) sections of `conformance/login-vectors.json`: exact requests and
//! the reading of their answers, with every signer this build has.

#![cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use symphony_auth_core::{
    AccessTokenError, AppCredential, AppId, AppToken, Authenticator, BaseUrl, Config, Endpoints, ExtensionApp,
    ExtensionAppError, Flight, Generation, JwtSigner, KeyManagerPolicy, USER_AGENT_VALUE, UnixTime, Want,
    access_token_request, parse_access_token,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../conformance/login-vectors.json")).unwrap()
}

// Tests read their fixtures from disk; the crate itself never does.
#[allow(clippy::disallowed_methods)]
fn read_key(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn signers(key: &[u8]) -> Vec<Arc<dyn JwtSigner>> {
    symphony_auth_core::SignerBackend::compiled().map(|backend| backend.load_pem(key).unwrap()).collect()
}

fn response(vector: &Value) -> symphony_auth_core::HttpResponse {
    http::Response::builder()
        .status(u16::try_from(vector["status"].as_u64().unwrap()).unwrap())
        .body(vector["body"].as_str().unwrap().as_bytes().to_vec())
        .unwrap()
}

/// `request` is exactly what `vector` describes: method, URI, the complete header set, body bytes.
fn check(vector: &Value, request: &symphony_auth_core::HttpRequest) {
    let name = &vector["name"];
    assert_eq!(request.method().as_str(), vector["method"], "{name}");
    assert_eq!(request.uri().to_string(), vector["uri"].as_str().unwrap(), "{name}");
    let mut expected: Vec<(String, String)> = vector["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().replace("symphony-auth/<version>", USER_AGENT_VALUE)))
        .collect();
    expected.sort();
    let mut actual: Vec<(String, String)> =
        request.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
    actual.sort();
    assert_eq!(actual, expected, "{name}: the exact header set");
    assert_eq!(String::from_utf8(request.body().clone()).unwrap(), vector["body"].as_str().unwrap(), "{name}");
}

fn endpoints(section: &Value) -> Endpoints {
    let mut endpoints = Endpoints::single(section["endpoints"]["pod"].as_str().unwrap()).unwrap();
    endpoints.session_auth =
        BaseUrl::parse("sessionAuth", section["endpoints"]["session_auth"].as_str().unwrap()).unwrap();
    endpoints
}

#[test]
fn extension_app_requests_match_exactly() {
    let all = vectors();
    let section = &all["extension_app"];
    let jwt = &section["app_jwt"];
    let now = UnixTime::from_millis(jwt["now_unix_ms"].as_u64().unwrap());
    let app_id = AppId::new(section["app_id"].as_str().unwrap()).unwrap();
    let app_token = AppToken::new(section["app_token"].as_str().unwrap()).unwrap();
    for signer in signers(&read_key(jwt["key"].as_str().unwrap())) {
        let rsa = ExtensionApp::new(endpoints(section), app_id.clone(), AppCredential::Rsa(signer));
        let certificate = ExtensionApp::new(endpoints(section), app_id.clone(), AppCredential::Certificate);
        for vector in section["requests"].as_array().unwrap() {
            let app = if vector["credential"] == "rsa" { &rsa } else { &certificate };
            let request = if vector["method"] == "POST" {
                app.authenticate_request(&app_token, now).unwrap()
            } else {
                app.pod_certificate_request()
            };
            check(vector, &request);
        }
    }
}

#[test]
fn extension_app_answers_are_read_as_the_vectors_say() {
    let all = vectors();
    let section = &all["extension_app"];
    let app = ExtensionApp::new(
        endpoints(section),
        AppId::new(section["app_id"].as_str().unwrap()).unwrap(),
        AppCredential::Certificate,
    );
    let app_token = AppToken::new(section["app_token"].as_str().unwrap()).unwrap();
    for vector in section["responses"].as_array().unwrap() {
        let outcome = app.handle_authenticate(&app_token, &response(vector));
        let status = u16::try_from(vector["status"].as_u64().unwrap()).unwrap();
        match vector["outcome"].as_str().unwrap() {
            "tokens" => {
                let tokens = outcome.unwrap();
                assert_eq!(tokens.symphony_token().expose_secret(), vector["symphony_token"].as_str().unwrap());
                assert_eq!(tokens.expire_at().as_millis(), vector["expire_at_ms"].as_u64().unwrap());
            }
            "app_id_mismatch" => assert!(matches!(outcome, Err(ExtensionAppError::AppIdMismatch { .. })), "{vector}"),
            "app_token_mismatch" => assert_eq!(outcome.unwrap_err(), ExtensionAppError::AppTokenMismatch),
            "rejected" => assert_eq!(outcome.unwrap_err(), ExtensionAppError::Rejected { status }),
            "status" => assert_eq!(outcome.unwrap_err(), ExtensionAppError::Status { status }),
            "protocol" => {
                let Err(ExtensionAppError::Protocol { problem, field }) = outcome else { panic!("{vector}") };
                assert_eq!(format!("{problem:?}"), vector["problem"].as_str().unwrap(), "{vector}");
                assert_eq!(field, vector["field"].as_str(), "{vector}");
            }
            other => panic!("unknown outcome {other}"),
        }
    }
}

#[test]
fn access_token_requests_match_exactly() {
    let all = vectors();
    let section = &all["common_jwt"];
    let endpoints = Endpoints::single(section["base_url"].as_str().unwrap()).unwrap();
    // Tokens from a login answered with the vectors' session token.
    let key = read_key("fixtures/keys/bot-2048.pkcs8.pem");
    let signer = signers(&key).remove(0);
    let config = Config::rsa(endpoints.clone(), "bot", signer).unwrap().with_key_manager(KeyManagerPolicy::Never);
    let mut flight = Flight::new(Authenticator::new(config, 0));
    let now = UnixTime::from_secs(1_700_000_000);
    let mut caller = flight.join(Want::Current).unwrap();
    let tokens = loop {
        match flight.poll(&mut caller, now) {
            symphony_auth_core::Step::Sign(jwt) => flight.supply_jwt(jwt.sign(), now),
            symphony_auth_core::Step::Send(batch) => {
                let body = format!(r#"{{"token":"{}"}}"#, section["session_token"].as_str().unwrap());
                let answer = http::Response::builder().status(200).body(body.into_bytes()).unwrap();
                flight.handle_response(batch[0].id, &answer, now).unwrap();
            }
            symphony_auth_core::Step::Done { outcome, .. } => break outcome.unwrap(),
            other => panic!("{other:?}"),
        }
    };
    for vector in section["requests"].as_array().unwrap() {
        check(vector, &access_token_request(&endpoints, vector["scope"].as_str().unwrap(), &tokens));
    }
}

#[test]
fn access_token_answers_are_read_as_the_vectors_say() {
    let all = vectors();
    let section = &all["common_jwt"];
    let now = UnixTime::from_millis(section["now_unix_ms"].as_u64().unwrap());
    let leeway = Duration::from_millis(section["leeway_ms"].as_u64().unwrap());
    for vector in section["responses"].as_array().unwrap() {
        let outcome = parse_access_token(&response(vector), Generation::from_u64(1), leeway, now);
        match vector["outcome"].as_str().unwrap() {
            "token" => {
                let token = outcome.unwrap();
                assert_eq!(token.expose_secret(), vector["token"].as_str().unwrap());
                assert_eq!(token.expires_at().as_millis(), vector["expires_at_ms"].as_u64().unwrap());
                assert_eq!(token.refresh_at().as_millis(), vector["refresh_at_ms"].as_u64().unwrap());
            }
            "no_expiry" => assert_eq!(outcome.unwrap_err(), AccessTokenError::NoExpiry),
            "status" => assert!(matches!(outcome, Err(AccessTokenError::Status { .. })), "{vector}"),
            "protocol" => {
                let Err(AccessTokenError::Protocol { problem }) = outcome else { panic!("{vector}") };
                let expected = vector["problem"].as_str().unwrap();
                assert_eq!(format!("{problem:?}"), expected);
            }
            other => panic!("unknown outcome {other}"),
        }
    }
}
