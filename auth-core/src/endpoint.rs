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

/// The endpoints a login calls: the four bot logins, the agent's version check, and the two steps of an OBO
/// (on-behalf-of) login: the app's own session, then the user's session obtained with it.
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
    /// `POST /login/pubkey/app/authenticate` on the pod (O1): the app's session, with a JWT whose `sub` is the
    /// app id.
    RsaAppSession,
    /// `POST /sessionauth/v1/app/authenticate` on the session-auth host, over mutual TLS with the app's
    /// certificate (O4).
    CertificateAppSession,
    /// `POST /login/pubkey/app/user/{userId}/authenticate` on the pod (O2), with the app session.
    RsaOboUserId,
    /// `POST /login/pubkey/app/username/{username}/authenticate` on the pod (O3), with the app session.
    RsaOboUsername,
    /// `POST /sessionauth/v1/app/user/{userId}/authenticate` on the session-auth host (O5), with the app session.
    CertificateOboUserId,
    /// `POST /sessionauth/v1/app/username/{username}/authenticate` on the session-auth host (O6), with the app
    /// session.
    CertificateOboUsername,
}

impl LoginEndpoint {
    /// The path under the service's base URL; for the OBO user logins, a template whose `{userId}` or
    /// `{username}` the request builder fills in.
    #[must_use]
    pub fn path(self) -> &'static str {
        match self {
            Self::RsaSession => "/login/pubkey/authenticate",
            Self::RsaKeyManager => "/relay/pubkey/authenticate",
            Self::CertificateSession => "/sessionauth/v1/authenticate",
            Self::CertificateKeyManager => "/keyauth/v1/authenticate",
            Self::AgentVersion => "/agent/v1/info",
            Self::RsaAppSession => "/login/pubkey/app/authenticate",
            Self::CertificateAppSession => "/sessionauth/v1/app/authenticate",
            Self::RsaOboUserId => "/login/pubkey/app/user/{userId}/authenticate",
            Self::RsaOboUsername => "/login/pubkey/app/username/{username}/authenticate",
            Self::CertificateOboUserId => "/sessionauth/v1/app/user/{userId}/authenticate",
            Self::CertificateOboUsername => "/sessionauth/v1/app/username/{username}/authenticate",
        }
    }

    /// Which token it yields.
    #[must_use]
    pub fn purpose(self) -> Purpose {
        match self {
            Self::RsaSession
            | Self::CertificateSession
            | Self::RsaAppSession
            | Self::CertificateAppSession
            | Self::RsaOboUserId
            | Self::RsaOboUsername
            | Self::CertificateOboUserId
            | Self::CertificateOboUsername => Purpose::Session,
            Self::RsaKeyManager | Self::CertificateKeyManager => Purpose::KeyManager,
            Self::AgentVersion => Purpose::AgentVersion,
        }
    }

    /// Whether it authenticates by TLS client certificate (and so needs the driver's mutual-TLS client).
    #[must_use]
    pub fn uses_client_certificate(self) -> bool {
        matches!(self, Self::CertificateSession | Self::CertificateKeyManager | Self::CertificateAppSession)
    }

    /// Whether its request carries a login JWT (the RSA logins of a bot or an app).
    #[must_use]
    pub fn signs_jwt(self) -> bool {
        matches!(self, Self::RsaSession | Self::RsaKeyManager | Self::RsaAppSession)
    }

    /// Whether it is the second step of an OBO login: a user's session, asked with the app's session.
    #[must_use]
    pub fn is_obo_user(self) -> bool {
        matches!(
            self,
            Self::RsaOboUserId | Self::RsaOboUsername | Self::CertificateOboUserId | Self::CertificateOboUsername
        )
    }
}

impl fmt::Display for LoginEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = if *self == Self::AgentVersion { "GET" } else { "POST" };
        write!(f, "{method} {}", self.path())
    }
}
