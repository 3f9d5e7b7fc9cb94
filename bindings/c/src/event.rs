//! Why a login failed (`SymphonyAuthLoginError`) and what happened during one (`SymphonyAuthEvent`), as plain
//! structs of codes and byte views.

use symphony_auth_core::{AuthError, Event, FailureCause, KeyManagerOutcome, ProtocolProblem};

use crate::abi::{SymphonyAuthBytes, borrow, free_handle, guard};
use crate::machine::SymphonyAuthTransportKind;
use crate::output::SymphonyAuthEndpoint;

/// What kind of login failure.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthErrorClass {
    /// No error.
    None = 0,
    /// The server refused the credentials (400, 401, 403 or 407 at login). Not retried.
    Rejected = 1,
    /// The endpoint kept failing with retryable errors until the retry policy gave up.
    Unavailable = 2,
    /// A failure below HTTP that retrying cannot mend (a TLS handshake failure).
    Transport = 3,
    /// The server answered something unusable.
    Protocol = 4,
    /// The JWT could not be signed.
    Signing = 5,
    /// A failure this version of the header does not know; `message` says what it is.
    Other = 255,
}

/// What was unusable in a server's answer (`PROTOCOL` errors).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthProblem {
    /// Not a protocol error.
    None = 0,
    /// A status the login endpoints never answer with (a redirect, 404, ...).
    UnexpectedStatus = 1,
    /// The body is too large.
    BodyTooLarge = 2,
    /// The body is not a JSON object.
    NotJson = 3,
    /// The JSON has no string `token`.
    MissingToken = 4,
    /// The token is empty.
    EmptyToken = 5,
    /// The token holds characters no HTTP header may carry.
    TokenNotAHeaderValue = 6,
    /// A problem this version of the header does not know.
    Other = 255,
}

/// What a failed attempt saw.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthCauseKind {
    /// Nothing.
    None = 0,
    /// An HTTP status (`status`).
    Status = 1,
    /// A failure below HTTP (`transport_kind`, `detail`).
    Transport = 2,
    /// A cause this version of the header does not know.
    Other = 255,
}

/// What a failed attempt saw: a status, or a failure below HTTP.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthCause {
    /// Which of the fields below apply.
    pub kind: SymphonyAuthCauseKind,
    /// `STATUS`: the HTTP status.
    pub status: u16,
    /// `TRANSPORT`: how the request failed.
    pub transport_kind: SymphonyAuthTransportKind,
    /// `TRANSPORT`: the HTTP client's description.
    pub detail: SymphonyAuthBytes,
}

impl SymphonyAuthCause {
    const NONE: Self = Self {
        kind: SymphonyAuthCauseKind::None,
        status: 0,
        transport_kind: SymphonyAuthTransportKind::None,
        detail: SymphonyAuthBytes::ABSENT,
    };

    fn of(cause: &FailureCause) -> Self {
        match cause {
            FailureCause::Status(status) => Self { kind: SymphonyAuthCauseKind::Status, status: *status, ..Self::NONE },
            FailureCause::Transport(failure) => Self {
                kind: SymphonyAuthCauseKind::Transport,
                transport_kind: SymphonyAuthTransportKind::of(failure.kind),
                detail: SymphonyAuthBytes::of(failure.detail.as_bytes()),
                ..Self::NONE
            },
            _ => Self { kind: SymphonyAuthCauseKind::Other, ..Self::NONE },
        }
    }
}

/// Why a login failed, as codes and views owned by the output or event it was read from. Which fields apply
/// depends on `error_class`; the others are 0, `NONE` or absent. No field ever holds a secret.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthLoginError {
    /// What kind of failure; `NONE` when there is none.
    pub error_class: SymphonyAuthErrorClass,
    /// The login endpoint involved (`NONE` for `SIGNING`).
    pub endpoint: SymphonyAuthEndpoint,
    /// `REJECTED`, `PROTOCOL`: the HTTP status.
    pub status: u16,
    /// `UNAVAILABLE`: the attempts made.
    pub attempts: u32,
    /// `UNAVAILABLE`: what the last attempt saw; `TRANSPORT`: the failure; `SIGNING`: the signer's reason in
    /// `detail`.
    pub cause: SymphonyAuthCause,
    /// `PROTOCOL`: what was wrong with the answer.
    pub problem: SymphonyAuthProblem,
    /// `REJECTED`: whether `clock_offset_secs` is known.
    pub has_clock_offset: bool,
    /// `REJECTED`: the server's clock minus ours, in seconds, when the answer's `Date` shows a difference large
    /// enough to explain a rejected JWT.
    pub clock_offset_secs: i64,
    /// `REJECTED`: what the server says (masked, at most 200 characters); absent when it says nothing.
    pub server_message: SymphonyAuthBytes,
    /// `PROTOCOL`: what the server says (masked, at most 200 characters), possibly empty.
    pub body_prefix: SymphonyAuthBytes,
    /// The whole description, for people; absent when there is no error.
    pub message: SymphonyAuthBytes,
}

impl SymphonyAuthLoginError {
    pub(crate) const NONE: Self = Self {
        error_class: SymphonyAuthErrorClass::None,
        endpoint: SymphonyAuthEndpoint::None,
        status: 0,
        attempts: 0,
        cause: SymphonyAuthCause::NONE,
        problem: SymphonyAuthProblem::None,
        has_clock_offset: false,
        clock_offset_secs: 0,
        server_message: SymphonyAuthBytes::ABSENT,
        body_prefix: SymphonyAuthBytes::ABSENT,
        message: SymphonyAuthBytes::ABSENT,
    };
}

/// A login's error with its description, owned by a handle that shows it.
#[derive(Debug)]
pub(crate) struct LoginError {
    error: AuthError,
    message: String,
}

impl LoginError {
    pub(crate) fn new(error: AuthError) -> Self {
        let message = error.to_string();
        Self { error, message }
    }

    pub(crate) fn view(&self) -> SymphonyAuthLoginError {
        let base = SymphonyAuthLoginError {
            endpoint: self.error.endpoint().map_or(SymphonyAuthEndpoint::None, SymphonyAuthEndpoint::of),
            message: SymphonyAuthBytes::of(self.message.as_bytes()),
            ..SymphonyAuthLoginError::NONE
        };
        match &self.error {
            AuthError::Rejected { status, server_message, clock_offset_secs, .. } => SymphonyAuthLoginError {
                error_class: SymphonyAuthErrorClass::Rejected,
                status: *status,
                has_clock_offset: clock_offset_secs.is_some(),
                clock_offset_secs: clock_offset_secs.unwrap_or(0),
                server_message: SymphonyAuthBytes::of_option(server_message.as_deref().map(str::as_bytes)),
                ..base
            },
            AuthError::Unavailable { attempts, last, .. } => SymphonyAuthLoginError {
                error_class: SymphonyAuthErrorClass::Unavailable,
                attempts: *attempts,
                cause: SymphonyAuthCause::of(last),
                ..base
            },
            AuthError::Transport { failure, .. } => SymphonyAuthLoginError {
                error_class: SymphonyAuthErrorClass::Transport,
                cause: SymphonyAuthCause {
                    kind: SymphonyAuthCauseKind::Transport,
                    transport_kind: SymphonyAuthTransportKind::of(failure.kind),
                    detail: SymphonyAuthBytes::of(failure.detail.as_bytes()),
                    ..SymphonyAuthCause::NONE
                },
                ..base
            },
            AuthError::Protocol { status, problem, body_prefix, .. } => SymphonyAuthLoginError {
                error_class: SymphonyAuthErrorClass::Protocol,
                status: *status,
                problem: problem_code(*problem),
                body_prefix: SymphonyAuthBytes::of(body_prefix.as_bytes()),
                ..base
            },
            AuthError::Signing(reason) => SymphonyAuthLoginError {
                error_class: SymphonyAuthErrorClass::Signing,
                cause: SymphonyAuthCause {
                    detail: SymphonyAuthBytes::of(reason.0.as_bytes()),
                    ..SymphonyAuthCause::NONE
                },
                ..base
            },
            _ => SymphonyAuthLoginError { error_class: SymphonyAuthErrorClass::Other, ..base },
        }
    }
}

fn problem_code(problem: ProtocolProblem) -> SymphonyAuthProblem {
    match problem {
        ProtocolProblem::UnexpectedStatus => SymphonyAuthProblem::UnexpectedStatus,
        ProtocolProblem::BodyTooLarge => SymphonyAuthProblem::BodyTooLarge,
        ProtocolProblem::NotJson => SymphonyAuthProblem::NotJson,
        ProtocolProblem::MissingToken => SymphonyAuthProblem::MissingToken,
        ProtocolProblem::EmptyToken => SymphonyAuthProblem::EmptyToken,
        ProtocolProblem::TokenNotAHeaderValue => SymphonyAuthProblem::TokenNotAHeaderValue,
        _ => SymphonyAuthProblem::Other,
    }
}

/// What kind of event.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthEventKind {
    /// No event (a NULL handle).
    None = 0,
    /// A login began (`refresh`: tokens were available and stay in use until the new ones arrive).
    LoginStarted = 1,
    /// A login attempt failed in a way worth retrying (`endpoint`, `attempt`, `max_attempts`, `delay_ms`,
    /// `cause`).
    RetryScheduled = 2,
    /// A login succeeded (`generation`, `key_manager`).
    Authenticated = 3,
    /// A login failed for good (`error`); callers get the same error for `cool_down_ms`.
    LoginFailed = 4,
    /// The tokens of `generation` were reported refused.
    Expired = 5,
    /// An event this version of the header does not know.
    Other = 255,
}

/// What happened with the key manager in a login.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthKeyManagerOutcome {
    /// Not an `AUTHENTICATED` event.
    None = 0,
    /// Logged in to the key manager.
    Obtained = 1,
    /// Not needed: the session token grants simplified key delivery.
    SkippedBySimplifiedKeyDelivery = 2,
    /// Not requested: the key-manager policy is `NEVER`.
    Disabled = 3,
    /// An outcome this version of the header does not know.
    Other = 255,
}

/// An event, as codes and views owned by its event handle. Which fields apply depends on `kind`; the others are
/// 0, false, `NONE` or absent.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthEventInfo {
    /// What happened.
    pub kind: SymphonyAuthEventKind,
    /// `LOGIN_STARTED`: whether tokens were available.
    pub refresh: bool,
    /// `AUTHENTICATED`: the new generation; `EXPIRED`: the expired one.
    pub generation: u64,
    /// `AUTHENTICATED`: what happened with the key manager.
    pub key_manager: SymphonyAuthKeyManagerOutcome,
    /// `RETRY_SCHEDULED`: the endpoint that failed.
    pub endpoint: SymphonyAuthEndpoint,
    /// `RETRY_SCHEDULED`: attempts failed in a row.
    pub attempt: u32,
    /// `RETRY_SCHEDULED`: attempts allowed in all.
    pub max_attempts: u32,
    /// `RETRY_SCHEDULED`: the wait before the next attempt.
    pub delay_ms: u64,
    /// `RETRY_SCHEDULED`: what went wrong.
    pub cause: SymphonyAuthCause,
    /// `LOGIN_FAILED`: how long the error is handed out before a new login may begin.
    pub cool_down_ms: u64,
    /// `LOGIN_FAILED`: why.
    pub error: SymphonyAuthLoginError,
}

/// An event of a login, for logs and metrics. It owns what it shows.
#[derive(Debug)]
pub struct SymphonyAuthEvent {
    event: Event,
    login_error: Option<LoginError>,
}

impl SymphonyAuthEvent {
    pub(crate) fn new(event: Event) -> Self {
        let login_error = match &event {
            Event::LoginFailed { error, .. } => Some(LoginError::new(error.clone())),
            _ => None,
        };
        Self { event, login_error }
    }

    fn info(&self) -> SymphonyAuthEventInfo {
        let base = SymphonyAuthEventInfo {
            kind: SymphonyAuthEventKind::Other,
            refresh: false,
            generation: 0,
            key_manager: SymphonyAuthKeyManagerOutcome::None,
            endpoint: SymphonyAuthEndpoint::None,
            attempt: 0,
            max_attempts: 0,
            delay_ms: 0,
            cause: SymphonyAuthCause::NONE,
            cool_down_ms: 0,
            error: self.login_error.as_ref().map_or(SymphonyAuthLoginError::NONE, LoginError::view),
        };
        match &self.event {
            Event::LoginStarted { refresh } => {
                SymphonyAuthEventInfo { kind: SymphonyAuthEventKind::LoginStarted, refresh: *refresh, ..base }
            }
            Event::RetryScheduled { endpoint, attempt, max_attempts, delay, cause } => SymphonyAuthEventInfo {
                kind: SymphonyAuthEventKind::RetryScheduled,
                endpoint: SymphonyAuthEndpoint::of(*endpoint),
                attempt: *attempt,
                max_attempts: *max_attempts,
                delay_ms: millis(*delay),
                cause: SymphonyAuthCause::of(cause),
                ..base
            },
            Event::Authenticated { generation, key_manager } => SymphonyAuthEventInfo {
                kind: SymphonyAuthEventKind::Authenticated,
                generation: generation.get(),
                key_manager: match key_manager {
                    KeyManagerOutcome::Obtained => SymphonyAuthKeyManagerOutcome::Obtained,
                    KeyManagerOutcome::SkippedBySimplifiedKeyDelivery => {
                        SymphonyAuthKeyManagerOutcome::SkippedBySimplifiedKeyDelivery
                    }
                    KeyManagerOutcome::Disabled => SymphonyAuthKeyManagerOutcome::Disabled,
                    _ => SymphonyAuthKeyManagerOutcome::Other,
                },
                ..base
            },
            Event::LoginFailed { cool_down, .. } => SymphonyAuthEventInfo {
                kind: SymphonyAuthEventKind::LoginFailed,
                cool_down_ms: millis(*cool_down),
                ..base
            },
            Event::Expired { generation } => {
                SymphonyAuthEventInfo { kind: SymphonyAuthEventKind::Expired, generation: generation.get(), ..base }
            }
            _ => base,
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What `event` says, as views owned by it; `kind` is `NONE` for NULL.
///
/// # Safety
/// `event` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_event_info(event: *const SymphonyAuthEvent) -> SymphonyAuthEventInfo {
    let none = SymphonyAuthEventInfo {
        kind: SymphonyAuthEventKind::None,
        refresh: false,
        generation: 0,
        key_manager: SymphonyAuthKeyManagerOutcome::None,
        endpoint: SymphonyAuthEndpoint::None,
        attempt: 0,
        max_attempts: 0,
        delay_ms: 0,
        cause: SymphonyAuthCause::NONE,
        cool_down_ms: 0,
        error: SymphonyAuthLoginError::NONE,
    };
    guard(none, || {
        // SAFETY: `event` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(event) }.map_or(none, SymphonyAuthEvent::info)
    })
}

/// Frees an event. NULL is ignored.
///
/// # Safety
/// `event` is NULL or an event not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_event_free(event: *mut SymphonyAuthEvent) {
    guard((), || {
        // SAFETY: `event` is NULL or an event not freed yet (the contract above).
        unsafe { free_handle(event) }
    });
}
