//! [`Bot`]: the core's [`Flight`] behind a mutex and a condition variable, and one ureq agent. Every decision is
//! the core's; this file moves bytes, sleeps and wakes.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use symphony_auth_core::driver::{self, ClientOptions, Driver};
use symphony_auth_core::{
    AccessToken, ApiCall, ApiStep, Bearer, BearerLease, BearerStep, Config, Event, Flight, FlightLock, HttpRequest,
    HttpResponse, LoginRequest, MAX_RESPONSE_BODY, Report, RequestId, SessionInfo, State, Step, Ticket, Tokens,
    TransportFailure, UnixTime, UsageError, Want, parse_session_info,
};
use ureq::Agent;

use crate::Error;
use crate::gate::Gate;
use crate::transport;

/// The settings of a [`Bot`]; made by [`Bot::builder`].
pub type BotBuilder = driver::BotBuilder<Blocking>;

/// The blocking driver, as the core's [`BotBuilder`](driver::BotBuilder) knows it.
#[derive(Debug)]
pub struct Blocking;

impl Driver for Blocking {
    type Bot = Bot;

    fn build(config: Config, options: ClientOptions) -> Result<Bot, Error> {
        let tls = options.tls_config(rustls_native_certs::load_native_certs)?;
        // One agent per distinct proxy: a service with a proxy of its own goes through it, the others not.
        let agents = options
            .clients_needed()
            .iter()
            .map(|proxy| transport::agent(Arc::clone(&tls), proxy.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        let flight = Flight::new(symphony_auth_core::Authenticator::new(config.clone(), options.seed));
        let gate = Arc::new(Gate::new(&options.connections));
        Ok(Bot {
            inner: Arc::new(Inner { config, agents, gate, options, flight: Mutex::new(flight), wake: Condvar::new() }),
        })
    }
}

/// A Symphony bot: logs in on first use, keeps its tokens, shares one login between every caller, and sends API
/// calls with the tokens attached. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    /// One per distinct proxy of [`ClientOptions::clients_needed`].
    agents: Vec<Agent>,
    /// The bound on requests in flight per host, over all the agents.
    gate: Arc<Gate>,
    options: ClientOptions,
    flight: Mutex<Flight>,
    /// Signalled when a leader finishes or goes away.
    wake: Condvar,
}

impl Inner {
    /// The agent that carries requests to `uri`: its service's proxy, or none.
    fn agent_for(&self, uri: &http::Uri) -> &Agent {
        let index = self.options.client_index(self.config.endpoints(), uri);
        // `client_index` is within `clients_needed`, from which the agents were built.
        &self.agents[index.min(self.agents.len() - 1)]
    }

    /// Sends `request` through its agent, within the bound per host (see `transport::execute`).
    fn execute(&self, request: HttpRequest, limit: usize, truncate: bool) -> Result<HttpResponse, TransportFailure> {
        transport::execute(self.agent_for(request.uri()), &self.gate, request, limit, truncate)
    }
}

impl FlightLock for Inner {
    type Guard<'a> = MutexGuard<'a, Flight>;

    fn lock_flight(&self) -> MutexGuard<'_, Flight> {
        // The flight stays consistent across a panic in a caller: it is only changed by whole method calls.
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake_followers(&self) {
        self.wake.notify_all();
    }

    fn now(&self) -> UnixTime {
        now()
    }
}

thread_local! {
    /// The bot whose event hook this thread is running in the middle of a login it leads: a call into that bot
    /// from the hook would wait for itself.
    static LEADING_IN_HOOK: Cell<usize> = const { Cell::new(0) };
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

pub(crate) fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

pub(crate) fn sleep_until(at: UnixTime) {
    std::thread::sleep(at.saturating_since(now()));
}

impl Bot {
    /// Starts the settings of a bot with the machine's configuration.
    pub fn builder(config: Config) -> BotBuilder {
        BotBuilder::new(config)
    }

    /// A bot from a BDK configuration file (the YAML or JSON of the Java and Python SDKs): see
    /// [`BotBuilder::from_config_file`] for the keys read. The environment expands `${ENV}`.
    ///
    /// # Errors
    /// [`Error::ConfigFile`], naming the key at fault, and the errors of [`BotBuilder::build`].
    #[cfg(feature = "config-file")]
    pub fn from_config_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let read = &mut |file: &std::path::Path| std::fs::read(file);
        BotBuilder::from_config_file(path.as_ref(), read, &|name| std::env::var(name).ok())?.build()
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        self.lock().state()
    }

    /// The current tokens, logging in first if there are none. Concurrent callers share one login and get the
    /// same tokens or the same error; after a failed login, callers get its error without a new request until
    /// its cool-down ends.
    ///
    /// # Errors
    /// [`Error::Auth`] when the login fails; [`Error::Usage`] when called from the bot's own event hook during a
    /// login that hook's thread leads.
    pub fn tokens(&self) -> Result<Arc<Tokens>, Error> {
        self.obtain(Want::Current)
    }

    /// Logs in again even though tokens are available (they stay in use until the new ones arrive), or a failed
    /// login is cooling down, and returns the new tokens. A login already under way is joined rather than doubled.
    ///
    /// # Errors
    /// As [`tokens`](Self::tokens).
    pub fn refresh(&self) -> Result<Arc<Tokens>, Error> {
        self.obtain(Want::Fresh)
    }

    /// Sends an API call with the tokens attached (`sessionToken`, plus `keyManagerToken` on agent calls). On a
    /// 401 it waits for the one shared re-login and replays the call once; a second 401 is
    /// [`Error::Unauthorized`]. With an API retry policy configured ([`Config::with_api_retry`]), 5xx, 429 and
    /// transport failures of idempotent calls are retried. Any other status is returned as it is.
    ///
    /// # Errors
    /// [`Error::Auth`] when a login fails, [`Error::Transport`] when the call fails below HTTP or its answer exceeds
    /// the size cap, [`Error::Unauthorized`] on a 401 after a fresh login, [`Error::Usage`] for a URI outside the
    /// configured services (tokens are never sent anywhere else).
    pub fn send(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        let mut call = self.lock().api_call(request)?;
        let mut tokens = self.tokens()?;
        loop {
            let bearer = self.bearer(&mut call, &mut tokens)?;
            let request = call.request_with(&tokens, bearer.as_ref());
            let outcome = self.inner.execute(request, self.max_body(), false);
            let step = self.lock().handle_api(&mut call, outcome, now());
            match step {
                ApiStep::Return(response) => return Ok(response),
                ApiStep::Relogin(generation) => tokens = self.obtain(Want::Newer(generation))?,
                ApiStep::RetryAt(at) => sleep_until(at),
                ApiStep::Fail(error) => return Err(error.into()),
            }
        }
    }

    /// The Common JWT `call` carries on its next attempt, when it carries one: cached, or fetched through A5
    /// first; an A5 401 replaces `tokens` with those of a new login.
    pub(crate) fn bearer(&self, call: &mut ApiCall, tokens: &mut Arc<Tokens>) -> Result<Option<AccessToken>, Error> {
        loop {
            // While another thread's A5 call is out, wait for it (the guard is released while waiting).
            let bearer = {
                let mut flight = self.lock();
                loop {
                    match flight.bearer(call, tokens, now()) {
                        Bearer::Follow => flight = self.inner.wake.wait(flight).unwrap_or_else(PoisonError::into_inner),
                        other => break other,
                    }
                }
            };
            let a5 = match bearer {
                Bearer::NotNeeded => return Ok(None),
                Bearer::Attach(token) => return Ok(Some(token)),
                Bearer::Follow => continue,
                Bearer::Relogin(generation) => {
                    *tokens = self.obtain(Want::Newer(generation))?;
                    continue;
                }
                Bearer::Fetch(a5) => a5,
            };
            // Dropped on a panic as well: a waiting thread then fetches instead.
            let lease = BearerLease::new(&*self.inner, tokens);
            let outcome = self.inner.execute(a5, MAX_RESPONSE_BODY, false);
            match lease.finish(call, tokens, outcome, now()) {
                BearerStep::Attach(token) => return Ok(Some(token)),
                BearerStep::Relogin(generation) => *tokens = self.obtain(Want::Newer(generation))?,
                BearerStep::Fail(error) => return Err(error.into()),
            }
        }
    }

    /// The bot's own agent for `uri` (its service's proxy, TLS roots and client certificate): for the ureq
    /// middleware's replays.
    pub(crate) fn agent_for(&self, uri: &http::Uri) -> &Agent {
        self.inner.agent_for(uri)
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
        Ok(self.inner.execute(request, self.max_body(), false)?)
    }

    /// The bot's own user record (`GET /pod/v2/sessioninfo`), through [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::SessionInfo`] for a non-200 answer or an unreadable record.
    pub fn session_info(&self) -> Result<SessionInfo, Error> {
        let response = self.send(symphony_auth_core::session_info(self.inner.config.endpoints()))?;
        Ok(parse_session_info(&response)?)
    }

    /// Ends the current session through `POST /sessionauth/v1/logout` (S2), for a bot's session or an OBO
    /// user's, and forgets its tokens: the next call logs in again. With no tokens there is nothing to end. The
    /// session-auth host asks for a client certificate. Dropping a bot never logs out: only this does.
    ///
    /// # Errors
    /// [`Error::Logout`] when the server did not end the session, [`Error::Transport`] below HTTP.
    pub fn logout(&self) -> Result<(), Error> {
        let Some(tokens) = self.lock().machine().tokens() else { return Ok(()) };
        let request = symphony_auth_core::logout(self.inner.config.endpoints(), &tokens);
        let response = self.inner.execute(request, self.max_body(), false)?;
        let (outcome, events) = {
            let mut flight = self.lock();
            let outcome = flight.handle_logout(tokens.generation(), &response);
            (outcome, std::iter::from_fn(|| flight.poll_event()).collect::<Vec<_>>())
        };
        self.inner.options.emit(&events);
        Ok(outcome?)
    }

    /// How many Common JWT access tokens A5 has given this bot.
    #[must_use]
    pub fn common_jwt_refreshes(&self) -> u64 {
        self.lock().common_jwt_refreshes()
    }

    fn max_body(&self) -> usize {
        self.inner.options.max_response_body
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Flight> {
        self.inner.lock_flight()
    }

    fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// The single flight, as the core runs it: lead, follow, or take the answer.
    pub(crate) fn obtain(&self, want: Want) -> Result<Arc<Tokens>, Error> {
        if LEADING_IN_HOOK.with(Cell::get) == self.key() {
            return Err(UsageError::CalledFromEventHook.into());
        }
        // Declared before the guard, so that a panic drops the guard first and the ticket can lock to leave.
        let mut ticket = Ticket::join(&*self.inner, want)?;
        let mut sends = Sends::new(&self.inner);
        let mut flight = self.inner.lock_flight();
        loop {
            let (step, events) = ticket.poll(&mut flight, now());
            let report = match step {
                Step::Done { outcome, .. } => {
                    drop(flight);
                    self.inner.options.emit(&events);
                    return Ok(outcome?);
                }
                Step::Follow if events.is_empty() => {
                    flight = self.inner.wake.wait(flight).unwrap_or_else(PoisonError::into_inner);
                    continue;
                }
                Step::Follow => {
                    drop(flight);
                    self.inner.options.emit(&events);
                    flight = self.inner.lock_flight();
                    continue;
                }
                work => {
                    drop(flight);
                    self.emit_leading(&events);
                    match work {
                        Step::Sign(jwt) => Some(Report::Signed(jwt.sign())),
                        Step::Send(batch) => Some(sends.start(batch)),
                        Step::AwaitAnswers => Some(sends.next()),
                        Step::WaitUntil(at) => {
                            sleep_until(at);
                            None
                        }
                        _ => None,
                    }
                }
            };
            flight = self.inner.lock_flight();
            if let Some(report) = report {
                flight.report(report, now())?;
            }
        }
    }

    /// Hands events to the hook with no lock held while this thread leads a login: a call from the hook into this
    /// bot is refused rather than left to wait for itself.
    fn emit_leading(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let previous = LEADING_IN_HOOK.with(|cell| cell.replace(self.key()));
        let _restore = Restore(previous);
        self.inner.options.emit(events);
    }
}

/// Puts back the thread's hook marker, even when the hook panics.
struct Restore(usize);

impl Drop for Restore {
    fn drop(&mut self) {
        LEADING_IN_HOOK.with(|cell| cell.set(self.0));
    }
}

/// The login requests a leader has out: the first of a batch is sent on the leader's own thread, the others on
/// threads of their own, whose answers come back through a channel as each arrives. Threads still out when the
/// login ends finish on their own; their answers are dropped.
struct Sends<'a> {
    inner: &'a Inner,
    sender: Sender<(RequestId, Result<HttpResponse, TransportFailure>)>,
    answers: Receiver<(RequestId, Result<HttpResponse, TransportFailure>)>,
    out: HashSet<RequestId>,
    /// An answer got on the leader's own thread, handed over at the next `next`.
    ready: Option<(RequestId, Result<HttpResponse, TransportFailure>)>,
}

impl<'a> Sends<'a> {
    fn new(inner: &'a Inner) -> Self {
        let (sender, answers) = mpsc::channel();
        Self { inner, sender, answers, out: HashSet::new(), ready: None }
    }

    fn start(&mut self, batch: Vec<LoginRequest>) -> Report {
        let mut batch = batch.into_iter();
        let Some(first) = batch.next() else { return Report::Lost };
        for login in batch {
            let agent = self.inner.agent_for(login.request.uri()).clone();
            let gate = Arc::clone(&self.inner.gate);
            let (sender, id) = (self.sender.clone(), login.id);
            let spawned = std::thread::Builder::new().name("symphony-auth-login".into()).spawn(move || {
                let _ = sender.send((id, transport::execute(&agent, &gate, login.request, MAX_RESPONSE_BODY, true)));
            });
            match spawned {
                Ok(_) => {
                    self.out.insert(id);
                }
                Err(e) => {
                    let failure = TransportFailure::new(symphony_auth_core::TransportKind::Other, e.to_string());
                    self.ready = Some((id, Err(failure)));
                }
            }
        }
        Report::Answer(first.id, self.inner.execute(first.request, MAX_RESPONSE_BODY, true))
    }

    fn next(&mut self) -> Report {
        if let Some((id, outcome)) = self.ready.take() {
            return Report::Answer(id, outcome);
        }
        if self.out.is_empty() {
            return Report::Lost;
        }
        match self.answers.recv() {
            Ok((id, outcome)) => {
                self.out.remove(&id);
                Report::Answer(id, outcome)
            }
            Err(_) => Report::Lost,
        }
    }
}
