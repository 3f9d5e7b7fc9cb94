//! The `fake-pod` binary's extension-app and Common JWT flags: apps registered from the command line, the
//! certificate app's files in `--tls-dir`, and the access-token lifetime.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

use common::net::{agent, read};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_fake-pod");

/// Kills the child if a test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir() -> PathBuf {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("fake-pod-apps-{}-{nanos}", std::process::id()))
}

#[test]
fn apps_and_the_access_token_lifetime_come_from_flags() {
    let dir = temp_dir();
    let public = format!("my-app={}/../fixtures/keys/bot-2048.pub.pem", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(BIN)
        .args(["--extension-app", &public, "--cert-extension-app", "cert-app", "--cert-bot", "bot"])
        .args(["--access-token-ttl", "7", "--tls-dir", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap();
    let url = |role: &str| ready[role].as_str().unwrap().to_owned();

    // E3 on the pod, plain HTTP here.
    let (status, body) = read(agent(None, None).get(format!("{}/pod/v1/podcert", url("pod"))).call());
    assert_eq!(status, 200);
    assert!(body["certificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

    // The certificate app's files are written like a certificate bot's, and E2 accepts them.
    let read_file = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let (ca, cert, key) = (read_file("ca.pem"), read_file("cert-app-cert.pem"), read_file("cert-app-key.pem"));
    let mtls = agent(Some(&ca), Some((&cert, &key)));
    let e2 = format!("{}/sessionauth/v1/authenticate/extensionApp", url("session_auth"));
    let (status, body) =
        read(mtls.post(&e2).header("Content-Type", "application/json").send(json!({"appToken": "abc"}).to_string()));
    assert_eq!((status, body["appId"].as_str()), (200, Some("cert-app")), "{body}");

    // A5 answers with the lifetime of the flag.
    let bot = agent(Some(&ca), Some((&read_file("bot-cert.pem"), &read_file("bot-key.pem"))));
    let (_, session) = read(bot.post(format!("{}/sessionauth/v1/authenticate", url("session_auth"))).send_empty());
    let a5 = format!("{}/login/idm/tokens?scope=", url("pod"));
    let (status, body) =
        read(agent(None, None).post(&a5).header("sessionToken", session["token"].as_str().unwrap()).send_empty());
    assert_eq!((status, body["expires_in"].as_u64()), (200, Some(7)), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_app_flags_exit_2_with_one_line() {
    for args in [&["--extension-app", "no-equals"][..], &["--access-token-ttl", "0"], &["--cert-extension-app"]] {
        let output = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8(output.stderr).unwrap().lines().count(), 1, "{args:?}");
    }
}
