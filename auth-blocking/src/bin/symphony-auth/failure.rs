//! The classes of failure, each with its exit code and message prefix, and the sorting of the library's errors
//! into them.

use std::fmt;

use symphony_auth_blocking::Error;
use symphony_auth_blocking::symphony_auth_core::{AuthError, FailureCause, TransportKind};

/// What kind of failure: decides the exit code and the prefix of the one line printed on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Anything else.
    Other,
    /// A bad command line.
    Usage,
    /// The configuration file, key or certificate cannot be used.
    Config,
    /// The pod refused the credentials.
    Rejected,
    /// No connection: refused, timed out, name not resolved.
    Unreachable,
    /// A TLS handshake failed.
    Tls,
    /// A login was refused and the server's clock is off.
    Clock,
}

impl Class {
    /// Every class, in exit-code order.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const ALL: [Class; 7] =
        [Self::Other, Self::Usage, Self::Config, Self::Rejected, Self::Unreachable, Self::Tls, Self::Clock];

    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Other => 1,
            Self::Usage => 2,
            Self::Config => 3,
            Self::Rejected => 4,
            Self::Unreachable => 5,
            Self::Tls => 6,
            Self::Clock => 7,
        }
    }

    /// The start of the stderr line (before `: `).
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Self::Other => "error",
            Self::Usage => "usage error",
            Self::Config => "bad key or configuration",
            Self::Rejected => "credentials rejected",
            Self::Unreachable => "host unreachable",
            Self::Tls => "TLS trust failure",
            Self::Clock => "clock problem",
        }
    }

    /// The class of a request that failed below HTTP.
    pub(crate) fn of_transport(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Tls => Self::Tls,
            TransportKind::Connect | TransportKind::Timeout => Self::Unreachable,
            _ => Self::Other,
        }
    }

    /// The class of a library error.
    pub(crate) fn of(error: &Error) -> Self {
        match error {
            Error::Config(_) | Error::ConfigFile(_) | Error::Identity(_) | Error::Tls(_) => Self::Config,
            Error::Auth(auth) => match auth {
                AuthError::Rejected { clock_offset_secs: Some(_), .. } => Self::Clock,
                AuthError::Rejected { .. } => Self::Rejected,
                AuthError::Unavailable { last: FailureCause::Transport(failure), .. }
                | AuthError::Transport { failure, .. } => Self::of_transport(failure.kind),
                AuthError::Signing(_) => Self::Config,
                _ => Self::Other,
            },
            Error::Transport { kind, .. } => Self::of_transport(*kind),
            _ => Self::Other,
        }
    }
}

/// A failure of the command: its class and a message for people (one line, no secrets).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) class: Class,
    message: String,
}

impl Failure {
    pub(crate) fn new(class: Class, message: impl Into<String>) -> Self {
        Self { class, message: message.into() }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        let message = match &error {
            // The class prefix already says the login failed.
            Error::Auth(auth) => auth.to_string(),
            other => other.to_string(),
        };
        Self::new(Class::of(&error), message)
    }
}

impl fmt::Display for Failure {
    /// `prefix: message`, on one line whatever the message holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message: String =
            self.message.split(['\n', '\r']).map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
        write!(f, "{}: {message}", self.class.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use symphony_auth_blocking::symphony_auth_core::{ConfigError, LoginEndpoint, TransportFailure};

    #[test]
    fn errors_fall_into_their_class() {
        let rejected = |clock_offset_secs| {
            Error::Auth(AuthError::Rejected {
                endpoint: LoginEndpoint::RsaSession,
                username: "bot".into(),
                status: 401,
                server_message: None,
                clock_offset_secs,
            })
        };
        assert_eq!(Class::of(&rejected(None)), Class::Rejected);
        assert_eq!(Class::of(&rejected(Some(400))), Class::Clock);
        assert_eq!(Class::of(&Error::Config(ConfigError::MissingCredentials)), Class::Config);
        let unavailable = |last| {
            Error::Auth(AuthError::Unavailable {
                endpoint: LoginEndpoint::RsaSession,
                username: "bot".into(),
                attempts: 1,
                last,
            })
        };
        let connect = TransportFailure::new(TransportKind::Connect, "refused");
        assert_eq!(Class::of(&unavailable(FailureCause::Transport(connect))), Class::Unreachable);
        assert_eq!(Class::of(&unavailable(FailureCause::Status(503))), Class::Other);
        let tls = TransportFailure::new(TransportKind::Tls, "UnknownIssuer");
        let handshake = Error::Auth(AuthError::Transport {
            endpoint: LoginEndpoint::RsaSession,
            username: "b".into(),
            failure: tls,
        });
        assert_eq!(Class::of(&handshake), Class::Tls);
    }

    #[test]
    fn codes_and_prefixes_are_distinct_and_the_line_is_one() {
        for (i, a) in Class::ALL.iter().enumerate() {
            for b in &Class::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
                assert!(!a.prefix().starts_with(b.prefix()) && !b.prefix().starts_with(a.prefix()));
            }
        }
        let failure = Failure::new(Class::Other, "first\nsecond\r\n");
        assert_eq!(failure.to_string(), "error: first second");
    }
}
