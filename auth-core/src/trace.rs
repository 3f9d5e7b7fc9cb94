//! The machine's events as `tracing` spans and events, emitted as they are polled, so that every driver and binding
//! that drains [`Authenticator::poll_event`](crate::Authenticator::poll_event) (directly or through a
//! [`Flight`](crate::Flight)) traces the same way: a span `login` per login (username, method, endpoints, reason,
//! attempt, generation), and within it an event for each retry, the simplified-key-delivery decision, the
//! login's success or its failure by class; outside it, 401s on a generation, logouts, and callers refused while a
//! failed login cools down.
//!
//! Fields are the username, the method, endpoints, statuses, durations, generations and causes: the events hold no
//! token, JWT or key, and nothing else is read here. Emitting a tracing event is not IO (the application's
//! subscriber decides where it goes), and durations come from the `now` the machine was given. Drivers drain events
//! under their flight's lock, so a subscriber writes under it too: a bot with many callers wants a non-blocking
//! writer.

use std::time::Duration;

use tracing::field::Empty;
use tracing::{Span, debug, info, warn};

use crate::config::{Config, KeyManagerPolicy, LoginMethod};
use crate::endpoint::LoginEndpoint;
use crate::error::{AuthError, FailureCause, TransportKind};
use crate::machine::{Event, KeyManagerOutcome};
use crate::time::UnixTime;

/// What earlier events said, for the fields of later ones. Part of the machine's own state.
#[derive(Debug, Default)]
pub(crate) struct LoginTrace {
    /// The span of the login under way, and the machine's time when it began.
    login: Option<(Span, Option<UnixTime>)>,
    /// The generation whose tokens a 401 expired, until the login that replaces them begins.
    expired: Option<u64>,
    /// Whether the last login failed.
    failed: bool,
}

impl LoginTrace {
    /// Traces `event` of the machine with `config`, polled when the latest `now` it was given was `clock`.
    pub(crate) fn event(&mut self, config: &Config, clock: Option<UnixTime>, event: &Event) {
        match event {
            Event::LoginStarted { refresh } => {
                let reason = match (refresh, self.expired.take()) {
                    (true, _) => "refresh",
                    (false, Some(_)) => "relogin",
                    (false, None) if self.failed => "after_failure",
                    (false, None) => "initial",
                };
                let span = login_span(config, reason);
                info!(parent: &span, reason, "login started");
                // A login whose end was not traced (its events were never polled) closes here.
                self.login = Some((span, clock));
            }
            Event::RetryScheduled { endpoint, attempt, max_attempts, delay, cause } => {
                let span = self.span();
                span.record("attempt", attempt.saturating_add(1));
                let status = match cause {
                    FailureCause::Status(status) => Some(*status),
                    FailureCause::Transport(_) => None,
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
                let (span, elapsed) = self.end(clock);
                span.record("generation", generation.get());
                let (key_manager, skd) = match key_manager {
                    KeyManagerOutcome::Obtained => ("obtained", false),
                    KeyManagerOutcome::SkippedBySimplifiedKeyDelivery => ("skipped", true),
                    KeyManagerOutcome::Disabled => ("disabled", false),
                };
                debug!(parent: &span, skd, key_manager, "simplified key delivery decision");
                info!(parent: &span, generation = generation.get(), key_manager, elapsed_ms = elapsed, "logged in");
                self.failed = false;
            }
            Event::LoginFailed { error, cool_down } => {
                let (span, elapsed) = self.end(clock);
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
                self.failed = true;
            }
            Event::Expired { generation } => {
                self.expired = Some(generation.get());
                warn!(
                    username = config.username().as_str(),
                    generation = generation.get(),
                    "tokens refused with HTTP 401: expired, the next call logs in again"
                );
            }
            Event::LoggedOut { generation } => {
                info!(username = config.username().as_str(), generation = generation.get(), "logged out");
            }
        }
    }

    /// The span of the login under way (a disabled one when its start was not seen).
    fn span(&self) -> Span {
        self.login.as_ref().map_or_else(Span::none, |(span, _)| span.clone())
    }

    /// Ends the login under way: its span, and how long it took by the machine's clock, in milliseconds.
    fn end(&mut self, clock: Option<UnixTime>) -> (Span, Option<u64>) {
        match self.login.take() {
            Some((span, began)) => {
                let elapsed = clock.zip(began).map(|(now, began)| millis(now.saturating_since(began)));
                (span, elapsed)
            }
            None => (Span::none(), None),
        }
    }
}

/// Traces a caller answered with `error`, the failure of a login that cools down for `remaining` yet, without a
/// login of its own.
pub(crate) fn refused(config: &Config, error: &AuthError, remaining: Duration) {
    warn!(
        username = config.username().as_str(),
        class = class(error),
        endpoint = error.endpoint().map(|e| e.to_string()),
        remaining_ms = millis(remaining),
        %error,
        "login refused: the last login failed and is cooling down"
    );
}

/// The span of a login: who logs in, how, where.
fn login_span(config: &Config, reason: &'static str) -> Span {
    let endpoints = config.endpoints();
    let (method, session, key_manager) = match config.method() {
        LoginMethod::Certificate => {
            ("certificate", LoginEndpoint::CertificateSession, LoginEndpoint::CertificateKeyManager)
        }
        LoginMethod::Rsa(_) => ("rsa", LoginEndpoint::RsaSession, LoginEndpoint::RsaKeyManager),
    };
    let url = |endpoint: LoginEndpoint| format!("{}{}", endpoint.base(endpoints), endpoint.path());
    let key_manager = (config.key_manager() != KeyManagerPolicy::Never).then(|| url(key_manager));
    tracing::info_span!(
        "login",
        username = config.username().as_str(),
        method,
        session_endpoint = url(session),
        key_manager_endpoint = key_manager,
        reason,
        attempt = 1_u32,
        generation = Empty,
    )
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The class of a login failure, as a fixed word to filter and count on.
fn class(error: &AuthError) -> &'static str {
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

/// The HTTP status behind a login failure, when there is one.
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
