//! Shared set-up for the integration tests: a fake pod on loopback and bots pointed at it.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use symphony_auth_async::{Bot, BotBuilder};
use symphony_auth_core::{Config, Endpoints, Event, KeyManagerPolicy, RetryPolicy, RsaSigner};
use symphony_auth_testkit::{FakePod, FakePodServer};

/// Test-only keys (see fixtures/keys/README.md).
pub const KEY: &[u8] = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
pub const PUBLIC_KEY: &str = include_str!("../../../fixtures/keys/bot-2048.pub.pem");
pub const OTHER_PUBLIC_KEY: &str = include_str!("../../../fixtures/keys/other-2048.pub.pem");
pub const BOT: &str = "test.bot";
pub const CERT_BOT: &str = "cert.bot";

/// A fake pod with the RSA bot and the certificate bot registered, adjusted by `setup`, served on loopback: the
/// pod, key manager and agent over plain HTTP, each on its own port.
pub fn server(setup: impl FnOnce(&mut FakePod)) -> FakePodServer {
    FakePodServer::start(pod(setup)).unwrap()
}

/// As [`server`], with the pod, key manager and agent over HTTPS under the fake's CA.
pub fn https_server(setup: impl FnOnce(&mut FakePod)) -> FakePodServer {
    FakePodServer::builder(pod(setup)).https(true).start().unwrap()
}

fn pod(setup: impl FnOnce(&mut FakePod)) -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, PUBLIC_KEY).unwrap();
    pod.add_cert_bot(CERT_BOT).unwrap();
    setup(&mut pod);
    pod
}

/// Fast retries with no jitter: 5 attempts, 10 ms doubling, capped at `cap`.
pub fn quick_retry(cap: Duration) -> RetryPolicy {
    RetryPolicy::new(5, Duration::from_millis(10), 2.0, cap).unwrap().with_jitter(0.0).unwrap()
}

/// The RSA bot at `endpoints`.
pub fn rsa_config(endpoints: Endpoints) -> Config {
    let signer = Arc::new(RsaSigner::from_pem(KEY).unwrap());
    Config::rsa(endpoints, BOT, signer).unwrap().with_retry(quick_retry(Duration::from_millis(100)))
}

/// The RSA bot on the fake's listeners.
pub fn rsa_bot(server: &FakePodServer) -> Bot {
    Bot::builder(rsa_config(server.rsa_endpoints())).seed(7).build().unwrap()
}

/// The certificate bot: session auth and key manager over mutual TLS, trusting the fake's CA, presenting its
/// client certificate.
pub fn cert_builder(server: &FakePodServer) -> BotBuilder {
    let config = Config::certificate(server.cert_endpoints(), CERT_BOT)
        .unwrap()
        .with_retry(quick_retry(Duration::from_millis(100)));
    let identity = server.client_identity(CERT_BOT).unwrap();
    let identity = symphony_auth_core::ClientIdentity::from_pem(identity.bundle_pem().as_bytes()).unwrap();
    Bot::builder(config)
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .client_identity(identity)
        .seed(7)
}

/// A sink for the machine's events.
#[derive(Clone, Default)]
pub struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    pub fn hook(&self) -> impl Fn(&Event) + Send + Sync + 'static {
        let events = Arc::clone(&self.0);
        move |event| events.lock().unwrap().push(event.clone())
    }

    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A pod-only configuration (no key-manager login), to count session logins alone.
pub fn pod_only(config: Config) -> Config {
    config.with_key_manager(KeyManagerPolicy::Never)
}

/// Waits for `condition` (a state of the fake, read between short sleeps), failing after 10 s.
pub async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
