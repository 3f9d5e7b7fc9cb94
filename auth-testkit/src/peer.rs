//! Who sent a request, as far as the pod can tell: the host (listener) it arrived on and the client certificate's CN.

use crate::endpoint::Role;

/// What the transport tells the pod about the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The host the request arrived on; `None` for a test that called [`FakePod::handle`](crate::FakePod::handle)
    /// directly, which reaches every endpoint as if all roles shared one host.
    pub role: Option<Role>,
    /// The subject CN of the verified client certificate, if one was presented.
    pub client_cn: Option<String>,
}

impl Peer {
    /// An in-process caller with no client certificate: every endpoint answers.
    #[must_use]
    pub fn in_process() -> Self {
        Peer { role: None, client_cn: None }
    }

    /// An in-process caller that presented a verified client certificate with this CN.
    #[must_use]
    pub fn with_certificate(cn: impl Into<String>) -> Self {
        Peer { role: None, client_cn: Some(cn.into()) }
    }

    /// A caller on the host of `role`, with no client certificate: endpoints of other hosts answer 404.
    #[must_use]
    pub fn on(role: Role) -> Self {
        Peer { role: Some(role), client_cn: None }
    }
}
