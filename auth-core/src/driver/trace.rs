//! The bot's events as `tracing` spans and events, written once for every driver (and binding) that builds its
//! bot through [`BotBuilder`](super::BotBuilder): a span `login` per login, and within it an event for each retry,
//! the login's success (with the key-manager and simplified-key-delivery decision) or its failure by class; outside
//! it, 401s on a generation, logouts and callers refused while a failed login cools down.
//!
//! Fields are the username, the method, endpoints, statuses, durations, generations and causes: the core's events
//! hold no token, JWT or key, and nothing else is read here. Emitting a tracing event is not IO: the subscriber the
//! application installed decides where it goes.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::{Span, debug, info, warn};

use crate::config::{Config, KeyManagerPolicy, LoginMethod};
use crate::endpoint::LoginEndpoint;
use crate::error::{AuthError, FailureCause, TransportKind};
use crate::machine::{Event, KeyManagerOutcome};

/// What a bot's events are traced with: the bot's identity, and the login under way.
pub(crate) struct Tracer {
    username: String,
    method: &'static str,
    session_endpoint: String,
    key_manager_endpoint: Option<String>,
    state: Mutex<State>,
}

/// What earlier events said, for the fields of later ones.
#[derive(Default)]
struct State {
    /// The span of the login under way, and when it began.
    login: Option<(Span, Instant)>,
    /// The generation whose tokens a 401 expired, until the login that replaces them begins.
    expired: Option<u64>,
    /// Whether the last login failed.
    failed: bool,
}

impl Tracer {
    pub(crate) fn new(config: &Config) -> Self {
        let endpoints = config.endpoints();
        let (method, session, key_manager) = match config.method() {
            LoginMethod::Certificate => {
                ("certificate", LoginEndpoint::CertificateSession, LoginEndpoint::CertificateKeyManager)
            }
            LoginMethod::Rsa(_) => ("rsa", LoginEndpoint::RsaSession, LoginEndpoint::RsaKeyManager),
        };
        let url = |endpoint: LoginEndpoint| format!("{}{}", endpoint.base(endpoints), endpoint.path());
        Self {
            username: config.username().as_str().to_owned(),
            method,
            session_endpoint: url(session),
            key_manager_endpoint: (config.key_manager() != KeyManagerPolicy::Never).then(|| url(key_manager)),
            state: Mutex::new(State::default()),
        }
    }

    /// Traces `events`, in order.
    pub(crate) fn events(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        // Only whole field updates happen under this lock: a panicking subscriber leaves it consistent.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events {
            self.event(&mut state, event);
        }
    }

    /// Traces a caller answered with the error of a failed login that is cooling down, without a login of its own.
    pub(crate) fn refused(&self, error: &AuthError) {
        warn!(
            username = %self.username,
            class = class(error),
            endpoint = error.endpoint().map(|e| e.to_string()),
            %error,
            "login refused: the last login failed and is cooling down"
        );
    }

    fn event(&self, state: &mut State, event: &Event) {
        match event {
            Event::LoginStarted { refresh } => {
                let reason = match (refresh, state.expired.take()) {
                    (true, _) => "refresh",
                    (false, Some(_)) => "relogin",
                    (false, None) if state.failed => "after_failure",
                    (false, None) => "initial",
                };
                let span = tracing::info_span!(
                    "login",
                    username = %self.username,
                    method = self.method,
                    session_endpoint = %self.session_endpoint,
                    key_manager_endpoint = self.key_manager_endpoint.as_deref(),
                    reason,
                    attempt = 1_u32,
                    generation = Empty,
                );
                info!(parent: &span, reason, "login started");
                // A login that began before the last one was traced to its end is replaced: its events were lost
                // in a race between two threads handing events on, and its span closes here.
                state.login = Some((span, Instant::now()));
            }
            Event::RetryScheduled { endpoint, attempt, max_attempts, delay, cause } => {
                let span = self.span(state);
                span.record("attempt", attempt.saturating_add(1));
                let status = match cause {
                    FailureCause::Status(status) => Some(*status),
                    _ => None,
                };
                warn!(
                    parent: &span,
                    endpoint = %endpoint,
                    attempt,
                    max_attempts,
                    delay_ms = millis(*delay),
                    cause_class = cause_class(cause),
                    status,
                    %cause,
                    "login attempt failed; retry scheduled"
                );
            }
            Event::Authenticated { generation, key_manager } => {
                let (span, elapsed) = self.end(state);
                span.record("generation", generation.get());
                let (key_manager, skd) = match key_manager {
                    KeyManagerOutcome::Obtained => ("obtained", false),
                    KeyManagerOutcome::SkippedBySimplifiedKeyDelivery => ("skipped", true),
                    KeyManagerOutcome::Disabled => ("disabled", false),
                };
                debug!(parent: &span, skd, key_manager, "simplified key delivery decision");
                info!(parent: &span, generation = generation.get(), key_manager, elapsed_ms = elapsed, "logged in");
                state.failed = false;
            }
            Event::LoginFailed { error, cool_down } => {
                let (span, elapsed) = self.end(state);
                tracing::error!(
                    parent: &span,
                    class = class(error),
                    endpoint = error.endpoint().map(|e| e.to_string()),
                    status = status(error),
                    cool_down_ms = millis(*cool_down),
                    elapsed_ms = elapsed,
                    %error,
                    "login failed"
                );
                state.failed = true;
            }
            Event::Expired { generation } => {
                state.expired = Some(generation.get());
                warn!(
                    username = %self.username,
                    generation = generation.get(),
                    "tokens refused with HTTP 401: expired, the next call logs in again"
                );
            }
            Event::LoggedOut { generation } => {
                info!(username = %self.username, generation = generation.get(), "logged out");
            }
        }
    }

    /// The span of the login under way (a disabled one when its start was not seen).
    fn span(&self, state: &State) -> Span {
        state.login.as_ref().map_or_else(Span::none, |(span, _)| span.clone())
    }

    /// Ends the login under way: its span, and how long it took in milliseconds.
    fn end(&self, state: &mut State) -> (Span, Option<u64>) {
        match state.login.take() {
            Some((span, began)) => (span, Some(millis(began.elapsed()))),
            None => (Span::none(), None),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The class of a login failure, as a fixed word to filter and count on.
pub(crate) fn class(error: &AuthError) -> &'static str {
    match error {
        AuthError::Rejected { .. } => "rejected",
        AuthError::Unavailable { .. } => "unavailable",
        AuthError::Transport { failure, .. } if failure.kind == TransportKind::Tls => "tls",
        AuthError::Transport { failure, .. } if failure.kind == TransportKind::Refused => "refused",
        AuthError::Transport { .. } => "transport",
        AuthError::Protocol { .. } => "protocol",
        AuthError::Signing(_) => "signing",
        AuthError::OboNotInstalled { .. } | AuthError::OboUnknownUser { .. } => "obo",
    }
}

fn status(error: &AuthError) -> Option<u16> {
    match error {
        AuthError::Rejected { status, .. }
        | AuthError::Protocol { status, .. }
        | AuthError::OboNotInstalled { status, .. } => Some(*status),
        AuthError::Unavailable { last: FailureCause::Status(status), .. } => Some(*status),
        _ => None,
    }
}

fn cause_class(cause: &FailureCause) -> &'static str {
    match cause {
        FailureCause::Status(_) => "status",
        FailureCause::Transport(failure) => match failure.kind {
            TransportKind::Timeout => "timeout",
            TransportKind::Connect => "connect",
            TransportKind::Reset => "reset",
            TransportKind::Tls => "tls",
            TransportKind::Refused => "refused",
            TransportKind::Other => "transport",
        },
    }
}

#[cfg(test)]
mod tests;
