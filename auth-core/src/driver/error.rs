//! The error of a driver's `Bot`: the core's errors as they are, plus what only a driver meets (TLS set-up, a
//! request failing below HTTP, a 401 after a fresh login). One type for every driver, so that each reports the
//! same failure the same way.

use crate::ApiError;
#[cfg(feature = "bdk-config")]
use crate::bdk::ConfigFileError;
use crate::error::{AuthError, ConfigError, TransportFailure, TransportKind, UsageError};
use crate::identity::IdentityError;
use crate::session_info::SessionInfoError;

/// Why building a bot, logging in or an API call failed. Messages never contain a token, a JWT or key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BotError {
    /// The configuration cannot work (a bad proxy URL, a certificate login without a client certificate...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A BDK configuration file cannot be used; the message names the key at fault.
    #[cfg(feature = "bdk-config")]
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    /// The client certificate cannot be read.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The TLS configuration cannot be built: an unreadable root certificate PEM, an unusable client key.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The login failed: credentials rejected, pod unavailable after retries, TLS handshake refused, or an unusable
    /// answer. The core's error as it is.
    #[error("login failed: {0}")]
    Auth(#[from] AuthError),
    /// An API call failed below HTTP, or its answer exceeded the response-size cap (kind `Other`).
    #[error("request failed: {kind}: {detail}")]
    Transport {
        /// What kind of failure.
        kind: TransportKind,
        /// The HTTP client's description.
        detail: String,
    },
    /// An API call was answered 401 again right after a fresh login with the tokens of `generation`.
    #[error("HTTP 401 with the tokens of a fresh login (generation {generation}): the bot is not authorized")]
    Unauthorized {
        /// The generation of the refused tokens.
        generation: u64,
    },
    /// The session info could not be read.
    #[error(transparent)]
    SessionInfo(#[from] SessionInfoError),
    /// A logout did not end the session.
    #[error(transparent)]
    Logout(#[from] crate::LogoutError),
    /// The caller misused the bot: an API call to a URI outside the configured services, or a call into the bot
    /// from its own event hook while that thread leads a login.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// An extension-app step failed: the pod refused the app, a pair or a user JWT was refused.
    #[error(transparent)]
    ExtensionApp(#[from] crate::AppBackendError),
    /// The Common JWT could not be obtained (`POST /login/idm/tokens`).
    #[error(transparent)]
    AccessToken(#[from] crate::AccessTokenError),
}

impl From<TransportFailure> for BotError {
    fn from(failure: TransportFailure) -> Self {
        Self::Transport { kind: failure.kind, detail: failure.detail }
    }
}

impl From<ApiError> for BotError {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Unauthorized { generation } => Self::Unauthorized { generation },
            ApiError::Transport { failure, .. } => failure.into(),
        }
    }
}
