//! Who sent a request, as far as the pod can tell: the listener it arrived on and the client certificate's CN.

/// The listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// Plain HTTP.
    Http,
    /// HTTPS with server authentication only.
    Https,
    /// HTTPS that requires a client certificate signed by the fake's CA.
    MutualTls,
    /// No socket: a test called [`FakePod::handle`](crate::FakePod::handle) directly.
    InProcess,
}

/// What the transport tells the pod about the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The listener the request arrived on.
    pub listener: Listener,
    /// The subject CN of the verified client certificate, if one was presented.
    pub client_cn: Option<String>,
}

impl Peer {
    /// A caller with no client certificate, as on the plain HTTP listener.
    #[must_use]
    pub fn without_certificate(listener: Listener) -> Self {
        Peer { listener, client_cn: None }
    }

    /// An in-process caller with no client certificate.
    #[must_use]
    pub fn in_process() -> Self {
        Self::without_certificate(Listener::InProcess)
    }

    /// A caller that presented a verified client certificate with this CN.
    #[must_use]
    pub fn with_certificate(cn: impl Into<String>) -> Self {
        Peer { listener: Listener::MutualTls, client_cn: Some(cn.into()) }
    }
}
