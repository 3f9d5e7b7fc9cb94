//! BDK configuration files (the YAML or JSON that symphony-bdk-java and symphony-bdk-python read), resolved into
//! what this workspace needs. Pure: the text and the environment come in as values, and key, certificate and
//! trust-store files are named, not read (drivers read them).
//!
//! Real BDK files load unchanged: keys this library does not use (datafeed, app, loadBalancing, ...) are ignored.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_yaml_ng::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::config::{Config, DefaultHeaders, Endpoints, KeyManagerPolicy, LoginMethod};
use crate::error::{ConfigError, KeyError};
use crate::identity::{ClientIdentity, IdentityError};
use crate::retry::RetryPolicy;

/// A configuration file cannot be used. Each message names the key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BdkConfigError {
    /// The text is not YAML or JSON. Holds where (line, column) and what kind of problem, never the text there.
    #[error("the configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A key holds a value of the wrong type: a password written as a number, a key pasted where a mapping with
    /// `path` or `content` belongs. The value is never shown.
    #[error("`{key}`: expected {expected}, found {found}{}", type_hint(expected, found))]
    WrongType {
        /// The key path, e.g. `bot.certificate.password`.
        key: String,
        /// What the key takes.
        expected: &'static str,
        /// What kind of value was found (`a number`, `a string`, ...).
        found: &'static str,
    },
    /// A required key is missing.
    #[error("missing key `{0}`")]
    MissingKey(&'static str),
    /// Both RSA and certificate authentication are configured for the bot.
    #[error("both `bot.privateKey` (RSA) and `bot.certificate` are configured: choose one")]
    BothRsaAndCertificate,
    /// Neither RSA nor certificate authentication is configured.
    #[error("no bot credentials: set `bot.privateKey.path` (RSA) or `bot.certificate.path` (certificate)")]
    NoCredentials,
    /// A bot was asked of a file that configures an app only (an `app` section, no `bot` one).
    #[error(
        "no `bot` section: the file configures an app only (`app.*`); a bot needs `bot.username` and \
         `bot.privateKey` or `bot.certificate`"
    )]
    NoBot,
    /// Both `path` and `content` are set.
    #[error("both `{0}.path` and `{0}.content` are set: choose one")]
    BothPathAndContent(&'static str),
    /// A scheme other than `https` or `http`.
    #[error("`{key}`: unknown scheme{} (expected `https` or `http`)", if value.is_empty() { String::new() } else { format!(" `{value}`") })]
    UnknownScheme {
        /// The key, e.g. `agent.scheme`.
        key: String,
        /// The value found when it is a short word (at most 16 letters and digits), empty otherwise.
        value: String,
    },
    /// A value of the wrong type or out of range.
    #[error("`{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// `${NAME}` names an environment variable that is not set, and no `:-default` was given. Holds the name when
    /// it looks like a variable name, and is empty otherwise (`${` inside a password is not a variable).
    #[error("{}", if .0.is_empty() {
        "`${...}` in the configuration names no environment variable that is set".to_owned()
    } else {
        format!("`${{{0}}}` is used in the configuration but the environment variable `{0}` is not set", .0)
    })]
    UnsetVariable(String),
    /// A value is rejected by the library's own validation.
    #[error("`{key}`: {source}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        source: ConfigError,
    },
}

/// A hint for a value of the wrong type: a scalar where a string belongs is most often a password or a name made
/// of digits, which YAML reads as a number.
fn type_hint(expected: &str, found: &str) -> &'static str {
    match (expected, found) {
        ("a string", "a number" | "a boolean") => " (write the value in quotes)",
        (e, "a string") if e.starts_with("a mapping with `path`") => {
            " (write `path: <file>` or `content: <the PEM>` under it)"
        }
        _ => "",
    }
}

/// Where a key, certificate or trust store comes from. `Content` is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A file to read (relative paths are relative to the working directory, as in the BDKs).
    Path(PathBuf),
    /// The bytes themselves (`content`).
    Content(Vec<u8>),
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Self::Content(bytes) = self {
            bytes.zeroize();
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Self::Content(bytes) => write!(f, "Content(<{} bytes>)", bytes.len()),
        }
    }
}

/// The bot's credentials as configured.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `bot.privateKey`: an RSA private key in PEM.
    RsaKey(Source),
    /// `bot.certificate`: a PEM file holding the certificate and its unencrypted key (BDK-Python), or a PKCS#12
    /// file with its password (BDK-Java; chosen when a password is set or the name ends in `.p12`/`.pfx`).
    Certificate {
        /// The file or content.
        source: Source,
        /// `bot.certificate.password`.
        password: Option<SecretString>,
    },
    /// No `bot` section: the file configures an app only (`app.*`), for OBO and extension apps.
    Absent,
}

impl CredentialSource {
    /// Whether the certificate is a PKCS#12 file rather than PEM.
    #[must_use]
    pub fn is_pkcs12(&self) -> bool {
        match self {
            Self::RsaKey(_) | Self::Absent => false,
            Self::Certificate { source, password } => {
                password.is_some()
                    || matches!(source, Source::Path(p) if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx")))
            }
        }
    }

    /// The certificate password, if any. Never log it.
    #[must_use]
    pub fn password(&self) -> Option<&str> {
        match self {
            Self::Certificate { password: Some(p), .. } => Some(p.expose_secret()),
            _ => None,
        }
    }
}

/// An HTTP proxy (`proxy.host`, `proxy.port`, `proxy.username`, `proxy.password`).
#[derive(Clone, Debug)]
pub struct ProxySettings {
    /// `http://host:port`.
    pub url: String,
    /// The user name for Basic authentication.
    pub username: Option<String>,
    /// The password. Never log it.
    pub password: Option<SecretString>,
}

impl ProxySettings {
    /// The URL with the credentials in it (`http://user:password@host:port`), as HTTP clients take it, in a buffer
    /// wiped on drop. Never log it.
    #[must_use]
    pub fn url_with_credentials(&self) -> Zeroizing<String> {
        let Some(user) = &self.username else { return Zeroizing::new(self.url.clone()) };
        let host = self.url.trim_start_matches("http://");
        let password = self.password.as_ref().map(|p| p.expose_secret());
        // Sized once (percent-encoding at most triples a byte), so no reallocation leaves a copy behind.
        let capacity = "http://:@".len() + 3 * (user.len() + password.map_or(0, str::len)) + host.len();
        let mut url = Zeroizing::new(String::with_capacity(capacity));
        url.push_str("http://");
        percent_encode_into(user, &mut url);
        if let Some(password) = password {
            url.push(':');
            percent_encode_into(password, &mut url);
        }
        url.push('@');
        url.push_str(host);
        url
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986) onto `out`, for user information in a URL.
fn percent_encode_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(b)),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
}

/// What a BDK configuration file says, resolved: every client entry has inherited what it leaves unset from the
/// root.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BotSettings {
    /// Where the services are.
    pub endpoints: Endpoints,
    /// `bot.username`; empty in an app-only file (see [`has_bot`](Self::has_bot)).
    pub username: String,
    /// The credentials; [`CredentialSource::Absent`] in an app-only file.
    pub credentials: CredentialSource,
    /// `ssl.trustStore`: a PEM bundle of extra root certificates, added to the defaults.
    pub trust_store: Option<Source>,
    /// `retry.*`.
    pub retry: RetryPolicy,
    /// The proxy every service uses: `None` when no service has one, or when they differ (see
    /// [`proxies`](Self::proxies)).
    pub proxy: Option<ProxySettings>,
    /// The proxy of each service: its own `proxy` entry, or the root's. A proxy set on one service only applies
    /// to that service.
    pub proxies: ServiceProxies,
    /// `connectionTimeout` (ms).
    pub connect_timeout: Option<Duration>,
    /// `readTimeout` (ms).
    pub read_timeout: Option<Duration>,
    /// `app.*`: the app that acts on behalf of users (OBO).
    pub app: Option<AppSettings>,
    /// `keyManagerPolicy`: `auto` (the default), `always` or `never`.
    pub key_manager: Option<KeyManagerPolicy>,
    /// `defaultHeaders`, at the root and per service.
    pub default_headers: DefaultHeaders,
    /// `commonJwt.enabled`: pod calls carry the Common JWT instead of `sessionToken`, as in BDK-Java.
    pub common_jwt: bool,
}

impl BotSettings {
    /// Whether the file configures a bot (`bot.*`); an app-only file (`app.*` and no `bot` section) does not,
    /// and serves OBO ([`load_obo`](Self::load_obo)) and extension apps ([`load_app`](Self::load_app)) only.
    #[must_use]
    pub fn has_bot(&self) -> bool {
        !matches!(self.credentials, CredentialSource::Absent)
    }

    /// The machine configuration for these settings, with the login method the driver built from
    /// [`credentials`](Self::credentials).
    pub fn to_config(&self, method: LoginMethod) -> Result<Config, ConfigError> {
        let config = Config::new(self.endpoints.clone(), &self.username, method)?;
        Ok(self.adjust(config))
    }

    /// What every configuration built from these settings shares: retries, key-manager policy, default headers,
    /// the Common JWT.
    fn adjust(&self, config: Config) -> Config {
        let mut config = config.with_retry(self.retry.clone()).with_default_headers(self.default_headers.clone());
        if self.common_jwt {
            config = config.with_common_jwt(crate::CommonJwtSettings::on_pod_calls());
        }
        match self.key_manager {
            Some(policy) => config.with_key_manager(policy),
            None => config,
        }
    }

    /// Reads what the settings name (key, certificate, trust store) through `read`, and builds everything a
    /// driver needs. `read` is the driver's file access: this crate reads no files itself.
    ///
    /// An RSA key is loaded into the [`SignerBackend::build_default`](crate::SignerBackend::build_default) signer:
    /// `RsaSigner` when the `rsa-signer` feature is on (the default), else `RingSigner` when `ring-signer` is, else
    /// `AwsLcSigner`; all sign the same JWTs. A build with none reads certificate configurations only, and answers
    /// an RSA one with an error that names the features. [`load_with_signer`](Self::load_with_signer) chooses.
    pub fn load(
        &self,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        self.load_with_signer(crate::SignerBackend::build_default(), read)
    }

    /// As [`load`](Self::load), with an RSA key loaded into `signer` (for example
    /// [`SignerBackend::fastest`](crate::SignerBackend::fastest)); `None` as in a build with no signer.
    ///
    /// # Errors
    /// As [`load`](Self::load); [`ConfigFileError::Key`] with [`KeyError::BackendNotCompiled`](crate::KeyError)
    /// when the build lacks `signer`.
    pub fn load_with_signer(
        &self,
        signer: Option<crate::SignerBackend>,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        let (method, identity) = load_credentials("bot", &self.credentials, signer, read)?;
        let config = self.to_config(method).map_err(|source| ConfigFileError::Invalid { key: "bot", source })?;
        self.loaded(config, identity, read)
    }

    /// As [`load`](Self::load), for the app of `app.*` acting on behalf of `user` (OBO): the app's key or
    /// certificate instead of the bot's, and no key manager.
    ///
    /// # Errors
    /// As [`load`](Self::load); [`BdkConfigError::MissingKey`] (`app.appId`, `app.privateKey`) when the file
    /// configures no app credentials.
    pub fn load_obo(
        &self,
        user: crate::OboUser,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        self.load_obo_with_signer(crate::SignerBackend::build_default(), user, read)
    }

    /// As [`load_obo`](Self::load_obo), with the app's RSA key loaded into `signer`.
    ///
    /// # Errors
    /// As [`load_with_signer`](Self::load_with_signer) and [`load_obo`](Self::load_obo).
    pub fn load_obo_with_signer(
        &self,
        signer: Option<crate::SignerBackend>,
        user: crate::OboUser,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        let app = self.app.as_ref().ok_or(BdkConfigError::MissingKey("app.appId"))?;
        let credentials = app.credentials.as_ref().ok_or(BdkConfigError::MissingKey("app.privateKey"))?;
        let (method, identity) = load_credentials("app", credentials, signer, read)?;
        let invalid = |source| ConfigFileError::Invalid { key: "app", source };
        let config = match method {
            LoginMethod::Rsa(signer) => Config::obo_rsa(self.endpoints.clone(), &app.app_id, signer, user),
            _ => Config::obo_certificate(self.endpoints.clone(), &app.app_id, user),
        }
        .map_err(invalid)?;
        let config = config.with_retry(self.retry.clone()).with_default_headers(self.default_headers.clone());
        self.loaded(config, identity, read)
    }

    /// The app of `app.*` as an extension app (Circle of Trust) sees it: its key (a configuration whose login
    /// method signs with it, `username` being the app id) or its client certificate (the identity), with the
    /// file's hosts, trust store, proxies and timeouts. Needs no `bot` section.
    ///
    /// # Errors
    /// As [`load_obo`](Self::load_obo).
    pub fn load_app(
        &self,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        self.load_app_with_signer(crate::SignerBackend::build_default(), read)
    }

    /// As [`load_app`](Self::load_app), with an RSA key loaded into `signer`.
    ///
    /// # Errors
    /// As [`load_with_signer`](Self::load_with_signer).
    pub fn load_app_with_signer(
        &self,
        signer: Option<crate::SignerBackend>,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        let app = self.app.as_ref().ok_or(BdkConfigError::MissingKey("app.appId"))?;
        let credentials = app.credentials.as_ref().ok_or(BdkConfigError::MissingKey("app.privateKey"))?;
        let (method, identity) = load_credentials("app", credentials, signer, read)?;
        let config = Config::new(self.endpoints.clone(), &app.app_id, method)
            .map_err(|source| ConfigFileError::Invalid { key: "app", source })?;
        self.loaded(self.adjust(config), identity, read)
    }

    fn loaded(
        &self,
        config: Config,
        identity: Option<ClientIdentity>,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        let extra_roots_pem = match &self.trust_store {
            Some(source) => {
                let pem = bytes("ssl.trustStore", source, read)?;
                let path = match source {
                    Source::Path(path) => Some(path.as_path()),
                    Source::Content(_) => None,
                };
                if extras::is_java_keystore(path, &pem) {
                    return Err(ConfigFileError::JavaKeyStore { path: path.map(std::path::Path::to_path_buf) });
                }
                Some(pem)
            }
            None => None,
        };
        Ok(LoadedSettings {
            config,
            identity,
            extra_roots_pem,
            proxy: self.proxy.clone(),
            proxies: self.proxies.clone(),
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
        })
    }
}

fn bytes(
    key: &'static str,
    source: &Source,
    read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
) -> Result<Vec<u8>, ConfigFileError> {
    match source {
        Source::Content(content) => Ok(content.clone()),
        Source::Path(path) => {
            read(path).map_err(|e| ConfigFileError::Read { key, path: path.clone(), reason: e.to_string() })
        }
    }
}

/// The login method (a signer of backend `signer` over the key) or the client identity of `credentials`, under
/// `bot` or `app`.
fn load_credentials(
    owner: &'static str,
    credentials: &CredentialSource,
    signer: Option<crate::SignerBackend>,
    read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
) -> Result<(LoginMethod, Option<ClientIdentity>), ConfigFileError> {
    let (key_name, certificate_name) =
        if owner == "app" { ("app.privateKey", "app.certificate") } else { ("bot.privateKey", "bot.certificate") };
    match credentials {
        CredentialSource::RsaKey(source) => {
            let Some(backend) = signer else {
                return Err(ConfigFileError::Parse(BdkConfigError::InvalidValue {
                    key: key_name.into(),
                    reason: "this build has no JWT signer: enable the `rsa-signer`, `ring-signer` or `aws-lc-signer` \
                             feature"
                        .into(),
                }));
            };
            let pem = zeroize::Zeroizing::new(bytes(key_name, source, read)?);
            let signer = backend.load_pem(&pem).map_err(|source| ConfigFileError::Key { key: key_name, source })?;
            Ok((LoginMethod::Rsa(signer), None))
        }
        CredentialSource::Absent => Err(ConfigFileError::Parse(BdkConfigError::NoBot)),
        CredentialSource::Certificate { source, password } => {
            let data = zeroize::Zeroizing::new(bytes(certificate_name, source, read)?);
            let identity = if credentials.is_pkcs12() {
                #[cfg(feature = "client-identity")]
                {
                    let password = password.as_ref().map_or("", |p| p.expose_secret());
                    ClientIdentity::from_pkcs12(&data, password)
                }
                #[cfg(not(feature = "client-identity"))]
                {
                    let _ = password;
                    Err(IdentityError::Pkcs12("PKCS#12 support needs the `client-identity` feature".into()))
                }
            } else {
                ClientIdentity::from_pem(&data)
            }
            .map_err(|source| ConfigFileError::Identity { key: certificate_name, source })?;
            Ok((LoginMethod::Certificate, Some(identity)))
        }
    }
}

/// Everything a driver needs to build a bot from a configuration file.
#[derive(Debug)]
#[non_exhaustive]
pub struct LoadedSettings {
    /// The machine configuration (the key already loaded into a signer).
    pub config: Config,
    /// The TLS client identity, for certificate logins.
    pub identity: Option<ClientIdentity>,
    /// Extra root certificates (PEM), added to the defaults.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// The proxy every service uses, when they share one.
    pub proxy: Option<ProxySettings>,
    /// The proxy of each service.
    pub proxies: ServiceProxies,
    /// The connect timeout.
    pub connect_timeout: Option<Duration>,
    /// The read timeout.
    pub read_timeout: Option<Duration>,
}

/// A configuration file cannot be turned into a bot. Each message names the key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The configuration file itself cannot be read.
    #[error("cannot read the configuration file {path:?}: {reason}")]
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// The file's content is wrong.
    #[error(transparent)]
    Parse(#[from] BdkConfigError),
    /// A file it names cannot be read.
    #[error("`{key}`: cannot read {path:?}: {reason}")]
    Read {
        /// The key naming the file.
        key: &'static str,
        /// The path.
        path: PathBuf,
        /// The system's reason.
        reason: String,
    },
    /// The private key cannot be used.
    #[error("`{key}`: {source}")]
    Key {
        /// The key naming it.
        key: &'static str,
        /// Why.
        source: KeyError,
    },
    /// The certificate cannot be used.
    #[error("`{key}`: {source}")]
    Identity {
        /// The key naming it.
        key: &'static str,
        /// Why.
        source: IdentityError,
    },
    /// A value is rejected by the library's validation.
    #[error("`{key}`: {source}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        source: ConfigError,
    },
    /// `ssl.trustStore` is a Java KeyStore (JKS or JCEKS), which only Java reads.
    #[error("`ssl.trustStore`: {} is a Java KeyStore, which only Java reads; export its certificates to PEM with \
             `keytool -list -rfc -keystore {} -storepass <password> > truststore.pem` and set \
             `ssl.trustStore.path: truststore.pem`",
        path.as_ref().map_or_else(|| "the content".to_owned(), |p| format!("{p:?}")),
        path.as_ref().map_or_else(|| "truststore.jks".to_owned(), |p| p.display().to_string()))]
    JavaKeyStore {
        /// The file, when the trust store is named by path.
        path: Option<PathBuf>,
    },
}

mod extras;
mod resolve;
mod tree;

pub use extras::{AppSettings, ServiceProxies};

use resolve::resolve;
use tree::{WipedTree, interpolate, syntax_error, wrong_type};

/// Parses a BDK configuration (YAML, or JSON, which YAML reads too). `env` looks up environment variables for
/// `${NAME}` and `${NAME:-default}` in string values.
///
/// Errors name the key and what was expected, never a value: a password written as a number, or a key pasted
/// where a mapping belongs, is not repeated. The YAML tree is wiped once read; what the YAML parser itself
/// buffered while reading `text` is not (see [`Tokens`](crate::Tokens) for every copy that cannot be wiped).
pub fn parse_bdk_config(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<BotSettings, BdkConfigError> {
    let mut tree = WipedTree(serde_yaml_ng::from_str(text).map_err(|e| syntax_error(&e))?);
    interpolate(&mut tree.0, env)?;
    let root = match &tree.0 {
        Value::Null => &serde_yaml_ng::Mapping::new(),
        Value::Mapping(map) => map,
        other => return Err(wrong_type("(top level)", "a mapping of settings", other)),
    };
    resolve(root)
}

#[cfg(test)]
mod tests;
