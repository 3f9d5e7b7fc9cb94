//! The `symphony-auth` binary run as a process against an in-process fake pod: `login` (RSA and certificate, with
//! `--json`), `check`, one failure of each class with its exit code and message prefix, the retries it reports
//! while it waits, and what it must never print (tokens, JWTs, keys), diagnostics at TRACE included.

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use symphony_auth_blocking::symphony_auth_core::{LoginMethod, UnixTime, login_jwt};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer, Fault, Role};

const BOT: &str = "bot";
const CERT_BOT: &str = "cert-bot";
/// Test-only keys (fixtures), never used anywhere real.
const PUB_2048: &str = include_str!("../../fixtures/keys/bot-2048.pub.pem");

/// A fake pod with RSA bot `bot` and certificate bot `cert-bot`, adjusted by `configure`, served on loopback.
fn server(configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    FakePodServer::start(pod(configure)).expect("fake pod starts")
}

/// As [`server`], with the pod, key manager and agent over HTTPS under the fake's CA.
fn https_server(configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    FakePodServer::builder(pod(configure)).https(true).start().expect("fake pod starts")
}

fn pod(configure: impl FnOnce(&mut FakePod)) -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, PUB_2048).expect("fixture key registers");
    pod.add_cert_bot(CERT_BOT).expect("cert bot registers");
    configure(&mut pod);
    pod
}

/// The ports of the pod, the key manager and the agent.
type Ports = (u16, u16, u16);

fn ports(server: &FakePodServer) -> Ports {
    (server.addr(Role::Pod).port(), server.addr(Role::KeyManager).port(), server.addr(Role::Agent).port())
}

/// A run of the binary that takes longer than this has hung: it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the binary with `args`.
fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

/// Runs the binary with `args` and the environment variables `env` (`RUST_LOG` and colour settings removed
/// unless given), within [`RUN_TIMEOUT`].
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_symphony-auth"));
    command.args(args).env_remove("RUST_LOG").env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    command.envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the binary starts");
    // Read both pipes while the child runs, so that a chatty child never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("the pipe reads");
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("symphony-auth {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().expect("stdout drained"), stderr: stderr.join().expect("stderr drained") }
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

/// The exit code, the failure line (the last on stderr) and the retry lines before it (every other line).
fn failure_after_retries(output: &Output) -> (i32, String, Vec<String>) {
    let err = stderr(output);
    let mut lines: Vec<String> = err.lines().map(str::to_owned).collect();
    let last = lines.pop().unwrap_or_default();
    for line in &lines {
        assert!(line.starts_with("retrying: "), "only retry lines before the failure: {err}");
    }
    (output.status.code().expect("exited"), last, lines)
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

/// A BDK JSON for certificate bot `cert-bot`: pod and agent on the server-TLS listener, session auth and key
/// manager on the mutual-TLS one, the fake's CA as trust store.
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

/// The base64 body of a PEM text: its lines between the `-----` ones, joined.
fn pem_body(pem: &str) -> String {
    pem.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect()
}

/// What a run of the tool must never print, kept as every 16-byte slice of each secret: at TRACE, ureq-proto
/// hex-dumps traffic 16 bytes a row, so a secret it dumps shows as whole slices, never as the whole secret.
struct Secrets {
    slices: HashSet<Vec<u8>>,
    /// How many tokens of the fake are among them.
    tokens: usize,
    /// How many login JWTs are among them.
    jwts: usize,
}

impl Secrets {
    /// Every token `server` still holds, every login JWT that the RSA configuration at `config` signs in a second
    /// from `since` to now (RS512 signs the same second's claims to the same bytes), and the private key in
    /// `private_pem`, less the slices it shares with `public_pem` (which `check` prints on purpose).
    fn of(server: &FakePodServer, config: &Path, since: SystemTime, private_pem: &str, public_pem: &str) -> Self {
        let tokens = server.pod().issued_tokens();
        let mut jwts = Vec::new();
        let read = &mut |file: &Path| std::fs::read(file);
        let loaded = symphony_auth_blocking::symphony_auth_core::driver::load_bdk_file(config, read, &|name| {
            std::env::var(name).ok()
        })
        .expect("the test's configuration loads");
        if let LoginMethod::Rsa(signer) = loaded.config.method() {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
            for second in secs(since)..=secs(SystemTime::now()) {
                let username = loaded.config.username().as_str();
                let jwt =
                    login_jwt(username, UnixTime::from_secs(second), loaded.config.jwt_lifetime(), signer.as_ref())
                        .expect("the fixture key signs");
                jwts.push(jwt.expose_secret().to_owned());
            }
        }
        let public = pem_body(public_pem);
        let public: HashSet<&[u8]> = public.as_bytes().windows(16).collect();
        let mut slices: HashSet<Vec<u8>> =
            tokens.iter().chain(&jwts).flat_map(|s| s.as_bytes().windows(16).map(<[u8]>::to_vec)).collect();
        let key = pem_body(private_pem);
        slices.extend(key.as_bytes().windows(16).filter(|w| !public.contains(w)).map(<[u8]>::to_vec));
        Self { slices, tokens: tokens.len(), jwts: jwts.len() }
    }

    /// Neither stdout nor stderr holds a slice of a secret, a JWT of any origin (`eyJ`, the start of every JWT
    /// header) or a PEM private key.
    fn assert_absent(&self, output: &Output) {
        for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            if let Some(slice) = bytes.windows(16).find(|w| self.slices.contains(*w)) {
                panic!("{name} shows a secret ({:?}): {text}", String::from_utf8_lossy(slice));
            }
            assert!(!text.contains("eyJ"), "{name} shows a JWT: {text}");
            assert!(!text.contains("PRIVATE KEY"), "{name} shows a key: {text}");
        }
    }
}

/// The private and public key of fixture `name` (`bot-2048.pkcs8.pem` → `bot-2048.pub.pem`).
fn fixture_keys(name: &str) -> (String, String) {
    let public = format!("{}.pub.pem", name.split('.').next().unwrap());
    (std::fs::read_to_string(fixture(name)).unwrap(), std::fs::read_to_string(fixture(&public)).unwrap())
}

/// Runs the binary with `args` and `env` against `server` with the configuration at `config`, whose private
/// and public keys are `keys`, and checks that it printed none of the run's secrets.
fn run_checked(
    server: &FakePodServer,
    config: &Path,
    keys: &(String, String),
    args: &[&str],
    env: &[(&str, &str)],
) -> (Output, Secrets) {
    let since = SystemTime::now();
    let output = run_with(args, env);
    let secrets = Secrets::of(server, config, since, &keys.0, &keys.1);
    secrets.assert_absent(&output);
    (output, secrets)
}

#[test]
fn rsa_login_prints_one_json_object_with_the_fakes_user_id() {
    let server = server(|_| {});
    let config = rsa_config("rsa-json", "http", ports(&server), "bot-2048.pkcs8.pem");
    let keys = fixture_keys("bot-2048.pkcs8.pem");
    let (output, secrets) =
        run_checked(&server, &config, &keys, &["login", "--config", config.to_str().unwrap(), "--json"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with(r#"{"username":"bot","user_id":"#), "the documented order: {out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(object.len(), 7, "{json}");
    assert_eq!(json["username"], BOT);
    assert_eq!(json["common_jwt"], "skipped", "commonJwt.enabled is not set");
    assert_eq!(json["user_id"], server.pod().user_id(BOT).unwrap());
    assert_eq!(json["session"], "ok");
    assert_eq!(json["key_manager"], "ok");
    assert_eq!(json["echo"], "ok");
    assert!(json["login_ms"].is_u64(), "{json}");
    assert_eq!(server.counters().requests(Endpoint::Echo), 1);
    assert_eq!(stderr(&output), "");
    assert_eq!(secrets.tokens, 2, "the session and key-manager tokens were looked for");
    assert!(secrets.jwts >= 1, "the login JWT was looked for");
}

#[test]
fn rsa_login_prints_a_summary() {
    let server = server(|_| {});
    let config = rsa_config("rsa-human", "http", ports(&server), "bot-2048.pkcs1.pem");
    let keys = fixture_keys("bot-2048.pkcs1.pem");
    let (output, _) = run_checked(&server, &config, &keys, &["login", "--config", config.to_str().unwrap()], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let id = server.pod().user_id(BOT).unwrap();
    assert!(out.starts_with(&format!("logged in as {BOT} (user id {id}) by RSA key in ")), "{out}");
    assert!(out.contains("session:     ok") && out.contains("key manager: ok") && out.contains("echo:        ok"));
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
    let keys = (server.client_identity(CERT_BOT).unwrap().key_pem().to_owned(), String::new());
    let (output, secrets) =
        run_checked(&server, &config, &keys, &["login", "--config", config.to_str().unwrap(), "--json"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["username"], CERT_BOT);
    assert_eq!(json["user_id"], server.pod().user_id(CERT_BOT).unwrap());
    assert_eq!((&json["session"], &json["key_manager"], &json["echo"]), (&"ok".into(), &"ok".into(), &"ok".into()));
    assert_eq!(server.counters().requests(Endpoint::CertSessionLogin), 1);
    assert_eq!(secrets.tokens, 2);
}

#[test]
fn diagnostics_at_trace_go_to_stderr_without_a_secret() {
    let server = server(|_| {});
    let config = rsa_config("trace", "http", ports(&server), "bot-2048.pkcs8.pem");
    let keys = fixture_keys("bot-2048.pkcs8.pem");
    let path = config.to_str().unwrap();
    for (args, env) in [
        (&["login", "--config", path, "--json"][..], &[("RUST_LOG", "trace")][..]),
        (&["login", "--config", path, "--json"], &[("RUST_LOG", "ureq_proto::util=trace,ureq=trace")]),
        (&["-vvv", "login", "--config", path, "--json"], &[]),
        (&["check", "--config", path], &[("RUST_LOG", "trace")]),
    ] {
        let (output, secrets) = run_checked(&server, &config, &keys, args, env);
        assert!(output.status.success(), "{args:?} {env:?}: {}", stderr(&output));
        assert!(secrets.tokens >= 2 && secrets.jwts >= 1, "{args:?} {env:?}");
        let err = stderr(&output);
        assert!(err.contains("TRACE ureq"), "{args:?} {env:?}: ureq's trace records reach stderr: {err}");
        assert!(err.contains("DEBUG ureq_proto"), "{args:?} {env:?}: ureq-proto's debug records pass: {err}");
        assert!(!err.contains("TRACE ureq_proto"), "{args:?} {env:?}: ureq-proto's trace dump is held back: {err}");
        if args[0] != "check" {
            let out = stdout(&output);
            assert_eq!(out.lines().count(), 1, "stdout keeps its one JSON object: {out}");
            serde_json::from_str::<serde_json::Value>(&out).expect("stdout is JSON");
        }
    }
    // -v is info: ureq logs nothing at info, so a successful login stays quiet.
    let output = run(&["login", "-v", "--config", path, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("DEBUG") && !stderr(&output).contains("TRACE"), "{}", stderr(&output));
}

#[test]
fn check_on_a_good_rsa_config_shows_the_public_key_and_each_endpoint() {
    let server = server(|_| {});
    let config = rsa_config("check-rsa", "http", ports(&server), "bot-2048.pkcs8.pem");
    let keys = fixture_keys("bot-2048.pkcs8.pem");
    let (output, secrets) = run_checked(&server, &config, &keys, &["check", "--config", config.to_str().unwrap()], &[]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains(PUB_2048), "the SPKI PEM of the key: {out}");
    assert!(out.contains("RSA private key: PKCS#8, 2048 bits"), "{out}");
    let fastest = if cfg!(feature = "aws-lc-signer") { "aws-lc" } else { "ring" };
    assert!(out.contains(&format!("signed with {fastest}, the fastest signer in this build")), "{out}");
    let (url, km) = (server.pod_url(), server.key_manager_url());
    assert!(out.contains(&format!("  pod           {url}\n")), "{out}");
    assert!(out.contains(&format!("POST {url}/login/pubkey/authenticate: HTTP 200, token received")), "{out}");
    assert!(out.contains(&format!("POST {km}/relay/pubkey/authenticate: HTTP 200, token received")), "{out}");
    assert!(out.contains("s from ours"), "the clock offset: {out}");
    assert!(out.contains(&format!("  WARN  {url}  plain HTTP, no TLS: tokens travel unencrypted")), "{out}");
    assert!(out.ends_with("everything looks right\n"), "{out}");
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
    assert_eq!(secrets.tokens, 2);
}

#[test]
fn check_on_a_good_certificate_config_shows_the_chain_and_the_tls_trust() {
    let server = https_server(|_| {});
    let config = cert_config("check-cert", &server);
    let keys = (server.client_identity(CERT_BOT).unwrap().key_pem().to_owned(), String::new());
    let (output, secrets) = run_checked(&server, &config, &keys, &["check", "--config", config.to_str().unwrap()], &[]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert!(out.contains("certificate (PEM): chain of 1 certificate(s), private key"), "{out}");
    assert!(out.contains(&format!("ok    {}  TLS trusted", server.session_auth_url())), "{out}");
    let sessionauth =
        format!("POST {}/sessionauth/v1/authenticate: HTTP 200, token received", server.session_auth_url());
    assert!(out.contains(&sessionauth), "{out}");
    assert_eq!(secrets.tokens, 2);
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
    let keys = fixture_keys("other-2048.pkcs8.pem");
    let path = config.to_str().unwrap();
    let (code, line) = failure(&login(&config, false));
    assert_eq!(code, 4, "{line}");
    assert!(line.starts_with("credentials rejected: "), "{line}");
    assert!(line.contains("HTTP 401 (Invalid JWT signature)"), "{line}");
    // The refused JWT, at TRACE too.
    let (output, secrets) =
        run_checked(&server, &config, &keys, &["login", "--config", path], &[("RUST_LOG", "trace")]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    // A key-manager request still out when the login failed may log its own end after the message.
    assert!(stderr(&output).lines().any(|line| line.starts_with("credentials rejected: ")), "{}", stderr(&output));
    assert!(secrets.jwts >= 1, "the refused JWT was looked for");

    let (output, secrets) = run_checked(&server, &config, &keys, &["check", "--config", path], &[]);
    let (code, line) = failure(&output);
    assert_eq!(code, 4, "{line}");
    assert!(line.starts_with("credentials rejected: "), "{line}");
    let out = stdout(&output);
    assert!(out.contains(include_str!("../../fixtures/keys/other-2048.pub.pem")), "{out}");
    assert!(out.contains("/login/pubkey/authenticate: HTTP 401: Invalid JWT signature"), "{out}");
    assert!(secrets.jwts >= 1);
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
fn a_name_that_does_not_resolve_is_unreachable_and_each_retry_is_reported() {
    // `.invalid` never resolves (RFC 6761). Without `retry` in the file, only `--attempts` keeps this short.
    let yaml = format!(
        "host: nonexistent.invalid\nbot:\n  username: {BOT}\n  privateKey:\n    path: {}\n",
        fixture("bot-2048.pkcs8.pem")
    );
    let config = write(&temp_dir("dns"), "config.yaml", &yaml);
    let started = Instant::now();
    let output = run(&["login", "--config", config.to_str().unwrap(), "--attempts", "2", "--json"]);
    let elapsed = started.elapsed();
    let (code, line, retries) = failure_after_retries(&output);
    assert_eq!(code, 5, "{}", stderr(&output));
    assert!(line.starts_with("host unreachable: "), "{line}");
    assert!(line.contains("after 2 attempt(s)"), "{line}");
    assert!(elapsed < Duration::from_secs(20), "2 attempts and one wait took {elapsed:?}");
    let session =
        "retrying: POST /login/pubkey/authenticate (session login) on https://nonexistent.invalid:443 failed: ";
    let session: Vec<_> = retries.iter().filter(|line| line.starts_with(session)).collect();
    assert_eq!(session.len(), 1, "one retry of the session login, reported: {retries:?}");
    assert!(session[0].contains("; attempt 1 of 2 failed, next try in "), "{}", session[0]);
    assert!(session[0].ends_with(" s"), "{}", session[0]);
    assert!(retries.iter().all(|line| !line.contains("attempt 2 of 2")), "no retry after the last: {retries:?}");
    assert!(line.ends_with("connection failed: host not found"), "{line}");
    assert_eq!(stdout(&output), "", "no JSON object for a failed login");
}

#[test]
fn an_untrusted_server_certificate_is_a_tls_trust_failure() {
    let server = https_server(|_| {});
    // The fake's HTTPS listener, without its CA in `ssl.trustStore`.
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
fn usage_errors_exit_2_on_one_line_and_help_documents_the_exit_codes() {
    for args in [&[][..], &["login"], &["check", "--config"], &["logon", "--config", "c.yaml"], &["completions"]] {
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
    for item in ["login", "check", "completions", "-v, --verbose", "RUST_LOG", "capped at debug"] {
        assert!(text.contains(item), "{item} in --help: {text}");
    }
    assert!(!text.contains('\x1b'), "no colour when stdout is not a terminal: {text:?}");
    let login_help = stdout(&run(&["login", "--help"]));
    for item in ["--config <FILE>", "--json", "--attempts <N>", r#""login_ms": int"#] {
        assert!(login_help.contains(item), "{item} in login --help: {login_help}");
    }
    let version = run(&["--version"]);
    assert_eq!(stdout(&version), format!("symphony-auth {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F _symphony__auth"),
        ("zsh", "#compdef symphony-auth"),
        ("fish", "complete -c symphony-auth"),
    ] {
        let output = run(&["completions", shell]);
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("attempts") && script.contains("check"), "{shell}: {script}");
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
    let (code, line, retries) = failure_after_retries(&run(&["login", "--config", config, "--attempts", "2"]));
    assert_eq!(code, 5, "{line}");
    assert!(line.contains("after 2 attempt(s)"), "{line}");
    assert!(!retries.is_empty() && retries.iter().all(|r| r.contains("attempt 1 of 2 failed")), "{retries:?}");
    let (code, line) = failure(&run(&["login", "--config", config, "--attempts", "0"]));
    assert_eq!(code, 2, "{line}");
}

#[test]
fn verbose_shows_the_bots_login_span_and_events_without_colour_or_a_secret() {
    let server = server(|pod| pod.inject(Endpoint::SessionLogin, 1, Fault::status(503)));
    let config = rsa_config("verbose", "http", ports(&server), "bot-2048.pkcs8.pem");
    let keys = fixture_keys("bot-2048.pkcs8.pem");
    let path = config.to_str().unwrap();
    let (output, _) = run_checked(&server, &config, &keys, &["-v", "login", "-c", path, "--attempts", "3"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    let started = err.lines().find(|l| l.contains("login started")).unwrap_or_else(|| panic!("{err}"));
    assert!(started.contains(" INFO login{username=\"bot\" method=\"rsa\" session_endpoint=\"http://"), "{started}");
    let retry = err.lines().find(|l| l.contains("retry scheduled")).unwrap_or_else(|| panic!("{err}"));
    assert!(retry.contains("WARN") && retry.contains("status=503"), "{retry}");
    assert!(err.lines().any(|l| l.contains("logged in generation=1")), "{err}");
    assert!(!err.contains('\u{1b}'), "no colour when stderr is not a terminal: {err:?}");
    assert!(!err.contains("DEBUG"), "-v is info: {err}");

    let (output, _) =
        run_checked(&server, &config, &keys, &["login", "--config", path], &[("RUST_LOG", "symphony_auth_core=debug")]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("simplified key delivery decision skd=false"), "RUST_LOG reaches the bot's events: {err}");
    assert!(!err.contains(" ureq"), "RUST_LOG names only the core: {err}");
}

#[test]
fn check_json_is_one_object_with_every_finding_and_no_secret() {
    let server = server(|_| {});
    let config = rsa_config("check-json", "http", ports(&server), "bot-2048.pkcs8.pem");
    let keys = fixture_keys("bot-2048.pkcs8.pem");
    let args = ["check", "--config", config.to_str().unwrap(), "--json"];
    let (output, secrets) = run_checked(&server, &config, &keys, &args, &[]);
    let out = stdout(&output);
    assert!(output.status.success(), "{out}{}", stderr(&output));
    assert_eq!(out.lines().count(), 1, "one line: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("stdout is JSON");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["problems"], 0, "{report}");
    assert_eq!(report["method"], "rsa");
    assert_eq!(report["username"], BOT);
    assert_eq!(report["services"]["pod"], server.pod_url());
    assert_eq!(report["public_key_pem"], PUB_2048);
    let findings = report["findings"].as_array().expect("findings");
    let login = format!("POST {}/login/pubkey/authenticate: HTTP 200, token received", server.pod_url());
    assert!(findings.iter().any(|f| f["section"] == "logins" && f["status"] == "ok" && f["text"] == login), "{report}");
    assert!(findings.iter().any(|f| f["section"] == "hosts" && f["status"] == "warn"), "plain HTTP: {report}");
    assert_eq!(secrets.tokens, 2);

    // A problem keeps its exit code and its line on stderr; stdout still holds the one object.
    let config = rsa_config("check-json-bad", "http", ports(&server), "other-2048.pkcs8.pem");
    let keys = fixture_keys("other-2048.pkcs8.pem");
    let args = ["check", "--config", config.to_str().unwrap(), "--json"];
    let (output, _) = run_checked(&server, &config, &keys, &args, &[]);
    let (code, line) = failure(&output);
    assert_eq!(code, 4, "{line}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(report["ok"], false);
    assert!(report["findings"].as_array().unwrap().iter().any(|f| f["status"] == "hint"), "{report}");
}

#[test]
fn config_prints_the_resolved_settings_with_paths_and_no_secret() {
    let server = server(|_| {});
    let config = rsa_config("config-cmd", "http", ports(&server), "bot-2048.pkcs8.pem");
    let keys = fixture_keys("bot-2048.pkcs8.pem");
    let path = config.to_str().unwrap();
    let (output, _) = run_checked(&server, &config, &keys, &["config", "--config", path, "--json"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let settings: serde_json::Value = serde_json::from_str(&stdout(&output)).expect("stdout is JSON");
    assert_eq!(settings["username"], BOT);
    assert_eq!(settings["credentials"]["type"], "rsa");
    assert!(settings["credentials"]["private_key"]["path"].as_str().unwrap().ends_with("bot-2048.pkcs8.pem"));
    assert_eq!(settings["services"]["keyManager"], server.key_manager_url());
    assert_eq!(settings["retry"]["max_attempts"], 1);
    assert_eq!(server.counters().total_requests(), 0, "no request");

    let (output, _) = run_checked(&server, &config, &keys, &["config", "-c", path], &[]);
    let out = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(out.contains(&format!("bot.username:    {BOT}\n")), "{out}");
    assert!(out.contains("bot.privateKey:  path ") && out.contains("bot-2048.pkcs8.pem"), "{out}");

    let (code, line) = failure(&run(&["config", "-c", "/nonexistent/bot.yaml"]));
    assert_eq!(code, 3, "{line}");
}
