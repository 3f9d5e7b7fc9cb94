//! Requests, responses, tokens and states between Python values and the core's types.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use symphony_auth_core::http::{HeaderMap, HeaderName, HeaderValue, Method};
use symphony_auth_core::{HttpRequest, HttpResponse, State, Tokens};

/// Bytes from `bytes`, `bytearray` or `str` (UTF-8).
pub(crate) fn body_bytes(body: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    match body {
        None => Ok(Vec::new()),
        Some(body) if body.is_none() => Ok(Vec::new()),
        Some(body) => match body.cast::<PyString>() {
            Ok(text) => Ok(text.extract::<String>()?.into_bytes()),
            Err(_) => body.extract::<Vec<u8>>(),
        },
    }
}

/// Header pairs from a mapping or an iterable of `(name, value)` pairs.
pub(crate) fn header_map(headers: Option<&Bound<'_, PyAny>>) -> PyResult<HeaderMap> {
    let mut map = HeaderMap::new();
    let Some(headers) = headers.filter(|h| !h.is_none()) else { return Ok(map) };
    let pairs = if headers.hasattr("items")? { headers.call_method0("items")? } else { headers.clone() };
    for pair in pairs.try_iter()? {
        let (name, value): (String, Bound<'_, PyAny>) = pair?.extract()?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("{name:?} is not a valid HTTP header name")))?;
        let value = match value.cast::<PyString>() {
            Ok(text) => text.extract::<String>()?.into_bytes(),
            Err(_) => value.extract::<Vec<u8>>()?,
        };
        // The value is not shown: it may be a credential.
        let value = HeaderValue::from_bytes(&value)
            .map_err(|_| PyValueError::new_err(format!("the value of header {name} is not a valid header value")))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A request from its parts.
pub(crate) fn request(
    method: &str,
    url: &str,
    headers: Option<&Bound<'_, PyAny>>,
    body: Option<&Bound<'_, PyAny>>,
) -> PyResult<HttpRequest> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| PyValueError::new_err(format!("{method:?} is not an HTTP method")))?;
    let mut request = HttpRequest::new(body_bytes(body)?);
    *request.method_mut() = method;
    *request.uri_mut() = url.parse().map_err(|_| PyValueError::new_err(format!("{url:?} is not a valid URI")))?;
    *request.headers_mut() = header_map(headers)?;
    Ok(request)
}

/// A response from its parts.
pub(crate) fn response(
    status: u16,
    headers: Option<&Bound<'_, PyAny>>,
    body: Option<&Bound<'_, PyAny>>,
) -> PyResult<HttpResponse> {
    let mut response = HttpResponse::new(body_bytes(body)?);
    *response.status_mut() = symphony_auth_core::http::StatusCode::from_u16(status)
        .map_err(|_| PyValueError::new_err(format!("{status} is not an HTTP status")))?;
    *response.headers_mut() = header_map(headers)?;
    Ok(response)
}

/// Headers as a list of `(name, value)` pairs, names in lower case, in order, repeated names kept.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
}

/// A request as Python values: `(method, url, [(name, value)], body)`.
pub(crate) fn request_parts<'py>(
    py: Python<'py>,
    request: &HttpRequest,
) -> (String, String, Vec<(String, String)>, Bound<'py, PyBytes>) {
    (
        request.method().as_str().to_owned(),
        request.uri().to_string(),
        header_pairs(request.headers()),
        PyBytes::new(py, request.body()),
    )
}

/// The session and key-manager tokens of one login, and its generation.
#[pyclass(frozen, name = "Tokens", module = "symphony_auth")]
pub(crate) struct PyTokens {
    pub(crate) tokens: Arc<Tokens>,
}

#[pymethods]
impl PyTokens {
    /// The session token (header `sessionToken`).
    #[getter]
    fn session_token(&self) -> &str {
        self.tokens.session().expose_secret()
    }

    /// The key-manager token (header `keyManagerToken`), or None when the login did not need one (simplified key
    /// delivery, or key-manager policy `never`).
    #[getter]
    fn key_manager_token(&self) -> Option<&str> {
        self.tokens.key_manager().map(|t| t.expose_secret())
    }

    /// The bearer token (Common JWT) the session login returned, if any.
    #[getter]
    fn authorization_token(&self) -> Option<&str> {
        self.tokens.authorization().map(|t| t.expose_secret())
    }

    /// Which login these tokens come from: 1 for the first, one more for each login after.
    #[getter]
    fn generation(&self) -> u64 {
        self.tokens.generation().get()
    }

    /// Whether the session token grants simplified key delivery.
    #[getter]
    fn simplified_key_delivery(&self) -> bool {
        self.tokens.simplified_key_delivery()
    }

    /// Adds the tokens to `headers` (a dict) for a request to the pod (`"pod"`: the session token) or the agent
    /// (`"agent"`: both tokens).
    #[pyo3(signature = (headers, target = "agent"))]
    fn attach(&self, headers: &Bound<'_, PyDict>, target: &str) -> PyResult<()> {
        headers.set_item("sessionToken", self.session_token())?;
        match target {
            "pod" => Ok(()),
            "agent" => match self.key_manager_token() {
                Some(token) => headers.set_item("keyManagerToken", token),
                None => Ok(()),
            },
            other => Err(PyValueError::new_err(format!("target {other:?}: expected \"pod\" or \"agent\""))),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Tokens(generation={}, session_token=<redacted>, key_manager_token={})",
            self.generation(),
            if self.tokens.key_manager().is_some() { "<redacted>" } else { "None" }
        )
    }
}

/// A state as a dict, in the form of the conformance files.
pub(crate) fn state<'py>(py: Python<'py>, state: State) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match state {
        State::NeedsSession { logging_in } => {
            dict.set_item("type", "needs_session")?;
            dict.set_item("logging_in", logging_in)?;
        }
        State::NeedsKeyManager => dict.set_item("type", "needs_key_manager")?,
        State::Ready { generation, refreshing } => {
            dict.set_item("type", "ready")?;
            dict.set_item("generation", generation.get())?;
            dict.set_item("refreshing", refreshing)?;
        }
        State::Expired { generation, logging_in } => {
            dict.set_item("type", "expired")?;
            dict.set_item("generation", generation.get())?;
            dict.set_item("logging_in", logging_in)?;
        }
        _ => dict.set_item("type", "other")?,
    }
    Ok(dict)
}
