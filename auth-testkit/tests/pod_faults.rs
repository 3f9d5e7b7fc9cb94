//! Scripted faults, latency, key manager down, and counters, in process.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use symphony_auth_testkit::{Endpoint, FakePod, Fault, LoginRateLimit, Peer, Reply, RetryAfter};

const LOGIN: &str = "/login/pubkey/authenticate";
const RELAY: &str = "/relay/pubkey/authenticate";

fn pod() -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bot", BOT_2048_PUB).unwrap();
    pod.add_cert_bot("certbot").unwrap();
    pod
}

fn login(pod: &mut FakePod, path: &str) -> Reply {
    let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240);
    pod.handle(t0(), rsa_login(path, &jwt), &Peer::in_process())
}

#[test]
fn n_times_503_with_retry_after_then_200() {
    let mut pod = pod();
    pod.inject(Endpoint::SessionLogin, 3, Fault::status_retry_after(503, 7));
    assert_eq!(pod.pending_faults(Endpoint::SessionLogin), 3);
    for left in (0..3).rev() {
        let reply = login(&mut pod, LOGIN);
        assert_eq!(error(&reply, 503), "Injected fault");
        assert_eq!(reply.response().unwrap().headers()["retry-after"], "7");
        assert_eq!(pod.pending_faults(Endpoint::SessionLogin), left);
    }
    token(&login(&mut pod, LOGIN), "sessionToken");

    let counters = pod.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 4);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 503), 3);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 200), 1);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 0);
    assert_eq!(
        counters.iter().collect::<Vec<_>>(),
        vec![(Endpoint::SessionLogin, 200, 1), (Endpoint::SessionLogin, 503, 3)]
    );
}

#[test]
fn faults_apply_to_their_endpoint_only_and_in_order() {
    let mut pod = pod();
    pod.inject(Endpoint::KeyManagerLogin, 1, Fault::status(429));
    pod.inject(Endpoint::KeyManagerLogin, 1, Fault::status(500));
    token(&login(&mut pod, LOGIN), "sessionToken");
    let first = login(&mut pod, RELAY);
    error(&first, 429);
    assert!(first.response().unwrap().headers().get("retry-after").is_none());
    error(&login(&mut pod, RELAY), 500);
    token(&login(&mut pod, RELAY), "keyManagerToken");

    pod.inject(Endpoint::Health, 5, Fault::status(503));
    pod.clear_faults();
    assert_eq!(pod.pending_faults(Endpoint::Health), 0);
}

#[test]
fn network_faults_are_replies_for_the_shell() {
    let mut pod = pod();
    pod.inject(Endpoint::SessionLogin, 1, Fault::Close);
    pod.inject(Endpoint::SessionLogin, 1, Fault::Garbage);
    pod.inject(Endpoint::SessionLogin, 1, Fault::MalformedJson);
    pod.inject(Endpoint::SessionLogin, 1, Fault::OversizedBody(100_000));
    pod.inject(Endpoint::SessionLogin, 1, Fault::Delay(Duration::from_millis(1500)));

    assert!(matches!(login(&mut pod, LOGIN), Reply::Close));
    let Reply::Garbage(bytes) = login(&mut pod, LOGIN) else { panic!("expected garbage") };
    assert!(!bytes.starts_with(b"HTTP/"));

    let malformed = login(&mut pod, LOGIN);
    assert_eq!(malformed.status(), Some(200));
    assert!(serde_json::from_slice::<serde_json::Value>(malformed.response().unwrap().body()).is_err());

    let oversized = login(&mut pod, LOGIN);
    assert_eq!(oversized.response().unwrap().body().len(), 100_000);
    assert!(oversized.json().is_some(), "valid JSON, just big");

    // A delay fault still processes the request.
    let delayed = login(&mut pod, LOGIN);
    assert!(matches!(delayed, Reply::Delayed(d, _) if d == Duration::from_millis(1500)));
    token(&delayed, "sessionToken");

    let counters = pod.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 5);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 200), 3, "close and garbage send no status");
    assert_eq!(pod.live_sessions(t0()), 1, "only the delayed request logged in");
}

#[test]
fn latency_wraps_answers_of_its_endpoint() {
    let mut pod = pod();
    pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(250));
    pod.inject(Endpoint::SessionLogin, 1, Fault::Delay(Duration::from_millis(100)));
    let reply = login(&mut pod, LOGIN);
    assert_eq!(reply.delay(), Duration::from_millis(350));
    token(&reply, "sessionToken");
    assert_eq!(login(&mut pod, LOGIN).delay(), Duration::from_millis(250));
    assert_eq!(login(&mut pod, RELAY).delay(), Duration::ZERO);

    pod.set_latency_all(Duration::from_millis(5));
    assert_eq!(pod.latency(Endpoint::Health), Duration::from_millis(5));
    pod.set_latency_all(Duration::ZERO);
    assert!(matches!(login(&mut pod, LOGIN), Reply::Response(_)));
}

#[test]
fn key_manager_down_while_the_pod_is_up() {
    let mut pod = pod();
    pod.set_key_manager_down(true);
    assert_eq!(error(&login(&mut pod, RELAY), 503), "Key manager unavailable");
    let cert = pod.handle(t0(), post("/keyauth/v1/authenticate", &[], b""), &Peer::with_certificate("certbot"));
    error(&cert, 503);
    token(&login(&mut pod, LOGIN), "sessionToken");
    let cert = pod.handle(t0(), post("/sessionauth/v1/authenticate", &[], b""), &Peer::with_certificate("certbot"));
    token(&cert, "sessionToken");
    pod.set_key_manager_down(false);
    token(&login(&mut pod, RELAY), "keyManagerToken");
}

#[test]
fn counters_count_every_status_and_reset() {
    let mut pod = pod();
    let peer = Peer::in_process();
    pod.handle(t0(), rsa_login(LOGIN, "bad"), &peer);
    pod.handle(t0(), get("/nope", &[]), &peer);
    pod.handle(t0(), get("/pod/v2/sessioninfo", &[]), &peer);
    let c = pod.counters();
    assert_eq!(c.responses(Endpoint::SessionLogin, 401), 1);
    assert_eq!(c.responses(Endpoint::NotFound, 404), 1);
    assert_eq!(c.responses(Endpoint::SessionInfo, 401), 1);
    assert_eq!(c.total_requests(), 3);
    pod.reset_counters();
    assert_eq!(pod.counters().total_requests(), 0);
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.response()?.headers().get(name).map(|v| v.to_str().unwrap())
}

#[test]
fn redirects_carry_a_location() {
    let mut pod = pod();
    pod.inject(Endpoint::SessionLogin, 1, Fault::redirect(307, "https://elsewhere.example/login/pubkey/authenticate"));
    pod.inject(Endpoint::SessionInfo, 1, Fault::redirect(302, "/pod/v2/sessioninfo?again"));
    pod.inject(Endpoint::Echo, 1, Fault::redirect(302, "bad\r\nheader"));
    let reply = login(&mut pod, LOGIN);
    assert_eq!(reply.status(), Some(307));
    assert_eq!(header(&reply, "location"), Some("https://elsewhere.example/login/pubkey/authenticate"));
    let reply = pod.handle(t0(), get("/pod/v2/sessioninfo", &[]), &Peer::in_process());
    assert_eq!((reply.status(), header(&reply, "location")), (Some(302), Some("/pod/v2/sessioninfo?again")));
    // A Location that cannot be a header is said so, not dropped.
    let reply = pod.handle(t0(), post("/agent/v1/util/echo", &[], b"{}"), &Peer::in_process());
    assert!(error(&reply, 500).contains("Location"));
    assert_eq!(header(&reply, "location"), None);
    // Plain status faults have neither header.
    pod.inject(Endpoint::SessionLogin, 1, Fault::status(503));
    let reply = login(&mut pod, LOGIN);
    assert_eq!((header(&reply, "location"), header(&reply, "retry-after")), (None, None));
}

#[test]
fn retry_after_as_an_http_date() {
    let mut pod = pod();
    pod.inject(Endpoint::SessionLogin, 1, Fault::status_retry_after_date(503, Duration::from_secs(120)));
    let reply = login(&mut pod, LOGIN);
    error(&reply, 503);
    let date = httpdate::parse_http_date(header(&reply, "retry-after").unwrap()).unwrap();
    assert_eq!(date, t0() + Duration::from_secs(120));

    // Relative to the pod's own clock, as its `Date` is.
    pod.set_clock_skew(-30);
    pod.inject(Endpoint::KeyManagerLogin, 1, Fault::status_retry_after_date(429, Duration::from_secs(5)));
    let reply = login(&mut pod, RELAY);
    let date = httpdate::parse_http_date(header(&reply, "retry-after").unwrap()).unwrap();
    assert_eq!(date, t0() - Duration::from_secs(25));
    assert_eq!(httpdate::parse_http_date(header(&reply, "date").unwrap()).unwrap(), t0() - Duration::from_secs(30));

    // A fixed date, here in the past.
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let fault = Fault::Status { status: 503, retry_after: Some(RetryAfter::Date(past)), location: None };
    pod.inject(Endpoint::SessionLogin, 1, fault);
    let reply = login(&mut pod, LOGIN);
    assert_eq!(header(&reply, "retry-after"), Some("Sun, 09 Sep 2001 01:46:40 GMT"));
}

#[test]
fn the_login_rate_limit_answers_429_with_the_wait_until_a_slot_frees() {
    let mut pod = pod();
    pod.set_login_rate_limit(Some(LoginRateLimit::new(2, Duration::from_secs(10))));
    let at = |offset: f64| t0() + Duration::from_secs_f64(offset);
    let login_at = |pod: &mut FakePod, path: &str, offset: f64| {
        let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240);
        pod.handle(at(offset), rsa_login(path, &jwt), &Peer::in_process())
    };
    token(&login_at(&mut pod, LOGIN, 0.0), "sessionToken");
    token(&login_at(&mut pod, LOGIN, 3.0), "sessionToken");
    let refused = login_at(&mut pod, LOGIN, 4.5);
    assert_eq!(error(&refused, 429), "Too many login attempts");
    assert_eq!(header(&refused, "retry-after"), Some("6"), "the slot of the login at 0 s frees at 10 s");
    // Refusals do not use up the budget, and each login endpoint has its own.
    token(&login_at(&mut pod, RELAY, 4.6), "keyManagerToken");
    let refused = login_at(&mut pod, LOGIN, 9.9);
    assert_eq!(header(&refused, "retry-after"), Some("1"), "whole seconds, at least one");
    token(&login_at(&mut pod, LOGIN, 10.0), "sessionToken");
    error(&login_at(&mut pod, LOGIN, 12.0), 429);
    // Bad credentials count too: the limiter stands in front of the login.
    let bad = pod.handle(at(13.1), rsa_login(LOGIN, "not.a.jwt"), &Peer::in_process());
    error(&bad, 401);
    let refused = login_at(&mut pod, LOGIN, 13.2);
    // Without the 401 at 13.1 s, only the login at 10 s would hold a slot; it frees at 20 s.
    assert_eq!((refused.status(), header(&refused, "retry-after")), (Some(429), Some("7")));
    let counters = pod.counters();
    assert_eq!(counters.responses(Endpoint::SessionLogin, 429), 4);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 200), 3);

    // Certificate logins are limited too; protected endpoints are not.
    let cert = Peer::with_certificate("certbot");
    pod.set_login_rate_limit(Some(LoginRateLimit::new(1, Duration::from_secs(60))));
    token(&pod.handle(at(20.0), post("/sessionauth/v1/authenticate", &[], b""), &cert), "sessionToken");
    let refused = pod.handle(at(20.0), post("/sessionauth/v1/authenticate", &[], b""), &cert);
    assert_eq!((refused.status(), header(&refused, "retry-after")), (Some(429), Some("60")));
    for _ in 0..3 {
        assert_eq!(pod.handle(at(20.0), get("/agent/v3/health", &[]), &Peer::in_process()).status(), Some(200));
    }
    // Removing the limit lets everything through again.
    pod.set_login_rate_limit(None);
    token(&pod.handle(at(20.0), post("/sessionauth/v1/authenticate", &[], b""), &cert), "sessionToken");
    assert_eq!(pod.login_rate_limit(), None);
}

#[test]
fn a_zero_login_budget_refuses_every_login() {
    let mut pod = pod();
    pod.set_login_rate_limit(Some(LoginRateLimit::new(0, Duration::from_millis(1500))));
    let refused = login(&mut pod, LOGIN);
    assert_eq!((refused.status(), header(&refused, "retry-after")), (Some(429), Some("2")));
    assert_eq!(pod.live_sessions(t0()), 0);
}
