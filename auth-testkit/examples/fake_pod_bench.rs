//! How many RSA logins per second the fake sustains on loopback, for 2048- and 4096-bit bot keys.
//!
//! The client signs its JWTs before the clock starts, so the figure measures the fake (JWT parse,
//! RS512 verify, session-token issue, HTTP) plus loopback HTTP and the client threads, not the client's signing.
//! The client and the fake share the machine's cores.
//!
//! ```text
//! cargo run --release -p symphony-auth-testkit --example fake_pod_bench [-- SECONDS_PER_ROW [WORKER_THREADS]]
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::PrivateKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::sha2::Sha512;
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer};

const KEYS: [(&str, &str, &str); 2] = [
    (
        "rsa2048",
        include_str!("../../fixtures/keys/bot-2048.pkcs8.pem"),
        include_str!("../../fixtures/keys/bot-2048.pub.pem"),
    ),
    (
        "rsa4096",
        include_str!("../../fixtures/keys/bot-4096.pkcs8.pem"),
        include_str!("../../fixtures/keys/bot-4096.pub.pem"),
    ),
];
const CLIENTS: [usize; 3] = [1, 2, 8];
/// Distinct pre-signed JWTs per key, used round robin (the pod does not refuse a replayed JWT).
const JWTS: usize = 32;

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let workers: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let mut pod = FakePod::new();
    for (name, _, public) in KEYS {
        pod.add_rsa_bot(name, public).expect("fixture key");
    }
    let server = FakePodServer::builder(pod).worker_threads(workers).start().expect("server starts");
    let url = format!("{}/login/pubkey/authenticate", server.pod_url());
    println!(
        "fake pod: {workers} worker thread(s), {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );

    println!("{:<8} {:>7} {:>8} {:>8} {:>10} {:>12}", "key", "clients", "logins", "seconds", "logins/s", "mean ms");
    let mut rows = Vec::new();
    for (name, private, _) in KEYS {
        let bodies = sign_bodies(name, private);
        let mut rates = Vec::new();
        for clients in CLIENTS {
            let (logins, elapsed, mean) = run(&url, &bodies, clients, Duration::from_secs(seconds));
            let rate = logins as f64 / elapsed.as_secs_f64();
            rates.push(format!("\"{clients}\":{rate:.0}"));
            println!(
                "{name:<8} {clients:>7} {logins:>8} {:>8.2} {rate:>10.0} {:>12.2}",
                elapsed.as_secs_f64(),
                mean.as_secs_f64() * 1000.0
            );
        }
        rows.push(format!("\"{name}\":{{{}}}", rates.join(",")));
    }
    let counters = server.counters();
    assert_eq!(
        counters.requests(Endpoint::SessionLogin),
        counters.responses(Endpoint::SessionLogin, 200),
        "every login succeeded"
    );
    // Logins per second by key, then by number of clients.
    println!(
        "{{\"bench\":\"fake_pod_rsa_logins_per_second\",\"seconds_per_row\":{seconds},\"workers\":{workers},{}}}",
        rows.join(",")
    );
}

/// `{"token": jwt}` bodies, signed now with exp = now + 290 s (the rows finish well within it).
fn sign_bodies(sub: &str, private_pem: &str) -> Vec<String> {
    let key = PrivateKey::from_pkcs8_pem(private_pem).expect("fixture key");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS512","typ":"JWT"}"#);
    (0..JWTS)
        .map(|i| {
            // A different exp per JWT makes each one distinct.
            let claims = format!(r#"{{"sub":"{sub}","exp":{}}}"#, now + 290 - i as u64);
            let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
            let signature = key.pkcs1v15_sign::<Sha512>(input.as_bytes()).expect("signs");
            format!(r#"{{"token":"{input}.{}"}}"#, URL_SAFE_NO_PAD.encode(signature))
        })
        .collect()
}

/// `clients` threads log in back to back for `duration`; returns (logins, elapsed, mean latency).
fn run(url: &str, bodies: &[String], clients: usize, duration: Duration) -> (u64, Duration, Duration) {
    let logins = AtomicU64::new(0);
    let busy_nanos = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for client in 0..clients {
            let (logins, busy_nanos) = (&logins, &busy_nanos);
            scope.spawn(move || {
                let agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().new_agent();
                let mut i = client;
                while start.elapsed() < duration {
                    let sent = Instant::now();
                    let mut response = agent
                        .post(url)
                        .header("Content-Type", "application/json")
                        .send(bodies[i % bodies.len()].as_str())
                        .expect("request");
                    let _ = response.body_mut().read_to_vec().expect("body");
                    assert_eq!(response.status().as_u16(), 200, "login refused");
                    busy_nanos.fetch_add(sent.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    logins.fetch_add(1, Ordering::Relaxed);
                    i += clients;
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let logins = logins.into_inner();
    let mean = Duration::from_nanos(busy_nanos.into_inner() / logins.max(1));
    (logins, elapsed, mean)
}
