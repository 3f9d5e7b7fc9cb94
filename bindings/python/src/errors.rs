//! The exceptions of the module, one per class of the Rust error taxonomy, and the mapping from the core's errors.
//! A message is the Rust error's `Display`, which never holds a token, a JWT or key material.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use symphony_auth_core::driver::BotError;
use symphony_auth_core::{
    AccessTokenError, AuthError, ConfigError, FailureCause, TransportKind, UsageError as CoreUsageError,
};

pyo3::create_exception!(symphony_auth, SymphonyAuthError, PyException, "Base class of every symphony_auth error.");
pyo3::create_exception!(
    symphony_auth,
    ConfigurationError,
    SymphonyAuthError,
    "The configuration is unusable: a URL, username, key, certificate, trust store or BDK file."
);
pyo3::create_exception!(
    symphony_auth,
    CredentialsRejectedError,
    SymphonyAuthError,
    "A login endpoint refused the credentials (HTTP 400, 401, 403 or 407 at login); not retried."
);
pyo3::create_exception!(
    symphony_auth,
    UnavailableError,
    SymphonyAuthError,
    "A login endpoint kept failing with retryable errors until the retry policy gave up."
);
pyo3::create_exception!(symphony_auth, ProtocolError, SymphonyAuthError, "A server answered something unusable.");
pyo3::create_exception!(symphony_auth, TransportError, SymphonyAuthError, "A request failed below HTTP.");
pyo3::create_exception!(symphony_auth, TlsError, TransportError, "A TLS handshake failed.");
pyo3::create_exception!(
    symphony_auth,
    UnauthorizedError,
    SymphonyAuthError,
    "An API call was answered 401 with the tokens of a fresh login: the bot is not authorized."
);
pyo3::create_exception!(symphony_auth, SigningError, SymphonyAuthError, "The login JWT could not be signed.");
pyo3::create_exception!(
    symphony_auth,
    UsageError,
    SymphonyAuthError,
    "The caller broke the contract: an unknown request id, a URI outside the configured services, ..."
);

/// Adds the exception types to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SymphonyAuthError", py.get_type::<SymphonyAuthError>())?;
    m.add("ConfigurationError", py.get_type::<ConfigurationError>())?;
    m.add("CredentialsRejectedError", py.get_type::<CredentialsRejectedError>())?;
    m.add("UnavailableError", py.get_type::<UnavailableError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    m.add("TransportError", py.get_type::<TransportError>())?;
    m.add("TlsError", py.get_type::<TlsError>())?;
    m.add("UnauthorizedError", py.get_type::<UnauthorizedError>())?;
    m.add("SigningError", py.get_type::<SigningError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    Ok(())
}

/// The name a transcript and a Python caller use for a transport failure's kind.
pub(crate) fn kind_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Timeout => "timeout",
        TransportKind::Connect => "connect",
        TransportKind::Reset => "reset",
        TransportKind::Tls => "tls",
        TransportKind::Refused => "refused",
        _ => "other",
    }
}

/// The kind named `name`, as `kind_name` writes it.
pub(crate) fn kind_of(name: &str) -> PyResult<TransportKind> {
    Ok(match name {
        "timeout" => TransportKind::Timeout,
        "connect" => TransportKind::Connect,
        "reset" => TransportKind::Reset,
        "tls" => TransportKind::Tls,
        "refused" => TransportKind::Refused,
        "other" => TransportKind::Other,
        other => {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "unknown transport failure kind {other:?}: expected timeout, connect, reset, tls, refused or other"
            )));
        }
    })
}

fn cause<'py>(py: Python<'py>, cause: &FailureCause) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match cause {
        FailureCause::Status(status) => dict.set_item("status", status)?,
        FailureCause::Transport(failure) => dict.set_item("transport", kind_name(failure.kind))?,
        _ => dict.set_item("other", true)?,
    }
    Ok(dict)
}

/// What a login error is, as a dict (`class`, `endpoint`, `status`, ...): the fields of the conformance files.
pub(crate) fn auth_error_details<'py>(py: Python<'py>, error: &AuthError) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match error {
        AuthError::Rejected { endpoint, status, server_message, clock_offset_secs, .. } => {
            dict.set_item("class", "rejected")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("status", status)?;
            dict.set_item("server_message", server_message)?;
            dict.set_item("clock_offset_secs", clock_offset_secs)?;
        }
        AuthError::Unavailable { endpoint, attempts, last, .. } => {
            dict.set_item("class", "unavailable")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("attempts", attempts)?;
            dict.set_item("last", cause(py, last)?)?;
        }
        AuthError::Transport { endpoint, failure, .. } => {
            dict.set_item("class", "transport")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("kind", kind_name(failure.kind))?;
        }
        AuthError::Protocol { endpoint, status, problem, body_prefix } => {
            dict.set_item("class", "protocol")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("status", status)?;
            dict.set_item("problem", format!("{problem:?}"))?;
            dict.set_item("body_prefix", body_prefix)?;
        }
        AuthError::Signing(_) => dict.set_item("class", "signing")?,
        AuthError::OboNotInstalled { endpoint, app_id, user, status } => {
            dict.set_item("class", "obo_not_installed")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("app_id", app_id)?;
            dict.set_item("user", user)?;
            dict.set_item("status", status)?;
        }
        AuthError::OboUnknownUser { endpoint, user } => {
            dict.set_item("class", "obo_unknown_user")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("user", user)?;
        }
        _ => dict.set_item("class", "other")?,
    }
    Ok(dict)
}

/// A login error as an exception whose message is `message` (the error's own, or the bot's with its prefix), with
/// its details in the attribute `details`.
fn auth_exception(py: Python<'_>, error: &AuthError, message: String) -> PyErr {
    let err = match error {
        AuthError::Rejected { .. } => CredentialsRejectedError::new_err(message),
        AuthError::Unavailable { .. } => UnavailableError::new_err(message),
        AuthError::Transport { failure, .. } if failure.kind == TransportKind::Tls => TlsError::new_err(message),
        AuthError::Transport { .. } => TransportError::new_err(message),
        AuthError::Protocol { .. } => ProtocolError::new_err(message),
        // The user has not installed the app, or is unknown: the pod refused the OBO login.
        AuthError::OboNotInstalled { .. } | AuthError::OboUnknownUser { .. } => {
            CredentialsRejectedError::new_err(message)
        }
        _ => SigningError::new_err(message),
    };
    if let Ok(details) = auth_error_details(py, error) {
        let _ = err.value(py).setattr("details", details);
    }
    err
}

/// A login error, as the machine reports it.
pub(crate) fn auth_error(py: Python<'_>, error: &AuthError) -> PyErr {
    auth_exception(py, error, error.to_string())
}

/// A bot's error, with the same message as the Rust drivers'.
pub(crate) fn bot_error(py: Python<'_>, error: &BotError) -> PyErr {
    let message = error.to_string();
    match error {
        BotError::Auth(auth) => auth_exception(py, auth, message),
        BotError::Transport { kind: TransportKind::Tls, .. } => TlsError::new_err(message),
        BotError::Transport { .. } => TransportError::new_err(message),
        BotError::Unauthorized { .. } => UnauthorizedError::new_err(message),
        BotError::SessionInfo(_) => ProtocolError::new_err(message),
        BotError::Usage(_) => UsageError::new_err(message),
        BotError::AccessToken(error) => access_token_error(py, error),
        _ => ConfigurationError::new_err(message),
    }
}

/// Why A5 gave no access token, as an exception with its details (`class`: `unauthorized`, `status`,
/// `protocol`, `no_expiry`, `unverified`, `transport`) in the attribute `details`.
pub(crate) fn access_token_error(py: Python<'_>, error: &AccessTokenError) -> PyErr {
    let message = error.to_string();
    let details = PyDict::new(py);
    let err = match error {
        AccessTokenError::Unauthorized => {
            let _ = details.set_item("class", "unauthorized");
            UnauthorizedError::new_err(message)
        }
        AccessTokenError::Transport(failure) => {
            let _ = details.set_item("class", "transport");
            let _ = details.set_item("kind", kind_name(failure.kind));
            if failure.kind == TransportKind::Tls {
                TlsError::new_err(message)
            } else {
                TransportError::new_err(message)
            }
        }
        AccessTokenError::Status { status } => {
            let _ = details.set_item("class", "status");
            let _ = details.set_item("status", status);
            ProtocolError::new_err(message)
        }
        AccessTokenError::Protocol { problem } => {
            let _ = details.set_item("class", "protocol");
            let _ = details.set_item("problem", format!("{problem:?}"));
            ProtocolError::new_err(message)
        }
        AccessTokenError::NoExpiry => {
            let _ = details.set_item("class", "no_expiry");
            ProtocolError::new_err(message)
        }
        _ => {
            let _ = details.set_item("class", "unverified");
            ProtocolError::new_err(message)
        }
    };
    let _ = err.value(py).setattr("details", details);
    err
}

/// A configuration error.
pub(crate) fn config_error(error: &ConfigError) -> PyErr {
    ConfigurationError::new_err(error.to_string())
}

/// A usage error.
pub(crate) fn usage_error(error: &CoreUsageError) -> PyErr {
    UsageError::new_err(error.to_string())
}
