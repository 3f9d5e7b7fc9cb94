//! Cold-login and 401-recovery wall times against the fake pod on loopback. Run in release:
//!
//! ```text
//! cargo run --release -p symphony-auth-bench --example bench_login [-- runs]
//! ```
//!
//! For each key size (2048, 4096 bits, test-only fixtures), fake latency per login endpoint (0, 50 ms) and mode
//! (parallel, sequential), it builds a fresh bot (new HTTP client, no pooled connection) `runs` times (default 25)
//! and times `tokens()`: signing both JWTs, the two logins, and the fake's signature checks. Then, with a warm bot,
//! it expires the pod's sessions and times an API call that is answered 401, re-logs in and is replayed. Prints a
//! table of medians and one final JSON line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use symphony_auth_blocking::Bot;
use symphony_auth_blocking::symphony_auth_core::{self, Config, RsaSigner};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer};

const KEYS: [(u32, &[u8], &str); 2] = [
    (
        2048,
        include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem"),
        include_str!("../../fixtures/keys/bot-2048.pub.pem"),
    ),
    (
        4096,
        include_bytes!("../../fixtures/keys/bot-4096.pkcs8.pem"),
        include_str!("../../fixtures/keys/bot-4096.pub.pem"),
    ),
];
const LATENCIES_MS: [u64; 2] = [0, 50];

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = samples.len();
    let median = if n % 2 == 1 { ms(samples[n / 2]) } else { (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0 };
    Stats { median, min: ms(samples[0]), max: ms(samples[n - 1]) }
}

fn server(public_key: &str, latency: Duration) -> FakePodServer {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bench-bot", public_key).expect("fixture key");
    pod.set_latency(Endpoint::SessionLogin, latency);
    pod.set_latency(Endpoint::KeyManagerLogin, latency);
    FakePodServer::start(pod).expect("fake pod starts")
}

fn bot(server: &FakePodServer, signer: &Arc<RsaSigner>, parallel: bool) -> Bot {
    let config = Config::rsa(server.rsa_endpoints(), "bench-bot", Arc::<RsaSigner>::clone(signer)).expect("config");
    Bot::builder(config.with_parallel_login(parallel)).seed(1).build().expect("bot builds")
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(25).max(1);
    let mut json_logins = Vec::new();
    let mut json_recovery = Vec::new();
    println!("cold login, {runs} runs each (ms)");
    println!("{:>5} {:>10} {:>11} {:>9} {:>8} {:>8}", "bits", "latency", "mode", "median", "min", "max");
    for (bits, private_key, public_key) in KEYS {
        let signer = Arc::new(RsaSigner::from_pem(private_key).expect("fixture key"));
        for latency_ms in LATENCIES_MS {
            let server = server(public_key, Duration::from_millis(latency_ms));
            let mut medians = [0.0; 2];
            for (slot, parallel) in [true, false].into_iter().enumerate() {
                // One warm-up login, not counted.
                bot(&server, &signer, parallel).tokens().expect("login");
                let samples = (0..runs)
                    .map(|_| {
                        let bot = bot(&server, &signer, parallel);
                        let started = Instant::now();
                        bot.tokens().expect("login");
                        started.elapsed()
                    })
                    .collect();
                let s = stats(samples);
                let mode = if parallel { "parallel" } else { "sequential" };
                println!(
                    "{bits:>5} {:>10} {mode:>11} {:>9.2} {:>8.2} {:>8.2}",
                    format!("{latency_ms} ms"),
                    s.median,
                    s.min,
                    s.max
                );
                medians[slot] = s.median;
                json_logins.push(format!(
                    r#"{{"bits":{bits},"latency_ms":{latency_ms},"mode":"{mode}","median_ms":{:.3},"min_ms":{:.3},"max_ms":{:.3}}}"#,
                    s.median, s.min, s.max
                ));
            }
            println!("{:>5} {:>10} {:>11} {:>8.2}x", "", "", "speed-up", medians[1] / medians[0]);
        }
    }

    println!();
    println!(
        "401 recovery: echo answered 401, shared re-login, replay -> 200; 2048-bit key, parallel ({runs} runs, ms)"
    );
    println!("{:>10} {:>14} {:>14}", "latency", "plain echo", "401 recovery");
    let (_, private_key, public_key) = KEYS[0];
    let signer = Arc::new(RsaSigner::from_pem(private_key).expect("fixture key"));
    for latency_ms in LATENCIES_MS {
        let server = server(public_key, Duration::from_millis(latency_ms));
        let bot = bot(&server, &signer, true);
        let echo = || {
            let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "bench")).expect("echo");
            assert_eq!(response.status(), 200);
        };
        echo();
        let mut plain = Vec::with_capacity(runs);
        let mut recovery = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            echo();
            plain.push(started.elapsed());
            server.pod().expire_sessions();
            let started = Instant::now();
            echo();
            recovery.push(started.elapsed());
        }
        let logins = server.counters().requests(Endpoint::SessionLogin);
        assert_eq!(logins, 1 + runs as u64, "one re-login per recovery");
        let (plain, recovery) = (stats(plain), stats(recovery));
        println!("{:>10} {:>14.2} {:>14.2}", format!("{latency_ms} ms"), plain.median, recovery.median);
        json_recovery.push(format!(
            r#"{{"bits":2048,"latency_ms":{latency_ms},"plain_echo_median_ms":{:.3},"recovery_median_ms":{:.3},"recovery_min_ms":{:.3},"recovery_max_ms":{:.3}}}"#,
            plain.median, recovery.median, recovery.min, recovery.max
        ));
    }
    println!(
        r#"{{"bench":"symphony-auth-blocking cold login","runs":{runs},"logins":[{}],"recovery_401":[{}]}}"#,
        json_logins.join(","),
        json_recovery.join(",")
    );
}
