//! `Authenticator`: the sans-IO machine itself, for applications that keep their own HTTP client, and the values
//! it hands out (JWTs to sign, login requests, events). Times are milliseconds since the Unix epoch.

use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use symphony_auth_core::{
    Authenticator, Event, KeyManagerOutcome, LoginRequest, Output, RequestId, SignError, SignedJwt, TransportFailure,
    UnauthorizedOutcome, UnixTime, UnsignedJwt,
};

use crate::config::PyConfig;
use crate::convert::{self, PyTokens};
use crate::errors::{UsageError, auth_error, auth_error_details, kind_name, kind_of, usage_error};

/// Locks a mutex; the values behind these locks are changed by whole method calls only, so a panic leaves them
/// consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A login JWT to sign: sign it with the configured key (`sign()`, GIL released) or with a signature of
/// `signing_input` made elsewhere (`with_signature`, RS512).
#[pyclass(frozen, name = "UnsignedJwt", module = "symphony_auth")]
pub(crate) struct PyUnsignedJwt {
    jwt: Mutex<Option<UnsignedJwt>>,
    /// The `exp` claim, in seconds since the epoch.
    #[pyo3(get)]
    exp: u64,
    signing_input: Vec<u8>,
}

impl PyUnsignedJwt {
    pub(crate) fn new(jwt: UnsignedJwt) -> Self {
        Self { exp: jwt.exp(), signing_input: jwt.signing_input().to_vec(), jwt: Mutex::new(Some(jwt)) }
    }

    fn take(&self) -> PyResult<UnsignedJwt> {
        lock(&self.jwt).take().ok_or_else(|| UsageError::new_err("this JWT was signed already"))
    }
}

#[pymethods]
impl PyUnsignedJwt {
    /// The bytes an external signer signs (RS512): the JWT's header and claims, base64url, joined by a dot.
    #[getter]
    fn signing_input<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.signing_input)
    }

    /// Signs with the configured key, the GIL released. Once only.
    fn sign(&self, py: Python<'_>) -> PyResult<PySignedJwt> {
        let jwt = self.take()?;
        Ok(PySignedJwt::new(py.detach(|| jwt.sign())))
    }

    /// The JWT with `signature` (RS512 over `signing_input`), made by an external signer. Once only.
    fn with_signature(&self, signature: &[u8]) -> PyResult<PySignedJwt> {
        Ok(PySignedJwt::new(Ok(self.take()?.with_signature(signature))))
    }

    fn __repr__(&self) -> String {
        format!("UnsignedJwt(exp={})", self.exp)
    }
}

/// A signed login JWT (or the signing failure), to hand back to the machine. Its text is never shown.
#[pyclass(frozen, name = "SignedJwt", module = "symphony_auth")]
pub(crate) struct PySignedJwt {
    signed: Mutex<Option<Result<SignedJwt, SignError>>>,
}

impl PySignedJwt {
    pub(crate) fn new(signed: Result<SignedJwt, SignError>) -> Self {
        Self { signed: Mutex::new(Some(signed)) }
    }

    pub(crate) fn take(&self) -> PyResult<Result<SignedJwt, SignError>> {
        lock(&self.signed).take().ok_or_else(|| UsageError::new_err("this JWT was supplied already"))
    }
}

#[pymethods]
impl PySignedJwt {
    /// Whether signing worked.
    #[getter]
    fn ok(&self) -> bool {
        matches!(&*lock(&self.signed), Some(Ok(_)))
    }

    fn __repr__(&self) -> String {
        "SignedJwt(<redacted>)".to_owned()
    }
}

/// A login request to send: its id (to report the answer with), endpoint, method, URL, headers and body. The
/// body may hold a signed JWT: do not log it.
#[pyclass(frozen, name = "LoginRequest", module = "symphony_auth")]
pub(crate) struct PyLoginRequest {
    /// The id to report the answer with.
    #[pyo3(get)]
    id: u64,
    /// Which endpoint: `RsaSession`, `RsaKeyManager`, `CertificateSession`, `CertificateKeyManager`,
    /// `AgentVersion`.
    #[pyo3(get)]
    endpoint: String,
    /// Whether it must go through the HTTP client that presents the client certificate.
    #[pyo3(get)]
    uses_client_certificate: bool,
    /// The HTTP method.
    #[pyo3(get)]
    method: String,
    /// The URL.
    #[pyo3(get)]
    url: String,
    /// The headers, `(name, value)` pairs: the complete set to send.
    #[pyo3(get)]
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl PyLoginRequest {
    pub(crate) fn new(login: LoginRequest) -> Self {
        Self {
            id: login.id.get(),
            endpoint: format!("{:?}", login.endpoint),
            uses_client_certificate: login.endpoint.uses_client_certificate(),
            method: login.request.method().as_str().to_owned(),
            url: login.request.uri().to_string(),
            headers: convert::header_pairs(login.request.headers()),
            body: login.request.into_body(),
        }
    }
}

#[pymethods]
impl PyLoginRequest {
    /// The body (for an RSA login, JSON holding the signed JWT).
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    fn __repr__(&self) -> String {
        format!("LoginRequest(id={}, endpoint={}, {} {})", self.id, self.endpoint, self.method, self.url)
    }
}

/// An event as a dict, in the form of the conformance files.
pub(crate) fn event<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let millis = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    match event {
        Event::LoginStarted { refresh } => {
            dict.set_item("type", "login_started")?;
            dict.set_item("refresh", refresh)?;
        }
        Event::RetryScheduled { endpoint, attempt, max_attempts, delay, cause } => {
            dict.set_item("type", "retry_scheduled")?;
            dict.set_item("endpoint", format!("{endpoint:?}"))?;
            dict.set_item("attempt", attempt)?;
            dict.set_item("max_attempts", max_attempts)?;
            dict.set_item("delay_ms", millis(*delay))?;
            let why = PyDict::new(py);
            match cause {
                symphony_auth_core::FailureCause::Status(status) => why.set_item("status", status)?,
                symphony_auth_core::FailureCause::Transport(f) => why.set_item("transport", kind_name(f.kind))?,
                _ => why.set_item("other", true)?,
            }
            dict.set_item("cause", why)?;
        }
        Event::Authenticated { generation, key_manager } => {
            dict.set_item("type", "authenticated")?;
            dict.set_item("generation", generation.get())?;
            dict.set_item(
                "key_manager",
                match key_manager {
                    KeyManagerOutcome::Obtained => "obtained",
                    KeyManagerOutcome::SkippedBySimplifiedKeyDelivery => "skipped_by_simplified_key_delivery",
                    KeyManagerOutcome::Disabled => "disabled",
                    _ => "other",
                },
            )?;
        }
        Event::LoginFailed { error, cool_down } => {
            dict.set_item("type", "login_failed")?;
            dict.set_item("error", auth_error_details(py, error)?)?;
            dict.set_item("message", error.to_string())?;
            dict.set_item("cool_down_ms", millis(*cool_down))?;
        }
        Event::Expired { generation } => {
            dict.set_item("type", "expired")?;
            dict.set_item("generation", generation.get())?;
        }
        _ => dict.set_item("type", "other")?,
    }
    Ok(dict)
}

/// The machine's one output as a dict: `{"type": "sign", "jwt"}`, `{"type": "send", "requests"}`,
/// `{"type": "await"}`, `{"type": "wait_until", "at"}`, `{"type": "done", "tokens"}` or
/// `{"type": "done", "error"}` (the exception, not raised).
pub(crate) fn output<'py>(py: Python<'py>, output: Output) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match output {
        Output::Sign(jwt) => {
            dict.set_item("type", "sign")?;
            dict.set_item("jwt", PyUnsignedJwt::new(jwt))?;
        }
        Output::Send(batch) => {
            dict.set_item("type", "send")?;
            let requests: Vec<PyLoginRequest> = batch.into_iter().map(PyLoginRequest::new).collect();
            dict.set_item("requests", requests)?;
        }
        Output::AwaitAnswers => dict.set_item("type", "await")?,
        Output::WaitUntil(at) => {
            dict.set_item("type", "wait_until")?;
            dict.set_item("at", at.as_millis())?;
        }
        Output::Done(outcome) => done(py, &dict, outcome)?,
    }
    Ok(dict)
}

/// Fills a `done` dict with the tokens or the error.
pub(crate) fn done(
    py: Python<'_>,
    dict: &Bound<'_, PyDict>,
    outcome: Result<std::sync::Arc<symphony_auth_core::Tokens>, symphony_auth_core::AuthError>,
) -> PyResult<()> {
    dict.set_item("type", "done")?;
    match outcome {
        Ok(tokens) => dict.set_item("tokens", PyTokens { tokens }),
        Err(error) => dict.set_item("error", auth_error(py, &error).into_value(py)),
    }
}

/// A transport failure from its kind name and a detail.
pub(crate) fn failure(kind: &str, detail: &str) -> PyResult<TransportFailure> {
    Ok(TransportFailure::new(kind_of(kind)?, detail))
}

/// The sans-IO authentication machine: it says what to do (`poll_output`), is told what happened (a signed JWT,
/// an answer, a failure, the time) and never does I/O itself. For applications with their own HTTP client; the
/// same machine the Rust drivers run.
#[pyclass(frozen, name = "Authenticator", module = "symphony_auth")]
pub(crate) struct PyAuthenticator {
    machine: Mutex<Authenticator>,
}

impl PyAuthenticator {
    /// Runs `work` on the machine with the GIL released: the machine traces under its lock, and tracing into
    /// Python takes the GIL, so the lock is never waited for while the GIL is held.
    fn machine<T: Send>(&self, py: Python<'_>, work: impl FnOnce(&mut Authenticator) -> T + Send) -> T {
        py.detach(|| work(&mut lock(&self.machine)))
    }
}

#[pymethods]
impl PyAuthenticator {
    /// A machine with `config`; `seed` drives the retry jitter.
    #[new]
    #[pyo3(signature = (config, seed = 0))]
    fn new(config: &PyConfig, seed: u64) -> Self {
        Self { machine: Mutex::new(Authenticator::new(config.config.clone(), seed)) }
    }

    /// What to do now (see `output`): a dict whose `type` is `sign`, `send`, `await`, `wait_until` or `done`.
    fn poll_output<'py>(&self, py: Python<'py>, now_ms: u64) -> PyResult<Bound<'py, PyDict>> {
        let out = self.machine(py, |m| m.poll_output(UnixTime::from_millis(now_ms)));
        output(py, out)
    }

    /// Hands back the JWT of the last `sign` output, signed (or its signing failure).
    fn supply_jwt(&self, py: Python<'_>, signed: &PySignedJwt, now_ms: u64) -> PyResult<()> {
        let signed = signed.take()?;
        self.machine(py, |m| m.supply_jwt(signed, UnixTime::from_millis(now_ms)));
        Ok(())
    }

    /// Reports that signing failed, with a reason that holds no secret.
    fn supply_signing_failure(&self, py: Python<'_>, reason: &str, now_ms: u64) {
        let failure = Err(SignError(reason.to_owned()));
        self.machine(py, |m| m.supply_jwt(failure, UnixTime::from_millis(now_ms)));
    }

    /// The answer to login request `id`. Raises `UsageError` for an id that is not outstanding.
    #[pyo3(signature = (id, status, headers, body, now_ms))]
    fn handle_response(
        &self,
        py: Python<'_>,
        id: u64,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        now_ms: u64,
    ) -> PyResult<()> {
        let response = convert::response(status, headers, body)?;
        self.machine(py, |m| m.handle_response(RequestId::from_u64(id), &response, UnixTime::from_millis(now_ms)))
            .map_err(|e| usage_error(&e))
    }

    /// Login request `id` failed below HTTP: `kind` is `timeout`, `connect`, `reset`, `tls`, `refused` or
    /// `other`. Raises `UsageError` for an id that is not outstanding.
    fn handle_failure(&self, py: Python<'_>, id: u64, kind: &str, detail: &str, now_ms: u64) -> PyResult<()> {
        let failure = failure(kind, detail)?;
        self.machine(py, |m| m.handle_failure(RequestId::from_u64(id), failure, UnixTime::from_millis(now_ms)))
            .map_err(|e| usage_error(&e))
    }

    /// Time passed: a wait is over, or requests out for too long time out.
    fn handle_timeout(&self, py: Python<'_>, now_ms: u64) {
        self.machine(py, |m| m.handle_timeout(UnixTime::from_millis(now_ms)));
    }

    /// Asks for a new login; whether one began.
    fn refresh(&self, py: Python<'_>, now_ms: u64) -> bool {
        self.machine(py, |m| m.refresh(UnixTime::from_millis(now_ms)))
    }

    /// An API call with the tokens of `generation` was answered 401: `"expired"`, `"already_expired"` or
    /// `{"stale": current}` (newer tokens exist). Raises `UsageError` for a generation never issued.
    fn report_unauthorized<'py>(&self, py: Python<'py>, generation: u64) -> PyResult<Bound<'py, PyAny>> {
        let outcome = self
            .machine(py, |m| m.report_unauthorized(symphony_auth_core::Generation::from_u64(generation)))
            .map_err(|e| usage_error(&e))?;
        Ok(match outcome {
            UnauthorizedOutcome::Stale { current } => {
                let dict = PyDict::new(py);
                dict.set_item("stale", current.get())?;
                dict.into_any()
            }
            UnauthorizedOutcome::Expired => "expired".into_pyobject(py)?.into_any(),
            _ => "already_expired".into_pyobject(py)?.into_any(),
        })
    }

    /// The requests handed out will never be answered (the task driving them went away).
    fn abandon_requests(&self, py: Python<'_>, now_ms: u64) {
        self.machine(py, |m| m.abandon_requests(UnixTime::from_millis(now_ms)));
    }

    /// The next event (a dict), or None.
    fn poll_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let next = self.machine(py, Authenticator::poll_event);
        next.map(|e| event(py, &e)).transpose()
    }

    /// Where the machine stands, as a dict.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.machine(py, |m| m.state());
        convert::state(py, state)
    }

    /// The current tokens, or None.
    fn tokens(&self, py: Python<'_>) -> Option<PyTokens> {
        self.machine(py, |m| m.tokens()).map(|tokens| PyTokens { tokens })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.machine(py, |m| {
            format!("Authenticator(username={:?}, state={:?})", m.config().username().as_str(), m.state())
        })
    }
}
