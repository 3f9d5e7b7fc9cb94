//! What every entry point shares: the status codes, byte views, the per-handle error message, the panic guard,
//! and the checked reading of C arguments.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::{self, NonNull};

use symphony_auth_core::{ConfigError, UsageError};

/// What a call returned. Every function that can fail returns one; the message of the last failure is kept by
/// the handle the call was made on (`symphony_auth_*_last_error`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthStatus {
    /// Success.
    Ok = 0,
    /// A pointer that must not be NULL was NULL. When the handle itself is NULL no message is recorded anywhere.
    NullArgument = 1,
    /// An argument is unusable: bytes that are not UTF-8, a header name or value that HTTP does not allow, a status
    /// outside 100..=999, a code outside its enum, an index out of range.
    InvalidArgument = 2,
    /// The configuration cannot work: a bad URL, username, key, lifetime, retry setting or BDK file, or a missing
    /// setting. The message names what is wrong, never a secret.
    Config = 3,
    /// The call does not fit the machine's contract or the handle's state: an unknown request id or generation, a
    /// URL outside the configured services, an output of another kind, a JWT already signed.
    Usage = 4,
    /// An internal error (a Rust panic) was caught at the boundary. The handle it happened on answers every later
    /// call with this code: free it.
    Internal = 5,
    /// The library was built without the feature the call needs (`symphony_auth_set_log_callback` without
    /// `tracing`).
    NotCompiled = 6,
    /// `symphony_auth_set_log_callback`: another global `tracing` subscriber is installed in this library's copy of
    /// `tracing`; it stays, and no callback is called.
    SubscriberTaken = 7,
}

/// A borrowed run of bytes: `len` bytes at `ptr`, not NUL-terminated unless stated. `ptr` is NULL only for a value
/// that is absent (and then `len` is 0); an empty value has a non-NULL `ptr` that must not be read. The bytes
/// belong to the handle they were read from and stay valid until that handle is freed, unless stated otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthBytes {
    /// The first byte.
    pub ptr: *const u8,
    /// How many bytes.
    pub len: usize,
}

impl SymphonyAuthBytes {
    /// An absent value.
    pub(crate) const ABSENT: Self = Self { ptr: ptr::null(), len: 0 };

    /// A view of `bytes`, which must outlive every use the C caller makes of it.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self { ptr: bytes.as_ptr(), len: bytes.len() }
    }

    /// A view of `value`, or [`ABSENT`](Self::ABSENT).
    pub(crate) fn of_option(value: Option<&[u8]>) -> Self {
        value.map_or(Self::ABSENT, Self::of)
    }
}

/// An HTTP header as name and value bytes. In requests the machine hands out, names are lowercase.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SymphonyAuthHeader {
    /// The name.
    pub name: SymphonyAuthBytes,
    /// The value.
    pub value: SymphonyAuthBytes,
}

impl SymphonyAuthHeader {
    pub(crate) fn of(name: &http::HeaderName, value: &http::HeaderValue) -> Self {
        Self { name: SymphonyAuthBytes::of(name.as_str().as_bytes()), value: SymphonyAuthBytes::of(value.as_bytes()) }
    }
}

/// Why a call failed: the status to return and the message to keep on the handle.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: SymphonyAuthStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: SymphonyAuthStatus, message: impl fmt::Display) -> Self {
        Self { status, message: message.to_string() }
    }

    pub(crate) fn null(what: &str) -> Self {
        Self::new(SymphonyAuthStatus::NullArgument, format_args!("`{what}` is NULL"))
    }

    pub(crate) fn invalid(message: impl fmt::Display) -> Self {
        Self::new(SymphonyAuthStatus::InvalidArgument, message)
    }

    pub(crate) fn config(message: impl fmt::Display) -> Self {
        Self::new(SymphonyAuthStatus::Config, message)
    }

    pub(crate) fn usage(message: impl fmt::Display) -> Self {
        Self::new(SymphonyAuthStatus::Usage, message)
    }
}

impl From<UsageError> for Failure {
    fn from(error: UsageError) -> Self {
        Self::usage(error)
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Self::config(error)
    }
}

/// The message of a handle's last failed call, kept NUL-terminated for C, and whether a panic broke the handle.
#[derive(Debug, Default)]
pub(crate) struct LastError {
    /// The message and a NUL, or nothing after a successful call.
    text: Vec<u8>,
    broken: bool,
}

impl LastError {
    fn set(&mut self, message: &str) {
        self.text.clear();
        self.text.extend_from_slice(message.as_bytes());
        self.text.push(0);
    }

    /// The message, without its NUL; empty (but NUL-terminated) when the last call succeeded.
    pub(crate) fn view(&self) -> SymphonyAuthBytes {
        match self.text.split_last() {
            Some((_nul, message)) => SymphonyAuthBytes { ptr: self.text.as_ptr(), len: message.len() },
            None => SymphonyAuthBytes { ptr: c"".as_ptr().cast(), len: 0 },
        }
    }
}

/// A handle that keeps the message of its last failed call.
pub(crate) trait Handle {
    fn errors(&self) -> &LastError;
    fn errors_mut(&mut self) -> &mut LastError;
}

/// A handle pointer from C, checked for NULL.
#[derive(Debug)]
pub(crate) struct Live<'a, H>(Option<&'a mut H>);

impl<H> Live<'_, H> {
    /// # Safety
    /// `handle` is NULL or points at a live `H` that nothing else uses during the call.
    pub(crate) unsafe fn new(handle: *mut H) -> Self {
        // SAFETY: the caller promises that `handle` is NULL or a live, unaliased `H`.
        Self(unsafe { handle.as_mut() })
    }
}

/// Runs `body` on `handle`: NULL gives `NullArgument`; a failure's message is kept on the handle; a panic is
/// caught, breaks the handle, and gives `Internal`.
pub(crate) fn with_handle<H: Handle>(
    handle: Live<'_, H>,
    body: impl FnOnce(&mut H) -> Result<(), Failure>,
) -> SymphonyAuthStatus {
    let Some(handle) = handle.0 else { return SymphonyAuthStatus::NullArgument };
    if handle.errors().broken {
        return SymphonyAuthStatus::Internal;
    }
    match catch_unwind(AssertUnwindSafe(|| body(&mut *handle))) {
        Ok(Ok(())) => {
            handle.errors_mut().text.clear();
            SymphonyAuthStatus::Ok
        }
        Ok(Err(failure)) => {
            handle.errors_mut().set(&failure.message);
            failure.status
        }
        Err(_panic) => {
            let last = handle.errors_mut();
            last.broken = true;
            last.set("internal error: a bug in symphony-auth was caught at the C boundary; free this handle");
            SymphonyAuthStatus::Internal
        }
    }
}

/// The message of the last failed call on the handle behind `handle`; absent for NULL.
///
/// # Safety
/// `handle` is NULL or points at a live `H` that nothing mutates during the call.
pub(crate) unsafe fn last_error<H: Handle>(handle: *const H) -> SymphonyAuthBytes {
    guard(SymphonyAuthBytes::ABSENT, || {
        // SAFETY: `handle` is NULL or a live `H` that nothing mutates now (this function's contract).
        unsafe { borrow(handle) }.map_or(SymphonyAuthBytes::ABSENT, |h| h.errors().view())
    })
}

/// Runs `body`, turning a panic into `fallback`: for entry points with no handle to report on.
pub(crate) fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// `handle` as a shared reference.
///
/// # Safety
/// `handle` is NULL or points at a live `H` that nothing mutates during the call.
pub(crate) unsafe fn borrow<'a, H>(handle: *const H) -> Option<&'a H> {
    // SAFETY: the caller promises that `handle` is NULL or a live `H` that nothing mutates now.
    unsafe { handle.as_ref() }
}

/// Moves `value` to the heap for C.
pub(crate) fn into_handle<H>(value: H) -> *mut H {
    Box::into_raw(Box::new(value))
}

/// Takes back and drops a handle made by [`into_handle`]; NULL is ignored.
///
/// # Safety
/// `handle` is NULL or came from [`into_handle`] for this `H` and was not freed since.
pub(crate) unsafe fn free_handle<H>(handle: *mut H) {
    if !handle.is_null() {
        // SAFETY: the caller promises that `handle` came from `Box::into_raw` for this type and is not freed yet.
        drop(unsafe { Box::from_raw(handle) });
    }
}

/// The bytes at `ptr`: NULL with length 0 is the empty slice.
///
/// # Safety
/// Unless NULL, `ptr` points at `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::new(
            SymphonyAuthStatus::NullArgument,
            format_args!("`{what}` is NULL but its length is {len}"),
        ));
    }
    if isize::try_from(len).is_err() {
        return Err(Failure::invalid(format_args!("the length of `{what}` is larger than any object")));
    }
    // SAFETY: `ptr` is not NULL, and the caller promises `len` readable bytes there, unchanged during the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The UTF-8 text at `ptr` (see [`bytes`]).
///
/// # Safety
/// As [`bytes`].
pub(crate) unsafe fn text<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str, Failure> {
    // SAFETY: this function's contract is `bytes`'s.
    let bytes = unsafe { bytes(ptr, len, what)? };
    std::str::from_utf8(bytes).map_err(|_| Failure::invalid(format_args!("`{what}` is not UTF-8")))
}

/// The `count` items at `ptr`: NULL with count 0 is the empty slice.
///
/// # Safety
/// Unless NULL, `ptr` points at `count` initialised `T`s that stay unchanged during the call.
pub(crate) unsafe fn items<'a, T>(ptr: *const T, count: usize, what: &str) -> Result<&'a [T], Failure> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::new(
            SymphonyAuthStatus::NullArgument,
            format_args!("`{what}` is NULL but its count is {count}"),
        ));
    }
    if count.checked_mul(size_of::<T>()).is_none_or(|size| isize::try_from(size).is_err()) {
        return Err(Failure::invalid(format_args!("the count of `{what}` is larger than any object")));
    }
    // SAFETY: `ptr` is not NULL, and the caller promises `count` initialised items there, unchanged during the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Where a call writes a result for C.
#[derive(Debug)]
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// # Safety
    /// Unless NULL, `ptr` is valid for writes of a `T` during the call.
    pub(crate) unsafe fn new(ptr: *mut T, what: &str) -> Result<Self, Failure> {
        NonNull::new(ptr).map(Self).ok_or_else(|| Failure::null(what))
    }

    /// Where a call may write a result, if C asked for it.
    ///
    /// # Safety
    /// As [`new`](Self::new).
    pub(crate) unsafe fn optional(ptr: *mut T) -> Option<Self> {
        NonNull::new(ptr).map(Self)
    }

    pub(crate) fn set(self, value: T) {
        // SAFETY: `new`'s caller promised a pointer valid for writes of `T` for the duration of the call, and an
        // `Out` does not outlive the call it was made in.
        unsafe { self.0.as_ptr().write(value) }
    }
}

impl<T> Out<*mut T> {
    /// Where a call writes a new handle; it is set to NULL at once, so that C sees NULL on every failure.
    ///
    /// # Safety
    /// As [`Out::new`].
    pub(crate) unsafe fn handle(ptr: *mut *mut T, what: &str) -> Result<Self, Failure> {
        // SAFETY: this function's contract is `new`'s.
        let out = unsafe { Self::new(ptr, what)? };
        // SAFETY: `ptr` is not NULL and valid for writes of a pointer (this function's contract).
        unsafe { out.0.as_ptr().write(ptr::null_mut()) };
        Ok(out)
    }
}

/// Reads a C enum code.
pub(crate) fn code<T>(value: u32, what: &str, decode: impl FnOnce(u32) -> Option<T>) -> Result<T, Failure> {
    decode(value).ok_or_else(|| Failure::invalid(format_args!("{value} is not a valid `{what}` code")))
}
