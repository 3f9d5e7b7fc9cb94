//! The single flight: concurrent callers share one login, a 401 storm costs one login, and a cancelled leader
//! is taken over by a waiter.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use symphony_auth_async::{Bot, Error};
use symphony_auth_core::AuthError;
use symphony_auth_testkit::{Endpoint, Fault};

#[tokio::test]
async fn concurrent_callers_share_one_login_and_get_the_same_tokens() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(50)));
    let bot = rsa_bot(&server);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            tokio::spawn({
                let bot = bot.clone();
                async move { bot.tokens().await }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await.unwrap().unwrap());
    }
    assert!(all.iter().all(|t| Arc::ptr_eq(t, &all[0])));
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 1);
}

#[tokio::test]
async fn concurrent_callers_of_a_failing_login_get_the_same_error() {
    let server = server(|pod| {
        pod.add_rsa_bot(BOT, OTHER_PUBLIC_KEY).unwrap();
        pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(50));
    });
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).build().unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn({
                let bot = bot.clone();
                async move { bot.tokens().await }
            })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        errors.push(task.await.unwrap().unwrap_err());
    }
    assert!(matches!(errors[0], Error::Auth(AuthError::Rejected { .. })), "{:?}", errors[0]);
    assert!(errors.iter().all(|e| *e == errors[0]));
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
}

#[tokio::test]
async fn concurrent_refreshes_share_one_new_login() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(50)));
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).build().unwrap();
    assert_eq!(bot.tokens().await.unwrap().generation().get(), 1);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn({
                let bot = bot.clone();
                async move { bot.refresh().await }
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().generation().get(), 2);
    }
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
}

const TASKS: usize = 1000;

/// Runs `TASKS` tasks released together by a barrier, each calling `session_info`, and returns their results.
async fn storm(bot: &Bot) -> Vec<Result<symphony_auth_core::SessionInfo, Error>> {
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            tokio::spawn({
                let (bot, start) = (bot.clone(), Arc::clone(&start));
                async move {
                    start.wait().await;
                    bot.session_info().await
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(TASKS);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// 1,000 tasks on a multi-thread runtime all hit 401 with the same (expired) tokens: exactly one login on the
/// fake, and every replay succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_1000_401s_causes_exactly_one_login() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionInfo, Duration::from_millis(300)));
    // All 1,000 calls in flight together, as the test means: the bound on connections per host lifted.
    let bot = Bot::builder(rsa_config(server.rsa_endpoints())).seed(7).max_connections_per_host(TASKS).build().unwrap();
    let before = bot.tokens().await.unwrap();
    // Warm-up: 1,000 calls held in flight together open 1,000 keep-alive connections. Opening them during the
    // storm itself would overflow the fake's listen backlog (128), and the SYN retries (1 s) would let the
    // re-login finish before some tasks' first call: those would never see a 401.
    assert!(storm(&bot).await.iter().all(Result::is_ok));
    {
        let mut pod = server.pod();
        pod.expire_sessions();
        // Every call is held 1 s by the fake, so that all 1,000 are sent with the old tokens before the first 401
        // comes back (a task that asks for tokens after that waits for the re-login instead of hitting 401).
        pod.set_latency(Endpoint::SessionInfo, Duration::from_secs(1));
        pod.reset_counters();
    }
    for result in storm(&bot).await {
        assert_eq!(result.unwrap().username, BOT);
    }
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1, "exactly one re-login");
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1);
    // On a quiet machine every task sends before the first 401 comes back, so all 1,000 meet it; on a loaded one
    // the late ones find the new tokens first. Either way: one login, and one 200 per task.
    let unauthorized = counters.responses(Endpoint::SessionInfo, 401);
    assert!((1..=TASKS as u64).contains(&unauthorized), "{unauthorized} tasks met the 401");
    assert_eq!(counters.responses(Endpoint::SessionInfo, 200), TASKS as u64, "every task ended with a 200");
    assert_eq!(bot.tokens().await.unwrap().generation().get(), before.generation().get() + 1);
}

/// The task leading a login is cancelled while the fake holds its answer: a waiting task takes over, the login
/// restarts once, and every waiter completes.
#[tokio::test]
async fn a_cancelled_leader_is_taken_over_by_a_waiter() {
    // Only the first login answer is delayed; the restarted login is answered at once.
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::Delay(Duration::from_secs(30))));
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).build().unwrap();

    let leader = tokio::spawn({
        let bot = bot.clone();
        async move { bot.tokens().await }
    });
    wait_for("the first login to be in flight", || server.in_flight() == 1).await;
    let waiters: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn({
                let bot = bot.clone();
                async move { bot.tokens().await }
            })
        })
        .collect();
    // On this current-thread runtime one yield lets every waiter run up to its wait.
    tokio::task::yield_now().await;
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1, "the waiters did not log in themselves");

    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    for waiter in waiters {
        assert_eq!(waiter.await.unwrap().unwrap().generation().get(), 1);
    }
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2, "the login restarted exactly once");
}

/// The same on a multi-thread runtime, where waiters may still be arriving when the leader is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_on_a_multi_thread_runtime_strands_no_waiter() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::Delay(Duration::from_secs(30))));
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).build().unwrap();
    let leader = tokio::spawn({
        let bot = bot.clone();
        async move { bot.tokens().await }
    });
    wait_for("the first login to be in flight", || server.in_flight() == 1).await;
    let waiters: Vec<_> = (0..200)
        .map(|_| {
            tokio::spawn({
                let bot = bot.clone();
                async move { bot.tokens().await }
            })
        })
        .collect();
    leader.abort();
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
    })
    .await;
    assert!(waited.is_ok(), "a waiter hung");
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
}

/// A leader that panics (here in the event hook, on the first retry) is taken over like a cancelled one.
#[tokio::test]
async fn a_panicking_leader_is_taken_over_by_a_waiter() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status(503)));
    let panicked = Arc::new(AtomicBool::new(false));
    let hook = {
        let panicked = Arc::clone(&panicked);
        move |event: &symphony_auth_core::Event| {
            if matches!(event, symphony_auth_core::Event::RetryScheduled { .. })
                && !panicked.swap(true, Ordering::SeqCst)
            {
                panic!("the event hook fails");
            }
        }
    };
    let bot = Bot::builder(pod_only(rsa_config(server.rsa_endpoints()))).on_event(hook).build().unwrap();
    // On this current-thread runtime the first task leads and the others are waiting before the 503 arrives.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let bot = bot.clone();
            tokio::spawn(async move { bot.tokens().await })
        })
        .collect();
    let mut panics = 0;
    for task in tasks {
        match task.await {
            Ok(tokens) => assert_eq!(tokens.unwrap().generation().get(), 1),
            Err(error) => {
                assert!(error.is_panic());
                panics += 1;
            }
        }
    }
    assert_eq!(panics, 1);
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2, "the login restarted once");
}

/// Callers wrapped in a short `timeout()` cancel the leader while it waits out a `Retry-After`: the wait holds for
/// whoever leads next, so no login is re-sent before it is due.
#[tokio::test]
async fn a_cancelled_leader_keeps_the_retry_after() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status_retry_after(503, 1)));
    let config = pod_only(rsa_config(server.rsa_endpoints())).with_retry(quick_retry(Duration::from_secs(5)));
    let bot = Bot::builder(config).build().unwrap();
    let started = tokio::time::Instant::now();
    for _ in 0..5 {
        let cancelled = tokio::time::timeout(Duration::from_millis(100), bot.tokens()).await;
        assert!(cancelled.is_err(), "the login waits for its Retry-After");
    }
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1, "cancelled leaders re-sent no login");
    let tokens = tokio::time::timeout(Duration::from_secs(10), bot.tokens()).await.expect("in time").unwrap();
    assert_eq!(tokens.generation().get(), 1);
    assert!(started.elapsed() >= Duration::from_secs(1), "the second login waited out the Retry-After");
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
}

#[tokio::test]
async fn an_skd_login_does_not_wait_for_a_slow_key_manager() {
    let server = server(|pod| {
        pod.set_skd(true);
        // Far longer than the test allows: a login that waited for it would time the test out.
        pod.inject(Endpoint::KeyManagerLogin, 1, Fault::Delay(Duration::from_secs(60)));
    });
    let bot = rsa_bot(&server);
    let tokens = tokio::time::timeout(Duration::from_secs(20), bot.tokens()).await.expect("in time").unwrap();
    assert!(tokens.key_manager().is_none() && tokens.simplified_key_delivery());
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
}
