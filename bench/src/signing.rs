//! Measure 2, `sign_us`: µs per login JWT with the `rsa` signer and the `ring` signer, 2048 and 4096 bits; and a
//! check that both produce the same JWT (RS512 is deterministic, so they must, byte for byte).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_core::{DEFAULT_JWT_LIFETIME, JwtSigner, RingSigner, RsaSigner, UnixTime, login_jwt};

use crate::fixture::{BOT, KEY_2048, KEY_4096};
use crate::stats::{Summary, Table, cell};

/// At least this many signatures per row, and at least [`MIN_TIME`] of them.
const MIN_RUNS: usize = 20;
const MIN_TIME: Duration = Duration::from_millis(1500);

/// Times `login_jwt` (claims, base64, signature: what the machine does per login request) with `signer`.
fn time_signer(signer: &dyn JwtSigner) -> Summary {
    let now = UnixTime::from_secs(1_700_000_000);
    // One untimed signature: page in the key, warm the caches.
    login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer).expect("signs");
    let mut samples = Vec::new();
    let started = Instant::now();
    while samples.len() < MIN_RUNS || started.elapsed() < MIN_TIME {
        let t = Instant::now();
        let jwt = login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer).expect("signs");
        samples.push(t.elapsed());
        std::hint::black_box(jwt);
    }
    Summary::of(&samples)
}

/// The result: the JSON under `sign_us`, and the 4096-bit `rsa` signer's median in ms (the cold-login floor uses
/// it).
pub(crate) fn run() -> (Value, f64) {
    let mut table = Table::new(
        "sign_us: one login JWT (claims + base64 + RS512 signature), µs",
        &["signer", "bits", "runs", "p50 µs", "p99 µs", "mean µs", "same JWT"],
    );
    let mut out = serde_json::Map::new();
    let mut rsa_4096_ms = 0.0;
    for (bits, (private, _)) in [(2048, KEY_2048), (4096, KEY_4096)] {
        let rsa = RsaSigner::from_pem(private).expect("fixture key");
        let ring = RingSigner::from_pem(private).expect("fixture key");
        let now = UnixTime::from_secs(1_700_000_000);
        let a = login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, &rsa).expect("signs");
        let b = login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, &ring).expect("signs");
        let same = a.expose_secret() == b.expose_secret();
        assert!(same, "the rsa and ring signers disagree on a {bits}-bit JWT");
        for (name, signer) in [("rsa", &rsa as &dyn JwtSigner), ("ring", &ring as &dyn JwtSigner)] {
            let s = time_signer(signer);
            if name == "rsa" && bits == 4096 {
                rsa_4096_ms = s.p50 * 1e3;
            }
            table.row(vec![
                name.into(),
                bits.to_string(),
                s.n.to_string(),
                cell(s.p50 * 1e6, 1),
                cell(s.p99 * 1e6, 1),
                cell(s.mean * 1e6, 1),
                same.to_string(),
            ]);
            out.insert(format!("{name}_{bits}"), s.json_us());
        }
        out.insert(format!("same_jwt_{bits}"), json!(same));
    }
    table.print();
    (Value::Object(out), rsa_4096_ms)
}
