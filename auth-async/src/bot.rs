//! [`Bot`]: the core's [`Flight`] behind a mutex and a [`Notify`], and one reqwest client. Every decision is the
//! core's; this file moves bytes, sleeps and wakes. The std mutex is never held across an `.await`.

use std::collections::HashMap;
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use symphony_auth_core::driver::{self, ClientOptions, Driver};
use symphony_auth_core::{
    ApiStep, Authenticator, Caller, Config, Event, Flight, HttpRequest, HttpResponse, LoginRequest, MAX_RESPONSE_BODY,
    RequestId, SessionInfo, SignError, SignedJwt, State, Step, Tokens, TransportFailure, TransportKind, UnixTime, Want,
    parse_session_info,
};
use tokio::sync::Notify;
use tokio::task::{self, JoinSet};

use crate::Error;
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
        let client = transport::build_client(&options, tls)?;
        let flight = Flight::new(Authenticator::new(config.clone(), options.seed));
        Ok(Bot {
            inner: Arc::new(Inner { config, client, options, flight: Mutex::new(flight), notify: Notify::new() }),
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
    client: reqwest::Client,
    options: ClientOptions,
    flight: Mutex<Flight>,
    /// Wakes followers when a leader finishes or goes away.
    notify: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Flight> {
        // The flight stays consistent across a panic in a caller: it is only changed by whole method calls.
        self.flight.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bot")
            .field("username", self.inner.config.username())
            .field("pod", &self.inner.config.endpoints().pod)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn now() -> UnixTime {
    UnixTime::from_system_time(SystemTime::now())
}

async fn sleep_until(at: UnixTime) {
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

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        self.inner.lock().state()
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
        let mut call = self.inner.lock().api_call(request)?;
        let mut tokens = self.tokens().await?;
        loop {
            let request = call.request(&tokens);
            let outcome = transport::exchange(&self.inner.client, request, self.max_body(), Oversize::Fail).await;
            let step = self.inner.lock().handle_api(&mut call, outcome, now());
            match step {
                ApiStep::Return(response) => return Ok(response),
                ApiStep::Relogin(generation) => tokens = self.obtain(Want::Newer(generation)).await?,
                ApiStep::RetryAt(at) => sleep_until(at).await,
                ApiStep::Fail(error) => return Err(error.into()),
            }
        }
    }

    /// Sends `request` as it is, with **no tokens attached**, through the bot's own HTTP client (same TLS roots,
    /// client certificate, proxy, timeouts and response-size cap as [`send`](Self::send)). No login, no retry, no
    /// replay, any URI: for diagnostics. A login endpoint's raw answer may hold a token: never log a 200's body.
    ///
    /// # Errors
    /// [`Error::Transport`] when the request fails below HTTP or its answer exceeds the size cap.
    pub async fn send_unauthenticated(&self, request: HttpRequest) -> Result<HttpResponse, Error> {
        Ok(transport::exchange(&self.inner.client, request, self.max_body(), Oversize::Fail).await?)
    }

    /// The bot's own user record (`GET /pod/v2/sessioninfo`), through [`send`](Self::send).
    ///
    /// # Errors
    /// As [`send`](Self::send), and [`Error::SessionInfo`] when the answer is not a 200 with a user record.
    pub async fn session_info(&self) -> Result<SessionInfo, Error> {
        let response = self.send(symphony_auth_core::session_info(self.inner.config.endpoints())).await?;
        Ok(parse_session_info(&response)?)
    }

    fn max_body(&self) -> usize {
        self.inner.options.max_response_body
    }

    /// The single flight, as the core runs it: lead, follow, or take the answer.
    async fn obtain(&self, want: Want) -> Result<Arc<Tokens>, Error> {
        let inner = &*self.inner;
        let caller = inner.lock().join(want)?;
        let mut ticket = Ticket { inner, caller, done: false };
        let mut sends = Sends::new(&inner.client);
        loop {
            // Registered before the flight is read, so that a wake-up between the poll and the await is not lost.
            let mut notified = pin!(inner.notify.notified());
            notified.as_mut().enable();
            let (step, events) = {
                let mut flight = inner.lock();
                let step = flight.poll(&mut ticket.caller, now());
                (step, std::iter::from_fn(|| flight.poll_event()).collect::<Vec<Event>>())
            };
            let reported = match step {
                Step::Done { outcome, wake_followers } => {
                    ticket.done = true;
                    if wake_followers {
                        // Followers first, so that a panicking event hook cannot strand them.
                        inner.notify.notify_waiters();
                    }
                    inner.options.emit(&events);
                    return Ok(outcome?);
                }
                Step::Follow => {
                    inner.options.emit(&events);
                    if events.is_empty() {
                        notified.await;
                    }
                    continue;
                }
                Step::Sign(jwt) => {
                    inner.options.emit(&events);
                    // An RSA signature takes milliseconds: made on the blocking pool, off the executor.
                    let signed = task::spawn_blocking(move || jwt.sign()).await;
                    Reported::Jwt(signed.unwrap_or_else(|e| Err(SignError(format!("the signing task failed: {e}")))))
                }
                Step::Send(batch) => {
                    inner.options.emit(&events);
                    sends.start(batch);
                    sends.next().await
                }
                Step::AwaitAnswers => {
                    inner.options.emit(&events);
                    sends.next().await
                }
                Step::WaitUntil(at) => {
                    inner.options.emit(&events);
                    sleep_until(at).await;
                    continue;
                }
            };
            let mut flight = inner.lock();
            let now = now();
            match reported {
                Reported::Jwt(signed) => flight.supply_jwt(signed, now),
                Reported::Answer(id, Ok(response)) => flight.handle_response(id, &response, now)?,
                Reported::Answer(id, Err(failure)) => flight.handle_failure(id, failure, now)?,
                Reported::Lost => flight.abandon_requests(now),
            }
        }
    }
}

/// What the leader brings back to the flight.
enum Reported {
    Jwt(Result<SignedJwt, SignError>),
    Answer(RequestId, Result<HttpResponse, TransportFailure>),
    /// The tasks of the requests still out are gone without answering.
    Lost,
}

/// The login requests a leader has out, each on a task of its own, answered as each arrives. Dropping it (the
/// login ended, or the leader was cancelled) aborts those still out.
struct Sends {
    client: reqwest::Client,
    tasks: JoinSet<Result<HttpResponse, TransportFailure>>,
    ids: HashMap<task::Id, RequestId>,
}

impl Sends {
    fn new(client: &reqwest::Client) -> Self {
        Self { client: client.clone(), tasks: JoinSet::new(), ids: HashMap::new() }
    }

    fn start(&mut self, batch: Vec<LoginRequest>) {
        for login in batch {
            let client = self.client.clone();
            let handle = self.tasks.spawn(async move {
                transport::exchange(&client, login.request, MAX_RESPONSE_BODY, Oversize::Truncate).await
            });
            self.ids.insert(handle.id(), login.id);
        }
    }

    async fn next(&mut self) -> Reported {
        let (task, outcome) = match self.tasks.join_next_with_id().await {
            Some(Ok((task, outcome))) => (task, outcome),
            Some(Err(failed)) => {
                let failure =
                    TransportFailure::new(TransportKind::Other, format!("the request's task failed: {failed}"));
                (failed.id(), Err(failure))
            }
            None => return Reported::Lost,
        };
        match self.ids.remove(&task) {
            Some(id) => Reported::Answer(id, outcome),
            None => Reported::Lost,
        }
    }
}

/// A caller's place in the flight until its answer: dropped before it (the task was cancelled or panicked), it
/// leaves the flight, which hands the login to a follower with its backoff, and wakes the followers.
struct Ticket<'a> {
    inner: &'a Inner,
    caller: Caller,
    done: bool,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if !self.done && self.inner.lock().leave(&self.caller, now()) {
            self.inner.notify.notify_waiters();
        }
    }
}
