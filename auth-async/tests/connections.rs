//! How the bot holds connections: a storm of 1,000 tasks stays within the bound per host, in a process limited to
//! 256 file descriptors, with one login per storm; and bodies far larger than the connection buffers go through.
#![cfg(target_os = "linux")]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BOT, rsa_bot, server};
use symphony_auth_async::Bot;
use symphony_auth_core::driver::{DEFAULT_MAX_CONNECTIONS_PER_HOST, DEFAULT_READ_BUFFER, DEFAULT_WRITE_BUFFER};
use symphony_auth_testkit::{Endpoint, Role};

/// Set in the child that runs the storm under the descriptor limit.
const CHILD: &str = "SYMPHONY_AUTH_TEST_FD_LIMITED";
const FD_LIMIT: u64 = 256;
const TASKS: usize = 1000;

/// Runs `test` of this test binary again in a child process whose descriptor limit the shell lowers to
/// [`FD_LIMIT`] before `exec`, so that the limit covers that test alone. Fails when the child fails or runs past
/// `limit`.
fn in_fd_limited_child(test: &str, limit: Duration) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""))
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the fd-limited run of {test} failed: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the fd-limited run of {test} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits`.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// `TASKS` tasks released together, each sending an echo; every one must succeed with a 200.
async fn storm(bot: &Bot) {
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (bot, start) = (bot.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                bot.send(symphony_auth_core::echo(bot.config().endpoints(), "storm")).await
            })
        })
        .collect();
    for task in tasks {
        let response = task.await.unwrap().expect("every call succeeds");
        assert_eq!(response.status(), 200);
    }
}

/// 1,000 tasks on a bot with no tokens, then 1,000 on expired tokens, with a 256-descriptor limit: without the
/// bound each storm would open a connection per task (2,000 descriptors, client and fake side) and fail. With
/// it: every call succeeds, one login per storm, and no host sees more connections than the bound.
#[test]
fn a_storm_of_1000_tasks_uses_at_most_the_bound_of_connections_under_256_descriptors() {
    let name = "a_storm_of_1000_tasks_uses_at_most_the_bound_of_connections_under_256_descriptors";
    if std::env::var_os(CHILD).is_none() {
        return in_fd_limited_child(name, Duration::from_secs(180));
    }
    assert_eq!(open_files_limit(), Some(FD_LIMIT), "the child runs under the limit");
    let bound = DEFAULT_MAX_CONNECTIONS_PER_HOST;
    // A slow echo keeps the calls in flight together, so that the bound is what holds them back.
    let server = server(|pod| pod.set_latency(Endpoint::Echo, Duration::from_millis(20)));
    let bot = rsa_bot(&server);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), async {
            storm(&bot).await;
            let counters = server.counters();
            assert_eq!(counters.requests(Endpoint::SessionLogin), 1, "one login for the cold storm");
            assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1);
            {
                let mut pod = server.pod();
                pod.expire_sessions();
                pod.reset_counters();
            }
            storm(&bot).await;
            let counters = server.counters();
            assert_eq!(counters.requests(Endpoint::SessionLogin), 1, "one re-login for the 401 storm");
            assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1);
            assert!(counters.responses(Endpoint::Echo, 401) >= 1, "the storm met the expired session");
            assert_eq!(counters.responses(Endpoint::Echo, 200), TASKS as u64);
        })
        .await
        .expect("both storms end within 120 s");
    });
    // The bound holds requests in flight. hyper puts a connection back in its pool from the connection's own task,
    // after the answer was handed over, so the caller that takes the freed permit may find the pool empty for a
    // moment and open one more: a few connections over the bound, never one per task (1,000 without the bound).
    let slack = bound / 4;
    for role in [Role::Pod, Role::KeyManager, Role::Agent] {
        let accepted = server.accepted_connections(role);
        assert!(accepted <= (bound + slack) as u64, "{accepted} connections to the {} (bound {bound})", role.name());
        let peak = server.peak_open_connections(role);
        assert!(peak <= bound + slack, "{peak} connections open at once to the {} (bound {bound})", role.name());
    }
    assert_eq!(server.peak_in_flight_of(Endpoint::Echo), bound, "the storm filled the bound, no more");
}

/// An echo of 512 KiB each way, far larger than the connection buffers, with the default settings.
#[tokio::test]
async fn bodies_larger_than_the_buffers_go_through() {
    let server = server(|_| {});
    let bot = rsa_bot(&server);
    let message = "x".repeat(512 * 1024);
    assert!(message.len() > 16 * DEFAULT_READ_BUFFER.max(DEFAULT_WRITE_BUFFER));
    let request = symphony_auth_core::echo(bot.config().endpoints(), &message);
    let sent = request.body().clone();
    let response = bot.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body().len(), sent.len());
    assert!(*response.body() == sent, "the echo came back unchanged");
    assert_eq!(bot.session_info().await.unwrap().username, BOT, "the connection is usable afterwards");
}
