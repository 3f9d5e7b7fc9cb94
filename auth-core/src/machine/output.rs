//! What the machine hands a driver: the one [`Output`] to act on, the [`State`] it reports, and the [`Event`]s it
//! records for logs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::HttpRequest;
use crate::endpoint::{LoginEndpoint, Purpose};
use crate::error::{AuthError, FailureCause};
use crate::jwt::UnsignedJwt;
use crate::time::UnixTime;
use crate::tokens::{Generation, Tokens};

/// Identifies a login request handed to the driver; its answer or failure is reported with the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub(super) u64);

impl RequestId {
    /// The number, for bindings and logs.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// An id from its number, as a binding that stored [`get`](Self::get) hands it back.
    #[must_use]
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A login request to send. Report its outcome with [`Authenticator::handle_response`](crate::Authenticator::handle_response) or
/// [`Authenticator::handle_failure`](crate::Authenticator::handle_failure) and the same `id`.
#[must_use = "a login request must be sent, and its outcome reported"]
#[non_exhaustive]
pub struct LoginRequest {
    /// The id to report the outcome with.
    pub id: RequestId,
    /// Which endpoint it calls. [`LoginEndpoint::uses_client_certificate`] says whether it must go through the
    /// mutual-TLS client.
    pub endpoint: LoginEndpoint,
    /// The request. Its body may hold a signed JWT: do not log it.
    pub request: HttpRequest,
}

impl LoginRequest {
    /// Whether it asks for the session token, the key-manager token or the agent's version.
    #[must_use]
    pub fn purpose(&self) -> Purpose {
        self.endpoint.purpose()
    }
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("id", &self.id)
            .field("endpoint", &self.endpoint)
            .field("uri", self.request.uri())
            .finish_non_exhaustive()
    }
}

/// What the driver must do next. [`Authenticator::poll_output`](crate::Authenticator::poll_output) always returns one: there is no state in which a
/// driver finds nothing to do.
#[must_use = "an output is work the driver must do"]
#[derive(Debug)]
pub enum Output {
    /// Sign this login JWT where signing does no harm (off a lock, off an async executor, in an HSM), then hand the
    /// result to [`Authenticator::supply_jwt`](crate::Authenticator::supply_jwt) and poll again.
    Sign(UnsignedJwt),
    /// Send these requests, concurrently when there are several, and report each outcome as it comes
    /// ([`Authenticator::handle_response`](crate::Authenticator::handle_response), [`Authenticator::handle_failure`](crate::Authenticator::handle_failure)); poll after each.
    Send(Vec<LoginRequest>),
    /// Requests handed out earlier are still out: report the next outcome, then poll again.
    AwaitAnswers,
    /// Nothing is due before this instant (a retry's backoff): poll again then. Polling earlier is harmless.
    WaitUntil(UnixTime),
    /// The login is over, or none was needed: the current tokens, or why there are none. Requests still out may
    /// be dropped; answers to them are accepted and ignored.
    Done(Result<Arc<Tokens>, AuthError>),
}

/// Where the machine stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// No tokens have been issued, or the last login failed.
    NeedsSession {
        /// Whether a login is under way.
        logging_in: bool,
    },
    /// The session token is in hand; the key-manager token (or the agent's version) is still awaited.
    NeedsKeyManager,
    /// Tokens are available.
    Ready {
        /// Their generation.
        generation: Generation,
        /// Whether a login that will replace them is under way ([`Authenticator::refresh`](crate::Authenticator::refresh)).
        refreshing: bool,
    },
    /// The tokens of `generation` were rejected with a 401; a new login is needed.
    Expired {
        /// The generation that expired.
        generation: Generation,
        /// Whether a login is under way.
        logging_in: bool,
    },
}

impl State {
    /// Whether tokens are available.
    #[must_use]
    pub fn is_ready(self) -> bool {
        matches!(self, Self::Ready { .. })
    }

    /// Whether a login is under way.
    #[must_use]
    pub fn is_logging_in(self) -> bool {
        match self {
            Self::NeedsSession { logging_in } | Self::Expired { logging_in, .. } => logging_in,
            Self::NeedsKeyManager => true,
            Self::Ready { refreshing, .. } => refreshing,
        }
    }
}

/// Whether the key-manager token was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyManagerOutcome {
    /// Logged in to the key manager.
    Obtained,
    /// Not needed: the session token grants simplified key delivery.
    SkippedBySimplifiedKeyDelivery,
    /// Not requested: the key-manager policy is `Never`.
    Disabled,
}

/// Something that happened, for logs and metrics. The loop needs none of them: [`Output::Done`] ends a login.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A login began.
    LoginStarted {
        /// Whether tokens were available and stay in use until the new ones arrive.
        refresh: bool,
    },
    /// A login succeeded.
    Authenticated {
        /// The new generation.
        generation: Generation,
        /// What happened with the key manager.
        key_manager: KeyManagerOutcome,
    },
    /// A login attempt failed in a way worth retrying; the next attempt is due after `delay`.
    RetryScheduled {
        /// The endpoint that failed.
        endpoint: LoginEndpoint,
        /// How many attempts have failed in a row.
        attempt: u32,
        /// Attempts allowed in all.
        max_attempts: u32,
        /// The wait before the next attempt.
        delay: Duration,
        /// What went wrong.
        cause: FailureCause,
    },
    /// A login failed for good. Callers get the same error, without a new request, for `cool_down`.
    LoginFailed {
        /// Why.
        error: AuthError,
        /// How long the error is handed out before a new login may begin ([`Authenticator::refresh`](crate::Authenticator::refresh) overrides).
        cool_down: Duration,
    },
    /// The tokens of `generation` were reported rejected; they are no longer handed out.
    Expired {
        /// The generation that expired.
        generation: Generation,
    },
    /// The session of `generation` was logged out; its tokens are no longer handed out.
    LoggedOut {
        /// The generation logged out.
        generation: Generation,
    },
}

/// What a reported 401 led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnauthorizedOutcome {
    /// Newer tokens than the reported ones were issued since: use those.
    Stale {
        /// The latest generation.
        current: Generation,
    },
    /// The reported tokens were the current ones: they are expired now, and the next poll logs in again.
    Expired,
    /// The reported tokens had been expired already.
    AlreadyExpired,
}
