//! The single flight as a blocking caller meets it: an event hook that calls back into its bot mid-login, and a
//! leader that panics.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{rsa_builder, server};
use symphony_auth_blocking::symphony_auth_core::{Event, UsageError};
use symphony_auth_blocking::{Bot, Error};
use symphony_auth_testkit::{Endpoint, Fault};

/// Runs `work` on a thread and waits at most `limit` for it: a deadlock fails the test instead of hanging it.
fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(work());
    });
    result.recv_timeout(limit).expect("finished in time (a deadlock otherwise)")
}

#[test]
fn a_hook_that_calls_its_bot_mid_login_gets_an_error_not_a_deadlock() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status(503)));
    let bot_slot: Arc<OnceLock<Bot>> = Arc::new(OnceLock::new());
    let from_hook: Arc<Mutex<Vec<Result<(), Error>>>> = Arc::default();
    let (slot, seen) = (Arc::clone(&bot_slot), Arc::clone(&from_hook));
    let bot = rsa_builder(&server)
        .on_event(move |event| {
            if let (Event::RetryScheduled { .. } | Event::Authenticated { .. }, Some(bot)) = (event, slot.get()) {
                seen.lock().unwrap().push(bot.tokens().map(drop));
            }
        })
        .build()
        .unwrap();
    assert!(bot_slot.set(bot.clone()).is_ok());
    let tokens = within(Duration::from_secs(20), move || bot.tokens());
    assert!(tokens.is_ok(), "{tokens:?}");
    let seen = from_hook.lock().unwrap();
    // Mid-login (the retry), the call is refused; after the login (Authenticated), it is served.
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0], Err(Error::Usage(UsageError::CalledFromEventHook)));
    assert_eq!(seen[1], Ok(()));
}

#[test]
fn a_leader_that_panics_hands_its_login_over_with_its_backoff() {
    let server = server(|pod| {
        pod.inject(Endpoint::SessionLogin, 1, Fault::status(503));
        // Long enough for the second caller to join the first login rather than lead one of its own.
        pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(200));
    });
    let panicked = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&panicked);
    let bot = rsa_builder(&server)
        .on_event(move |event| {
            if matches!(event, Event::RetryScheduled { .. }) && !flag.swap(true, Ordering::SeqCst) {
                panic!("the event hook fails once");
            }
        })
        .build()
        .unwrap();
    let outcomes = within(Duration::from_secs(20), move || {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let bot = bot.clone();
                std::thread::spawn(move || catch_unwind(AssertUnwindSafe(|| bot.tokens().map(|t| t.generation()))))
            })
            .collect();
        callers.into_iter().map(|caller| caller.join().expect("the panic is caught")).collect::<Vec<_>>()
    });
    assert!(panicked.load(Ordering::SeqCst));
    let (died, served): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(Result::is_err);
    assert_eq!(died.len(), 1, "the leader's thread panicked");
    assert!(matches!(served[..], [Ok(Ok(generation))] if generation.get() == 1), "{served:?}");
    let counters = server.counters();
    // The 503, then one retry by the caller that took over: the panic cost no extra login.
    assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 200), 1);
}

#[test]
fn an_skd_login_does_not_wait_for_a_slow_key_manager() {
    let server = server(|pod| {
        pod.set_skd(true);
        // Far longer than the test allows: a login that waited for it would time the test out.
        pod.inject(Endpoint::KeyManagerLogin, 1, Fault::Delay(Duration::from_secs(60)));
    });
    let bot = rsa_builder(&server).build().unwrap();
    let tokens = within(Duration::from_secs(20), move || bot.tokens()).unwrap();
    assert!(tokens.key_manager().is_none() && tokens.simplified_key_delivery());
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
}
