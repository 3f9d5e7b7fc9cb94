//! End-to-end timings against the fake pod on loopback. Run it in release:
//!
//! ```text
//! cargo run --release -p symphony-auth-bench --example async_bench_login [-- --runs 25 --key 4096]
//! ```
//!
//! - cold login (a new bot, so new connections, two JWTs signed), parallel vs sequential, with 0 and 50 ms of
//!   fake latency on the two login endpoints: median of `--runs` runs;
//! - an API call with valid tokens, and one that meets a 401 (tokens expired on the fake), re-logs in and
//!   replays: medians;
//! - a storm: 1,000 tasks call the API at once on expired tokens: wall time, the 401s the fake answered, and the
//!   logins it caused.
//!
//! Prints a table, then one line of JSON. A wall-clock benchmark on a shared 2-core machine is noisy: compare
//! figures from the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use symphony_auth_async::Bot;
use symphony_auth_core::{Config, RsaSigner};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer};

const BOT: &str = "bench.bot";
const KEY_2048: (&[u8], &str) =
    (include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem"), include_str!("../../fixtures/keys/bot-2048.pub.pem"));
const KEY_4096: (&[u8], &str) =
    (include_bytes!("../../fixtures/keys/bot-4096.pkcs8.pem"), include_str!("../../fixtures/keys/bot-4096.pub.pem"));
const STORM_TASKS: usize = 1000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

struct Bench {
    server: FakePodServer,
    signer: Arc<RsaSigner>,
}

impl Bench {
    fn config(&self, parallel: bool) -> Config {
        Config::rsa(self.server.rsa_endpoints(), BOT, self.signer.clone()).unwrap().with_parallel_login(parallel)
    }

    fn set_login_latency(&self, latency: Duration) {
        let mut pod = self.server.pod();
        pod.set_latency(Endpoint::SessionLogin, latency);
        pod.set_latency(Endpoint::KeyManagerLogin, latency);
    }

    async fn cold_login(&self, parallel: bool, runs: usize) -> Duration {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let bot = Bot::builder(self.config(parallel)).build().unwrap();
            let started = Instant::now();
            bot.tokens().await.unwrap();
            samples.push(started.elapsed());
        }
        median(samples)
    }

    /// Medians of a call with valid tokens, and of one that meets a 401 and recovers.
    async fn recovery(&self, runs: usize) -> (Duration, Duration) {
        let bot = Bot::builder(self.config(true)).build().unwrap();
        bot.session_info().await.unwrap();
        let (mut plain, mut recovered) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let started = Instant::now();
            bot.session_info().await.unwrap();
            plain.push(started.elapsed());

            self.server.pod().expire_sessions();
            let started = Instant::now();
            bot.session_info().await.unwrap();
            recovered.push(started.elapsed());
        }
        (median(plain), median(recovered))
    }

    /// 1,000 tasks on expired tokens, released together; the bot's pool is warmed first so that the storm does
    /// not measure the fake's listen backlog.
    async fn storm(&self) -> (Duration, u64, u64, u64) {
        let bot = Bot::builder(self.config(true)).build().unwrap();
        bot.session_info().await.unwrap();
        self.server.pod().set_latency(Endpoint::SessionInfo, Duration::from_millis(300));
        run_storm(&bot).await;
        {
            let mut pod = self.server.pod();
            pod.set_latency(Endpoint::SessionInfo, Duration::ZERO);
            pod.expire_sessions();
            pod.reset_counters();
        }
        let elapsed = run_storm(&bot).await;
        let counters = self.server.counters();
        (
            elapsed,
            counters.requests(Endpoint::SessionLogin),
            counters.requests(Endpoint::KeyManagerLogin),
            counters.responses(Endpoint::SessionInfo, 401),
        )
    }
}

async fn run_storm(bot: &Bot) -> Duration {
    let start = Arc::new(tokio::sync::Barrier::new(STORM_TASKS + 1));
    let tasks: Vec<_> = (0..STORM_TASKS)
        .map(|_| {
            let (bot, start) = (bot.clone(), Arc::clone(&start));
            tokio::spawn(async move {
                start.wait().await;
                bot.session_info().await.unwrap();
            })
        })
        .collect();
    start.wait().await;
    let started = Instant::now();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut runs = 25usize;
    let mut key = KEY_4096;
    let mut key_bits = 4096;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().as_deref()) {
            ("--runs", Some(n)) => runs = n.parse::<usize>().expect("--runs takes a number").max(1),
            ("--key", Some("2048")) => (key, key_bits) = (KEY_2048, 2048),
            ("--key", Some("4096")) => (key, key_bits) = (KEY_4096, 4096),
            _ => {
                eprintln!("usage: bench_login [--runs N] [--key 2048|4096]");
                std::process::exit(2);
            }
        }
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: a debug build; run with --release for meaningful figures");
    }

    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, key.1).unwrap();
    let bench =
        Bench { server: FakePodServer::start(pod).unwrap(), signer: Arc::new(RsaSigner::from_pem(key.0).unwrap()) };

    let mut cold = serde_json::Map::new();
    println!("symphony-auth-async login benchmark: fake pod on loopback, RSA-{key_bits} key, median of {runs} runs");
    println!("{:<44} {:>10}", "measure", "ms");
    for latency_ms in [0u64, 50] {
        bench.set_login_latency(Duration::from_millis(latency_ms));
        for (name, parallel) in [("parallel", true), ("sequential", false)] {
            let median = bench.cold_login(parallel, runs).await;
            println!("{:<44} {:>10.3}", format!("cold login, {name}, {latency_ms} ms latency"), ms(median));
            cold.insert(format!("{name}_{latency_ms}ms"), json!(ms(median)));
        }
    }
    bench.set_login_latency(Duration::ZERO);

    let (plain, recovered) = bench.recovery(runs).await;
    println!("{:<44} {:>10.3}", "API call, valid tokens", ms(plain));
    println!("{:<44} {:>10.3}", "API call meeting a 401 (re-login + replay)", ms(recovered));

    let (elapsed, session_logins, km_logins, unauthorized) = bench.storm().await;
    println!("{:<44} {:>10.3}", format!("storm: {STORM_TASKS} tasks on expired tokens"), ms(elapsed));
    println!(
        "{:<44} {:>10}",
        "storm: logins caused (session + key manager)",
        format!("{session_logins} + {km_logins}")
    );
    println!("{:<44} {:>10}", "storm: calls answered 401", unauthorized);

    let summary = json!({
        "bench": "symphony-auth-async bench_login",
        "key_bits": key_bits,
        "runs": runs,
        "cold_login_median_ms": cold,
        "api_call_median_ms": ms(plain),
        "recovery_401_median_ms": ms(recovered),
        "storm": {
            "tasks": STORM_TASKS,
            "elapsed_ms": ms(elapsed),
            "session_logins": session_logins,
            "key_manager_logins": km_logins,
            "answered_401": unauthorized,
        },
    });
    println!("{summary}");
}
