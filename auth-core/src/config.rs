//! What the machine needs to know before its first login: where the services are, who the bot is, how it proves
//! it, and the policies for retries, the key manager and parallel login. Everything is validated on construction.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Uri;
use http::uri::{Authority, Scheme};

use crate::endpoint::LoginEndpoint;
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
///
/// Plain `http` parses, but a [`Config`] accepts it only for a loopback host (`localhost`, `127.0.0.0/8`, `::1`)
/// or after an explicit [`allow_insecure_http`](Self::allow_insecure_http): over plain HTTP the login JWT and the
/// tokens cross the network readable by anyone on the path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    scheme: Scheme,
    authority: Authority,
    context: String,
    insecure_http_allowed: bool,
}

impl BaseUrl {
    /// Parses `https://host[:port][/context]`. A value without a scheme is taken as an `https` host; a trailing
    /// `/` is dropped. `which` names the service in errors.
    pub fn parse(which: &'static str, url: &str) -> Result<Self, ConfigError> {
        let err = |reason| ConfigError::InvalidUrl { which, url: shown_url(url), reason };
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
        if has_dot_segment(&context) {
            return Err(err("its path has `.` or `..` segments"));
        }
        Ok(Self { scheme, authority, context, insecure_http_allowed: false })
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
                url: shown_url(&format!("{scheme}://{host}{port}{context}")),
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

    /// Whether the host is a loopback address (`localhost`, `127.0.0.0/8`, `::1`), where plain HTTP never leaves
    /// the machine.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        let host = self.host().trim_start_matches('[').trim_end_matches(']');
        if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
            return true;
        }
        host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
    }

    /// Consents to plain `http` for this URL even though its host is not loopback (a test pod behind a trusted
    /// network, say). Nothing changes for `https` URLs.
    #[must_use]
    pub fn allow_insecure_http(mut self) -> Self {
        self.insecure_http_allowed = true;
        self
    }

    /// Whether [`allow_insecure_http`](Self::allow_insecure_http) was called.
    #[must_use]
    pub fn insecure_http_allowed(&self) -> bool {
        self.insecure_http_allowed
    }

    /// Whether this URL sends secrets in the clear over a network: plain `http` to a host that is not loopback,
    /// without consent.
    #[must_use]
    pub fn is_insecure_without_consent(&self) -> bool {
        self.scheme == Scheme::HTTP && !self.insecure_http_allowed && !self.is_loopback()
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

/// Whether a segment of `path` is `.` or `..`, written plainly or percent-encoded (`%2e`).
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

/// `uri` for a message: scheme, host, port and path. The query is the caller's data, and user information may hold
/// a password: both are left out.
fn shown_uri(uri: &Uri) -> String {
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}{}", uri.scheme_str().unwrap_or(""), uri.path())
}

/// A URL as given, for a message: user information replaced by `***`, the query and fragment by `…`, at most 200
/// characters. A password in a URL, or a token in its query, is never repeated.
fn shown_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = match path.find(['?', '#']) {
        Some(cut) => format!("{}…", &path[..cut]),
        None => path.to_owned(),
    };
    let shown = if scheme.is_empty() { format!("{authority}{path}") } else { format!("{scheme}://{authority}{path}") };
    if shown.chars().count() > 200 { shown.chars().take(200).chain(['…']).collect() } else { shown }
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

impl LoginEndpoint {
    /// The base URL it lives under.
    #[must_use]
    pub fn base(self, endpoints: &Endpoints) -> &BaseUrl {
        match self {
            Self::RsaSession => &endpoints.pod,
            Self::RsaKeyManager | Self::CertificateKeyManager => &endpoints.key_manager,
            Self::CertificateSession => &endpoints.session_auth,
            Self::AgentVersion => &endpoints.agent,
        }
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
        for (url, shown, reason) in [
            ("", "", "it is empty"),
            ("ftp://x", "ftp://x", "the scheme must be `https` or `http`"),
            ("https://user:pw@x", "https://***@x", "user information in URLs is not supported"),
            ("https://x/?a=b", "https://x/…", "a base URL takes no query or fragment"),
            ("https://x/#f", "https://x/…", "a base URL takes no query or fragment"),
            ("https://exa mple", "https://exa mple", "not a valid URL"),
            ("https://x/ctx/../other", "https://x/ctx/../other", "its path has `.` or `..` segments"),
        ] {
            assert_eq!(
                BaseUrl::parse("agent", url),
                Err(ConfigError::InvalidUrl { which: "agent", url: shown.to_owned(), reason }),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_in_errors_lose_passwords_and_queries() {
        for url in ["https://bot:s3cr3t-pw@acme.example/x", "https://acme.example/x?token=s3cr3t-pw", "s3cr3t-pw@x:1"] {
            let error = BaseUrl::parse("pod", url).map(|_| ()).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        let long = format!("https://{}", "a".repeat(300));
        let ConfigError::InvalidUrl { url, .. } = BaseUrl::parse("pod", &format!("{long} x")).unwrap_err() else {
            panic!()
        };
        assert_eq!(url.chars().count(), 201);
    }

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
