//! `fake-pod`: the fake pod, key manager and agent as a process, for other languages' test suites.
//!
//! ```text
//! fake-pod [--bind 127.0.0.1:0] [--rsa-bot NAME=PUBLIC_KEY.pem]... [--cert-bot NAME]... [--tls-dir DIR]
//!          [--session-ttl SECONDS] [--skd] [--latency-ms N]
//! ```
//! When ready it prints one JSON line on stdout,
//! `{"pod":URL,"key_manager":URL,"agent":URL,"session_auth":URL,"key_auth":URL,"ca_cert":PATH|null}`,
//! then serves until its stdin closes or it is terminated. Bad arguments: one line on stderr, exit 2.

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use symphony_auth_testkit::{FakePod, FakePodServer};

const USAGE: &str = "usage: fake-pod [--bind 127.0.0.1:0] [--rsa-bot NAME=PUBLIC_KEY.pem]... \
[--cert-bot NAME]... [--tls-dir DIR] [--session-ttl SECONDS] [--skd] [--latency-ms N]";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    bind: SocketAddr,
    rsa_bots: Vec<(String, PathBuf)>,
    cert_bots: Vec<String>,
    tls_dir: Option<PathBuf>,
    session_ttl: Option<Duration>,
    skd: bool,
    latency: Option<Duration>,
}

/// Why the process stops early: a usage error exits 2, anything else 1.
enum Failure {
    Usage(String),
    Runtime(String),
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("fake-pod: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("fake-pod: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), Failure> {
    let Some(args) = parse_args(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let mut pod = FakePod::new();
    for (name, path) in &args.rsa_bots {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("--rsa-bot {name}: cannot read {}: {e}", path.display())))?;
        pod.add_rsa_bot(name, &pem).map_err(|e| Failure::Usage(format!("--rsa-bot: {e}")))?;
    }
    for name in &args.cert_bots {
        pod.add_cert_bot(name).map_err(|e| Failure::Usage(format!("--cert-bot: {e}")))?;
    }
    if let Some(ttl) = args.session_ttl {
        pod.set_session_ttl(ttl);
    }
    pod.set_skd(args.skd);
    if let Some(latency) = args.latency {
        pod.set_latency_all(latency);
    }

    let server = FakePodServer::start_on(pod, args.bind).map_err(|e| Failure::Runtime(format!("cannot start: {e}")))?;
    let ca_cert = match &args.tls_dir {
        Some(dir) => Some(
            write_tls_dir(&server, dir)
                .map_err(|e| Failure::Runtime(format!("cannot write TLS files to {}: {e}", dir.display())))?,
        ),
        None => None,
    };

    let http = Value::String(server.http_url());
    let mtls = Value::String(server.mtls_url());
    let ca = ca_cert.map_or(Value::Null, |p| Value::String(p.display().to_string()));
    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        r#"{{"pod":{http},"key_manager":{http},"agent":{http},"session_auth":{mtls},"key_auth":{mtls},"ca_cert":{ca}}}"#
    )
    .and_then(|()| stdout.flush())
    .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))?;
    drop(stdout);

    // Serve until stdin reaches end of file (or a read fails, which ends it as well); SIGTERM
    // keeps its default disposition and ends the process at once.
    let _ = io::stdin().lock().read_to_end(&mut Vec::new());
    drop(server);
    Ok(())
}

/// Writes `ca.pem` and, per certificate bot, `NAME-cert.pem`, `NAME-key.pem` and `NAME.pem`;
/// returns the absolute path of `ca.pem`.
fn write_tls_dir(server: &FakePodServer, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, server.ca_pem())?;
    for identity in server.client_identities() {
        let name = identity.name();
        std::fs::write(dir.join(format!("{name}-cert.pem")), identity.cert_pem())?;
        std::fs::write(dir.join(format!("{name}-key.pem")), identity.key_pem())?;
        std::fs::write(dir.join(format!("{name}.pem")), identity.bundle_pem())?;
    }
    Ok(ca)
}

/// `Ok(None)` for `--help`. Accepts `--flag value` and `--flag=value`.
fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, Failure> {
    // One line on stderr, as the contract asks; the full usage is behind --help.
    let usage = |message: String| Failure::Usage(format!("{message} (see fake-pod --help)"));
    let mut args = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        rsa_bots: Vec::new(),
        cert_bots: Vec::new(),
        tls_dir: None,
        session_ttl: None,
        skd: false,
        latency: None,
    };
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value =
            |what: &str| inline.clone().or_else(|| argv.next()).ok_or_else(|| usage(format!("{flag} needs {what}")));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bind" => {
                let v = value("an address like 127.0.0.1:0")?;
                args.bind = v.parse().map_err(|_| usage(format!("--bind: {v:?} is not an IP address and port")))?;
            }
            "--rsa-bot" => {
                let v = value("NAME=PUBLIC_KEY.pem")?;
                let Some((name, path)) = v.split_once('=').filter(|(n, p)| !n.is_empty() && !p.is_empty()) else {
                    return Err(usage(format!("--rsa-bot: {v:?} is not NAME=PUBLIC_KEY.pem")));
                };
                args.rsa_bots.push((name.to_owned(), PathBuf::from(path)));
            }
            "--cert-bot" => args.cert_bots.push(value("a bot name")?),
            "--tls-dir" => args.tls_dir = Some(PathBuf::from(value("a directory")?)),
            "--session-ttl" => {
                let v = value("a number of seconds")?;
                let secs = v
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| usage(format!("--session-ttl: {v:?} is not a positive number of seconds")))?;
                args.session_ttl = Some(Duration::from_secs(secs));
            }
            "--latency-ms" => {
                let v = value("a number of milliseconds")?;
                let ms = v
                    .parse::<u64>()
                    .map_err(|_| usage(format!("--latency-ms: {v:?} is not a number of milliseconds")))?;
                args.latency = Some(Duration::from_millis(ms));
            }
            "--skd" if inline.is_none() => args.skd = true,
            _ => return Err(usage(format!("unknown argument {arg:?}"))),
        }
    }
    Ok(Some(args))
}
