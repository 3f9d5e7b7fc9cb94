//! The OBO and logout sections of `conformance/login-vectors.json`: the exact requests of O1–O6 and S2 (method,
//! URI, the complete header set, body), and what their answers mean.

mod support;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use symphony_auth_core::{
    AuthError, Authenticator, BaseUrl, Config, Endpoints, HttpRequest, HttpResponse, KeyManagerPolicy, LoginEndpoint,
    OboUser, Output, ProtocolProblem, USER_AGENT_VALUE, UnixTime, logout, parse_logout,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("../../conformance/login-vectors.json")).unwrap()
}

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn endpoints(all: &Value) -> Endpoints {
    let mut endpoints = Endpoints::single(all["obo_base_urls"]["pod"].as_str().unwrap()).unwrap();
    endpoints.session_auth =
        BaseUrl::parse("sessionAuth", all["obo_base_urls"]["session_auth"].as_str().unwrap()).unwrap();
    endpoints
}

fn endpoint_named(name: &str) -> LoginEndpoint {
    match name {
        "RsaAppSession" => LoginEndpoint::RsaAppSession,
        "CertificateAppSession" => LoginEndpoint::CertificateAppSession,
        "RsaOboUserId" => LoginEndpoint::RsaOboUserId,
        "RsaOboUsername" => LoginEndpoint::RsaOboUsername,
        "CertificateOboUserId" => LoginEndpoint::CertificateOboUserId,
        "CertificateOboUsername" => LoginEndpoint::CertificateOboUsername,
        other => panic!("unknown endpoint {other}"),
    }
}

/// The OBO configuration whose steps include `endpoint`, for `user` (or a user of the right kind).
fn config(all: &Value, endpoint: LoginEndpoint, user: Option<&Value>) -> Config {
    let by_name = matches!(endpoint, LoginEndpoint::RsaOboUsername | LoginEndpoint::CertificateOboUsername);
    let user = match user {
        Some(user) if user.get("user_id").is_some() => OboUser::id(user["user_id"].as_u64().unwrap()),
        Some(user) => OboUser::username(user["username"].as_str().unwrap()).unwrap(),
        None if by_name => OboUser::username("someone").unwrap(),
        None => OboUser::id(1),
    };
    let rsa =
        matches!(endpoint, LoginEndpoint::RsaAppSession | LoginEndpoint::RsaOboUserId | LoginEndpoint::RsaOboUsername);
    let config = if rsa {
        Config::obo_rsa(endpoints(all), "my-app", Arc::new(support::ConstantSigner), user)
    } else {
        Config::obo_certificate(endpoints(all), "my-app", user)
    };
    config.unwrap().with_retry(support::exact_retry(1))
}

fn answer(status: u16, body: &str) -> HttpResponse {
    http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
}

/// Polls until requests go out; an app JWT to sign is signed with `signature` (its signing input checked against
/// `signing_input` when given).
fn next_batch(
    machine: &mut Authenticator,
    signing_input: Option<&str>,
    signature: &[u8],
) -> Vec<symphony_auth_core::LoginRequest> {
    for _ in 0..3 {
        match machine.poll_output(NOW) {
            Output::Sign(unsigned) => {
                if let Some(input) = signing_input {
                    assert_eq!(unsigned.signing_input(), input.as_bytes());
                }
                machine.supply_jwt(Ok(unsigned.with_signature(signature)), NOW);
            }
            Output::Send(batch) => return batch,
            other => panic!("expected requests, got {other:?}"),
        }
    }
    panic!("no requests after a signature");
}

/// The request the machine sends to `endpoint`: the app step answered with `app_session` first when `endpoint` is
/// a user step.
fn request_to(all: &Value, vector: &Value, endpoint: LoginEndpoint) -> HttpRequest {
    let mut machine = Authenticator::new(config(all, endpoint, vector.get("user")), 0);
    let (input, signature) = match vector["jwt_from"].as_str() {
        Some(name) => {
            let jwt = all["login_jwt"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap();
            assert_eq!(jwt["now_unix_ms"].as_u64().unwrap(), NOW.as_millis(), "the app JWT is made at NOW");
            let (input, signature) = jwt["jwt"].as_str().unwrap().rsplit_once('.').unwrap();
            (Some(input.to_owned()), URL_SAFE_NO_PAD.decode(signature).unwrap())
        }
        None => (None, vec![0; 4]),
    };
    let mut batch = next_batch(&mut machine, input.as_deref(), &signature);
    if endpoint.is_obo_user() {
        let app = vector["app_session"].as_str().unwrap();
        machine.handle_response(batch[0].id, &answer(200, &format!(r#"{{"token":"{app}"}}"#)), NOW).unwrap();
        batch = next_batch(&mut machine, None, &signature);
    }
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].endpoint, endpoint);
    batch.remove(0).request
}

/// `request` is exactly what `vector` describes: method, URI, the complete header set, body bytes.
fn check(vector: &Value, request: &HttpRequest) {
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

#[test]
fn obo_requests_match_exactly() {
    let all = vectors();
    let requests = all["obo_requests"].as_array().unwrap();
    assert_eq!(requests.len(), 6, "O1 to O6");
    for vector in requests {
        let endpoint = endpoint_named(vector["endpoint"].as_str().unwrap());
        check(vector, &request_to(&all, vector, endpoint));
    }
}

#[test]
fn the_logout_request_matches_exactly() {
    let all = vectors();
    let vector = &all["logout"];
    let config = Config::certificate(endpoints(&all), "bot").unwrap().with_key_manager(KeyManagerPolicy::Never);
    let mut machine = Authenticator::new(config, 0);
    let Output::Send(batch) = machine.poll_output(NOW) else { panic!("a login") };
    let session = vector["session"].as_str().unwrap();
    machine.handle_response(batch[0].id, &answer(200, &format!(r#"{{"token":"{session}"}}"#)), NOW).unwrap();
    let Output::Done(Ok(tokens)) = machine.poll_output(NOW) else { panic!("logged in") };
    check(vector, &logout(machine.config().endpoints(), &tokens));
}

#[test]
fn obo_answers_mean_what_the_vectors_say() {
    let all = vectors();
    for vector in all["obo_responses"].as_array().unwrap() {
        let endpoint = endpoint_named(vector["endpoint"].as_str().unwrap());
        let mut machine = Authenticator::new(config(&all, endpoint, None), 0);
        let mut batch = next_batch(&mut machine, None, &[0; 4]);
        if endpoint.is_obo_user() {
            machine.handle_response(batch[0].id, &answer(200, r#"{"token":"app"}"#), NOW).unwrap();
            batch = next_batch(&mut machine, None, &[0; 4]);
        }
        assert_eq!(batch[0].endpoint, endpoint);
        let response =
            answer(u16::try_from(vector["status"].as_u64().unwrap()).unwrap(), vector["body"].as_str().unwrap());
        machine.handle_response(batch[0].id, &response, NOW).unwrap();
        let outcome = match machine.poll_output(NOW) {
            Output::Done(outcome) => outcome.map(Some),
            // The app step done, the user step goes out: the vector's answer was a token.
            Output::Send(_) => Ok(None),
            other => panic!("{vector}: {other:?}"),
        };
        let expected = vector["outcome"].as_str().unwrap();
        match (expected, &outcome) {
            ("token", Ok(Some(tokens))) if endpoint.is_obo_user() => {
                assert_eq!(tokens.session().expose_secret(), vector["token"].as_str().unwrap(), "{vector}");
            }
            ("token", Ok(None)) if !endpoint.is_obo_user() => {}
            ("not_installed", Err(AuthError::OboNotInstalled { status, .. })) => {
                assert_eq!(u64::from(*status), vector["status"].as_u64().unwrap());
            }
            ("unknown_user", Err(AuthError::OboUnknownUser { .. }))
            | ("rejected", Err(AuthError::Rejected { .. }))
            | ("unavailable", Err(AuthError::Unavailable { .. })) => {}
            ("protocol", Err(AuthError::Protocol { problem, .. })) => {
                assert_eq!(format!("{problem:?}"), vector["problem"].as_str().unwrap(), "{vector}");
                let _: &ProtocolProblem = problem;
            }
            _ => panic!("{vector}: expected {expected}, got {outcome:?}"),
        }
    }
}

#[test]
fn logout_answers_mean_what_the_vectors_say() {
    for vector in vectors()["logout_responses"].as_array().unwrap() {
        let response =
            answer(u16::try_from(vector["status"].as_u64().unwrap()).unwrap(), vector["body"].as_str().unwrap());
        let ok = vector["outcome"] == "ok";
        assert_eq!(parse_logout(&response).is_ok(), ok, "{vector}");
    }
}

#[test]
fn the_app_jwt_vector_has_the_app_id_as_subject() {
    let all = vectors();
    let jwt = all["login_jwt"].as_array().unwrap().iter().find(|v| v["name"] == "rsa-2048-app").unwrap();
    let claims = symphony_auth_core::decode_claims(jwt["jwt"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "my-app");
    assert_eq!(claims["exp"], NOW.as_secs() + 240);
}
