//! Single flight and recovery: concurrent first use, the 401 storm, a second 401, refresh, retries.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{BOT, KEY_2048, OTHER_KEY, rsa_bot, rsa_config, server};
use symphony_auth_blocking::symphony_auth_core::{self, AuthError, KeyManagerPolicy, LoginEndpoint, State, Tokens};
use symphony_auth_blocking::{Bot, Error};
use symphony_auth_testkit::{Endpoint, Fault};

const CALLERS: usize = 16;

/// Runs `f` on `CALLERS` threads released together, and returns their results.
fn together<T: Send>(f: impl Fn() -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(CALLERS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CALLERS)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    f()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("caller thread")).collect()
    })
}

#[test]
fn concurrent_first_use_shares_one_login() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(200)));
    let bot = rsa_bot(&server);
    let results: Vec<Arc<Tokens>> = together(|| bot.tokens().unwrap());
    assert!(results.iter().all(|t| Arc::ptr_eq(t, &results[0])), "every caller gets the same tokens");
    assert_eq!(results[0].generation().get(), 1);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 1);
}

#[test]
fn concurrent_callers_share_the_login_error() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(300)));
    // A key the pod does not know for `bot`: rejected.
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), OTHER_KEY)).build().unwrap();
    let results = together(|| bot.tokens().unwrap_err());
    assert!(results.iter().all(|e| e == &results[0]), "{results:?}");
    assert!(matches!(&results[0], Error::Auth(AuthError::Rejected { status: 401, .. })), "{:?}", results[0]);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
}

#[test]
fn a_401_storm_causes_exactly_one_login_and_every_replay_succeeds() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(100)));
    let bot = rsa_bot(&server);
    assert_eq!(bot.tokens().unwrap().generation().get(), 1);
    server.pod().expire_sessions();
    server.pod().reset_counters();

    let statuses = together(|| {
        let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "storm")).unwrap();
        response.status().as_u16()
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1, "exactly one re-login");
    assert!(counters.responses(Endpoint::Echo, 401) >= 1, "the storm hit the dead tokens");
    assert_eq!(counters.responses(Endpoint::Echo, 200), CALLERS as u64);
    assert_eq!(bot.tokens().unwrap().generation().get(), 2);
}

#[test]
fn a_second_401_after_a_fresh_login_is_an_error_not_a_loop() {
    let server = server(|pod| pod.inject(Endpoint::Echo, 2, Fault::status(401)));
    let bot = rsa_bot(&server);
    let error = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "x")).unwrap_err();
    assert_eq!(error, Error::Unauthorized { generation: 2 });
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::Echo), 2, "one call, one replay");
    assert_eq!(counters.requests(Endpoint::SessionLogin), 2, "the first login and one re-login");
    // The refused tokens are expired: the next call logs in again and, the script spent, succeeds.
    assert!(matches!(bot.state(), State::Expired { logging_in: false, .. }), "{:?}", bot.state());
    let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "y")).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(bot.tokens().unwrap().generation().get(), 3);
}

#[test]
fn agent_calls_without_a_key_manager_token_end_in_unauthorized() {
    let server = server(|_| {});
    let config = rsa_config(server.rsa_endpoints(), KEY_2048).with_key_manager(KeyManagerPolicy::Never);
    let bot = Bot::builder(config).build().unwrap();
    let error = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "x")).unwrap_err();
    assert_eq!(error, Error::Unauthorized { generation: 2 });
}

#[test]
fn other_statuses_are_returned_as_they_are() {
    let server = server(|pod| pod.inject(Endpoint::SessionInfo, 1, Fault::status(503)));
    let bot = rsa_bot(&server);
    let response = bot.send(symphony_auth_core::session_info(bot.config().endpoints())).unwrap();
    assert_eq!(response.status(), 503);
    assert!(!response.body().is_empty(), "the body reaches the caller");
    assert_eq!(bot.session_info().unwrap().username, BOT);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
}

#[test]
fn refresh_logs_in_again_and_concurrent_refreshes_share_it() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(200)));
    let bot = rsa_bot(&server);
    assert_eq!(bot.tokens().unwrap().generation().get(), 1);
    let results = together(|| bot.refresh().unwrap().generation().get());
    // Every caller joined a login that was under way or began one; none waited for nothing.
    assert!(results.iter().all(|&g| g >= 2), "{results:?}");
    let logins = server.counters().requests(Endpoint::SessionLogin);
    assert!(logins >= 2 && logins <= 1 + CALLERS as u64);
    assert_eq!(bot.tokens().unwrap().generation().get(), logins);
}

#[test]
fn refresh_keeps_serving_the_old_tokens_until_the_new_ones_arrive() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(300)));
    let bot = rsa_bot(&server);
    let old = bot.tokens().unwrap();
    std::thread::scope(|scope| {
        let refresher = scope.spawn(|| bot.refresh().unwrap());
        // Until the refresh ends, tokens() answers at once with the old tokens.
        while !refresher.is_finished() {
            let current = bot.tokens().unwrap();
            assert!(Arc::ptr_eq(&current, &old) || current.generation().get() == 2);
            std::thread::yield_now();
        }
        assert_eq!(refresher.join().unwrap().generation().get(), 2);
    });
}

#[test]
fn retries_503s_honouring_retry_after_then_logs_in() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 3, Fault::status_retry_after(503, 1)));
    // Retry-After: 1 is capped by the policy's 100 ms maximum wait.
    let bot = rsa_bot(&server);
    let started = Instant::now();
    let tokens = bot.tokens().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(tokens.generation().get(), 1);
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 4);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 503), 3);
    assert_eq!(counters.responses(Endpoint::SessionLogin, 200), 1);
    // The driver slept until each retry was due: three waits of exactly 100 ms (Retry-After has no jitter).
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
}

#[test]
fn a_401_at_login_is_rejected_naming_the_user_after_one_attempt() {
    let server = server(|_| {});
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), OTHER_KEY)).build().unwrap();
    let error = bot.tokens().unwrap_err();
    match &error {
        Error::Auth(AuthError::Rejected { endpoint, username, status, .. }) => {
            assert_eq!(*endpoint, LoginEndpoint::RsaSession);
            assert_eq!(username, BOT);
            assert_eq!(*status, 401);
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(error.to_string().contains("\"bot\""), "{error}");
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    // Within the cool-down, callers get the same error without a request to the pod...
    assert_eq!(bot.tokens().unwrap_err(), error);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    // ...and the bot stays usable: a refresh tries again at once.
    assert_eq!(bot.refresh().unwrap_err(), error);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
}
