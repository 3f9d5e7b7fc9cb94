//! Measure 7, `fleet`: a platform's case, [`BOTS`] bots in one process (distinct usernames, one 4096-bit key
//! registered for all of them on the fake, one signer shared), per driver: all cold-start at once, then all meet a
//! 401 at once (the fake ends every session) and re-log in. The fake runs in a child process, so that this
//! process's CPU time, heap and RSS are the bots' alone; its own CPU time is shown beside.
//!
//! Figures per phase: wall time, logins per second, this process's CPU time per login (user + system, from
//! `/proc/self/stat`), the fake's; peak RSS (`VmHWM`, reset before each driver through `/proc/self/clear_refs`);
//! and, after the cold start, the live heap per ready bot (the counting allocator). The floor beside each is what
//! the signatures alone cost: bots × signature time ÷ cores of wall time, one signature of CPU per login.
//!
//! Callers: a thread per bot for the blocking driver (a parallel login adds one more per bot while it runs), a
//! task per bot for the async driver (signatures on tokio's blocking pool).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use symphony_auth_core::{Config, DEFAULT_JWT_LIFETIME, Endpoints, JwtSigner, RingSigner, UnixTime, echo, login_jwt};
use symphony_auth_testkit::FakePod;
use tokio::runtime::Runtime;

use crate::fixture::{self, ChildPod, KEY_4096};
use crate::memory::settled_live_bytes;
use crate::stats::{Summary, Table, cell};

/// What an async fleet task does with its bot.
type Call = fn(symphony_auth_async::Bot) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Bots per driver.
pub(crate) const BOTS: usize = 1000;
/// Stack of each blocking caller thread: a login needs little, and a thousand default 2 MiB stacks would only
/// reserve address space.
const CALLER_STACK: usize = 256 * 1024;
/// The clock tick of `/proc/*/stat` times: `USER_HZ`, 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

fn username(index: usize) -> String {
    format!("fleet.bot.{index:04}")
}

/// Registers the fleet's bots on the fake, all with the fixture's 4096-bit public key (the fake allows one key
/// for many bots, as a pod does).
pub(crate) fn register(pod: &mut FakePod) {
    for index in 0..BOTS {
        pod.add_rsa_bot(&username(index), KEY_4096.1).expect("the fixture public key is accepted");
    }
}

/// User + system CPU seconds of process `pid` (`self` for this one), from fields 14 and 15 of `/proc/<pid>/stat`.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): utime is field 14, stime field 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / USER_HZ
}

/// `VmHWM` of this process, in KiB: the peak resident set since start or the last [`reset_peak_rss`].
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Restarts `VmHWM` from the current resident set (Linux 4.0+; ignored where refused), so that a driver's peak is
/// not the earlier measures'.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One phase of a driver's run: what the clock, the CPU and the fake saw.
#[derive(Debug)]
struct Phase {
    wall: Duration,
    cpu: f64,
    fake_cpu: f64,
    logins: u64,
}

/// Runs `work` and measures it.
fn phase(child: &mut ChildPod, work: impl FnOnce()) -> Phase {
    let fake = child.pid().to_string();
    let logins = |child: &mut ChildPod| child.command("logins").parse::<u64>().expect("a login count");
    let before = (logins(child), cpu_seconds("self"), cpu_seconds(&fake));
    let started = Instant::now();
    work();
    let wall = started.elapsed();
    Phase {
        wall,
        cpu: cpu_seconds("self") - before.1,
        fake_cpu: cpu_seconds(&fake) - before.2,
        logins: logins(child) - before.0,
    }
}

/// What a driver's fleet run gives.
#[derive(Debug)]
struct Run {
    cold: Phase,
    relogin: Phase,
    heap_per_bot: f64,
    peak_rss_kib: u64,
}

fn configs(endpoints: &Endpoints, signer: &Arc<dyn JwtSigner>) -> Vec<Config> {
    (0..BOTS)
        .map(|i| {
            Config::rsa(endpoints.clone(), &username(i), Arc::clone(signer))
                .expect("a valid configuration")
                .with_parallel_login(true)
        })
        .collect()
}

/// Runs `call` for every bot, a thread each, released together.
fn on_threads<B: Sync>(bots: &[B], call: impl Fn(&B) + Sync) {
    let start = Barrier::new(bots.len() + 1);
    std::thread::scope(|scope| {
        for bot in bots {
            let (start, call) = (&start, &call);
            std::thread::Builder::new()
                .stack_size(CALLER_STACK)
                .spawn_scoped(scope, move || {
                    start.wait();
                    call(bot);
                })
                .expect("a caller thread");
        }
        start.wait();
    });
}

fn blocking(child: &mut ChildPod, signer: &Arc<dyn JwtSigner>) -> Run {
    reset_peak_rss();
    let before = settled_live_bytes();
    let bots: Vec<_> = configs(&child.endpoints, signer).into_iter().map(fixture::blocking_bot).collect();
    let cold = phase(child, || {
        on_threads(&bots, |bot| {
            bot.tokens().expect("cold login");
        });
    });
    let heap_per_bot = (settled_live_bytes() - before) as f64 / BOTS as f64;
    assert_eq!(child.command("expire"), "expired");
    let relogin = phase(child, || {
        on_threads(&bots, |bot| {
            let response = bot.send(echo(bot.config().endpoints(), "fleet")).expect("echo after a 401");
            assert_eq!(response.status(), 200);
        });
    });
    let peak_rss_kib = peak_rss_kib();
    drop(bots);
    Run { cold, relogin, heap_per_bot, peak_rss_kib }
}

fn asynchronous(rt: &Runtime, child: &mut ChildPod, signer: &Arc<dyn JwtSigner>) -> Run {
    reset_peak_rss();
    let before = settled_live_bytes();
    let bots: Vec<_> = configs(&child.endpoints, signer).into_iter().map(fixture::async_bot).collect();
    let on_tasks = |call: Call| {
        rt.block_on(async {
            let start = Arc::new(tokio::sync::Barrier::new(BOTS + 1));
            let tasks: Vec<_> = bots
                .iter()
                .map(|bot| {
                    let (bot, start) = (bot.clone(), Arc::clone(&start));
                    tokio::spawn(async move {
                        start.wait().await;
                        call(bot).await;
                    })
                })
                .collect();
            start.wait().await;
            for task in tasks {
                task.await.expect("a fleet task");
            }
        });
    };
    let cold = phase(child, || {
        on_tasks(|bot| {
            Box::pin(async move {
                bot.tokens().await.expect("cold login");
            })
        });
    });
    let heap_per_bot = (settled_live_bytes() - before) as f64 / BOTS as f64;
    assert_eq!(child.command("expire"), "expired");
    let relogin = phase(child, || {
        on_tasks(|bot| {
            Box::pin(async move {
                let response = bot.send(echo(bot.config().endpoints(), "fleet")).await.expect("echo after a 401");
                assert_eq!(response.status(), 200);
            })
        });
    });
    let peak_rss_kib = peak_rss_kib();
    drop(bots);
    Run { cold, relogin, heap_per_bot, peak_rss_kib }
}

/// The median time of one login JWT with `signer` (what each login costs at least).
fn signature_seconds(signer: &dyn JwtSigner) -> f64 {
    let now = UnixTime::from_system_time(SystemTime::now());
    let samples: Vec<Duration> = (0..21)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(login_jwt("fleet.bot.0000", now, DEFAULT_JWT_LIFETIME, signer).expect("signs"));
            t.elapsed()
        })
        .collect();
    Summary::of(&samples[1..]).p50
}

pub(crate) fn run(rt: &Runtime, cores: usize) -> Value {
    // The fastest signer compiled into the bench: a fleet pays one signature per login.
    let signer: Arc<dyn JwtSigner> = Arc::new(RingSigner::from_pem(KEY_4096.0).expect("fixture key"));
    let sign_s = signature_seconds(signer.as_ref());
    let cores = cores.max(1);
    let floor_wall = BOTS as f64 * sign_s / cores as f64;
    let floor_rate = cores as f64 / sign_s;

    let mut child = ChildPod::start();
    let runs = [("blocking", blocking(&mut child, &signer)), ("async", asynchronous(rt, &mut child, &signer))];
    drop(child);

    let mut table = Table::new(
        format!(
            "fleet: {BOTS} bots (distinct users, RSA 4096, ring signer {:.2} ms, parallel login), one process, \
             fake pod in a child; floor = bots × signature ÷ {cores} cores",
            sign_s * 1e3
        ),
        &[
            "driver",
            "phase",
            "logins",
            "wall ms",
            "floor ms",
            "× floor",
            "logins/s",
            "floor/s",
            "CPU ms/login",
            "floor",
            "fake CPU ms/login",
            "peak RSS MiB",
            "heap/bot KiB",
        ],
    );
    let mut out = json!({
        "bots": BOTS,
        "key_bits": 4096,
        "signer": "ring",
        "sign_ms": (sign_s * 1e3 * 1000.0).round() / 1000.0,
        "cores": cores,
        "floor_wall_ms": (floor_wall * 1e3).round(),
        "floor_logins_per_s": floor_rate.round(),
    });
    for (driver, run) in &runs {
        for (name, phase) in [("cold_start", &run.cold), ("relogin_401", &run.relogin)] {
            let wall = phase.wall.as_secs_f64();
            let logins = phase.logins.max(1) as f64;
            table.row(vec![
                (*driver).into(),
                name.into(),
                phase.logins.to_string(),
                cell(wall * 1e3, 0),
                cell(floor_wall * 1e3, 0),
                cell(wall / floor_wall, 2),
                cell(BOTS as f64 / wall, 0),
                cell(floor_rate, 0),
                cell(phase.cpu / logins * 1e3, 2),
                cell(sign_s * 1e3, 2),
                cell(phase.fake_cpu / logins * 1e3, 2),
                cell(run.peak_rss_kib as f64 / 1024.0, 1),
                cell(run.heap_per_bot / 1024.0, 1),
            ]);
            out[*driver][name] = json!({
                "session_logins": phase.logins,
                "wall_ms": (wall * 1e3).round(),
                "times_floor": (wall / floor_wall * 100.0).round() / 100.0,
                "logins_per_s": (BOTS as f64 / wall).round(),
                "cpu_ms_per_login": (phase.cpu / logins * 1e3 * 100.0).round() / 100.0,
                "fake_cpu_ms_per_login": (phase.fake_cpu / logins * 1e3 * 100.0).round() / 100.0,
            });
        }
        out[*driver]["peak_rss_kib"] = json!(run.peak_rss_kib);
        out[*driver]["heap_bytes_per_ready_bot"] = json!(run.heap_per_bot.round());
    }
    table.print();
    out
}
