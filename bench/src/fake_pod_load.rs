//! Measure `fake_pod_load`: the fake pod's RSA session logins per second with 1, 2 and 8 client threads, so that
//! whoever load-tests against it knows what it carries.
//!
//! The clients post one pre-signed login request back to back (the JWT is signed before the clock starts), so the
//! figure is the fake's: JWT check, RS512 verification, issuing the session token, loopback HTTP. The fake runs in
//! this process and shares its cores with the clients, as it would in a test suite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use symphony_auth_core::{DEFAULT_JWT_LIFETIME, LoginEndpoint, UnixTime, login_jwt, rsa_login};
use symphony_auth_testkit::Endpoint;

use crate::fixture::{self, BOT, KEY_4096};
use crate::stats::Table;

/// Seconds per row.
const RATE_TIME: Duration = Duration::from_secs(2);
/// Client threads per row.
const CLIENTS: [usize; 3] = [1, 2, 8];

/// Logins per second with `clients` threads, and how many logins that was.
fn logins_per_second(clients: usize) -> (f64, u64) {
    let server = fixture::fake_pod(KEY_4096.1);
    let endpoints = server.rsa_endpoints();
    let (_, signer) = fixture::fastest_signer(KEY_4096.0);
    let now = UnixTime::from_system_time(SystemTime::now());
    let jwt = login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer.as_ref()).expect("signs");
    let request = rsa_login(LoginEndpoint::RsaSession, &endpoints, &jwt);
    let logins = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let agent = fixture::bare_ureq();
                while started.elapsed() < RATE_TIME {
                    let mut response = agent.run(request.clone()).expect("login request");
                    assert_eq!(response.status(), 200, "the fake refused a login");
                    let _ = response.body_mut().read_to_vec().expect("body");
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let logins = logins.into_inner();
    // Every login counted by the clients was a 200 the fake itself served.
    assert_eq!(server.counters().responses(Endpoint::SessionLogin, 200), logins);
    (logins as f64 / elapsed.as_secs_f64(), logins)
}

/// The JSON under `fake_pod_load`.
pub(crate) fn run() -> Value {
    let mut table = Table::new(
        format!(
            "fake_pod_load: the fake pod's RSA session logins per second (4096-bit bot key, pre-signed JWT, {}s per row)",
            RATE_TIME.as_secs()
        ),
        &["client threads", "logins", "logins/s"],
    );
    let mut out = json!({ "key_bits": 4096, "seconds_per_row": RATE_TIME.as_secs() });
    for clients in CLIENTS {
        let (per_second, logins) = logins_per_second(clients);
        table.row(vec![clients.to_string(), logins.to_string(), format!("{per_second:.0}")]);
        out[format!("clients_{clients}")] = json!(per_second.round());
    }
    table.print();
    out
}
