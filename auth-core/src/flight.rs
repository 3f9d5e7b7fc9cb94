//! The single flight: many callers, one login. Which caller leads a login, who follows it, what a follower
//! receives (the leader's tokens or the leader's error), and what happens when a leader disappears (a panic, a
//! cancelled future) are decided here, without I/O. A driver puts a [`Flight`] behind its lock and adds a way to
//! wait and wake (`Condvar` for threads, `Notify` for tasks):
//!
//! ```text
//! let mut caller = flight.join(want)?;                   (under the lock)
//! loop {
//!     match flight.poll(&mut caller, now) {               (under the lock)
//!         Step::Done { outcome, wake_followers } => { if wake_followers { wake all }; return outcome }
//!         Step::Follow => wait to be woken (lock released while waiting)
//!         Step::Sign / Send / AwaitAnswers / WaitUntil => do it with the lock released, report under it
//!     }
//! }
//! (if the caller goes away before Done: flight.leave(caller, now), and wake all if it says so)
//! ```
//!
//! Any number of callers, and any number of 401s on one generation, cause one login: followers never log in
//! while a leader exists, and a 401 on an old generation finds newer tokens.

use std::sync::Arc;

use crate::api::{ApiCall, ApiError, ApiStep};
use crate::common_jwt::{AccessTokenError, Bearer, BearerCache, BearerStep, access_token_request, parse_access_token};
use crate::error::{AuthError, SignError, TransportFailure, UsageError};
use crate::jwt::SignedJwt;
use crate::machine::{Authenticator, Event, LoginRequest, Output, RequestId, State};
use crate::time::UnixTime;
use crate::tokens::{Generation, Tokens};
use crate::{HttpRequest, HttpResponse, UnsignedJwt};

/// What a caller wants from the flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Want {
    /// Tokens: the current ones, or those of the next login.
    Current,
    /// A new login, even though tokens are available; a login already under way is joined rather than doubled.
    Fresh,
    /// Tokens newer than `generation`, whose tokens an API call was refused with a 401.
    Newer(Generation),
}

/// One caller's place in the flight: made by [`Flight::join`], passed to every [`Flight::poll`], and handed to
/// [`Flight::leave`] if the caller goes away before its [`Step::Done`].
#[derive(Debug)]
#[must_use = "a caller must be polled to its Done, or left"]
pub struct Caller {
    id: u64,
    want: Want,
    /// The count of finished logins when this caller began to follow: any login finished after it is the answer.
    following_since: Option<u64>,
}

impl Caller {
    /// What the caller asked for.
    #[must_use]
    pub fn want(&self) -> Want {
        self.want
    }
}

/// What a caller must do next.
#[derive(Debug)]
#[must_use = "a step is work the caller must do"]
pub enum Step {
    /// Lead: sign this JWT with the lock released, then [`Flight::supply_jwt`].
    Sign(UnsignedJwt),
    /// Lead: send these requests (concurrently when several) with the lock released; report each outcome with
    /// [`Flight::handle_response`] / [`Flight::handle_failure`] as it comes, and poll after each.
    Send(Vec<LoginRequest>),
    /// Lead: report the next answer to the requests already sent.
    AwaitAnswers,
    /// Lead: nothing is due before this instant; sleep with the lock released, then poll.
    WaitUntil(UnixTime),
    /// Another caller leads the login: wait with the lock released until woken, then poll.
    Follow,
    /// The caller's answer.
    Done {
        /// The tokens, or why there are none.
        outcome: Result<Arc<Tokens>, AuthError>,
        /// Whether the caller led a login that others follow: wake every waiting caller.
        wake_followers: bool,
    },
}

/// What a leader brings back to the flight from work done with the lock released.
#[derive(Debug)]
#[non_exhaustive]
pub enum Report {
    /// The signature of what [`Step::Sign`] handed out.
    Signed(Result<SignedJwt, SignError>),
    /// What came of login request `id`: its answer, or a failure below HTTP.
    Answer(RequestId, Result<HttpResponse, TransportFailure>),
    /// The requests still out are lost (their threads or tasks are gone without an answer).
    Lost,
}

/// The lock a driver keeps its [`Flight`] behind, and its way to wake the callers that follow a login.
pub trait FlightLock {
    /// The lock's guard (a `MutexGuard`, for example).
    type Guard<'a>: std::ops::DerefMut<Target = Flight>
    where
        Self: 'a;
    /// The flight, locked.
    fn lock_flight(&self) -> Self::Guard<'_>;
    /// Wakes every caller waiting after a [`Step::Follow`].
    fn wake_followers(&self);
    /// The wall clock, for a caller that leaves without a `now` of its own (its ticket is dropped).
    fn now(&self) -> UnixTime;
}

/// A caller's place in a flight behind lock `L`, until its answer. Dropped before it (the caller's thread panicked,
/// its future was cancelled), it [leaves](Flight::leave) the flight, which hands the login to a follower with its
/// backoff, and wakes the followers. Drop the flight's guard before the ticket: dropping the ticket locks.
#[derive(Debug)]
pub struct Ticket<'a, L: FlightLock> {
    lock: &'a L,
    caller: Caller,
    done: bool,
}

impl<'a, L: FlightLock> Ticket<'a, L> {
    /// Joins the flight behind `lock`, wanting `want`.
    ///
    /// # Errors
    /// As [`Flight::join`].
    pub fn join(lock: &'a L, want: Want) -> Result<Self, UsageError> {
        let caller = lock.lock_flight().join(want)?;
        Ok(Self { lock, caller, done: false })
    }

    /// The next step, as [`Flight::poll`], with the events to hand on (with the lock released). On
    /// [`Step::Done`] the ticket is spent and, when the caller led, the followers are woken.
    pub fn poll(&mut self, flight: &mut Flight, now: UnixTime) -> (Step, Vec<Event>) {
        let step = flight.poll(&mut self.caller, now);
        let events = std::iter::from_fn(|| flight.poll_event()).collect();
        if let Step::Done { wake_followers, .. } = &step {
            self.done = true;
            if *wake_followers {
                self.lock.wake_followers();
            }
        }
        (step, events)
    }
}

impl<L: FlightLock> Drop for Ticket<'_, L> {
    fn drop(&mut self) {
        if !self.done && self.lock.lock_flight().leave(&self.caller, self.lock.now()) {
            self.lock.wake_followers();
        }
    }
}

/// A caller's A5 call ([`Bearer::Fetch`](crate::Bearer::Fetch)) for a flight behind lock `L`, until its outcome
/// is handed over with [`finish`](Self::finish), which wakes the callers that follow it. Dropped before that (the
/// caller's thread panicked, its future was cancelled), it gives the call up, so that a follower fetches instead,
/// and wakes the followers. Hold no guard of the lock when finishing or dropping it: both lock.
#[derive(Debug)]
#[must_use = "a lease must be finished with the A5 call's outcome"]
pub struct BearerLease<'a, L: FlightLock> {
    lock: &'a L,
    generation: Generation,
    done: bool,
}

impl<'a, L: FlightLock> BearerLease<'a, L> {
    /// The lease of the A5 call that [`Flight::bearer`] handed out for `tokens`.
    pub fn new(lock: &'a L, tokens: &Tokens) -> Self {
        Self { lock, generation: tokens.generation(), done: false }
    }

    /// As [`Flight::handle_bearer`], then wakes the followers.
    pub fn finish(
        mut self,
        call: &mut ApiCall,
        tokens: &Tokens,
        outcome: Result<HttpResponse, TransportFailure>,
        now: UnixTime,
    ) -> BearerStep {
        self.done = true;
        let step = self.lock.lock_flight().handle_bearer(call, tokens, outcome, now);
        self.lock.wake_followers();
        step
    }
}

impl<L: FlightLock> Drop for BearerLease<'_, L> {
    fn drop(&mut self) {
        if !self.done {
            self.lock.lock_flight().abandon_bearer(self.generation);
            self.lock.wake_followers();
        }
    }
}

/// An [`Authenticator`] shared by many callers, each of which [joins](Self::join) and [polls](Self::poll) it.
#[derive(Debug)]
pub struct Flight {
    machine: Authenticator,
    leader: Option<u64>,
    next_caller: u64,
    /// How many logins have ended, and how the last one ended.
    finished: u64,
    last: Option<Result<Arc<Tokens>, AuthError>>,
    /// The Common JWT shared by every caller.
    bearer: BearerCache,
}

impl Flight {
    /// A flight over `machine`.
    #[must_use]
    pub fn new(machine: Authenticator) -> Self {
        Self { machine, leader: None, next_caller: 0, finished: 0, last: None, bearer: BearerCache::default() }
    }

    /// The machine, to read its state, tokens and configuration.
    #[must_use]
    pub fn machine(&self) -> &Authenticator {
        &self.machine
    }

    /// Where the machine stands.
    #[must_use]
    pub fn state(&self) -> State {
        self.machine.state()
    }

    /// Whether some caller is leading a login.
    #[must_use]
    pub fn has_leader(&self) -> bool {
        self.leader.is_some()
    }

    /// A caller wanting `want`. For [`Want::Newer`] the 401 is reported to the machine here, once.
    ///
    /// # Errors
    /// [`UsageError::UnknownGeneration`] for a generation the machine never issued.
    pub fn join(&mut self, want: Want) -> Result<Caller, UsageError> {
        if let Want::Newer(generation) = want {
            self.machine.report_unauthorized(generation)?;
        }
        self.next_caller += 1;
        Ok(Caller { id: self.next_caller, want, following_since: None })
    }

    /// The next step for `caller`.
    pub fn poll(&mut self, caller: &mut Caller, now: UnixTime) -> Step {
        if self.leader == Some(caller.id) {
            return self.lead(now);
        }
        if let Some(since) = caller.following_since
            && self.finished != since
            && let Some(outcome) = &self.last
        {
            return Step::Done { outcome: outcome.clone(), wake_followers: false };
        }
        if caller.want != Want::Fresh
            && let Some(tokens) = self.machine.tokens()
        {
            return Step::Done { outcome: Ok(tokens), wake_followers: false };
        }
        if self.leader.is_some() {
            caller.following_since.get_or_insert(self.finished);
            return Step::Follow;
        }
        // No leader: this caller leads. A caller that followed a leader that went away takes its login over as the
        // machine left it, backoff included.
        self.leader = Some(caller.id);
        if caller.want == Want::Fresh && caller.following_since.is_none() {
            self.machine.refresh(now);
        }
        self.lead(now)
    }

    fn lead(&mut self, now: UnixTime) -> Step {
        match self.machine.poll_output(now) {
            Output::Sign(jwt) => Step::Sign(jwt),
            Output::Send(batch) => Step::Send(batch),
            Output::AwaitAnswers => Step::AwaitAnswers,
            Output::WaitUntil(at) => Step::WaitUntil(at),
            Output::Done(outcome) => {
                self.leader = None;
                self.finished += 1;
                self.last = Some(outcome.clone());
                Step::Done { outcome, wake_followers: true }
            }
        }
    }

    /// The caller went away at `now`, before its [`Step::Done`] (its task was cancelled, its thread panicked). A
    /// leader's requests still out count as failed attempts, so the backoff holds for the follower that takes
    /// over. Returns whether the followers must be woken (one of them leads next).
    pub fn leave(&mut self, caller: &Caller, now: UnixTime) -> bool {
        if self.leader != Some(caller.id) {
            return false;
        }
        self.leader = None;
        self.machine.abandon_requests(now);
        true
    }

    /// What a leader brings back from work done with the lock released.
    ///
    /// # Errors
    /// [`UsageError::UnknownRequest`] for an answer to an id the machine never handed out.
    pub fn report(&mut self, report: Report, now: UnixTime) -> Result<(), UsageError> {
        match report {
            Report::Signed(signed) => self.machine.supply_jwt(signed, now),
            Report::Answer(id, Ok(response)) => self.machine.handle_response(id, &response, now)?,
            Report::Answer(id, Err(failure)) => self.machine.handle_failure(id, failure, now)?,
            Report::Lost => self.machine.abandon_requests(now),
        }
        Ok(())
    }

    /// The leader lost track of the requests it sent (their threads or tasks are gone without an answer): they
    /// count as failed attempts, and the login goes on with its backoff.
    pub fn abandon_requests(&mut self, now: UnixTime) {
        self.machine.abandon_requests(now);
    }

    /// The signature of what [`Step::Sign`] handed out.
    pub fn supply_jwt(&mut self, signed: Result<SignedJwt, SignError>, now: UnixTime) {
        self.machine.supply_jwt(signed, now);
    }

    /// The answer to login request `id`.
    ///
    /// # Errors
    /// [`UsageError::UnknownRequest`] for an id the machine never handed out.
    pub fn handle_response(&mut self, id: RequestId, response: &HttpResponse, now: UnixTime) -> Result<(), UsageError> {
        self.machine.handle_response(id, response, now)
    }

    /// Login request `id` failed below HTTP.
    ///
    /// # Errors
    /// [`UsageError::UnknownRequest`] for an id the machine never handed out.
    pub fn handle_failure(
        &mut self,
        id: RequestId,
        failure: TransportFailure,
        now: UnixTime,
    ) -> Result<(), UsageError> {
        self.machine.handle_failure(id, failure, now)
    }

    /// The next event, for logs and metrics. Drain them after each step and hand them on with the lock released.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.machine.poll_event()
    }

    /// What came of an attempt of `call`: the call's next step. A 401 on the replay after a fresh login expires
    /// those tokens too, so that the next caller logs in again.
    pub fn handle_api(
        &mut self,
        call: &mut ApiCall,
        outcome: Result<HttpResponse, TransportFailure>,
        now: UnixTime,
    ) -> ApiStep {
        let step = call.handle(outcome, now);
        if let Some((expires_at, generation)) = call.take_refused_bearer() {
            self.bearer.refused(expires_at, generation);
        }
        if let ApiStep::Fail(ApiError::Unauthorized { generation }) = &step {
            // The generation comes from tokens this flight issued: the report cannot be refused.
            let reported = self.machine.report_unauthorized(Generation::from_u64(*generation));
            debug_assert!(reported.is_ok(), "{reported:?}");
        }
        step
    }

    /// The answer to a [`logout`](crate::logout) of the tokens of `generation`: see
    /// [`Authenticator::handle_logout`].
    ///
    /// # Errors
    /// As [`parse_logout`](crate::parse_logout).
    pub fn handle_logout(
        &mut self,
        generation: crate::Generation,
        response: &HttpResponse,
    ) -> Result<(), crate::LogoutError> {
        self.machine.handle_logout(generation, response)
    }

    /// What `call` needs before its next attempt with `tokens`: no bearer, the cached access token (at first the
    /// login's own `authorizationToken`, when the pod sent one that is not about to expire), or an A5 call first
    /// (none cached for this login, or the cached one is within its leeway of expiring). Concurrent callers
    /// that find no usable token share one A5 call: the first fetches, the others [follow](Bearer::Follow) it
    /// until [`handle_bearer`](Self::handle_bearer) or [`abandon_bearer`](Self::abandon_bearer) ends it; when
    /// A5 refused the session they [log in](Bearer::Relogin) instead.
    pub fn bearer(&mut self, call: &ApiCall, tokens: &Tokens, now: UnixTime) -> Bearer {
        let Some(settings) = self.machine.config().common_jwt() else { return Bearer::NotNeeded };
        if !call.wants_bearer() {
            return Bearer::NotNeeded;
        }
        let leeway = settings.leeway();
        let cached = self.bearer.usable(tokens, now);
        // The first bearer of a login may come with it (`authorizationToken`), as BDK-Java uses it.
        let cached = cached.or_else(|| {
            let seeded = self.bearer.seeded_generation() != Some(tokens.generation());
            seeded.then(|| self.bearer.seed_from_login(tokens, leeway, now)).flatten()
        });
        let generation = tokens.generation();
        match cached {
            Some(token) => Bearer::Attach(token),
            None if self.bearer.is_session_refused(generation) => Bearer::Relogin(generation),
            None if self.bearer.is_fetching(generation) => Bearer::Follow,
            None => {
                self.bearer.start_fetch(generation);
                Bearer::Fetch(access_token_request(self.machine.config().endpoints(), settings.scope(), tokens))
            }
        }
    }

    /// The A5 call that [`bearer`](Self::bearer) handed out for the tokens of `generation` will never be
    /// answered (its caller went away): the next caller to ask fetches instead. Wake the followers after it.
    pub fn abandon_bearer(&mut self, generation: Generation) {
        self.bearer.end_fetch(generation);
    }

    /// What came of the A5 call [`bearer`](Self::bearer) asked for with `tokens`. A 401 means the session token
    /// is no longer good: one new login per call, then A5 again; a second 401 expires those tokens too. Wake the
    /// callers that [follow](Bearer::Follow) the A5 call after it: they take its token, or its refusal.
    pub fn handle_bearer(
        &mut self,
        call: &mut ApiCall,
        tokens: &Tokens,
        outcome: Result<HttpResponse, TransportFailure>,
        now: UnixTime,
    ) -> BearerStep {
        self.bearer.end_fetch(tokens.generation());
        let response = match outcome {
            Ok(response) => response,
            Err(failure) => return BearerStep::Fail(AccessTokenError::Transport(failure)),
        };
        if response.status() == http::StatusCode::UNAUTHORIZED {
            self.bearer.refuse_session(tokens.generation());
            if call.bearer_relogin() {
                return BearerStep::Relogin(tokens.generation());
            }
            // Issued by this flight's machine: the report cannot be refused.
            let reported = self.machine.report_unauthorized(tokens.generation());
            debug_assert!(reported.is_ok(), "{reported:?}");
            return BearerStep::Fail(AccessTokenError::Unauthorized);
        }
        let leeway = self.machine.config().common_jwt().map(|s| s.leeway()).unwrap_or_default();
        match parse_access_token(&response, tokens.generation(), leeway, now) {
            Ok(token) => {
                self.bearer.store(token.clone());
                BearerStep::Attach(token)
            }
            Err(error) => BearerStep::Fail(error),
        }
    }

    /// How many access tokens A5 has given this flight.
    #[must_use]
    pub fn common_jwt_refreshes(&self) -> u64 {
        self.bearer.refreshes()
    }

    /// The API-call step for `request`, with the configured retry policy and a jitter seed of the machine's.
    ///
    /// # Errors
    /// [`UsageError::ForeignUri`] for a URI outside the configured services: tokens are never sent anywhere else.
    pub fn api_call(&mut self, request: HttpRequest) -> Result<ApiCall, UsageError> {
        let seed = self.machine.next_seed();
        ApiCall::new(request, self.machine.config(), seed)
    }
}

#[cfg(test)]
mod tests;
