//! `fake-pod`: the fake pod, key manager and agent as a process, for other languages' test suites.
//!
//! ```text
//! fake-pod [--bind 127.0.0.1:0] [--rsa-bot NAME=PUBLIC_KEY.pem]... [--cert-bot NAME]... [--tls-dir DIR]
//!          [--app APPID=PUBLIC_KEY.pem]... [--cert-app APPID]... [--user ID:USERNAME[:installed]]...
//!          [--https] [--ecdsa] [--session-ttl SECONDS] [--skd] [--agent-version VERSION]
//!          [--login-rate-limit LOGINS/SECONDS] [--latency-ms N]
//!          [--extension-app APPID=PUBLIC_KEY.pem]... [--cert-extension-app APPID]... [--access-token-ttl SECONDS]
//! ```
//! When ready it prints one JSON line on stdout,
//! `{"pod":URL,"key_manager":URL,"agent":URL,"session_auth":URL,"key_auth":URL,"ca_cert":PATH|null}`,
//! each role on a port of its own, then serves until its stdin closes or it is terminated. Bad arguments: one line
//! on stderr, exit 2.
//!
//! While it serves, it reads commands from stdin, one per line, and answers each with one JSON line on stdout, so
//! that a test in another language can act on the fake and count what it saw:
//! - `expire`: every issued session and key-manager token is expired now (the next call with them gets 401);
//!   answers `{"expired":true}`;
//! - `counters`: answers `{"requests":{PATH:N,...}}`, the requests received per endpoint path (`/login/...`);
//! - `reset-counters`: sets them to zero; answers `{"reset":true}`.
//!
//! An unknown command answers `{"error":"..."}`.

use std::io::{self, BufRead as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer, LoginRateLimit, PkiKeys, Role};

const USAGE: &str = "usage: fake-pod [--bind 127.0.0.1:0] [--rsa-bot NAME=PUBLIC_KEY.pem]... \
[--cert-bot NAME]... [--app APPID=PUBLIC_KEY.pem]... [--cert-app APPID]... [--user ID:USERNAME[:installed]]... \
[--tls-dir DIR] [--https] [--ecdsa] [--session-ttl SECONDS] [--skd] \
[--agent-version VERSION] [--login-rate-limit LOGINS/SECONDS] [--latency-ms N] \
[--extension-app APPID=PUBLIC_KEY.pem]... [--cert-extension-app APPID]... [--access-token-ttl SECONDS]

  --bind ADDR               the pod's address; every other role listens on a free port of the same IP
  --rsa-bot NAME=FILE       registers an RSA bot with its SPKI PEM public key (repeatable)
  --cert-bot NAME           registers a certificate bot (repeatable); with --tls-dir its certificate is written
  --app APPID=FILE          registers an app (OBO) with its SPKI PEM public key (repeatable)
  --cert-app APPID          registers an app that logs in with a certificate (repeatable); written like a bot's
  --user ID:USERNAME[:installed]
                            registers a user apps may act for; OBO is refused unless `:installed` (repeatable)
  --tls-dir DIR             writes ca.pem and NAME-cert.pem, NAME-key.pem, NAME.pem per certificate bot or app
  --https                   serves the pod, key manager and agent over HTTPS (needs --tls-dir for the CA)
  --ecdsa                   ECDSA P-256 certificates instead of RSA 4096
  --session-ttl SECONDS     lifetime of issued tokens (default 3600)
  --skd                     session tokens grant simplified key delivery
  --agent-version VERSION   what /agent/v1/info reports (an agent before 24.12 refuses SKD sessions)
  --login-rate-limit N/S    at most N logins per S seconds on each login endpoint, then 429 with Retry-After
  --latency-ms N            delays every answer
  --extension-app ID=FILE   registers an RSA extension app with its SPKI PEM public key (repeatable)
  --cert-extension-app ID   registers a certificate extension app (repeatable); with --tls-dir its certificate
                            is written as the certificate bots' are
  --access-token-ttl SECS   lifetime of Common JWT access tokens from /login/idm/tokens (default 600)";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    bind: SocketAddr,
    rsa_bots: Vec<(String, PathBuf)>,
    cert_bots: Vec<String>,
    apps: Vec<(String, PathBuf)>,
    cert_apps: Vec<String>,
    users: Vec<(u64, String, bool)>,
    tls_dir: Option<PathBuf>,
    https: bool,
    ecdsa: bool,
    session_ttl: Option<Duration>,
    skd: bool,
    agent_version: Option<String>,
    login_rate_limit: Option<LoginRateLimit>,
    latency: Option<Duration>,
    extension_apps: Vec<(String, PathBuf)>,
    cert_extension_apps: Vec<String>,
    access_token_ttl: Option<Duration>,
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
    for (app_id, path) in &args.apps {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("--app {app_id}: cannot read {}: {e}", path.display())))?;
        pod.add_rsa_app(app_id, &pem).map_err(|e| Failure::Usage(format!("--app: {e}")))?;
    }
    for app_id in &args.cert_apps {
        pod.add_cert_app(app_id).map_err(|e| Failure::Usage(format!("--cert-app: {e}")))?;
    }
    for (id, username, installed) in &args.users {
        pod.add_user(*id, username, *installed).map_err(|e| Failure::Usage(format!("--user: {e}")))?;
    }
    if let Some(ttl) = args.session_ttl {
        pod.set_session_ttl(ttl);
    }
    pod.set_skd(args.skd);
    if let Some(version) = &args.agent_version {
        pod.set_agent_version(version.clone());
    }
    pod.set_login_rate_limit(args.login_rate_limit);
    if let Some(latency) = args.latency {
        pod.set_latency_all(latency);
    }
    for (app_id, path) in &args.extension_apps {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("--extension-app {app_id}: cannot read {}: {e}", path.display())))?;
        pod.add_extension_app(app_id, &pem).map_err(|e| Failure::Usage(format!("--extension-app: {e}")))?;
    }
    for app_id in &args.cert_extension_apps {
        pod.add_cert_extension_app(app_id);
    }
    if let Some(ttl) = args.access_token_ttl {
        pod.set_access_token_ttl(ttl);
    }

    let keys = if args.ecdsa { PkiKeys::EcdsaP256 } else { PkiKeys::Rsa4096 };
    let server = FakePodServer::builder(pod)
        .bind(args.bind)
        .https(args.https)
        .pki(keys)
        .start()
        .map_err(|e| Failure::Runtime(format!("cannot start: {e}")))?;
    let ca_cert = match &args.tls_dir {
        Some(dir) => Some(
            write_tls_dir(&server, dir, &args.cert_extension_apps)
                .map_err(|e| Failure::Runtime(format!("cannot write TLS files to {}: {e}", dir.display())))?,
        ),
        None => None,
    };

    let mut ready: Map<String, Value> =
        Role::ALL.iter().map(|&r| (r.name().to_owned(), server.url(r).into())).collect();
    ready.insert("ca_cert".to_owned(), ca_cert.map_or(Value::Null, |p| Value::String(p.display().to_string())));
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{}", Value::Object(ready))
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::Runtime(format!("cannot write to stdout: {e}")))?;
    drop(stdout);

    // Serve until stdin reaches end of file (or a read fails, which ends it as well); SIGTERM
    // keeps its default disposition and ends the process at once.
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = command(&server, line.trim());
        let mut stdout = io::stdout().lock();
        if writeln!(stdout, "{answer}").and_then(|()| stdout.flush()).is_err() {
            break;
        }
    }
    drop(server);
    Ok(())
}

/// Runs one stdin command against the fake; its answer, one JSON value.
fn command(server: &FakePodServer, command: &str) -> Value {
    match command {
        "expire" => {
            server.pod().expire_all();
            serde_json::json!({ "expired": true })
        }
        "counters" => {
            let pod = server.pod();
            let requests: Map<String, Value> = Endpoint::ALL
                .iter()
                .filter_map(|&e| Some((e.path()?.to_owned(), pod.counters().requests(e).into())))
                .collect();
            serde_json::json!({ "requests": requests })
        }
        "reset-counters" => {
            server.pod().reset_counters();
            serde_json::json!({ "reset": true })
        }
        other => serde_json::json!({ "error": format!("unknown command {other:?}: expire, counters, reset-counters") }),
    }
}

/// Writes `ca.pem` and, per certificate bot and certificate extension app, `NAME-cert.pem`, `NAME-key.pem` and
/// `NAME.pem`; returns the absolute path of `ca.pem`.
fn write_tls_dir(server: &FakePodServer, dir: &Path, cert_apps: &[String]) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, server.ca_pem())?;
    let mut apps = Vec::new();
    for app_id in cert_apps {
        apps.push(server.issue_client_identity(app_id).map_err(io::Error::other)?);
    }
    for identity in server.client_identities().chain(apps.iter()) {
        let name = identity.name();
        std::fs::write(dir.join(format!("{name}-cert.pem")), identity.cert_pem())?;
        std::fs::write(dir.join(format!("{name}-key.pem")), identity.key_pem())?;
        std::fs::write(dir.join(format!("{name}.pem")), identity.bundle_pem())?;
    }
    Ok(ca)
}

/// `ID:USERNAME` (the user has not installed the apps) or `ID:USERNAME:installed`.
fn parse_user(value: &str) -> Option<(u64, String, bool)> {
    let (id, rest) = value.split_once(':')?;
    let (username, installed) = match rest.rsplit_once(':') {
        Some((username, "installed")) => (username, true),
        _ => (rest, false),
    };
    let id = id.parse().ok()?;
    (!username.is_empty() && !username.contains(':')).then(|| (id, username.to_owned(), installed))
}

/// `Ok(None)` for `--help`. Accepts `--flag value` and `--flag=value`.
fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, Failure> {
    // One line on stderr, as the contract asks; the full usage is behind --help.
    let usage = |message: String| Failure::Usage(format!("{message} (see fake-pod --help)"));
    let mut args = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        rsa_bots: Vec::new(),
        cert_bots: Vec::new(),
        apps: Vec::new(),
        cert_apps: Vec::new(),
        users: Vec::new(),
        tls_dir: None,
        https: false,
        ecdsa: false,
        session_ttl: None,
        skd: false,
        agent_version: None,
        login_rate_limit: None,
        latency: None,
        extension_apps: Vec::new(),
        cert_extension_apps: Vec::new(),
        access_token_ttl: None,
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
            "--app" => {
                let v = value("APPID=PUBLIC_KEY.pem")?;
                let Some((app_id, path)) = v.split_once('=').filter(|(a, p)| !a.is_empty() && !p.is_empty()) else {
                    return Err(usage(format!("--app: {v:?} is not APPID=PUBLIC_KEY.pem")));
                };
                args.apps.push((app_id.to_owned(), PathBuf::from(path)));
            }
            "--cert-app" => args.cert_apps.push(value("an app id")?),
            "--user" => {
                let v = value("ID:USERNAME[:installed]")?;
                args.users.push(
                    parse_user(&v)
                        .ok_or_else(|| usage(format!("--user: {v:?} is not ID:USERNAME or ID:USERNAME:installed")))?,
                );
            }
            "--extension-app" => {
                let v = value("APPID=PUBLIC_KEY.pem")?;
                let Some((app_id, path)) = v.split_once('=').filter(|(n, p)| !n.is_empty() && !p.is_empty()) else {
                    return Err(usage(format!("--extension-app: {v:?} is not APPID=PUBLIC_KEY.pem")));
                };
                args.extension_apps.push((app_id.to_owned(), PathBuf::from(path)));
            }
            "--cert-extension-app" => args.cert_extension_apps.push(value("an app id")?),
            "--access-token-ttl" => {
                let v = value("a number of seconds")?;
                let secs =
                    v.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                        usage(format!("--access-token-ttl: {v:?} is not a positive number of seconds"))
                    })?;
                args.access_token_ttl = Some(Duration::from_secs(secs));
            }
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
            "--agent-version" => args.agent_version = Some(value("a version such as Agent-24.12.0")?),
            "--login-rate-limit" => {
                let v = value("LOGINS/SECONDS")?;
                let limit = v
                    .split_once('/')
                    .and_then(|(n, s)| Some((n.parse::<u32>().ok()?, s.parse::<u64>().ok().filter(|s| *s > 0)?)))
                    .ok_or_else(|| usage(format!("--login-rate-limit: {v:?} is not LOGINS/SECONDS, like 10/1")))?;
                args.login_rate_limit = Some(LoginRateLimit::new(limit.0, Duration::from_secs(limit.1)));
            }
            "--skd" if inline.is_none() => args.skd = true,
            "--https" if inline.is_none() => args.https = true,
            "--ecdsa" if inline.is_none() => args.ecdsa = true,
            _ => return Err(usage(format!("unknown argument {arg:?}"))),
        }
    }
    if args.https && args.tls_dir.is_none() {
        return Err(usage(
            "--https needs --tls-dir, where the CA certificate that clients must trust is written".into(),
        ));
    }
    Ok(Some(args))
}
