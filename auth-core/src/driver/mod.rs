//! What every driver's `Bot` is built from, written once: the builder and its settings (TLS roots, client
//! certificate, timeouts, proxy, response cap, jitter seed, event hook), the error type, the rustls configuration,
//! and building from a BDK configuration file. A driver implements [`Driver`] to turn the settings into its HTTP
//! client and bot; its users see `Bot::builder(config)...build()` whichever driver they chose.
//!
//! Pure like the rest of the crate: reading the operating system's trust store and configuration files is the
//! driver's part, passed in as functions.

mod connections;
mod error;
mod tls;

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;

pub use connections::{
    ConnectionSettings, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS_PER_HOST, DEFAULT_READ_BUFFER,
    DEFAULT_WRITE_BUFFER, HostKey, HostSlots, MIN_BUFFER,
};
pub use error::BotError;
pub use tls::parse_certificates;

use crate::config::{Config, LoginMethod, Service};
use crate::error::ConfigError;
use crate::identity::ClientIdentity;
use crate::machine::Event;

/// Default time allowed to open a connection, TLS handshake included (BDK-Java's).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time allowed for a whole request, answer included (BDK-Java's read timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on the body of an API response. Login answers are always capped at
/// [`MAX_RESPONSE_BODY`](crate::MAX_RESPONSE_BODY).
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// A function the bot calls with each event of its logins, with no lock held: for logs and metrics.
pub type EventHook = Arc<dyn Fn(&Event) + Send + Sync>;

/// A driver: builds its bot from the settings of a [`BotBuilder`].
pub trait Driver {
    /// The bot it builds.
    type Bot;

    /// Builds the bot and its HTTP client. No request is sent.
    ///
    /// # Errors
    /// [`BotError::Tls`] when the HTTP client cannot be built.
    fn build(config: Config, options: ClientOptions) -> Result<Self::Bot, BotError>;
}

/// An HTTP CONNECT proxy (`http://` or `https://`, optionally with `user:password@`). Its `Debug` and
/// [`shown`](Self::shown) leave the credentials out.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    url: String,
    shown: String,
}

impl ProxyUrl {
    /// Checks `url`: an `http` or `https` URL with a host. SOCKS proxies are not supported by both drivers, so
    /// by neither.
    ///
    /// # Errors
    /// [`ConfigError::InvalidUrl`], showing the URL without its credentials.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let shown = match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://…@{host}"),
                None => url.to_owned(),
            },
            None => url.rsplit_once('@').map_or(url.to_owned(), |(_, host)| format!("…@{host}")),
        };
        let invalid = |reason| ConfigError::InvalidUrl { which: "proxy", url: shown.clone(), reason };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a valid URL"))?;
        match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {}
            Some(_) => return Err(invalid("only HTTP CONNECT proxies (http:// or https://) are supported")),
            None => return Err(invalid("not a URL (no scheme)")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        Ok(Self { url: url.to_owned(), shown })
    }

    /// The URL with its credentials, for the HTTP client only.
    #[must_use]
    pub fn expose_url(&self) -> &str {
        &self.url
    }

    /// The URL without its credentials, for messages.
    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({})", self.shown)
    }
}

/// The settings a driver builds its HTTP client and bot from. Made through [`BotBuilder`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Root certificates trusted in addition to the built-in Mozilla roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Whether the operating system's trust store is added too.
    pub platform_roots: bool,
    /// The TLS client certificate, for certificate logins.
    pub identity: Option<ClientIdentity>,
    /// Time allowed to open a connection, TLS handshake included.
    pub connect_timeout: Duration,
    /// Time allowed for each request, from connecting to the last byte of the answer.
    pub timeout: Duration,
    /// The proxy, when one is configured; never read from the environment.
    pub proxy: Option<ProxyUrl>,
    /// Services whose proxy differs from [`proxy`](Self::proxy): each with its own (`None`: no proxy).
    pub service_proxies: Vec<(Service, Option<ProxyUrl>)>,
    /// Cap on the body of an API response.
    pub max_response_body: usize,
    /// The seed of the retry jitter.
    pub seed: u64,
    /// Called with every event.
    pub on_event: Option<EventHook>,
    /// Connections per host, idle pool and buffer sizes.
    pub connections: ConnectionSettings,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("platform_roots", &self.platform_roots)
            .field("identity", &self.identity)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("proxy", &self.proxy)
            .field("service_proxies", &self.service_proxies)
            .field("max_response_body", &self.max_response_body)
            .field("on_event", &self.on_event.is_some())
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientOptions {
    /// The proxy of `service`: its own when one was set, otherwise [`proxy`](Self::proxy).
    #[must_use]
    pub fn proxy_of(&self, service: Service) -> Option<&ProxyUrl> {
        match self.service_proxies.iter().rev().find(|(s, _)| *s == service) {
            Some((_, own)) => own.as_ref(),
            None => self.proxy.as_ref(),
        }
    }

    /// Which HTTP client of [`clients_needed`](Self::clients_needed) carries `uri`: the one of its service (the
    /// pod's for a URI outside every service, which a driver sends only unauthenticated).
    #[must_use]
    pub fn client_index(&self, endpoints: &crate::Endpoints, uri: &http::Uri) -> usize {
        let service = endpoints.service_of(uri).unwrap_or(Service::Pod);
        let clients = self.clients_needed();
        let proxy = self.proxy_of(service);
        clients.iter().position(|p| p.as_ref() == proxy).unwrap_or(0)
    }

    /// The distinct proxies (or none) the services use, in a stable order: a driver builds one HTTP client per
    /// entry, and [`client_index`](Self::client_index) picks among them.
    #[must_use]
    pub fn clients_needed(&self) -> Vec<Option<ProxyUrl>> {
        let mut proxies: Vec<Option<ProxyUrl>> = Vec::with_capacity(1);
        for service in Service::ALL {
            let proxy = self.proxy_of(service).cloned();
            if !proxies.contains(&proxy) {
                proxies.push(proxy);
            }
        }
        proxies
    }

    /// The defaults a [`BotBuilder`] starts from: Mozilla roots only, no client certificate, no proxy, the
    /// default timeouts and body cap. For clients built without a bot, such as an extension app's.
    #[must_use]
    pub fn new() -> Self {
        Self {
            extra_roots: Vec::new(),
            platform_roots: false,
            identity: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            proxy: None,
            service_proxies: Vec::new(),
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            seed: 0,
            on_event: None,
            connections: ConnectionSettings::default(),
        }
    }

    /// Calls the event hook, if any, with each of `events`. Call with no lock held.
    pub fn emit(&self, events: &[Event]) {
        if let Some(hook) = &self.on_event {
            events.iter().for_each(|event| hook(event));
        }
    }
}

/// The settings of a bot, for driver `D`; `build` makes the bot. Drivers name it `BotBuilder`.
#[must_use = "a builder does nothing until built"]
pub struct BotBuilder<D> {
    config: Config,
    options: ClientOptions,
    seed: Option<u64>,
    driver: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for BotBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BotBuilder")
            .field("username", self.config.username())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> BotBuilder<D> {
    /// The settings of a bot with the machine's configuration (RSA or certificate, endpoints, retry policy,
    /// key-manager policy, parallel login, cool-down).
    pub fn new(config: Config) -> Self {
        Self { config, options: ClientOptions::new(), seed: None, driver: PhantomData }
    }

    /// Trusts the certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks) **in addition to** the built-in
    /// Mozilla roots: for a pod behind a private CA. May be called more than once.
    ///
    /// # Errors
    /// [`BotError::Tls`] when `pem` holds no certificate or a malformed one.
    pub fn extra_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, BotError> {
        self.options.extra_roots.extend(parse_certificates(pem)?);
        Ok(self)
    }

    /// Also trusts the certificates of the operating system's store (where a corporate private CA is usually
    /// installed), **in addition to** the built-in Mozilla roots and the extra roots. The store is read once, when
    /// the bot is built; its certificates that rustls cannot parse are skipped.
    pub fn platform_roots(mut self) -> Self {
        self.options.platform_roots = true;
        self
    }

    /// The TLS client certificate: needed for certificate logins.
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.options.identity = Some(identity);
        self
    }

    /// Time allowed to open a connection, TLS handshake included. Default 15 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// Time allowed for each request, from connecting to the last byte of the answer. Default 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// Sends every request through this HTTP CONNECT proxy (`http://host:port`, `https://...`, with optional
    /// `user:password@`). Proxies are never read from the environment.
    ///
    /// # Errors
    /// [`BotError::Config`] for a malformed URL or a SOCKS proxy (not supported).
    pub fn proxy(mut self, url: &str) -> Result<Self, BotError> {
        self.options.proxy = Some(ProxyUrl::parse(url)?);
        Ok(self)
    }

    /// Sends the requests of `service` through this proxy (`Some`), or directly (`None`), whatever
    /// [`proxy`](Self::proxy) says for the others.
    ///
    /// # Errors
    /// As [`proxy`](Self::proxy).
    pub fn service_proxy(mut self, service: Service, url: Option<&str>) -> Result<Self, BotError> {
        let proxy = url.map(ProxyUrl::parse).transpose()?;
        self.options.service_proxies.push((service, proxy));
        Ok(self)
    }

    /// Cap on the body of an API response; a larger one is a [`BotError::Transport`] of kind `Other`. Default
    /// 16 MiB. Login answers are always capped at [`MAX_RESPONSE_BODY`](crate::MAX_RESPONSE_BODY).
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.options.max_response_body = bytes;
        self
    }

    /// At most `n` requests in flight to one host (at least 1), hence at most `n` connections to it; further
    /// callers wait for one to finish. Default [`DEFAULT_MAX_CONNECTIONS_PER_HOST`].
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.options.connections = self.options.connections.with_max_per_host(n);
        self
    }

    /// How the HTTP clients hold connections: the bound per host, the idle pool, the buffer sizes (larger ones
    /// for a bot that moves large bodies). Default [`ConnectionSettings::default`].
    pub fn connection_settings(mut self, settings: ConnectionSettings) -> Self {
        self.options.connections = settings;
        self
    }

    /// The seed of the retry jitter, to replay a run exactly. Default: random.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Calls `hook` with every event of the bot's logins (started, retries scheduled, done or failed, tokens
    /// expired), with no lock held: for logs and metrics. Events never hold a token.
    pub fn on_event(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.options.on_event = Some(Arc::new(hook));
        self
    }

    /// The configuration so far.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Builds the bot and its HTTP client. No request is sent.
    ///
    /// # Errors
    /// [`BotError::Config`] with [`ConfigError::MissingCredentials`] for a certificate login without a client
    /// identity; [`BotError::Tls`] when the TLS configuration cannot be built, or, with
    /// [`platform_roots`](Self::platform_roots), when the operating system's store cannot be read at all.
    pub fn build(mut self) -> Result<D::Bot, BotError> {
        if matches!(self.config.method(), LoginMethod::Certificate) && self.options.identity.is_none() {
            return Err(BotError::Config(ConfigError::MissingCredentials));
        }
        self.options.seed = self.seed.unwrap_or_else(random_seed);
        D::build(self.config, self.options)
    }
}

#[cfg(feature = "bdk-config")]
impl<D: Driver> BotBuilder<D> {
    /// The settings of a BDK configuration file (the YAML or JSON of the Java and Python SDKs): `host` (and
    /// per-service `pod`, `agent`, `keyManager`, `sessionAuth`), `bot.username`, `bot.privateKey` or
    /// `bot.certificate`, `ssl.trustStore`, `retry`, `proxy`, timeouts, with `${ENV}` and `${ENV:-default}`
    /// expanded. Keys this library does not use are ignored. The file and those it names are read through `read`
    /// and the environment through `env` (see [`load_bdk_file`]).
    ///
    /// # Errors
    /// [`BotError::ConfigFile`], naming the key at fault; [`BotError::Tls`] or [`BotError::Config`] for an
    /// unusable trust store or proxy.
    pub fn from_config_file(
        path: &std::path::Path,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, BotError> {
        Self::from_settings(load_bdk_file(path, read, env)?)
    }

    /// The settings read from a BDK configuration file by [`load_bdk_file`], for a caller that adjusts them first.
    ///
    /// # Errors
    /// [`BotError::Tls`] or [`BotError::Config`] for an unusable trust store or proxy.
    pub fn from_settings(loaded: crate::LoadedSettings) -> Result<Self, BotError> {
        let mut builder = Self::new(loaded.config);
        if let Some(identity) = loaded.identity {
            builder = builder.client_identity(identity);
        }
        if let Some(pem) = &loaded.extra_roots_pem {
            builder = builder.extra_root_certificates_pem(pem)?;
        }
        if let Some(proxy) = &loaded.proxy {
            builder = builder.proxy(&proxy.url_with_credentials())?;
        }
        if loaded.proxies.uniform().is_err() {
            // Services with proxies of their own (or none while others have one): each gets its own.
            for service in Service::ALL {
                let url = loaded.proxies.of(service).map(|p| p.url_with_credentials());
                builder = builder.service_proxy(service, url.as_deref().map(String::as_str))?;
            }
        }
        if let Some(timeout) = loaded.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = loaded.read_timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder)
    }
}

/// Reads a BDK configuration file and everything it names (key, certificate, trust store) through `read`, with
/// `${ENV}` and `${ENV:-default}` expanded through `env`. Drivers pass `std::fs::read` and `std::env::var`.
///
/// # Errors
/// [`BotError::ConfigFile`], naming the key at fault.
#[cfg(feature = "bdk-config")]
pub fn load_bdk_file(
    path: &std::path::Path,
    read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::LoadedSettings, BotError> {
    Ok(read_bdk_file(path, read, env)?.load(read)?)
}

/// Reads and parses a BDK configuration file, without reading what it names: for a caller that loads the
/// settings its own way ([`BotSettings::load_obo`](crate::BotSettings::load_obo), say).
///
/// # Errors
/// [`BotError::ConfigFile`], naming the key at fault.
#[cfg(feature = "bdk-config")]
pub fn read_bdk_file(
    path: &std::path::Path,
    read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<crate::BotSettings, BotError> {
    use crate::ConfigFileError;
    let unreadable = |reason: String| ConfigFileError::Unreadable { path: path.to_owned(), reason };
    let bytes = read(path).map_err(|e| unreadable(e.to_string()))?;
    let text = zeroize::Zeroizing::new(String::from_utf8(bytes).map_err(|_| unreadable("not UTF-8 text".into()))?);
    Ok(crate::parse_bdk_config(&text, env).map_err(ConfigFileError::from)?)
}

/// Appends `data` to `buffer`; when it must grow, the contents move to a buffer twice the size and the old one is
/// wiped, rather than left behind by a reallocation. For drivers reading answers that may hold tokens.
pub fn append_wiping(buffer: &mut zeroize::Zeroizing<Vec<u8>>, data: &[u8]) {
    if buffer.capacity() - buffer.len() < data.len() {
        let wanted = (buffer.len() + data.len()).max(buffer.capacity() * 2).max(1024);
        let mut grown = zeroize::Zeroizing::new(Vec::with_capacity(wanted));
        grown.extend_from_slice(buffer);
        std::mem::swap(buffer, &mut grown);
    }
    buffer.extend_from_slice(data);
}

/// A seed that differs between bots and runs; jitter needs variety, not secrecy. `RandomState` draws its keys
/// from the operating system once per thread and steps them for every new state.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

#[cfg(test)]
mod tests;
