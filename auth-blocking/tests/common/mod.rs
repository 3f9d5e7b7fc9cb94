//! Shared set-up for the integration tests: a fake pod on loopback and bots pointed at it.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use symphony_auth_blocking::symphony_auth_core::{Config, Endpoints, KeyManagerPolicy, RetryPolicy, RsaSigner};
use symphony_auth_blocking::{Bot, BotBuilder};
use symphony_auth_testkit::{FakePod, FakePodServer};

/// Test-only keys (fixtures), never used anywhere real.
pub const KEY_2048: &[u8] = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
pub const PUB_2048: &str = include_str!("../../../fixtures/keys/bot-2048.pub.pem");
pub const OTHER_KEY: &[u8] = include_bytes!("../../../fixtures/keys/other-2048.pkcs8.pem");

pub const BOT: &str = "bot";
pub const CERT_BOT: &str = "cert-bot";

/// A fake pod with RSA bot `bot` and certificate bot `cert-bot`, adjusted by `configure`, served on loopback: the
/// pod, key manager and agent over plain HTTP, each on its own port.
pub fn server(configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    FakePodServer::start(pod(configure)).expect("fake pod starts")
}

/// As [`server`], with the pod, key manager and agent over HTTPS under the fake's CA.
pub fn https_server(configure: impl FnOnce(&mut FakePod)) -> FakePodServer {
    FakePodServer::builder(pod(configure)).https(true).start().expect("fake pod starts")
}

fn pod(configure: impl FnOnce(&mut FakePod)) -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, PUB_2048).expect("fixture key registers");
    pod.add_cert_bot(CERT_BOT).expect("cert bot registers");
    configure(&mut pod);
    pod
}

/// Retries that keep tests fast: 5 attempts, 10 ms first wait, each wait capped at 100 ms.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(5, Duration::from_millis(10), 2.0, Duration::from_millis(100)).expect("valid policy")
}

/// The RSA configuration of `bot` against `endpoints`, with fast retries.
pub fn rsa_config(endpoints: Endpoints, key: &[u8]) -> Config {
    let signer = Arc::new(RsaSigner::from_pem(key).expect("fixture key"));
    Config::rsa(endpoints, BOT, signer).expect("valid config").with_retry(fast_retry())
}

/// A builder for `bot` on the plain HTTP listeners, 5 s per request.
pub fn rsa_builder(server: &FakePodServer) -> BotBuilder {
    Bot::builder(rsa_config(server.rsa_endpoints(), KEY_2048)).timeout(Duration::from_secs(5)).seed(7)
}

pub fn rsa_bot(server: &FakePodServer) -> Bot {
    rsa_builder(server).build().expect("bot builds")
}

/// `bot` with the given configuration tweak and no retry, for the failure tests.
pub fn one_shot(config: Config) -> Config {
    config.with_retry(RetryPolicy::no_retry()).with_key_manager(KeyManagerPolicy::Never)
}
