//! Measure 6: `memory`, heap bytes per ready bot (built and logged in), both drivers; and the fake pod's RSA
//! logins per second.
//!
//! Memory: live heap bytes (the counting allocator) after N bots are built and logged in, minus before, over N. The
//! fake runs in a child process so that its sessions and connection buffers are not charged to the bots. What a
//! bot holds is counted: its machine and tokens, its HTTP client (each has its own rustls `ClientConfig` with the
//! Mozilla roots) and the idle connections its login left in the pool. The signer is shared and loaded before.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use symphony_auth_core::{
    DEFAULT_JWT_LIFETIME, Endpoints, JwtSigner, LoginEndpoint, RsaSigner, UnixTime, login_jwt, rsa_login,
};
use symphony_auth_testkit::Endpoint;
use tokio::runtime::Runtime;

use crate::alloc::live_bytes;
use crate::fixture::{self, BOT, ChildPod, KEY_4096};
use crate::stats::Table;

/// Bots per driver.
const BOTS: usize = 40;
/// Seconds per logins-per-second row, and the client threads of each row.
const RATE_TIME: Duration = Duration::from_secs(2);
const RATE_CLIENTS: [usize; 2] = [1, 2];

/// Live bytes, once the allocations of other threads have settled (a freed connection of an earlier measure, a
/// runtime worker finishing a task): the median of a few readings a few milliseconds apart.
pub(crate) fn settled_live_bytes() -> isize {
    let mut readings: Vec<isize> = (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            live_bytes()
        })
        .collect();
    readings.sort_unstable();
    readings[2]
}

#[derive(Debug)]
struct PerBot {
    bytes_per_bot: f64,
    retained_after_drop_per_bot: f64,
}

fn blocking(endpoints: &Endpoints, signer: &Arc<dyn JwtSigner>, parallel: bool) -> PerBot {
    let make = || {
        let bot = fixture::blocking_bot(fixture::config(endpoints, Arc::clone(signer), parallel));
        bot.tokens().expect("login");
        bot
    };
    drop(make()); // one-time lazy initialisation is not a per-bot cost
    let before = settled_live_bytes();
    let bots: Vec<_> = (0..BOTS).map(|_| make()).collect();
    let after = settled_live_bytes();
    drop(bots);
    let dropped = settled_live_bytes();
    per_bot(before, after, dropped)
}

fn asynchronous(rt: &Runtime, endpoints: &Endpoints, signer: &Arc<dyn JwtSigner>, parallel: bool) -> PerBot {
    let make = || async {
        let bot = fixture::async_bot(fixture::config(endpoints, Arc::clone(signer), parallel));
        bot.tokens().await.expect("login");
        bot
    };
    drop(rt.block_on(make()));
    let before = settled_live_bytes();
    let bots = rt.block_on(async {
        let mut bots = Vec::with_capacity(BOTS);
        for _ in 0..BOTS {
            bots.push(make().await);
        }
        bots
    });
    let after = settled_live_bytes();
    // Dropping a reqwest client ends its connection tasks on the runtime; give them a moment.
    drop(bots);
    let dropped = settled_live_bytes();
    per_bot(before, after, dropped)
}

fn per_bot(before: isize, after: isize, dropped: isize) -> PerBot {
    PerBot {
        bytes_per_bot: (after - before) as f64 / BOTS as f64,
        retained_after_drop_per_bot: (dropped - before) as f64 / BOTS as f64,
    }
}

/// The fake's RSA session logins per second: `clients` threads post pre-signed login requests back to back (the
/// JWTs are signed before the clock starts, so the figure is the fake's: JWT check, RS512 verification, session
/// token signing, loopback HTTP).
fn logins_per_second(clients: usize, signer: &dyn JwtSigner) -> (f64, u64) {
    let server = fixture::fake_pod(KEY_4096.1);
    let endpoints = server.rsa_endpoints();
    let now = UnixTime::from_system_time(SystemTime::now());
    let jwt = login_jwt(BOT, now, DEFAULT_JWT_LIFETIME, signer).expect("signs");
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
    assert_eq!(server.counters().responses(Endpoint::SessionLogin, 200), logins);
    (logins as f64 / elapsed.as_secs_f64(), logins)
}

/// Returns (`memory`, `fake_pod_logins_per_s`).
pub(crate) fn run(rt: &Runtime) -> (Value, Value) {
    let signer: Arc<dyn JwtSigner> = Arc::new(RsaSigner::from_pem(KEY_4096.0).expect("fixture key"));

    // A parallel login leaves two idle connections in the bot's pool (one per login endpoint, here on the same
    // host), a sequential one a single connection: both are shown, as pooled connections are most of the cost.
    let child = ChildPod::start();
    let mut measured = Vec::new();
    for (mode, parallel) in [("parallel", true), ("sequential", false)] {
        measured.push(("blocking", mode, blocking(&child.endpoints, &signer, parallel)));
        measured.push(("async", mode, asynchronous(rt, &child.endpoints, &signer, parallel)));
    }
    drop(child);
    let mut table = Table::new(
        format!("memory: live heap bytes per ready bot (built + logged in; fake pod in a child process), {BOTS} bots"),
        &["driver", "login", "bytes per bot", "KiB per bot", "left after drop, per bot"],
    );
    let mut memory = json!({ "bots": BOTS });
    for (driver, mode, m) in measured {
        table.row(vec![
            driver.into(),
            mode.into(),
            format!("{:.0}", m.bytes_per_bot),
            format!("{:.1}", m.bytes_per_bot / 1024.0),
            format!("{:.0}", m.retained_after_drop_per_bot),
        ]);
        memory[driver][mode] = json!({
            "bytes_per_bot": m.bytes_per_bot.round(),
            "retained_after_drop_bytes_per_bot": m.retained_after_drop_per_bot.round(),
        });
    }
    table.print();

    let mut table = Table::new(
        format!(
            "fake pod: RSA session logins per second (4096-bit bot key, pre-signed JWT, {}s per row)",
            RATE_TIME.as_secs()
        ),
        &["client threads", "logins", "logins/s"],
    );
    let mut rate = json!({ "key_bits": 4096 });
    for clients in RATE_CLIENTS {
        let (per_second, logins) = logins_per_second(clients, signer.as_ref());
        table.row(vec![clients.to_string(), logins.to_string(), format!("{per_second:.0}")]);
        rate[format!("clients_{clients}")] = json!(per_second.round());
    }
    table.print();
    (memory, rate)
}
