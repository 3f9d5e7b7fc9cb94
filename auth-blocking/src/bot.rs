//! [`Bot`]: the machine behind a mutex, one login at a time for every caller (single flight), and the HTTP client.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use symphony_auth_core::{
    ApiVerdict, AuthError, Authenticator, ClientIdentity, Config, ConfigError, Event, Generation, HttpRequest,
    HttpResponse, LoginMethod, LoginRequest, MAX_RESPONSE_BODY, RequestId, SessionInfo, State, Target, Tokens,
    TransportFailure, TransportKind, UnixTime, api_verdict, parse_session_info,
};
use ureq::{Agent, Proxy, ProxyProtocol};

use crate::Error;
use crate::tls;
use crate::transport::{self, Failure};

/// Default time allowed to open a connection (as BDK-Java).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time allowed for a whole request, answer included (as BDK-Java's read timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on the body of an API response.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// Settings for a [`Bot`]; made by [`Bot::builder`].
pub struct BotBuilder {
    config: Config,
    extra_roots: Vec<CertificateDer<'static>>,
    platform_roots: bool,
    identity: Option<ClientIdentity>,
    connect_timeout: Duration,
    timeout: Duration,
    proxy: Option<Proxy>,
    max_response_body: usize,
    seed: Option<u64>,
    on_event: Option<EventHook>,
}

/// A function the bot calls with each event of its logins (authenticated, retry scheduled, failed, expired).
type EventHook = Arc<dyn Fn(&Event) + Send + Sync>;

impl fmt::Debug for BotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotBuilder")
            .field("username", &self.config.username())
            .field("extra_roots", &self.extra_roots.len())
            .field("platform_roots", &self.platform_roots)
            .field("identity", &self.identity)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("proxy", &self.proxy.as_ref().map(|p| format!("{}:{}", p.host(), p.port())))
            .field("max_response_body", &self.max_response_body)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}

impl BotBuilder {
    /// Trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks) **in addition to** the built-in
    /// Mozilla roots: for a pod behind a private CA. May be called more than once.
    ///
    /// # Errors
    /// [`Error::Tls`] when `pem` holds no certificate or a malformed one.
    pub fn extra_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        self.extra_roots.extend(tls::parse_certificates(pem)?);
        Ok(self)
    }

    /// Also trusts the certificates of the operating system's store (where a corporate private CA is usually
    /// installed), **in addition to** the built-in Mozilla roots and the
    /// [extra roots](Self::extra_root_certificates_pem). The store is read once, when the bot is built; its
    /// certificates that rustls cannot parse are skipped.
    #[must_use]
    pub fn platform_roots(mut self) -> Self {
        self.platform_roots = true;
        self
    }

    /// The TLS client certificate, presented to any server that asks: needed for certificate logins.
    #[must_use]
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Time allowed to open a connection, TLS handshake included. Default 15 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for each request, from connecting to the last byte of the answer. Default 60 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends every request through this HTTP CONNECT proxy (`http://host:port`, `https://...`, with optional
    /// `user:password@`). Proxies are never read from the environment.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed URL or a SOCKS proxy (not supported).
    pub fn proxy(mut self, url: &str) -> Result<Self, Error> {
        let invalid = |reason| {
            // The URL may carry a password: show it without the user information.
            let shown = url.rsplit_once('@').map_or(url.to_owned(), |(_, host)| format!("…@{host}"));
            Error::Config(ConfigError::InvalidUrl { which: "proxy", url: shown, reason })
        };
        let proxy = Proxy::new(url).map_err(|_| invalid("not a proxy URL"))?;
        if !matches!(proxy.protocol(), ProxyProtocol::Http | ProxyProtocol::Https) {
            return Err(invalid("only HTTP CONNECT proxies (http:// or https://) are supported"));
        }
        self.proxy = Some(proxy);
        Ok(self)
    }

    /// Cap on the body of an API response ([`Bot::send`]); a larger one is an [`Error::Transport`] of kind
    /// `Other`. Default 16 MiB. Login answers are always capped at [`symphony_auth_core::MAX_RESPONSE_BODY`].
    #[must_use]
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The seed of the retry jitter, to replay a run exactly. Default: derived from the clock.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Calls `hook` with every event of the bot's logins (retries scheduled, logins done or failed, tokens
    /// expired), with no lock held: for logs and metrics. Events never hold a token.
    #[must_use]
    pub fn on_event(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Builds the bot and its HTTP client. No request is sent.
    ///
    /// # Errors
    /// [`Error::Tls`] when the TLS configuration cannot be built, or, with [`platform_roots`](Self::platform_roots),
    /// when the operating system's store cannot be read at all (no certificate loaded); [`Error::Config`] with
    /// [`ConfigError::MissingCredentials`] for a certificate login without a client identity.
    pub fn build(self) -> Result<Bot, Error> {
        if matches!(self.config.method(), LoginMethod::Certificate) && self.identity.is_none() {
            return Err(Error::Config(ConfigError::MissingCredentials));
        }
        let tls = tls::client_config(&self.extra_roots, self.platform_roots, self.identity.as_ref())?;
        let agent = transport::agent(tls, self.proxy, self.connect_timeout, self.timeout);
        let seed = self.seed.unwrap_or_else(default_seed);
        let machine = Authenticator::new(self.config.clone(), seed);
        Ok(Bot {
            inner: Arc::new(Inner {
                config: self.config,
                agent,
                max_response_body: self.max_response_body,
                on_event: self.on_event,
                shared: Mutex::new(Shared { machine, leader: false, completed: 0, last_error: None }),
                wake: Condvar::new(),
            }),
        })
    }
}

/// Jitter needs variety, not secrecy: the clock's nanoseconds mixed with a stack address.
fn default_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let local = 0u8;
    let address = std::ptr::from_ref(&local) as usize as u64;
    u64::from(nanos) ^ address.rotate_left(32) ^ now().as_millis()
}

/// A Symphony bot: logs in on first use, keeps its tokens, shares one login between every caller, and sends API
/// calls with the tokens attached. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    agent: Agent,
    on_event: Option<EventHook>,
    max_response_body: usize,
    shared: Mutex<Shared>,
    /// Signalled when a leader finishes or gives up.
    wake: Condvar,
}

/// What the callers share: the machine, whether some caller is driving a login (the leader), how many logins
/// have finished, and how the last one failed.
struct Shared {
    machine: Authenticator,
    leader: bool,
    completed: u64,
    last_error: Option<AuthError>,
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bot")
            .field("username", &self.inner.config.username())
            .field("pod", &self.inner.config.endpoints().pod)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

impl Bot {
    /// Starts the settings of a bot with the machine's configuration (RSA or certificate, endpoints, retry
    /// policy, key-manager policy, parallel login).
    #[must_use]
    pub fn builder(config: Config) -> BotBuilder {
        BotBuilder {
            config,
            extra_roots: Vec::new(),
            platform_roots: false,
            identity: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            proxy: None,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            seed: None,
            on_event: None,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        self.lock().machine.state()
    }

    /// The current tokens, logging in first if there are none. Concurrent callers share one login and get the
    /// same tokens or the same error.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails.
    pub fn tokens(&self) -> Result<Arc<Tokens>, Error> {
        let shared = self.lock();
        self.obtain(shared, false)
    }

    /// Logs in again even though tokens are available (they stay in use until the new ones arrive), and returns
    /// the new tokens. A login already under way is joined rather than doubled.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails.
    pub fn refresh(&self) -> Result<Arc<Tokens>, Error> {
        let shared = self.lock();
        self.obtain(shared, true)
    }

    /// Sends an API call with the tokens attached (`sessionToken`, plus `keyManagerToken` on agent calls). On a
    /// 401 it reports the tokens' generation, waits for the one shared re-login, and replays the call once; a
    /// second 401 is [`Error::Unauthorized`]. Any other status is returned as it is.
    ///
    /// # Errors
    /// [`Error::Auth`] when a login fails, [`Error::Transport`] when the call fails below HTTP or its answer exceeds
    /// the size cap, [`Error::Unauthorized`] on a 401 after a fresh login, [`Error::Usage`] for a URI outside the
    /// configured services (tokens are never sent anywhere else).
    pub fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let target = self.inner.config.endpoints().target_of(request.uri())?;
        let tokens = self.tokens()?;
        let response = self.attempt(request.clone(), &tokens, target)?;
        if api_verdict(response.status(), false) != ApiVerdict::ReauthenticateAndReplay {
            return Ok(response);
        }
        let tokens = self.after_unauthorized(tokens.generation())?;
        let response = self.attempt(request, &tokens, target)?;
        if api_verdict(response.status(), true) == ApiVerdict::Return {
            return Ok(response);
        }
        // Expires these tokens (so that the next caller logs in again) unless newer ones exist already.
        let generation = tokens.generation();
        let _ = self.lock().machine.report_unauthorized(generation);
        Err(Error::Unauthorized { generation: generation.get() })
    }

    /// Sends `request` as it is, with **no tokens attached**, through the bot's own HTTP client: the same TLS
    /// roots, client certificate, proxy, timeouts and response-size cap as [`send`](Self::send). No login, no
    /// retry, no replay on 401, and any URI is allowed (nothing of the bot's is added to the request). For
    /// diagnostics: probing a host's TLS trust, reading a server's `Date` header, or seeing a login endpoint's raw
    /// answer (which may hold a token: never log a 200's body).
    ///
    /// # Errors
    /// [`Error::Transport`] when the request fails below HTTP or its answer exceeds the size cap.
    pub fn send_unauthenticated(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        self.execute(request)
    }

    /// One API call with `tokens` attached.
    fn attempt(&self, mut request: HttpRequest, tokens: &Tokens, target: Target) -> Result<HttpResponse, Error> {
        tokens.authorize(&mut request, target);
        self.execute(request)
    }

    /// One request through the client, as it is.
    fn execute(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        transport::execute(&self.inner.agent, request, self.inner.max_response_body, false).map_err(|failure| {
            match failure {
                Failure::Transport(TransportFailure { kind, detail }) => Error::Transport { kind, detail },
                Failure::TooLarge(limit) => Error::Transport {
                    kind: TransportKind::Other,
                    detail: format!("the response body exceeds the limit of {limit} bytes"),
                },
            }
        })
    }

    /// The bot's own user record (`GET /pod/v2/sessioninfo`), through [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::SessionInfo`] for a non-200 answer or an unreadable record.
    pub fn session_info(&self) -> Result<SessionInfo, Error> {
        let response = self.send(symphony_auth_core::session_info(self.inner.config.endpoints()))?;
        Ok(parse_session_info(&response)?)
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The machine stays consistent across a panic in a caller (it is only mutated by whole method calls).
        self.inner.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tokens newer than `generation`, after the caller saw a 401 with it.
    fn after_unauthorized(&self, generation: Generation) -> Result<Arc<Tokens>, Error> {
        let mut shared = self.lock();
        // An unknown generation cannot happen: it came from this machine. Either way, fall through to tokens.
        let _ = shared.machine.report_unauthorized(generation);
        self.obtain(shared, false)
    }

    /// The single flight: return the current tokens, or wait for the caller that is logging in, or become that
    /// caller. `force` asks for a new login even when tokens are available.
    fn obtain<'a>(&'a self, mut shared: MutexGuard<'a, Shared>, force: bool) -> Result<Arc<Tokens>, Error> {
        loop {
            if !force && let Some(tokens) = shared.machine.tokens() {
                return Ok(tokens);
            }
            if shared.leader {
                let seen = shared.completed;
                while shared.leader && shared.completed == seen {
                    shared = self.inner.wake.wait(shared).unwrap_or_else(PoisonError::into_inner);
                }
                if shared.completed != seen {
                    if let Some(error) = &shared.last_error {
                        return Err(Error::Auth(error.clone()));
                    }
                    if let Some(tokens) = shared.machine.tokens() {
                        return Ok(tokens);
                    }
                }
                // The leader gave up (it panicked) or the new tokens were already refused: go round again.
                continue;
            }
            // Begins a login unless one is under way (a 401 report begins one).
            if force {
                shared.machine.refresh();
            } else {
                shared.machine.start();
            }
            return self.lead(shared);
        }
    }

    /// Drives the login under way to its end, sending each batch of requests concurrently with the lock released.
    fn lead<'a>(&'a self, mut shared: MutexGuard<'a, Shared>) -> Result<Arc<Tokens>, Error> {
        shared.leader = true;
        let mut guard = LeaderGuard { inner: &self.inner, finished: false };
        loop {
            let now = now();
            // Sign with the lock released: other threads keep reading the state meanwhile.
            if let Some(jwt) = shared.machine.poll_jwt(now) {
                drop(shared);
                let signed = jwt.sign();
                shared = self.lock();
                shared.machine.supply_jwt(signed);
            }
            let batch: Vec<LoginRequest> = std::iter::from_fn(|| shared.machine.poll_request(now)).collect();
            let sent = !batch.is_empty();
            if sent {
                drop(shared);
                let outcomes = send_batch(&self.inner.agent, batch);
                shared = self.lock();
                let now = self::now();
                for (id, outcome) in outcomes {
                    // A usage error would be a bug here (ids come from this machine); the login carries on.
                    let _ = match outcome {
                        Ok(response) => shared.machine.handle_response(id, &response, now),
                        Err(failure) => shared.machine.handle_failure(id, failure, now),
                    };
                }
            }
            let events: Vec<Event> = std::iter::from_fn(|| shared.machine.poll_event()).collect();
            let outcome = events.iter().find_map(|event| match event {
                Event::Authenticated { .. } => shared.machine.tokens().map(Ok),
                Event::LoginFailed(error) => Some(Err(error.clone())),
                _ => None,
            });
            if let Some(outcome) = outcome {
                guard.finish(&mut shared, outcome.as_ref().err().cloned());
                drop(shared);
                self.emit(&events);
                return outcome.map_err(Error::Auth);
            }
            if !events.is_empty() {
                drop(shared);
                self.emit(&events);
                shared = self.lock();
            }
            if sent {
                continue;
            }
            match shared.machine.poll_timeout() {
                Some(at) => {
                    drop(shared);
                    std::thread::sleep(at.saturating_since(self::now()));
                    shared = self.lock();
                    shared.machine.handle_timeout(self::now());
                }
                None if shared.machine.is_logging_in() => {
                    // Requests out that no one will report: impossible with one leader, but never spin on it.
                    // Begin afresh; late answers to the dropped requests are ignored by the machine.
                    shared.machine.abort_login();
                    shared.machine.start();
                }
                None => {
                    // No login under way and no event: tokens, or begin one.
                    if let Some(tokens) = shared.machine.tokens() {
                        guard.finish(&mut shared, None);
                        return Ok(tokens);
                    }
                    shared.machine.start();
                }
            }
        }
    }
}

impl Bot {
    /// Hands events to the hook, with no lock held.
    fn emit(&self, events: &[Event]) {
        if let Some(hook) = &self.inner.on_event {
            events.iter().for_each(|event| hook(event));
        }
    }
}

/// Sends a batch of login requests, all at once when there are several, and returns each outcome by id.
fn send_batch(agent: &Agent, batch: Vec<LoginRequest>) -> Vec<(RequestId, Result<HttpResponse, TransportFailure>)> {
    let send_one = |login: LoginRequest| {
        let outcome = match transport::execute(agent, login.request, MAX_RESPONSE_BODY, true) {
            Ok(response) => Ok(response),
            Err(Failure::Transport(failure)) => Err(failure),
            // `truncate` never yields this; keep the match total.
            Err(Failure::TooLarge(limit)) => {
                Err(TransportFailure::new(TransportKind::Other, format!("the response body exceeds {limit} bytes")))
            }
        };
        (login.id, outcome)
    };
    let mut batch = batch.into_iter();
    let Some(first) = batch.next() else { return Vec::new() };
    if batch.len() == 0 {
        return vec![send_one(first)];
    }
    std::thread::scope(|scope| {
        let others: Vec<_> = batch.map(|login| scope.spawn(move || send_one(login))).collect();
        let mut outcomes = vec![send_one(first)];
        for handle in others {
            match handle.join() {
                Ok(outcome) => outcomes.push(outcome),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        outcomes
    })
}

/// Clears `leader` when the leader stops, however it stops: a panic abandons the login so that a waiter can begin
/// afresh, and wakes every waiter.
struct LeaderGuard<'a> {
    inner: &'a Inner,
    finished: bool,
}

impl LeaderGuard<'_> {
    /// The login ended: record its outcome and wake the waiters.
    fn finish(&mut self, shared: &mut Shared, error: Option<AuthError>) {
        shared.leader = false;
        shared.completed += 1;
        shared.last_error = error;
        self.finished = true;
        self.inner.wake.notify_all();
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut shared = self.inner.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.leader = false;
        shared.machine.abort_login();
        self.inner.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_unauthenticated_attaches_no_tokens_and_does_not_log_in() {
        let mut pod = symphony_auth_testkit::FakePod::new();
        pod.add_rsa_bot("bot", include_str!("../../fixtures/keys/bot-2048.pub.pem")).unwrap();
        let server = symphony_auth_testkit::FakePodServer::start(pod).unwrap();
        let signer = Arc::new(
            symphony_auth_core::RsaSigner::from_pem(include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem")).unwrap(),
        );
        let config =
            Config::rsa(symphony_auth_core::Endpoints::single(&server.http_url()).unwrap(), "bot", signer).unwrap();
        let bot = Bot::builder(config).max_response_body(64).build().unwrap();

        let response = bot.send_unauthenticated(symphony_auth_core::session_info(bot.config().endpoints())).unwrap();
        assert_eq!(response.status(), 401, "no session token was sent");
        assert!(response.headers().contains_key(http::header::DATE));
        assert_eq!(server.counters().requests(symphony_auth_testkit::Endpoint::SessionLogin), 0);
        assert_eq!(bot.state(), State::NeedsSession);

        // The same response-size cap as `send`: the agent's info is larger than 64 bytes.
        let info = http::Request::get(format!("{}/agent/v1/info", server.http_url())).body(Vec::new()).unwrap();
        assert!(matches!(bot.send_unauthenticated(info), Err(Error::Transport { kind: TransportKind::Other, .. })));
    }
}
