//! The `fake-pod` binary as other projects use it: a process, one JSON line, files, stdin to stop.

mod common;

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::net::{agent, read};
use common::*;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fake-pod");

fn fixture(name: &str) -> String {
    format!("{}/../fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("fake-pod-{tag}-{}-{nanos}", std::process::id()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the child if a test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Running, Value) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (running, ready)
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10)); // polling the exit, not standing in for it
    }
}

#[test]
fn binary_serves_rsa_and_certificate_logins_then_exits_on_stdin_close() {
    let dir = TempDir::new("tls");
    let pub_key = format!("bot={}", fixture("bot-2048.pub.pem"));
    let (mut running, ready) = start(&[
        "--rsa-bot",
        &pub_key,
        "--cert-bot",
        "certbot",
        "--tls-dir",
        dir.0.to_str().unwrap(),
        "--session-ttl",
        "120",
        "--skd",
    ]);
    let keys: Vec<&str> = ready.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{ready}");
    let url = |role: &str| ready[role].as_str().unwrap_or_else(|| panic!("no {role} in {ready}")).to_owned();
    let (pod, km, agent_url, session_auth, key_auth) =
        (url("pod"), url("key_manager"), url("agent"), url("session_auth"), url("key_auth"));
    for plain in [&pod, &km, &agent_url] {
        assert!(plain.starts_with("http://127.0.0.1:"), "{ready}");
    }
    for mutual in [&session_auth, &key_auth] {
        assert!(mutual.starts_with("https://127.0.0.1:"), "{ready}");
    }
    let distinct: std::collections::BTreeSet<&String> = [&pod, &km, &agent_url, &session_auth, &key_auth].into();
    assert_eq!(distinct.len(), 5, "one listener per role: {ready}");
    let ca_path = PathBuf::from(ready["ca_cert"].as_str().unwrap());
    assert!(ca_path.is_absolute());
    assert_eq!(ca_path, dir.0.canonicalize().unwrap().join("ca.pem"));

    // RSA login over plain HTTP; SKD and the lifetime show in the session token.
    let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(SystemTime::now()) + 240);
    let http = agent(None, None);
    let (status, body) = read(
        http.post(format!("{pod}/login/pubkey/authenticate"))
            .header("Content-Type", "application/json")
            .send(json!({ "token": jwt }).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let claims = claims(body["token"].as_str().unwrap());
    assert_eq!(claims["canUseSimplifiedKeyDelivery"], true);
    assert!(claims["exp"].as_u64().unwrap() <= secs(SystemTime::now()) + 120);
    // Not on the key manager's host.
    let (status, _) = read(
        http.post(format!("{km}/login/pubkey/authenticate"))
            .header("Content-Type", "application/json")
            .send(json!({ "token": jwt }).to_string()),
    );
    assert_eq!(status, 404);

    // Certificate login over mutual TLS with the written files.
    let ca = std::fs::read_to_string(&ca_path).unwrap();
    let cert = std::fs::read_to_string(dir.0.join("certbot-cert.pem")).unwrap();
    let key_pem = std::fs::read_to_string(dir.0.join("certbot-key.pem")).unwrap();
    let bundle = std::fs::read_to_string(dir.0.join("certbot.pem")).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(bundle, format!("{cert}{key_pem}"));
    let mtls = agent(Some(&ca), Some((&cert, &key_pem)));
    let (status, body) = read(mtls.post(format!("{session_auth}/sessionauth/v1/authenticate")).send_empty());
    assert_eq!((status, body["name"].as_str()), (200, Some("sessionToken")), "{body}");
    let (status, body) = read(mtls.post(format!("{key_auth}/keyauth/v1/authenticate")).send_empty());
    assert_eq!((status, body["name"].as_str()), (200, Some("keyManagerToken")));
    assert_eq!(read(mtls.post(format!("{session_auth}/keyauth/v1/authenticate")).send_empty()).0, 404);
    // The client certificate is RSA 4096 unless --ecdsa.
    {
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        assert_eq!(rsa::PrivateKey::from_pkcs8_pem(&key_pem).unwrap().n_bits_precision(), 4096);
    }
    assert!(agent(Some(&ca), None).post(format!("{session_auth}/sessionauth/v1/authenticate")).send_empty().is_err());

    // Closing stdin stops it, cleanly.
    drop(running.0.stdin.take());
    let status = wait_exit(&mut running.0, Duration::from_secs(10)).expect("still running after stdin closed");
    assert!(status.success(), "{status}");
}

#[test]
fn without_tls_dir_ca_cert_is_null_and_latency_applies() {
    let (mut running, ready) = start(&["--latency-ms", "200"]);
    assert_eq!(ready["ca_cert"], Value::Null);
    let started = Instant::now();
    let (status, _) =
        read(agent(None, None).get(format!("{}/agent/v3/health", ready["agent"].as_str().unwrap())).call());
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(running.0.stdin.take());
    assert!(wait_exit(&mut running.0, Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[test]
fn https_ecdsa_rate_limit_and_agent_version_flags() {
    let dir = TempDir::new("https");
    let pub_key = format!("bot={}", fixture("bot-2048.pub.pem"));
    let (mut running, ready) = start(&[
        "--rsa-bot",
        &pub_key,
        "--cert-bot",
        "certbot",
        "--tls-dir",
        dir.0.to_str().unwrap(),
        "--https",
        "--ecdsa",
        "--skd",
        "--agent-version",
        "Agent-24.11.0",
        "--login-rate-limit",
        "1/60",
    ]);
    for role in ["pod", "key_manager", "agent", "session_auth", "key_auth"] {
        assert!(ready[role].as_str().unwrap().starts_with("https://127.0.0.1:"), "{ready}");
    }
    let ca = std::fs::read_to_string(ready["ca_cert"].as_str().unwrap()).unwrap();
    let key_pem = std::fs::read_to_string(dir.0.join("certbot-key.pem")).unwrap();
    {
        use rsa::pkcs8::DecodePrivateKey as _;
        assert!(rsa::PrivateKey::from_pkcs8_pem(&key_pem).is_err(), "--ecdsa: not an RSA key");
    }
    let https = agent(Some(&ca), None);
    let login = || {
        let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(SystemTime::now()) + 240);
        https
            .post(format!("{}/login/pubkey/authenticate", ready["pod"].as_str().unwrap()))
            .header("Content-Type", "application/json")
            .send(json!({ "token": jwt }).to_string())
            .unwrap()
    };
    let mut first = login();
    assert_eq!(first.status().as_u16(), 200);
    let session: Value = serde_json::from_str(&first.body_mut().read_to_string().unwrap()).unwrap();
    let second = login();
    assert_eq!(second.status().as_u16(), 429);
    assert!(second.headers()["retry-after"].to_str().unwrap().parse::<u64>().is_ok_and(|s| (59..=60).contains(&s)));
    // An SKD session alone is refused by an agent before 24.12.
    let (status, body) = read(
        https
            .post(format!("{}/agent/v1/util/echo", ready["agent"].as_str().unwrap()))
            .header("sessionToken", session["token"].as_str().unwrap())
            .header("Content-Type", "application/json")
            .send(r#"{"message":"hi"}"#),
    );
    assert_eq!((status, body["message"].as_str()), (401, Some("Invalid key manager token")));
    drop(running.0.stdin.take());
    assert!(wait_exit(&mut running.0, Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[test]
fn bad_arguments_exit_2_with_one_line_on_stderr() {
    let missing = format!("bot={}", fixture("does-not-exist.pem"));
    let private = format!("bot={}", fixture("bot-2048.pkcs8.pem"));
    let cases: &[&[&str]] = &[
        &["--bogus"],
        &["--bind", "localhost"],
        &["--bind"],
        &["--rsa-bot", "no-equals-sign"],
        &["--rsa-bot", &missing],
        &["--rsa-bot", &private],
        &["--cert-bot", "../escape"],
        &["--session-ttl", "0"],
        &["--latency-ms", "soon"],
        &["--skd=yes"],
        &["--https"],
        &["--ecdsa=1"],
        &["--agent-version"],
        &["--login-rate-limit", "10"],
        &["--login-rate-limit", "ten/1"],
        &["--login-rate-limit", "10/0"],
        &["--login-rate-limit=5/x"],
        &["--app", "no-equals-sign"],
        &["--cert-app", "../escape"],
        &["--user", "j.doe"],
        &["--user", "x:j.doe"],
        &["--user", "7:"],
    ];
    for args in cases {
        let output = Command::new(BIN).args(*args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("fake-pod: "), "{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let mut text = String::new();
    help.stdout.as_slice().read_to_string(&mut text).unwrap();
    assert!(text.contains("--rsa-bot NAME=PUBLIC_KEY.pem"));
}

#[test]
fn apps_and_users_from_flags() {
    let dir = TempDir::new("apps");
    let app = format!("my-app={}", fixture("bot-2048.pub.pem"));
    let (mut running, ready) = start(&[
        "--app",
        &app,
        "--cert-app",
        "cert-app",
        "--user",
        "7:j.doe:installed",
        "--user",
        "8:r.roe",
        "--tls-dir",
        dir.0.to_str().unwrap(),
    ]);
    assert!(dir.0.join("cert-app.pem").exists(), "the certificate app's identity is written");
    let pod = ready["pod"].as_str().unwrap();
    let http = agent(None, None);
    let jwt = login_jwt(&key(BOT_2048_KEY), "my-app", secs(SystemTime::now()) + 240);
    let (status, body) = read(
        http.post(format!("{pod}/login/pubkey/app/authenticate"))
            .header("Content-Type", "application/json")
            .send(json!({ "token": jwt }).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let app_session = body["token"].as_str().unwrap();
    let obo = |user: &str| {
        read(
            http.post(format!("{pod}/login/pubkey/app/user/{user}/authenticate"))
                .header("sessionToken", app_session)
                .send_empty(),
        )
    };
    assert_eq!(obo("7").0, 200);
    assert_eq!(obo("8").0, 403, "r.roe has not installed the app");
    drop(running.0.stdin.take());
    assert!(wait_exit(&mut running.0, Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[test]
fn binary_stdin_commands_count_logins_and_expire_tokens() {
    use std::io::Write as _;
    let pub_key = format!("bot={}", fixture("bot-2048.pub.pem"));
    let mut child = Command::new(BIN)
        .args(["--rsa-bot", &pub_key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut running = Running(child);
    let mut next = || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    let ready = next();
    let pod = ready["pod"].as_str().unwrap().to_owned();
    let mut ask = |command: &str| {
        writeln!(stdin, "{command}").unwrap();
        next()
    };

    let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(SystemTime::now()) + 240);
    let http = agent(None, None);
    let (status, body) = read(
        http.post(format!("{pod}/login/pubkey/authenticate"))
            .header("Content-Type", "application/json")
            .send(json!({ "token": jwt }).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let session = body["token"].as_str().unwrap().to_owned();
    let info = |http: &ureq::Agent| {
        read(http.get(format!("{pod}/pod/v2/sessioninfo")).header("sessionToken", session.as_str()).call()).0
    };
    assert_eq!(info(&http), 200);

    let counters = ask("counters");
    assert_eq!(counters["requests"]["/login/pubkey/authenticate"], 1, "{counters}");
    assert_eq!(counters["requests"]["/pod/v2/sessioninfo"], 1, "{counters}");
    assert_eq!(ask("expire"), json!({ "expired": true }));
    assert_eq!(info(&http), 401, "the session token is expired");
    assert_eq!(ask("reset-counters"), json!({ "reset": true }));
    assert_eq!(ask("counters")["requests"]["/pod/v2/sessioninfo"], 0);
    assert!(ask("nonsense")["error"].as_str().unwrap().contains("unknown command"));

    drop(stdin);
    let status = wait_exit(&mut running.0, Duration::from_secs(10)).expect("fake-pod exits when stdin closes");
    assert!(status.success(), "{status}");
}
