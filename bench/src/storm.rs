//! Measure 4, `storm`: many callers meet a 401 on the same token generation at once. 1,000 tokio tasks share one
//! async bot; 64 threads share one blocking bot. The fake counts the logins (must be exactly one session login and
//! one key-manager login) and the 401s it answered; the time runs from releasing the callers to the last replay's
//! answer.
//!
//! Two variants per driver. With no latency on the echo, the first 401 comes back at once and the re-login may end
//! before the last callers have sent their first attempt: those simply use the new tokens (the fake's 401 count
//! says how many met one). With [`ECHO_LATENCY`] on the echo, every first attempt reaches the fake (which decides
//! 401 on arrival) before the first 401 is answered, so every caller meets a 401 on the same generation, the
//! case that matters; its time includes two echo latencies (the first attempts and the replays).
//!
//! Before each storm the callers make one untimed round of calls with valid tokens, so that the bot's connection
//! pool holds what it will keep (reqwest keeps every idle connection; ureq keeps 3 per host by default): the storm
//! then measures the single flight, not the fake's accept queue.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_core::{JwtSigner, RsaSigner, echo};
use symphony_auth_testkit::{Endpoint, FakePodServer, Role};
use tokio::runtime::Runtime;

use crate::fixture::{self, KEY_4096};
use crate::stats::{Table, ms};

const TASKS: usize = 1000;
const THREADS: usize = 64;
/// The fake's latency on the echo in the "same generation" variant.
const ECHO_LATENCY: Duration = Duration::from_millis(50);

/// What the fake saw during a storm, and how long it took.
#[derive(Debug)]
struct Outcome {
    callers: usize,
    elapsed: Duration,
    session_logins: u64,
    key_manager_logins: u64,
    answered_401: u64,
    answered_200: u64,
    /// Connections to the agent opened during the storm, and the most open at once (those the warm round left
    /// in the pool included).
    agent_connections_accepted: u64,
    agent_connections_peak_open: usize,
}

impl Outcome {
    fn read(server: &FakePodServer, callers: usize, elapsed: Duration) -> Self {
        let c = server.counters();
        Outcome {
            callers,
            elapsed,
            session_logins: c.requests(Endpoint::SessionLogin),
            key_manager_logins: c.requests(Endpoint::KeyManagerLogin),
            answered_401: c.responses(Endpoint::Echo, 401),
            answered_200: c.responses(Endpoint::Echo, 200),
            agent_connections_accepted: server.accepted_connections(Role::Agent),
            agent_connections_peak_open: server.peak_open_connections(Role::Agent),
        }
    }
}

/// Sets the echo latency, expires the sessions and zeroes the counters: the next round is the storm, and only it
/// is counted.
fn arm(server: &FakePodServer, echo_latency: Duration) {
    let mut pod = server.pod();
    pod.set_latency(Endpoint::Echo, echo_latency);
    pod.expire_sessions();
    pod.reset_counters();
    drop(pod);
    server.reset_connection_counts();
}

fn async_storm(rt: &Runtime, server: &FakePodServer, signer: &Arc<dyn JwtSigner>, echo_latency: Duration) -> Outcome {
    let bot = fixture::async_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let round = || async {
        let start = Arc::new(tokio::sync::Barrier::new(TASKS + 1));
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (bot, start) = (bot.clone(), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    let response = bot.send(echo(bot.config().endpoints(), "storm")).await.expect("storm echo");
                    assert_eq!(response.status(), 200);
                })
            })
            .collect();
        start.wait().await;
        let started = Instant::now();
        for task in tasks {
            task.await.expect("storm task");
        }
        started.elapsed()
    };
    rt.block_on(async {
        bot.tokens().await.expect("login");
        // Warm round: a slow echo makes all 1,000 calls overlap, so the pool ends up with a connection per task.
        server.pod().set_latency(Endpoint::Echo, Duration::from_millis(300));
        round().await;
        arm(server, echo_latency);
        let elapsed = round().await;
        Outcome::read(server, TASKS, elapsed)
    })
}

fn blocking_storm(server: &FakePodServer, signer: &Arc<dyn JwtSigner>, echo_latency: Duration) -> Outcome {
    let bot = fixture::blocking_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let round = || {
        let start = Barrier::new(THREADS + 1);
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    start.wait();
                    let response = bot.send(echo(bot.config().endpoints(), "storm")).expect("storm echo");
                    assert_eq!(response.status(), 200);
                });
            }
            start.wait();
            let started = Instant::now();
            // The scope joins every thread before returning; the time is taken after that.
            started
        })
        .elapsed()
    };
    bot.tokens().expect("login");
    server.pod().set_latency(Endpoint::Echo, Duration::ZERO);
    round();
    arm(server, echo_latency);
    let elapsed = round();
    Outcome::read(server, THREADS, elapsed)
}

pub(crate) fn run(rt: &Runtime) -> Value {
    let signer: Arc<dyn JwtSigner> = Arc::new(RsaSigner::from_pem(KEY_4096.0).expect("fixture key"));
    let server = fixture::fake_pod(KEY_4096.1);
    let mut table = Table::new(
        "storm: every caller's echo on expired tokens at once (RSA 4096, parallel login, 0 ms login latency)",
        &[
            "driver",
            "callers",
            "echo latency",
            "session logins",
            "km logins",
            "401s",
            "200s",
            "agent conns opened",
            "agent conns peak",
            "all done ms",
        ],
    );
    let mut out = json!({ "key_bits": 4096 });
    for echo_latency in [Duration::ZERO, ECHO_LATENCY] {
        let latency_ms = echo_latency.as_millis();
        for driver in ["async", "blocking"] {
            let outcome = if driver == "async" {
                async_storm(rt, &server, &signer, echo_latency)
            } else {
                blocking_storm(&server, &signer, echo_latency)
            };
            table.row(vec![
                driver.into(),
                outcome.callers.to_string(),
                format!("{latency_ms} ms"),
                outcome.session_logins.to_string(),
                outcome.key_manager_logins.to_string(),
                outcome.answered_401.to_string(),
                outcome.answered_200.to_string(),
                outcome.agent_connections_accepted.to_string(),
                outcome.agent_connections_peak_open.to_string(),
                format!("{:.2}", outcome.elapsed.as_secs_f64() * 1e3),
            ]);
            let callers = if driver == "async" { "tasks" } else { "threads" };
            out[driver][format!("echo_latency_{latency_ms}ms")] = json!({
                callers: outcome.callers,
                "session_logins": outcome.session_logins,
                "key_manager_logins": outcome.key_manager_logins,
                "answered_401": outcome.answered_401,
                "answered_200": outcome.answered_200,
                "agent_connections_opened": outcome.agent_connections_accepted,
                "agent_connections_peak_open": outcome.agent_connections_peak_open,
                "all_met_401": outcome.answered_401 == outcome.callers as u64,
                "all_replays_done_ms": ms(outcome.elapsed.as_secs_f64()),
                "one_login": outcome.session_logins == 1 && outcome.key_manager_logins == 1,
            });
        }
    }
    table.print();
    out
}
