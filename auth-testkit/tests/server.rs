//! The fake on loopback: HTTP, HTTPS and mutual TLS with ureq, concurrency, network faults, stop on drop.

mod common;

use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::net::{agent, identity, read};
use common::*;
use serde_json::json;
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer, Fault};

fn server() -> FakePodServer {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bot", BOT_2048_PUB).unwrap();
    pod.add_cert_bot("certbot").unwrap();
    FakePodServer::start(pod).unwrap()
}

fn fresh_jwt() -> String {
    login_jwt(&key(BOT_2048_KEY), "bot", secs(SystemTime::now()) + 240)
}

fn rsa_login(agent: &ureq::Agent, base: &str, path: &str) -> (u16, serde_json::Value) {
    read(
        agent
            .post(format!("{base}{path}"))
            .header("Content-Type", "application/json")
            .send(json!({ "token": fresh_jwt() }).to_string()),
    )
}

#[test]
fn rsa_login_sessioninfo_and_echo_over_plain_http() {
    let server = server();
    let http = agent(None, None);
    let base = server.http_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    let (status, session) = rsa_login(&http, &base, "/login/pubkey/authenticate");
    assert_eq!((status, session["name"].as_str()), (200, Some("sessionToken")));
    let (status, km) = rsa_login(&http, &base, "/relay/pubkey/authenticate");
    assert_eq!(status, 200);
    let session = session["token"].as_str().unwrap();
    let km = km["token"].as_str().unwrap();

    let (status, user) = read(http.get(format!("{base}/pod/v2/sessioninfo")).header("sessionToken", session).call());
    assert_eq!((status, user["username"].as_str()), (200, Some("bot")));
    let (status, echoed) = read(
        http.post(format!("{base}/agent/v1/util/echo"))
            .header("sessionToken", session)
            .header("keyManagerToken", km)
            .header("Content-Type", "application/json")
            .send(r#"{"message":"Hello World"}"#),
    );
    assert_eq!((status, echoed), (200, json!({"message": "Hello World"})));

    server.pod().expire_all();
    let (status, body) = read(http.get(format!("{base}/pod/v2/sessioninfo")).header("sessionToken", session).call());
    assert_eq!((status, body), (401, json!({"code": 401, "message": "Invalid session"})));
    assert_eq!(server.counters().responses(Endpoint::SessionInfo, 200), 1);
}

#[test]
fn https_listener_serves_the_same_pod_under_the_fake_ca() {
    let server = server();
    assert!(server.https_url().starts_with("https://127.0.0.1:"));
    let trusted = agent(Some(server.ca_pem()), None);
    let (status, _) = rsa_login(&trusted, &server.https_url(), "/login/pubkey/authenticate");
    assert_eq!(status, 200);
    let localhost = format!("https://localhost:{}", server.https_addr().port());
    let (status, body) = read(trusted.get(format!("{localhost}/agent/v3/health")).call());
    assert_eq!((status, body), (200, json!({"status": "UP"})));
    // Without the fake's CA the server is not trusted.
    let untrusted = agent(None, None);
    assert!(untrusted.get(format!("{}/agent/v3/health", server.https_url())).call().is_err());
}

#[test]
fn mtls_certificate_login_with_and_without_a_client_certificate() {
    let server = server();
    let id = server.client_identity("certbot").unwrap();
    assert!(!format!("{id:?}").contains("PRIVATE KEY"));
    let mtls = agent(Some(server.ca_pem()), identity(id));
    let base = server.mtls_url();

    let (status, body) = read(mtls.post(format!("{base}/sessionauth/v1/authenticate")).send_empty());
    assert_eq!((status, body["name"].as_str()), (200, Some("sessionToken")), "{body}");
    assert_eq!(claims(body["token"].as_str().unwrap())["sub"], "certbot");
    let (status, body) = read(mtls.post(format!("{base}/keyauth/v1/authenticate")).send_empty());
    assert_eq!((status, body["name"].as_str()), (200, Some("keyManagerToken")));
    let (status, _) = read(
        mtls.post(format!("{base}/sessionauth/v1/authenticate")).header("Content-Type", "application/json").send("{}"),
    );
    assert_eq!(status, 400);

    // No client certificate: the handshake is refused.
    let anonymous = agent(Some(server.ca_pem()), None);
    assert!(anonymous.post(format!("{base}/sessionauth/v1/authenticate")).send_empty().is_err());
    // A valid certificate for a CN that is no bot.
    let stranger = server.issue_client_identity("stranger").unwrap();
    let (status, _) = read(
        agent(Some(server.ca_pem()), identity(&stranger))
            .post(format!("{base}/sessionauth/v1/authenticate"))
            .send_empty(),
    );
    assert_eq!(status, 401);
    // On the plain listener no certificate can be presented.
    let (status, body) =
        read(agent(None, None).post(format!("{}/sessionauth/v1/authenticate", server.http_url())).send_empty());
    assert_eq!((status, body["message"].as_str()), (400, Some("No client certificate presented")));

    let counters = server.counters();
    assert_eq!(counters.responses(Endpoint::CertSessionLogin, 200), 1);
    assert_eq!(counters.requests(Endpoint::CertSessionLogin), 4, "the refused handshake never reached the pod");
}

/// Polls `condition` until it holds or `limit` passes: waiting for a state, not for time.
fn wait_until(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() > deadline {
            return false;
        }
        thread::yield_now();
    }
    true
}

#[test]
fn delayed_session_and_key_manager_logins_overlap() {
    let server = server();
    server.pod().set_latency(Endpoint::SessionLogin, Duration::from_millis(1500));
    server.pod().set_latency(Endpoint::KeyManagerLogin, Duration::from_millis(300));
    let base = server.http_url();
    assert_eq!(server.peak_in_flight(), 0);
    thread::scope(|scope| {
        let slow = scope.spawn(|| rsa_login(&agent(None, None), &base, "/login/pubkey/authenticate").0);
        assert!(wait_until(Duration::from_secs(10), || server.in_flight() == 1), "session login never arrived");
        let km = scope.spawn(|| rsa_login(&agent(None, None), &base, "/relay/pubkey/authenticate").0);
        assert_eq!(km.join().unwrap(), 200);
        // The KM login was answered while the session login still waited out its latency.
        assert_eq!(server.in_flight(), 1, "delays were served one after the other");
        assert_eq!(slow.join().unwrap(), 200);
    });
    assert_eq!(server.peak_in_flight(), 2);
    assert_eq!(server.peak_in_flight_of(Endpoint::SessionLogin), 1);
    assert_eq!(server.peak_in_flight_of(Endpoint::KeyManagerLogin), 1);
    assert_eq!(server.in_flight(), 0);

    // Two concurrent logins to one endpoint.
    server.reset_peaks();
    assert_eq!(server.peak_in_flight(), 0);
    thread::scope(|scope| {
        let first = scope.spawn(|| rsa_login(&agent(None, None), &base, "/login/pubkey/authenticate").0);
        assert!(wait_until(Duration::from_secs(10), || server.in_flight() == 1));
        let second = scope.spawn(|| rsa_login(&agent(None, None), &base, "/login/pubkey/authenticate").0);
        assert!(wait_until(Duration::from_secs(10), || server.peak_in_flight_of(Endpoint::SessionLogin) == 2));
        assert_eq!((first.join().unwrap(), second.join().unwrap()), (200, 200));
    });
}

#[test]
fn network_faults_over_the_wire() {
    let server = server();
    let http = agent(None, None);
    let base = server.http_url();
    {
        let mut pod = server.pod();
        pod.inject(Endpoint::Health, 1, Fault::Close);
        pod.inject(Endpoint::Health, 1, Fault::Garbage);
        pod.inject(Endpoint::Health, 2, Fault::status_retry_after(503, 3));
        pod.inject(Endpoint::Health, 1, Fault::MalformedJson);
        pod.inject(Endpoint::Health, 1, Fault::OversizedBody(3 * 1024 * 1024));
    }
    let health = || http.get(format!("{base}/agent/v3/health")).call();
    assert!(health().is_err(), "closed without an answer");
    assert!(health().is_err(), "garbage is not HTTP");
    for _ in 0..2 {
        let response = health().unwrap();
        assert_eq!(response.status().as_u16(), 503);
        assert_eq!(response.headers()["retry-after"], "3");
    }
    let (status, body) = read(health());
    assert_eq!((status, body), (200, serde_json::Value::Null), "unparsable body");
    let mut big = health().unwrap();
    let len = big.body_mut().with_config().limit(10 * 1024 * 1024).read_to_vec().unwrap().len();
    assert_eq!(len, 3 * 1024 * 1024);
    let (status, body) = read(health());
    assert_eq!((status, body), (200, json!({"status": "UP"})));
    assert_eq!(server.counters().requests(Endpoint::Health), 7);

    // Through TLS too: the connection closes without a response.
    server.pod().inject(Endpoint::Health, 1, Fault::Close);
    let tls = agent(Some(server.ca_pem()), None);
    assert!(tls.get(format!("{}/agent/v3/health", server.https_url())).call().is_err());
    assert!(tls.get(format!("{}/agent/v3/health", server.https_url())).call().is_ok());
}

#[test]
fn skewed_server_clock_refuses_a_fresh_jwt() {
    let server = server();
    server.pod().set_clock_skew(600);
    let (status, body) = rsa_login(&agent(None, None), &server.http_url(), "/login/pubkey/authenticate");
    assert_eq!((status, body["message"].as_str()), (401, Some("JWT expired")));
}

#[test]
fn dropping_the_server_stops_every_listener() {
    let server = server();
    let addrs = [server.http_addr(), server.https_addr(), server.mtls_addr()];
    for addr in addrs {
        assert!(std::net::TcpStream::connect(addr).is_ok());
    }
    // A request stuck in a long latency must not keep the server alive.
    server.pod().set_latency(Endpoint::Health, Duration::from_secs(3600));
    let base = server.http_url();
    let stuck = thread::spawn(move || agent(None, None).get(format!("{base}/agent/v3/health")).call().is_err());
    assert!(wait_until(Duration::from_secs(10), || server.in_flight() == 1));
    drop(server);
    assert!(stuck.join().unwrap(), "the stuck request was cut off");
    for addr in addrs {
        assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} still accepts");
    }
}
