//! [`Bot`]: the core's [`Flight`] behind a mutex and a [`Notify`], and one reqwest client. Every decision is the
//! core's; this file moves bytes, sleeps and wakes. The std mutex is never held across an `.await`.

use std::collections::HashMap;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::SystemTime;

use symphony_auth_core::driver::{self, ClientOptions, Driver};
use symphony_auth_core::{
    AccessToken, ApiCall, ApiStep, Authenticator, Bearer, BearerLease, BearerStep, Config, Flight, FlightLock,
    HttpRequest, HttpResponse, LoginRequest, MAX_RESPONSE_BODY, Report, RequestId, SessionInfo, SignError, State, Step,
    Ticket, Tokens, TransportFailure, TransportKind, UnixTime, Want, parse_session_info,
};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{self, JoinSet};

use crate::Error;
use crate::gate::Gate;
use crate::transport::{self, Oversize};

/// The settings of a [`Bot`]; made by [`Bot::builder`].
pub type BotBuilder = driver::BotBuilder<Async>;

/// The async driver, as the core's [`BotBuilder`](driver::BotBuilder) knows it.
#[derive(Debug)]
pub struct Async;

impl Driver for Async {
    type Bot = Bot;

    fn build(config: Config, options: ClientOptions) -> Result<Bot, Error> {
        let tls = options.tls_config(rustls_native_certs::load_native_certs)?;
        // One client per distinct proxy: a service with a proxy of its own goes through it, the others not.
        let clients = options
            .clients_needed()
            .iter()
            .map(|proxy| transport::build_client(&options, proxy.as_ref(), Arc::clone(&tls)))
            .collect::<Result<Vec<_>, _>>()?;
        let flight = Flight::new(Authenticator::new(config.clone(), options.seed));
        let gate = Gate::new(&options.connections);
        Ok(Bot {
            inner: Arc::new(Inner {
                config,
                clients,
                gate,
                options,
                flight: Mutex::new(flight),
                notify: Notify::new(),
            }),
        })
    }
}

/// An authenticated Symphony bot: logs in on first use, shares one login among concurrent callers, attaches the
/// tokens to API calls and recovers from a 401 once.
///
/// Cheap to clone (an [`Arc`] inside); clones share the tokens, the login and the HTTP client. `Send + Sync`.
/// Cancellation-safe: a task driving a login that is dropped leaves the login, its backoff included, to a waiting
/// task.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// One per distinct proxy of [`ClientOptions::clients_needed`].
    clients: Vec<reqwest::Client>,
    /// The bound on requests in flight per host, over all the clients.
    gate: Gate,
    options: ClientOptions,
    flight: Mutex<Flight>,
    /// Wakes followers when a leader finishes or goes away.
    notify: Notify,
}

/// Signatures in progress in the process, at most one per core (see `obtain`).
fn signing_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from)))
}

pub(crate) fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

pub(crate) async fn sleep_until(at: UnixTime) {
    tokio::time::sleep(at.saturating_since(now())).await;
}

impl Bot {
    /// Starts the settings of a bot with the machine's configuration.
    pub fn builder(config: Config) -> BotBuilder {
        BotBuilder::new(config)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A bot from a BDK configuration file (the YAML or JSON of the Java and Python SDKs): see
    /// [`BotBuilder::from_config_file`] for the keys read. The environment expands `${ENV}`. Reading the file
    /// blocks: call it before serving, or on the blocking pool.
    ///
    /// # Errors
    /// [`Error::ConfigFile`], naming the key at fault, and the errors of [`BotBuilder::build`].
    #[cfg(feature = "config-file")]
    pub fn from_config_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let read = &mut |file: &std::path::Path| std::fs::read(file);
        BotBuilder::from_config_file(path.as_ref(), read, &|name| std::env::var(name).ok())?.build()
    }

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        self.inner.lock_flight().state()
    }

    /// The current tokens, logging in first when there are none. Concurrent callers share one login and get the
    /// same tokens or the same error; after a failed login, callers get its error without a new request until its
    /// cool-down ends.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails.
    pub async fn tokens(&self) -> Result<Arc<Tokens>, Error> {
        self.obtain(Want::Current).await
    }

    /// Logs in again even though tokens are available (they stay in use until the new ones arrive), or a failed
    /// login is cooling down. A login already under way is joined rather than doubled.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails.
    pub async fn refresh(&self) -> Result<Arc<Tokens>, Error> {
        self.obtain(Want::Fresh).await
    }

    /// Sends an API call with the tokens attached (`sessionToken`, and `keyManagerToken` for agent URLs), logging
    /// in first if needed. On a 401 it waits for the one shared re-login and replays the call once; a second 401
    /// is [`Error::Unauthorized`]. With an API retry policy configured ([`Config::with_api_retry`]), 5xx, 429 and
    /// transport failures of idempotent calls are retried. Any other status is returned as it is.
    ///
    /// # Errors
    /// [`Error::Auth`] when a login fails, [`Error::Transport`] when the call fails below HTTP or its body exceeds
    /// the size limit, [`Error::Unauthorized`] as above, [`Error::Usage`] for a URI outside the configured
    /// services.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let mut call = self.inner.lock_flight().api_call(request)?;
        let mut tokens = self.tokens().await?;
        loop {
            let bearer = self.bearer(&mut call, &mut tokens).await?;
            let request = call.request_with(&tokens, bearer.as_ref());
            let outcome = self.inner.exchange(request, self.max_body(), Oversize::Fail).await;
            let step = self.inner.lock_flight().handle_api(&mut call, outcome, now());
            match step {
                ApiStep::Return(response) => return Ok(response),
                ApiStep::Relogin(generation) => tokens = self.obtain(Want::Newer(generation)).await?,
                ApiStep::RetryAt(at) => sleep_until(at).await,
                ApiStep::Fail(error) => return Err(error.into()),
            }
        }
    }

    /// The Common JWT `call` carries on its next attempt, when it carries one: cached, or fetched through A5
    /// first; an A5 401 replaces `tokens` with those of a new login.
    pub(crate) async fn bearer(
        &self,
        call: &mut ApiCall,
        tokens: &mut Arc<Tokens>,
    ) -> Result<Option<AccessToken>, Error> {
        loop {
            // Registered before the flight is read, so that the end of another task's A5 call is not missed.
            let mut notified = pin!(self.inner.notify.notified());
            notified.as_mut().enable();
            let bearer = self.inner.lock_flight().bearer(call, tokens, now());
            let a5 = match bearer {
                Bearer::NotNeeded => return Ok(None),
                Bearer::Attach(token) => return Ok(Some(token)),
                Bearer::Follow => {
                    notified.await;
                    continue;
                }
                Bearer::Relogin(generation) => {
                    *tokens = self.obtain(Want::Newer(generation)).await?;
                    continue;
                }
                Bearer::Fetch(a5) => a5,
            };
            // Dropped with this future if it is cancelled: a follower then fetches instead.
            let lease = BearerLease::new(&*self.inner, tokens);
            let outcome = self.inner.exchange(a5, MAX_RESPONSE_BODY, Oversize::Fail).await;
            match lease.finish(call, tokens, outcome, now()) {
                BearerStep::Attach(token) => return Ok(Some(token)),
                BearerStep::Relogin(generation) => *tokens = self.obtain(Want::Newer(generation)).await?,
                BearerStep::Fail(error) => return Err(error.into()),
            }
        }
    }

    /// The single flight, locked: for the middlewares, which start and step API calls of their own.
    #[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
    pub(crate) fn flight(&self) -> MutexGuard<'_, Flight> {
        self.inner.lock_flight()
    }

    /// Sends `request` as it is, with **no tokens attached**, through the bot's own HTTP client (same TLS roots,
    /// client certificate, proxy, timeouts and response-size cap as [`send`](Self::send)). No login, no retry, no
    /// replay, any URI: for diagnostics. A login endpoint's raw answer may hold a token: never log a 200's body.
    ///
    /// # Errors
    /// [`Error::Transport`] when the request fails below HTTP or its answer exceeds the size cap.
    pub async fn send_unauthenticated(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        Ok(self.inner.exchange(request, self.max_body(), Oversize::Fail).await?)
    }

    /// The bot's own user record (`GET /pod/v2/sessioninfo`), through [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::SessionInfo`] when the answer is not a 200 with a user record.
    pub async fn session_info(&self) -> Result<SessionInfo, Error> {
        let response = self.send(symphony_auth_core::session_info(self.inner.config.endpoints())).await?;
        Ok(parse_session_info(&response)?)
    }

    /// Ends the current session through `POST /sessionauth/v1/logout` (S2), for a bot's session or an OBO
    /// user's, and forgets its tokens: the next call logs in again. With no tokens there is nothing to end. The
    /// session-auth host asks for a client certificate. Dropping a bot never logs out: only this does.
    ///
    /// # Errors
    /// [`Error::Logout`] when the server did not end the session, [`Error::Transport`] below HTTP.
    pub async fn logout(&self) -> Result<(), Error> {
        let Some(tokens) = self.inner.lock_flight().machine().tokens() else { return Ok(()) };
        let request = symphony_auth_core::logout(self.inner.config.endpoints(), &tokens);
        let response = self.inner.exchange(request, self.max_body(), Oversize::Fail).await?;
        let (outcome, events) = {
            let mut flight = self.inner.lock_flight();
            let outcome = flight.handle_logout(tokens.generation(), &response);
            (outcome, std::iter::from_fn(|| flight.poll_event()).collect::<Vec<_>>())
        };
        self.inner.options.emit(&events);
        Ok(outcome?)
    }

    /// How many Common JWT access tokens A5 has given this bot.
    #[must_use]
    pub fn common_jwt_refreshes(&self) -> u64 {
        self.inner.lock_flight().common_jwt_refreshes()
    }

    fn max_body(&self) -> usize {
        self.inner.options.max_response_body
    }

    /// The single flight, as the core runs it: lead, follow, or take the answer.
    pub(crate) async fn obtain(&self, want: Want) -> Result<Arc<Tokens>, Error> {
        let inner = &*self.inner;
        let mut ticket = Ticket::join(inner, want)?;
        let mut sends = Sends::new(Arc::clone(&self.inner));
        loop {
            // Registered before the flight is read, so that a wake-up between the poll and the await is not lost.
            let mut notified = pin!(inner.notify.notified());
            notified.as_mut().enable();
            let (step, events) = ticket.poll(&mut inner.lock_flight(), now());
            inner.options.emit(&events);
            let report = match step {
                Step::Done { outcome, .. } => return Ok(outcome?),
                Step::Follow if events.is_empty() => {
                    notified.await;
                    continue;
                }
                Step::Follow => continue,
                // An RSA signature takes milliseconds: made on the blocking pool, off the executor, and no more at
                // once than there are cores. A fleet's thousand logins would otherwise put hundreds of signing
                // threads on the pool, which starve the runtime's workers (and every connection) of CPU while
                // signing no faster.
                Step::Sign(jwt) => {
                    let _slot = signing_slots().acquire().await;
                    Report::Signed(
                        task::spawn_blocking(move || jwt.sign())
                            .await
                            .unwrap_or_else(|failed| Err(SignError(format!("the signing task failed: {failed}")))),
                    )
                }
                Step::Send(batch) => {
                    sends.start(batch);
                    sends.next().await
                }
                Step::AwaitAnswers => sends.next().await,
                Step::WaitUntil(at) => {
                    sleep_until(at).await;
                    continue;
                }
            };
            inner.lock_flight().report(report, now())?;
        }
    }
}

impl Inner {
    /// The client that carries requests to `uri`: its service's proxy, or none.
    fn client_for(&self, uri: &http::Uri) -> &reqwest::Client {
        let index = self.options.client_index(self.config.endpoints(), uri);
        // `client_index` is within `clients_needed`, from which the clients were built.
        &self.clients[index.min(self.clients.len() - 1)]
    }

    /// Sends `request` through its client, within the bound per host (see `transport::exchange`).
    async fn exchange(
        &self,
        request: HttpRequest,
        cap: usize,
        oversize: Oversize,
    ) -> Result<HttpResponse, TransportFailure> {
        transport::exchange(self.client_for(request.uri()), &self.gate, request, cap, oversize).await
    }
}

impl FlightLock for Inner {
    type Guard<'a> = MutexGuard<'a, Flight>;

    fn now(&self) -> UnixTime {
        now()
    }

    fn wake_followers(&self) {
        // Followers first, before any event hook runs, so that a panicking hook cannot strand them.
        self.notify.notify_waiters();
    }

    fn lock_flight(&self) -> MutexGuard<'_, Flight> {
        // The flight stays consistent across a panic in a caller: it is only changed by whole method calls.
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        f.debug_struct("Bot").field("username", config.username()).field("state", &self.state()).finish_non_exhaustive()
    }
}

/// The login requests a leader has out, each on a task of its own, answered as each arrives. Dropping it (the
/// login ended, or the leader was cancelled) aborts those still out.
struct Sends {
    inner: Arc<Inner>,
    tasks: JoinSet<Result<HttpResponse, TransportFailure>>,
    ids: HashMap<task::Id, RequestId>,
}

impl Sends {
    fn new(inner: Arc<Inner>) -> Self {
        Self { inner, tasks: JoinSet::new(), ids: HashMap::new() }
    }

    fn start(&mut self, batch: Vec<LoginRequest>) {
        for login in batch {
            let inner = Arc::clone(&self.inner);
            let handle = self
                .tasks
                .spawn(async move { inner.exchange(login.request, MAX_RESPONSE_BODY, Oversize::Truncate).await });
            self.ids.insert(handle.id(), login.id);
        }
    }

    async fn next(&mut self) -> Report {
        let (task, outcome) = match self.tasks.join_next_with_id().await {
            Some(Ok((task, outcome))) => (task, outcome),
            Some(Err(failed)) => {
                let failure =
                    TransportFailure::new(TransportKind::Other, format!("the request's task failed: {failed}"));
                (failed.id(), Err(failure))
            }
            None => return Report::Lost,
        };
        match self.ids.remove(&task) {
            Some(id) => Report::Answer(id, outcome),
            None => Report::Lost,
        }
    }
}
