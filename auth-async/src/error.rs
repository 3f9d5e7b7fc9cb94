//! The one error type of the driver. No variant ever holds a token, a JWT or key material.

#[cfg(feature = "config-file")]
use symphony_auth_core::ConfigFileError;
use symphony_auth_core::{AuthError, ConfigError, IdentityError, SessionInfoError, TransportKind, UsageError};

/// Why a [`Bot`](crate::Bot) could not be built, could not log in, or could not complete an API call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (a bad URL, a bad proxy URL, ...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A BDK configuration file cannot be used; the message names the key at fault.
    #[cfg(feature = "config-file")]
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    /// The client certificate cannot be read.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The TLS configuration cannot be built: an unreadable root certificate, a client key rustls refuses, ...
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The login failed: credentials rejected, service unavailable after retries, a TLS failure, or an unusable
    /// answer. The core's error, as it reported it.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// An API call failed below HTTP (no answer, or an answer over the size limit).
    #[error("API call failed: {kind}: {detail}")]
    Transport {
        /// What kind of failure.
        kind: TransportKind,
        /// The HTTP client's description (it holds the URL, never a header or body).
        detail: String,
    },
    /// An API call was answered 401 with the tokens of a fresh login, after one re-login and replay.
    #[error("the tokens of login {generation} were refused (HTTP 401) right after a re-login; not retrying")]
    Unauthorized {
        /// The generation of the refused tokens.
        generation: u64,
    },
    /// The caller misused the bot: an API call to a URI outside the configured services.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The session-info answer could not be read.
    #[error(transparent)]
    SessionInfo(#[from] SessionInfoError),
}

impl Error {
    pub(crate) fn transport(failure: symphony_auth_core::TransportFailure) -> Self {
        Self::Transport { kind: failure.kind, detail: failure.detail }
    }
}
