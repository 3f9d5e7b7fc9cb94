//! The two handles that drive logins: `SymphonyAuthAuthenticator` (the machine, for one caller) and
//! `SymphonyAuthFlight` (the machine shared by many callers, one of which leads each login). Their inputs are the
//! same calls on the core; only how the next step is asked for differs.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, StatusCode};
use symphony_auth_core::{
    Authenticator, Caller, Endpoints, Event, Flight, Generation, HttpResponse, RequestId, SignError, SignedJwt, State,
    TransportFailure, TransportKind, UnauthorizedOutcome, UnixTime, UsageError, Want,
};
use zeroize::Zeroizing;

use crate::abi::{
    Failure, Handle, LastError, Live, Out, SymphonyAuthBytes, SymphonyAuthHeader, SymphonyAuthStatus, bytes, code,
    free_handle, guard, into_handle, items, last_error, text, with_handle,
};
use crate::event::SymphonyAuthEvent;
use crate::output::{SymphonyAuthOutput, SymphonyAuthSignature};
use crate::tokens::SymphonyAuthTokens;

/// How a request failed below HTTP (`symphony_auth_*_handle_failure`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthTransportKind {
    /// Not a transport failure (in results only).
    None = 0,
    /// No answer in time (connect, send or receive). Retried.
    Timeout = 1,
    /// The connection could not be made: refused, unreachable, name not resolved. Retried.
    Connect = 2,
    /// The connection closed or reset before a complete answer. Retried.
    Reset = 3,
    /// The TLS handshake failed. Not retried: it needs a configuration change.
    Tls = 4,
    /// Anything else. Retried.
    Other = 5,
    /// The caller refused to send the request because sending it would expose a secret. Not retried.
    Refused = 6,
}

impl SymphonyAuthTransportKind {
    pub(crate) fn of(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Timeout => Self::Timeout,
            TransportKind::Connect => Self::Connect,
            TransportKind::Reset => Self::Reset,
            TransportKind::Tls => Self::Tls,
            TransportKind::Refused => Self::Refused,
            _ => Self::Other,
        }
    }

    fn decode(value: u32) -> Option<TransportKind> {
        Some(match value {
            1 => TransportKind::Timeout,
            2 => TransportKind::Connect,
            3 => TransportKind::Reset,
            4 => TransportKind::Tls,
            5 => TransportKind::Other,
            6 => TransportKind::Refused,
            _ => return None,
        })
    }
}

/// Where the machine stands.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthStateKind {
    /// No state (a NULL handle).
    None = 0,
    /// No tokens have been issued, or the last login failed.
    NeedsSession = 1,
    /// The session token is in hand; the key-manager token (or the agent's version) is awaited.
    NeedsKeyManager = 2,
    /// Tokens are available.
    Ready = 3,
    /// The tokens of `generation` were refused with a 401; a new login is needed.
    Expired = 4,
    /// A state this version of the header does not know.
    Other = 255,
}

/// Where the machine stands, with the generation and whether a login is under way.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthState {
    /// The state.
    pub kind: SymphonyAuthStateKind,
    /// `READY`: the tokens' generation; `EXPIRED`: the expired generation; 0 otherwise.
    pub generation: u64,
    /// Whether a login is under way (for `READY`: a refresh, the current tokens still in use).
    pub logging_in: bool,
}

impl SymphonyAuthState {
    fn of(state: State) -> Self {
        let (kind, generation, logging_in) = match state {
            State::NeedsSession { logging_in } => (SymphonyAuthStateKind::NeedsSession, 0, logging_in),
            State::NeedsKeyManager => (SymphonyAuthStateKind::NeedsKeyManager, 0, true),
            State::Ready { generation, refreshing } => (SymphonyAuthStateKind::Ready, generation.get(), refreshing),
            State::Expired { generation, logging_in } => (SymphonyAuthStateKind::Expired, generation.get(), logging_in),
            other => (SymphonyAuthStateKind::Other, 0, other.is_logging_in()),
        };
        Self { kind, generation, logging_in }
    }
}

/// What a reported 401 led to.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthUnauthorized {
    /// Newer tokens were issued since: use those (their generation is written to `current`).
    Stale = 1,
    /// The reported tokens were the current ones: they are expired, and the next poll logs in again.
    Expired = 2,
    /// The reported tokens had been expired already.
    AlreadyExpired = 3,
    /// An outcome this version of the header does not know.
    Other = 255,
}

/// What a caller of a flight wants (`symphony_auth_flight_join`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthWant {
    /// Tokens: the current ones, or those of the next login.
    Current = 1,
    /// A new login, even though tokens are available; a login under way is joined rather than doubled.
    Fresh = 2,
    /// Tokens newer than `generation`, whose tokens an API call was refused with a 401 (reported here, once).
    Newer = 3,
}

/// The inputs an authenticator and a flight share.
trait Inputs {
    fn supply(&mut self, signed: Result<SignedJwt, SignError>, now: UnixTime);
    fn response(&mut self, id: RequestId, response: &HttpResponse, now: UnixTime) -> Result<(), UsageError>;
    fn failure(&mut self, id: RequestId, failure: TransportFailure, now: UnixTime) -> Result<(), UsageError>;
    fn abandon(&mut self, now: UnixTime);
    fn next_event(&mut self) -> Option<Event>;
    fn machine(&self) -> &Authenticator;
}

impl Inputs for Authenticator {
    fn supply(&mut self, signed: Result<SignedJwt, SignError>, now: UnixTime) {
        self.supply_jwt(signed, now);
    }
    fn response(&mut self, id: RequestId, response: &HttpResponse, now: UnixTime) -> Result<(), UsageError> {
        self.handle_response(id, response, now)
    }
    fn failure(&mut self, id: RequestId, failure: TransportFailure, now: UnixTime) -> Result<(), UsageError> {
        self.handle_failure(id, failure, now)
    }
    fn abandon(&mut self, now: UnixTime) {
        self.abandon_requests(now);
    }
    fn next_event(&mut self) -> Option<Event> {
        self.poll_event()
    }
    fn machine(&self) -> &Authenticator {
        self
    }
}

impl Inputs for Flight {
    fn supply(&mut self, signed: Result<SignedJwt, SignError>, now: UnixTime) {
        self.supply_jwt(signed, now);
    }
    fn response(&mut self, id: RequestId, response: &HttpResponse, now: UnixTime) -> Result<(), UsageError> {
        self.handle_response(id, response, now)
    }
    fn failure(&mut self, id: RequestId, failure: TransportFailure, now: UnixTime) -> Result<(), UsageError> {
        self.handle_failure(id, failure, now)
    }
    fn abandon(&mut self, now: UnixTime) {
        self.abandon_requests(now);
    }
    fn next_event(&mut self) -> Option<Event> {
        self.poll_event()
    }
    fn machine(&self) -> &Authenticator {
        Flight::machine(self)
    }
}

/// A handle over something that takes [`Inputs`].
trait Driven: Handle {
    fn inputs(&mut self) -> &mut dyn Inputs;
    fn endpoints(&self) -> &Arc<Endpoints>;
}

/// The sans-IO authentication machine for one bot. Not thread-safe: use it from one thread at a time (it may move
/// between threads); to share one login between threads, make a `SymphonyAuthFlight` of it.
#[derive(Debug)]
pub struct SymphonyAuthAuthenticator {
    machine: Authenticator,
    endpoints: Arc<Endpoints>,
    error: LastError,
}

impl SymphonyAuthAuthenticator {
    pub(crate) fn new(machine: Authenticator) -> Self {
        let endpoints = Arc::new(machine.config().endpoints().clone());
        Self { machine, endpoints, error: LastError::default() }
    }
}

impl Handle for SymphonyAuthAuthenticator {
    fn errors(&self) -> &LastError {
        &self.error
    }
    fn errors_mut(&mut self) -> &mut LastError {
        &mut self.error
    }
}

impl Driven for SymphonyAuthAuthenticator {
    fn inputs(&mut self) -> &mut dyn Inputs {
        &mut self.machine
    }
    fn endpoints(&self) -> &Arc<Endpoints> {
        &self.endpoints
    }
}

/// One machine shared by many callers: one leads each login, the others follow and get the same tokens or the
/// same error. Not thread-safe by itself: callers on several threads keep it behind their own mutex, and release
/// the mutex while they sign, send or wait.
#[derive(Debug)]
pub struct SymphonyAuthFlight {
    flight: Flight,
    endpoints: Arc<Endpoints>,
    error: LastError,
}

impl Handle for SymphonyAuthFlight {
    fn errors(&self) -> &LastError {
        &self.error
    }
    fn errors_mut(&mut self) -> &mut LastError {
        &mut self.error
    }
}

impl Driven for SymphonyAuthFlight {
    fn inputs(&mut self) -> &mut dyn Inputs {
        &mut self.flight
    }
    fn endpoints(&self) -> &Arc<Endpoints> {
        &self.endpoints
    }
}

/// One caller's place in a flight, from `symphony_auth_flight_join` to `symphony_auth_flight_leave`.
#[derive(Debug)]
pub struct SymphonyAuthCaller {
    caller: Caller,
}

fn at(now_ms: u64) -> UnixTime {
    UnixTime::from_millis(now_ms)
}

/// The answer C describes, as the core reads it.
///
/// # Safety
/// `headers` points at `count` headers whose views point at readable bytes; `body` at `body_len` bytes.
unsafe fn response(
    status: u16,
    headers: *const SymphonyAuthHeader,
    count: usize,
    body: *const u8,
    body_len: usize,
) -> Result<HttpResponse, Failure> {
    let status =
        StatusCode::from_u16(status).map_err(|_| Failure::invalid(format_args!("status {status} is not 100..=999")))?;
    // SAFETY: the caller promises `count` readable headers at `headers` (NULL when 0).
    let headers = unsafe { items(headers, count, "headers")? };
    // SAFETY: the caller promises `body_len` readable bytes at `body` (NULL when 0).
    let mut response = http::Response::new(unsafe { bytes(body, body_len, "body")? }.to_vec());
    *response.status_mut() = status;
    for (index, header) in headers.iter().enumerate() {
        // SAFETY: the caller promises that each header's views point at readable bytes.
        let name = unsafe { bytes(header.name.ptr, header.name.len, &format!("headers[{index}].name"))? };
        // SAFETY: as above.
        let value = unsafe { bytes(header.value.ptr, header.value.len, &format!("headers[{index}].value"))? };
        // Neither is repeated in the message: a header of an answer may carry a credential.
        let name = HeaderName::from_bytes(name).map_err(|_| {
            Failure::invalid(format_args!("headers[{index}]: the name is not a valid HTTP header name"))
        })?;
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            Failure::invalid(format_args!("headers[{index}]: the value is not a valid HTTP header value"))
        })?;
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

/// # Safety
/// `handle` is NULL or live; `signature` is NULL or a signature handle not freed yet, which is taken in every case.
unsafe fn supply_signature<H: Driven>(
    handle: *mut H,
    signature: *mut SymphonyAuthSignature,
    now_ms: u64,
) -> SymphonyAuthStatus {
    let signature = (!signature.is_null()).then(|| {
        // SAFETY: the caller hands over a signature handle made by `symphony_auth_output_sign` or
        // `symphony_auth_output_with_signature`, not freed yet.
        unsafe { Box::from_raw(signature) }
    });
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        let signature = signature.ok_or_else(|| Failure::null("signature"))?;
        handle.inputs().supply(signature.into_result(), at(now_ms));
        Ok(())
    })
}

/// # Safety
/// `handle` is NULL or live; `reason` points at `reason_len` bytes.
unsafe fn supply_sign_failure<H: Driven>(
    handle: *mut H,
    reason: *const u8,
    reason_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        // SAFETY: the caller promises `reason_len` readable bytes at `reason`.
        let reason = unsafe { text(reason, reason_len, "reason")? };
        handle.inputs().supply(Err(SignError(reason.to_owned())), at(now_ms));
        Ok(())
    })
}

/// # Safety
/// As [`response`], and `handle` is NULL or live.
#[allow(clippy::too_many_arguments)]
unsafe fn handle_response<H: Driven>(
    handle: *mut H,
    request_id: u64,
    status: u16,
    headers: *const SymphonyAuthHeader,
    header_count: usize,
    body: *const u8,
    body_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        // SAFETY: the caller promises readable headers and body, as `response` needs.
        let answer = unsafe { response(status, headers, header_count, body, body_len)? };
        let result = handle.inputs().response(RequestId::from_u64(request_id), &answer, at(now_ms));
        // A login answer's body holds a token: the copy made here is wiped.
        drop(Zeroizing::new(answer.into_body()));
        Ok(result?)
    })
}

/// # Safety
/// `handle` is NULL or live; `detail` points at `detail_len` bytes.
unsafe fn handle_failure<H: Driven>(
    handle: *mut H,
    request_id: u64,
    kind: u32,
    detail: *const u8,
    detail_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        let kind = code(kind, "SymphonyAuthTransportKind", SymphonyAuthTransportKind::decode)?;
        // SAFETY: the caller promises `detail_len` readable bytes at `detail`.
        let detail = unsafe { text(detail, detail_len, "detail")? };
        let failure = TransportFailure::new(kind, detail);
        Ok(handle.inputs().failure(RequestId::from_u64(request_id), failure, at(now_ms))?)
    })
}

/// # Safety
/// `handle` is NULL or live.
unsafe fn abandon_requests<H: Driven>(handle: *mut H, now_ms: u64) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        handle.inputs().abandon(at(now_ms));
        Ok(())
    })
}

/// # Safety
/// `handle` is NULL or live; `event` is NULL or valid for writing a pointer.
unsafe fn poll_event<H: Driven>(handle: *mut H, event: *mut *mut SymphonyAuthEvent) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        // SAFETY: the caller promises that `event` is NULL or valid for writing a pointer.
        let out = unsafe { Out::handle(event, "event")? };
        if let Some(next) = handle.inputs().next_event() {
            out.set(into_handle(SymphonyAuthEvent::new(next)));
        }
        Ok(())
    })
}

/// # Safety
/// `handle` is NULL or live; `state` is NULL or valid for writing a `SymphonyAuthState`.
unsafe fn state<H: Driven>(handle: *mut H, state: *mut SymphonyAuthState) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        // SAFETY: the caller promises that `state` is NULL or valid for writing a `SymphonyAuthState`.
        let out = unsafe { Out::new(state, "state")? };
        out.set(SymphonyAuthState::of(handle.inputs().machine().state()));
        Ok(())
    })
}

/// # Safety
/// `handle` is NULL or live; `tokens` is NULL or valid for writing a pointer.
unsafe fn tokens<H: Driven>(handle: *mut H, tokens: *mut *mut SymphonyAuthTokens) -> SymphonyAuthStatus {
    // SAFETY: the caller promises that `handle` is NULL or live and unaliased.
    let handle = unsafe { Live::new(handle) };
    with_handle(handle, |handle| {
        // SAFETY: the caller promises that `tokens` is NULL or valid for writing a pointer.
        let out = unsafe { Out::handle(tokens, "tokens")? };
        if let Some(current) = handle.inputs().machine().tokens() {
            out.set(into_handle(SymphonyAuthTokens::new(current, Arc::clone(handle.endpoints()))));
        }
        Ok(())
    })
}

// ----- The authenticator -----

/// Frees an authenticator. NULL is ignored. Outputs, tokens and events read from it stay valid: they own what
/// they show.
///
/// # Safety
/// `authenticator` is NULL or not freed yet (nor handed to `symphony_auth_flight_new`); it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_free(authenticator: *mut SymphonyAuthAuthenticator) {
    guard((), || {
        // SAFETY: `authenticator` is NULL or a handle not freed yet (the contract above).
        unsafe { free_handle(authenticator) }
    });
}

/// The message of the last failed call on `authenticator` (NUL-terminated as well); empty after a successful call.
/// Owned by `authenticator`, valid until the next call on it. Never holds a secret.
///
/// # Safety
/// `authenticator` is NULL (giving an absent view) or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_last_error(
    authenticator: *const SymphonyAuthAuthenticator,
) -> SymphonyAuthBytes {
    // SAFETY: `authenticator` is NULL or live, and nothing mutates it during the call (the contract above).
    unsafe { last_error(authenticator) }
}

/// What to do next, at `now_ms` (wall-clock milliseconds since the UNIX epoch): `*output` is a new output handle
/// (free it with `symphony_auth_output_free`) of kind `SIGN`, `SEND`, `AWAIT_ANSWERS`, `WAIT_UNTIL` or `DONE`.
/// Begins a login when there are no tokens and none is under way. Poll again after every input.
///
/// # Safety
/// `authenticator` is NULL or live; `output` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_poll_output(
    authenticator: *mut SymphonyAuthAuthenticator,
    now_ms: u64,
    output: *mut *mut SymphonyAuthOutput,
) -> SymphonyAuthStatus {
    // SAFETY: `authenticator` is NULL or live, and nothing else uses it during the call (the contract above).
    let authenticator = unsafe { Live::new(authenticator) };
    with_handle(authenticator, |auth| {
        // SAFETY: `output` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(output, "output")? };
        let next = auth.machine.poll_output(at(now_ms));
        out.set(into_handle(SymphonyAuthOutput::from_output(next, Arc::clone(&auth.endpoints))));
        Ok(())
    })
}

/// Hands the machine the signature made by `symphony_auth_output_sign` or `symphony_auth_output_with_signature`
/// (a signer's failure included: the login then fails with it). `signature` is taken and freed in every case,
/// failures included.
///
/// # Safety
/// `authenticator` is NULL or live; `signature` is NULL or a signature handle not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_supply_signature(
    authenticator: *mut SymphonyAuthAuthenticator,
    signature: *mut SymphonyAuthSignature,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { supply_signature(authenticator, signature, now_ms) }
}

/// Tells the machine that signing the JWT of a `SIGN` output failed elsewhere (an HSM refused, say): the login
/// fails with `reason`, which must hold no secret.
///
/// # Safety
/// `authenticator` is NULL or live; `reason` points at `reason_len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_supply_sign_failure(
    authenticator: *mut SymphonyAuthAuthenticator,
    reason: *const u8,
    reason_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { supply_sign_failure(authenticator, reason, reason_len, now_ms) }
}

/// The answer to login request `request_id`, whatever its status: the machine decides what it means. `headers`
/// (`header_count` of them) and `body` are the caller's and are copied; the copy of the body is wiped. `Usage` for
/// an id the machine never handed out; an answer to a request it gave up on is accepted and ignored.
///
/// # Safety
/// `authenticator` is NULL or live; `headers` is NULL (with a count of 0) or points at `header_count` headers
/// whose views point at readable bytes; `body` points at `body_len` bytes (NULL when 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_handle_response(
    authenticator: *mut SymphonyAuthAuthenticator,
    request_id: u64,
    status: u16,
    headers: *const SymphonyAuthHeader,
    header_count: usize,
    body: *const u8,
    body_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { handle_response(authenticator, request_id, status, headers, header_count, body, body_len, now_ms) }
}

/// Login request `request_id` failed below HTTP: `kind` is a `SymphonyAuthTransportKind` (not `NONE`), `detail`
/// the HTTP client's description, which must hold no secret. `Usage` for an unknown id.
///
/// # Safety
/// `authenticator` is NULL or live; `detail` points at `detail_len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_handle_failure(
    authenticator: *mut SymphonyAuthAuthenticator,
    request_id: u64,
    kind: u32,
    detail: *const u8,
    detail_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { handle_failure(authenticator, request_id, kind, detail, detail_len, now_ms) }
}

/// Time has passed: retries due by `now_ms` become requests at the next poll. Polling does this as well.
///
/// # Safety
/// `authenticator` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_handle_timeout(
    authenticator: *mut SymphonyAuthAuthenticator,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: `authenticator` is NULL or live, and nothing else uses it during the call (the contract above).
    let authenticator = unsafe { Live::new(authenticator) };
    with_handle(authenticator, |auth| {
        auth.machine.handle_timeout(at(now_ms));
        Ok(())
    })
}

/// Begins a login even though tokens are available (they stay in use until the new ones arrive) or a failed login
/// is cooling down, unless one is under way. `*began` (when not NULL) says whether one began.
///
/// # Safety
/// `authenticator` is NULL or live; `began` is NULL or valid for writing a `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_refresh(
    authenticator: *mut SymphonyAuthAuthenticator,
    now_ms: u64,
    began: *mut bool,
) -> SymphonyAuthStatus {
    // SAFETY: `authenticator` is NULL or live, and nothing else uses it during the call (the contract above).
    let authenticator = unsafe { Live::new(authenticator) };
    with_handle(authenticator, |auth| {
        // SAFETY: `began` is NULL or valid for writing a `bool` (the contract above).
        let out = unsafe { Out::optional(began) };
        let result = auth.machine.refresh(at(now_ms));
        if let Some(out) = out {
            out.set(result);
        }
        Ok(())
    })
}

/// An API call made with the tokens of `generation` was answered 401. If those are the current tokens they expire
/// and the next poll logs in again; if newer ones exist nothing changes: any number of 401s on one generation
/// cause one login. `*outcome` (a `SymphonyAuthUnauthorized`) and `*current` (for `STALE`, the latest
/// generation) are written when not NULL. `Usage` for a generation never issued.
///
/// # Safety
/// `authenticator` is NULL or live; `outcome` and `current` are NULL or valid for writing.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_report_unauthorized(
    authenticator: *mut SymphonyAuthAuthenticator,
    generation: u64,
    outcome: *mut SymphonyAuthUnauthorized,
    current: *mut u64,
) -> SymphonyAuthStatus {
    // SAFETY: `authenticator` is NULL or live, and nothing else uses it during the call (the contract above).
    let authenticator = unsafe { Live::new(authenticator) };
    with_handle(authenticator, |auth| {
        // SAFETY: `outcome` is NULL or valid for writing a `SymphonyAuthUnauthorized` (the contract above).
        let outcome = unsafe { Out::optional(outcome) };
        // SAFETY: `current` is NULL or valid for writing a `uint64_t` (the contract above).
        let current = unsafe { Out::optional(current) };
        let (kind, latest) = match auth.machine.report_unauthorized(Generation::from_u64(generation))? {
            UnauthorizedOutcome::Stale { current } => (SymphonyAuthUnauthorized::Stale, current.get()),
            UnauthorizedOutcome::Expired => (SymphonyAuthUnauthorized::Expired, generation),
            UnauthorizedOutcome::AlreadyExpired => (SymphonyAuthUnauthorized::AlreadyExpired, generation),
            _ => (SymphonyAuthUnauthorized::Other, auth.machine.latest_generation().get()),
        };
        if let Some(out) = outcome {
            out.set(kind);
        }
        if let Some(out) = current {
            out.set(latest);
        }
        Ok(())
    })
}

/// The requests handed out so far will never be reported (the thread sending them went away). Each counts as a
/// failed attempt, so the backoff still holds; late answers to them are accepted and ignored.
///
/// # Safety
/// `authenticator` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_abandon_requests(
    authenticator: *mut SymphonyAuthAuthenticator,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { abandon_requests(authenticator, now_ms) }
}

/// The next event, for logs and metrics: `*event` is a new event handle (free it with `symphony_auth_event_free`),
/// or NULL when there is none. Drain them after each input; the loop itself needs none.
///
/// # Safety
/// `authenticator` is NULL or live; `event` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_poll_event(
    authenticator: *mut SymphonyAuthAuthenticator,
    event: *mut *mut SymphonyAuthEvent,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { poll_event(authenticator, event) }
}

/// Where the machine stands, written to `*state`.
///
/// # Safety
/// `authenticator` is NULL or live; `state` is NULL or valid for writing a `SymphonyAuthState`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_state(
    authenticator: *mut SymphonyAuthAuthenticator,
    state_out: *mut SymphonyAuthState,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { state(authenticator, state_out) }
}

/// The current tokens: `*tokens` is a new tokens handle (free it with `symphony_auth_tokens_free`), or NULL when
/// there are none.
///
/// # Safety
/// `authenticator` is NULL or live; `tokens` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_tokens(
    authenticator: *mut SymphonyAuthAuthenticator,
    tokens_out: *mut *mut SymphonyAuthTokens,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { tokens(authenticator, tokens_out) }
}

// ----- The flight -----

/// Makes a flight of `authenticator`, which it takes: the authenticator handle is freed here and must not be used
/// again. NULL when `authenticator` is NULL (or on an internal error). Free the flight with
/// `symphony_auth_flight_free`.
///
/// # Safety
/// `authenticator` is NULL or an authenticator not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_new(
    authenticator: *mut SymphonyAuthAuthenticator,
) -> *mut SymphonyAuthFlight {
    if authenticator.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the caller hands over an authenticator made by `symphony_auth_authenticator_new`, not freed yet.
    let auth = unsafe { Box::from_raw(authenticator) };
    guard(std::ptr::null_mut(), move || {
        let SymphonyAuthAuthenticator { machine, endpoints, .. } = *auth;
        into_handle(SymphonyAuthFlight { flight: Flight::new(machine), endpoints, error: LastError::default() })
    })
}

/// Frees a flight. NULL is ignored. Callers not yet left must still be passed to `symphony_auth_flight_leave`
/// before it is freed, or freed with `symphony_auth_caller_free`.
///
/// # Safety
/// `flight` is NULL or not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_free(flight: *mut SymphonyAuthFlight) {
    guard((), || {
        // SAFETY: `flight` is NULL or a handle not freed yet (the contract above).
        unsafe { free_handle(flight) }
    });
}

/// The message of the last failed call on `flight` (NUL-terminated as well); empty after a successful call. Owned
/// by `flight`, valid until the next call on it.
///
/// # Safety
/// `flight` is NULL (giving an absent view) or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_last_error(flight: *const SymphonyAuthFlight) -> SymphonyAuthBytes {
    // SAFETY: `flight` is NULL or live, and nothing mutates it during the call (the contract above).
    unsafe { last_error(flight) }
}

/// A caller joins the flight wanting `want` (a `SymphonyAuthWant`; `generation` is read for `NEWER` only, whose
/// 401 is reported to the machine here). `*caller` is a new caller handle: poll it with `symphony_auth_flight_poll`
/// until `DONE`, then pass it to `symphony_auth_flight_leave`. `Usage` for a generation never issued.
///
/// # Safety
/// `flight` is NULL or live; `caller` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_join(
    flight: *mut SymphonyAuthFlight,
    want: u32,
    generation: u64,
    caller: *mut *mut SymphonyAuthCaller,
) -> SymphonyAuthStatus {
    // SAFETY: `flight` is NULL or live, and nothing else uses it during the call (the contract above).
    let flight = unsafe { Live::new(flight) };
    with_handle(flight, |flight| {
        // SAFETY: `caller` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(caller, "caller")? };
        let want = code(want, "SymphonyAuthWant", |value| match value {
            1 => Some(Want::Current),
            2 => Some(Want::Fresh),
            3 => Some(Want::Newer(Generation::from_u64(generation))),
            _ => None,
        })?;
        let joined = flight.flight.join(want)?;
        out.set(into_handle(SymphonyAuthCaller { caller: joined }));
        Ok(())
    })
}

/// The next step for `caller`: `*output` is a new output handle (free it with `symphony_auth_output_free`). Kinds
/// `SIGN`, `SEND`, `AWAIT_ANSWERS`, `WAIT_UNTIL`: this caller leads; do the work with the mutex released and report
/// it with the `symphony_auth_flight_*` inputs under the mutex, then poll again. `FOLLOW`: another caller leads;
/// wait (mutex released) until woken, then poll again. `DONE`: the caller's answer; when
/// `symphony_auth_output_wake_followers` says so, wake every waiting caller.
///
/// # Safety
/// `flight` is NULL or live; `caller` is NULL or a caller of this flight not left yet; `output` is NULL or valid
/// for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_poll(
    flight: *mut SymphonyAuthFlight,
    caller: *mut SymphonyAuthCaller,
    now_ms: u64,
    output: *mut *mut SymphonyAuthOutput,
) -> SymphonyAuthStatus {
    // SAFETY: `flight` is NULL or live, and nothing else uses it during the call (the contract above).
    let flight = unsafe { Live::new(flight) };
    with_handle(flight, |flight| {
        // SAFETY: `output` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(output, "output")? };
        // SAFETY: `caller` is NULL or a live caller that nothing else uses during the call (the contract above).
        let caller = unsafe { caller.as_mut() }.ok_or_else(|| Failure::null("caller"))?;
        let step = flight.flight.poll(&mut caller.caller, at(now_ms));
        out.set(into_handle(SymphonyAuthOutput::from_step(step, Arc::clone(&flight.endpoints))));
        Ok(())
    })
}

/// The caller is done with the flight: after its `DONE`, or instead of it when it gives up (its thread is going
/// away) at `now_ms`. A leader that leaves early hands its login, backoff included, to a follower: `*wake` (when
/// not NULL) then says to wake every waiting caller. `caller` is freed in every case.
///
/// # Safety
/// `flight` is NULL or live; `caller` is NULL or a caller of this flight not left yet; `wake` is NULL or valid for
/// writing a `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_leave(
    flight: *mut SymphonyAuthFlight,
    caller: *mut SymphonyAuthCaller,
    now_ms: u64,
    wake: *mut bool,
) -> SymphonyAuthStatus {
    let caller = (!caller.is_null()).then(|| {
        // SAFETY: the caller hands over a caller handle made by `symphony_auth_flight_join`, not freed yet.
        unsafe { Box::from_raw(caller) }
    });
    // SAFETY: `flight` is NULL or live, and nothing else uses it during the call (the contract above).
    let flight = unsafe { Live::new(flight) };
    with_handle(flight, |flight| {
        let caller = caller.ok_or_else(|| Failure::null("caller"))?;
        // SAFETY: `wake` is NULL or valid for writing a `bool` (the contract above).
        let out = unsafe { Out::optional(wake) };
        let must_wake = flight.flight.leave(&caller.caller, at(now_ms));
        if let Some(out) = out {
            out.set(must_wake);
        }
        Ok(())
    })
}

/// Frees a caller without leaving its flight: only for a caller whose flight is already freed. NULL is ignored.
///
/// # Safety
/// `caller` is NULL or not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_caller_free(caller: *mut SymphonyAuthCaller) {
    guard((), || {
        // SAFETY: `caller` is NULL or a handle not freed yet (the contract above).
        unsafe { free_handle(caller) }
    });
}

/// As `symphony_auth_authenticator_supply_signature`, for the caller that leads the flight's login.
///
/// # Safety
/// `flight` is NULL or live; `signature` is NULL or a signature handle not freed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_supply_signature(
    flight: *mut SymphonyAuthFlight,
    signature: *mut SymphonyAuthSignature,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { supply_signature(flight, signature, now_ms) }
}

/// As `symphony_auth_authenticator_supply_sign_failure`, for the caller that leads the flight's login.
///
/// # Safety
/// `flight` is NULL or live; `reason` points at `reason_len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_supply_sign_failure(
    flight: *mut SymphonyAuthFlight,
    reason: *const u8,
    reason_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { supply_sign_failure(flight, reason, reason_len, now_ms) }
}

/// As `symphony_auth_authenticator_handle_response`, for the caller that leads the flight's login.
///
/// # Safety
/// As `symphony_auth_authenticator_handle_response`, with `flight` NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_handle_response(
    flight: *mut SymphonyAuthFlight,
    request_id: u64,
    status: u16,
    headers: *const SymphonyAuthHeader,
    header_count: usize,
    body: *const u8,
    body_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { handle_response(flight, request_id, status, headers, header_count, body, body_len, now_ms) }
}

/// As `symphony_auth_authenticator_handle_failure`, for the caller that leads the flight's login.
///
/// # Safety
/// `flight` is NULL or live; `detail` points at `detail_len` bytes of UTF-8.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_handle_failure(
    flight: *mut SymphonyAuthFlight,
    request_id: u64,
    kind: u32,
    detail: *const u8,
    detail_len: usize,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { handle_failure(flight, request_id, kind, detail, detail_len, now_ms) }
}

/// As `symphony_auth_authenticator_abandon_requests`: the leader lost track of the requests it sent.
///
/// # Safety
/// `flight` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_abandon_requests(
    flight: *mut SymphonyAuthFlight,
    now_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { abandon_requests(flight, now_ms) }
}

/// As `symphony_auth_authenticator_poll_event`.
///
/// # Safety
/// `flight` is NULL or live; `event` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_poll_event(
    flight: *mut SymphonyAuthFlight,
    event: *mut *mut SymphonyAuthEvent,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { poll_event(flight, event) }
}

/// As `symphony_auth_authenticator_state`.
///
/// # Safety
/// `flight` is NULL or live; `state` is NULL or valid for writing a `SymphonyAuthState`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_state(
    flight: *mut SymphonyAuthFlight,
    state_out: *mut SymphonyAuthState,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { state(flight, state_out) }
}

/// As `symphony_auth_authenticator_tokens`.
///
/// # Safety
/// `flight` is NULL or live; `tokens` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_flight_tokens(
    flight: *mut SymphonyAuthFlight,
    tokens_out: *mut *mut SymphonyAuthTokens,
) -> SymphonyAuthStatus {
    // SAFETY: the arguments meet the contract above, which is the helper's.
    unsafe { tokens(flight, tokens_out) }
}
