//! Where each service lives, and which tokens a request to a URI may carry.

use http::Uri;

use super::BaseUrl;
use super::url::has_dot_segment;
use crate::endpoint::LoginEndpoint;
use crate::error::{ConfigError, UsageError};
use crate::tokens::Target;

/// Where each service lives. The fixed prefixes (`/login`, `/relay`, `/sessionauth`, `/keyauth`, `/pod`,
/// `/agent`) are added by the request builders, so a base URL is just scheme, host, port and the deployment's own
/// context path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The pod: RSA session login (`/login`), pod APIs (`/pod`).
    pub pod: BaseUrl,
    /// The key manager: RSA login (`/relay`) and certificate login (`/keyauth`).
    pub key_manager: BaseUrl,
    /// The session-auth host, for certificate session login (`/sessionauth`).
    pub session_auth: BaseUrl,
    /// The agent (`/agent`).
    pub agent: BaseUrl,
}

impl Endpoints {
    /// Every service at one base URL, the way a BDK configuration with only a root `host` resolves.
    pub fn single(url: &str) -> Result<Self, ConfigError> {
        let base = BaseUrl::parse("pod", url)?;
        Ok(Self { pod: base.clone(), key_manager: base.clone(), session_auth: base.clone(), agent: base })
    }

    /// Every base URL accepts plain `http` even for hosts that are not loopback (see
    /// [`BaseUrl::allow_insecure_http`]).
    #[must_use]
    pub fn allow_insecure_http(self) -> Self {
        Self {
            pod: self.pod.allow_insecure_http(),
            key_manager: self.key_manager.allow_insecure_http(),
            session_auth: self.session_auth.allow_insecure_http(),
            agent: self.agent.allow_insecure_http(),
        }
    }

    /// Checks that no base URL uses plain `http` to a host that is not loopback without consent.
    ///
    /// # Errors
    /// [`ConfigError::InsecureHttp`] naming the first such service (`pod`, `keyManager`, `sessionAuth`, `agent`).
    pub fn check_insecure_http(&self) -> Result<(), ConfigError> {
        let named = [
            ("pod", &self.pod),
            ("keyManager", &self.key_manager),
            ("sessionAuth", &self.session_auth),
            ("agent", &self.agent),
        ];
        match named.into_iter().find(|(_, base)| base.is_insecure_without_consent()) {
            Some((which, base)) => Err(ConfigError::InsecureHttp { which, url: base.to_string() }),
            None => Ok(()),
        }
    }

    /// Which kind of service `uri` is for, and so which tokens it may carry:
    /// - the agent when it is under the agent base URL and its path continues with `/agent`;
    /// - the pod when it is under the pod or agent base URL, or under the session-auth base URL with `/sessionauth`
    ///   (its logout takes the session token).
    ///
    /// Refused, so that tokens never go there: any other host or path; a path with `.` or `..` segments (a server
    /// resolves `/agent/../pod/x` to `/pod/x`, so what it names is not what it looks like); the key manager's own
    /// paths (`/relay`, `/keyauth`), which never take the session token; and a URI with user information (a
    /// password there would end up in transport error messages).
    ///
    /// # Errors
    /// [`UsageError::ForeignUri`] for a URI outside every configured service, [`UsageError::RefusedUri`] for the
    /// other refusals.
    pub fn target_of(&self, uri: &Uri) -> Result<Target, UsageError> {
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(UsageError::RefusedUri {
                uri: shown_uri(uri),
                reason: "it has user information, which HTTP clients repeat in their error messages",
            });
        }
        if has_dot_segment(uri.path()) {
            return Err(UsageError::RefusedUri {
                uri: shown_uri(uri),
                reason: "its path has `.` or `..` segments, which a server resolves to another path",
            });
        }
        let under = |base: &BaseUrl, prefix: &str| {
            base.contains(uri) && path_starts_with(uri.path(), &format!("{}{prefix}", base.context()))
        };
        let bases = [&self.pod, &self.key_manager, &self.session_auth, &self.agent];
        if bases.iter().any(|base| under(base, "/relay") || under(base, "/keyauth")) {
            return Err(UsageError::RefusedUri {
                uri: shown_uri(uri),
                reason: "it is a key-manager path (`/relay`, `/keyauth`), and the key manager never takes the \
                         session token",
            });
        }
        if under(&self.agent, "/agent") {
            Ok(Target::Agent)
        } else if self.pod.contains(uri) || self.agent.contains(uri) || under(&self.session_auth, "/sessionauth") {
            Ok(Target::Pod)
        } else {
            Err(UsageError::ForeignUri(shown_uri(uri)))
        }
    }
}

/// Whether `path` is `prefix` or continues it with `/`.
fn path_starts_with(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `uri` for a message: scheme, host, port and path. The query is the caller's data, and user information may hold
/// a password: both are left out.
fn shown_uri(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}{}", uri.scheme_str().unwrap_or(""), uri.path())
}

impl LoginEndpoint {
    /// The base URL it lives under.
    #[must_use]
    pub fn base(self, endpoints: &Endpoints) -> &BaseUrl {
        match self {
            Self::RsaSession | Self::RsaAppSession | Self::RsaOboUserId | Self::RsaOboUsername => &endpoints.pod,
            Self::RsaKeyManager | Self::CertificateKeyManager => &endpoints.key_manager,
            Self::CertificateSession
            | Self::CertificateAppSession
            | Self::CertificateOboUserId
            | Self::CertificateOboUsername => &endpoints.session_auth,
            Self::AgentVersion => &endpoints.agent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn cert_config(endpoints: Endpoints) -> Result<Config, ConfigError> {
        Config::certificate(endpoints, "bot")
    }

    #[test]
    fn plain_http_needs_consent_except_on_loopback() {
        for url in ["http://acme.symphony.com", "http://10.0.0.7:8080", "http://[2001:db8::1]", "http://localhost.evil"]
        {
            let error = cert_config(Endpoints::single(url).unwrap()).unwrap_err();
            assert!(matches!(error, ConfigError::InsecureHttp { which: "pod", .. }), "{url}: {error:?}");
            let message = error.to_string();
            assert!(
                message.contains("allow_insecure_http()") && message.contains("allowInsecureHttp: true"),
                "{message}"
            );
            assert!(cert_config(Endpoints::single(url).unwrap().allow_insecure_http()).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://[::1]:9000/ctx",
            "http://localhost:1",
            "http://LocalHost",
            "http://[::ffff:127.0.0.1]",
            "https://acme.symphony.com",
        ] {
            assert!(cert_config(Endpoints::single(url).unwrap()).is_ok(), "{url}");
        }
        // One service is enough to refuse, and the error names it.
        let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        endpoints.agent = BaseUrl::parse("agent", "http://agent.acme:8080").unwrap();
        assert!(matches!(cert_config(endpoints).unwrap_err(), ConfigError::InsecureHttp { which: "agent", .. }));
    }

    #[test]
    fn dot_segments_and_key_manager_paths_never_get_tokens() {
        let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        for refused in [
            "https://acme.symphony.com/agent/../pod/v2/sessioninfo",
            "https://acme.symphony.com/agent/./v1/util/echo",
            "https://acme.symphony.com/agent/%2E%2e/pod/x",
            "https://acme.symphony.com/agent/.%2e/pod/x",
            "https://acme.symphony.com/relay/pubkey/authenticate",
            "https://acme.symphony.com/keyauth/v1/logout",
        ] {
            let result = endpoints.target_of(&refused.parse().unwrap());
            assert!(matches!(result, Err(UsageError::RefusedUri { .. })), "{refused}: {result:?}");
        }
        assert_eq!(endpoints.target_of(&"https://acme.symphony.com/agent/v1/a..b".parse().unwrap()), Ok(Target::Agent));
        assert_eq!(endpoints.target_of(&"https://acme.symphony.com/relayx".parse().unwrap()), Ok(Target::Pod));

        // Dedicated hosts: the session-auth host takes the session token for `/sessionauth` (logout) only, the
        // key-manager host never.
        endpoints.session_auth = BaseUrl::parse("sessionAuth", "https://acme-api.symphony.com:8444").unwrap();
        endpoints.key_manager = BaseUrl::parse("keyManager", "https://km.acme:8444/ctx").unwrap();
        let target = |uri: &str| endpoints.target_of(&uri.parse().unwrap());
        assert_eq!(target("https://acme-api.symphony.com:8444/sessionauth/v1/logout"), Ok(Target::Pod));
        assert!(matches!(
            target("https://acme-api.symphony.com:8444/pod/v2/sessioninfo"),
            Err(UsageError::ForeignUri(_))
        ));
        assert!(matches!(target("https://km.acme:8444/ctx/keyauth/v1/logout"), Err(UsageError::RefusedUri { .. })));
        assert!(matches!(target("https://km.acme:8444/ctx/other"), Err(UsageError::ForeignUri(_))));
        let error = target("https://evil.example/x?token=t").unwrap_err();
        assert_eq!(error, UsageError::ForeignUri("https://evil.example/x".into()));
        let error = target("https://user:pw@acme.symphony.com/pod/v2/sessioninfo").unwrap_err();
        assert!(
            matches!(&error, UsageError::RefusedUri { uri, .. } if uri == "https://acme.symphony.com/pod/v2/sessioninfo")
        );
    }

    #[test]
    fn agent_urls_are_told_from_pod_urls() {
        let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        let agent: Uri = "https://acme.symphony.com/agent/v1/util/echo".parse().unwrap();
        let pod: Uri = "https://acme.symphony.com/pod/v2/sessioninfo".parse().unwrap();
        let lookalike: Uri = "https://acme.symphony.com/agentx/v1".parse().unwrap();
        assert_eq!(endpoints.target_of(&agent), Ok(Target::Agent));
        assert_eq!(endpoints.target_of(&pod), Ok(Target::Pod));
        assert_eq!(endpoints.target_of(&lookalike), Ok(Target::Pod));
        endpoints.agent = BaseUrl::parse("agent", "https://agent.acme:8443/ctx").unwrap();
        assert_eq!(endpoints.target_of(&agent), Ok(Target::Pod));
        let moved: Uri = "https://agent.acme:8443/ctx/agent/v4/stream".parse().unwrap();
        assert_eq!(endpoints.target_of(&moved), Ok(Target::Agent));
        for foreign in [
            "https://evil.example/pod/v2/sessioninfo",
            "http://acme.symphony.com/pod",
            "https://acme.symphony.com:8443/x",
            "/relative",
        ] {
            assert!(
                matches!(endpoints.target_of(&foreign.parse().unwrap()), Err(UsageError::ForeignUri(_))),
                "{foreign}"
            );
        }
    }
}
