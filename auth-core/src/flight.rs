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

use crate::api::ApiCall;
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

/// An [`Authenticator`] shared by many callers, each of which [joins](Self::join) and [polls](Self::poll) it.
#[derive(Debug)]
pub struct Flight {
    machine: Authenticator,
    leader: Option<u64>,
    next_caller: u64,
    /// How many logins have ended, and how the last one ended.
    finished: u64,
    last: Option<Result<Arc<Tokens>, AuthError>>,
}

impl Flight {
    /// A flight over `machine`.
    #[must_use]
    pub fn new(machine: Authenticator) -> Self {
        Self { machine, leader: None, next_caller: 0, finished: 0, last: None }
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

    /// The caller went away before its [`Step::Done`] (its task was cancelled, its thread panicked). A leader's
    /// requests still out count as failed attempts, so the backoff holds for the follower that takes over. Returns
    /// whether the followers must be woken (one of them leads next).
    pub fn leave(&mut self, caller: &Caller, now: UnixTime) -> bool {
        if self.leader != Some(caller.id) {
            return false;
        }
        self.leader = None;
        self.machine.abandon_requests(now);
        true
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
