//! `Flight`: the core's single flight and API-call step, for a driver written in Python (`HttpxAuth`). The
//! Python side only sends, waits and wakes; who leads a login, what a follower gets and what a 401 means are
//! decided here by the core.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use symphony_auth_core::{
    AccessToken, ApiCall, ApiError, ApiStep, Bearer, BearerAuth, BearerStep, Caller, Flight, Generation, Report,
    RequestId, Step, UnixTime, Want,
};

use crate::config::PyConfig;
use crate::convert::{self, PyTokens};
use crate::errors::{UsageError, access_token_error, bot_error, usage_error};
use crate::machine::{PyLoginRequest, PySignedJwt, PyUnsignedJwt, event, failure, lock};

/// One caller of a `Flight`: made by `join`, polled until `done`, or left.
#[pyclass(frozen, name = "FlightCaller", module = "symphony_auth")]
pub(crate) struct PyCaller {
    caller: Mutex<Option<Caller>>,
}

/// An access token (Common JWT) from the flight, for `ApiCall.request_with`. Its `repr` never shows the token.
#[pyclass(frozen, name = "AccessToken", module = "symphony_auth")]
pub(crate) struct PyAccessToken {
    token: AccessToken,
}

#[pymethods]
impl PyAccessToken {
    /// The token, without its `Bearer ` prefix. Never log it.
    fn expose_secret(&self) -> &str {
        self.token.expose_secret()
    }

    /// The login whose session token obtained it.
    #[getter]
    fn generation(&self) -> u64 {
        self.token.generation().get()
    }

    /// When it expires (ms since the epoch).
    #[getter]
    fn expires_at(&self) -> u64 {
        self.token.expires_at().as_millis()
    }

    /// From when the flight refreshes it rather than hands it out (ms since the epoch): the expiry minus the leeway.
    #[getter]
    fn refresh_at(&self) -> u64 {
        self.token.refresh_at().as_millis()
    }

    fn __repr__(&self) -> String {
        format!("AccessToken(generation={}, expires_at={})", self.generation(), self.expires_at())
    }
}

/// One API call through a `Flight`: the request, the tokens it was last sent with, its replay and retry counts.
#[pyclass(frozen, name = "ApiCall", module = "symphony_auth")]
pub(crate) struct PyApiCall {
    call: Mutex<ApiCall>,
}

#[pymethods]
impl PyApiCall {
    /// The request to send now with `tokens` attached: `(method, url, [(name, value)], body)`.
    fn request<'py>(&self, py: Python<'py>, tokens: &PyTokens) -> PyResult<Bound<'py, PyAny>> {
        let request = py.detach(|| lock(&self.call).request(&tokens.tokens));
        convert::request_parts(py, &request).into_pyobject(py).map(Bound::into_any)
    }

    /// The request to send now with `tokens` and the bearer the flight gave for it (`bearer`: an AccessToken, or
    /// None when `Flight.bearer` answered `not_needed`): `(method, url, [(name, value)], body)`.
    #[pyo3(signature = (tokens, bearer = None))]
    fn request_with<'py>(
        &self,
        py: Python<'py>,
        tokens: &PyTokens,
        bearer: Option<&PyAccessToken>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = py.detach(|| lock(&self.call).request_with(&tokens.tokens, bearer.map(|b| &b.token)));
        convert::request_parts(py, &request).into_pyobject(py).map(Bound::into_any)
    }

    /// Whether the call carries a Common JWT: ask `Flight.bearer` before each attempt.
    #[getter]
    fn wants_bearer(&self, py: Python<'_>) -> bool {
        py.detach(|| lock(&self.call).wants_bearer())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        py.detach(|| format!("ApiCall(target={:?})", lock(&self.call).target()))
    }
}

/// The core's single flight: many callers, one login. Thread-safe; for drivers written in Python.
#[pyclass(frozen, name = "Flight", module = "symphony_auth")]
pub(crate) struct PyFlight {
    flight: Mutex<Flight>,
}

#[pymethods]
impl PyFlight {
    /// A flight over a new machine with `config`; `seed` drives the retry jitter.
    #[new]
    #[pyo3(signature = (config, seed = 0))]
    fn new(config: &PyConfig, seed: u64) -> Self {
        Self { flight: Mutex::new(Flight::new(symphony_auth_core::Authenticator::new(config.config.clone(), seed))) }
    }

    /// Joins: `want` is `"current"` (any tokens), `"fresh"` (a new login) or `"newer"` (tokens newer than
    /// `generation`, which an API call was refused with: reported to the machine as a 401).
    #[pyo3(signature = (want = "current", generation = None))]
    fn join(&self, py: Python<'_>, want: &str, generation: Option<u64>) -> PyResult<PyCaller> {
        let want = match (want, generation) {
            ("current", None) => Want::Current,
            ("fresh", None) => Want::Fresh,
            ("newer", Some(generation)) => Want::Newer(Generation::from_u64(generation)),
            _ => {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "want is \"current\" or \"fresh\" without a generation, or \"newer\" with one",
                ));
            }
        };
        let caller = self.flight(py, |flight| flight.join(want)).map_err(|e| usage_error(&e))?;
        Ok(PyCaller { caller: Mutex::new(Some(caller)) })
    }

    /// The caller's next step, a dict: `sign` (`jwt`), `send` (`requests`), `await`, `wait_until` (`at`),
    /// `follow` (wait to be woken), or `done` (`tokens` or `error`, and `wake`: whether to wake the followers).
    /// `events` lists what happened, for logs.
    fn poll<'py>(&self, py: Python<'py>, caller: &PyCaller, now_ms: u64) -> PyResult<Bound<'py, PyDict>> {
        let polled = py.detach(|| {
            let mut slot = lock(&caller.caller);
            let inner = slot.as_mut()?;
            let mut flight = lock(&self.flight);
            let step = flight.poll(inner, UnixTime::from_millis(now_ms));
            let events: Vec<_> = std::iter::from_fn(|| flight.poll_event()).collect();
            if matches!(step, Step::Done { .. }) {
                *slot = None;
            }
            Some((step, events))
        });
        let Some((step, events)) = polled else {
            return Err(UsageError::new_err("this caller is done or has left"));
        };
        let dict = PyDict::new(py);
        match step {
            Step::Sign(jwt) => {
                dict.set_item("type", "sign")?;
                dict.set_item("jwt", PyUnsignedJwt::new(jwt))?;
            }
            Step::Send(batch) => {
                dict.set_item("type", "send")?;
                let requests: Vec<PyLoginRequest> = batch.into_iter().map(PyLoginRequest::new).collect();
                dict.set_item("requests", requests)?;
            }
            Step::AwaitAnswers => dict.set_item("type", "await")?,
            Step::WaitUntil(at) => {
                dict.set_item("type", "wait_until")?;
                dict.set_item("at", at.as_millis())?;
            }
            Step::Follow => dict.set_item("type", "follow")?,
            Step::Done { outcome, wake_followers } => {
                crate::machine::done(py, &dict, outcome)?;
                dict.set_item("wake", wake_followers)?;
            }
        }
        let events = events.iter().map(|e| event(py, e)).collect::<PyResult<Vec<_>>>()?;
        dict.set_item("events", events)?;
        Ok(dict)
    }

    /// The caller goes away before its `done` (cancelled, failed): returns whether to wake the followers, one of
    /// which takes the login over.
    fn leave(&self, py: Python<'_>, caller: &PyCaller, now_ms: u64) -> bool {
        py.detach(|| match lock(&caller.caller).take() {
            Some(caller) => lock(&self.flight).leave(&caller, UnixTime::from_millis(now_ms)),
            None => false,
        })
    }

    /// Reports the signed JWT of a `sign` step.
    fn report_signed(&self, py: Python<'_>, signed: &PySignedJwt, now_ms: u64) -> PyResult<()> {
        let signed = signed.take()?;
        self.report(py, Report::Signed(signed), now_ms)
    }

    /// Reports the answer to login request `id`.
    #[pyo3(signature = (id, status, headers, body, now_ms))]
    fn report_answer(
        &self,
        py: Python<'_>,
        id: u64,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        now_ms: u64,
    ) -> PyResult<()> {
        let response = convert::response(status, headers, body)?;
        self.report(py, Report::Answer(RequestId::from_u64(id), Ok(response)), now_ms)
    }

    /// Reports that login request `id` failed below HTTP (`kind`: `timeout`, `connect`, `reset`, `tls`,
    /// `refused`, `other`; `detail` must hold no secret).
    fn report_failure(&self, py: Python<'_>, id: u64, kind: &str, detail: &str, now_ms: u64) -> PyResult<()> {
        let failure = failure(kind, detail)?;
        self.report(py, Report::Answer(RequestId::from_u64(id), Err(failure)), now_ms)
    }

    /// Reports that the requests handed out will never be answered.
    fn report_lost(&self, py: Python<'_>, now_ms: u64) -> PyResult<()> {
        self.report(py, Report::Lost, now_ms)
    }

    /// Starts an API call; raises `UsageError` for a URL outside the configured services (tokens are never sent
    /// anywhere else). `bearer_auth`: the call carries the Common JWT even where the configuration does not put
    /// it (see `Config.with_common_jwt`).
    #[pyo3(signature = (method, url, headers = None, body = None, *, bearer_auth = false))]
    fn api_call(
        &self,
        py: Python<'_>,
        method: &str,
        url: &str,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        bearer_auth: bool,
    ) -> PyResult<PyApiCall> {
        let mut request = convert::request(method, url, headers, body)?;
        if bearer_auth {
            request.extensions_mut().insert(BearerAuth);
        }
        let call = self.flight(py, |flight| flight.api_call(request)).map_err(|e| usage_error(&e))?;
        Ok(PyApiCall { call: Mutex::new(call) })
    }

    /// What came of an API call's last attempt: a status and headers (the body is not needed), or a failure
    /// below HTTP (`status` None, `kind` and `detail`). Returns a dict: `return`, `relogin` (`generation`: join
    /// with `"newer"` and that generation), `retry_at` (`at`) or `fail` (`error`, the exception, not raised, and
    /// `details`: `class` `unauthorized` with `generation`, or `transport` with `attempts`).
    #[pyo3(signature = (call, status, headers, now_ms, kind = None, detail = ""))]
    #[allow(clippy::too_many_arguments)]
    fn handle_api<'py>(
        &self,
        py: Python<'py>,
        call: &PyApiCall,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
        now_ms: u64,
        kind: Option<&str>,
        detail: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let outcome = match status {
            Some(status) => Ok(convert::response(status, headers, None)?),
            None => Err(failure(kind.unwrap_or("other"), detail)?),
        };
        let step =
            self.flight(py, |flight| flight.handle_api(&mut lock(&call.call), outcome, UnixTime::from_millis(now_ms)));
        let dict = PyDict::new(py);
        match step {
            ApiStep::Return(_) => dict.set_item("type", "return")?,
            ApiStep::Relogin(generation) => {
                dict.set_item("type", "relogin")?;
                dict.set_item("generation", generation.get())?;
            }
            ApiStep::RetryAt(at) => {
                dict.set_item("type", "retry_at")?;
                dict.set_item("at", at.as_millis())?;
            }
            ApiStep::Fail(error) => {
                dict.set_item("type", "fail")?;
                let details = PyDict::new(py);
                match &error {
                    ApiError::Unauthorized { generation } => {
                        details.set_item("class", "unauthorized")?;
                        details.set_item("generation", generation)?;
                    }
                    ApiError::Transport { attempts, .. } => {
                        details.set_item("class", "transport")?;
                        details.set_item("attempts", attempts)?;
                    }
                    _ => details.set_item("class", "other")?,
                }
                dict.set_item("details", details)?;
                dict.set_item("error", bot_error(py, &error.into()).into_value(py))?;
            }
        }
        Ok(dict)
    }

    /// What `call` needs before it is sent with `tokens`, a dict: `not_needed`; `attach` (`token`, an
    /// AccessToken); `fetch` (`request`: the A5 call, `(method, url, [(name, value)], body)`, whose answer goes to
    /// `handle_bearer`, or `abandon_bearer` if it never comes); `follow` (another caller's A5 call is out: wait
    /// until it is handled or abandoned, then ask again); `relogin` (`generation`: join with `"newer"`, then ask
    /// again).
    fn bearer<'py>(
        &self,
        py: Python<'py>,
        call: &PyApiCall,
        tokens: &PyTokens,
        now_ms: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let step =
            self.flight(py, |flight| flight.bearer(&lock(&call.call), &tokens.tokens, UnixTime::from_millis(now_ms)));
        let dict = PyDict::new(py);
        match step {
            Bearer::NotNeeded => dict.set_item("type", "not_needed")?,
            Bearer::Attach(token) => {
                dict.set_item("type", "attach")?;
                dict.set_item("token", PyAccessToken { token })?;
            }
            Bearer::Fetch(request) => {
                dict.set_item("type", "fetch")?;
                dict.set_item("request", convert::request_parts(py, &request))?;
            }
            Bearer::Follow => dict.set_item("type", "follow")?,
            Bearer::Relogin(generation) => {
                dict.set_item("type", "relogin")?;
                dict.set_item("generation", generation.get())?;
            }
        }
        Ok(dict)
    }

    /// The answer to the A5 call of a `fetch` (`status`, `headers`, `body`), or its failure below HTTP (`status`
    /// None, `kind` and `detail`). Returns a dict: `attach` (`token`), `relogin` (`generation`) or `fail`
    /// (`error`, the exception, not raised). Wake the callers that follow it afterwards.
    #[pyo3(signature = (call, tokens, status, headers, body, now_ms, kind = None, detail = ""))]
    #[allow(clippy::too_many_arguments)]
    fn handle_bearer<'py>(
        &self,
        py: Python<'py>,
        call: &PyApiCall,
        tokens: &PyTokens,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
        now_ms: u64,
        kind: Option<&str>,
        detail: &str,
    ) -> PyResult<Bound<'py, PyDict>> {
        let outcome = match status {
            Some(status) => Ok(convert::response(status, headers, body)?),
            None => Err(failure(kind.unwrap_or("other"), detail)?),
        };
        let now = UnixTime::from_millis(now_ms);
        let step = self.flight(py, |flight| flight.handle_bearer(&mut lock(&call.call), &tokens.tokens, outcome, now));
        let dict = PyDict::new(py);
        match step {
            BearerStep::Attach(token) => {
                dict.set_item("type", "attach")?;
                dict.set_item("token", PyAccessToken { token })?;
            }
            BearerStep::Relogin(generation) => {
                dict.set_item("type", "relogin")?;
                dict.set_item("generation", generation.get())?;
            }
            BearerStep::Fail(error) => {
                dict.set_item("type", "fail")?;
                dict.set_item("error", access_token_error(py, &error).into_value(py))?;
            }
        }
        Ok(dict)
    }

    /// The A5 call of a `fetch` with the tokens of `generation` will never be answered (its caller gave up): the
    /// next caller to ask fetches. Wake the followers afterwards.
    fn abandon_bearer(&self, py: Python<'_>, generation: u64) {
        self.flight(py, |flight| flight.abandon_bearer(Generation::from_u64(generation)));
    }

    /// How many access tokens A5 has given this flight.
    #[getter]
    fn common_jwt_refreshes(&self, py: Python<'_>) -> u64 {
        self.flight(py, |flight| flight.common_jwt_refreshes())
    }

    /// Where the machine stands, as a dict.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let state = self.flight(py, |flight| flight.state());
        convert::state(py, state)
    }

    /// Whether a caller is leading a login now.
    fn has_leader(&self, py: Python<'_>) -> bool {
        self.flight(py, |flight| flight.has_leader())
    }
}

impl PyFlight {
    /// Runs `work` on the flight with the GIL released: the core traces under the flight's lock, and tracing into
    /// Python takes the GIL, so the lock is never waited for while the GIL is held.
    fn flight<T: Send>(&self, py: Python<'_>, work: impl FnOnce(&mut Flight) -> T + Send) -> T {
        py.detach(|| work(&mut lock(&self.flight)))
    }

    fn report(&self, py: Python<'_>, report: Report, now_ms: u64) -> PyResult<()> {
        self.flight(py, |flight| flight.report(report, UnixTime::from_millis(now_ms))).map_err(|e| usage_error(&e))
    }
}
