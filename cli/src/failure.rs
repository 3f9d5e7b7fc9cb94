//! The classes of failure, each with its exit code and message prefix, and the sorting of the library's errors
//! into them.

use std::fmt;
use std::net::ToSocketAddrs as _;

use symphony_auth_blocking::Error;
use symphony_auth_blocking::symphony_auth_core::{
    AppBackendError, AuthError, ExtensionAppError, FailureCause, TransportKind,
};

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
        if let Some(kind) = transport_kind(error) {
            return Self::of_transport(kind);
        }
        match error {
            Error::Config(_) | Error::ConfigFile(_) | Error::Identity(_) | Error::Tls(_) => Self::Config,
            Error::Auth(AuthError::Rejected { clock_offset_secs: Some(_), .. }) => Self::Clock,
            Error::Auth(AuthError::Rejected { .. }) => Self::Rejected,
            // The pod refused the app a session for the user: its credentials are not good for that user.
            Error::Auth(AuthError::OboNotInstalled { .. } | AuthError::OboUnknownUser { .. }) => Self::Rejected,
            Error::Auth(AuthError::Signing(_)) => Self::Config,
            // The pod refused the app, or a user JWT or token pair was refused.
            Error::ExtensionApp(
                AppBackendError::Answer(ExtensionAppError::Rejected { .. })
                | AppBackendError::UserJwt(_)
                | AppBackendError::Pair(_),
            ) => Self::Rejected,
            Error::ExtensionApp(AppBackendError::Signing(_)) => Self::Config,
            _ => Self::Other,
        }
    }
}

/// How the request failed below HTTP, when that is what failed.
fn transport_kind(error: &Error) -> Option<TransportKind> {
    match error {
        Error::Auth(
            AuthError::Unavailable { last: FailureCause::Transport(failure), .. }
            | AuthError::Transport { failure, .. },
        ) => Some(failure.kind),
        Error::Transport { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// Whether `host` (a name or an IP literal, IPv6 in brackets or not) resolves to at least one address now.
fn resolves(host: &str) -> bool {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    (host, 0).to_socket_addrs().is_ok_and(|mut addresses| addresses.next().is_some())
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

    /// The failure of `error`, a request to `host` (the proxy's, when there is one: the proxy resolves the
    /// rest). ureq reports a name that does not resolve as a bare I/O error, which the driver can only call
    /// "other"; when that is what failed and `host` does not resolve now, the host is unreachable, and the
    /// message says why.
    pub(crate) fn of_request(error: Error, host: &str) -> Self {
        let mut failure = Self::from(error.clone());
        if failure.class == Class::Other && transport_kind(&error) == Some(TransportKind::Other) && !resolves(host) {
            failure.class = Class::Unreachable;
            failure.message.push_str(&format!(" (the name {host:?} does not resolve)"));
        }
        failure
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

    fn unavailable(last: FailureCause) -> Error {
        Error::Auth(AuthError::Unavailable {
            endpoint: LoginEndpoint::RsaSession,
            username: "bot".into(),
            attempts: 2,
            last,
        })
    }

    fn io(detail: &str) -> FailureCause {
        FailureCause::Transport(TransportFailure::new(TransportKind::Other, detail))
    }

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
    fn an_unresolvable_name_makes_an_unclassified_transport_failure_unreachable() {
        let lookup = "io: failed to lookup address information: Name or service not known";
        let failure = Failure::of_request(unavailable(io(lookup)), "nonexistent.invalid");
        assert_eq!(failure.class, Class::Unreachable);
        assert!(failure.to_string().ends_with(r#"(the name "nonexistent.invalid" does not resolve)"#), "{failure}");

        let api_call = Error::Transport { kind: TransportKind::Other, detail: lookup.into() };
        assert_eq!(Failure::of_request(api_call, "nonexistent.invalid").class, Class::Unreachable);

        // A host that resolves: the failure was something else and stays so.
        for host in ["127.0.0.1", "[::1]", "localhost"] {
            let failure = Failure::of_request(unavailable(io("io: something else")), host);
            assert_eq!(failure.class, Class::Other, "{host}");
            assert!(!failure.to_string().contains("does not resolve"), "{failure}");
        }
        // Only transport failures of no known kind are looked at.
        let rejected = Error::Auth(AuthError::Rejected {
            endpoint: LoginEndpoint::RsaSession,
            username: "bot".into(),
            status: 401,
            server_message: None,
            clock_offset_secs: None,
        });
        assert_eq!(Failure::of_request(rejected, "nonexistent.invalid").class, Class::Rejected);
        assert_eq!(
            Failure::of_request(unavailable(FailureCause::Status(503)), "nonexistent.invalid").class,
            Class::Other
        );
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
