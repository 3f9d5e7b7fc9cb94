//! What [`FakePod::handle`](crate::FakePod::handle) returns: an HTTP response, or a network-level act
//! the socket shell performs (and an in-process test interprets).

use std::fmt;
use std::time::Duration;

/// The pod's answer to one request.
pub enum Reply {
    /// Send this response.
    Response(http::Response<Vec<u8>>),
    /// Wait this long (without blocking other requests), then enact the inner reply.
    Delayed(Duration, Box<Reply>),
    /// Close the connection without sending anything.
    Close,
    /// Write these bytes (not HTTP) on the connection, then close it.
    Garbage(Vec<u8>),
}

impl Reply {
    /// The response, looking through any delay; `None` for `Close` and `Garbage`.
    #[must_use]
    pub fn response(&self) -> Option<&http::Response<Vec<u8>>> {
        match self {
            Reply::Response(r) => Some(r),
            Reply::Delayed(_, inner) => inner.response(),
            Reply::Close | Reply::Garbage(_) => None,
        }
    }

    /// The response, looking through any delay; `None` for `Close` and `Garbage`.
    #[must_use]
    pub fn into_response(self) -> Option<http::Response<Vec<u8>>> {
        match self {
            Reply::Response(r) => Some(r),
            Reply::Delayed(_, inner) => inner.into_response(),
            Reply::Close | Reply::Garbage(_) => None,
        }
    }

    /// The total delay before the reply is enacted.
    #[must_use]
    pub fn delay(&self) -> Duration {
        match self {
            Reply::Delayed(d, inner) => *d + inner.delay(),
            _ => Duration::ZERO,
        }
    }

    /// The response status, looking through any delay; `None` for `Close` and `Garbage`.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        self.response().map(|r| r.status().as_u16())
    }

    /// The response body parsed as JSON, if there is a response and its body parses.
    #[must_use]
    pub fn json(&self) -> Option<serde_json::Value> {
        self.response().and_then(|r| serde_json::from_slice(r.body()).ok())
    }
}

/// Bodies hold tokens, so only their length is shown.
impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Response(r) => f
                .debug_struct("Response")
                .field("status", &r.status().as_u16())
                .field("body_len", &r.body().len())
                .finish(),
            Reply::Delayed(d, inner) => f.debug_tuple("Delayed").field(d).field(inner).finish(),
            Reply::Close => f.write_str("Close"),
            Reply::Garbage(bytes) => f.debug_struct("Garbage").field("len", &bytes.len()).finish(),
        }
    }
}
