//! Faults a test scripts per endpoint: each answers one request in place of the normal answer.

use std::time::Duration;

/// One scripted misbehaviour. Queue them with [`FakePod::inject`](crate::FakePod::inject).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a JSON error body `{"code":S,"message":..}`, with a
    /// `Retry-After: <seconds>` header when `retry_after` is set. The request is not processed.
    Status {
        /// The HTTP status to answer with (429, 503, 500, ...).
        status: u16,
        /// Seconds for the `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// Process the request normally, but answer only after this extra delay.
    Delay(Duration),
    /// Close the connection without answering (the request is not processed).
    Close,
    /// Write bytes that are not an HTTP response, then close (the request is not processed).
    Garbage,
    /// Answer 200 with a JSON content type and a truncated, unparsable JSON body.
    MalformedJson,
    /// Answer 200 with a syntactically valid JSON body of exactly this many bytes (at least 32).
    OversizedBody(usize),
}

impl Fault {
    /// `Fault::Status` without `Retry-After`.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Fault::Status { status, retry_after: None }
    }

    /// `Fault::Status` with `Retry-After: <seconds>`.
    #[must_use]
    pub fn status_retry_after(status: u16, seconds: u64) -> Self {
        Fault::Status { status, retry_after: Some(seconds) }
    }
}
