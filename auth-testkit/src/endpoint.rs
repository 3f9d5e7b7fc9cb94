//! The endpoints the fake serves, the host role each belongs to, and how a request's method and path map to one.

use http::Method;

/// The hosts of a deployment (PROTOCOL §1). [`FakePodServer`](crate::FakePodServer) serves each on a listener of its
/// own, so that a request sent to the wrong host fails as it would against a real deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The pod: RSA session login (`/login`) and the pod API (`/pod`).
    Pod,
    /// The key manager's RSA login (`/relay`).
    KeyManager,
    /// The agent (`/agent`).
    Agent,
    /// The session-auth host: certificate session login (`/sessionauth`), mutual TLS.
    SessionAuth,
    /// The key manager's certificate login (`/keyauth`), mutual TLS.
    KeyAuth,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 5] = [Role::Pod, Role::KeyManager, Role::Agent, Role::SessionAuth, Role::KeyAuth];

    /// The role's name as the `fake-pod` binary prints it: `pod`, `key_manager`, `agent`, `session_auth`, `key_auth`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Role::Pod => "pod",
            Role::KeyManager => "key_manager",
            Role::Agent => "agent",
            Role::SessionAuth => "session_auth",
            Role::KeyAuth => "key_auth",
        }
    }

    /// Whether this host requires a client certificate (the certificate logins' hosts).
    #[must_use]
    pub fn requires_client_certificate(self) -> bool {
        matches!(self, Role::SessionAuth | Role::KeyAuth)
    }
}

/// One endpoint of the fake pod, key manager or agent (see PROTOCOL §2).
///
/// Counters, latencies and fault scripts are kept per endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A1 `POST /login/pubkey/authenticate`: RSA session login on the pod.
    SessionLogin,
    /// A2 `POST /relay/pubkey/authenticate`: RSA login on the key manager.
    KeyManagerLogin,
    /// A3 `POST /sessionauth/v1/authenticate`: certificate session login.
    CertSessionLogin,
    /// A4 `POST /keyauth/v1/authenticate`: certificate login on the key manager.
    CertKeyManagerLogin,
    /// S1 `GET /pod/v2/sessioninfo`.
    SessionInfo,
    /// G1 `POST /agent/v1/util/echo`.
    Echo,
    /// G4 `GET /agent/v1/info`.
    AgentInfo,
    /// G2 `GET /agent/v3/health`.
    Health,
    /// G3 `GET /agent/v3/health/extended`.
    HealthExtended,
    /// O1 `POST /login/pubkey/app/authenticate`: an app's RSA login on the pod.
    AppLogin,
    /// O2 `POST /login/pubkey/app/user/{userId}/authenticate`: an OBO session by user id, on the pod.
    OboUserLogin,
    /// O3 `POST /login/pubkey/app/username/{username}/authenticate`: an OBO session by username, on the pod.
    OboUsernameLogin,
    /// O4 `POST /sessionauth/v1/app/authenticate`: an app's certificate login.
    CertAppLogin,
    /// O5 `POST /sessionauth/v1/app/user/{userId}/authenticate`: an OBO session by user id, over mutual TLS.
    CertOboUserLogin,
    /// O6 `POST /sessionauth/v1/app/username/{username}/authenticate`: an OBO session by username, over mutual TLS.
    CertOboUsernameLogin,
    /// S2 `POST /sessionauth/v1/logout`: ends the session whose token the request carries.
    Logout,
    /// E1 `POST /login/v1/pubkey/app/authenticate/extensionApp`: RSA extension-app login on the pod.
    ExtensionAppLogin,
    /// E2 `POST /sessionauth/v1/authenticate/extensionApp`: certificate extension-app login.
    CertExtensionAppLogin,
    /// E3 `GET /pod/v1/podcert`: the pod certificate.
    PodCertificate,
    /// E4 `GET /sessionauth/v1/app/pod/certificate`: the pod certificate, over mutual TLS.
    AppPodCertificate,
    /// A5 `POST /login/idm/tokens`: a Common JWT access token for a session.
    AccessToken,
    /// A6 `GET /login/idm/keys`: the JWKS that signs access tokens.
    AccessTokenKeys,
    /// D1 `POST /agent/v5/datafeeds`: creates a datafeed for the calling bot.
    DatafeedCreate,
    /// D2 `POST /agent/v5/datafeeds/{datafeedId}/read`: the events of a datafeed, acknowledged by `ackId`.
    DatafeedRead,
    /// Anything else: answered 404.
    NotFound,
}

impl Endpoint {
    /// Every endpoint, in declaration order.
    pub const ALL: [Endpoint; 25] = [
        Endpoint::SessionLogin,
        Endpoint::KeyManagerLogin,
        Endpoint::CertSessionLogin,
        Endpoint::CertKeyManagerLogin,
        Endpoint::SessionInfo,
        Endpoint::Echo,
        Endpoint::AgentInfo,
        Endpoint::Health,
        Endpoint::HealthExtended,
        Endpoint::AppLogin,
        Endpoint::OboUserLogin,
        Endpoint::OboUsernameLogin,
        Endpoint::CertAppLogin,
        Endpoint::CertOboUserLogin,
        Endpoint::CertOboUsernameLogin,
        Endpoint::Logout,
        Endpoint::ExtensionAppLogin,
        Endpoint::CertExtensionAppLogin,
        Endpoint::PodCertificate,
        Endpoint::AppPodCertificate,
        Endpoint::AccessToken,
        Endpoint::AccessTokenKeys,
        Endpoint::DatafeedCreate,
        Endpoint::DatafeedRead,
        Endpoint::NotFound,
    ];

    /// The endpoint a request with this method and path (no query) is for.
    ///
    /// A known path with the wrong method is `NotFound`, answered 404 with a JSON error.
    #[must_use]
    pub fn classify(method: &Method, path: &str) -> Endpoint {
        let matches = |e: &Endpoint| e.path().is_some_and(|template| path_matches(template, path));
        let Some(endpoint) = Self::ALL.iter().copied().find(matches) else {
            return Endpoint::NotFound;
        };
        if endpoint.method() == Some(method) { endpoint } else { Endpoint::NotFound }
    }

    /// The path this endpoint is served on (`None` for [`Endpoint::NotFound`]); a `{name}` segment stands for any
    /// one non-empty segment.
    #[must_use]
    pub fn path(self) -> Option<&'static str> {
        Some(match self {
            Endpoint::SessionLogin => "/login/pubkey/authenticate",
            Endpoint::KeyManagerLogin => "/relay/pubkey/authenticate",
            Endpoint::CertSessionLogin => "/sessionauth/v1/authenticate",
            Endpoint::CertKeyManagerLogin => "/keyauth/v1/authenticate",
            Endpoint::SessionInfo => "/pod/v2/sessioninfo",
            Endpoint::Echo => "/agent/v1/util/echo",
            Endpoint::AgentInfo => "/agent/v1/info",
            Endpoint::Health => "/agent/v3/health",
            Endpoint::HealthExtended => "/agent/v3/health/extended",
            Endpoint::AppLogin => "/login/pubkey/app/authenticate",
            Endpoint::OboUserLogin => "/login/pubkey/app/user/{userId}/authenticate",
            Endpoint::OboUsernameLogin => "/login/pubkey/app/username/{username}/authenticate",
            Endpoint::CertAppLogin => "/sessionauth/v1/app/authenticate",
            Endpoint::CertOboUserLogin => "/sessionauth/v1/app/user/{userId}/authenticate",
            Endpoint::CertOboUsernameLogin => "/sessionauth/v1/app/username/{username}/authenticate",
            Endpoint::Logout => "/sessionauth/v1/logout",
            Endpoint::ExtensionAppLogin => "/login/v1/pubkey/app/authenticate/extensionApp",
            Endpoint::CertExtensionAppLogin => "/sessionauth/v1/authenticate/extensionApp",
            Endpoint::PodCertificate => "/pod/v1/podcert",
            Endpoint::AppPodCertificate => "/sessionauth/v1/app/pod/certificate",
            Endpoint::AccessToken => "/login/idm/tokens",
            Endpoint::AccessTokenKeys => "/login/idm/keys",
            Endpoint::DatafeedCreate => "/agent/v5/datafeeds",
            Endpoint::DatafeedRead => "/agent/v5/datafeeds/{datafeedId}/read",
            Endpoint::NotFound => return None,
        })
    }

    /// The method this endpoint answers (`None` for [`Endpoint::NotFound`]).
    #[must_use]
    pub fn method(self) -> Option<&'static Method> {
        match self {
            Endpoint::SessionInfo
            | Endpoint::AgentInfo
            | Endpoint::Health
            | Endpoint::HealthExtended
            | Endpoint::PodCertificate
            | Endpoint::AppPodCertificate
            | Endpoint::AccessTokenKeys => Some(&Method::GET),
            Endpoint::NotFound => None,
            _ => Some(&Method::POST),
        }
    }

    /// The endpoint a request with this method and path is for when it arrives on the host of `role`: a path that
    /// another host serves is [`Endpoint::NotFound`] there. `None` (an in-process caller) reaches every endpoint.
    #[must_use]
    pub fn routed(method: &Method, path: &str, role: Option<Role>) -> Endpoint {
        let endpoint = Self::classify(method, path);
        match role {
            Some(role) if endpoint.role() != Some(role) => Endpoint::NotFound,
            _ => endpoint,
        }
    }

    /// The host this endpoint is served on (`None` for [`Endpoint::NotFound`]).
    #[must_use]
    pub fn role(self) -> Option<Role> {
        Some(match self {
            Endpoint::SessionLogin
            | Endpoint::SessionInfo
            | Endpoint::AppLogin
            | Endpoint::OboUserLogin
            | Endpoint::OboUsernameLogin
            | Endpoint::ExtensionAppLogin
            | Endpoint::PodCertificate
            | Endpoint::AccessToken
            | Endpoint::AccessTokenKeys => Role::Pod,
            Endpoint::CertExtensionAppLogin | Endpoint::AppPodCertificate => Role::SessionAuth,
            Endpoint::KeyManagerLogin => Role::KeyManager,
            Endpoint::CertSessionLogin
            | Endpoint::CertAppLogin
            | Endpoint::CertOboUserLogin
            | Endpoint::CertOboUsernameLogin
            | Endpoint::Logout => Role::SessionAuth,
            Endpoint::CertKeyManagerLogin => Role::KeyAuth,
            Endpoint::Echo
            | Endpoint::AgentInfo
            | Endpoint::Health
            | Endpoint::HealthExtended
            | Endpoint::DatafeedCreate
            | Endpoint::DatafeedRead => Role::Agent,
            Endpoint::NotFound => return None,
        })
    }

    /// Whether this endpoint belongs to the key manager (what "key manager down" takes down).
    #[must_use]
    pub fn is_key_manager(self) -> bool {
        matches!(self, Endpoint::KeyManagerLogin | Endpoint::CertKeyManagerLogin)
    }

    /// Whether this endpoint is one of the two RSA logins, which take a JSON body.
    #[must_use]
    pub fn is_rsa_login(self) -> bool {
        matches!(self, Endpoint::SessionLogin | Endpoint::KeyManagerLogin)
    }

    /// Whether this endpoint is a login: the four of a bot, and the six of an app and its OBO users.
    #[must_use]
    pub fn is_login(self) -> bool {
        matches!(
            self,
            Endpoint::SessionLogin
                | Endpoint::KeyManagerLogin
                | Endpoint::CertSessionLogin
                | Endpoint::CertKeyManagerLogin
                | Endpoint::AppLogin
                | Endpoint::OboUserLogin
                | Endpoint::OboUsernameLogin
                | Endpoint::CertAppLogin
                | Endpoint::CertOboUserLogin
                | Endpoint::CertOboUsernameLogin
        )
    }
}

/// Whether `path` fits `template`: the same segments, where a `{name}` segment takes any non-empty one.
fn path_matches(template: &str, path: &str) -> bool {
    let (mut template, mut path) = (template.split('/'), path.split('/'));
    loop {
        match (template.next(), path.next()) {
            (None, None) => return true,
            (Some(t), Some(p)) if t.starts_with('{') && t.ends_with('}') && !p.is_empty() => {}
            (Some(t), Some(p)) if t == p => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_round_trips_every_endpoint() {
        for e in Endpoint::ALL {
            if let (Some(m), Some(p)) = (e.method(), e.path()) {
                assert_eq!(Endpoint::classify(m, p), e);
            }
        }
        assert_eq!(Endpoint::classify(&Method::GET, "/login/pubkey/authenticate"), Endpoint::NotFound);
        assert_eq!(Endpoint::classify(&Method::GET, "/nope"), Endpoint::NotFound);
        let post = &Method::POST;
        assert_eq!(Endpoint::classify(post, "/login/pubkey/app/user/123/authenticate"), Endpoint::OboUserLogin);
        assert_eq!(
            Endpoint::classify(post, "/sessionauth/v1/app/username/j%20doe/authenticate"),
            Endpoint::CertOboUsernameLogin
        );
        assert_eq!(Endpoint::classify(post, "/login/pubkey/app/user//authenticate"), Endpoint::NotFound);
        assert_eq!(Endpoint::classify(post, "/login/pubkey/app/user/1/2/authenticate"), Endpoint::NotFound);
    }

    #[test]
    fn each_endpoint_answers_on_its_own_host_only() {
        for e in Endpoint::ALL {
            let (Some(m), Some(p), Some(home)) = (e.method(), e.path(), e.role()) else { continue };
            assert_eq!(Endpoint::routed(m, p, None), e);
            for role in Role::ALL {
                let expected = if role == home { e } else { Endpoint::NotFound };
                assert_eq!(Endpoint::routed(m, p, Some(role)), expected, "{e:?} on {role:?}");
            }
        }
        assert_eq!(Endpoint::SessionInfo.role(), Some(Role::Pod));
        assert_eq!(Endpoint::CertKeyManagerLogin.role(), Some(Role::KeyAuth));
    }
}
