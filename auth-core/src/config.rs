//! What the machine needs to know before its first login: where the services are, who the bot is, how it proves
//! it, and the policies for retries, the key manager and parallel login. Everything is validated on construction.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::uri::{Authority, Scheme};

use crate::error::{ConfigError, UsageError};
use crate::retry::{CoolDown, RetryPolicy};
use crate::signer::JwtSigner;
use crate::tokens::Target;

/// The default JWT lifetime: 240 s, as both official SDKs use, which leaves a minute for a client clock ahead of
/// the pod's.
pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(240);
/// The longest JWT lifetime the pod accepts.
pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(300);

/// A validated base URL: `http` or `https`, a host, an optional port and an optional context path, without query,
/// fragment or user information.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    scheme: Scheme,
    authority: Authority,
    context: String,
}

impl BaseUrl {
    /// Parses `https://host[:port][/context]`. A value without a scheme is taken as an `https` host; a trailing
    /// `/` is dropped. `which` names the service in errors.
    pub fn parse(which: &'static str, url: &str) -> Result<Self, ConfigError> {
        let err = |reason| ConfigError::InvalidUrl { which, url: url.to_owned(), reason };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("https://{trimmed}") };
        let uri: Uri = with_scheme.parse().map_err(|_| err("not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::HTTPS,
            Some("http") => Scheme::HTTP,
            _ => return Err(err("the scheme must be `https` or `http`")),
        };
        let authority = uri.authority().cloned().ok_or_else(|| err("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(err("user information in URLs is not supported"));
        }
        if authority.host().is_empty() {
            return Err(err("it has no host"));
        }
        if uri.query().is_some() || with_scheme.contains('#') {
            return Err(err("a base URL takes no query or fragment"));
        }
        let context = uri.path().trim_end_matches('/').to_owned();
        Ok(Self { scheme, authority, context })
    }

    /// A base URL from parts, as BDK configuration files give them (`scheme`, `host`, `port`, `context`).
    pub fn from_parts(
        which: &'static str,
        scheme: &str,
        host: &str,
        port: Option<u16>,
        context: &str,
    ) -> Result<Self, ConfigError> {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let context = context.trim();
        let context =
            if context.is_empty() || context.starts_with('/') { context.to_owned() } else { format!("/{context}") };
        let scheme = scheme.trim();
        if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
            return Err(ConfigError::InvalidUrl {
                which,
                url: format!("{scheme}://{host}{port}{context}"),
                reason: "the scheme must be `https` or `http`",
            });
        }
        Self::parse(which, &format!("{}://{host}{port}{context}", scheme.to_ascii_lowercase()))
    }

    /// `http` or `https`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// The host, without port.
    #[must_use]
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// The port, written or implied by the scheme.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(if self.scheme == Scheme::HTTP { 80 } else { 443 })
    }

    /// The context path (`""` or `/something`, no trailing slash).
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The URI of `path` (which starts with `/`) under this base.
    #[must_use]
    pub fn join(&self, path: &str) -> Uri {
        let path_and_query = format!("{}{path}", self.context);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .unwrap_or_else(|_| Uri::from_static("/"))
    }

    /// Whether `uri` points at this base (same scheme, host, port, and under the context path).
    #[must_use]
    pub fn contains(&self, uri: &Uri) -> bool {
        let same_origin = uri.scheme_str() == Some(self.scheme.as_str())
            && uri.host().is_some_and(|h| h.eq_ignore_ascii_case(self.host()))
            && uri.port_u16().unwrap_or(if uri.scheme() == Some(&Scheme::HTTP) { 80 } else { 443 }) == self.port();
        let path = uri.path();
        same_origin
            && (self.context.is_empty()
                || path == self.context
                || path.strip_prefix(self.context.as_str()).is_some_and(|rest| rest.starts_with('/')))
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.context)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({self})")
    }
}

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

    /// Which kind of service `uri` is for, and so which tokens it may carry: the agent when it is under the agent
    /// base URL and its path continues with `/agent`; the pod when it is under the pod, key-manager or
    /// session-auth base URL. Any other host is refused: tokens must never be sent there.
    ///
    /// # Errors
    /// [`UsageError::ForeignUri`] for a URI outside every configured service.
    pub fn target_of(&self, uri: &Uri) -> Result<Target, UsageError> {
        let agent_path = format!("{}/agent", self.agent.context());
        let path = uri.path();
        let under_agent = path == agent_path || path.strip_prefix(&agent_path).is_some_and(|r| r.starts_with('/'));
        if self.agent.contains(uri) && under_agent {
            Ok(Target::Agent)
        } else if [&self.pod, &self.key_manager, &self.session_auth, &self.agent].iter().any(|base| base.contains(uri))
        {
            Ok(Target::Pod)
        } else {
            // The query is left out of the message: it is the caller's data.
            let authority = uri.authority().map_or("", |a| a.as_str());
            Err(UsageError::ForeignUri(format!("{}://{authority}{}", uri.scheme_str().unwrap_or(""), uri.path())))
        }
    }
}

/// A validated bot username: the JWT `sub` for RSA, the certificate CN for certificate logins.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    /// Checks that `name` is non-empty and has no control characters.
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(ConfigError::InvalidUsername(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// How the bot proves who it is.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LoginMethod {
    /// A JWT signed with the bot's RSA key, posted to `/login/pubkey/authenticate` and `/relay/pubkey/authenticate`.
    Rsa(Arc<dyn JwtSigner>),
    /// The TLS client certificate (CN = username), posted with no body to `/sessionauth/v1/authenticate` and
    /// `/keyauth/v1/authenticate`. The certificate itself is the driver's business.
    Certificate,
}

/// Whether to log in to the key manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyManagerPolicy {
    /// Log in to the key manager unless the session token grants simplified key delivery; then a key-manager
    /// failure does not fail the login.
    #[default]
    Auto,
    /// Always log in to the key manager; its failure fails the login.
    Always,
    /// Never log in to the key manager (pod-only bots, or agents with simplified key delivery).
    Never,
}

/// The machine's configuration. Build it with [`Config::rsa`] or [`Config::certificate`], then adjust.
#[derive(Clone, Debug)]
pub struct Config {
    pub(crate) endpoints: Endpoints,
    pub(crate) username: Username,
    pub(crate) method: LoginMethod,
    pub(crate) jwt_lifetime: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) key_manager: KeyManagerPolicy,
    pub(crate) parallel_login: bool,
    pub(crate) cool_down: CoolDown,
    pub(crate) api_retry: Option<crate::api::ApiRetry>,
}

impl Config {
    /// A bot that logs in with an RSA key.
    pub fn rsa(endpoints: Endpoints, username: &str, signer: Arc<dyn JwtSigner>) -> Result<Self, ConfigError> {
        Self::new(endpoints, username, LoginMethod::Rsa(signer))
    }

    /// A bot that logs in with a client certificate.
    pub fn certificate(endpoints: Endpoints, username: &str) -> Result<Self, ConfigError> {
        Self::new(endpoints, username, LoginMethod::Certificate)
    }

    /// A bot with the given login method, and defaults for the rest: JWT lifetime 240 s, BDK retry policy, key
    /// manager by SKD, parallel login on.
    pub fn new(endpoints: Endpoints, username: &str, method: LoginMethod) -> Result<Self, ConfigError> {
        Ok(Self {
            endpoints,
            username: Username::new(username)?,
            method,
            jwt_lifetime: DEFAULT_JWT_LIFETIME,
            retry: RetryPolicy::default(),
            key_manager: KeyManagerPolicy::Auto,
            parallel_login: true,
            cool_down: CoolDown::default(),
            api_retry: None,
        })
    }

    /// Sets the JWT lifetime: 1 to 300 whole seconds.
    pub fn with_jwt_lifetime(mut self, lifetime: Duration) -> Result<Self, ConfigError> {
        if lifetime < Duration::from_secs(1) || lifetime > MAX_JWT_LIFETIME || lifetime.subsec_nanos() != 0 {
            return Err(ConfigError::JwtLifetime { secs: lifetime.as_secs() });
        }
        self.jwt_lifetime = lifetime;
        Ok(self)
    }

    /// Sets the retry policy for login attempts.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the key-manager policy.
    #[must_use]
    pub fn with_key_manager(mut self, policy: KeyManagerPolicy) -> Self {
        self.key_manager = policy;
        self
    }

    /// Turns parallel login (session and key-manager logins sent together) on or off.
    #[must_use]
    pub fn with_parallel_login(mut self, parallel: bool) -> Self {
        self.parallel_login = parallel;
        self
    }

    /// How long a failed login answers callers with its error before a new one may begin (default: 1 s, doubling
    /// with each failure in a row, up to 60 s).
    #[must_use]
    pub fn with_cool_down(mut self, cool_down: CoolDown) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// Retries of ordinary API calls on 5xx, 429 and transport failures (off by default).
    #[must_use]
    pub fn with_api_retry(mut self, retry: crate::api::ApiRetry) -> Self {
        self.api_retry = Some(retry);
        self
    }

    /// The login cool-down.
    #[must_use]
    pub fn cool_down(&self) -> CoolDown {
        self.cool_down
    }

    /// The retry policy of ordinary API calls, when enabled.
    #[must_use]
    pub fn api_retry(&self) -> Option<&crate::api::ApiRetry> {
        self.api_retry.as_ref()
    }

    /// Where the services are.
    #[must_use]
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The bot's username.
    #[must_use]
    pub fn username(&self) -> &Username {
        &self.username
    }

    /// How the bot logs in.
    #[must_use]
    pub fn method(&self) -> &LoginMethod {
        &self.method
    }

    /// The JWT lifetime.
    #[must_use]
    pub fn jwt_lifetime(&self) -> Duration {
        self.jwt_lifetime
    }

    /// The retry policy.
    #[must_use]
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The key-manager policy.
    #[must_use]
    pub fn key_manager(&self) -> KeyManagerPolicy {
        self.key_manager
    }

    /// Whether parallel login is on.
    #[must_use]
    pub fn parallel_login(&self) -> bool {
        self.parallel_login
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_default_to_https_and_drop_trailing_slashes() {
        let url = BaseUrl::parse("pod", "acme.symphony.com").unwrap();
        assert_eq!(url.to_string(), "https://acme.symphony.com");
        assert_eq!(url.port(), 443);
        let url = BaseUrl::parse("pod", "http://127.0.0.1:8080/ctx/").unwrap();
        assert_eq!(url.context(), "/ctx");
        assert_eq!(url.port(), 8080);
        assert_eq!(
            url.join("/login/pubkey/authenticate").to_string(),
            "http://127.0.0.1:8080/ctx/login/pubkey/authenticate"
        );
    }

    #[test]
    fn bad_base_urls_name_the_service_and_the_problem() {
        for (url, reason) in [
            ("", "it is empty"),
            ("ftp://x", "the scheme must be `https` or `http`"),
            ("https://user:pw@x", "user information in URLs is not supported"),
            ("https://x/?a=b", "a base URL takes no query or fragment"),
            ("https://x/#f", "a base URL takes no query or fragment"),
            ("https://exa mple", "not a valid URL"),
        ] {
            assert_eq!(
                BaseUrl::parse("agent", url),
                Err(ConfigError::InvalidUrl { which: "agent", url: url.to_owned(), reason }),
                "{url}"
            );
        }
    }

    #[test]
    fn parts_follow_the_bdk_rules() {
        let url = BaseUrl::from_parts("keyManager", "https", "km.acme", Some(8444), "relay-ctx").unwrap();
        assert_eq!(url.to_string(), "https://km.acme:8444/relay-ctx");
        assert!(BaseUrl::from_parts("pod", "gopher", "x", None, "").is_err());
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

    #[test]
    fn usernames_and_lifetimes_are_checked() {
        assert!(Username::new("bot.user").is_ok());
        assert_eq!(Username::new(" "), Err(ConfigError::InvalidUsername(" ".into())));
        assert!(Username::new("a\nb").is_err());
        let config = Config::certificate(Endpoints::single("x").unwrap(), "bot").unwrap();
        assert!(config.clone().with_jwt_lifetime(Duration::from_secs(300)).is_ok());
        assert_eq!(
            config.clone().with_jwt_lifetime(Duration::from_secs(301)).unwrap_err(),
            ConfigError::JwtLifetime { secs: 301 }
        );
        assert!(config.with_jwt_lifetime(Duration::ZERO).is_err());
    }
}
