//! Which service a request goes to, and the headers a configuration adds to every request of a service
//! (`defaultHeaders` in a BDK file).

use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

use super::Endpoints;
use crate::endpoint::LoginEndpoint;
use crate::error::ConfigError;
use crate::tokens::{KEY_MANAGER_TOKEN_HEADER, SESSION_TOKEN_HEADER};

/// One of the services of a deployment, as a BDK configuration names its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Service {
    /// `pod`: `/login`, `/pod`.
    Pod,
    /// `keyManager`: `/relay`, `/keyauth`.
    KeyManager,
    /// `sessionAuth`: `/sessionauth`.
    SessionAuth,
    /// `agent`: `/agent`.
    Agent,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 4] = [Service::Pod, Service::KeyManager, Service::SessionAuth, Service::Agent];

    /// The key of its entry in a BDK configuration.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pod => "pod",
            Self::KeyManager => "keyManager",
            Self::SessionAuth => "sessionAuth",
            Self::Agent => "agent",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl LoginEndpoint {
    /// The service it is served by.
    #[must_use]
    pub fn service(self) -> Service {
        match self {
            Self::RsaKeyManager | Self::CertificateKeyManager => Service::KeyManager,
            Self::AgentVersion => Service::Agent,
            endpoint if endpoint.uses_client_certificate() || endpoint.path().starts_with("/sessionauth") => {
                Service::SessionAuth
            }
            _ => Service::Pod,
        }
    }
}

impl Endpoints {
    /// The service `uri` goes to: by its fixed path prefix (`/agent`, `/relay` and `/keyauth`, `/sessionauth`)
    /// under that service's base URL, otherwise the pod for a URI under the pod's base URL. `None` for a URI
    /// outside every configured service.
    #[must_use]
    pub fn service_of(&self, uri: &Uri) -> Option<Service> {
        let under = |base: &super::BaseUrl, prefix: &str| {
            let path = uri.path().strip_prefix(base.context()).unwrap_or("");
            base.contains(uri) && path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under(&self.agent, "/agent") {
            Some(Service::Agent)
        } else if under(&self.key_manager, "/relay") || under(&self.key_manager, "/keyauth") {
            Some(Service::KeyManager)
        } else if under(&self.session_auth, "/sessionauth") {
            Some(Service::SessionAuth)
        } else if self.pod.contains(uri) {
            Some(Service::Pod)
        } else {
            None
        }
    }
}

/// Headers added to every request of a service (`defaultHeaders`). A request's own value of a header wins,
/// except `User-Agent`, which a default replaces (as in the BDKs). Headers that carry credentials or framing
/// (`sessionToken`, `keyManagerToken`, `Authorization`, `Host`, `Content-Length`, `Transfer-Encoding`) are refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DefaultHeaders {
    by_service: [HeaderMap; 4],
}

impl DefaultHeaders {
    /// No default headers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name: value` to the requests of `service`, replacing an earlier default of that name.
    ///
    /// # Errors
    /// [`ConfigError::DefaultHeader`] for an invalid name or value, or a refused header. The value is never shown.
    pub fn insert(&mut self, service: Service, name: &str, value: &str) -> Result<(), ConfigError> {
        let invalid = |reason| ConfigError::DefaultHeader { service: service.name(), name: name.to_owned(), reason };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("not a valid header name"))?;
        let refused =
            [SESSION_TOKEN_HEADER, KEY_MANAGER_TOKEN_HEADER, AUTHORIZATION, HOST, CONTENT_LENGTH, TRANSFER_ENCODING];
        if refused.contains(&header) {
            return Err(invalid("set by the library itself: a default may not replace it"));
        }
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid("the value is not a valid header value"))?;
        // A default header may carry an API key: its value never shows in `Debug` (of the configuration, or of a
        // request that carries it).
        value.set_sensitive(true);
        self.by_service[service.index()].insert(header, value);
        Ok(())
    }

    /// The defaults of `service`.
    #[must_use]
    pub fn of(&self, service: Service) -> &HeaderMap {
        &self.by_service[service.index()]
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_service.iter().all(HeaderMap::is_empty)
    }

    /// Adds the defaults of `service` to `headers`.
    pub fn apply(&self, service: Service, headers: &mut HeaderMap) {
        for (name, value) in self.of(service) {
            if *name == USER_AGENT || !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BaseUrl;

    #[test]
    fn requests_are_told_apart_by_service() {
        let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        endpoints.session_auth = BaseUrl::parse("sessionAuth", "https://acme-api.symphony.com:8444").unwrap();
        let service = |uri: &str| endpoints.service_of(&uri.parse().unwrap());
        assert_eq!(service("https://acme.symphony.com/agent/v1/util/echo"), Some(Service::Agent));
        assert_eq!(service("https://acme.symphony.com/relay/pubkey/authenticate"), Some(Service::KeyManager));
        assert_eq!(service("https://acme.symphony.com/pod/v2/sessioninfo"), Some(Service::Pod));
        assert_eq!(service("https://acme.symphony.com/agentx"), Some(Service::Pod));
        assert_eq!(service("https://acme-api.symphony.com:8444/sessionauth/v1/logout"), Some(Service::SessionAuth));
        assert_eq!(service("https://elsewhere.example/pod"), None);
        assert_eq!(LoginEndpoint::RsaAppSession.service(), Service::Pod);
        assert_eq!(LoginEndpoint::CertificateOboUsername.service(), Service::SessionAuth);
        assert_eq!(LoginEndpoint::CertificateKeyManager.service(), Service::KeyManager);
    }

    #[test]
    fn defaults_fill_in_and_user_agent_replaces() {
        let mut defaults = DefaultHeaders::new();
        defaults.insert(Service::Pod, "X-Trace", "abc").unwrap();
        defaults.insert(Service::Pod, "User-Agent", "my-bot/1").unwrap();
        defaults.insert(Service::Agent, "X-Agent-Only", "1").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("symphony-auth/0"));
        headers.insert("x-trace", HeaderValue::from_static("own"));
        defaults.apply(Service::Pod, &mut headers);
        assert_eq!(headers["user-agent"], "my-bot/1");
        assert_eq!(headers["x-trace"], "own", "the request's own value wins");
        assert!(!headers.contains_key("x-agent-only"));
        let refused = defaults.insert(Service::Pod, "sessionToken", "s3cr3t").unwrap_err();
        assert!(!refused.to_string().contains("s3cr3t"), "{refused}");
        assert!(defaults.insert(Service::Pod, "X-Bad", "a\nb").is_err());
        defaults.insert(Service::Pod, "X-Api-Key", "k3y-value").unwrap();
        assert!(!format!("{defaults:?}").contains("k3y-value"), "values are sensitive");
        assert!(defaults.insert(Service::Pod, "bad name", "x").is_err());
    }
}

#[cfg(test)]
mod machine_tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::machine::{Authenticator, Output};
    use crate::time::UnixTime;

    #[derive(Debug)]
    struct Zero;
    impl crate::signer::JwtSigner for Zero {
        fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, crate::error::SignError> {
            Ok(vec![0; 4])
        }
    }

    #[test]
    fn logins_and_api_calls_carry_the_defaults_of_their_service() {
        let mut defaults = DefaultHeaders::new();
        defaults.insert(Service::Pod, "X-Pod", "p").unwrap();
        defaults.insert(Service::KeyManager, "X-Km", "k").unwrap();
        defaults.insert(Service::Agent, "User-Agent", "my-bot/2").unwrap();
        let endpoints = Endpoints::single("https://pod.example").unwrap();
        let config = Config::rsa(endpoints, "bot", Arc::new(Zero)).unwrap().with_default_headers(defaults);
        let mut machine = Authenticator::new(config.clone(), 0);
        let now = UnixTime::from_secs(1_700_000_000);
        let Output::Sign(jwt) = machine.poll_output(now) else { panic!("a JWT to sign") };
        machine.supply_jwt(jwt.sign(), now);
        let Output::Send(batch) = machine.poll_output(now) else { panic!("the logins") };
        let (session, key_manager) = (&batch[0].request, &batch[1].request);
        assert_eq!(session.headers()["x-pod"], "p");
        assert!(!session.headers().contains_key("x-km"));
        assert_eq!(key_manager.headers()["x-km"], "k");

        let call = crate::api::ApiCall::new(crate::request::echo(config.endpoints(), "hi"), &config, 0).unwrap();
        let echo = call.parts_for_tests();
        assert_eq!(echo["user-agent"], "my-bot/2", "a default User-Agent replaces the library's");
        assert!(!echo.contains_key("x-pod"));
    }
}
