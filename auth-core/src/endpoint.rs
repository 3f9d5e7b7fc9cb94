//! Which endpoint a login request calls, and what it is for. A leaf of the crate's module graph: errors and
//! configuration both speak of endpoints.

use std::fmt;

/// What a login request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// The pod session token.
    Session,
    /// The key-manager token.
    KeyManager,
    /// The agent's version: whether it supports simplified key delivery.
    AgentVersion,
}

/// The endpoints a login calls: the four logins, and the agent's version check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoginEndpoint {
    /// `POST /login/pubkey/authenticate` on the pod.
    RsaSession,
    /// `POST /relay/pubkey/authenticate` on the key manager.
    RsaKeyManager,
    /// `POST /sessionauth/v1/authenticate` on the session-auth host, over mutual TLS.
    CertificateSession,
    /// `POST /keyauth/v1/authenticate` on the key manager, over mutual TLS.
    CertificateKeyManager,
    /// `GET /agent/v1/info` on the agent: asked when the session grants simplified key delivery and a dedicated
    /// agent is configured, since only agents from 24.12 on deliver keys that way.
    AgentVersion,
}

impl LoginEndpoint {
    /// The path under the service's base URL.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Self::RsaSession => "/login/pubkey/authenticate",
            Self::RsaKeyManager => "/relay/pubkey/authenticate",
            Self::CertificateSession => "/sessionauth/v1/authenticate",
            Self::CertificateKeyManager => "/keyauth/v1/authenticate",
            Self::AgentVersion => "/agent/v1/info",
        }
    }

    /// Which token it yields.
    #[must_use]
    pub fn purpose(self) -> Purpose {
        match self {
            Self::RsaSession | Self::CertificateSession => Purpose::Session,
            Self::RsaKeyManager | Self::CertificateKeyManager => Purpose::KeyManager,
            Self::AgentVersion => Purpose::AgentVersion,
        }
    }

    /// Whether it authenticates by TLS client certificate (and so needs the driver's mutual-TLS client).
    #[must_use]
    pub fn uses_client_certificate(self) -> bool {
        matches!(self, Self::CertificateSession | Self::CertificateKeyManager)
    }
}

impl fmt::Display for LoginEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = if *self == Self::AgentVersion { "GET" } else { "POST" };
        write!(f, "{method} {}", self.path())
    }
}
