//! A5 requests and answers, and flight transcripts: the bearer refreshed before it expires, a refused bearer
//! refreshed through A5, and the full login when A5 refuses the session.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, CONTENT_TYPE};

use super::*;
use crate::api::ApiStep;
use crate::config::{Config, KeyManagerPolicy};
use crate::error::SignError;
use crate::flight::{Flight, Step, Want};
use crate::machine::Authenticator;
use crate::signer::JwtSigner;
use crate::tokens::Generation;

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

#[derive(Debug)]
struct Constant;
impl JwtSigner for Constant {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![1; 4])
    }
}

fn response(status: u16, body: &str) -> HttpResponse {
    http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
}

/// An access token whose claims are `{"exp": exp, "sub": "13056700580915"}` (the signature is not checked).
fn access_jwt(name: &str, exp: u64) -> String {
    let claims = URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{exp},"sub":"13056700580915"}}"#));
    format!("eyJhbGciOiJSUzI1NiJ9.{claims}.{name}")
}

fn a5_answer(token: &str, expires_in: u64) -> HttpResponse {
    response(200, &format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"{token}"}}"#))
}

fn flight(settings: CommonJwtSettings) -> Flight {
    let config = Config::rsa(Endpoints::single("https://pod.example").unwrap(), "bot", Arc::new(Constant))
        .unwrap()
        .with_key_manager(KeyManagerPolicy::Never)
        .with_common_jwt(settings);
    Flight::new(Authenticator::new(config, 1))
}

/// Runs one login through the flight, the pod answering with session token `session`.
fn login(flight: &mut Flight, want: Want, session: &str, now: UnixTime) -> Arc<Tokens> {
    let mut caller = flight.join(want).unwrap();
    for _ in 0..4 {
        match flight.poll(&mut caller, now) {
            Step::Sign(jwt) => flight.supply_jwt(jwt.sign(), now),
            Step::Send(batch) => {
                assert_eq!(batch.len(), 1);
                let body = format!(r#"{{"token":"{session}"}}"#);
                flight.handle_response(batch[0].id, &response(200, &body), now).unwrap();
            }
            Step::Done { outcome, .. } => return outcome.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("the login did not end in four steps");
}

fn sessioninfo() -> HttpRequest {
    http::Request::get("https://pod.example/pod/v2/sessioninfo").body(Vec::new()).unwrap()
}

fn fetch(step: Bearer) -> HttpRequest {
    match step {
        Bearer::Fetch(request) => request,
        other => panic!("expected an A5 call, got {other:?}"),
    }
}

fn attached(step: BearerStep) -> AccessToken {
    match step {
        BearerStep::Attach(token) => token,
        other => panic!("expected a token, got {other:?}"),
    }
}

#[test]
fn a5_posts_the_session_token_and_the_scope_without_a_body() {
    let mut flight = flight(CommonJwtSettings::per_call().with_scope("profile-manager other"));
    let tokens = login(&mut flight, Want::Current, "s3ss10n", NOW);
    let request = access_token_request(flight.machine().config().endpoints(), "profile-manager other", &tokens);
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "https://pod.example/login/idm/tokens?scope=profile-manager%20other");
    assert_eq!(request.headers()["sessionToken"], "s3ss10n");
    assert!(request.headers()["sessionToken"].is_sensitive());
    assert_eq!(request.headers()[http::header::ACCEPT], "application/json");
    assert!(request.headers().get(CONTENT_TYPE).is_none() && request.body().is_empty());
    let empty = access_token_request(flight.machine().config().endpoints(), "", &tokens);
    assert_eq!(empty.uri(), "https://pod.example/login/idm/tokens?scope=");
    let keys = access_token_keys_request(flight.machine().config().endpoints());
    assert_eq!((keys.method(), keys.uri().to_string()), (&Method::GET, "https://pod.example/login/idm/keys".into()));
    assert!(keys.headers().get("sessionToken").is_none());
}

#[test]
fn the_expiry_is_the_earlier_of_exp_and_expires_in_minus_the_leeway() {
    let generation = Generation::from_u64(1);
    let leeway = Duration::from_secs(30);
    let parse = |r: &HttpResponse| parse_access_token(r, generation, leeway, NOW);
    let by_claim = parse(&a5_answer(&access_jwt("a", 1_700_000_100), 3600)).unwrap();
    assert_eq!(by_claim.expires_at(), UnixTime::from_secs(1_700_000_100));
    assert_eq!(by_claim.refresh_at(), UnixTime::from_secs(1_700_000_070));
    let by_lifetime = parse(&a5_answer(&access_jwt("a", 1_800_000_000), 60)).unwrap();
    assert_eq!(by_lifetime.expires_at(), UnixTime::from_secs(1_700_000_060));
    let opaque = parse(&a5_answer("opaque-token", 120)).unwrap();
    assert_eq!(opaque.expires_at(), UnixTime::from_secs(1_700_000_120));
    let digits = response(200, r#"{"expires_in":"120","access_token":"opaque"}"#);
    assert_eq!(parse(&digits).unwrap().expires_at(), UnixTime::from_secs(1_700_000_120));
    let no_expiry = response(200, r#"{"token_type":"Bearer","access_token":"opaque"}"#);
    assert_eq!(parse(&no_expiry).unwrap_err(), AccessTokenError::NoExpiry);
}

#[test]
fn the_bearer_prefix_is_normalised_and_the_token_never_printed() {
    let generation = Generation::from_u64(1);
    let token = access_jwt("sig", 1_700_000_100);
    for sent in [token.clone(), format!("Bearer {token}"), format!("bearer  {token}")] {
        let parsed = parse_access_token(&a5_answer(&sent, 60), generation, Duration::ZERO, NOW).unwrap();
        assert_eq!(parsed.expose_secret(), token);
        assert_eq!(parsed.header_value(), format!("Bearer {token}").as_str());
        assert!(parsed.header_value().is_sensitive());
        assert!(!format!("{parsed:?}").contains(&token));
    }
}

#[test]
fn unusable_a5_answers_are_typed_errors() {
    let parse = |r: &HttpResponse| parse_access_token(r, Generation::from_u64(1), Duration::ZERO, NOW).unwrap_err();
    assert_eq!(parse(&response(403, "")), AccessTokenError::Status { status: 403 });
    assert_eq!(parse(&response(200, "<html>")), AccessTokenError::Protocol { problem: ProtocolProblem::NotJson });
    assert_eq!(
        parse(&response(200, r#"{"expires_in":5}"#)),
        AccessTokenError::Protocol { problem: ProtocolProblem::MissingToken }
    );
    assert_eq!(
        parse(&response(200, r#"{"expires_in":5,"access_token":"Bearer "}"#)),
        AccessTokenError::Protocol { problem: ProtocolProblem::EmptyToken }
    );
}

/// Transcript: with Common JWT on pod calls, the first call fetches a bearer and carries it instead of
/// `sessionToken`; calls within its lifetime reuse it; once inside the leeway the next call refreshes it through
/// A5 before it is sent, with no login.
#[test]
fn transcript_the_bearer_is_refreshed_before_it_expires() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls().with_leeway(Duration::from_secs(30)));
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);

    let mut call = flight.api_call(sessioninfo()).unwrap();
    assert!(call.wants_bearer());
    let a5 = fetch(flight.bearer(&call, &tokens, NOW));
    assert_eq!(a5.uri(), "https://pod.example/login/idm/tokens?scope=");
    assert_eq!(a5.headers()["sessionToken"], "session-1");
    let first = access_jwt("first", 1_700_000_100);
    let bearer = attached(flight.handle_bearer(&mut call, &tokens, Ok(a5_answer(&first, 100)), NOW));
    let sent = call.request_with(&tokens, Some(&bearer));
    assert_eq!(sent.headers()[AUTHORIZATION], format!("Bearer {first}").as_str());
    assert!(sent.headers().get("sessionToken").is_none(), "the bearer replaces the session token on pod calls");
    assert!(matches!(flight.handle_api(&mut call, Ok(response(200, "{}")), NOW), ApiStep::Return(_)));

    // 69 s later: 31 s before expiry, outside the 30 s leeway: the cached bearer serves.
    let later = UnixTime::from_secs(1_700_000_069);
    let call = flight.api_call(sessioninfo()).unwrap();
    match flight.bearer(&call, &tokens, later) {
        Bearer::Attach(token) => assert_eq!(token.expose_secret(), first),
        other => panic!("expected the cached bearer, got {other:?}"),
    }

    // 70 s: inside the leeway. A5 again, with the same session: no login.
    let due = UnixTime::from_secs(1_700_000_070);
    let mut call = flight.api_call(sessioninfo()).unwrap();
    let a5 = fetch(flight.bearer(&call, &tokens, due));
    assert_eq!(a5.headers()["sessionToken"], "session-1");
    let second = access_jwt("second", 1_700_000_200);
    let bearer = attached(flight.handle_bearer(&mut call, &tokens, Ok(a5_answer(&second, 130)), due));
    let sent = call.request_with(&tokens, Some(&bearer));
    assert_eq!(sent.headers()[AUTHORIZATION], format!("Bearer {second}").as_str());
    assert_eq!(flight.common_jwt_refreshes(), 2);
    assert_eq!(flight.machine().latest_generation(), Generation::from_u64(1), "no login");
}

/// Transcript: a call whose bearer is refused (401) drops it; the replay asks for a fresh one; A5 refuses the
/// session (401), so one full login follows, then A5 with the new session, and the replay carries the fresh
/// bearer, never the stale one.
#[test]
fn transcript_a_refused_bearer_falls_back_to_a_full_login_when_a5_refuses() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let mut call = flight.api_call(sessioninfo()).unwrap();
    let stale_token = access_jwt("stale", 1_700_003_600);
    let _ = fetch(flight.bearer(&call, &tokens, NOW));
    let stale = attached(flight.handle_bearer(&mut call, &tokens, Ok(a5_answer(&stale_token, 3600)), NOW));
    let _ = call.request_with(&tokens, Some(&stale));

    // The pod refuses the bearer: replay after a fresh bearer, same instant, no login yet.
    assert!(matches!(flight.handle_api(&mut call, Ok(response(401, "")), NOW), ApiStep::RetryAt(at) if at == NOW));
    let a5 = fetch(flight.bearer(&call, &tokens, NOW));
    assert_eq!(a5.headers()["sessionToken"], "session-1");
    // A5 refuses the session: log in again (Want::Newer), then ask for the bearer again.
    let generation = match flight.handle_bearer(&mut call, &tokens, Ok(response(401, "")), NOW) {
        BearerStep::Relogin(generation) => generation,
        other => panic!("expected a login, got {other:?}"),
    };
    assert_eq!(generation, Generation::from_u64(1));
    let fresh_tokens = login(&mut flight, Want::Newer(generation), "session-2", NOW);
    assert_eq!(fresh_tokens.generation(), Generation::from_u64(2));
    let a5 = fetch(flight.bearer(&call, &fresh_tokens, NOW));
    assert_eq!(a5.headers()["sessionToken"], "session-2");
    let fresh_token = access_jwt("fresh", 1_700_003_600);
    let fresh = attached(flight.handle_bearer(&mut call, &fresh_tokens, Ok(a5_answer(&fresh_token, 3600)), NOW));
    let replay = call.request_with(&fresh_tokens, Some(&fresh));
    assert_eq!(replay.headers()[AUTHORIZATION], format!("Bearer {fresh_token}").as_str());
    // A second 401 on the replay is an error, not a loop.
    assert!(matches!(flight.handle_api(&mut call, Ok(response(401, "")), NOW), ApiStep::Fail(_)));
}

#[test]
fn a5_refusing_a_fresh_session_is_an_error_not_a_loop() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let mut call = flight.api_call(sessioninfo()).unwrap();
    assert!(matches!(flight.handle_bearer(&mut call, &tokens, Ok(response(401, "")), NOW), BearerStep::Relogin(_)));
    let fresh = login(&mut flight, Want::Newer(tokens.generation()), "session-2", NOW);
    assert!(matches!(
        flight.handle_bearer(&mut call, &fresh, Ok(response(401, "")), NOW),
        BearerStep::Fail(AccessTokenError::Unauthorized)
    ));
    assert!(!flight.state().is_ready(), "the refused session is expired, so the next caller logs in");
}

#[test]
fn only_calls_that_ask_carry_a_bearer_per_call_and_it_adds_to_the_session_token() {
    let mut flight = flight(CommonJwtSettings::per_call());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let plain = flight.api_call(sessioninfo()).unwrap();
    assert!(!plain.wants_bearer());
    assert!(matches!(flight.bearer(&plain, &tokens, NOW), Bearer::NotNeeded));
    let mut asked = sessioninfo();
    asked.extensions_mut().insert(BearerAuth);
    let mut call = flight.api_call(asked).unwrap();
    let _ = fetch(flight.bearer(&call, &tokens, NOW));
    let token = access_jwt("t", 1_700_000_100);
    let bearer = attached(flight.handle_bearer(&mut call, &tokens, Ok(a5_answer(&token, 100)), NOW));
    let sent = call.request_with(&tokens, Some(&bearer));
    assert_eq!(sent.headers()["sessionToken"], "session-1");
    assert_eq!(sent.headers()[AUTHORIZATION], format!("Bearer {token}").as_str());
}

#[test]
fn agent_calls_keep_their_tokens_when_the_bearer_is_on_pod_calls() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let echo = http::Request::post("https://pod.example/agent/v1/util/echo").body(Vec::new()).unwrap();
    let call = flight.api_call(echo).unwrap();
    assert!(!call.wants_bearer());
    assert!(matches!(flight.bearer(&call, &tokens, NOW), Bearer::NotNeeded));
}

#[cfg(feature = "bdk-config")]
#[test]
fn common_jwt_enabled_in_a_bdk_file_puts_the_bearer_on_pod_calls() {
    let file = |extra: &str| {
        format!("host: acme.symphony.com\nbot:\n  username: bot\n  privateKey:\n    path: /k.pem\n{extra}")
    };
    let no_env = |_: &str| None;
    let method = || crate::config::LoginMethod::Rsa(Arc::new(Constant));
    let on = crate::parse_bdk_config(&file("commonJwt:\n  enabled: true\n"), &no_env).unwrap();
    assert!(on.common_jwt);
    let config = on.to_config(method()).unwrap();
    assert_eq!(config.common_jwt(), Some(&CommonJwtSettings::on_pod_calls()));
    let off = crate::parse_bdk_config(&file(""), &no_env).unwrap();
    assert!(off.to_config(method()).unwrap().common_jwt().is_none());
    let error = crate::parse_bdk_config(&file("commonJwt:\n  enabled: yes-please\n"), &no_env).unwrap_err();
    assert!(error.to_string().contains("commonJwt.enabled"), "{error}");
}

/// A6: an access token of the fake pod verifies against the fake pod's JWKS; a tampered one, or one whose `kid`
/// the JWKS lacks, does not.
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
#[test]
fn access_tokens_verify_against_the_jwks() {
    use std::time::SystemTime;
    use symphony_auth_testkit::{FakePod, Peer, Reply};

    let mut pod = FakePod::new();
    pod.add_cert_bot("bot").unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut ask = |request: http::Request<Vec<u8>>, peer: &Peer| match pod.handle(now, request, peer) {
        Reply::Response(response) => response,
        other => panic!("{other:?}"),
    };
    let login = http::Request::post("/sessionauth/v1/authenticate").body(Vec::new()).unwrap();
    let session: serde_json::Value = serde_json::from_slice(ask(login, &Peer::with_certificate("bot")).body()).unwrap();
    let a5 = http::Request::post("/login/idm/tokens?scope=")
        .header("sessionToken", session["token"].as_str().unwrap())
        .body(Vec::new())
        .unwrap();
    let token =
        parse_access_token(&ask(a5, &Peer::in_process()), Generation::from_u64(1), Duration::ZERO, NOW).unwrap();
    let jwks = ask(http::Request::get("/login/idm/keys").body(Vec::new()).unwrap(), &Peer::in_process());
    let keys = parse_access_token_keys(&jwks).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys.verify(&token), Ok(()));

    let (input, signature) = token.expose_secret().rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    bytes[10] ^= 1;
    let tampered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));
    let tampered = a5_answer(&tampered, 60);
    let tampered = parse_access_token(&tampered, Generation::from_u64(1), Duration::ZERO, NOW).unwrap();
    assert_eq!(keys.verify(&tampered), Err(AccessTokenError::Unverified("the signature is not the JWKS key's")));

    let mut renamed: serde_json::Value = serde_json::from_slice(jwks.body()).unwrap();
    renamed["keys"][0]["kid"] = "another".into();
    let renamed = parse_access_token_keys(&response(200, &renamed.to_string())).unwrap();
    assert!(matches!(renamed.verify(&token), Err(AccessTokenError::Unverified(_))));
    assert_eq!(parse_access_token_keys(&response(500, "")).unwrap_err(), AccessTokenError::Status { status: 500 });
}

/// A6 from the other side: RS512 as well as RS256, the only RSA key when the token names none (and no guess among
/// several), keys other than RSA skipped, and the body bound.
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
#[test]
fn the_jwks_check_takes_rs512_and_the_only_key_when_the_token_names_none() {
    use std::time::SystemTime;
    use symphony_auth_testkit::{FakePod, Peer, PodCertificate, Reply, UserJwt, UserJwtAlgorithm};

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let a6 = http::Request::get("/login/idm/keys").body(Vec::new()).unwrap();
    let Reply::Response(jwks) = FakePod::new().handle(now, a6, &Peer::in_process()) else { panic!("A6 answers") };
    let jwk = serde_json::from_slice::<serde_json::Value>(jwks.body()).unwrap()["keys"][0].clone();
    let named = |kid: Option<&str>| {
        let mut jwk = jwk.clone();
        match kid {
            Some(kid) => jwk["kid"] = kid.into(),
            None => drop(jwk.as_object_mut().unwrap().remove("kid")),
        }
        jwk
    };
    let ec = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"});
    let keys = |entries: Vec<serde_json::Value>| {
        parse_access_token_keys(&response(200, &serde_json::json!({ "keys": entries }).to_string())).unwrap()
    };
    let one = keys(vec![named(None), ec.clone()]);
    let two = keys(vec![named(Some("a")), named(Some("b"))]);
    let no_rsa = keys(vec![ec]);
    assert_eq!((one.len(), one.is_empty()), (1, false));
    assert_eq!((two.len(), two.is_empty()), (2, false));
    assert_eq!((no_rsa.len(), no_rsa.is_empty()), (0, true));

    // The pod certificate's key is the one the fake's JWKS publishes; its JWTs name no `kid`.
    let signer = PodCertificate::new().unwrap();
    let token = |algorithm| {
        let jwt = signer.mint(&UserJwt::valid("app", 1, "u", now).algorithm(algorithm));
        parse_access_token(&a5_answer(&jwt, 60), Generation::from_u64(1), Duration::ZERO, NOW).unwrap()
    };
    let unmatched = Err(AccessTokenError::Unverified("no key of the JWKS matches the token's `kid`"));
    for algorithm in [UserJwtAlgorithm::Rs512, UserJwtAlgorithm::Rs256] {
        assert_eq!(one.verify(&token(algorithm)), Ok(()), "{algorithm:?} by the only key");
        assert_eq!(two.verify(&token(algorithm)), unmatched, "{algorithm:?}: no key is guessed among several");
        assert_eq!(no_rsa.verify(&token(algorithm)), unmatched, "{algorithm:?}");
    }

    let empty = r#"{"keys":[]}"#;
    let full = format!("{empty}{}", " ".repeat(MAX_RESPONSE_BODY - empty.len()));
    assert!(parse_access_token_keys(&response(200, &full)).unwrap().is_empty());
    assert_eq!(
        parse_access_token_keys(&response(200, &format!("{full} "))).unwrap_err(),
        AccessTokenError::Protocol { problem: ProtocolProblem::BodyTooLarge }
    );
}

/// A login that returns an `authorizationToken` gives the first bearer without an A5 call; once refused, it is
/// not used again and A5 takes over.
#[test]
fn the_logins_authorization_token_is_the_first_bearer() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let from_login = access_jwt("login", 1_700_000_600);
    let mut caller = flight.join(Want::Current).unwrap();
    // A sign, a send, done: a machine that keeps asking fails the test rather than hanging it.
    let mut tokens = None;
    for _ in 0..4 {
        match flight.poll(&mut caller, NOW) {
            Step::Sign(jwt) => flight.supply_jwt(jwt.sign(), NOW),
            Step::Send(batch) => {
                let body = format!(r#"{{"token":"session-1","authorizationToken":"Bearer {from_login}"}}"#);
                flight.handle_response(batch[0].id, &response(200, &body), NOW).unwrap();
            }
            Step::Done { outcome, .. } => {
                tokens = Some(outcome.unwrap());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let tokens = tokens.expect("the login ends within four steps");
    let mut call = flight.api_call(sessioninfo()).unwrap();
    let bearer = match flight.bearer(&call, &tokens, NOW) {
        Bearer::Attach(token) => token,
        other => panic!("expected the login's token, got {other:?}"),
    };
    assert_eq!(bearer.expose_secret(), from_login);
    assert_eq!(bearer.expires_at(), UnixTime::from_secs(1_700_000_600));
    assert_eq!(flight.common_jwt_refreshes(), 0, "no A5 call");
    let _ = call.request_with(&tokens, Some(&bearer));
    assert!(matches!(flight.handle_api(&mut call, Ok(response(401, "")), NOW), ApiStep::RetryAt(_)));
    let a5 = fetch(flight.bearer(&call, &tokens, NOW));
    assert_eq!(a5.uri().path(), "/login/idm/tokens");
}

/// Concurrent callers that find no usable bearer share one A5 call: the first fetches, the others follow it and
/// take its token.
#[test]
fn concurrent_callers_share_one_a5_call() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let mut calls: Vec<_> = (0..5).map(|_| flight.api_call(sessioninfo()).unwrap()).collect();
    let _ = fetch(flight.bearer(&calls[0], &tokens, NOW));
    for call in &calls[1..] {
        assert!(matches!(flight.bearer(call, &tokens, NOW), Bearer::Follow), "one A5 call at a time");
    }
    let token = access_jwt("shared", 1_700_000_100);
    let _ = attached(flight.handle_bearer(&mut calls[0], &tokens, Ok(a5_answer(&token, 100)), NOW));
    for call in &calls[1..] {
        match flight.bearer(call, &tokens, NOW) {
            Bearer::Attach(shared) => assert_eq!(shared.expose_secret(), token),
            other => panic!("expected the shared token, got {other:?}"),
        }
    }
    assert_eq!(flight.common_jwt_refreshes(), 1);
}

/// The A5 call of a caller that went away, or that failed below HTTP, no longer holds the others: the next to ask
/// fetches.
#[test]
fn a_follower_fetches_when_the_a5_call_is_abandoned_or_fails() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let mut first = flight.api_call(sessioninfo()).unwrap();
    let second = flight.api_call(sessioninfo()).unwrap();
    let _ = fetch(flight.bearer(&first, &tokens, NOW));
    assert!(matches!(flight.bearer(&second, &tokens, NOW), Bearer::Follow));
    flight.abandon_bearer(tokens.generation());
    let _ = fetch(flight.bearer(&second, &tokens, NOW));
    assert!(matches!(flight.bearer(&first, &tokens, NOW), Bearer::Follow));
    let failure = crate::error::TransportFailure::new(crate::error::TransportKind::Timeout, "test");
    assert!(matches!(flight.handle_bearer(&mut first, &tokens, Err(failure), NOW), BearerStep::Fail(_)));
    let _ = fetch(flight.bearer(&first, &tokens, NOW));
    assert_eq!(flight.common_jwt_refreshes(), 0);
}

/// When the A5 call others follow is refused (401), they log in instead of asking A5 with the same dead session;
/// the login that follows asks A5 again.
#[test]
fn followers_of_a_refused_a5_call_log_in_instead() {
    let mut flight = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut flight, Want::Current, "session-1", NOW);
    let mut first = flight.api_call(sessioninfo()).unwrap();
    let second = flight.api_call(sessioninfo()).unwrap();
    let _ = fetch(flight.bearer(&first, &tokens, NOW));
    assert!(matches!(flight.bearer(&second, &tokens, NOW), Bearer::Follow));
    let refused = flight.handle_bearer(&mut first, &tokens, Ok(response(401, "")), NOW);
    assert!(matches!(refused, BearerStep::Relogin(g) if g == tokens.generation()));
    assert!(matches!(flight.bearer(&second, &tokens, NOW), Bearer::Relogin(g) if g == tokens.generation()));
    let fresh = login(&mut flight, Want::Newer(tokens.generation()), "session-2", NOW);
    let a5 = fetch(flight.bearer(&second, &fresh, NOW));
    assert_eq!(a5.headers()["sessionToken"], "session-2");
}

/// A lease dropped before its answer (a panicked thread, a cancelled future) gives the A5 call up and wakes the
/// followers; a finished one hands its token over and wakes them.
#[test]
fn a_bearer_lease_wakes_the_followers_however_it_ends() {
    use std::cell::{Cell, RefCell, RefMut};

    use crate::flight::{BearerLease, FlightLock};

    // The core is single-threaded: a cell stands for the driver's mutex, and a counter for its wake-up.
    struct Lock(RefCell<Flight>, Cell<usize>);
    impl FlightLock for Lock {
        type Guard<'a> = RefMut<'a, Flight>;
        fn lock_flight(&self) -> RefMut<'_, Flight> {
            self.0.borrow_mut()
        }
        fn wake_followers(&self) {
            self.1.set(self.1.get() + 1);
        }
        fn now(&self) -> UnixTime {
            NOW
        }
    }
    let mut inner = flight(CommonJwtSettings::on_pod_calls());
    let tokens = login(&mut inner, Want::Current, "session-1", NOW);
    let lock = Lock(RefCell::new(inner), Cell::new(0));
    let mut call = lock.lock_flight().api_call(sessioninfo()).unwrap();
    let other = lock.lock_flight().api_call(sessioninfo()).unwrap();

    let _ = fetch(lock.lock_flight().bearer(&call, &tokens, NOW));
    drop(BearerLease::new(&lock, &tokens));
    assert_eq!(lock.1.get(), 1, "dropped: the followers are woken");
    let _ = fetch(lock.lock_flight().bearer(&other, &tokens, NOW));

    let lease = BearerLease::new(&lock, &tokens);
    let token = access_jwt("leased", 1_700_000_100);
    let _ = attached(lease.finish(&mut call, &tokens, Ok(a5_answer(&token, 100)), NOW));
    assert_eq!(lock.1.get(), 2, "finished: the followers are woken once");
    assert!(matches!(lock.lock_flight().bearer(&other, &tokens, NOW), Bearer::Attach(_)));
}

#[test]
fn the_settings_keep_the_scope_and_leeway_they_are_given() {
    let settings = CommonJwtSettings::on_pod_calls().with_scope("profile messages").with_leeway(Duration::from_secs(5));
    assert_eq!(settings.scope(), "profile messages");
    assert_eq!(settings.leeway(), Duration::from_secs(5));
    assert!(settings.replaces_session_token_on_pod_calls());
}

#[test]
fn a5_answers_fill_the_body_bound_exactly_and_one_byte_more_is_refused() {
    let parse = |r: &HttpResponse| parse_access_token(r, Generation::from_u64(1), Duration::ZERO, NOW);
    let answer = r#"{"expires_in":60,"access_token":"opaque"}"#;
    let full = format!("{answer}{}", " ".repeat(MAX_RESPONSE_BODY - answer.len()));
    assert_eq!(parse(&response(200, &full)).unwrap().expose_secret(), "opaque");
    assert_eq!(
        parse(&response(200, &format!("{full} "))).unwrap_err(),
        AccessTokenError::Protocol { problem: ProtocolProblem::BodyTooLarge }
    );
}

#[test]
fn a_refusal_drops_the_cached_bearer_only_when_it_names_that_bearer() {
    let generation = Generation::from_u64(1);
    let token = parse_access_token(&a5_answer("opaque", 60), generation, Duration::ZERO, NOW).unwrap();
    assert_eq!(
        format!("{token:?}"),
        format!("AccessToken {{ expires_at: {:?}, generation: {generation:?}, .. }}", token.expires_at())
    );
    let mut cache = BearerCache::default();
    cache.store(token.clone());
    cache.refused(UnixTime::from_secs(1), generation);
    assert!(cache.current.is_some(), "another expiry of the same login");
    cache.refused(token.expires_at(), Generation::from_u64(2));
    assert!(cache.current.is_some(), "the same expiry from another login");
    cache.refused(token.expires_at(), generation);
    assert!(cache.current.is_none());
}
