//! The fake on loopback: one listener per role over HTTP, HTTPS and mutual TLS with ureq, RSA and ECDSA PKIs,
//! concurrency, network faults, rate limits, stop on drop.

mod common;

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::net::{agent, identity, read};
use common::*;
use serde_json::json;
use symphony_auth_core::BaseUrl;
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer, Fault, LoginRateLimit, PkiKeys, Role};

fn pod() -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bot", BOT_2048_PUB).unwrap();
    pod.add_cert_bot("certbot").unwrap();
    pod
}

fn server() -> FakePodServer {
    FakePodServer::start(pod()).unwrap()
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
fn each_role_has_its_own_listener_and_the_wrong_host_answers_404() {
    let server = server();
    let http = agent(None, None);
    let ports: BTreeSet<u16> = Role::ALL.iter().map(|&r| server.addr(r).port()).collect();
    assert_eq!(ports.len(), 5, "{server:?}");
    for role in [Role::Pod, Role::KeyManager, Role::Agent] {
        assert!(server.url(role).starts_with("http://127.0.0.1:"), "{role:?}");
    }
    for role in [Role::SessionAuth, Role::KeyAuth] {
        assert!(server.url(role).starts_with("https://127.0.0.1:"), "{role:?}");
    }
    let (pod, km, agent_url) = (server.pod_url(), server.key_manager_url(), server.agent_url());

    // Logins sent to the wrong host fail as against a real deployment, and reach no login service.
    for (base, path) in [
        (&km, "/login/pubkey/authenticate"),
        (&agent_url, "/login/pubkey/authenticate"),
        (&pod, "/relay/pubkey/authenticate"),
    ] {
        let (status, body) = rsa_login(&http, base, path);
        assert_eq!(status, 404, "{path} on {base}: {body}");
    }
    assert_eq!(server.counters().requests(Endpoint::SessionLogin), 0);
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 0);

    let (status, session) = rsa_login(&http, &pod, "/login/pubkey/authenticate");
    assert_eq!((status, session["name"].as_str()), (200, Some("sessionToken")));
    let (status, km_token) = rsa_login(&http, &km, "/relay/pubkey/authenticate");
    assert_eq!(status, 200);
    let session = session["token"].as_str().unwrap();
    let km_token = km_token["token"].as_str().unwrap();

    let info = |base: &str| read(http.get(format!("{base}/pod/v2/sessioninfo")).header("sessionToken", session).call());
    let echo = |base: &str| {
        read(
            http.post(format!("{base}/agent/v1/util/echo"))
                .header("sessionToken", session)
                .header("keyManagerToken", km_token)
                .header("Content-Type", "application/json")
                .send(r#"{"message":"Hello World"}"#),
        )
    };
    let (status, user) = info(&pod);
    assert_eq!((status, user["username"].as_str()), (200, Some("bot")));
    assert_eq!(echo(&agent_url), (200, json!({"message": "Hello World"})));
    assert_eq!(info(&agent_url).0, 404, "the pod API is not on the agent");
    assert_eq!(echo(&pod).0, 404, "the agent API is not on the pod");
    assert_eq!(read(http.get(format!("{pod}/agent/v3/health")).call()).0, 404);
    assert_eq!(read(http.get(format!("{agent_url}/agent/v3/health")).call()).0, 200);

    server.pod().expire_all();
    let (status, body) = info(&pod);
    assert_eq!((status, body), (401, json!({"code": 401, "message": "Invalid session"})));
    let counters = server.counters();
    assert_eq!(counters.responses(Endpoint::SessionInfo, 200), 1);
    assert_eq!(counters.responses(Endpoint::NotFound, 404), 6);
}

#[test]
fn ready_made_client_endpoints_point_each_service_at_its_listener() {
    let server = server();
    let base = |which, role| BaseUrl::parse(which, &server.url(role)).unwrap();
    let rsa = server.rsa_endpoints();
    assert_eq!(rsa.pod, base("pod", Role::Pod));
    assert_eq!(rsa.key_manager, base("keyManager", Role::KeyManager));
    assert_eq!(rsa.agent, base("agent", Role::Agent));
    assert_eq!(rsa.session_auth, base("sessionAuth", Role::SessionAuth));
    let cert = server.cert_endpoints();
    assert_eq!(cert.key_manager, base("keyManager", Role::KeyAuth), "a client's key manager serves `/keyauth`");
    assert_eq!((&cert.pod, &cert.agent, &cert.session_auth), (&rsa.pod, &rsa.agent, &rsa.session_auth));
    // Requests built on the endpoints reach the right listener.
    let http = agent(None, None);
    assert_eq!(rsa_login(&http, &rsa.key_manager.to_string(), "/relay/pubkey/authenticate").0, 200);
    assert_eq!(rsa_login(&http, &rsa.pod.to_string(), "/login/pubkey/authenticate").0, 200);
}

#[test]
fn https_serves_the_pod_key_manager_and_agent_under_the_fake_ca() {
    let server = FakePodServer::builder(pod()).https(true).start().unwrap();
    assert!(server.is_https());
    for role in Role::ALL {
        assert!(server.url(role).starts_with("https://127.0.0.1:"), "{role:?}");
    }
    let trusted = agent(Some(server.ca_pem()), None);
    assert_eq!(rsa_login(&trusted, &server.pod_url(), "/login/pubkey/authenticate").0, 200);
    assert_eq!(rsa_login(&trusted, &server.key_manager_url(), "/relay/pubkey/authenticate").0, 200);
    let localhost = format!("https://localhost:{}", server.addr(Role::Agent).port());
    let (status, body) = read(trusted.get(format!("{localhost}/agent/v3/health")).call());
    assert_eq!((status, body), (200, json!({"status": "UP"})));
    // Without the fake's CA the server is not trusted; plain HTTP is not spoken there.
    let untrusted = agent(None, None);
    assert!(untrusted.get(format!("{}/agent/v3/health", server.agent_url())).call().is_err());
    let plain = format!("http://{}/agent/v3/health", server.addr(Role::Agent));
    assert!(untrusted.get(plain).call().is_err());
}

fn certificate_logins(server: &FakePodServer) {
    let id = server.client_identity("certbot").unwrap();
    assert!(!format!("{id:?}").contains("PRIVATE KEY"));
    let mtls = agent(Some(server.ca_pem()), identity(id));
    let (session_auth, key_auth) = (server.session_auth_url(), server.key_auth_url());

    let (status, body) = read(mtls.post(format!("{session_auth}/sessionauth/v1/authenticate")).send_empty());
    assert_eq!((status, body["name"].as_str()), (200, Some("sessionToken")), "{body}");
    assert_eq!(claims(body["token"].as_str().unwrap())["sub"], "certbot");
    let (status, body) = read(mtls.post(format!("{key_auth}/keyauth/v1/authenticate")).send_empty());
    assert_eq!((status, body["name"].as_str()), (200, Some("keyManagerToken")));
    // Each certificate login on its own host only.
    assert_eq!(read(mtls.post(format!("{session_auth}/keyauth/v1/authenticate")).send_empty()).0, 404);
    assert_eq!(read(mtls.post(format!("{key_auth}/sessionauth/v1/authenticate")).send_empty()).0, 404);
    let (status, _) = read(
        mtls.post(format!("{session_auth}/sessionauth/v1/authenticate"))
            .header("Content-Type", "application/json")
            .send("{}"),
    );
    assert_eq!(status, 400);

    // No client certificate: the handshake is refused, on both mutual-TLS hosts.
    let anonymous = agent(Some(server.ca_pem()), None);
    assert!(anonymous.post(format!("{session_auth}/sessionauth/v1/authenticate")).send_empty().is_err());
    assert!(anonymous.post(format!("{key_auth}/keyauth/v1/authenticate")).send_empty().is_err());
    // A valid certificate for a CN that is no bot.
    let stranger = server.issue_client_identity("stranger").unwrap();
    let (status, _) = read(
        agent(Some(server.ca_pem()), identity(&stranger))
            .post(format!("{session_auth}/sessionauth/v1/authenticate"))
            .send_empty(),
    );
    assert_eq!(status, 401);

    let counters = server.counters();
    assert_eq!(counters.responses(Endpoint::CertSessionLogin, 200), 1);
    assert_eq!(counters.requests(Endpoint::CertSessionLogin), 3, "the refused handshakes never reached the pod");
}

#[test]
fn certificate_logins_over_mutual_tls_with_the_default_rsa_4096_pki() {
    let server = server();
    let id = server.client_identity("certbot").unwrap();
    // The client key is the 4096-bit RSA fixture (PKCS#8): rustls with ring signs and verifies with it.
    {
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = rsa::PrivateKey::from_pkcs8_pem(id.key_pem()).expect("an RSA client key");
        assert_eq!(key.n_bits_precision(), 4096);
    }
    certificate_logins(&server);

    // A certificate from another fake's CA is refused at the handshake: the RSA keys are shared, the CAs are not.
    let other = FakePodServer::start(pod()).unwrap();
    let foreign = other.client_identity("certbot").unwrap();
    let foreign_agent = agent(Some(server.ca_pem()), identity(foreign));
    let url = format!("{}/sessionauth/v1/authenticate", server.session_auth_url());
    assert!(foreign_agent.post(url).send_empty().is_err());
    // Nor does a client that trusts the other fake's CA trust this one's server.
    let (status, _) = rsa_login(&agent(None, None), &server.pod_url(), "/login/pubkey/authenticate");
    assert_eq!(status, 200);
    let wrong_ca = agent(Some(other.ca_pem()), identity(server.client_identity("certbot").unwrap()));
    assert!(wrong_ca.post(format!("{}/sessionauth/v1/authenticate", server.session_auth_url())).send_empty().is_err());
}

#[test]
fn certificate_logins_over_mutual_tls_with_an_ecdsa_pki() {
    let server = FakePodServer::builder(pod()).pki(PkiKeys::EcdsaP256).start().unwrap();
    let key_pem = server.client_identity("certbot").unwrap().key_pem().to_owned();
    {
        use rsa::pkcs8::DecodePrivateKey as _;
        assert!(rsa::PrivateKey::from_pkcs8_pem(&key_pem).is_err(), "not an RSA key");
    }
    certificate_logins(&server);
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
    let (base, km_base) = (server.pod_url(), server.key_manager_url());
    assert_eq!(server.peak_in_flight(), 0);
    thread::scope(|scope| {
        let slow = scope.spawn(|| rsa_login(&agent(None, None), &base, "/login/pubkey/authenticate").0);
        assert!(wait_until(Duration::from_secs(10), || server.in_flight() == 1), "session login never arrived");
        let km = scope.spawn(|| rsa_login(&agent(None, None), &km_base, "/relay/pubkey/authenticate").0);
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
    let base = server.agent_url();
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
    let server = FakePodServer::builder(pod()).https(true).start().unwrap();
    server.pod().inject(Endpoint::Health, 1, Fault::Close);
    let tls = agent(Some(server.ca_pem()), None);
    assert!(tls.get(format!("{}/agent/v3/health", server.agent_url())).call().is_err());
    assert!(tls.get(format!("{}/agent/v3/health", server.agent_url())).call().is_ok());
}

#[test]
fn skewed_server_clock_refuses_a_fresh_jwt() {
    let server = server();
    server.pod().set_clock_skew(600);
    let (status, body) = rsa_login(&agent(None, None), &server.pod_url(), "/login/pubkey/authenticate");
    assert_eq!((status, body["message"].as_str()), (401, Some("JWT expired")));
}

#[test]
fn dropping_the_server_stops_every_listener() {
    let server = server();
    let addrs = Role::ALL.map(|role| server.addr(role));
    for addr in addrs {
        assert!(std::net::TcpStream::connect(addr).is_ok());
    }
    // A request stuck in a long latency must not keep the server alive.
    server.pod().set_latency(Endpoint::Health, Duration::from_secs(3600));
    let base = server.agent_url();
    let stuck = thread::spawn(move || agent(None, None).get(format!("{base}/agent/v3/health")).call().is_err());
    assert!(wait_until(Duration::from_secs(10), || server.in_flight() == 1));
    drop(server);
    assert!(stuck.join().unwrap(), "the stuck request was cut off");
    for addr in addrs {
        assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} still accepts");
    }
}

#[test]
fn rate_limits_redirects_and_http_date_retry_after_over_the_wire() {
    let server = server();
    server.pod().set_login_rate_limit(Some(LoginRateLimit::new(1, Duration::from_secs(30))));
    let http = agent(None, None);
    assert_eq!(rsa_login(&http, &server.pod_url(), "/login/pubkey/authenticate").0, 200);
    let refused = http
        .post(format!("{}/login/pubkey/authenticate", server.pod_url()))
        .header("Content-Type", "application/json")
        .send(json!({ "token": fresh_jwt() }).to_string())
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((29..=30).contains(&wait), "{wait}");
    // The key manager has its own budget.
    assert_eq!(rsa_login(&http, &server.key_manager_url(), "/relay/pubkey/authenticate").0, 200);

    {
        let mut pod = server.pod();
        pod.inject(Endpoint::SessionInfo, 1, Fault::redirect(307, "http://192.0.2.1/pod/v2/sessioninfo"));
        pod.inject(Endpoint::SessionInfo, 1, Fault::status_retry_after_date(503, Duration::from_secs(90)));
    }
    let redirected = http.get(format!("{}/pod/v2/sessioninfo", server.pod_url())).call().unwrap();
    assert_eq!(redirected.status().as_u16(), 307);
    assert_eq!(redirected.headers()["location"], "http://192.0.2.1/pod/v2/sessioninfo");
    let unavailable = http.get(format!("{}/pod/v2/sessioninfo", server.pod_url())).call().unwrap();
    assert_eq!(unavailable.status().as_u16(), 503);
    let date = httpdate::parse_http_date(unavailable.headers()["retry-after"].to_str().unwrap()).unwrap();
    let served = httpdate::parse_http_date(unavailable.headers()["date"].to_str().unwrap()).unwrap();
    assert_eq!(date.duration_since(served).unwrap(), Duration::from_secs(90));
}
