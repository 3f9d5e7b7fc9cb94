//! Measure 3, `recovery_ms`: an API call answered 401 → the replayed call's response, both drivers.
//!
//! Each run expires the fake's sessions, then times one `send(echo)`: the 401, the shared re-login, the replay's
//! 200. The floor is one login round trip plus one request, measured on the same warm bot just before: `refresh()`
//! (a forced login over pooled connections) and a plain `send(echo)`. Recovery minus that floor is what the driver
//! adds; any sleep in the path would show there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_core::{JwtSigner, echo};
use symphony_auth_testkit::{Endpoint, FakePodServer};
use tokio::runtime::Runtime;

use crate::fixture::{self, KEY_4096};
use crate::stats::{Summary, Table, cell, ms};

/// Runs per driver: at least 20, for a stable median.
const RUNS: usize = 25;

/// Samples of (recovery, refresh, plain call).
type Samples = (Vec<Duration>, Vec<Duration>, Vec<Duration>);

fn blocking(server: &FakePodServer, signer: &Arc<dyn JwtSigner>) -> Samples {
    let bot = fixture::blocking_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let call = || {
        let response = bot.send(echo(bot.config().endpoints(), "bench")).expect("echo (blocking)");
        assert_eq!(response.status(), 200);
    };
    call(); // logs in, opens the connections
    let (mut recovery, mut refresh, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        call();
        plain.push(t.elapsed());
        let t = Instant::now();
        bot.refresh().expect("refresh (blocking)");
        refresh.push(t.elapsed());
        server.pod().expire_sessions();
        let t = Instant::now();
        call();
        recovery.push(t.elapsed());
    }
    (recovery, refresh, plain)
}

fn asynchronous(rt: &Runtime, server: &FakePodServer, signer: &Arc<dyn JwtSigner>) -> Samples {
    let bot = fixture::async_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    rt.block_on(async {
        let call = || async {
            let response = bot.send(echo(bot.config().endpoints(), "bench")).await.expect("echo (async)");
            assert_eq!(response.status(), 200);
        };
        call().await;
        let (mut recovery, mut refresh, mut plain) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let t = Instant::now();
            call().await;
            plain.push(t.elapsed());
            let t = Instant::now();
            bot.refresh().await.expect("refresh (async)");
            refresh.push(t.elapsed());
            server.pod().expire_sessions();
            let t = Instant::now();
            call().await;
            recovery.push(t.elapsed());
        }
        (recovery, refresh, plain)
    })
}

pub(crate) fn run(rt: &Runtime) -> Value {
    let (_, signer) = fixture::fastest_signer(KEY_4096.0);
    let server = fixture::fake_pod(KEY_4096.1);
    let mut table = Table::new(
        format!(
            "recovery_ms: echo answered 401 -> re-login -> replay answered 200; RSA 4096, parallel login, \
             0 ms latency, {RUNS} runs, ms"
        ),
        &["driver", "p50 ms", "p90 ms", "floor ms", "= login ms", "+ call ms", "p50 - floor"],
    );
    let mut out = json!({ "key_bits": 4096, "runs": RUNS });
    for driver in ["blocking", "async"] {
        server.pod().reset_counters();
        let (recovery, refresh, plain) =
            if driver == "async" { asynchronous(rt, &server, &signer) } else { blocking(&server, &signer) };
        // One login to start, one per refresh, one per recovery: a recovery that logged in twice would show here.
        let logins = server.counters().requests(Endpoint::SessionLogin);
        assert_eq!(logins, 1 + 2 * RUNS as u64, "{driver}: one login per recovery");
        let (r, l, c) = (Summary::of(&recovery), Summary::of(&refresh), Summary::of(&plain));
        let floor = l.p50 + c.p50;
        table.row(vec![
            driver.into(),
            cell(r.p50 * 1e3, 2),
            cell(r.p90 * 1e3, 2),
            cell(floor * 1e3, 2),
            cell(l.p50 * 1e3, 2),
            cell(c.p50 * 1e3, 3),
            cell((r.p50 - floor) * 1e3, 2),
        ]);
        let mut entry = r.json_ms();
        entry["floor_ms"] = json!(ms(floor));
        entry["login_p50_ms"] = json!(ms(l.p50));
        entry["call_p50_ms"] = json!(ms(c.p50));
        entry["over_floor_ms"] = json!(ms(r.p50 - floor));
        entry["session_logins"] = json!(logins);
        out[driver] = entry;
    }
    table.print();
    out
}
