//! Measure 2, `sign_us`: µs per login JWT with every signer backend (`rsa`, `ring`, `aws-lc`), 2048 and 4096 bits;
//! a check that all produce the same JWT (RS512 is deterministic, so they must, byte for byte); and the hardware
//! floor: the fastest backend's 4096-bit signature, and the logins per second per core it allows.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_core::{DEFAULT_JWT_LIFETIME, JwtSigner, SignerBackend, UnixTime, login_jwt};

use crate::fixture::{BOT, KEY_2048, KEY_4096};
use crate::stats::{Summary, Table, cell};

/// At least this many signatures per row, and at least [`MIN_TIME`] of them.
const MIN_RUNS: usize = 20;
const MIN_TIME: Duration = Duration::from_millis(1500);

/// The CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds, Linux); `None` elsewhere.
///
/// Why: on a shared machine the wall time of a signature includes the time other processes held the core; the CPU
/// time does not, so the hardware floor is computed from it when it can be read.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Times `login_jwt` (claims, base64, signature: what the machine does per login request) with `signer`: the
/// wall-time summary, and the mean CPU µs per JWT when the platform tells it.
fn time_signer(signer: &dyn JwtSigner) -> (Summary, Option<f64>) {
    let now = UnixTime::from_secs(1_700_000_000);
    // One untimed signature: page in the key, warm the caches.
    login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer).expect("signs");
    let mut samples = Vec::new();
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    while samples.len() < MIN_RUNS || started.elapsed() < MIN_TIME {
        let t = Instant::now();
        let jwt = login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer).expect("signs");
        samples.push(t.elapsed());
        std::hint::black_box(jwt);
    }
    let cpu_us = cpu_before.zip(thread_cpu_ns()).map(|(a, b)| b.saturating_sub(a) as f64 / 1e3 / samples.len() as f64);
    (Summary::of(&samples), cpu_us)
}

/// The result: the JSON under `sign_us` (with its `hardware_floor`), and the median in ms of one 4096-bit
/// signature by the fastest backend compiled in, the one the other measures' bots use (their floors use it).
pub(crate) fn run() -> (Value, f64) {
    let backends: Vec<SignerBackend> = SignerBackend::compiled().collect();
    let fastest = SignerBackend::fastest().expect("the bench compiles every signer");
    let mut table = Table::new(
        "sign_us: one login JWT (claims + base64 + RS512 signature), µs",
        &["signer", "bits", "runs", "p50 µs", "p99 µs", "mean µs", "CPU µs", "same JWT"],
    );
    let mut out = serde_json::Map::new();
    let mut fastest_4096_us = 0.0;
    for (bits, (private, _)) in [(2048, KEY_2048), (4096, KEY_4096)] {
        let now = UnixTime::from_secs(1_700_000_000);
        let signers: Vec<_> =
            backends.iter().map(|backend| (*backend, backend.load_pem(private).expect("fixture key"))).collect();
        let jwts: Vec<_> = signers
            .iter()
            .map(|(_, signer)| login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer.as_ref()).expect("signs"))
            .collect();
        let same = jwts.windows(2).all(|pair| pair[0].expose_secret() == pair[1].expose_secret());
        assert!(same, "the signers {backends:?} disagree on a {bits}-bit JWT");
        for (backend, signer) in &signers {
            let (s, cpu_us) = time_signer(signer.as_ref());
            if *backend == fastest && bits == 4096 {
                fastest_4096_us = cpu_us.unwrap_or(s.p50 * 1e6);
            }
            table.row(vec![
                backend.name().into(),
                bits.to_string(),
                s.n.to_string(),
                cell(s.p50 * 1e6, 1),
                cell(s.p99 * 1e6, 1),
                cell(s.mean * 1e6, 1),
                cpu_us.map_or_else(|| "-".into(), |us| cell(us, 1)),
                same.to_string(),
            ]);
            let mut figures = s.json_us();
            figures["cpu_us"] = json!(cpu_us.map(|us| (us * 10.0).round() / 10.0));
            // `aws_lc_4096`: JSON keys keep the `rsa_4096` / `ring_4096` shape.
            out.insert(format!("{}_{bits}", backend.name().replace('-', "_")), figures);
        }
        out.insert(format!("same_jwt_{bits}"), json!(same));
    }
    table.print();
    // One core signs one JWT at a time: a login needs one signature, so this is the most logins a core can start
    // per second, whatever the network and the pod do.
    let per_core = 1e6 / fastest_4096_us;
    println!(
        "hardware floor: {fastest} signs a 4096-bit login JWT in {fastest_4096_us:.1} µs of CPU (the p50 wall time \
         where CPU time is unknown): at most {per_core:.0} logins/s per core"
    );
    out.insert(
        "hardware_floor".into(),
        json!({
            "signer": fastest.name(),
            "key_bits": 4096,
            "sign_us": (fastest_4096_us * 10.0).round() / 10.0,
            "logins_per_s_per_core": per_core.round(),
        }),
    );
    (Value::Object(out), fastest_4096_us / 1e3)
}
