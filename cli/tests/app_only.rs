//! Configuration files with an `app` section and no `bot` one: `obo`, `app-auth` and `verify-jwt` run from them,
//! `login` says what is missing; and `verify-jwt --jwt -` reads the JWT from standard input.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use symphony_auth_testkit::{FakePod, FakePodServer, Role, UserJwt};

const APP: &str = "my-app";
/// Test-only key (fixture), never used anywhere real.
const PUB_2048: &str = include_str!("../../fixtures/keys/bot-2048.pub.pem");
/// A run that takes longer than this has hung: it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the binary with `args`, `stdin` written to its standard input, killing it (and failing) past
/// [`RUN_TIMEOUT`].
fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_symphony-auth"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from a thread and closed, so that a child that does not read cannot block the test.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
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
        std::thread::sleep(Duration::from_millis(20)); // polling the exit, not standing in for it
    };
    writer.join().unwrap();
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn fixture(name: &str) -> String {
    format!("{}/../fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fake pod with the RSA app registered for OBO and as an extension app, and an OBO user who installed it.
fn server(https: bool) -> FakePodServer {
    let mut pod = FakePod::new();
    pod.add_rsa_app(APP, PUB_2048).unwrap();
    pod.add_extension_app(APP, PUB_2048).unwrap();
    pod.add_user(12_345, "j.doe", true).unwrap();
    FakePodServer::builder(pod).https(https).start().expect("fake pod starts")
}

/// A BDK JSON file with the hosts of `server`, an `app` section (the RSA app) and no `bot` section.
fn app_only_config(test: &str, server: &FakePodServer, https: bool) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("symphony-auth-app-only-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = json!({
        "scheme": if https { "https" } else { "http" },
        "host": "127.0.0.1", "port": server.addr(Role::Pod).port(),
        "keyManager": { "port": server.addr(Role::KeyManager).port() },
        "agent": { "port": server.addr(Role::Agent).port() },
        "sessionAuth": { "port": server.addr(Role::SessionAuth).port() },
        "app": { "appId": APP, "privateKey": { "path": fixture("bot-2048.pkcs8.pem") } },
        "retry": { "maxAttempts": 1 },
    });
    if https {
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, server.ca_pem()).unwrap();
        config["ssl"] = json!({ "trustStore": { "path": ca } });
    }
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

/// The exit code and the single stderr line of a failed run.
fn failure(output: &Output) -> (i32, String) {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "exactly one line on stderr: {stderr:?}");
    (output.status.code().unwrap(), stderr.trim_end().to_owned())
}

#[test]
fn obo_runs_from_an_app_only_file() {
    let server = server(false);
    let config = app_only_config("obo", &server, false);
    let object = json_out(&run(&["obo", "--config", config.to_str().unwrap(), "--user-id", "12345", "--json"], b""));
    assert_eq!(object, json!({ "app_id": APP, "user_id": 12345, "username": "j.doe", "session": "ok" }));
}

#[test]
fn app_auth_runs_from_an_app_only_file() {
    let server = server(true);
    let config = app_only_config("app-auth", &server, true);
    let object = json_out(&run(&["app-auth", "--config", config.to_str().unwrap(), "--json"], b""));
    assert_eq!((object["app_id"].as_str(), object["symphony_token"].as_str()), (Some(APP), Some("ok")));
    assert_eq!(object["pod_certificate"], "ok");
}

#[test]
fn verify_jwt_runs_from_an_app_only_file() {
    let server = server(true);
    let config = app_only_config("verify", &server, true);
    let jwt = server.pod().pod_certificate().unwrap().mint(&UserJwt::valid(APP, 12345, "jdoe", SystemTime::now()));
    let object = json_out(&run(&["verify-jwt", "--config", config.to_str().unwrap(), "--jwt", &jwt, "--json"], b""));
    assert_eq!((object["user_id"].as_u64(), object["username"].as_str()), (Some(12345), Some("jdoe")));
}

#[test]
fn verify_jwt_reads_the_jwt_from_standard_input() {
    let server = server(true);
    let config = app_only_config("stdin", &server, true);
    let config = config.to_str().unwrap();
    let mint = |jwt: &UserJwt| server.pod().pod_certificate().unwrap().mint(jwt);
    let jwt = mint(&UserJwt::valid(APP, 12345, "jdoe", SystemTime::now()));
    let by_argument = json_out(&run(&["verify-jwt", "--config", config, "--jwt", &jwt, "--json"], b""));
    // A line, as `echo "$JWT" |` writes it.
    let piped = run(&["verify-jwt", "--config", config, "--jwt", "-", "--json"], format!("{jwt}\n").as_bytes());
    assert_eq!(json_out(&piped), by_argument);

    let expired = mint(&UserJwt::valid(APP, 1, "a", SystemTime::now()).expired(Duration::from_secs(60)));
    let (code, line) = failure(&run(&["verify-jwt", "--config", config, "--jwt", "-"], expired.as_bytes()));
    assert_eq!(code, 4, "{line}");
    assert!(line.contains("expired"), "{line}");

    let (code, line) = failure(&run(&["verify-jwt", "--config", config, "--jwt", "-"], b"  \n"));
    assert_eq!(code, 2, "an empty standard input is a usage error: {line}");
    assert!(line.contains("--jwt -") && line.contains("no JWT"), "{line}");
}

#[test]
fn login_from_an_app_only_file_says_the_bot_section_is_missing() {
    let server = server(false);
    let config = app_only_config("login", &server, false);
    let (code, line) = failure(&run(&["login", "--config", config.to_str().unwrap()], b""));
    assert_eq!(code, 3, "a configuration error: {line}");
    assert!(line.contains("no `bot` section"), "{line}");
}
