//! The whole thing in one command: `cargo run -p symphony-auth-examples --example quickstart`.
//!
//! With no settings it starts the embedded fake pod, key manager and agent (auth-testkit, certificate listener
//! included), logs a bot in by RSA and another by certificate with the blocking driver and with the async driver,
//! calls sessioninfo and echo, expires every session on the fake and shows the automatic re-login, then lets a
//! crowd of callers call at once on expired tokens and counts the 401s they met and the logins that caused. With `SYMPHONY_CONFIG=config.yaml` (a BDK
//! configuration file) it logs in to that real pod instead.

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use symphony_auth_core::{ClientIdentity, Config, RsaSigner, Tokens, echo};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer};

const RSA_BOT: &str = "quickstart.rsa";
const CERT_BOT: &str = "quickstart.cert";
const KEY: &[u8] = include_bytes!("../../fixtures/keys/bot-4096.pkcs8.pem");
const PUBLIC_KEY: &str = include_str!("../../fixtures/keys/bot-4096.pub.pem");

/// One line of the final table.
struct Row {
    driver: &'static str,
    bot: &'static str,
    step: &'static str,
    result: String,
    elapsed: Duration,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn describe(tokens: &Tokens) -> String {
    let km = match (tokens.key_manager(), tokens.simplified_key_delivery()) {
        (Some(_), _) => "session + key-manager tokens",
        (None, true) => "session token (key manager skipped: SKD)",
        (None, false) => "session token only",
    };
    format!("generation {}, {km}", tokens.generation())
}

fn main() -> Result<(), Box<dyn Error>> {
    match std::env::var_os("SYMPHONY_CONFIG") {
        Some(path) => real_pod(path.as_ref()),
        None => embedded_fake_pod(),
    }
}

fn embedded_fake_pod() -> Result<(), Box<dyn Error>> {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(RSA_BOT, PUBLIC_KEY)?;
    pod.add_cert_bot(CERT_BOT)?;
    let server = FakePodServer::start(pod)?;
    println!("embedded fake pod: {} (plain), {} (mutual TLS)\n", server.pod_url(), server.session_auth_url());

    let rsa_config = || -> Result<Config, Box<dyn Error>> {
        let signer = Arc::new(RsaSigner::from_pem(KEY)?);
        Ok(Config::rsa(server.rsa_endpoints(), RSA_BOT, signer)?)
    };
    let cert_config =
        || -> Result<Config, Box<dyn Error>> { Ok(Config::certificate(server.cert_endpoints(), CERT_BOT)?) };
    let identity = || -> Result<ClientIdentity, Box<dyn Error>> {
        let bundle =
            server.client_identity(CERT_BOT).ok_or("no client certificate for the certificate bot")?.bundle_pem();
        Ok(ClientIdentity::from_pem(bundle.as_bytes())?)
    };
    let ca = server.ca_pem().as_bytes();
    let mut rows = Vec::new();

    // Blocking driver.
    let blocking_rsa = symphony_auth_blocking::Bot::builder(rsa_config()?).build()?;
    let blocking_cert = symphony_auth_blocking::Bot::builder(cert_config()?)
        .extra_root_certificates_pem(ca)?
        .client_identity(identity()?)
        .build()?;
    for (bot, name) in [(&blocking_rsa, "RSA"), (&blocking_cert, "certificate")] {
        let (tokens, t) = timed(|| bot.tokens());
        rows.push(Row { driver: "blocking", bot: name, step: "login", result: describe(&*tokens?), elapsed: t });
        let (info, t) = timed(|| bot.session_info());
        let info = info?;
        rows.push(Row {
            driver: "blocking",
            bot: name,
            step: "sessioninfo",
            result: format!("{} is user {}", info.username, info.id),
            elapsed: t,
        });
        let (response, t) = timed(|| bot.send(echo(bot.config().endpoints(), "hello")));
        rows.push(Row {
            driver: "blocking",
            bot: name,
            step: "echo",
            result: format!("HTTP {}", response?.status()),
            elapsed: t,
        });
    }

    // Async driver, on a runtime of its own.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let async_rsa = symphony_auth_async::Bot::builder(rsa_config()?).build()?;
    let async_cert = symphony_auth_async::Bot::builder(cert_config()?)
        .extra_root_certificates_pem(ca)?
        .client_identity(identity()?)
        .build()?;
    runtime.block_on(async {
        for (bot, name) in [(&async_rsa, "RSA"), (&async_cert, "certificate")] {
            let start = Instant::now();
            let tokens = bot.tokens().await?;
            rows.push(Row {
                driver: "async",
                bot: name,
                step: "login",
                result: describe(&tokens),
                elapsed: start.elapsed(),
            });
            let start = Instant::now();
            let info = bot.session_info().await?;
            rows.push(Row {
                driver: "async",
                bot: name,
                step: "sessioninfo",
                result: format!("{} is user {}", info.username, info.id),
                elapsed: start.elapsed(),
            });
            let start = Instant::now();
            let response = bot.send(echo(bot.config().endpoints(), "hello")).await?;
            rows.push(Row {
                driver: "async",
                bot: name,
                step: "echo",
                result: format!("HTTP {}", response.status()),
                elapsed: start.elapsed(),
            });
        }
        Ok::<(), Box<dyn Error>>(())
    })?;

    // Every session dies on the fake; the next call meets a 401, logs in again once, and is replayed.
    let logins = |server: &FakePodServer| server.counters().requests(Endpoint::SessionLogin);
    server.pod().expire_all();
    let before = logins(&server);
    let (response, t) = timed(|| blocking_rsa.send(echo(blocking_rsa.config().endpoints(), "after expiry")));
    rows.push(Row {
        driver: "blocking",
        bot: "RSA",
        step: "echo after expiry",
        result: format!(
            "HTTP {} after {} re-login(s); now {}",
            response?.status(),
            logins(&server) - before,
            describe(&*blocking_rsa.tokens()?)
        ),
        elapsed: t,
    });

    // 64 threads call at once on expired tokens: those that meet a 401 share one login with the rest.
    let refused = |server: &FakePodServer| server.counters().responses(Endpoint::Echo, 401);
    server.pod().expire_all();
    let (before, refused_before) = (logins(&server), refused(&server));
    let (results, t) = timed(|| {
        std::thread::scope(|scope| {
            let calls: Vec<_> = (0..64)
                .map(|_| {
                    scope.spawn(|| {
                        blocking_rsa.send(echo(blocking_rsa.config().endpoints(), "storm")).map(|r| r.status())
                    })
                })
                .collect();
            calls.into_iter().map(|c| c.join().expect("a caller panicked")).collect::<Vec<_>>()
        })
    });
    let ok = results.iter().filter(|r| matches!(r, Ok(s) if *s == 200)).count();
    rows.push(Row {
        driver: "blocking",
        bot: "RSA",
        step: "64 threads, expired",
        result: format!(
            "{ok}/64 OK, {} met a 401, {} login(s)",
            refused(&server) - refused_before,
            logins(&server) - before
        ),
        elapsed: t,
    });

    // The same with 1,000 async tasks.
    server.pod().expire_all();
    let (before, refused_before) = (logins(&server), refused(&server));
    let start = Instant::now();
    let ok = runtime.block_on(async {
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let bot = async_rsa.clone();
                tokio::spawn(async move { bot.send(echo(bot.config().endpoints(), "storm")).await.map(|r| r.status()) })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            if matches!(task.await, Ok(Ok(status)) if status == 200) {
                ok += 1;
            }
        }
        ok
    });
    rows.push(Row {
        driver: "async",
        bot: "RSA",
        step: "1,000 tasks, expired",
        result: format!(
            "{ok}/1000 OK, {} met a 401, {} login(s)",
            refused(&server) - refused_before,
            logins(&server) - before
        ),
        elapsed: start.elapsed(),
    });

    print_table(&rows);
    // The run is a check too: every call answered 200, and each crowd cost exactly one login.
    let bad = rows.iter().filter(|r| r.result.starts_with("HTTP") && !r.result.starts_with("HTTP 200 ")).count()
        + rows.iter().filter(|r| r.step.ends_with("expired") && !r.result.ends_with(" 1 login(s)")).count();
    if bad > 0 {
        return Err(format!("{bad} step(s) did not go as expected").into());
    }
    Ok(())
}

fn real_pod(path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    println!("logging in to the pod configured in {}\n", path.display());
    let bot = symphony_auth_blocking::Bot::from_config_file(path)?;
    let mut rows = Vec::new();
    let (tokens, t) = timed(|| bot.tokens());
    rows.push(Row { driver: "blocking", bot: "configured", step: "login", result: describe(&*tokens?), elapsed: t });
    let (info, t) = timed(|| bot.session_info());
    let info = info?;
    rows.push(Row {
        driver: "blocking",
        bot: "configured",
        step: "sessioninfo",
        result: format!("{} is user {}", info.username, info.id),
        elapsed: t,
    });
    let (response, t) = timed(|| bot.send(echo(bot.config().endpoints(), "hello from symphony-auth")));
    rows.push(Row {
        driver: "blocking",
        bot: "configured",
        step: "echo",
        result: format!("HTTP {}", response?.status()),
        elapsed: t,
    });
    let (tokens, t) = timed(|| bot.refresh());
    rows.push(Row { driver: "blocking", bot: "configured", step: "refresh", result: describe(&*tokens?), elapsed: t });
    print_table(&rows);
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!("{:<9} {:<12} {:<20} {:>9}  result", "driver", "bot", "step", "ms");
    println!("{}", "-".repeat(100));
    for row in rows {
        println!(
            "{:<9} {:<12} {:<20} {:>9.1}  {}",
            row.driver,
            row.bot,
            row.step,
            row.elapsed.as_secs_f64() * 1000.0,
            row.result
        );
    }
}
