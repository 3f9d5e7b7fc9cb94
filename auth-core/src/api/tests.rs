//! The API-call step: one re-login and one replay on a 401, retries of idempotent calls when enabled.

use std::time::Duration;

use http::Method;

use super::{ApiCall, ApiError, ApiRetry, ApiStep, Idempotent};
use crate::config::{Config, Endpoints};
use crate::error::{TransportFailure, TransportKind, UsageError};
use crate::retry::RetryPolicy;
use crate::time::UnixTime;
use crate::tokens::{Generation, KeyManagerToken, SecretHeader, SessionToken, Target, Tokens};
use crate::{HttpRequest, HttpResponse};

const NOW: UnixTime = UnixTime::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT

fn tokens(generation: u64) -> Tokens {
    Tokens {
        generation: Generation(generation),
        session: SessionToken(SecretHeader::new(&format!("session-{generation}")).unwrap()),
        key_manager: Some(KeyManagerToken(SecretHeader::new("km").unwrap())),
        authorization: None,
        simplified_key_delivery: false,
    }
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts, Duration::from_millis(500), 2.0, Duration::from_secs(60))
        .unwrap()
        .with_jitter(0.0)
        .unwrap()
}

fn config(retry: Option<ApiRetry>) -> Config {
    let config = Config::certificate(Endpoints::single("https://pod.example").unwrap(), "bot").unwrap();
    match retry {
        Some(retry) => config.with_api_retry(retry),
        None => config,
    }
}

fn request(method: Method, path: &str) -> HttpRequest {
    http::Request::builder()
        .method(method)
        .uri(format!("https://pod.example{path}"))
        .header("x-caller", "kept")
        .header("sessionToken", "stale")
        .body(b"payload".to_vec())
        .unwrap()
}

fn call(method: Method, retry: Option<ApiRetry>) -> ApiCall {
    ApiCall::new(request(method, "/pod/v1/x"), &config(retry), 9).unwrap()
}

fn answer(status: u16, retry_after: Option<&str>) -> HttpResponse {
    let mut builder = http::Response::builder().status(status);
    if let Some(value) = retry_after {
        builder = builder.header("retry-after", value);
    }
    builder.body(Vec::new()).unwrap()
}

fn at(step: ApiStep) -> UnixTime {
    match step {
        ApiStep::RetryAt(at) => at,
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn returned(step: ApiStep) -> u16 {
    match step {
        ApiStep::Return(response) => response.status().as_u16(),
        other => panic!("expected a response, got {other:?}"),
    }
}

#[test]
fn the_request_carries_the_tokens_and_everything_else_unchanged() {
    let mut pod = call(Method::POST, None);
    assert_eq!(pod.target(), Target::Pod);
    let sent = pod.request(&tokens(1));
    assert_eq!(sent.method(), Method::POST);
    assert_eq!(sent.uri(), "https://pod.example/pod/v1/x");
    assert_eq!(sent.body(), b"payload");
    assert_eq!(sent.headers()["x-caller"], "kept");
    assert_eq!(sent.headers()["sessionToken"], "session-1", "the caller's stale token is replaced");
    assert!(sent.headers()["sessionToken"].is_sensitive());
    assert!(!sent.headers().contains_key("keyManagerToken"), "pod calls do not carry the key-manager token");
    let mut agent = ApiCall::new(request(Method::GET, "/agent/v1/x"), &config(None), 1).unwrap();
    assert_eq!(agent.target(), Target::Agent);
    assert_eq!(agent.request(&tokens(1)).headers()["keyManagerToken"], "km");
}

#[test]
fn a_foreign_host_is_refused_before_any_token_is_attached() {
    let request = http::Request::get("https://evil.example/pod/v1/x").body(Vec::new()).unwrap();
    assert!(
        matches!(ApiCall::new(request, &config(None), 1), Err(UsageError::ForeignUri(uri)) if uri == "https://evil.example/pod/v1/x")
    );
}

#[test]
fn a_401_asks_for_one_relogin_and_a_second_401_fails() {
    let mut call = call(Method::GET, None);
    call.request(&tokens(1));
    assert!(matches!(call.handle(Ok(answer(401, None)), NOW), ApiStep::Relogin(Generation(1))));
    // Replayed with the new tokens: refused again, an error naming the new generation.
    call.request(&tokens(2));
    match call.handle(Ok(answer(401, None)), NOW) {
        ApiStep::Fail(error) => assert_eq!(error, ApiError::Unauthorized { generation: 2 }),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_replay_that_succeeds_returns_the_answer() {
    let mut call = call(Method::GET, None);
    call.request(&tokens(1));
    assert!(matches!(call.handle_response(answer(401, None), NOW), ApiStep::Relogin(_)));
    call.request(&tokens(2));
    assert_eq!(returned(call.handle_response(answer(200, None), NOW)), 200);
}

#[test]
fn without_a_retry_policy_errors_are_returned_as_they_are() {
    for (status, retry_after) in [(503, None), (429, Some("1")), (404, None)] {
        let mut call = call(Method::GET, None);
        call.request(&tokens(1));
        assert_eq!(returned(call.handle(Ok(answer(status, retry_after)), NOW)), status);
    }
    let mut call = call(Method::GET, None);
    call.request(&tokens(1));
    match call.handle(Err(TransportFailure::new(TransportKind::Connect, "refused")), NOW) {
        ApiStep::Fail(ApiError::Transport { attempts: 1, failure }) => assert_eq!(failure.kind, TransportKind::Connect),
        other => panic!("{other:?}"),
    }
}

#[test]
fn idempotent_methods_are_retried_with_the_policy_backoff() {
    for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE, Method::OPTIONS, Method::TRACE] {
        let mut call = call(method.clone(), Some(ApiRetry::new(policy(4))));
        call.request(&tokens(1));
        let first = at(call.handle(Ok(answer(503, None)), NOW));
        assert_eq!(first, NOW.saturating_add(Duration::from_millis(500)), "{method}");
        let second = at(call.handle(Ok(answer(500, None)), first));
        assert_eq!(second, first.saturating_add(Duration::from_secs(1)), "{method}");
        let third = at(call.handle(Ok(answer(429, None)), second));
        assert_eq!(third, second.saturating_add(Duration::from_secs(2)), "{method}");
        // The fourth attempt is the last: its answer goes back to the caller.
        assert_eq!(returned(call.handle(Ok(answer(503, None)), third)), 503, "{method}");
    }
}

#[test]
fn other_methods_are_retried_only_when_the_caller_says_so() {
    let retry = Some(ApiRetry::new(policy(3)));
    for method in [Method::POST, Method::PATCH] {
        let mut plain = call(method.clone(), retry.clone());
        plain.request(&tokens(1));
        assert_eq!(returned(plain.handle(Ok(answer(503, None)), NOW)), 503, "{method}");

        let mut marked = request(method.clone(), "/pod/v1/x");
        marked.extensions_mut().insert(Idempotent);
        let mut marked = ApiCall::new(marked, &config(retry.clone()), 1).unwrap();
        marked.request(&tokens(1));
        at(marked.handle(Ok(answer(503, None)), NOW));

        let mut everything = call(method.clone(), Some(ApiRetry::new(policy(3)).all_methods()));
        everything.request(&tokens(1));
        at(everything.handle(Ok(answer(503, None)), NOW));
    }
    assert_eq!(ApiRetry::default().policy(), &RetryPolicy::default());
    assert_eq!(ApiRetry::new(policy(3)).policy().max_attempts(), 3);
}

#[test]
fn retry_after_in_seconds_or_as_a_date_is_honoured_and_capped() {
    let mut call = call(Method::GET, Some(ApiRetry::new(policy(10))));
    call.request(&tokens(1));
    assert_eq!(at(call.handle(Ok(answer(429, Some("7"))), NOW)), NOW.saturating_add(Duration::from_secs(7)));
    let date = Some("Wed, 21 Oct 2015 07:28:30 GMT");
    assert_eq!(at(call.handle(Ok(answer(503, date)), NOW)), NOW.saturating_add(Duration::from_secs(30)));
    assert_eq!(
        at(call.handle(Ok(answer(503, Some("86400"))), NOW)),
        NOW.saturating_add(Duration::from_secs(60)),
        "capped by the policy's largest wait"
    );
    // An unreadable value falls back to the backoff (the fourth failure: 500 ms × 2³).
    assert_eq!(at(call.handle(Ok(answer(503, Some("soon"))), NOW)), NOW.saturating_add(Duration::from_secs(4)));
}

#[test]
fn client_errors_and_successes_are_never_retried() {
    let mut call = call(Method::GET, Some(ApiRetry::new(policy(10))));
    call.request(&tokens(1));
    for status in [200, 204, 400, 403, 404, 409] {
        assert_eq!(returned(call.handle(Ok(answer(status, None)), NOW)), status);
    }
}

#[test]
fn transport_failures_are_retried_unless_they_need_a_configuration_change() {
    let mut call = call(Method::GET, Some(ApiRetry::new(policy(3))));
    call.request(&tokens(1));
    let failure = |kind| Err(TransportFailure::new(kind, "x"));
    let first = at(call.handle(failure(TransportKind::Timeout), NOW));
    assert_eq!(first, NOW.saturating_add(Duration::from_millis(500)));
    at(call.handle(failure(TransportKind::Reset), first));
    match call.handle(failure(TransportKind::Connect), first) {
        ApiStep::Fail(ApiError::Transport { attempts: 3, failure }) => assert_eq!(failure.kind, TransportKind::Connect),
        other => panic!("the policy's three attempts are spent: {other:?}"),
    }

    let mut tls = self::call(Method::GET, Some(ApiRetry::new(policy(3))));
    tls.request(&tokens(1));
    match tls.handle(failure(TransportKind::Tls), NOW) {
        ApiStep::Fail(ApiError::Transport { attempts: 1, failure }) => assert_eq!(failure.kind, TransportKind::Tls),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_same_seed_gives_the_same_jittered_waits() {
    let waits = |seed| {
        let retry =
            ApiRetry::new(RetryPolicy::new(6, Duration::from_millis(500), 2.0, Duration::from_secs(60)).unwrap());
        let mut call = ApiCall::new(request(Method::GET, "/pod/v1/x"), &config(Some(retry)), seed).unwrap();
        call.request(&tokens(1));
        (0..5).map(|_| at(call.handle(Ok(answer(503, None)), NOW))).collect::<Vec<_>>()
    };
    assert_eq!(waits(3), waits(3));
    assert_ne!(waits(3), waits(4));
    for (n, wait) in waits(3).into_iter().enumerate() {
        let full = Duration::from_millis(500 * (1 << n));
        let waited = wait.saturating_since(NOW);
        assert!(waited <= full && waited >= full.mul_f64(0.8), "{n}: {waited:?}");
    }
}

#[test]
fn api_errors_say_what_happened_without_tokens() {
    let error = ApiError::Unauthorized { generation: 4 };
    assert!(error.to_string().contains("generation 4"), "{error}");
    let error = ApiError::Transport { attempts: 2, failure: TransportFailure::new(TransportKind::Timeout, "slow") };
    assert_eq!(error.to_string(), "the API call failed after 2 attempt(s): timed out: slow");
}

#[test]
fn a_call_without_replay_returns_its_401_and_retryable_statuses_and_fails_on_a_transport_failure() {
    let retry = Some(ApiRetry::new(policy(3)));
    for status in [401, 503, 429] {
        let mut call = call(Method::GET, retry.clone()).without_replay();
        assert!(!call.is_replayable());
        call.request_head(&tokens(1), None);
        assert_eq!(returned(call.handle(Ok(answer(status, None)), NOW)), status);
    }
    let mut once = call(Method::GET, retry).without_replay();
    once.request_head(&tokens(1), None);
    match once.handle(Err(TransportFailure::new(TransportKind::Connect, "refused")), NOW) {
        ApiStep::Fail(ApiError::Transport { attempts: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(call(Method::GET, None).is_replayable());
}

/// A call sent once still tells the flight that its bearer was refused, so that the next call does not reuse it;
/// any other answer leaves the bearer alone.
#[test]
fn a_call_without_replay_reports_its_refused_bearer_on_a_401_only() {
    use crate::common_jwt::{CommonJwtSettings, parse_access_token};
    let config = config(None).with_common_jwt(CommonJwtSettings::on_pod_calls());
    let a5 = http::Response::builder()
        .status(200)
        .body(br#"{"token_type":"Bearer","expires_in":600,"access_token":"opaque-bearer"}"#.to_vec())
        .unwrap();
    let bearer = parse_access_token(&a5, Generation(1), Duration::ZERO, NOW).unwrap();
    for (status, refused) in [(401, Some((bearer.expires_at(), Generation(1)))), (200, None), (403, None), (503, None)]
    {
        let mut call = ApiCall::new(request(Method::POST, "/pod/v1/x"), &config, 9).unwrap().without_replay();
        let head = call.request_head(&tokens(1), Some(&bearer));
        assert!(head.headers().contains_key(http::header::AUTHORIZATION), "the bearer is attached");
        assert_eq!(returned(call.handle(Ok(answer(status, None)), NOW)), status);
        assert_eq!(call.take_refused_bearer(), refused, "{status}");
    }
}

#[test]
fn the_request_head_is_the_request_without_its_body() {
    let mut agent = ApiCall::new(request(Method::PUT, "/agent/v1/x"), &config(None), 1).unwrap();
    let head = agent.request_head(&tokens(4), None);
    let full = agent.request(&tokens(4));
    assert_eq!(head.method(), full.method());
    assert_eq!(head.uri(), full.uri());
    assert_eq!(head.headers(), full.headers());
    assert_eq!(head.headers()["sessionToken"], "session-4");
    assert_eq!(head.headers()["keyManagerToken"], "km");
    // The head counts as an attempt: a 401 on it names its generation.
    let mut call = call(Method::GET, None);
    call.request_head(&tokens(5), None);
    assert!(matches!(call.handle(Ok(answer(401, None)), NOW), ApiStep::Relogin(Generation(5))));
}
