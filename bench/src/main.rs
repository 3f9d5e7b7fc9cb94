//! The symphony-auth benchmarks, against the fake pod (auth-testkit) on loopback:
//!
//! ```text
//! cargo run --release -p symphony-auth-bench
//! ```
//!
//! 1. `cold_login_ms`: new bot → tokens, RSA 4096, fake latency 0 / 50 ms, parallel / sequential, both drivers;
//! 2. `sign_us`: µs per JWT, `rsa` vs `ring` vs `aws-lc` signer, 2048 / 4096 bits, the same JWT from all, and the
//!    hardware floor (the fastest signer's 4096-bit signature; logins/s per core);
//! 3. `recovery_ms`: a call answered 401 → the replay's answer, against the floor (one login + one call);
//! 4. `storm`: 1,000 tasks / 64 threads meet a 401 together: logins on the fake (must be 1), time to the end;
//! 5. `send_overhead`: `Bot::send` vs the bare HTTP client, p50 / p99; the `tokens()` fast path in ns;
//! 6. `memory`: heap bytes per ready bot; `fake_pod_logins_per_s`;
//! 7. `middleware_overhead`: each middleware (ureq, reqwest-middleware, tower) vs its bare client, p50 / p99.
//! 8. `fake_pod_load`: the fake pod's RSA logins per second for 1, 2 and 8 client threads.
//!
//! The bots of the measures sign with the fastest signer compiled in (`aws-lc`).
//! 9. `fleet`: 1,000 bots in one process cold-start at once, then meet a 401 at once, both drivers, against the
//!    floor (bots × signature time ÷ cores).
//!
//! Prints a table per measure, then, as the last line, one JSON object with every figure. Measure names as
//! arguments (`-- storm memory`) run only those.

mod alloc;
mod cold_login;
mod fake_pod_load;
mod fixture;
mod fleet;
mod memory;
mod middleware;
mod overhead;
mod recovery;
mod signing;
mod stats;
mod storm;

use std::time::Instant;

use serde_json::json;

/// The measures, by their JSON keys (`memory` includes `fake_pod_logins_per_s`).
const MEASURES: [&str; 9] = [
    "sign_us",
    "cold_login_ms",
    "recovery_ms",
    "storm",
    "send_overhead",
    "memory",
    "middleware_overhead",
    "fake_pod_load",
    "fleet",
];

/// Every allocation of the process is counted, for the memory measure.
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

/// The CPU model (first `model name` of `/proc/cpuinfo`) and the logical CPUs it lists.
fn machine() -> (String, usize) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").and_then(|rest| rest.split_once(':')))
        .map_or_else(|| "unknown".to_owned(), |(_, model)| model.trim().to_owned());
    let listed = cpuinfo.lines().filter(|line| line.starts_with("processor")).count();
    let cores = if listed > 0 { listed } else { std::thread::available_parallelism().map_or(0, usize::from) };
    (model, cores)
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(fixture::CHILD_FLAG) {
        fixture::serve_fake_pod_child();
        return;
    }
    let started = Instant::now();
    let (cpu_model, cores) = machine();
    let release = !cfg!(debug_assertions);
    println!("symphony-auth benchmarks: fake pod (auth-testkit) on loopback, plain HTTP");
    println!("machine: {cores} logical CPUs, {cpu_model}; {}", std::env::consts::ARCH);
    println!("command: cargo run --release -p symphony-auth-bench");
    if !release {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }

    // One runtime for the async driver, a worker per core (tokio's default).
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");

    // Every measure by default; names on the command line pick some (for working on one).
    let picked: Vec<String> = std::env::args().skip(1).collect();
    for name in &picked {
        assert!(MEASURES.contains(&name.as_str()), "unknown measure {name:?}; the measures are {MEASURES:?}");
    }
    let wanted = |name: &str| picked.is_empty() || picked.iter().any(|p| p == name);
    let mut figures = serde_json::Map::new();
    let mut sign_ms_4096 = None;
    if wanted("sign_us") {
        let (sign_us, fastest_4096_ms) = signing::run();
        sign_ms_4096 = Some(fastest_4096_ms);
        figures.insert("sign_us".into(), sign_us);
    }
    if wanted("cold_login_ms") {
        figures.insert("cold_login_ms".into(), cold_login::run(&rt, sign_ms_4096));
    }
    if wanted("recovery_ms") {
        figures.insert("recovery_ms".into(), recovery::run(&rt));
    }
    if wanted("storm") {
        figures.insert("storm".into(), storm::run(&rt));
    }
    if wanted("send_overhead") {
        figures.insert("send_overhead".into(), overhead::run(&rt));
    }
    if wanted("middleware_overhead") {
        figures.insert("middleware_overhead".into(), middleware::run(&rt));
    }
    if wanted("memory") {
        let (memory, fake_pod_logins_per_s) = memory::run(&rt);
        figures.insert("memory".into(), memory);
        figures.insert("fake_pod_logins_per_s".into(), fake_pod_logins_per_s);
    }
    if wanted("fake_pod_load") {
        figures.insert("fake_pod_load".into(), fake_pod_load::run());
    }
    if wanted("fleet") {
        figures.insert("fleet".into(), fleet::run(&rt, cores));
    }

    let wall = started.elapsed().as_secs_f64();
    println!();
    println!("wall time: {wall:.1} s");
    let mut summary = json!({
        "bench": "symphony-auth",
        "machine": { "cores": cores, "cpu_model": cpu_model, "arch": std::env::consts::ARCH },
        "release": release,
        "wall_s": (wall * 10.0).round() / 10.0,
    });
    summary.as_object_mut().expect("an object").extend(figures);
    println!("{summary}");
}
