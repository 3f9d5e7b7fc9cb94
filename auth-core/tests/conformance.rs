//! The language-neutral vectors in `conformance/login-vectors.json` (written by
//! `conformance/generate-login-vectors.py` with OpenSSL), run against every signer this build has.

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use symphony_auth_core::{
    AuthError, Authenticator, Endpoints, Event, JwtSigner, KeyManagerPolicy, LoginEndpoint, Output, RetryPolicy,
    USER_AGENT_VALUE, UnixTime, agent_info, agent_supports_simplified_key_delivery, certificate_login,
    grants_simplified_key_delivery, login_jwt, rsa_login,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../conformance/login-vectors.json")).unwrap()
}

// Tests read their fixtures from disk; the crate itself never does.
#[allow(clippy::disallowed_methods)]
fn read_key(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every signer of this build (`rsa`, `ring`, `aws-lc`): CI also runs the vectors with each non-default signer alone.
fn signers(key: &[u8]) -> Vec<Arc<dyn JwtSigner>> {
    symphony_auth_core::SignerBackend::compiled().map(|backend| backend.load_pem(key).unwrap()).collect()
}

fn jwt_for(vector: &Value, signer: &dyn JwtSigner) -> String {
    let now = UnixTime::from_millis(vector["now_unix_ms"].as_u64().unwrap());
    let lifetime = Duration::from_secs(vector["lifetime_secs"].as_u64().unwrap());
    login_jwt(vector["username"].as_str().unwrap(), now, lifetime, signer).unwrap().expose_secret().to_owned()
}

#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
#[test]
fn login_jwts_are_byte_identical_to_openssl_for_every_signer() {
    let vectors = vectors();
    let all = vectors["login_jwt"].as_array().unwrap();
    assert!(all.iter().any(|v| v["username"].as_str().unwrap().contains('"')), "a username needing escapes");
    for vector in all {
        let signers = signers(&read_key(vector["key"].as_str().unwrap()));
        assert!(!signers.is_empty());
        for signer in signers {
            let jwt = jwt_for(vector, signer.as_ref());
            assert_eq!(jwt, vector["jwt"].as_str().unwrap(), "{} with {signer:?}", vector["name"]);
            assert!(jwt.starts_with(&format!("{}.", vector["signing_input"].as_str().unwrap())));
        }
    }
}

/// The login JWT of `name`, as the vectors give it (its bytes are checked above).
fn vector_jwt(all: &Value, name: &str) -> symphony_auth_core::SignedJwt {
    let vector = all["login_jwt"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap();
    let jwt = vector["jwt"].as_str().unwrap();
    let (_, signature) = jwt.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    // An unsigned JWT of the same claims, completed with the vector's signature: no key needed.
    let config = symphony_auth_core::Config::rsa(
        Endpoints::single("https://x").unwrap(),
        vector["username"].as_str().unwrap(),
        Arc::new(support::ConstantSigner),
    )
    .unwrap()
    .with_jwt_lifetime(Duration::from_secs(vector["lifetime_secs"].as_u64().unwrap()))
    .unwrap();
    let now = UnixTime::from_millis(vector["now_unix_ms"].as_u64().unwrap());
    match Authenticator::new(config, 0).poll_output(now) {
        Output::Sign(unsigned) => {
            assert_eq!(unsigned.signing_input(), vector["signing_input"].as_str().unwrap().as_bytes());
            unsigned.with_signature(&signature)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_requests_match_exactly_with_no_extra_header() {
    let all = vectors();
    for vector in all["requests"].as_array().unwrap() {
        // One vector is plain HTTP to a remote host: the wire format is the same, and the test opts in.
        let endpoints = Endpoints::single(vector["base_url"].as_str().unwrap()).unwrap().allow_insecure_http();
        let endpoint = match vector["endpoint"].as_str().unwrap() {
            "RsaSession" => LoginEndpoint::RsaSession,
            "RsaKeyManager" => LoginEndpoint::RsaKeyManager,
            "CertificateSession" => LoginEndpoint::CertificateSession,
            "CertificateKeyManager" => LoginEndpoint::CertificateKeyManager,
            "AgentVersion" => LoginEndpoint::AgentVersion,
            other => panic!("unknown endpoint {other}"),
        };
        let request = match (endpoint, vector["jwt_from"].as_str()) {
            (LoginEndpoint::AgentVersion, _) => agent_info(&endpoints),
            (_, Some(jwt)) => {
                // The public builder, with the JWT a real signer makes...
                #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
                {
                    let jwt_vector = all["login_jwt"].as_array().unwrap().iter().find(|v| v["name"] == jwt).unwrap();
                    for signer in signers(&read_key(jwt_vector["key"].as_str().unwrap())) {
                        let now = UnixTime::from_millis(jwt_vector["now_unix_ms"].as_u64().unwrap());
                        let lifetime = Duration::from_secs(jwt_vector["lifetime_secs"].as_u64().unwrap());
                        let username = jwt_vector["username"].as_str().unwrap();
                        let signed = login_jwt(username, now, lifetime, signer.as_ref()).unwrap();
                        check(vector, &rsa_login(endpoint, &endpoints, &signed));
                    }
                }
                // ...and the machine's request, with the vector's JWT supplied through `Output::Sign`.
                rsa_request(&all, &endpoints, endpoint, jwt)
            }
            (_, None) => certificate_login(endpoint, &endpoints),
        };
        check(vector, &request);
    }
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

/// The request the machine sends to `endpoint` when the JWT of vector `name` is supplied for its `Output::Sign`.
fn rsa_request(
    all: &Value,
    endpoints: &Endpoints,
    endpoint: LoginEndpoint,
    name: &str,
) -> symphony_auth_core::HttpRequest {
    let vector = all["login_jwt"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap();
    let config = symphony_auth_core::Config::rsa(endpoints.clone(), "unused", Arc::new(support::ConstantSigner))
        .unwrap()
        .with_jwt_lifetime(Duration::from_secs(vector["lifetime_secs"].as_u64().unwrap()))
        .unwrap()
        .with_key_manager(KeyManagerPolicy::Always);
    let mut machine = Authenticator::new(config, 0);
    let now = UnixTime::from_millis(vector["now_unix_ms"].as_u64().unwrap());
    assert!(matches!(machine.poll_output(now), Output::Sign(_)));
    machine.supply_jwt(Ok(vector_jwt(all, name)), now);
    match machine.poll_output(now) {
        Output::Send(batch) => batch.into_iter().find(|login| login.endpoint == endpoint).unwrap().request,
        other => panic!("{other:?}"),
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
fn agent_versions_are_read_as_the_vectors_say() {
    for vector in vectors()["agent_versions"].as_array().unwrap() {
        let body = match vector.get("version") {
            Some(version) => serde_json::json!({ "version": version, "onPrem": false }).to_string(),
            None => vector["body"].as_str().unwrap().to_owned(),
        };
        let status = u16::try_from(vector["status"].as_u64().unwrap()).unwrap();
        let response = support::response(status, body, None);
        assert_eq!(
            agent_supports_simplified_key_delivery(&response),
            vector["supports_skd"].as_bool().unwrap(),
            "{vector}"
        );
    }
}

#[test]
fn login_answers_are_classified_as_the_vectors_say() {
    let all = vectors();
    let policy = &all["login_responses_policy"];
    let ms = |key: &str| Duration::from_millis(policy[key].as_u64().unwrap());
    let retry = RetryPolicy::new(
        u32::try_from(policy["max_attempts"].as_u64().unwrap()).unwrap(),
        ms("initial_interval_ms"),
        policy["multiplier"].as_f64().unwrap(),
        ms("max_interval_ms"),
    )
    .unwrap()
    .with_jitter(policy["jitter"].as_f64().unwrap())
    .unwrap();
    let now = UnixTime::from_millis(policy["now_unix_ms"].as_u64().unwrap());
    for vector in all["login_responses"].as_array().unwrap() {
        let config = support::fast_config(2).with_retry(retry.clone()).with_key_manager(KeyManagerPolicy::Never);
        let mut machine = Authenticator::new(config, 0);
        if let Output::Sign(jwt) = machine.poll_output(now) {
            machine.supply_jwt(jwt.sign(), now);
        }
        let id = match machine.poll_output(now) {
            Output::Send(batch) => batch[0].id,
            other => panic!("{other:?}"),
        };
        let mut builder = http::Response::builder().status(u16::try_from(vector["status"].as_u64().unwrap()).unwrap());
        for (name, value) in vector["headers"].as_object().into_iter().flatten() {
            builder = builder.header(name.as_str(), value.as_str().unwrap());
        }
        let response = builder.body(vector["body"].as_str().unwrap().as_bytes().to_vec()).unwrap();
        while machine.poll_event().is_some() {}
        machine.handle_response(id, &response, now).unwrap();
        let output = machine.poll_output(now);
        let event = machine.poll_event();
        match (vector["outcome"].as_str().unwrap(), &output, &event) {
            ("token", Output::Done(Ok(tokens)), _) => {
                assert_eq!(tokens.session().expose_secret(), vector["token"].as_str().unwrap());
            }
            ("rejected", Output::Done(Err(AuthError::Rejected { status, .. })), _) => {
                assert_eq!(u64::from(*status), vector["status"].as_u64().unwrap());
            }
            ("protocol", Output::Done(Err(AuthError::Protocol { problem, .. })), _) => {
                assert_eq!(format!("{problem:?}"), vector["problem"].as_str().unwrap());
            }
            ("retry", Output::WaitUntil(at), Some(Event::RetryScheduled { delay, .. })) => {
                let expected = Duration::from_millis(vector["delay_ms"].as_u64().unwrap());
                assert_eq!(*delay, expected, "{vector}");
                assert_eq!(*at, now.saturating_add(expected), "{vector}");
            }
            // A zero wait is due at once: the retry goes out.
            ("retry", Output::Send(_) | Output::Sign(_), Some(Event::RetryScheduled { delay, .. })) => {
                assert_eq!(vector["delay_ms"].as_u64(), Some(0), "{vector}");
                assert_eq!(*delay, Duration::ZERO);
            }
            (expected, output, event) => panic!("{vector}: expected {expected}, got {output:?} and {event:?}"),
        }
    }
}
