//! Measure 5, `send_overhead`: what `Bot::send` costs over the bare HTTP client on the same echo endpoint, and the
//! `tokens()` fast path (tokens already there) in ns per call with 1, 2 and 8 concurrent callers.
//!
//! The bare clients are set up as the drivers set up theirs (see `fixture`), and their requests carry the same
//! headers, added by hand from the bot's tokens. Calls alternate bot / bare so that drift on a shared machine hits
//! both sides alike.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_core::{JwtSigner, KEY_MANAGER_TOKEN_HEADER, SESSION_TOKEN_HEADER, Tokens, echo};
use symphony_auth_testkit::FakePodServer;
use tokio::runtime::Runtime;

use crate::fixture::{self, KEY_4096};
use crate::stats::{Summary, Table, cell, us};

/// Timed calls per side (at least 1,000, for a stable p99), after untimed warm-up calls.
const CALLS: usize = 2000;
const WARM_UP: usize = 200;
/// `tokens()` calls per row, shared among the callers.
const TOKEN_CALLS: usize = 1_000_000;
const CALLERS: [usize; 3] = [1, 2, 8];

/// The echo body the bot sends (`symphony_auth_core::echo(.., "bench")`), for the bare clients.
const BODY: &str = r#"{"message":"bench"}"#;

/// The two token header values, as a caller of the bare client would copy them.
fn headers(tokens: &Tokens) -> (String, String) {
    let session = tokens.session().expose_secret().to_owned();
    let km = tokens.key_manager().expect("the fake grants a key-manager token").expose_secret().to_owned();
    (session, km)
}

/// Samples of (bot, bare).
type Pair = (Vec<Duration>, Vec<Duration>);

fn blocking_send(server: &FakePodServer, signer: &Arc<dyn JwtSigner>) -> (Pair, symphony_auth_blocking::Bot) {
    let bot = fixture::blocking_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let agent = fixture::bare_ureq();
    let (session, km) = headers(&bot.tokens().expect("login"));
    let url = format!("{}/agent/v1/util/echo", server.agent_url());
    let via_bot = || {
        let response = bot.send(echo(bot.config().endpoints(), "bench")).expect("bot echo");
        assert_eq!(response.status(), 200);
        black_box(response);
    };
    let bare = || {
        let mut response = agent
            .post(&url)
            .header(SESSION_TOKEN_HEADER, &session)
            .header(KEY_MANAGER_TOKEN_HEADER, &km)
            .header("Content-Type", "application/json")
            .send(BODY)
            .expect("bare echo");
        assert_eq!(response.status(), 200);
        black_box(response.body_mut().read_to_vec().expect("body"));
    };
    for _ in 0..WARM_UP {
        via_bot();
        bare();
    }
    let (mut a, mut b) = (Vec::with_capacity(CALLS), Vec::with_capacity(CALLS));
    for i in 0..CALLS {
        // Which side goes first alternates too, so neither always follows the other.
        for bot_turn in [i % 2 == 0, i % 2 == 1] {
            let t = Instant::now();
            if bot_turn {
                via_bot();
                a.push(t.elapsed());
            } else {
                bare();
                b.push(t.elapsed());
            }
        }
    }
    ((a, b), bot)
}

fn async_send(rt: &Runtime, server: &FakePodServer, signer: &Arc<dyn JwtSigner>) -> (Pair, symphony_auth_async::Bot) {
    let bot = fixture::async_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let client = fixture::bare_reqwest();
    let url = format!("{}/agent/v1/util/echo", server.agent_url());
    let pair = rt.block_on(async {
        let (session, km) = headers(&bot.tokens().await.expect("login"));
        let via_bot = || async {
            let response = bot.send(echo(bot.config().endpoints(), "bench")).await.expect("bot echo");
            assert_eq!(response.status(), 200);
            black_box(response);
        };
        let bare = || async {
            let response = client
                .post(&url)
                .header(SESSION_TOKEN_HEADER, &session)
                .header(KEY_MANAGER_TOKEN_HEADER, &km)
                .header("Content-Type", "application/json")
                .body(BODY)
                .send()
                .await
                .expect("bare echo");
            assert_eq!(response.status(), 200);
            black_box(response.bytes().await.expect("body"));
        };
        for _ in 0..WARM_UP {
            via_bot().await;
            bare().await;
        }
        let (mut a, mut b) = (Vec::with_capacity(CALLS), Vec::with_capacity(CALLS));
        for i in 0..CALLS {
            for bot_turn in [i % 2 == 0, i % 2 == 1] {
                let t = Instant::now();
                if bot_turn {
                    via_bot().await;
                    a.push(t.elapsed());
                } else {
                    bare().await;
                    b.push(t.elapsed());
                }
            }
        }
        (a, b)
    });
    (pair, bot)
}

/// The fast path's cost: `aggregate` = wall time / all calls (throughput), `per_caller` = the mean of each
/// caller's own time per call (the latency a caller sees, waiting for the lock or a core included).
#[derive(Debug)]
struct FastPath {
    callers: usize,
    aggregate_ns: f64,
    per_caller_ns: f64,
}

fn fast_path_blocking(bot: &symphony_auth_blocking::Bot, callers: usize) -> FastPath {
    let each = TOKEN_CALLS / callers;
    let start = std::sync::Barrier::new(callers + 1);
    let (wall, per_caller) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..callers)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let t = Instant::now();
                    for _ in 0..each {
                        black_box(bot.tokens().expect("tokens"));
                    }
                    t.elapsed()
                })
            })
            .collect();
        start.wait();
        let t = Instant::now();
        let own: Vec<Duration> = handles.into_iter().map(|h| h.join().expect("caller thread")).collect();
        (t.elapsed(), own)
    });
    summarise(callers, each, wall, &per_caller)
}

fn fast_path_async(rt: &Runtime, bot: &symphony_auth_async::Bot, callers: usize) -> FastPath {
    let each = TOKEN_CALLS / callers;
    rt.block_on(async {
        let start = Arc::new(tokio::sync::Barrier::new(callers + 1));
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let (bot, start) = (bot.clone(), Arc::clone(&start));
                tokio::spawn(async move {
                    start.wait().await;
                    let t = Instant::now();
                    for _ in 0..each {
                        black_box(bot.tokens().await.expect("tokens"));
                    }
                    t.elapsed()
                })
            })
            .collect();
        start.wait().await;
        let t = Instant::now();
        let mut own = Vec::with_capacity(callers);
        for task in tasks {
            own.push(task.await.expect("caller task"));
        }
        summarise(callers, each, t.elapsed(), &own)
    })
}

fn summarise(callers: usize, each: usize, wall: Duration, own: &[Duration]) -> FastPath {
    let calls = (each * callers) as f64;
    let per_caller = own.iter().map(|d| d.as_secs_f64() * 1e9 / each as f64).sum::<f64>() / callers as f64;
    FastPath { callers, aggregate_ns: wall.as_secs_f64() * 1e9 / calls, per_caller_ns: per_caller }
}

pub(crate) fn run(rt: &Runtime) -> Value {
    let (_, signer) = fixture::fastest_signer(KEY_4096.0);
    let server = fixture::fake_pod(KEY_4096.1);

    let mut table = Table::new(
        format!(
            "send_overhead: echo via Bot::send vs the bare client (same settings, same headers), {CALLS} calls each, µs"
        ),
        &["driver", "client", "p50 µs", "p99 µs", "mean µs", "p50 overhead", "p99 overhead"],
    );
    let mut out = json!({ "calls": CALLS });
    let ((blocking_pair, blocking_bot), (async_pair, async_bot)) =
        (blocking_send(&server, &signer), async_send(rt, &server, &signer));
    for (driver, (bot, bare), bare_name) in
        [("blocking", blocking_pair, "ureq Agent"), ("async", async_pair, "reqwest Client")]
    {
        let (s, b) = (Summary::of(&bot), Summary::of(&bare));
        let row = |name: &str, x: &Summary, overhead: bool| {
            vec![
                driver.to_owned(),
                name.to_owned(),
                cell(x.p50 * 1e6, 1),
                cell(x.p99 * 1e6, 1),
                cell(x.mean * 1e6, 1),
                if overhead { cell((s.p50 - b.p50) * 1e6, 1) } else { String::new() },
                if overhead { cell((s.p99 - b.p99) * 1e6, 1) } else { String::new() },
            ]
        };
        table.row(row("Bot::send", &s, true));
        table.row(row(bare_name, &b, false));
        out[driver] = json!({
            "bot": s.json_us(),
            "bare": b.json_us(),
            "overhead_p50_us": us(s.p50 - b.p50),
            "overhead_p99_us": us(s.p99 - b.p99),
        });
    }
    table.print();

    let mut table = Table::new(
        format!("tokens() fast path (tokens present), {TOKEN_CALLS} calls per row shared by the callers, ns per call"),
        &["driver", "callers", "wall / all calls ns", "per caller ns"],
    );
    let mut fast = json!({ "calls_per_row": TOKEN_CALLS });
    for driver in ["blocking", "async"] {
        for callers in CALLERS {
            let f = if driver == "async" {
                fast_path_async(rt, &async_bot, callers)
            } else {
                fast_path_blocking(&blocking_bot, callers)
            };
            let unit = if driver == "async" { "tasks" } else { "threads" };
            table.row(vec![
                driver.into(),
                format!("{} {unit}", f.callers),
                cell(f.aggregate_ns, 1),
                cell(f.per_caller_ns, 1),
            ]);
            fast[driver][format!("{unit}_{callers}")] = json!({
                "ns_per_op": (f.aggregate_ns * 10.0).round() / 10.0,
                "per_caller_ns_per_op": (f.per_caller_ns * 10.0).round() / 10.0,
            });
        }
    }
    table.print();
    out["tokens_fast_path"] = fast;
    out
}
