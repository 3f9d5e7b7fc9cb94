//! A scripted pod and a virtual clock for driving the machine without I/O.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use symphony_auth_core::{
    Authenticator, Config, Endpoints, Event, HttpResponse, JwtSigner, LoginEndpoint, RetryPolicy, TransportFailure,
    TransportKind, UnixTime,
};

pub const START: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The fixture key in the signer compiled in: `RsaSigner` by default, `RingSigner` in a ring-only build.
pub fn signer() -> Arc<dyn JwtSigner> {
    static SIGNER: OnceLock<Arc<dyn JwtSigner>> = OnceLock::new();
    SIGNER
        .get_or_init(|| {
            let pem = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
            #[cfg(feature = "rsa-signer")]
            let signer = symphony_auth_core::RsaSigner::from_pem(pem);
            #[cfg(not(feature = "rsa-signer"))]
            let signer = symphony_auth_core::RingSigner::from_pem(pem);
            Arc::new(signer.unwrap())
        })
        .clone()
}

pub fn endpoints() -> Endpoints {
    Endpoints::single("https://pod.example").unwrap()
}

/// An RSA bot with a jitter-free policy of `attempts` attempts, so that waits are exact.
pub fn rsa_config(attempts: u32) -> Config {
    let retry = RetryPolicy::new(attempts, Duration::from_millis(500), 2.0, Duration::from_secs(300))
        .unwrap()
        .with_jitter(0.0)
        .unwrap();
    Config::rsa(endpoints(), "bot.user", signer()).unwrap().with_retry(retry)
}

/// What the scripted pod does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Ok(&'static str),
    Status(u16),
    StatusWith(u16, &'static str, &'static str),
    Body(u16, &'static str),
    Fail(TransportKind),
    /// Never answered (the driver lost it).
    Drop,
}

pub fn session_jwt(skd: bool) -> String {
    let claims = if skd {
        r#"{"sub":"bot.user","sessionId":"s1","canUseSimplifiedKeyDelivery":true}"#
    } else {
        r#"{"sub":"bot.user","sessionId":"s1"}"#
    };
    format!("eyJhbGciOiJSUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims))
}

pub fn token_body(token: &str) -> String {
    format!(r#"{{"name":"x","token":"{token}"}}"#)
}

pub fn response(status: u16, body: String, header: Option<(&str, &str)>) -> HttpResponse {
    let mut builder = http::Response::builder().status(status);
    if let Some((name, value)) = header {
        builder = builder.header(name, value);
    }
    builder.body(body.into_bytes()).unwrap()
}

/// One request the simulation sent: when, to which endpoint, in which batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub at: UnixTime,
    pub endpoint: LoginEndpoint,
    pub batch: usize,
    pub body_empty: bool,
    pub has_content_type: bool,
}

/// The machine, a virtual clock, and a log of what went out and what came back.
pub struct Sim {
    pub machine: Authenticator,
    pub now: UnixTime,
    pub sent: Vec<Sent>,
    pub events: Vec<Event>,
    batches: usize,
}

impl Sim {
    pub fn new(config: Config) -> Self {
        Self { machine: Authenticator::new(config, 7), now: START, sent: Vec::new(), events: Vec::new(), batches: 0 }
    }

    /// Drives the login under way to its end (success or failure), answering each request with `pod`, sleeping
    /// through backoffs in virtual time. Returns the final event.
    pub fn drive(&mut self, mut pod: impl FnMut(LoginEndpoint, usize) -> Reply) -> Event {
        let mut counts = std::collections::HashMap::<LoginEndpoint, usize>::new();
        for _ in 0..10_000 {
            let mut batch = Vec::new();
            while let Some(request) = self.machine.poll_request(self.now) {
                batch.push(request);
            }
            let sent_any = !batch.is_empty();
            if sent_any {
                self.batches += 1;
            }
            for request in batch {
                let n = counts.entry(request.endpoint).or_default();
                *n += 1;
                self.sent.push(Sent {
                    at: self.now,
                    endpoint: request.endpoint,
                    batch: self.batches,
                    body_empty: request.request.body().is_empty(),
                    has_content_type: request.request.headers().contains_key("content-type"),
                });
                let now = self.now;
                match pod(request.endpoint, *n) {
                    Reply::Ok(token) => {
                        self.machine.handle_response(request.id, &response(200, token_body(token), None), now)
                    }
                    Reply::Status(status) => {
                        self.machine.handle_response(request.id, &response(status, String::new(), None), now)
                    }
                    Reply::StatusWith(status, name, value) => self.machine.handle_response(
                        request.id,
                        &response(status, String::new(), Some((name, value))),
                        now,
                    ),
                    Reply::Body(status, body) => {
                        self.machine.handle_response(request.id, &response(status, body.into(), None), now)
                    }
                    Reply::Fail(kind) => {
                        self.machine.handle_failure(request.id, TransportFailure::new(kind, "simulated"), now)
                    }
                    Reply::Drop => Ok(()),
                }
                .unwrap();
            }
            let mut last = None;
            while let Some(event) = self.machine.poll_event() {
                self.events.push(event.clone());
                if matches!(event, Event::Authenticated { .. } | Event::LoginFailed(_)) {
                    last = Some(event);
                }
            }
            if let Some(event) = last {
                return event;
            }
            if sent_any {
                // Answers may have made new requests due (a sequential key-manager login, an agent check).
                continue;
            }
            match self.machine.poll_timeout() {
                Some(at) => {
                    assert!(at >= self.now, "a deadline in the past: {at:?} < {:?}", self.now);
                    self.now = at;
                    self.machine.handle_timeout(at);
                }
                None => panic!("stuck: no request, no event and no deadline (state {:?})", self.machine.state()),
            }
        }
        panic!("the login did not end");
    }

    pub fn endpoints_sent(&self) -> Vec<LoginEndpoint> {
        self.sent.iter().map(|s| s.endpoint).collect()
    }
}

/// A signer that always fails, as an unplugged HSM would.
#[derive(Debug)]
pub struct BrokenSigner;

impl JwtSigner for BrokenSigner {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, symphony_auth_core::SignError> {
        Err(symphony_auth_core::SignError("HSM unavailable".into()))
    }
}

/// A signer that returns a constant: for properties of the machine, where signing cost only slows the search.
#[derive(Debug)]
pub struct ConstantSigner;

impl JwtSigner for ConstantSigner {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, symphony_auth_core::SignError> {
        Ok(vec![0; 256])
    }
}

/// [`rsa_config`] with the constant signer.
pub fn fast_config(attempts: u32) -> Config {
    fast_config_with(attempts, false)
}

/// [`fast_config`], with the agent on a host of its own when `dedicated_agent` (so that SKD asks its version).
pub fn fast_config_with(attempts: u32, dedicated_agent: bool) -> Config {
    let retry = rsa_config(attempts).retry().clone();
    let mut endpoints = endpoints();
    if dedicated_agent {
        endpoints.agent = symphony_auth_core::BaseUrl::parse("agent", "https://agent.example").unwrap();
    }
    Config::rsa(endpoints, "bot.user", Arc::new(ConstantSigner)).unwrap().with_retry(retry)
}
