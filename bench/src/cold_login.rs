//! Measure 1, `cold_login_ms`: from no bot to ready tokens, RSA 4096-bit key, fake latency 0 and 50 ms on each login
//! endpoint, parallel vs sequential login, blocking and async driver.
//!
//! Each run builds a new `Bot` (so a new HTTP client with no pooled connection) and calls `tokens()`; the timed
//! span covers `build()` and the login: signing both JWTs, connecting, the two logins, the fake's signature checks.
//! The signer is loaded once and shared, as a real program would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_core::JwtSigner;
use symphony_auth_testkit::FakePodServer;
use tokio::runtime::Runtime;

use crate::fixture::{self, KEY_4096};
use crate::stats::{Summary, Table, cell};

/// Runs per cell: at least 20, for a stable median.
pub(crate) const RUNS: usize = 25;
const LATENCIES_MS: [u64; 2] = [0, 50];
const MODES: [(&str, bool); 2] = [("parallel", true), ("sequential", false)];

fn blocking(server: &FakePodServer, signer: &Arc<dyn JwtSigner>, parallel: bool) -> Summary {
    let endpoints = server.rsa_endpoints();
    let once = || {
        let started = Instant::now();
        let bot = fixture::blocking_bot(fixture::config(&endpoints, Arc::clone(signer), parallel));
        bot.tokens().expect("cold login (blocking)");
        started.elapsed()
    };
    once(); // warm-up, not counted
    let samples: Vec<Duration> = (0..RUNS).map(|_| once()).collect();
    Summary::of(&samples)
}

fn asynchronous(rt: &Runtime, server: &FakePodServer, signer: &Arc<dyn JwtSigner>, parallel: bool) -> Summary {
    let endpoints = server.rsa_endpoints();
    rt.block_on(async {
        let once = || async {
            let started = Instant::now();
            let bot = fixture::async_bot(fixture::config(&endpoints, Arc::clone(signer), parallel));
            bot.tokens().await.expect("cold login (async)");
            started.elapsed()
        };
        once().await; // warm-up, not counted
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            samples.push(once().await);
        }
        Summary::of(&samples)
    })
}

/// `sign_ms`: the median of one 4096-bit signature by the bots' signer (when measured), for the floor "one latency
/// plus one signature".
pub(crate) fn run(rt: &Runtime, sign_ms: Option<f64>) -> Value {
    let (backend, signer) = fixture::fastest_signer(KEY_4096.0);
    let server = fixture::fake_pod(KEY_4096.1);
    let mut table = Table::new(
        format!("cold_login_ms: new Bot + tokens(), RSA 4096 ({backend} signer), {RUNS} runs each, ms"),
        &["driver", "latency", "mode", "p50 ms", "p90 ms", "min ms", "max ms"],
    );
    let mut out = json!({ "key_bits": 4096, "signer": backend.name(), "runs": RUNS });
    for latency_ms in LATENCIES_MS {
        fixture::set_login_latency(&server, Duration::from_millis(latency_ms));
        for (driver, is_async) in [("blocking", false), ("async", true)] {
            for (mode, parallel) in MODES {
                let s = if is_async {
                    asynchronous(rt, &server, &signer, parallel)
                } else {
                    blocking(&server, &signer, parallel)
                };
                table.row(vec![
                    driver.into(),
                    format!("{latency_ms} ms"),
                    mode.into(),
                    cell(s.p50 * 1e3, 2),
                    cell(s.p90 * 1e3, 2),
                    cell(s.min * 1e3, 2),
                    cell(s.max * 1e3, 2),
                ]);
                out[driver][format!("latency_{latency_ms}ms")][mode] = s.json_ms();
            }
        }
    }
    table.print();
    // The floor for parallel at 50 ms: one latency plus one signature (the machine signs one JWT
    // and sends it to both login endpoints). The fake's own work (JWT check, signing the session token) and the
    // bot's construction come on top.
    if let Some(sign_ms) = sign_ms {
        let floor = 50.0 + sign_ms;
        println!("floor at 50 ms, parallel: one latency + one 4096-bit signature = {floor:.2} ms");
        out["floor_parallel_50ms_ms"] = json!((floor * 1e3).round() / 1e3);
    }
    out
}
