//! [`Bot`]: the machine behind a mutex, one HTTP client, and the single flight that lets any number of tasks
//! share one login.
//!
//! The single flight: a task that needs tokens either takes the current ones, or waits while another task (the
//! leader) logs in, or becomes the leader. The std mutex is never held across an `.await`; waiters park on a
//! [`Notify`]. The leader holds a guard whose `Drop` (a cancelled or panicking leader) aborts the login in the
//! machine and wakes the waiters, one of which takes over; a finished leader records the outcome and a
//! completion count, so that every waiter of that login gets the same tokens or the same error.

use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use symphony_auth_core::{
    AuthError, Authenticator, ClientIdentity, Config, Event, Generation, HttpRequest, HttpResponse, LoginRequest,
    RequestId, SessionInfo, SignError, State, Target, Tokens, TransportFailure, UnauthorizedOutcome, UnixTime,
};
use tokio::sync::Notify;

use crate::Error;
use crate::transport::{self, ClientSettings, Oversize};

/// Default connect timeout (BDK-Java's).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default per-request timeout (BDK-Java's read timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on API response bodies. Login answers are always capped at [`symphony_auth_core::MAX_RESPONSE_BODY`].
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

type EventHook = Arc<dyn Fn(&Event) + Send + Sync>;

/// An authenticated Symphony bot: logs in on first use, shares one login among concurrent callers, attaches the
/// tokens to API calls and recovers from a 401 once.
///
/// Cheap to clone (an [`Arc`] inside); clones share the tokens, the login and the HTTP client. `Send + Sync`.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    client: reqwest::Client,
    max_response_body: usize,
    on_event: Option<EventHook>,
    shared: Mutex<Shared>,
    /// Wakes waiters when a leader finishes or gives up.
    notify: Notify,
}

struct Shared {
    machine: Authenticator,
    /// Whether a task is driving a login now.
    leader: bool,
    /// Logins finished (either way); a waiter that saw it change knows the login it waited for is over.
    completed: u64,
    /// The outcome of the last finished login, handed to its waiters.
    last: Option<Result<Arc<Tokens>, AuthError>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The machine is left consistent by every critical section, so a panic elsewhere does not poison it.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds a [`Bot`]; from [`Bot::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct BotBuilder {
    config: Config,
    extra_roots: Vec<CertificateDer<'static>>,
    platform_roots: bool,
    identity: Option<ClientIdentity>,
    connect_timeout: Duration,
    timeout: Duration,
    proxy: Option<reqwest::Proxy>,
    max_response_body: usize,
    seed: Option<u64>,
    on_event: Option<EventHook>,
}

impl fmt::Debug for BotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The proxy URL may hold credentials: only say whether there is one.
        f.debug_struct("BotBuilder")
            .field("config", &self.config)
            .field("extra_roots", &self.extra_roots.len())
            .field("platform_roots", &self.platform_roots)
            .field("identity", &self.identity)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("proxy", &self.proxy.is_some())
            .field("max_response_body", &self.max_response_body)
            .field("seed", &self.seed)
            .field("on_event", &self.on_event.is_some())
            .finish()
    }
}

impl BotBuilder {
    /// Adds the root certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks) to the built-in Mozilla set
    /// (webpki-roots), for pods behind a private CA.
    ///
    /// # Errors
    /// [`Error::Tls`] when `pem` holds no certificate or a malformed one.
    pub fn extra_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        self.extra_roots.extend(transport::parse_root_certificates(pem)?);
        Ok(self)
    }

    /// Also trusts the certificates of the operating system's store (where a corporate private CA is usually
    /// installed), **in addition to** the built-in Mozilla roots and the
    /// [extra roots](Self::extra_root_certificates_pem). The store is read once, when the bot is built; its
    /// certificates that rustls cannot parse are skipped.
    pub fn platform_roots(mut self) -> Self {
        self.platform_roots = true;
        self
    }

    /// The TLS client certificate, presented to every server that asks for one (certificate logins).
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// How long to wait for a connection (default 15 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one request may take, from connecting to the last body byte (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends everything through this proxy (`http://host:port`, `https://...`, with optional user information).
    /// Without it no proxy is used: proxies are never read from the environment.
    ///
    /// # Errors
    /// [`Error::Config`] when the URL is not a proxy URL.
    pub fn proxy(mut self, url: &str) -> Result<Self, Error> {
        let proxy = reqwest::Proxy::all(url).map_err(|_| symphony_auth_core::ConfigError::InvalidUrl {
            which: "proxy",
            url: redact_userinfo(url),
            reason: "not a valid proxy URL",
        })?;
        self.proxy = Some(proxy);
        Ok(self)
    }

    /// The largest API response body [`Bot::send`] reads (default 16 MiB); a larger one is an
    /// [`Error::Transport`]. Login answers are always capped at [`symphony_auth_core::MAX_RESPONSE_BODY`].
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The seed of the backoff jitter, so that a run replays exactly (default: from the clock).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Calls `hook` with every event of the machine (logins, scheduled retries, expiries), for logging or
    /// metrics. It runs on the task driving the login, with no lock held; keep it short.
    pub fn on_event(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Builds the HTTP client and the bot. Does not log in: the first [`Bot::tokens`] or [`Bot::send`] does.
    ///
    /// # Errors
    /// [`Error::Tls`] when the TLS configuration or the HTTP client cannot be built (a client key rustls refuses),
    /// or, with [`platform_roots`](Self::platform_roots), when the operating system's store cannot be read at all.
    pub fn build(self) -> Result<Bot, Error> {
        let client = transport::build_client(ClientSettings {
            extra_roots: &self.extra_roots,
            platform_roots: self.platform_roots,
            identity: self.identity.as_ref(),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            proxy: self.proxy,
        })?;
        let seed = self.seed.unwrap_or_else(default_seed);
        let machine = Authenticator::new(self.config.clone(), seed);
        Ok(Bot {
            inner: Arc::new(Inner {
                config: self.config,
                client,
                max_response_body: self.max_response_body,
                on_event: self.on_event,
                shared: Mutex::new(Shared { machine, leader: false, completed: 0, last: None }),
                notify: Notify::new(),
            }),
        })
    }
}

/// What a caller of the single flight wants.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Tokens: the current ones, or those of the next login.
    Tokens,
    /// A new login, even though tokens are available.
    Refresh,
    /// The tokens of this generation were refused with a 401: newer ones.
    After401(Generation),
}

/// Held by the task driving a login. Dropped without [`LeaderGuard::finished`] (the task was cancelled or
/// panicked), it aborts the login in the machine and wakes the waiters, one of which takes over.
struct LeaderGuard<'a> {
    inner: &'a Inner,
    finished: bool,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        {
            let mut shared = self.inner.lock();
            shared.leader = false;
            shared.machine.abort_login();
        }
        self.inner.notify.notify_waiters();
    }
}

impl Bot {
    /// A builder for a bot with this configuration (endpoints, username, RSA key or certificate login, retry
    /// policy, key-manager policy, parallel login).
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
        self.inner.lock().machine.state()
    }

    /// The current tokens, logging in first when there are none. Concurrent callers share one login and get the
    /// same tokens or the same error.
    ///
    /// Cancellation-safe: if the task driving the login is dropped, a waiting task takes the login over.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails.
    pub async fn tokens(&self) -> Result<Arc<Tokens>, Error> {
        self.acquire(Want::Tokens).await
    }

    /// Logs in again even though tokens are available (they stay in use until the new ones arrive). Concurrent
    /// callers, and a login already under way, are shared.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails.
    pub async fn refresh(&self) -> Result<Arc<Tokens>, Error> {
        self.acquire(Want::Refresh).await
    }

    /// Sends an API call with the tokens attached (`sessionToken`, and `keyManagerToken` for agent URLs), logging
    /// in first if needed. Any status is returned as a response, except a 401: the tokens' generation is reported,
    /// the shared re-login awaited and the call replayed once; a 401 to the replay is [`Error::Unauthorized`].
    ///
    /// # Errors
    /// [`Error::Auth`] when a login fails, [`Error::Transport`] when the call fails below HTTP or its body exceeds
    /// the size limit, [`Error::Unauthorized`] as above, [`Error::Usage`] for a URI outside the configured
    /// services.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let target = self.inner.config.endpoints().target_of(request.uri())?;
        let tokens = self.tokens().await?;
        // The original is kept for one replay.
        let response = self.call(clone_request(&request), &tokens, target).await?;
        if symphony_auth_core::api_verdict(response.status(), false)
            != symphony_auth_core::ApiVerdict::ReauthenticateAndReplay
        {
            return Ok(response);
        }
        let tokens = self.acquire(Want::After401(tokens.generation())).await?;
        let response = self.call(request, &tokens, target).await?;
        if symphony_auth_core::api_verdict(response.status(), true) == symphony_auth_core::ApiVerdict::Unauthorized {
            let generation = tokens.generation();
            // This begins a login, which the next caller that needs tokens drives.
            let _ = self.inner.lock().machine.report_unauthorized(generation);
            return Err(Error::Unauthorized { generation: generation.get() });
        }
        Ok(response)
    }

    async fn call(&self, mut request: HttpRequest, tokens: &Tokens, target: Target) -> Result<HttpResponse, Error> {
        tokens.authorize(&mut request, target);
        transport::exchange(&self.inner.client, request, self.inner.max_response_body, Oversize::Fail)
            .await
            .map_err(|failure| Error::transport(failure.into()))
    }

    /// The bot's own user record (`GET /pod/v2/sessioninfo`), through [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::SessionInfo`] when the answer is not a 200 with a user record.
    pub async fn session_info(&self) -> Result<SessionInfo, Error> {
        let response = self.send(symphony_auth_core::session_info(self.inner.config.endpoints())).await?;
        Ok(symphony_auth_core::parse_session_info(&response)?)
    }

    /// The single flight: returns tokens, waits for the leader, or leads.
    async fn acquire(&self, mut want: Want) -> Result<Arc<Tokens>, Error> {
        let inner = &*self.inner;
        // The completion count when this caller started waiting: any login finished after it is the answer.
        let mut waiting_since: Option<u64> = None;
        loop {
            // Registered before the state is read, so a wake-up between the check and the await is not lost.
            let mut notified = pin!(inner.notify.notified());
            notified.as_mut().enable();
            let guard = {
                let mut shared = inner.lock();
                if let Some(since) = waiting_since
                    && shared.completed != since
                    && let Some(outcome) = &shared.last
                {
                    return outcome.clone().map_err(Error::Auth);
                }
                if let Want::After401(generation) = want {
                    want = Want::Tokens;
                    if let Ok(UnauthorizedOutcome::Stale { .. }) = shared.machine.report_unauthorized(generation)
                        && let Some(tokens) = shared.machine.tokens()
                    {
                        return Ok(tokens);
                    }
                }
                if let Want::Tokens = want
                    && let Some(tokens) = shared.machine.tokens()
                {
                    return Ok(tokens);
                }
                if shared.leader {
                    waiting_since.get_or_insert(shared.completed);
                    None
                } else {
                    shared.leader = true;
                    // Either begins a login, or finds the one a reported 401 began.
                    let _ = match want {
                        Want::Refresh => shared.machine.refresh(),
                        _ => shared.machine.start(),
                    };
                    Some(LeaderGuard { inner, finished: false })
                }
            };
            match guard {
                Some(guard) => return self.lead(guard).await,
                None => notified.await,
            }
        }
    }

    /// Drives the login to its end: sends what the machine hands out (a batch concurrently), feeds the answers
    /// back, sleeps until retries are due, and records the outcome for the waiters.
    async fn lead(&self, mut guard: LeaderGuard<'_>) -> Result<Arc<Tokens>, Error> {
        let inner = &*self.inner;
        loop {
            let now = wall_clock();
            // An RSA signature takes milliseconds: make it on the blocking pool, with the lock released, so that
            // neither the executor nor the other callers wait for it.
            let unsigned = inner.lock().machine.poll_jwt(now);
            if let Some(jwt) = unsigned {
                let signed = tokio::task::spawn_blocking(move || jwt.sign())
                    .await
                    .unwrap_or_else(|failed| Err(SignError(format!("the signing task failed: {failed}"))));
                inner.lock().machine.supply_jwt(signed);
            }
            let mut events = Vec::new();
            let (batch, finished, timeout) = {
                let mut shared = inner.lock();
                let mut finished = drain_events(&mut shared, &mut events);
                let mut batch = Vec::new();
                if finished.is_none() {
                    while let Some(request) = shared.machine.poll_request(now) {
                        batch.push(request);
                    }
                    finished = drain_events(&mut shared, &mut events);
                }
                if finished.is_none() && batch.is_empty() && shared.machine.poll_timeout().is_none() {
                    // Nothing to send or wait for: no login under way (the machine never leaves one stuck, but a
                    // driver must not spin if it did).
                    if let Some(tokens) = shared.machine.tokens() {
                        finished = Some(Ok(tokens));
                    } else if !shared.machine.start() {
                        shared.machine.abort_login();
                        shared.machine.start();
                    }
                }
                if let Some(outcome) = &finished {
                    batch.clear();
                    shared.completed += 1;
                    shared.last = Some(outcome.clone());
                    shared.leader = false;
                    guard.finished = true;
                }
                (batch, finished, shared.machine.poll_timeout())
            };
            if let Some(outcome) = finished {
                // Waiters first, so that a panicking event hook cannot strand them.
                inner.notify.notify_waiters();
                self.emit(&events);
                return outcome.map_err(Error::Auth);
            }
            self.emit(&events);
            if !batch.is_empty() {
                let results = self.send_batch(batch).await;
                let now = wall_clock();
                let mut shared = inner.lock();
                for (id, result) in results {
                    // A usage error cannot happen: every id comes from this machine and is reported once.
                    let _ = match result {
                        Ok(response) => shared.machine.handle_response(id, &response, now),
                        Err(failure) => shared.machine.handle_failure(id, failure, now),
                    };
                }
            } else if let Some(at) = timeout {
                tokio::time::sleep(at.saturating_since(now)).await;
                // Tell the machine the deadline it asked for has come, whatever the wall clock says.
                inner.lock().machine.handle_timeout(at);
            }
        }
    }

    /// Sends the requests handed out together, concurrently.
    async fn send_batch(&self, batch: Vec<LoginRequest>) -> Vec<(RequestId, Result<HttpResponse, TransportFailure>)> {
        let mut requests = batch.into_iter();
        let mut results = Vec::with_capacity(2);
        match (requests.next(), requests.next()) {
            (Some(a), Some(b)) => {
                let (a, b) = tokio::join!(self.send_login(a), self.send_login(b));
                results.extend([a, b]);
            }
            (Some(a), None) => results.push(self.send_login(a).await),
            _ => {}
        }
        // The machine hands out at most two at once; any more go one by one.
        for request in requests {
            results.push(self.send_login(request).await);
        }
        results
    }

    async fn send_login(&self, login: LoginRequest) -> (RequestId, Result<HttpResponse, TransportFailure>) {
        let result = transport::exchange(
            &self.inner.client,
            login.request,
            symphony_auth_core::MAX_RESPONSE_BODY,
            Oversize::Truncate,
        )
        .await
        .map_err(TransportFailure::from);
        (login.id, result)
    }

    fn emit(&self, events: &[Event]) {
        if let Some(hook) = &self.inner.on_event {
            for event in events {
                hook(event);
            }
        }
    }
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bot")
            .field("username", self.inner.config.username())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Drains the machine's events into `events`; the outcome of the login if one of them ends it.
fn drain_events(shared: &mut Shared, events: &mut Vec<Event>) -> Option<Result<Arc<Tokens>, AuthError>> {
    let mut finished = None;
    while let Some(event) = shared.machine.poll_event() {
        match &event {
            // No tokens after `Authenticated`: a 401 already expired them and a new login began; lead that one.
            Event::Authenticated { .. } => finished = shared.machine.tokens().map(Ok),
            Event::LoginFailed(error) => finished = Some(Err(error.clone())),
            _ => {}
        }
        events.push(event);
    }
    finished
}

fn wall_clock() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

/// A seed that differs between bots and runs; jitter needs no more.
fn default_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let marker = 0u8;
    nanos ^ (std::ptr::addr_of!(marker) as usize as u64).rotate_left(32)
}

/// The request without its extensions (which cannot be cloned).
fn clone_request(request: &HttpRequest) -> HttpRequest {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// `scheme://user:pass@host` → `scheme://***@host`, for error messages.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
        _ => url.to_owned(),
    }
}
