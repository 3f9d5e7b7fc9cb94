//! The `obo`, `logout` and `watch` commands run as a process against an in-process fake pod: their JSON contracts,
//! and the exit code of an OBO refusal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer, Role};

const BOT: &str = "bot";
const CERT_BOT: &str = "cert-bot";
const APP: &str = "my-app";
/// Test-only key (fixture), never used anywhere real.
const PUB_2048: &str = include_str!("../../fixtures/keys/bot-2048.pub.pem");
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn server(configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    server_with(false, configure)
}

/// As [`server`], the pod, key manager and agent over HTTPS when `https`.
fn server_with(https: bool, configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, PUB_2048).unwrap();
    pod.add_cert_bot(CERT_BOT).unwrap();
    pod.add_rsa_app(APP, PUB_2048).unwrap();
    pod.add_user(12_345, "j.doe", true).unwrap();
    pod.add_user(23_456, "r.roe", false).unwrap();
    configure(&mut pod);
    FakePodServer::builder(pod).https(https).start().unwrap()
}

/// Runs the binary with `args`, killing it (and failing) past [`RUN_TIMEOUT`].
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_symphony-auth"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("symphony-auth {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20)); // polling the exit, not standing in for it
    }
    child.wait_with_output().unwrap()
}

fn dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("symphony-auth-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(name: &str) -> String {
    format!("{}/../fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A BDK JSON with the RSA bot and the RSA app on plain HTTP, plus `extra` merged in.
fn rsa_config(test: &str, server: &FakePodServer, extra: Value) -> PathBuf {
    let mut config = json!({
        "scheme": "http", "host": "127.0.0.1", "port": server.addr(Role::Pod).port(),
        "keyManager": { "port": server.addr(Role::KeyManager).port() },
        "agent": { "port": server.addr(Role::Agent).port() },
        "bot": { "username": BOT, "privateKey": { "path": fixture("bot-2048.pkcs8.pem") } },
        "app": { "appId": APP, "privateKey": { "path": fixture("bot-2048.pkcs8.pem") } },
        "retry": { "maxAttempts": 1 },
    });
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let path = dir(test).join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// A BDK JSON for the certificate bot over mutual TLS (the pod and agent over HTTPS), the fake's CA as trust store.
fn cert_config(test: &str, server: &FakePodServer) -> PathBuf {
    let dir = dir(test);
    let bundle = dir.join("bot.pem");
    std::fs::write(&bundle, server.client_identity(CERT_BOT).unwrap().bundle_pem()).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, server.ca_pem()).unwrap();
    let config = json!({
        "host": "127.0.0.1", "port": server.addr(Role::Pod).port(), "agent": { "port": server.addr(Role::Agent).port() },
        "sessionAuth": { "port": server.addr(Role::SessionAuth).port() },
        "keyManager": { "port": server.addr(Role::KeyAuth).port() },
        "bot": { "username": CERT_BOT, "certificate": { "path": bundle } },
        "ssl": { "trustStore": { "path": ca } },
        "retry": { "maxAttempts": 1 },
    });
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

/// The one JSON object on stdout of a successful run.
fn json_out(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn obo_prints_the_app_and_the_user_it_acts_for() {
    let server = server(|_| {});
    let config = rsa_config("obo", &server, json!({}));
    let config = config.to_str().unwrap();
    let by_id = json_out(&run(&["obo", "--config", config, "--user-id", "12345", "--json"]));
    assert_eq!(by_id, json!({"app_id": APP, "user_id": 12345, "username": "j.doe", "session": "ok"}));
    let by_name = json_out(&run(&["obo", "--config", config, "--username", "j.doe", "--json"]));
    assert_eq!(by_name["user_id"], 12345);
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::AppLogin), 2);
    assert_eq!((counters.requests(Endpoint::OboUserLogin), counters.requests(Endpoint::OboUsernameLogin)), (1, 1));
    assert_eq!(counters.requests(Endpoint::SessionLogin), 0, "the bot does not log in");
}

#[test]
fn an_obo_refusal_exits_as_rejected_credentials() {
    let server = server(|_| {});
    let config = rsa_config("obo-refused", &server, json!({}));
    let output = run(&["obo", "--config", config.to_str().unwrap(), "--user-id", "23456", "--json"]);
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("credentials rejected: ") && stderr.contains("has not installed the app"), "{stderr}");
    assert!(output.stdout.is_empty());

    let no_app = rsa_config("obo-no-app", &server, json!({ "app": null }));
    let output = run(&["obo", "--config", no_app.to_str().unwrap(), "--user-id", "12345"]);
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn logout_ends_the_session_and_says_so() {
    let server = server_with(true, |_| {});
    let config = cert_config("logout", &server);
    assert_eq!(json_out(&run(&["logout", "--config", config.to_str().unwrap(), "--json"])), json!({"logout": "ok"}));
    assert_eq!(server.counters().responses(Endpoint::Logout, 200), 1);
    assert_eq!(server.counters().responses(Endpoint::SessionInfo, 401), 1, "the old session was refused");
}

#[test]
fn watch_counts_calls_and_the_relogins_of_a_short_session() {
    let server = server(|pod| pod.set_session_ttl(Duration::from_secs(2)));
    let config = rsa_config("watch", &server, json!({}));
    let out = json_out(&run(&["watch", "--config", config.to_str().unwrap(), "--seconds", "5", "--json"]));
    let keys: Vec<&str> = out.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{out}");
    assert_eq!(out["calls"], 10, "session info and echo, each second: {out}");
    assert_eq!((out["ok"].clone(), out["failed"].clone()), (json!(10), json!(0)), "{out}");
    let logins = out["logins"].as_u64().unwrap();
    assert!(logins >= 2, "a 2 s session over 5 s needs re-logins: {out}");
    assert_eq!(out["unauthorized"].as_u64().unwrap(), logins - 1, "each re-login followed a 401: {out}");
    assert_eq!(out["common_jwt_refreshes"], 0);
}
