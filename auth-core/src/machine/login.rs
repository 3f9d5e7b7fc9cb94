//! One login in progress: its legs (the session login, the key-manager login, the agent's version check) and
//! where each stands. The decisions about them are made in [`super`]; this file only holds the bookkeeping.

use crate::endpoint::LoginEndpoint;
use crate::error::AuthError;
use crate::response::IssuedToken;
use crate::time::UnixTime;
use crate::tokens::SecretHeader;

use super::RequestId;

/// Where one leg of a login stands.
#[derive(Debug)]
pub(super) enum LegStatus {
    /// Waiting for the session answer before deciding (sequential key-manager login).
    Idle,
    /// To be sent at the next poll.
    Due,
    /// Sent; its answer is awaited.
    InFlight(RequestId),
    /// Failed and waiting to be retried: `since` is when the wait began, `until` when it ends.
    Backoff { since: UnixTime, until: UnixTime },
    /// Answered with a token.
    Done(IssuedToken),
    /// The key manager failed for good while simplified key delivery could still make it unnecessary.
    Failed(AuthError),
}

#[derive(Debug)]
pub(super) struct Leg {
    pub(super) endpoint: LoginEndpoint,
    pub(super) status: LegStatus,
    /// Failed attempts in a row.
    pub(super) failures: u32,
}

impl Leg {
    pub(super) fn new(endpoint: LoginEndpoint, due: bool) -> Self {
        Self { endpoint, status: if due { LegStatus::Due } else { LegStatus::Idle }, failures: 0 }
    }

    pub(super) fn in_flight(&self) -> Option<RequestId> {
        match self.status {
            LegStatus::InFlight(id) => Some(id),
            _ => None,
        }
    }

    pub(super) fn is_due(&self) -> bool {
        matches!(self.status, LegStatus::Due)
    }

    pub(super) fn backoff_until(&self) -> Option<UnixTime> {
        match self.status {
            LegStatus::Backoff { until, .. } => Some(until),
            _ => None,
        }
    }
}

/// The agent-version check: asked when the session granted simplified key delivery and a dedicated agent is
/// configured, whose version decides whether the key manager can be skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AgentCheck {
    Due,
    InFlight(RequestId),
}

#[derive(Debug)]
pub(super) struct Login {
    pub(super) session: Leg,
    /// `None` when the key manager is not needed.
    pub(super) key_manager: Option<Leg>,
    pub(super) agent_check: Option<AgentCheck>,
    /// OBO: the app's session, once its step is done; the user step is asked with it.
    pub(super) app_session: Option<SecretHeader>,
}

impl Login {
    pub(super) fn legs(&self) -> impl Iterator<Item = &Leg> {
        [Some(&self.session), self.key_manager.as_ref()].into_iter().flatten()
    }

    pub(super) fn legs_mut(&mut self) -> impl Iterator<Item = &mut Leg> {
        [Some(&mut self.session), self.key_manager.as_mut()].into_iter().flatten()
    }

    /// The ids of every request still out.
    pub(super) fn in_flight(&self) -> impl Iterator<Item = RequestId> + '_ {
        let check = match self.agent_check {
            Some(AgentCheck::InFlight(id)) => Some(id),
            _ => None,
        };
        self.legs().filter_map(Leg::in_flight).chain(check)
    }

    pub(super) fn session_done(&self) -> Option<&IssuedToken> {
        match &self.session.status {
            LegStatus::Done(token) => Some(token),
            _ => None,
        }
    }

    /// The earliest end of a backoff.
    pub(super) fn next_deadline(&self) -> Option<UnixTime> {
        self.legs().filter_map(Leg::backoff_until).min()
    }
}
