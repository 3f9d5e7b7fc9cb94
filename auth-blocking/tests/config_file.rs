//! Bots built from BDK configuration files, the event hook, and the refusal to send tokens outside the configured
//! services.

mod common;

use std::sync::{Arc, Mutex};

use common::{BOT, CERT_BOT, https_server, server};
use symphony_auth_blocking::{Bot, Error};
use symphony_auth_core::{ConfigFileError, Event, UsageError, echo};
use symphony_auth_testkit::{Fault, Role};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("auth-blocking-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_rsa_bot_from_a_bdk_yaml_file_logs_in() {
    let server = server(|_| {});
    let dir = temp_dir("rsa");
    let key = format!("{}/../fixtures/keys/bot-2048.pkcs8.pem", env!("CARGO_MANIFEST_DIR"));
    let address = server.addr(Role::Pod);
    let (km, agent) = (server.addr(Role::KeyManager).port(), server.addr(Role::Agent).port());
    let config = write(
        &dir,
        "config.yaml",
        &format!(
            "scheme: http\nhost: {}\nport: {}\nkeyManager:\n  port: {km}\nagent:\n  port: {agent}\n\
             bot:\n  username: {BOT}\n  privateKey:\n    path: {key}\ndatafeed:\n  version: v2\n",
            address.ip(),
            address.port()
        ),
    );
    let bot = Bot::from_config_file(&config).unwrap();
    assert_eq!(bot.session_info().unwrap().username, BOT);
    assert_eq!(bot.send(echo(bot.config().endpoints(), "from yaml")).unwrap().status(), 200);
}

#[test]
fn a_certificate_bot_from_a_json_file_uses_mutual_tls() {
    let server = https_server(|_| {});
    let dir = temp_dir("cert");
    let identity = server.client_identity(CERT_BOT).unwrap();
    let bundle = write(&dir, "bot.pem", &identity.bundle_pem());
    let ca = write(&dir, "ca.pem", server.ca_pem());
    let port = |role| server.addr(role).port();
    let json = serde_json::json!({
        "host": server.addr(Role::Pod).ip().to_string(), "port": port(Role::Pod), "agent": { "port": port(Role::Agent) },
        "sessionAuth": { "port": port(Role::SessionAuth) }, "keyManager": { "port": port(Role::KeyAuth) },
        "bot": { "username": CERT_BOT, "certificate": { "path": bundle } },
        "ssl": { "trustStore": { "path": ca } },
    });
    let config = write(&dir, "config.json", &json.to_string());
    let bot = Bot::from_config_file(&config).unwrap();
    assert_eq!(bot.session_info().unwrap().username, CERT_BOT);
}

#[test]
fn configuration_mistakes_name_the_key() {
    let dir = temp_dir("bad");
    let missing = Bot::from_config_file(dir.join("nope.yaml")).unwrap_err();
    assert!(matches!(missing, Error::ConfigFile(ConfigFileError::Unreadable { .. })), "{missing}");
    let both = write(&dir, "both.yaml", "host: h\nbot: {username: b, privateKey: {path: k}, certificate: {path: c}}");
    assert_eq!(
        Bot::from_config_file(&both).unwrap_err().to_string(),
        "both `bot.privateKey` (RSA) and `bot.certificate` are configured: choose one"
    );
    let no_key = write(&dir, "k.yaml", "host: h\nbot: {username: b, privateKey: {path: /does/not/exist.pem}}");
    let error = Bot::from_config_file(&no_key).unwrap_err();
    assert!(error.to_string().starts_with("`bot.privateKey`: cannot read"), "{error}");
}

#[test]
fn tokens_are_never_sent_outside_the_configured_services() {
    let server = server(|_| {});
    let bot = common::rsa_bot(&server);
    let foreign = http::Request::get("http://192.0.2.1/pod/v2/sessioninfo?secret=x").body(Vec::new()).unwrap();
    assert_eq!(
        bot.send(foreign).unwrap_err(),
        Error::Usage(UsageError::ForeignUri("http://192.0.2.1/pod/v2/sessioninfo".into()))
    );
    assert_eq!(server.counters().total_requests(), 0, "not even a login happened");
}

#[test]
fn the_event_hook_sees_retries_and_the_login() {
    let server = server(|pod| pod.inject(symphony_auth_testkit::Endpoint::SessionLogin, 2, Fault::status(503)));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let bot =
        common::rsa_builder(&server).on_event(move |event| sink.lock().unwrap().push(event.clone())).build().unwrap();
    bot.tokens().unwrap();
    let events = seen.lock().unwrap();
    let retries = events.iter().filter(|e| matches!(e, Event::RetryScheduled { .. })).count();
    assert_eq!(retries, 2, "{events:?}");
    assert!(matches!(events.last(), Some(Event::Authenticated { .. })), "{events:?}");
}
