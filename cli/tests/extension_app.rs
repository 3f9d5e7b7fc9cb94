//! `app-auth`, `verify-jwt` and the `common_jwt` field of `login`, run as a process against the fake pod over
//! HTTPS (RSA app) and mutual TLS (certificate app).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use symphony_auth_testkit::{FakePod, FakePodServer, Role, UserJwt};

const BOT: &str = "bot";
const APP: &str = "my-app";
/// Test-only keys (fixtures), never used anywhere real.
const PUB_2048: &str = include_str!("../../fixtures/keys/bot-2048.pub.pem");
/// A run that takes longer than this has hung: it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn server(configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, PUB_2048).unwrap();
    configure(&mut pod);
    FakePodServer::builder(pod).https(true).start().expect("fake pod starts")
}

fn run(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_symphony-auth"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).expect("the pipe reads");
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("symphony-auth {args:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("symphony-auth-app-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A BDK YAML for bot `bot` on the fake's HTTPS listeners, trusting its CA, with `extra` appended.
fn config(test: &str, server: &FakePodServer, extra: &str) -> PathBuf {
    let dir = temp_dir(test);
    let ca = write(&dir, "ca.pem", server.ca_pem());
    let key = format!("{}/../fixtures/keys/bot-2048.pkcs8.pem", env!("CARGO_MANIFEST_DIR"));
    let port = |role| server.addr(role).port();
    let yaml = format!(
        "host: 127.0.0.1\nport: {}\nkeyManager:\n  port: {}\nagent:\n  port: {}\nsessionAuth:\n  port: {}\n\
         bot:\n  username: {BOT}\n  privateKey:\n    path: {key}\nssl:\n  trustStore:\n    path: {}\n\
         retry:\n  maxAttempts: 1\n{extra}",
        port(Role::Pod),
        port(Role::KeyManager),
        port(Role::Agent),
        port(Role::SessionAuth),
        ca.display(),
    );
    write(&dir, "config.yaml", &yaml)
}

fn rsa_app_config(test: &str, server: &FakePodServer) -> PathBuf {
    let key = format!("{}/../fixtures/keys/bot-2048.pkcs8.pem", env!("CARGO_MANIFEST_DIR"));
    config(test, server, &format!("app:\n  appId: {APP}\n  privateKey:\n    path: {key}\n"))
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The exit code and the single stderr line.
fn failure(output: &Output) -> (i32, String) {
    let err = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "exactly one line on stderr: {err:?}");
    (output.status.code().unwrap(), err.trim_end().to_owned())
}

#[test]
fn app_auth_of_an_rsa_app_prints_the_contract_object() {
    let server = server(|pod| pod.add_extension_app(APP, PUB_2048).unwrap());
    let config = rsa_app_config("rsa", &server);
    let object = json(&run(&["app-auth", "--config", config.to_str().unwrap(), "--json"]));
    assert_eq!(object["app_id"], APP);
    assert_eq!(object["symphony_token"], "ok");
    assert_eq!(object["pod_certificate"], "ok");
    let now_ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
    let expire_at = object["expire_at"].as_u64().unwrap();
    assert!(expire_at > now_ms && expire_at <= now_ms + 3_700_000, "{expire_at}");
    assert_eq!(object.as_object().unwrap().len(), 4);
}

#[test]
fn app_auth_of_a_certificate_app_uses_mutual_tls() {
    let server = server(|pod| pod.add_cert_extension_app(APP));
    let dir = temp_dir("cert-bundle");
    let bundle = write(&dir, "app.pem", &server.issue_client_identity(APP).unwrap().bundle_pem());
    let config =
        config("cert", &server, &format!("app:\n  appId: {APP}\n  certificate:\n    path: {}\n", bundle.display()));
    let object = json(&run(&["app-auth", "--config", config.to_str().unwrap(), "--json"]));
    assert_eq!((object["app_id"].as_str(), object["pod_certificate"].as_str()), (Some(APP), Some("ok")));
}

#[test]
fn app_auth_of_an_unknown_app_is_a_rejection() {
    let server = server(|_| {});
    let config = rsa_app_config("unknown", &server);
    let (code, line) = failure(&run(&["app-auth", "--config", config.to_str().unwrap(), "--json"]));
    assert_eq!(code, 4, "{line}");
    assert!(line.starts_with("credentials rejected: "), "{line}");
}

#[test]
fn verify_jwt_prints_the_user_or_one_line_saying_why_not() {
    let server = server(|pod| pod.add_extension_app(APP, PUB_2048).unwrap());
    let config = rsa_app_config("verify", &server);
    let config = config.to_str().unwrap();
    let now = SystemTime::now();
    let mint = |jwt: UserJwt| server.pod().pod_certificate().unwrap().mint(&jwt);
    let valid = mint(UserJwt::valid(APP, 12345, "jdoe", now));
    let object = json(&run(&["verify-jwt", "--config", config, "--jwt", &valid, "--json"]));
    assert_eq!((object["user_id"].as_u64(), object["username"].as_str()), (Some(12345), Some("jdoe")));

    for (jwt, reason) in [
        (mint(UserJwt::valid(APP, 1, "a", now).expired(Duration::from_secs(60))), "expired"),
        (mint(UserJwt::valid(APP, 1, "a", now).signed_by_another_key()), "not signed by the pod certificate"),
        (mint(UserJwt::valid("other-app", 1, "a", now)), "issued for another app"),
    ] {
        let output = run(&["verify-jwt", "--config", config, "--jwt", &jwt, "--json"]);
        let (code, line) = failure(&output);
        assert_eq!(code, 4, "{line}");
        assert!(line.starts_with("credentials rejected: ") && line.contains(reason), "{reason}: {line}");
        assert!(output.stdout.is_empty());
        for part in jwt.split('.').filter(|p| p.len() > 8) {
            assert!(!line.contains(part), "the JWT is never printed: {line}");
        }
    }
}

#[test]
fn login_reports_whether_the_common_jwt_was_used() {
    let server = server(|_| {});
    let on = config("cjwt-on", &server, "commonJwt:\n  enabled: true\n");
    let object = json(&run(&["login", "--config", on.to_str().unwrap(), "--json"]));
    assert_eq!(object["common_jwt"], "ok");
    assert_eq!(object["session"], "ok");
    let off = config("cjwt-off", &server, "");
    let object = json(&run(&["login", "--config", off.to_str().unwrap(), "--json"]));
    assert_eq!(object["common_jwt"], "skipped");
}
