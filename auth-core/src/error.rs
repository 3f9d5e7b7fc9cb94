//! Errors, split by who is at fault: the configuration, the server, the network, or the caller of the machine.
//! None of them ever holds a token, a JWT or key material.

use std::fmt;

use crate::endpoint::LoginEndpoint;

/// The configuration cannot work: fix it before trying again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A base URL is malformed or uses a scheme other than `http`/`https`.
    #[error("invalid {which} URL {url:?}: {reason}")]
    InvalidUrl {
        /// Which service the URL is for (`pod`, `agent`, ...).
        which: &'static str,
        /// The URL as given, with any user information replaced by `***` and any query or fragment by `…`.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The bot username is empty or contains control characters.
    #[error("invalid bot username {0:?}: it must be non-empty and free of control characters")]
    InvalidUsername(String),
    /// A default header cannot be used. The value is never shown.
    #[error("`{service}.defaultHeaders.{name}`: {reason}")]
    DefaultHeader {
        /// The service (`pod`, `keyManager`, `sessionAuth`, `agent`).
        service: &'static str,
        /// The header name as configured.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The username of an OBO user is empty or has control characters.
    #[error("invalid OBO username {0:?}: it must be non-empty and free of control characters")]
    InvalidOboUsername(String),
    /// The JWT lifetime is zero or above the five minutes the pod accepts.
    #[error("JWT lifetime of {secs} s is outside 1..=300 s (the pod rejects `exp` more than five minutes ahead)")]
    JwtLifetime {
        /// The lifetime given, in seconds.
        secs: u64,
    },
    /// A retry setting is out of range.
    #[error("invalid retry setting {setting}: {reason}")]
    Retry {
        /// The setting (`max_attempts`, `initial_interval`, ...).
        setting: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The private key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// No credentials were given.
    #[error("no credentials: configure an RSA private key or a client certificate for the bot")]
    MissingCredentials,
    /// A base URL is plain `http` to a host that is not loopback, and nobody consented.
    #[error(
        "the {which} URL {url} is plain `http://` to a host that is not loopback: the login JWT and the tokens would \
         cross the network unencrypted. Use `https://`, or opt in explicitly with `Endpoints::allow_insecure_http()` \
         (in a BDK configuration file: `allowInsecureHttp: true`)"
    )]
    InsecureHttp {
        /// Which service (`pod`, `keyManager`, `sessionAuth`, `agent`).
        which: &'static str,
        /// The base URL.
        url: String,
    },
}

/// A private key cannot be used for signing. Names the problem, never the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No `-----BEGIN ...-----` line was found.
    #[error(
        "no PEM block found: expected `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1)"
    )]
    NotPem,
    /// The PEM label is neither PKCS#8 nor PKCS#1. Holds the label when it looks like one (uppercase words, at most
    /// 40 characters), and is empty otherwise: an odd label is not repeated, in case it is key text.
    #[error(
        "PEM label {} not recognized: only `PRIVATE KEY` (PKCS#8) and `RSA PRIVATE KEY` (PKCS#1) are supported",
        if .0.is_empty() { "(not shown)".to_owned() } else { format!("`{}`", .0) }
    )]
    UnsupportedLabel(String),
    /// The key is encrypted with a password.
    #[error("the private key is encrypted; decrypt it first (for example `openssl pkcs8 -in key.pem -out plain.pem`)")]
    Encrypted,
    /// The PEM text or the DER inside it is malformed.
    #[error("malformed {format} private key: {reason}")]
    Malformed {
        /// `PEM` (the text), `PKCS#8` or `PKCS#1` (the DER).
        format: &'static str,
        /// What failed: the parser's description, which never quotes the input.
        reason: String,
    },
    /// The key is valid but not an RSA key.
    #[error("the PKCS#8 key is not an RSA key (RS512 needs RSA)")]
    NotRsa,
    /// The key is smaller than 2048 bits.
    #[error("the RSA key has {bits} bits; at least 2048 are required (pods expect 4096)")]
    TooSmall {
        /// The modulus size.
        bits: usize,
    },
    /// The signer backend asked for is not compiled into this build.
    #[error("the `{backend}` signer is not in this build: enable the `{feature}` feature")]
    BackendNotCompiled {
        /// The backend's name (`rsa`, `ring`, `aws-lc`).
        backend: &'static str,
        /// The cargo feature that compiles it in.
        feature: &'static str,
    },
}

/// Signing the login JWT failed (for example an HSM refused). Holds the signer's description, never key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// How a request failed below HTTP. Drivers map their client's errors to these kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// No answer in time (connect, send or receive). Retried.
    Timeout,
    /// The connection could not be made: refused, unreachable, name not resolved. Retried.
    Connect,
    /// The connection closed or reset before a complete answer. Retried.
    Reset,
    /// The TLS handshake failed: untrusted server certificate, client certificate refused. Not retried: it needs a
    /// configuration change.
    Tls,
    /// Anything else the transport reports. Retried.
    Other,
    /// The driver refused to send the request because sending it would expose a secret (for example, a dependency
    /// that writes every request byte to the log is logging at TRACE). Nothing was sent. Not retried: it needs a
    /// configuration change.
    Refused,
}

impl TransportKind {
    /// Whether a login failing this way is worth another attempt.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Tls | Self::Refused)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "connection failed",
            Self::Reset => "connection closed before the answer",
            Self::Tls => "TLS handshake failed",
            Self::Other => "transport error",
            Self::Refused => "refused to send",
        })
    }
}

/// A request failed below HTTP, as a driver reports it to the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportFailure {
    /// What kind of failure.
    pub kind: TransportKind,
    /// The client's description, for people. It must not contain secrets (drivers pass their client's error text,
    /// which holds no request body).
    pub detail: String,
}

impl TransportFailure {
    /// A failure of `kind` with a human description.
    pub fn new(kind: TransportKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into() }
    }
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() { write!(f, "{}", self.kind) } else { write!(f, "{}: {}", self.kind, self.detail) }
    }
}

/// Why a login attempt was retried, or what the last attempt saw when retries ran out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureCause {
    /// The server answered a retryable status (5xx, 429, 408).
    Status(u16),
    /// The request failed below HTTP.
    Transport(TransportFailure),
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => write!(f, "HTTP {status}"),
            Self::Transport(failure) => write!(f, "{failure}"),
        }
    }
}

/// What was unusable in a server's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProtocolProblem {
    /// A status the login endpoints never answer with (a redirect, 404, ...).
    UnexpectedStatus,
    /// The body exceeds [`crate::MAX_RESPONSE_BODY`].
    BodyTooLarge,
    /// The body is not JSON (or not a JSON object).
    NotJson,
    /// The JSON has no string `token`.
    MissingToken,
    /// The token is empty.
    EmptyToken,
    /// The token contains characters no HTTP header may carry.
    TokenNotAHeaderValue,
}

impl fmt::Display for ProtocolProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnexpectedStatus => "unexpected status",
            Self::BodyTooLarge => "body too large",
            Self::NotJson => "body is not a JSON object",
            Self::MissingToken => "no string `token` field",
            Self::EmptyToken => "empty token",
            Self::TokenNotAHeaderValue => "token is not a valid header value",
        })
    }
}

/// A login failed. Delivered as [`crate::Event::LoginFailed`]; the machine stays usable for a later attempt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The server refused the credentials (400, 401, 403, 407 at login). Not retried.
    #[error("{endpoint} rejected bot {username:?}: HTTP {status}{}{}",
        server_message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default(),
        clock_offset_secs.map(|o| format!("; the server's clock differs from ours by {o:+} s, check the clock")).unwrap_or_default())]
    Rejected {
        /// The login endpoint that refused.
        endpoint: LoginEndpoint,
        /// The bot's username.
        username: String,
        /// The HTTP status.
        status: u16,
        /// What the server says, when its error body says something: the JSON `message` (or HTML `<title>`), with
        /// every run of 16 or more non-blank characters masked and at most 200 characters.
        server_message: Option<String>,
        /// Server time minus our time, in seconds, when the answer's `Date` header shows a difference large enough
        /// (over 30 s) to explain a rejected JWT.
        clock_offset_secs: Option<i64>,
    },
    /// The endpoint kept failing with retryable errors until the retry policy gave up.
    #[error("{endpoint} unavailable for bot {username:?} after {attempts} attempt(s); last: {last}")]
    Unavailable {
        /// The login endpoint.
        endpoint: LoginEndpoint,
        /// The bot's username.
        username: String,
        /// Attempts made.
        attempts: u32,
        /// What the last attempt saw.
        last: FailureCause,
    },
    /// A failure that retrying cannot mend (a TLS handshake failure).
    #[error("{endpoint} for bot {username:?}: {failure}")]
    Transport {
        /// The login endpoint.
        endpoint: LoginEndpoint,
        /// The bot's username.
        username: String,
        /// The failure.
        failure: TransportFailure,
    },
    /// The server answered something unusable.
    #[error("{endpoint} answered HTTP {status}: {problem}{}", if body_prefix.is_empty() { String::new() } else { format!("; the server says {body_prefix:?}") })]
    Protocol {
        /// The login endpoint.
        endpoint: LoginEndpoint,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        problem: ProtocolProblem,
        /// What the server says, for diagnosis: the JSON `message` (or the HTML `<title>`) of an error body, with
        /// every run of 16 or more non-blank characters masked and at most 200 characters. Never raw body bytes,
        /// and empty for successful statuses, whose bodies may hold tokens.
        body_prefix: String,
    },
    /// The JWT could not be signed.
    #[error(transparent)]
    Signing(#[from] SignError),
    /// The pod refused an app a session for one of its users (HTTP 401 or 403 at the OBO user step): the user has
    /// not installed the app, or the app is not set up or enabled for OBO.
    #[error(
        "{endpoint}: app {app_id:?} may not act for {user}: HTTP {status} (the user has not installed the app, \
             or the app is not enabled for on-behalf-of)"
    )]
    OboNotInstalled {
        /// The OBO user endpoint.
        endpoint: LoginEndpoint,
        /// The app id.
        app_id: String,
        /// The user, as configured (`user id N` or `username "x"`).
        user: String,
        /// The HTTP status.
        status: u16,
    },
    /// The pod knows no such user (HTTP 404 at the OBO user step).
    #[error("{endpoint}: no such user: {user}")]
    OboUnknownUser {
        /// The OBO user endpoint.
        endpoint: LoginEndpoint,
        /// The user, as configured.
        user: String,
    },
}

impl AuthError {
    /// The login endpoint involved, when there is one.
    #[must_use]
    pub fn endpoint(&self) -> Option<LoginEndpoint> {
        match self {
            Self::Rejected { endpoint, .. }
            | Self::Unavailable { endpoint, .. }
            | Self::Transport { endpoint, .. }
            | Self::Protocol { endpoint, .. }
            | Self::OboNotInstalled { endpoint, .. }
            | Self::OboUnknownUser { endpoint, .. } => Some(*endpoint),
            Self::Signing(_) => None,
        }
    }
}

/// The caller broke the machine's contract.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A response or failure for a request id the machine did not hand out or already settled.
    #[error("no outstanding request has id {0}")]
    UnknownRequest(u64),
    /// An API call to a URI outside the configured pod, agent, key-manager and session-auth URLs: the bot's tokens
    /// are never sent anywhere else.
    #[error("refusing to send the bot's tokens to {0}: it is not under a configured service URL")]
    ForeignUri(String),
    /// A bot's event hook called back into the bot while its thread leads a login: the call would wait for its
    /// own thread. Act on events elsewhere (hand them to another thread), or after the login ends.
    #[error("called from the bot's event hook during a login that the hook's thread leads")]
    CalledFromEventHook,
    /// An API call to a URI under a configured service that must not receive the bot's tokens: a path with `.` or
    /// `..` segments, or a key-manager path.
    #[error("refusing to send the bot's tokens to {uri}: {reason}")]
    RefusedUri {
        /// The URI, without its query or user information.
        uri: String,
        /// Why.
        reason: &'static str,
    },
    /// A 401 reported for a generation that was never issued.
    #[error("generation {reported} was never issued (the latest is {latest})")]
    UnknownGeneration {
        /// The generation reported.
        reported: u64,
        /// The latest generation issued.
        latest: u64,
    },
}
