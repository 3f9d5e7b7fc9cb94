//! `SymphonyAuthOutput`: the one thing the machine says to do next, as a handle that owns everything it shows;
//! and `SymphonyAuthSignature`, the signed (or failed) login JWT on its way back.

use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use symphony_auth_core::{
    Endpoints, LoginEndpoint, LoginRequest, Output, SignError, SignedJwt, Step, Tokens, UnsignedJwt,
};
use zeroize::Zeroizing;

use crate::abi::{
    Failure, Handle, LastError, Live, Out, SymphonyAuthBytes, SymphonyAuthHeader, SymphonyAuthStatus, borrow, bytes,
    free_handle, guard, into_handle, last_error, with_handle,
};
use crate::event::{LoginError, SymphonyAuthLoginError};
use crate::tokens::SymphonyAuthTokens;

/// What an output says to do.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthOutputKind {
    /// No output (a NULL handle).
    None = 0,
    /// Sign the login JWT (`symphony_auth_output_sign`, or elsewhere with `symphony_auth_output_signing_input` and
    /// `symphony_auth_output_with_signature`), supply the signature, poll again.
    Sign = 1,
    /// Send these requests (`symphony_auth_output_request`), concurrently when several; report each answer or
    /// failure as it comes, polling after each.
    Send = 2,
    /// Requests handed out earlier are still out: report the next answer, then poll again.
    AwaitAnswers = 3,
    /// Nothing is due before `symphony_auth_output_wait_until` (a retry's backoff): poll again then.
    WaitUntil = 4,
    /// The login is over, or none was needed: `symphony_auth_output_tokens`, or `symphony_auth_output_error`.
    /// Requests still out may be dropped.
    Done = 5,
    /// (Flights only.) Another caller leads the login: wait until woken, then poll again.
    Follow = 6,
}

/// Which endpoint a login request calls.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthEndpoint {
    /// None (an error that is not about an endpoint, such as a signing failure).
    None = 0,
    /// `POST /login/pubkey/authenticate` on the pod.
    RsaSession = 1,
    /// `POST /relay/pubkey/authenticate` on the key manager.
    RsaKeyManager = 2,
    /// `POST /sessionauth/v1/authenticate` on the session-auth host, over mutual TLS.
    CertificateSession = 3,
    /// `POST /keyauth/v1/authenticate` on the key manager, over mutual TLS.
    CertificateKeyManager = 4,
    /// `GET /agent/v1/info` on the agent: whether it delivers keys without the key manager.
    AgentVersion = 5,
    /// An endpoint this version of the header does not know.
    Other = 255,
}

impl SymphonyAuthEndpoint {
    pub(crate) fn of(endpoint: LoginEndpoint) -> Self {
        match endpoint {
            LoginEndpoint::RsaSession => Self::RsaSession,
            LoginEndpoint::RsaKeyManager => Self::RsaKeyManager,
            LoginEndpoint::CertificateSession => Self::CertificateSession,
            LoginEndpoint::CertificateKeyManager => Self::CertificateKeyManager,
            LoginEndpoint::AgentVersion => Self::AgentVersion,
            _ => Self::Other,
        }
    }
}

/// A login request to send, as views into its output handle (valid until the output is freed).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthRequest {
    /// The id to report its answer or failure with.
    pub id: u64,
    /// The endpoint it calls.
    pub endpoint: SymphonyAuthEndpoint,
    /// Whether it must go through the caller's mutual-TLS client (certificate logins).
    pub uses_client_certificate: bool,
    /// `GET` or `POST`.
    pub method: SymphonyAuthBytes,
    /// The absolute URL.
    pub url: SymphonyAuthBytes,
    /// The headers to send, every one of them (`header_count` of them).
    pub headers: *const SymphonyAuthHeader,
    /// How many headers.
    pub header_count: usize,
    /// The body; it may hold the signed login JWT, a credential: never log it. The output wipes it when freed.
    pub body: SymphonyAuthBytes,
}

/// A request of a `SEND` output, owning what its view shows.
#[derive(Debug)]
struct Request {
    id: u64,
    endpoint: LoginEndpoint,
    method: String,
    url: String,
    /// Never read: it owns the bytes `views` point at (the names' and values' own buffers, which stay put).
    #[expect(dead_code, reason = "owns what the views show")]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Views of `headers`.
    views: Vec<SymphonyAuthHeader>,
    body: Zeroizing<Vec<u8>>,
}

impl Request {
    fn new(login: LoginRequest) -> Self {
        let (parts, body) = login.request.into_parts();
        let headers: Vec<(HeaderName, HeaderValue)> =
            parts.headers.iter().map(|(name, value)| (name.clone(), value.clone())).collect();
        let views = headers.iter().map(|(name, value)| SymphonyAuthHeader::of(name, value)).collect();
        Self {
            id: login.id.get(),
            endpoint: login.endpoint,
            method: parts.method.as_str().to_owned(),
            url: parts.uri.to_string(),
            headers,
            views,
            body: Zeroizing::new(body),
        }
    }

    fn view(&self) -> SymphonyAuthRequest {
        SymphonyAuthRequest {
            id: self.id,
            endpoint: SymphonyAuthEndpoint::of(self.endpoint),
            uses_client_certificate: self.endpoint.uses_client_certificate(),
            method: SymphonyAuthBytes::of(self.method.as_bytes()),
            url: SymphonyAuthBytes::of(self.url.as_bytes()),
            headers: self.views.as_ptr(),
            header_count: self.views.len(),
            body: SymphonyAuthBytes::of(&self.body),
        }
    }
}

/// What the machine (or the flight, for one caller) says to do next. It owns everything it shows, and is
/// independent of the authenticator or flight it came from: it may be read, signed and freed on another thread.
#[derive(Debug)]
pub struct SymphonyAuthOutput {
    kind: SymphonyAuthOutputKind,
    /// `SIGN`: the JWT to sign, until it is signed.
    jwt: Option<UnsignedJwt>,
    exp: u64,
    /// `SIGN`: what the signature covers (no secret in it), kept after the JWT is signed.
    signing_input: Vec<u8>,
    requests: Vec<Request>,
    wait_until: u64,
    tokens: Option<Arc<Tokens>>,
    login_error: Option<LoginError>,
    wake_followers: bool,
    endpoints: Arc<Endpoints>,
    error: LastError,
}

impl Handle for SymphonyAuthOutput {
    fn errors(&self) -> &LastError {
        &self.error
    }
    fn errors_mut(&mut self) -> &mut LastError {
        &mut self.error
    }
}

impl SymphonyAuthOutput {
    fn empty(kind: SymphonyAuthOutputKind, endpoints: Arc<Endpoints>) -> Self {
        Self {
            kind,
            jwt: None,
            exp: 0,
            signing_input: Vec::new(),
            requests: Vec::new(),
            wait_until: 0,
            tokens: None,
            login_error: None,
            wake_followers: false,
            endpoints,
            error: LastError::default(),
        }
    }

    pub(crate) fn from_output(output: Output, endpoints: Arc<Endpoints>) -> Self {
        match output {
            Output::Sign(jwt) => Self::sign(jwt, endpoints),
            Output::Send(batch) => Self::send(batch, endpoints),
            Output::AwaitAnswers => Self::empty(SymphonyAuthOutputKind::AwaitAnswers, endpoints),
            Output::WaitUntil(at) => {
                Self { wait_until: at.as_millis(), ..Self::empty(SymphonyAuthOutputKind::WaitUntil, endpoints) }
            }
            Output::Done(outcome) => Self::done(outcome, false, endpoints),
        }
    }

    pub(crate) fn from_step(step: Step, endpoints: Arc<Endpoints>) -> Self {
        match step {
            Step::Sign(jwt) => Self::sign(jwt, endpoints),
            Step::Send(batch) => Self::send(batch, endpoints),
            Step::AwaitAnswers => Self::empty(SymphonyAuthOutputKind::AwaitAnswers, endpoints),
            Step::WaitUntil(at) => {
                Self { wait_until: at.as_millis(), ..Self::empty(SymphonyAuthOutputKind::WaitUntil, endpoints) }
            }
            Step::Follow => Self::empty(SymphonyAuthOutputKind::Follow, endpoints),
            Step::Done { outcome, wake_followers } => Self::done(outcome, wake_followers, endpoints),
        }
    }

    fn sign(jwt: UnsignedJwt, endpoints: Arc<Endpoints>) -> Self {
        Self {
            exp: jwt.exp(),
            signing_input: jwt.signing_input().to_vec(),
            jwt: Some(jwt),
            ..Self::empty(SymphonyAuthOutputKind::Sign, endpoints)
        }
    }

    fn send(batch: Vec<LoginRequest>, endpoints: Arc<Endpoints>) -> Self {
        let requests = batch.into_iter().map(Request::new).collect();
        Self { requests, ..Self::empty(SymphonyAuthOutputKind::Send, endpoints) }
    }

    fn done(
        outcome: Result<Arc<Tokens>, symphony_auth_core::AuthError>,
        wake_followers: bool,
        endpoints: Arc<Endpoints>,
    ) -> Self {
        let (tokens, login_error) = match outcome {
            Ok(tokens) => (Some(tokens), None),
            Err(error) => (None, Some(LoginError::new(error))),
        };
        Self { tokens, login_error, wake_followers, ..Self::empty(SymphonyAuthOutputKind::Done, endpoints) }
    }

    /// The JWT of a `SIGN` output, taken: it is signed once.
    fn take_jwt(&mut self) -> Result<UnsignedJwt, Failure> {
        if self.kind != SymphonyAuthOutputKind::Sign {
            return Err(Failure::usage(format_args!("the output is {:?}, not SIGN", self.kind)));
        }
        self.jwt.take().ok_or_else(|| Failure::usage("the JWT of this output was signed already"))
    }
}

/// A signed login JWT (or the signer's failure), to hand back with `symphony_auth_*_supply_signature`, which frees
/// it. Free it with `symphony_auth_signature_free` only if it is never supplied.
pub struct SymphonyAuthSignature {
    result: Result<SignedJwt, SignError>,
}

impl std::fmt::Debug for SymphonyAuthSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymphonyAuthSignature").field("signed", &self.result.is_ok()).finish_non_exhaustive()
    }
}

impl SymphonyAuthSignature {
    pub(crate) fn into_result(self) -> Result<SignedJwt, SignError> {
        self.result
    }
}

/// Frees an output. NULL is ignored. Views read from it become invalid; tokens and signatures made from it do not.
///
/// # Safety
/// `output` is NULL or an output not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_free(output: *mut SymphonyAuthOutput) {
    guard((), || {
        // SAFETY: `output` is NULL or an output not freed yet (the contract above).
        unsafe { free_handle(output) }
    });
}

/// The message of the last failed call on `output` (NUL-terminated as well); empty after a successful call. Owned
/// by `output`, valid until the next call on it.
///
/// # Safety
/// `output` is NULL (giving an absent view) or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_last_error(output: *const SymphonyAuthOutput) -> SymphonyAuthBytes {
    // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
    unsafe { last_error(output) }
}

/// What `output` says to do; `NONE` for NULL.
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_kind(output: *const SymphonyAuthOutput) -> SymphonyAuthOutputKind {
    guard(SymphonyAuthOutputKind::None, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }.map_or(SymphonyAuthOutputKind::None, |o| o.kind)
    })
}

/// `WAIT_UNTIL`: the instant to poll again at, in milliseconds since the UNIX epoch; 0 for other kinds.
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_wait_until(output: *const SymphonyAuthOutput) -> u64 {
    guard(0, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }.map_or(0, |o| o.wait_until)
    })
}

/// `SIGN`: the JWT's `exp` claim, in seconds since the UNIX epoch; 0 for other kinds.
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_exp(output: *const SymphonyAuthOutput) -> u64 {
    guard(0, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }.map_or(0, |o| o.exp)
    })
}

/// `SIGN`: the bytes the RS512 signature covers (`base64url(header).base64url(claims)`, no secret in them), for a
/// caller that signs elsewhere; absent for other kinds. Owned by `output`.
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_signing_input(output: *const SymphonyAuthOutput) -> SymphonyAuthBytes {
    guard(SymphonyAuthBytes::ABSENT, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }
            .filter(|o| o.kind == SymphonyAuthOutputKind::Sign)
            .map_or(SymphonyAuthBytes::ABSENT, |o| SymphonyAuthBytes::of(&o.signing_input))
    })
}

/// `SIGN`: signs the JWT with the configured key (milliseconds for a 4096-bit key: in a flight, do it with the
/// mutex released). `*signature` is a new signature handle, to pass to `symphony_auth_*_supply_signature`; a
/// signer's failure travels inside it, and the login then fails with it. `Usage` for another kind of output, or a
/// JWT signed already.
///
/// # Safety
/// `output` is NULL or live; `signature` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_sign(
    output: *mut SymphonyAuthOutput,
    signature: *mut *mut SymphonyAuthSignature,
) -> SymphonyAuthStatus {
    // SAFETY: `output` is NULL or live, and nothing else uses it during the call (the contract above).
    let output = unsafe { Live::new(output) };
    with_handle(output, |output| {
        // SAFETY: `signature` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(signature, "signature")? };
        let jwt = output.take_jwt()?;
        out.set(into_handle(SymphonyAuthSignature { result: jwt.sign() }));
        Ok(())
    })
}

/// `SIGN`: completes the JWT with an RS512 signature of `symphony_auth_output_signing_input` made elsewhere (an
/// HSM, a KMS): the raw big-endian signature, the size of the key's modulus. `*signature` is a new signature
/// handle, as for `symphony_auth_output_sign`. The caller's buffer is copied.
///
/// # Safety
/// `output` is NULL or live; `signature_bytes` points at `signature_len` bytes; `signature` is NULL or valid for
/// writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_with_signature(
    output: *mut SymphonyAuthOutput,
    signature_bytes: *const u8,
    signature_len: usize,
    signature: *mut *mut SymphonyAuthSignature,
) -> SymphonyAuthStatus {
    // SAFETY: `output` is NULL or live, and nothing else uses it during the call (the contract above).
    let output = unsafe { Live::new(output) };
    with_handle(output, |output| {
        // SAFETY: `signature` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(signature, "signature")? };
        // SAFETY: `signature_bytes` points at `signature_len` readable bytes (the contract above).
        let raw = unsafe { bytes(signature_bytes, signature_len, "signature_bytes")? };
        if raw.is_empty() {
            return Err(Failure::invalid("the signature is empty"));
        }
        let jwt = output.take_jwt()?;
        out.set(into_handle(SymphonyAuthSignature { result: Ok(jwt.with_signature(raw)) }));
        Ok(())
    })
}

/// Frees a signature that is never supplied. NULL is ignored.
///
/// # Safety
/// `signature` is NULL or a signature not freed (nor supplied) yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_signature_free(signature: *mut SymphonyAuthSignature) {
    guard((), || {
        // SAFETY: `signature` is NULL or a signature not freed yet (the contract above).
        unsafe { free_handle(signature) }
    });
}

/// `SEND`: how many requests to send; 0 for other kinds.
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_request_count(output: *const SymphonyAuthOutput) -> usize {
    guard(0, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }.map_or(0, |o| o.requests.len())
    })
}

/// `SEND`: request `index` (from 0), written to `*request` as views owned by `output`. `InvalidArgument` for an
/// index out of range.
///
/// # Safety
/// `output` is NULL or live; `request` is NULL or valid for writing a `SymphonyAuthRequest`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_request(
    output: *mut SymphonyAuthOutput,
    index: usize,
    request: *mut SymphonyAuthRequest,
) -> SymphonyAuthStatus {
    // SAFETY: `output` is NULL or live, and nothing else uses it during the call (the contract above).
    let output = unsafe { Live::new(output) };
    with_handle(output, |output| {
        // SAFETY: `request` is NULL or valid for writing a `SymphonyAuthRequest` (the contract above).
        let out = unsafe { Out::new(request, "request")? };
        let count = output.requests.len();
        let found = output.requests.get(index).ok_or_else(|| {
            Failure::invalid(format_args!("request index {index} is out of range: the output has {count}"))
        })?;
        out.set(found.view());
        Ok(())
    })
}

/// `DONE` with tokens: `*tokens` is a new tokens handle (free it with `symphony_auth_tokens_free`). `Usage` for
/// another kind of output, or a login that failed (see `symphony_auth_output_error`).
///
/// # Safety
/// `output` is NULL or live; `tokens` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_tokens(
    output: *mut SymphonyAuthOutput,
    tokens: *mut *mut SymphonyAuthTokens,
) -> SymphonyAuthStatus {
    // SAFETY: `output` is NULL or live, and nothing else uses it during the call (the contract above).
    let output = unsafe { Live::new(output) };
    with_handle(output, |output| {
        // SAFETY: `tokens` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(tokens, "tokens")? };
        let held = output.tokens.as_ref().ok_or_else(|| match output.kind {
            SymphonyAuthOutputKind::Done => Failure::usage("the login failed: the output holds an error, no tokens"),
            other => Failure::usage(format_args!("the output is {other:?}, not DONE")),
        })?;
        out.set(into_handle(SymphonyAuthTokens::new(Arc::clone(held), Arc::clone(&output.endpoints))));
        Ok(())
    })
}

/// `DONE` with an error: why the login failed, as views owned by `output`. `error_class` is `NONE` for any other
/// output (and for NULL).
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_error(output: *const SymphonyAuthOutput) -> SymphonyAuthLoginError {
    guard(SymphonyAuthLoginError::NONE, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }
            .and_then(|o| o.login_error.as_ref())
            .map_or(SymphonyAuthLoginError::NONE, LoginError::view)
    })
}

/// (Flights only.) `DONE`: whether this caller led the login and must wake every caller waiting after `FOLLOW`.
///
/// # Safety
/// `output` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_output_wake_followers(output: *const SymphonyAuthOutput) -> bool {
    guard(false, || {
        // SAFETY: `output` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(output) }.is_some_and(|o| o.wake_followers)
    })
}
