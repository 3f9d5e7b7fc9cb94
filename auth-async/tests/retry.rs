//! Retries: the core decides, the driver sleeps until `poll_timeout`.
//!
//! These run in real time with short intervals. `tokio::time::pause()` does not mix with real sockets: a paused
//! runtime with nothing ready advances its clock straight to the next timer, which is the HTTP client's own
//! request timeout, while the fake answers in real time on its own thread. Tried here: with a 50 ms fake latency
//! on the login, a paused run failed every attempt with a timeout after 300 s of virtual time and 25 ms of real
//! time; with no latency it passed only because loopback answers arrived before the runtime parked.

mod common;

use std::time::{Duration, Instant};

use common::*;
use symphony_auth_async::Bot;
use symphony_auth_core::{Event, FailureCause, KeyManagerOutcome};
use symphony_auth_testkit::{Endpoint, Fault};

fn retries(events: &[Event]) -> Vec<(u32, Duration, FailureCause)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled { attempt, delay, cause, .. } => Some((*attempt, *delay, cause.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn three_503s_with_retry_after_then_success() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 3, Fault::status_retry_after(503, 1)));
    let events = Events::default();
    // Backoff would wait 10, 20, 40 ms; `Retry-After: 1` asks for 1 s, capped by the policy at 200 ms.
    let config = pod_only(rsa_config(server.rsa_endpoints())).with_retry(quick_retry(Duration::from_millis(200)));
    let bot = Bot::builder(config).on_event(events.hook()).build().unwrap();

    let started = Instant::now();
    let tokens = bot.tokens().await.unwrap();
    let elapsed = started.elapsed();

    let events = events.take();
    let ms = Duration::from_millis(200);
    assert_eq!(
        retries(&events),
        [(1, ms, FailureCause::Status(503)), (2, ms, FailureCause::Status(503)), (3, ms, FailureCause::Status(503))]
    );
    assert_eq!(
        events.last(),
        Some(&Event::Authenticated { generation: tokens.generation(), key_manager: KeyManagerOutcome::Disabled })
    );
    assert!(elapsed >= Duration::from_millis(600), "the driver waited out each delay: {elapsed:?}");
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 4);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 503), 3);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 200), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_in_full_under_the_cap() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status_retry_after(429, 1)));
    let events = Events::default();
    let config = pod_only(rsa_config(server.rsa_endpoints())).with_retry(quick_retry(Duration::from_secs(5)));
    let bot = Bot::builder(config).on_event(events.hook()).build().unwrap();
    let started = Instant::now();
    bot.tokens().await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(retries(&events.take()), [(1, Duration::from_secs(1), FailureCause::Status(429))]);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
}

#[tokio::test]
async fn transport_failures_are_retried_and_counted() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 2, Fault::Close));
    let events = Events::default();
    let config = pod_only(rsa_config(server.rsa_endpoints()));
    let bot = Bot::builder(config).on_event(events.hook()).build().unwrap();
    bot.tokens().await.unwrap();
    let kinds: Vec<_> = retries(&events.take())
        .into_iter()
        .map(|(_, _, cause)| match cause {
            FailureCause::Transport(failure) => failure.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, [symphony_auth_core::TransportKind::Reset; 2]);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 3);
}
