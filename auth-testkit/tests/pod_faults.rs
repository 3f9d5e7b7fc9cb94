//! Scripted faults, latency, key manager down, and counters, in process.

mod common;

use std::time::Duration;

use common::*;
use symphony_auth_testkit::{Endpoint, FakePod, Fault, Peer, Reply};

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
