//! `SymphonyAuthTokens`: the tokens of one login, readable and attachable to the caller's own requests; and
//! `SymphonyAuthHeaderList`, the headers that carry them.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Uri};
use symphony_auth_core::{Endpoints, Tokens};

use crate::abi::{
    Failure, Handle, LastError, Live, Out, SymphonyAuthBytes, SymphonyAuthHeader, SymphonyAuthStatus, borrow,
    free_handle, guard, into_handle, last_error, text, with_handle,
};

/// The tokens of one login, and where they may be sent. Every view read from it points into the token's own
/// buffer, which is wiped when the last holder of the tokens lets go: the handle, its header lists, and the
/// machine while these are its current tokens. Never log a token.
#[derive(Debug)]
pub struct SymphonyAuthTokens {
    tokens: Arc<Tokens>,
    endpoints: Arc<Endpoints>,
    error: LastError,
}

impl SymphonyAuthTokens {
    pub(crate) fn new(tokens: Arc<Tokens>, endpoints: Arc<Endpoints>) -> Self {
        Self { tokens, endpoints, error: LastError::default() }
    }
}

impl Handle for SymphonyAuthTokens {
    fn errors(&self) -> &LastError {
        &self.error
    }
    fn errors_mut(&mut self) -> &mut LastError {
        &mut self.error
    }
}

/// The headers to add to a request so that it carries the tokens. The values are the tokens themselves: never
/// log them.
#[derive(Debug)]
pub struct SymphonyAuthHeaderList {
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Frees a tokens handle. NULL is ignored. Views read from it become invalid.
///
/// # Safety
/// `tokens` is NULL or a tokens handle not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_free(tokens: *mut SymphonyAuthTokens) {
    guard((), || {
        // SAFETY: `tokens` is NULL or a tokens handle not freed yet (the contract above).
        unsafe { free_handle(tokens) }
    });
}

/// The message of the last failed call on `tokens` (NUL-terminated as well); empty after a successful call. Owned
/// by `tokens`, valid until the next call on it. Never holds a token.
///
/// # Safety
/// `tokens` is NULL (giving an absent view) or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_last_error(tokens: *const SymphonyAuthTokens) -> SymphonyAuthBytes {
    // SAFETY: `tokens` is NULL or live, and nothing mutates it during the call (the contract above).
    unsafe { last_error(tokens) }
}

/// The login that issued these tokens (1 for the first): report it with a 401. 0 for NULL.
///
/// # Safety
/// `tokens` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_generation(tokens: *const SymphonyAuthTokens) -> u64 {
    guard(0, || {
        // SAFETY: `tokens` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(tokens) }.map_or(0, |t| t.tokens.generation().get())
    })
}

/// The session token (header `sessionToken` on pod and agent calls). A secret: never log it. Owned by `tokens`;
/// absent for NULL.
///
/// # Safety
/// `tokens` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_session(tokens: *const SymphonyAuthTokens) -> SymphonyAuthBytes {
    guard(SymphonyAuthBytes::ABSENT, || {
        // SAFETY: `tokens` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(tokens) }
            .map_or(SymphonyAuthBytes::ABSENT, |t| SymphonyAuthBytes::of(t.tokens.session().expose_secret().as_bytes()))
    })
}

/// The key-manager token (header `keyManagerToken` on agent calls); absent when the login skipped the key manager
/// (simplified key delivery, or the policy `NEVER`). A secret: never log it. Owned by `tokens`.
///
/// # Safety
/// `tokens` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_key_manager(tokens: *const SymphonyAuthTokens) -> SymphonyAuthBytes {
    guard(SymphonyAuthBytes::ABSENT, || {
        // SAFETY: `tokens` is NULL or live, and nothing mutates it during the call (the contract above).
        let km = unsafe { borrow(tokens) }.and_then(|t| t.tokens.key_manager());
        SymphonyAuthBytes::of_option(km.map(|km| km.expose_secret().as_bytes()))
    })
}

/// The Common JWT a recent pod returns beside the session token, without its `Bearer ` prefix; absent when the pod
/// gave none. A secret: never log it. Owned by `tokens`.
///
/// # Safety
/// `tokens` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_authorization(tokens: *const SymphonyAuthTokens) -> SymphonyAuthBytes {
    guard(SymphonyAuthBytes::ABSENT, || {
        // SAFETY: `tokens` is NULL or live, and nothing mutates it during the call (the contract above).
        let jwt = unsafe { borrow(tokens) }.and_then(|t| t.tokens.authorization());
        SymphonyAuthBytes::of_option(jwt.map(|jwt| jwt.expose_secret().as_bytes()))
    })
}

/// Whether the session token grants simplified key delivery. False for NULL.
///
/// # Safety
/// `tokens` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_simplified_key_delivery(tokens: *const SymphonyAuthTokens) -> bool {
    guard(false, || {
        // SAFETY: `tokens` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(tokens) }.is_some_and(|t| t.tokens.simplified_key_delivery())
    })
}

/// The headers a request to `url` must carry: `sessiontoken`, plus `keymanagertoken` for agent calls when there
/// is one. Add them to the request the caller builds (replacing any of the same name); on a 401, report
/// `symphony_auth_tokens_generation`. `*headers` is a new header list (free it with
/// `symphony_auth_header_list_free`). `Usage` for a URL outside the configured services, or one that must never
/// receive the tokens (a key-manager path, `..` segments, user information); `InvalidArgument` for text that is
/// not a URL. Messages never repeat a URL's query or user information.
///
/// # Safety
/// `tokens` is NULL or live; `url` points at `url_len` bytes; `headers` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_tokens_authorize(
    tokens: *mut SymphonyAuthTokens,
    url: *const u8,
    url_len: usize,
    headers: *mut *mut SymphonyAuthHeaderList,
) -> SymphonyAuthStatus {
    // SAFETY: `tokens` is NULL or live, and nothing else uses it during the call (the contract above).
    let tokens = unsafe { Live::new(tokens) };
    with_handle(tokens, |tokens| {
        // SAFETY: `headers` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(headers, "headers")? };
        // SAFETY: `url` points at `url_len` readable bytes (the contract above).
        let url = unsafe { text(url, url_len, "url")? };
        let uri: Uri = url.parse().map_err(|_| Failure::invalid("`url` is not a valid absolute URL"))?;
        let target = tokens.endpoints.target_of(&uri)?;
        let mut request = http::Request::new(());
        *request.uri_mut() = uri;
        tokens.tokens.authorize(&mut request, target);
        let list = request.headers().iter().map(|(name, value)| (name.clone(), value.clone())).collect();
        out.set(into_handle(SymphonyAuthHeaderList { headers: list }));
        Ok(())
    })
}

/// How many headers `list` holds; 0 for NULL.
///
/// # Safety
/// `list` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_header_list_count(list: *const SymphonyAuthHeaderList) -> usize {
    guard(0, || {
        // SAFETY: `list` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(list) }.map_or(0, |l| l.headers.len())
    })
}

/// Header `index` (from 0) of `list`, as views owned by `list` (names lowercase); both views absent when `index`
/// is out of range or `list` is NULL.
///
/// # Safety
/// `list` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_header_list_get(
    list: *const SymphonyAuthHeaderList,
    index: usize,
) -> SymphonyAuthHeader {
    let absent = SymphonyAuthHeader { name: SymphonyAuthBytes::ABSENT, value: SymphonyAuthBytes::ABSENT };
    guard(absent, || {
        // SAFETY: `list` is NULL or live, and nothing mutates it during the call (the contract above).
        unsafe { borrow(list) }
            .and_then(|l| l.headers.get(index))
            .map_or(absent, |(name, value)| SymphonyAuthHeader::of(name, value))
    })
}

/// Frees a header list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or a list not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_header_list_free(list: *mut SymphonyAuthHeaderList) {
    guard((), || {
        // SAFETY: `list` is NULL or a list not freed yet (the contract above).
        unsafe { free_handle(list) }
    });
}
