//! Logging in against the fake pod: RSA and certificate, simplified key delivery, parallel login.

mod common;

use std::time::Duration;

use common::{BOT, CERT_BOT, KEY_2048, fast_retry, https_server, rsa_bot, rsa_builder, rsa_config, server};
use symphony_auth_blocking::symphony_auth_core::{
    self, ClientIdentity, Config, KeyManagerPolicy, State, TransportKind,
};
use symphony_auth_blocking::{Bot, Error};
use symphony_auth_testkit::{Endpoint, Role};

fn echo(bot: &Bot, message: &str) -> Result<serde_json::Value, Error> {
    let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), message))?;
    assert_eq!(response.status(), 200, "echo answered {}", response.status());
    Ok(serde_json::from_slice(response.body()).expect("echo answers JSON"))
}

#[test]
fn rsa_login_then_session_info_and_echo() {
    let server = server(|_| {});
    let bot = rsa_bot(&server);
    assert_eq!(bot.state(), State::NeedsSession { logging_in: false });

    let info = bot.session_info().unwrap();
    assert_eq!(info.username, BOT);
    assert_eq!(Some(info.id), server.pod().user_id(BOT));
    assert!(matches!(bot.state(), State::Ready { refreshing: false, .. }), "{:?}", bot.state());
    assert_eq!(echo(&bot, "hello").unwrap()["message"], "hello");

    let tokens = bot.tokens().unwrap();
    assert_eq!(tokens.generation().get(), 1);
    assert!(tokens.key_manager().is_some());
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1);
    assert_eq!(counters.requests(Endpoint::SessionInfo), 1);
    assert_eq!(counters.requests(Endpoint::Echo), 1);
}

#[test]
fn rsa_login_over_https_with_the_fake_ca_added_to_the_built_in_roots() {
    let server = https_server(|_| {});
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(bot.session_info().unwrap().username, BOT);
    assert_eq!(echo(&bot, "over tls").unwrap()["message"], "over tls");
}

fn cert_bot(server: &symphony_auth_testkit::FakePodServer, configure: impl FnOnce(Config) -> Config) -> Bot {
    let identity = server.client_identity(CERT_BOT).expect("generated at start");
    let identity = ClientIdentity::from_pem(identity.bundle_pem().as_bytes()).unwrap();
    let config = Config::certificate(server.cert_endpoints(), CERT_BOT).unwrap();
    Bot::builder(configure(config.with_retry(fast_retry())))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .client_identity(identity)
        .build()
        .unwrap()
}

#[test]
fn certificate_login_over_mutual_tls_then_session_info_and_echo() {
    let server = server(|_| {});
    let bot = cert_bot(&server, |c| c);

    let info = bot.session_info().unwrap();
    assert_eq!(info.username, CERT_BOT);
    assert_eq!(Some(info.id), server.pod().user_id(CERT_BOT));
    assert_eq!(echo(&bot, "mtls").unwrap()["message"], "mtls");
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::CertSessionLogin), 1);
    assert_eq!(counters.requests(Endpoint::CertKeyManagerLogin), 1);
    assert_eq!(counters.requests(Endpoint::SessionLogin), 0);
}

#[test]
fn skd_sequential_login_skips_the_key_manager_and_echo_needs_no_km_token() {
    let server = server(|pod| pod.set_skd(true));
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048).with_parallel_login(false)).build().unwrap();

    let tokens = bot.tokens().unwrap();
    assert!(tokens.simplified_key_delivery());
    assert!(tokens.key_manager().is_none());
    assert_eq!(echo(&bot, "skd").unwrap()["message"], "skd");
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 0);
}

#[test]
fn skd_certificate_login_skips_the_key_manager() {
    let server = server(|pod| pod.set_skd(true));
    let bot = cert_bot(&server, |c| c.with_parallel_login(false));
    assert!(bot.tokens().unwrap().key_manager().is_none());
    assert_eq!(echo(&bot, "skd").unwrap()["message"], "skd");
    assert_eq!(server.counters().requests(Endpoint::CertKeyManagerLogin), 0);
}

#[test]
fn skd_relogin_after_a_parallel_first_login_asks_the_pod_alone() {
    let server = server(|pod| pod.set_skd(true));
    let bot = rsa_bot(&server);
    bot.tokens().unwrap();
    // The first login sent both at once (nothing was known about SKD yet).
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 1);
    let tokens = bot.refresh().unwrap();
    assert_eq!(tokens.generation().get(), 2);
    assert!(tokens.key_manager().is_none());
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1, "the re-login must skip the key manager");
    assert_eq!(echo(&bot, "again").unwrap()["message"], "again");
}

#[test]
fn skd_with_the_key_manager_down_still_reaches_ready() {
    let server = server(|pod| {
        pod.set_skd(true);
        pod.set_key_manager_down(true);
        // The session answer comes after the key manager's 503, so the failure is seen first.
        pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(50));
    });
    let bot = rsa_bot(&server);
    let tokens = bot.tokens().unwrap();
    assert!(matches!(bot.state(), State::Ready { refreshing: false, .. }), "{:?}", bot.state());
    assert!(tokens.key_manager().is_none());
    assert!(server.counters().responses(Endpoint::KeyManagerLogin, 503) >= 1);
    assert_eq!(echo(&bot, "km down").unwrap()["message"], "km down");
}

#[test]
fn key_manager_down_without_skd_fails_the_login() {
    let server = server(|pod| pod.set_key_manager_down(true));
    let bot = rsa_bot(&server);
    let error = bot.tokens().unwrap_err();
    assert!(matches!(&error, Error::Auth(symphony_auth_core::AuthError::Unavailable { attempts: 5, .. })), "{error:?}");
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 5);
}

fn login_peak(parallel: bool) -> usize {
    let server = server(|pod| {
        pod.set_latency(Endpoint::SessionLogin, Duration::from_millis(150));
        pod.set_latency(Endpoint::KeyManagerLogin, Duration::from_millis(150));
    });
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048).with_parallel_login(parallel)).build().unwrap();
    bot.tokens().unwrap();
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
    assert_eq!(counters.requests(Endpoint::KeyManagerLogin), 1);
    server.peak_in_flight()
}

#[test]
fn parallel_login_overlaps_the_two_logins() {
    assert_eq!(login_peak(true), 2);
}

#[test]
fn sequential_login_does_not_overlap() {
    assert_eq!(login_peak(false), 1);
}

#[test]
fn key_manager_policy_never_sends_no_km_login() {
    let server = server(|_| {});
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048).with_key_manager(KeyManagerPolicy::Never))
        .build()
        .unwrap();
    assert!(bot.tokens().unwrap().key_manager().is_none());
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 0);
    // The pod alone works; the agent refuses a session without its key-manager token.
    assert_eq!(bot.session_info().unwrap().username, BOT);
}

#[test]
fn bot_is_clone_send_sync_and_debug_shows_no_secret() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug>() {}
    assert_traits::<Bot>();
    let server = server(|_| {});
    let bot = rsa_builder(&server).build().unwrap();
    let tokens = bot.tokens().unwrap();
    let printed = format!("{bot:?} {tokens:?}");
    assert!(!printed.contains(tokens.session().expose_secret()), "{printed}");
    assert!(printed.contains("Ready"), "{printed}");
}

/// A minimal HTTP CONNECT proxy on loopback: tunnels every connection and records each `CONNECT` target.
fn connect_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&targets);
    // Detached: it lives as long as the test process, serving whatever connects.
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let target = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() <= 2 {
                        break;
                    }
                }
                seen.lock().unwrap().push(target.clone());
                let upstream = TcpStream::connect(&target).unwrap();
                let mut client_write = client.try_clone().unwrap();
                client_write.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let mut upstream_read = upstream.try_clone().unwrap();
                let mut upstream_write = upstream;
                let down = std::thread::spawn(move || std::io::copy(&mut upstream_read, &mut client_write));
                let _ = std::io::copy(&mut reader, &mut upstream_write);
                let _ = upstream_write.shutdown(std::net::Shutdown::Write);
                let _ = down.join();
            });
        }
    });
    (url, targets)
}

#[test]
fn an_explicit_proxy_carries_logins_and_api_calls() {
    let server = https_server(|_| {});
    let (proxy, targets) = connect_proxy();
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .proxy(&proxy)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(bot.session_info().unwrap().username, BOT);
    let targets = targets.lock().unwrap().clone();
    let expected = [Role::Pod, Role::KeyManager, Role::Agent].map(|role| server.addr(role).to_string());
    assert!(!targets.is_empty() && targets.iter().all(|t| expected.contains(t)), "{targets:?} vs {expected:?}");
}

#[test]
fn a_proxy_for_one_service_carries_that_service_only() {
    let server = https_server(|_| {});
    let (proxy, targets) = connect_proxy();
    let bot = Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .service_proxy(symphony_auth_core::Service::Pod, Some(&proxy))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(bot.session_info().unwrap().username, BOT);
    let targets = targets.lock().unwrap().clone();
    let pod = server.addr(Role::Pod).to_string();
    assert!(!targets.is_empty() && targets.iter().all(|t| *t == pod), "only the pod through the proxy: {targets:?}");
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 1, "the key manager was reached directly");
}

#[test]
fn send_unauthenticated_attaches_no_tokens_and_does_not_log_in() {
    let server = server(|_| {});
    let bot = rsa_builder(&server).max_response_body(64).build().unwrap();
    let response = bot.send_unauthenticated(symphony_auth_core::session_info(bot.config().endpoints())).unwrap();
    assert_eq!(response.status(), 401, "no session token was sent");
    assert!(response.headers().contains_key(http::header::DATE));
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 0);
    assert_eq!(bot.state(), State::NeedsSession { logging_in: false });
    // The same response-size cap as `send`: the agent's info is larger than 64 bytes.
    let info = http::Request::get(format!("{}/agent/v1/info", server.agent_url())).body(Vec::new()).unwrap();
    assert!(matches!(bot.send_unauthenticated(info), Err(Error::Transport { kind: TransportKind::Other, .. })));
}
