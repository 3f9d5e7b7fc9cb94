//! Faults a test scripts per endpoint: each answers one request in place of the normal answer.

use std::time::{Duration, SystemTime};

/// One scripted misbehaviour. Queue them with [`FakePod::inject`](crate::FakePod::inject).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a JSON error body `{"code":S,"message":..}`, optionally with a `Retry-After`
    /// and a `Location` header (a redirect, with a 3xx status). The request is not processed.
    Status {
        /// The HTTP status to answer with (429, 503, 500, 302, ...).
        status: u16,
        /// The `Retry-After` header, if any.
        retry_after: Option<RetryAfter>,
        /// The `Location` header, if any. A value that cannot be a header value turns the answer into a 500
        /// saying so, rather than silently dropping the header.
        location: Option<String>,
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

/// The two forms of `Retry-After` (RFC 9110 §10.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`, this long after the pod's own (skewed) clock when it answers.
    DateIn(Duration),
    /// `Retry-After: <HTTP-date>` of this instant, whatever the time of the answer (may lie in the past).
    Date(SystemTime),
}

impl Fault {
    /// `Fault::Status` without `Retry-After` or `Location`.
    #[must_use]
    pub fn status(status: u16) -> Self {
        Fault::Status { status, retry_after: None, location: None }
    }

    /// `Fault::Status` with `Retry-After: <seconds>`.
    #[must_use]
    pub fn status_retry_after(status: u16, seconds: u64) -> Self {
        Fault::Status { status, retry_after: Some(RetryAfter::Seconds(seconds)), location: None }
    }

    /// `Fault::Status` with an HTTP-date `Retry-After` this long after the pod's clock at the time of the answer.
    #[must_use]
    pub fn status_retry_after_date(status: u16, after: Duration) -> Self {
        Fault::Status { status, retry_after: Some(RetryAfter::DateIn(after)), location: None }
    }

    /// A redirect: `status` (302, 307, ...) with `Location: <location>`. Tokens must never follow one.
    #[must_use]
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        Fault::Status { status, retry_after: None, location: Some(location.into()) }
    }
}
