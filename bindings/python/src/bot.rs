//! `Bot`: the blocking Rust driver, with the GIL released while it signs, sends and waits.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use symphony_auth_blocking::Bot;
use symphony_auth_core::driver::BotError;
use symphony_auth_core::{HttpResponse, parse_session_info};

use crate::config::PyConfig;
use crate::convert::{self, PyTokens};
use crate::errors::bot_error;

/// A Symphony bot: logs in on first use, keeps its tokens, shares one login between every thread, and sends API
/// calls with the tokens attached, re-logging in once and replaying on a 401. Thread-safe; the GIL is released
/// during network I/O and signing.
#[pyclass(frozen, name = "Bot", module = "symphony_auth")]
pub(crate) struct PyBot {
    bot: Bot,
}

/// An API call's answer.
#[pyclass(frozen, name = "Response", module = "symphony_auth")]
pub(crate) struct PyResponse {
    /// The HTTP status.
    #[pyo3(get)]
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl PyResponse {
    fn new(response: HttpResponse) -> Self {
        let headers = convert::header_pairs(response.headers());
        Self { status: response.status().as_u16(), headers, body: response.into_body() }
    }
}

#[pymethods]
impl PyResponse {
    /// The headers, names in lower case; a repeated header's values are joined with ", ".
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in &self.headers {
            let joined = match dict.get_item(name)? {
                Some(previous) => format!("{}, {value}", previous.extract::<String>()?),
                None => value.clone(),
            };
            dict.set_item(name, joined)?;
        }
        Ok(dict)
    }

    /// The headers as `(name, value)` pairs, in order, repeated names kept.
    #[getter]
    fn header_list(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    /// The body.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    /// The body decoded as UTF-8 (invalid sequences replaced).
    #[getter]
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (PyBytes::new(py, &self.body),))
    }

    fn __repr__(&self) -> String {
        format!("Response(status={}, {} bytes)", self.status, self.body.len())
    }
}

impl PyBot {
    fn run<T: Send>(&self, py: Python<'_>, work: impl FnOnce(&Bot) -> Result<T, BotError> + Send) -> PyResult<T> {
        py.detach(|| work(&self.bot)).map_err(|e| bot_error(py, &e))
    }
}

#[pymethods]
impl PyBot {
    /// A bot with `config`; no request is made until the first call.
    #[new]
    fn new(py: Python<'_>, config: &PyConfig) -> PyResult<Self> {
        let bot = config.builder::<symphony_auth_blocking::Blocking>(py)?.build().map_err(|e| bot_error(py, &e))?;
        Ok(Self { bot })
    }

    /// A bot from a BDK configuration file (YAML or JSON), as the Rust drivers read it.
    #[staticmethod]
    fn from_config(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let bot = py.detach(|| Bot::from_config_file(&path)).map_err(|e| bot_error(py, &e))?;
        Ok(Self { bot })
    }

    /// A bot from values: the arguments of `Config(pod_url, username, ...)`.
    #[staticmethod]
    #[pyo3(signature = (pod_url, username, **kwargs))]
    fn from_values(
        py: Python<'_>,
        pod_url: &str,
        username: &str,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let args = PyTuple::new(py, [pod_url, username])?;
        let config = py.get_type::<PyConfig>().call(args, kwargs)?;
        Self::new(py, config.cast::<PyConfig>()?.get())
    }

    /// The bot's username.
    #[getter]
    fn username(&self) -> &str {
        self.bot.config().username().as_str()
    }

    /// Where the machine stands, as a dict (`type`: `needs_session`, `needs_key_manager`, `ready`, `expired`).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        // The bot's flight traces under the lock `state` takes: not with the GIL held.
        let state = py.detach(|| self.bot.state());
        convert::state(py, state)
    }

    /// The current tokens, logging in first if there are none; concurrent callers share one login.
    fn tokens(&self, py: Python<'_>) -> PyResult<PyTokens> {
        Ok(PyTokens { tokens: self.run(py, Bot::tokens)? })
    }

    /// Logs in again even though tokens are available, and returns the new tokens.
    fn refresh(&self, py: Python<'_>) -> PyResult<PyTokens> {
        Ok(PyTokens { tokens: self.run(py, Bot::refresh)? })
    }

    /// Sends an API call with the tokens attached; on a 401, waits for the one shared re-login and replays it once.
    /// `headers`: a mapping or `(name, value)` pairs; `body`: bytes or str. Any status other than a second 401 is
    /// returned as it is.
    #[pyo3(signature = (method, url, headers = None, body = None))]
    fn send(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyResponse> {
        let request = convert::request(method, url, headers, body)?;
        Ok(PyResponse::new(self.run(py, |bot| bot.send(request))?))
    }

    /// The bot's own user record (`GET /pod/v2/sessioninfo`), as a dict.
    fn session_info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let response = self.run(py, |bot| {
            let response = bot.send(symphony_auth_core::session_info(bot.config().endpoints()))?;
            parse_session_info(&response)?;
            Ok(response)
        })?;
        py.import("json")?.call_method1("loads", (PyBytes::new(py, response.body()),))
    }

    fn __repr__(&self) -> String {
        format!("Bot(username={:?}, pod_url={:?})", self.username(), self.bot.config().endpoints().pod.to_string())
    }
}
