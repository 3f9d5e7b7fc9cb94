//! A scripted pod and a virtual clock for driving the machine through its one output, without I/O.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use symphony_auth_core::{
    AuthError, Authenticator, BaseUrl, Config, Endpoints, Event, HttpResponse, JwtSigner, LoginEndpoint, Output,
    RequestId, RetryPolicy, SignError, Tokens, TransportFailure, TransportKind, UnixTime,
};

pub const START: UnixTime = UnixTime::from_secs(1_700_000_000);

/// The fixture key's signer: the build default's (`rsa`, else `ring`, else `aws-lc`; the JWTs are the same), or a
/// constant one in a build with no signer.
pub fn signer() -> Arc<dyn JwtSigner> {
    static SIGNER: OnceLock<Arc<dyn JwtSigner>> = OnceLock::new();
    SIGNER
        .get_or_init(|| {
            let pem = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
            match symphony_auth_core::SignerBackend::build_default() {
                Some(backend) => backend.load_pem(pem).unwrap(),
                None => Arc::new(ConstantSigner),
            }
        })
        .clone()
}

pub fn endpoints() -> Endpoints {
    Endpoints::single("https://pod.example").unwrap()
}

/// [`endpoints`] with the agent on a host of its own, so that simplified key delivery asks the agent's version.
pub fn dedicated_agent_endpoints() -> Endpoints {
    let mut endpoints = endpoints();
    endpoints.agent = BaseUrl::parse("agent", "https://agent.example:8443").unwrap();
    endpoints
}

/// A jitter-free policy of `attempts` attempts, 500 ms doubling up to 300 s, so that waits are exact.
pub fn exact_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts, Duration::from_millis(500), 2.0, Duration::from_secs(300))
        .unwrap()
        .with_jitter(0.0)
        .unwrap()
}

/// An RSA bot (the fixture key) with [`exact_retry`].
pub fn rsa_config(attempts: u32) -> Config {
    Config::rsa(endpoints(), "bot.user", signer()).unwrap().with_retry(exact_retry(attempts))
}

/// What the scripted pod does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with `{"token": ..}`.
    Token(String),
    /// This status, empty body.
    Status(u16),
    /// This status with one header, empty body.
    StatusWith(u16, &'static str, String),
    /// This status and body.
    Body(u16, String),
    /// A failure below HTTP.
    Fail(TransportKind),
    /// Never answered: the machine must not wait for it.
    Drop,
}

pub fn ok(token: &str) -> Reply {
    Reply::Token(token.to_owned())
}

/// An unsigned JWT-shaped session token, granting simplified key delivery or not.
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

/// The agent's answer to `GET /agent/v1/info`.
pub fn agent_info(version: &str) -> Reply {
    Reply::Body(200, format!(r#"{{"version":"{version}","onPrem":false,"mt":true}}"#))
}

/// One request the simulation sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub id: RequestId,
    pub at: UnixTime,
    pub endpoint: LoginEndpoint,
    /// Which `Output::Send` it came in (1 for the first).
    pub batch: usize,
    pub body: Vec<u8>,
    pub has_content_type: bool,
}

/// In which order the simulated network answers the requests still out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Fifo,
    /// Newest first.
    Lifo,
}

/// The machine, a virtual clock, a network that answers in a chosen order, and a log of what went out.
pub struct Sim {
    pub machine: Authenticator,
    pub now: UnixTime,
    pub sent: Vec<Sent>,
    pub events: Vec<Event>,
    /// Signatures made for `Output::Sign`.
    pub signatures: usize,
    pub order: Order,
    /// Requests still out when a login ended, with their replies, for tests that deliver them late.
    pub late: Vec<(RequestId, Reply)>,
    pending: VecDeque<(RequestId, Reply)>,
    dropped: Vec<RequestId>,
    batches: usize,
}

impl Sim {
    pub fn new(config: Config) -> Self {
        Self::seeded(config, 7)
    }

    pub fn seeded(config: Config, seed: u64) -> Self {
        Self {
            machine: Authenticator::new(config, seed),
            now: START,
            sent: Vec::new(),
            events: Vec::new(),
            signatures: 0,
            order: Order::Fifo,
            late: Vec::new(),
            pending: VecDeque::new(),
            dropped: Vec::new(),
            batches: 0,
        }
    }

    /// Polls until [`Output::Done`], answering each request with `pod(endpoint, nth request to it in this drive)`,
    /// signing what is to be signed and sleeping through waits in virtual time. Returns what `Done` carried.
    pub fn drive(&mut self, mut pod: impl FnMut(LoginEndpoint, usize) -> Reply) -> Result<Arc<Tokens>, AuthError> {
        let mut counts = HashMap::<LoginEndpoint, usize>::new();
        let mut signed_at = None;
        for _ in 0..1_000 {
            let output = self.machine.poll_output(self.now);
            self.drain_events();
            match output {
                Output::Sign(jwt) => {
                    assert_ne!(signed_at, Some(self.now), "asked to sign again right after a signature was supplied");
                    signed_at = Some(self.now);
                    self.signatures += 1;
                    self.machine.supply_jwt(jwt.sign(), self.now);
                }
                Output::Send(batch) => {
                    assert!(!batch.is_empty(), "an empty batch is no work");
                    self.batches += 1;
                    for login in batch {
                        let n = counts.entry(login.endpoint).or_default();
                        *n += 1;
                        self.record(&login);
                        match pod(login.endpoint, *n) {
                            Reply::Drop => self.dropped.push(login.id),
                            reply => self.pending.push_back((login.id, reply)),
                        }
                    }
                }
                Output::AwaitAnswers => {
                    let next = match self.order {
                        Order::Fifo => self.pending.pop_front(),
                        Order::Lifo => self.pending.pop_back(),
                    };
                    let (id, reply) = next.unwrap_or_else(|| {
                        panic!(
                            "the machine awaits an answer, but the requests still out were dropped: {:?}",
                            self.dropped
                        )
                    });
                    self.answer(id, &reply);
                }
                Output::WaitUntil(at) => {
                    assert!(
                        at > self.now,
                        "a wait that is already over ({at:?} at {:?}) would spin the driver",
                        self.now
                    );
                    self.now = at;
                }
                Output::Done(outcome) => {
                    self.late.extend(self.pending.drain(..));
                    return outcome;
                }
            }
            self.drain_events();
        }
        panic!("the login did not end within 1 000 outputs");
    }

    /// Reports `reply` as the outcome of request `id`; the machine must accept it.
    pub fn answer(&mut self, id: RequestId, reply: &Reply) {
        let now = self.now;
        let result = match reply {
            Reply::Token(token) => self.machine.handle_response(id, &response(200, token_body(token), None), now),
            Reply::Status(status) => self.machine.handle_response(id, &response(*status, String::new(), None), now),
            Reply::StatusWith(status, name, value) => {
                self.machine.handle_response(id, &response(*status, String::new(), Some((name, value))), now)
            }
            Reply::Body(status, body) => self.machine.handle_response(id, &response(*status, body.clone(), None), now),
            Reply::Fail(kind) => self.machine.handle_failure(id, TransportFailure::new(*kind, "simulated"), now),
            Reply::Drop => Ok(()),
        };
        result.unwrap_or_else(|e| panic!("the answer to {id} was refused: {e}"));
        self.drain_events();
    }

    /// Polls once and returns the requests of an `Output::Send`, after signing when asked to; panics on any other
    /// output.
    pub fn send_batch(&mut self) -> Vec<symphony_auth_core::LoginRequest> {
        // Signing once must be enough: a bounded loop fails rather than hangs if it is not.
        for _ in 0..3 {
            match self.machine.poll_output(self.now) {
                Output::Sign(jwt) => {
                    self.signatures += 1;
                    self.machine.supply_jwt(jwt.sign(), self.now);
                }
                Output::Send(batch) => {
                    self.batches += 1;
                    batch.iter().for_each(|login| self.record(login));
                    self.drain_events();
                    return batch;
                }
                other => panic!("expected requests to send, got {other:?}"),
            }
        }
        panic!("still asked to sign after a signature was supplied");
    }

    pub fn drain_events(&mut self) {
        while let Some(event) = self.machine.poll_event() {
            self.events.push(event);
        }
    }

    fn record(&mut self, login: &symphony_auth_core::LoginRequest) {
        self.sent.push(Sent {
            id: login.id,
            at: self.now,
            endpoint: login.endpoint,
            batch: self.batches,
            body: login.request.body().clone(),
            has_content_type: login.request.headers().contains_key("content-type"),
        });
    }

    pub fn endpoints_sent(&self) -> Vec<LoginEndpoint> {
        self.sent.iter().map(|s| s.endpoint).collect()
    }

    /// How many requests went to `endpoint`.
    pub fn count(&self, endpoint: LoginEndpoint) -> usize {
        self.sent.iter().filter(|s| s.endpoint == endpoint).count()
    }

    /// The delays of the retries scheduled so far.
    pub fn retry_delays(&self) -> Vec<Duration> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::RetryScheduled { delay, .. } => Some(*delay),
                _ => None,
            })
            .collect()
    }

    /// The cool-downs of the failed logins so far.
    pub fn cool_downs(&self) -> Vec<Duration> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::LoginFailed { cool_down, .. } => Some(*cool_down),
                _ => None,
            })
            .collect()
    }

    pub fn advance(&mut self, by: Duration) {
        self.now = self.now.saturating_add(by);
    }
}

/// A signer that always fails, as an unplugged HSM would.
#[derive(Debug)]
pub struct BrokenSigner;

impl JwtSigner for BrokenSigner {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Err(SignError("HSM unavailable".into()))
    }
}

/// A signer that returns a constant: for properties of the machine, where signing cost only slows the search.
#[derive(Debug)]
pub struct ConstantSigner;

impl JwtSigner for ConstantSigner {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![0; 256])
    }
}

/// The fixture key's signer, counting its signatures.
#[derive(Debug, Default)]
pub struct CountingSigner(pub std::sync::atomic::AtomicUsize);

impl CountingSigner {
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl JwtSigner for CountingSigner {
    fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        signer().sign_rs512(message)
    }
}

/// [`rsa_config`] with the constant signer.
pub fn fast_config(attempts: u32) -> Config {
    fast_config_with(attempts, false)
}

/// [`fast_config`], with the agent on a host of its own when `dedicated_agent`.
pub fn fast_config_with(attempts: u32, dedicated_agent: bool) -> Config {
    let endpoints = if dedicated_agent { dedicated_agent_endpoints() } else { endpoints() };
    Config::rsa(endpoints, "bot.user", Arc::new(ConstantSigner)).unwrap().with_retry(exact_retry(attempts))
}
