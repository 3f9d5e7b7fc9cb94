#![cfg(feature = "cli")]
//! The `symphony-auth` binary run as a process against an in-process fake pod: `login` (RSA and certificate, with
//! `--json`), `check`, and one failure of each class with its exit code and message prefix.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BOT, CERT_BOT, PUB_2048, https_server, server};
use symphony_auth_testkit::{Endpoint, FakePodServer, Role};

/// Runs the binary with `args`.
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_symphony-auth")).args(args).output().expect("the binary runs")
}

fn login(config: &Path, json: bool) -> Output {
    let config = config.to_str().unwrap();
    if json { run(&["login", "--config", config, "--json"]) } else { run(&["login", "--config", config]) }
}

fn check(config: &Path) -> Output {
    run(&["check", "--config", config.to_str().unwrap()])
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The exit code, and the one line printed on stderr.
fn failure(output: &Output) -> (i32, String) {
    let err = stderr(output);
    assert_eq!(err.lines().count(), 1, "exactly one line on stderr: {err:?}");
    (output.status.code().expect("exited"), err.trim_end().to_owned())
}

/// A fresh directory for one test's files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("symphony-auth-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn fixture(name: &str) -> String {
    format!("{}/../fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The ports of the pod, the key manager and the agent.
type Ports = (u16, u16, u16);

fn ports(server: &FakePodServer) -> Ports {
    (server.addr(Role::Pod).port(), server.addr(Role::KeyManager).port(), server.addr(Role::Agent).port())
}

/// A BDK YAML for RSA bot `bot` with `key`, the pod, key manager and agent at `scheme://127.0.0.1` on `ports`, one
/// attempt per login.
fn rsa_config(test: &str, scheme: &str, (pod, key_manager, agent): Ports, key: &str) -> PathBuf {
    let yaml = format!(
        "scheme: {scheme}\nhost: 127.0.0.1\nport: {pod}\nkeyManager:\n  port: {key_manager}\nagent:\n  port: {agent}\n\
         bot:\n  username: {BOT}\n  privateKey:\n    path: {}\nretry:\n  maxAttempts: 1\ndatafeed:\n  version: v2\n",
        fixture(key)
    );
    write(&temp_dir(test), "config.yaml", &yaml)
}

/// A BDK JSON for certificate bot `cert-bot`: pod and agent on server-TLS listeners, session auth and key
/// manager on the mutual-TLS ones, the fake's CA as trust store.
fn cert_config(test: &str, server: &FakePodServer) -> PathBuf {
    let dir = temp_dir(test);
    let bundle = write(&dir, "bot.pem", &server.client_identity(CERT_BOT).unwrap().bundle_pem());
    let ca = write(&dir, "ca.pem", server.ca_pem());
    let json = serde_json::json!({
        "host": "127.0.0.1", "port": server.addr(Role::Pod).port(), "agent": { "port": server.addr(Role::Agent).port() },
        "sessionAuth": { "port": server.addr(Role::SessionAuth).port() },
        "keyManager": { "port": server.addr(Role::KeyAuth).port() },
        "bot": { "username": CERT_BOT, "certificate": { "path": bundle } },
        "ssl": { "trustStore": { "path": ca } },
        "retry": { "maxAttempts": 1 },
    });
    write(&dir, "config.json", &json.to_string())
}

/// Nothing the tool prints may hold a token or a JWT (the fake's session tokens are JWTs: `eyJ...`) or a key.
fn assert_no_secrets(output: &Output) {
    for text in [stdout(output), stderr(output)] {
        assert!(!text.contains("eyJ"), "a JWT was printed: {text}");
        assert!(!text.contains("PRIVATE KEY"), "a key was printed: {text}");
    }
}

#[test]
fn rsa_login_prints_one_json_object_with_the_fakes_user_id() {
    let server = server(|_| {});
    let config = rsa_config("rsa-json", "http", ports(&server), "bot-2048.pkcs8.pem");
    let output = login(&config, true);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(r#"{"username":"bot","user_id":"#), "the documented order: {out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(object.len(), 6, "{json}");
    assert_eq!(json["username"], BOT);
    assert_eq!(json["user_id"], server.pod().user_id(BOT).unwrap());
    assert_eq!(json["session"], "ok");
    assert_eq!(json["key_manager"], "ok");
    assert_eq!(json["echo"], "ok");
    assert!(json["login_ms"].is_u64(), "{json}");
    assert_eq!(server.counters().requests(Endpoint::Echo), 1);
    assert_eq!(stderr(&output), "");
    assert_no_secrets(&output);
}

#[test]
fn rsa_login_prints_a_summary() {
    let server = server(|_| {});
    let config = rsa_config("rsa-human", "http", ports(&server), "bot-2048.pkcs1.pem");
    let output = login(&config, false);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let id = server.pod().user_id(BOT).unwrap();
    assert!(out.starts_with(&format!("logged in as {BOT} (user id {id}) by RSA key in ")), "{out}");
    assert!(out.contains("session:     ok") && out.contains("key manager: ok") && out.contains("echo:        ok"));
    assert_no_secrets(&output);
}

#[test]
fn skd_skips_the_key_manager_and_the_echo() {
    let server = server(|pod| pod.set_skd(true));
    // No dedicated agent (it inherits the pod's address): the claim is trusted without asking the agent's version.
    let (pod, key_manager, _) = ports(&server);
    let config = rsa_config("rsa-skd", "http", (pod, key_manager, pod), "bot-2048.pkcs8.pem");
    let output = login(&config, true);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!((&json["key_manager"], &json["echo"]), (&"skipped".into(), &"skipped".into()));
    assert_eq!(server.counters().requests(Endpoint::Echo), 0);
}

#[test]
fn certificate_login_prints_one_json_object_with_the_fakes_user_id() {
    let server = https_server(|_| {});
    let config = cert_config("cert-json", &server);
    let output = login(&config, true);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["username"], CERT_BOT);
    assert_eq!(json["user_id"], server.pod().user_id(CERT_BOT).unwrap());
    assert_eq!((&json["session"], &json["key_manager"], &json["echo"]), (&"ok".into(), &"ok".into(), &"ok".into()));
    assert_eq!(server.counters().requests(Endpoint::CertSessionLogin), 1);
    assert_no_secrets(&output);
}

#[test]
fn check_on_a_good_rsa_config_shows_the_public_key_and_each_endpoint() {
    let server = server(|_| {});
    let config = rsa_config("check-rsa", "http", ports(&server), "bot-2048.pkcs8.pem");
    let output = check(&config);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains(PUB_2048), "the SPKI PEM of the key: {out}");
    assert!(out.contains("RSA private key: PKCS#8, 2048 bits"), "{out}");
    let (url, km) = (server.pod_url(), server.key_manager_url());
    assert!(out.contains(&format!("  pod           {url}\n")), "{out}");
    assert!(out.contains(&format!("POST {url}/login/pubkey/authenticate: HTTP 200, token received")), "{out}");
    assert!(out.contains(&format!("POST {km}/relay/pubkey/authenticate: HTTP 200, token received")), "{out}");
    assert!(out.contains("s from ours"), "the clock offset: {out}");
    assert!(out.ends_with("everything looks right\n"), "{out}");
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    assert_no_secrets(&output);
}

#[test]
fn check_on_a_good_certificate_config_shows_the_chain_and_the_tls_trust() {
    let server = https_server(|_| {});
    let config = cert_config("check-cert", &server);
    let output = check(&config);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains("certificate (PEM): chain of 1 certificate(s), private key"), "{out}");
    assert!(out.contains(&format!("ok    {}  TLS trusted", server.session_auth_url())), "{out}");
    let sessionauth =
        format!("POST {}/sessionauth/v1/authenticate: HTTP 200, token received", server.session_auth_url());
    assert!(out.contains(&sessionauth), "{out}");
    assert_no_secrets(&output);
}

#[test]
fn a_bad_key_is_a_configuration_failure() {
    let server = server(|_| {});
    let weak = rsa_config("weak-key", "http", ports(&server), "weak-1024.pkcs8.pem");
    let (code, line) = failure(&login(&weak, true));
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("bad key or configuration: `bot.privateKey`: "), "{line}");
    assert!(line.contains("1024 bits"), "{line}");

    let ec = rsa_config("ec-key", "http", ports(&server), "ec-p256.pkcs8.pem");
    let output = check(&ec);
    let (code, line) = failure(&output);
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("bad key or configuration: "), "{line}");
    assert!(
        stdout(&output).contains("FAIL  `bot.privateKey`: the PKCS#8 key is not an RSA key"),
        "{}",
        stdout(&output)
    );
    assert_eq!(server.counters().total_requests(), 0, "nothing is sent with a bad key");
}

#[test]
fn rejected_credentials_have_their_own_failure() {
    let server = server(|_| {});
    let config = rsa_config("rejected", "http", ports(&server), "other-2048.pkcs8.pem");
    let (code, line) = failure(&login(&config, false));
    assert_eq!(code, 4, "{line}");
    assert!(line.starts_with("credentials rejected: "), "{line}");
    assert!(line.contains("HTTP 401 (Invalid JWT signature)"), "{line}");

    let output = check(&config);
    let (code, line) = failure(&output);
    assert_eq!(code, 4, "{line}");
    assert!(line.starts_with("credentials rejected: "), "{line}");
    let out = stdout(&output);
    assert!(out.contains(include_str!("../../fixtures/keys/other-2048.pub.pem")), "{out}");
    assert!(out.contains("/login/pubkey/authenticate: HTTP 401: Invalid JWT signature"), "{out}");
    assert_no_secrets(&output);
}

#[test]
fn an_unreachable_host_has_its_own_failure() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let config = rsa_config("unreachable", "http", (port, port, port), "bot-2048.pkcs8.pem");
    let (code, line) = failure(&login(&config, true));
    assert_eq!(code, 5, "{line}");
    assert!(line.starts_with("host unreachable: "), "{line}");
    assert!(line.contains("connection failed"), "{line}");

    let (code, line) = failure(&check(&config));
    assert_eq!(code, 5, "{line}");
    assert!(line.starts_with(&format!("host unreachable: http://127.0.0.1:{port}")), "{line}");
}

#[test]
fn an_untrusted_server_certificate_is_a_tls_trust_failure() {
    let server = https_server(|_| {});
    // The fake's HTTPS listeners, without its CA in `ssl.trustStore`.
    let config = rsa_config("tls", "https", ports(&server), "bot-2048.pkcs8.pem");
    let (code, line) = failure(&login(&config, true));
    assert_eq!(code, 6, "{line}");
    assert!(line.starts_with("TLS trust failure: "), "{line}");

    let output = check(&config);
    let (code, line) = failure(&output);
    assert_eq!(code, 6, "{line}");
    assert!(line.starts_with(&format!("TLS trust failure: {}", server.pod_url())), "{line}");
    assert!(stdout(&output).contains("not tried (its host failed above)"), "{}", stdout(&output));
    assert_eq!(server.counters().total_requests(), 0, "no request got through the handshake");
}

#[test]
fn a_skewed_server_clock_is_a_clock_problem() {
    let server = server(|pod| pod.set_clock_skew(400));
    let config = rsa_config("clock", "http", ports(&server), "bot-2048.pkcs8.pem");
    let (code, line) = failure(&login(&config, true));
    assert_eq!(code, 7, "{line}");
    assert!(line.starts_with("clock problem: "), "{line}");
    assert!(line.contains("check the clock"), "{line}");

    let output = check(&config);
    let (code, line) = failure(&output);
    assert_eq!(code, 7, "{line}");
    assert!(line.starts_with("clock problem: the server's clock"), "{line}");
    let out = stdout(&output);
    assert!(out.contains("/login/pubkey/authenticate: HTTP 401: JWT expired"), "{out}");
    assert!(!out.contains("hint: compare the public key"), "the key is not at fault: {out}");
}

#[test]
fn usage_errors_exit_2_and_help_documents_the_exit_codes() {
    for args in [&[][..], &["login"], &["check", "--config"], &["logon", "--config", "c.yaml"]] {
        let (code, line) = failure(&run(args));
        assert_eq!(code, 2, "{args:?}: {line}");
        assert!(line.starts_with("usage error: "), "{line}");
    }
    let help = run(&["--help"]);
    assert!(help.status.success());
    let text = stdout(&help);
    for code in 0..=7 {
        assert!(text.contains(&format!("\n    {code}   ")), "exit code {code} in --help: {text}");
    }
}

#[test]
fn a_missing_configuration_file_is_a_configuration_failure() {
    let missing = temp_dir("missing").join("nope.yaml");
    for output in [login(&missing, false), check(&missing)] {
        let (code, line) = failure(&output);
        assert_eq!(code, 3, "{line}");
        assert!(line.starts_with("bad key or configuration: cannot read the configuration file"), "{line}");
    }
}

#[test]
fn attempts_on_the_command_line_override_the_file() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // A file without `retry`: the BDK default would try ten times over minutes.
    let yaml = format!(
        "scheme: http\nhost: 127.0.0.1\nport: {port}\nbot:\n  username: {BOT}\n  privateKey:\n    path: {}\n",
        fixture("bot-2048.pkcs8.pem")
    );
    let config = write(&temp_dir("attempts"), "config.yaml", &yaml);
    let config = config.to_str().unwrap();
    let (code, line) = failure(&run(&["login", "--config", config, "--attempts", "2"]));
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("after 2 attempt(s)"), "{line}");
    let (code, line) = failure(&run(&["login", "--config", config, "--attempts", "0"]));
    assert_eq!(code, 2, "{line}");
}
