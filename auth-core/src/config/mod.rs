//! What the machine needs to know before its first login: where the services are, who the bot is, how it proves
//! it, and the policies for retries, the key manager and parallel login. Everything is validated on construction.

mod endpoints;
mod service;
mod url;

pub use endpoints::Endpoints;
pub use service::{DefaultHeaders, Service};
pub use url::BaseUrl;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ConfigError;
use crate::retry::{CoolDown, RetryPolicy};
use crate::signer::JwtSigner;

/// The default JWT lifetime: 240 s, as both official SDKs use, which leaves a minute for a client clock ahead of
/// the pod's.
pub const DEFAULT_JWT_LIFETIME: Duration = Duration::from_secs(240);
/// The longest JWT lifetime the pod accepts.
pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(300);

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
    /// The user an app acts for (OBO); `None` for a bot.
    pub(crate) obo: Option<crate::obo::OboUser>,
    pub(crate) default_headers: Arc<DefaultHeaders>,
    pub(crate) common_jwt: Option<crate::common_jwt::CommonJwtSettings>,
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
    ///
    /// # Errors
    /// [`ConfigError::InsecureHttp`] when a base URL is plain `http` to a host that is not loopback and
    /// [`Endpoints::allow_insecure_http`] was not called; [`ConfigError::InvalidUsername`].
    pub fn new(endpoints: Endpoints, username: &str, method: LoginMethod) -> Result<Self, ConfigError> {
        endpoints.check_insecure_http()?;
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
            obo: None,
            default_headers: Arc::default(),
            common_jwt: None,
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

    /// Headers added to every request of a service: login requests and API calls (see [`DefaultHeaders`]).
    #[must_use]
    pub fn with_default_headers(mut self, headers: DefaultHeaders) -> Self {
        self.default_headers = Arc::new(headers);
        self
    }

    /// The default headers.
    #[must_use]
    pub fn default_headers(&self) -> &DefaultHeaders {
        &self.default_headers
    }

    /// Uses the Common JWT (A5 access tokens) as `settings` say; off by default.
    #[must_use]
    pub fn with_common_jwt(mut self, settings: crate::common_jwt::CommonJwtSettings) -> Self {
        self.common_jwt = Some(settings);
        self
    }

    /// The Common JWT settings, when it is on.
    #[must_use]
    pub fn common_jwt(&self) -> Option<&crate::common_jwt::CommonJwtSettings> {
        self.common_jwt.as_ref()
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
