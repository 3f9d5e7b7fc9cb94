//! BDK configuration files (the YAML or JSON that symphony-bdk-java and symphony-bdk-python read), resolved into
//! what this workspace needs. Pure: the text and the environment come in as values, and key, certificate and
//! trust-store files are named, not read (drivers read them).
//!
//! Real BDK files load unchanged: keys this library does not use (datafeed, app, loadBalancing, ...) are ignored.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::config::{BaseUrl, Config, Endpoints, LoginMethod};
use crate::error::{ConfigError, KeyError};
use crate::identity::{ClientIdentity, IdentityError};
use crate::retry::RetryPolicy;

/// A configuration file cannot be used. Each message names the key at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BdkConfigError {
    /// The text is not YAML or JSON.
    #[error("the configuration is not valid YAML or JSON: {0}")]
    Syntax(String),
    /// A required key is missing.
    #[error("missing key `{0}`")]
    MissingKey(&'static str),
    /// Both RSA and certificate authentication are configured for the bot.
    #[error("both `bot.privateKey` (RSA) and `bot.certificate` are configured: choose one")]
    BothRsaAndCertificate,
    /// Neither RSA nor certificate authentication is configured.
    #[error("no bot credentials: set `bot.privateKey.path` (RSA) or `bot.certificate.path` (certificate)")]
    NoCredentials,
    /// Both `path` and `content` are set.
    #[error("both `{0}.path` and `{0}.content` are set: choose one")]
    BothPathAndContent(&'static str),
    /// A scheme other than `https` or `http`.
    #[error("`{key}`: unknown scheme `{value}` (expected `https` or `http`)")]
    UnknownScheme {
        /// The key, e.g. `agent.scheme`.
        key: String,
        /// The value found.
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
    /// `${NAME}` names an environment variable that is not set, and no `:-default` was given.
    #[error("`${{{0}}}` is used in the configuration but the environment variable `{0}` is not set")]
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

/// Where a key, certificate or trust store comes from.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A file to read (relative paths are relative to the working directory, as in the BDKs).
    Path(PathBuf),
    /// The bytes themselves (`content`).
    Content(Vec<u8>),
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
}

impl CredentialSource {
    /// Whether the certificate is a PKCS#12 file rather than PEM.
    #[must_use]
    pub fn is_pkcs12(&self) -> bool {
        match self {
            Self::RsaKey(_) => false,
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
    /// The URL with the credentials in it (`http://user:password@host:port`), as HTTP clients take it. Never log
    /// it.
    #[must_use]
    pub fn url_with_credentials(&self) -> String {
        match &self.username {
            None => self.url.clone(),
            Some(user) => {
                let password = self.password.as_ref().map(|p| format!(":{}", percent_encode(p.expose_secret())));
                let host = self.url.trim_start_matches("http://");
                format!("http://{}{}@{host}", percent_encode(user), password.unwrap_or_default())
            }
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for user information in a URL.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a BDK configuration file says, resolved: every client entry has inherited what it leaves unset from the
/// root.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BotSettings {
    /// Where the services are.
    pub endpoints: Endpoints,
    /// `bot.username`.
    pub username: String,
    /// The credentials.
    pub credentials: CredentialSource,
    /// `ssl.trustStore`: a PEM bundle of extra root certificates, added to the defaults.
    pub trust_store: Option<Source>,
    /// `retry.*`.
    pub retry: RetryPolicy,
    /// `proxy.*`.
    pub proxy: Option<ProxySettings>,
    /// `connectionTimeout` (ms).
    pub connect_timeout: Option<Duration>,
    /// `readTimeout` (ms).
    pub read_timeout: Option<Duration>,
}

impl BotSettings {
    /// The machine configuration for these settings, with the login method the driver built from
    /// [`credentials`](Self::credentials).
    pub fn to_config(&self, method: LoginMethod) -> Result<Config, ConfigError> {
        Ok(Config::new(self.endpoints.clone(), &self.username, method)?.with_retry(self.retry.clone()))
    }

    /// Reads what the settings name (key, certificate, trust store) through `read`, and builds everything a
    /// driver needs. `read` is the driver's file access: this crate reads no files itself.
    ///
    /// An RSA key is loaded into `RsaSigner` when the `rsa-signer` feature is on (the default), and into
    /// `RingSigner` when only `ring-signer` is; both sign the same JWTs. A build with neither reads certificate
    /// configurations only, and answers an RSA one with an error that names the two features.
    pub fn load(
        &self,
        read: &mut dyn FnMut(&std::path::Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<LoadedSettings, ConfigFileError> {
        let mut bytes = |key: &'static str, source: &Source| -> Result<Vec<u8>, ConfigFileError> {
            match source {
                Source::Content(content) => Ok(content.clone()),
                Source::Path(path) => {
                    read(path).map_err(|e| ConfigFileError::Read { key, path: path.clone(), reason: e.to_string() })
                }
            }
        };
        let (method, identity) = match &self.credentials {
            #[cfg(any(feature = "rsa-signer", feature = "ring-signer"))]
            CredentialSource::RsaKey(source) => {
                let pem = zeroize::Zeroizing::new(bytes("bot.privateKey", source)?);
                // Features add up across a build: another crate turning `ring-signer` on must not change the
                // signer of an application that kept the default.
                #[cfg(feature = "rsa-signer")]
                let signer = crate::RsaSigner::from_pem(&pem).map(|s| std::sync::Arc::new(s) as _);
                #[cfg(not(feature = "rsa-signer"))]
                let signer = crate::RingSigner::from_pem(&pem).map(|s| std::sync::Arc::new(s) as _);
                let signer = signer.map_err(|source| ConfigFileError::Key { key: "bot.privateKey", source })?;
                (LoginMethod::Rsa(signer), None)
            }
            #[cfg(not(any(feature = "rsa-signer", feature = "ring-signer")))]
            CredentialSource::RsaKey(_) => {
                return Err(ConfigFileError::Parse(BdkConfigError::InvalidValue {
                    key: "bot.privateKey".into(),
                    reason: "this build has no JWT signer: enable the `rsa-signer` or `ring-signer` feature".into(),
                }));
            }
            CredentialSource::Certificate { source, password } => {
                let data = zeroize::Zeroizing::new(bytes("bot.certificate", source)?);
                let identity = if self.credentials.is_pkcs12() {
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
                .map_err(|source| ConfigFileError::Identity { key: "bot.certificate", source })?;
                (LoginMethod::Certificate, Some(identity))
            }
        };
        let extra_roots_pem = match &self.trust_store {
            Some(source) => Some(bytes("ssl.trustStore", source)?),
            None => None,
        };
        let config = self.to_config(method).map_err(|source| ConfigFileError::Invalid { key: "bot", source })?;
        Ok(LoadedSettings {
            config,
            identity,
            extra_roots_pem,
            proxy: self.proxy.clone(),
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
        })
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
    /// The proxy.
    pub proxy: Option<ProxySettings>,
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
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawClient {
    scheme: Option<String>,
    host: Option<String>,
    port: Option<Value>,
    context: Option<String>,
    proxy: Option<RawProxy>,
}

#[derive(Default, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
struct RawProxy {
    host: Option<String>,
    port: Option<Value>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSource {
    path: Option<String>,
    content: Option<String>,
    password: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBot {
    username: Option<String>,
    private_key: Option<RawSource>,
    certificate: Option<RawSource>,
    // Deprecated BDK-Java spellings, still read by it.
    private_key_path: Option<String>,
    private_key_content: Option<String>,
    certificate_path: Option<String>,
    certificate_content: Option<String>,
    certificate_password: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSsl {
    trust_store: Option<RawSource>,
    trust_store_path: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRetry {
    max_attempts: Option<Value>,
    initial_interval_millis: Option<Value>,
    multiplier: Option<Value>,
    max_interval_millis: Option<Value>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(flatten)]
    root: RawClient,
    connection_timeout: Option<Value>,
    read_timeout: Option<Value>,
    pod: Option<RawClient>,
    agent: Option<RawClient>,
    key_manager: Option<RawClient>,
    session_auth: Option<RawClient>,
    bot: Option<RawBot>,
    ssl: Option<RawSsl>,
    retry: Option<RawRetry>,
}

/// Parses a BDK configuration (YAML, or JSON, which YAML reads too). `env` looks up environment variables for
/// `${NAME}` and `${NAME:-default}` in string values.
pub fn parse_bdk_config(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<BotSettings, BdkConfigError> {
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|e| BdkConfigError::Syntax(e.to_string()))?;
    if value.is_null() {
        value = Value::Mapping(serde_yaml_ng::Mapping::new());
    }
    interpolate(&mut value, env)?;
    let raw: RawConfig = serde_yaml_ng::from_value(value).map_err(|e| BdkConfigError::Syntax(e.to_string()))?;
    resolve(raw)
}

fn interpolate(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(), BdkConfigError> {
    match value {
        Value::String(text) if text.contains("${") => *text = expand(text, env)?,
        Value::Sequence(items) => items.iter_mut().try_for_each(|v| interpolate(v, env))?,
        Value::Mapping(map) => map.iter_mut().try_for_each(|(_, v)| interpolate(v, env))?,
        _ => {}
    }
    Ok(())
}

/// Expands `${NAME}` and `${NAME:-default}`.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, BdkConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let expression = &after[..end];
        let (name, default) = match expression.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expression, None),
        };
        match (env(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(BdkConfigError::UnsetVariable(name.to_owned())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn number(value: Option<&Value>, key: &str) -> Result<Option<f64>, BdkConfigError> {
    let invalid = |reason: &str| BdkConfigError::InvalidValue { key: key.to_owned(), reason: reason.to_owned() };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| invalid("not a number")),
        Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| invalid("not a number")),
        Some(_) => Err(invalid("not a number")),
    }
}

fn whole(value: Option<&Value>, key: &str, min: f64, max: f64) -> Result<Option<u64>, BdkConfigError> {
    match number(value, key)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && n >= min && n <= max => Ok(Some(n as u64)),
        Some(_) => Err(BdkConfigError::InvalidValue {
            key: key.to_owned(),
            reason: format!("expected a whole number from {min} to {max}"),
        }),
    }
}

fn resolve(raw: RawConfig) -> Result<BotSettings, BdkConfigError> {
    let root = &raw.root;
    let url = |which: &'static str, client: Option<&RawClient>| -> Result<BaseUrl, BdkConfigError> {
        let empty = RawClient::default();
        let client = client.unwrap_or(&empty);
        let scheme = client.scheme.as_deref().or(root.scheme.as_deref()).unwrap_or("https").trim().to_owned();
        if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
            let key = if client.scheme.is_some() { format!("{which}.scheme") } else { "scheme".to_owned() };
            return Err(BdkConfigError::UnknownScheme { key, value: scheme });
        }
        let host = client.host.as_deref().or(root.host.as_deref()).ok_or(BdkConfigError::MissingKey("host"))?;
        let port_key = if client.port.is_some() { format!("{which}.port") } else { "port".to_owned() };
        let port = whole(client.port.as_ref().or(root.port.as_ref()), &port_key, 1.0, 65535.0)?.map(|p| p as u16);
        let context = client.context.as_deref().or(root.context.as_deref()).unwrap_or("");
        BaseUrl::from_parts(which, &scheme, host.trim(), Some(port.unwrap_or(443)), context)
            .map_err(|source| BdkConfigError::Invalid { key: which, source })
    };
    let endpoints = Endpoints {
        pod: url("pod", raw.pod.as_ref())?,
        key_manager: url("keyManager", raw.key_manager.as_ref())?,
        session_auth: url("sessionAuth", raw.session_auth.as_ref())?,
        agent: url("agent", raw.agent.as_ref())?,
    };

    let bot = raw.bot.unwrap_or_default();
    let username =
        bot.username.clone().filter(|u| !u.trim().is_empty()).ok_or(BdkConfigError::MissingKey("bot.username"))?;
    let key = source(
        "bot.privateKey",
        bot.private_key.as_ref().and_then(|k| k.path.clone()).or(bot.private_key_path.clone()),
        bot.private_key.as_ref().and_then(|k| k.content.clone()).or(bot.private_key_content.clone()),
    )?;
    let certificate = source(
        "bot.certificate",
        bot.certificate.as_ref().and_then(|c| c.path.clone()).or(bot.certificate_path.clone()),
        bot.certificate.as_ref().and_then(|c| c.content.clone()).or(bot.certificate_content.clone()),
    )?;
    let credentials = match (key, certificate) {
        (Some(_), Some(_)) => return Err(BdkConfigError::BothRsaAndCertificate),
        (Some(key), None) => CredentialSource::RsaKey(key),
        (None, Some(certificate)) => CredentialSource::Certificate {
            source: certificate,
            password: bot
                .certificate
                .as_ref()
                .and_then(|c| c.password.clone())
                .or(bot.certificate_password.clone())
                .filter(|p| !p.is_empty())
                .map(SecretString::from),
        },
        (None, None) => return Err(BdkConfigError::NoCredentials),
    };

    let ssl = raw.ssl.unwrap_or_default();
    let trust_store = source(
        "ssl.trustStore",
        ssl.trust_store.as_ref().and_then(|t| t.path.clone()).or(ssl.trust_store_path),
        ssl.trust_store.as_ref().and_then(|t| t.content.clone()),
    )?;

    let retry = match raw.retry {
        None => RetryPolicy::default(),
        Some(r) => {
            let defaults = RetryPolicy::default();
            let attempts = match number(r.max_attempts.as_ref(), "retry.maxAttempts")? {
                None => defaults.max_attempts(),
                Some(n) if n < 0.0 => u32::MAX,
                Some(_) => {
                    whole(r.max_attempts.as_ref(), "retry.maxAttempts", 1.0, f64::from(u32::MAX))?.unwrap_or(10) as u32
                }
            };
            let initial =
                whole(r.initial_interval_millis.as_ref(), "retry.initialIntervalMillis", 0.0, 1e12)?.unwrap_or(500);
            // BDK: a multiplier below 1 becomes 2.
            let multiplier = number(r.multiplier.as_ref(), "retry.multiplier")?.filter(|m| *m >= 1.0).unwrap_or(2.0);
            let max = whole(r.max_interval_millis.as_ref(), "retry.maxIntervalMillis", 0.0, 1e12)?.unwrap_or(300_000);
            RetryPolicy::new(attempts, Duration::from_millis(initial), multiplier, Duration::from_millis(max))
                .map_err(|source| BdkConfigError::Invalid { key: "retry", source })?
        }
    };

    let proxy = resolve_proxy(&raw.root, [&raw.pod, &raw.agent, &raw.key_manager, &raw.session_auth])?;
    let millis = |value: Option<&Value>, key| -> Result<Option<Duration>, BdkConfigError> {
        Ok(whole(value, key, 1.0, 1e9)?.map(Duration::from_millis))
    };
    Ok(BotSettings {
        endpoints,
        username,
        credentials,
        trust_store,
        retry,
        proxy,
        connect_timeout: millis(raw.connection_timeout.as_ref(), "connectionTimeout")?,
        read_timeout: millis(raw.read_timeout.as_ref(), "readTimeout")?,
    })
}

fn source(key: &'static str, path: Option<String>, content: Option<String>) -> Result<Option<Source>, BdkConfigError> {
    let path = path.filter(|p| !p.trim().is_empty());
    let content = content.filter(|c| !c.trim().is_empty());
    match (path, content) {
        (Some(_), Some(_)) => Err(BdkConfigError::BothPathAndContent(key)),
        (Some(path), None) => Ok(Some(Source::Path(PathBuf::from(path.trim())))),
        (None, Some(content)) => Ok(Some(Source::Content(content.into_bytes()))),
        (None, None) => Ok(None),
    }
}

/// One HTTP client serves every service, so one proxy: the root's, or one that every entry that sets a proxy
/// agrees on.
fn resolve_proxy(root: &RawClient, clients: [&Option<RawClient>; 4]) -> Result<Option<ProxySettings>, BdkConfigError> {
    let mut chosen = root.proxy.clone();
    for client in clients.into_iter().flatten() {
        if let Some(proxy) = &client.proxy {
            match &chosen {
                Some(existing) if existing != proxy => {
                    return Err(BdkConfigError::InvalidValue {
                        key: "proxy".into(),
                        reason: "different proxies per service are not supported: set one `proxy` at the root".into(),
                    });
                }
                _ => chosen = Some(proxy.clone()),
            }
        }
    }
    let Some(proxy) = chosen else { return Ok(None) };
    let host = proxy.host.filter(|h| !h.trim().is_empty()).ok_or(BdkConfigError::MissingKey("proxy.host"))?;
    let port =
        whole(proxy.port.as_ref(), "proxy.port", 1.0, 65535.0)?.ok_or(BdkConfigError::MissingKey("proxy.port"))?;
    Ok(Some(ProxySettings {
        url: format!("http://{}:{port}", host.trim()),
        username: proxy.username.filter(|u| !u.is_empty()),
        password: proxy.password.filter(|p| !p.is_empty()).map(SecretString::from),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse(text: &str) -> Result<BotSettings, BdkConfigError> {
        parse_bdk_config(text, &no_env)
    }

    const RSA_YAML: &str = r#"
host: acme.symphony.com
port: 443
agent:
  host: agent.acme.com
  port: 8443
keyManager:
  host: km.acme.com
  port: 8444
  context: relay-ctx
bot:
  username: bot-username
  privateKey:
    path: /path/to/bot/rsa-private-key.pem
datafeed:
  version: v2
  retry:
    maxAttempts: 6
app:
  appId: app-id
"#;

    #[test]
    fn a_bdk_java_rsa_file_resolves_with_inheritance() {
        let settings = parse(RSA_YAML).unwrap();
        assert_eq!(settings.endpoints.pod.to_string(), "https://acme.symphony.com:443");
        assert_eq!(settings.endpoints.agent.to_string(), "https://agent.acme.com:8443");
        assert_eq!(settings.endpoints.key_manager.to_string(), "https://km.acme.com:8444/relay-ctx");
        assert_eq!(settings.endpoints.session_auth.to_string(), "https://acme.symphony.com:443");
        assert_eq!(settings.username, "bot-username");
        assert!(
            matches!(&settings.credentials, CredentialSource::RsaKey(Source::Path(p)) if p.to_str() == Some("/path/to/bot/rsa-private-key.pem"))
        );
        assert_eq!(settings.retry, RetryPolicy::default());
    }

    #[test]
    fn a_certificate_file_in_json_with_a_password_is_pkcs12() {
        let json = r#"{"host":"acme.symphony.com","sessionAuth":{"host":"acme-api.symphony.com","port":8444},
            "bot":{"username":"bot","certificate":{"path":"/certs/bot.p12","password":"changeit"}},
            "ssl":{"trustStore":{"path":"/certs/ca.pem"}},
            "retry":{"maxAttempts":-1,"initialIntervalMillis":100,"multiplier":0.5,"maxIntervalMillis":1000},
            "proxy":{"host":"proxy.acme","port":3128,"username":"u","password":"p"},
            "connectionTimeout":5000,"readTimeout":"30000"}"#;
        let settings = parse(json).unwrap();
        assert_eq!(settings.endpoints.session_auth.to_string(), "https://acme-api.symphony.com:8444");
        assert!(settings.credentials.is_pkcs12());
        assert_eq!(settings.credentials.password(), Some("changeit"));
        assert_eq!(settings.trust_store, Some(Source::Path("/certs/ca.pem".into())));
        assert_eq!(settings.retry.max_attempts(), u32::MAX);
        assert_eq!(settings.proxy.as_ref().unwrap().url, "http://proxy.acme:3128");
        assert_eq!(settings.proxy.as_ref().unwrap().url_with_credentials(), "http://u:p@proxy.acme:3128");
        assert_eq!(settings.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(settings.read_timeout, Some(Duration::from_secs(30)));
        assert!(!format!("{settings:?}").contains("changeit"), "no password in Debug");
    }

    #[test]
    fn environment_variables_are_interpolated() {
        let env = |name: &str| (name == "POD_HOST").then(|| "env.symphony.com".to_owned());
        let text = "host: ${POD_HOST}\nport: ${POD_PORT:-8443}\nbot:\n  username: ${BOT:-fallback}\n  privateKey:\n    content: \"-----BEGIN PRIVATE KEY-----\"\n";
        let settings = parse_bdk_config(text, &env).unwrap();
        assert_eq!(settings.endpoints.pod.to_string(), "https://env.symphony.com:8443");
        assert_eq!(settings.username, "fallback");
        assert!(matches!(settings.credentials, CredentialSource::RsaKey(Source::Content(_))));
        assert_eq!(parse_bdk_config("host: ${NOPE}", &env).unwrap_err(), BdkConfigError::UnsetVariable("NOPE".into()));
    }

    #[test]
    fn each_mistake_names_its_key() {
        let cases: [(&str, BdkConfigError); 7] = [
            (
                "host: h\nbot: {username: b, privateKey: {path: k}, certificate: {path: c}}",
                BdkConfigError::BothRsaAndCertificate,
            ),
            (
                "host: h\nbot: {username: b, privateKey: {path: k, content: x}}",
                BdkConfigError::BothPathAndContent("bot.privateKey"),
            ),
            ("host: h\nbot: {privateKey: {path: k}}", BdkConfigError::MissingKey("bot.username")),
            ("host: h\nbot: {username: b}", BdkConfigError::NoCredentials),
            ("bot: {username: b, privateKey: {path: k}}", BdkConfigError::MissingKey("host")),
            (
                "host: h\nagent: {scheme: ftp}\nbot: {username: b, privateKey: {path: k}}",
                BdkConfigError::UnknownScheme { key: "agent.scheme".into(), value: "ftp".into() },
            ),
            (
                "host: h\nport: 99999\nbot: {username: b, privateKey: {path: k}}",
                BdkConfigError::InvalidValue {
                    key: "port".into(),
                    reason: "expected a whole number from 1 to 65535".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap_err(), expected, "{text}");
        }
        assert!(matches!(parse("host: [unclosed"), Err(BdkConfigError::Syntax(_))));
        assert_eq!(
            parse("host: h\nbot: {username: b, privateKey: {path: k}}\nretry: {initialIntervalMillis: 1}")
                .unwrap_err()
                .to_string(),
            "`retry`: invalid retry setting initial_interval: must be at least 10 ms"
        );
    }

    #[cfg(any(feature = "rsa-signer", feature = "ring-signer"))]
    #[test]
    fn loading_reads_through_the_callers_reader_and_names_failures() {
        let settings =
            parse("host: h\nbot: {username: b, privateKey: {path: /keys/bot.pem}}\nssl: {trustStorePath: /ca.pem}")
                .unwrap();
        let key = include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem");
        let mut reads = Vec::new();
        let loaded = settings
            .load(&mut |path| {
                reads.push(path.to_owned());
                Ok(if path.ends_with("bot.pem") { key.to_vec() } else { b"roots".to_vec() })
            })
            .unwrap();
        assert_eq!(reads, [PathBuf::from("/keys/bot.pem"), PathBuf::from("/ca.pem")]);
        assert!(matches!(loaded.config.method(), LoginMethod::Rsa(_)));
        let compiled = if cfg!(feature = "rsa-signer") { "RsaSigner" } else { "RingSigner" };
        assert!(format!("{:?}", loaded.config.method()).contains(compiled), "the default signer is preferred");
        assert_eq!(loaded.extra_roots_pem.as_deref(), Some(&b"roots"[..]));

        let missing = settings.load(&mut |_| Err(std::io::Error::from(std::io::ErrorKind::NotFound))).unwrap_err();
        assert!(matches!(&missing, ConfigFileError::Read { key: "bot.privateKey", .. }), "{missing}");
        assert!(missing.to_string().starts_with("`bot.privateKey`: cannot read \"/keys/bot.pem\""), "{missing}");
        let weak =
            settings.load(&mut |_| Ok(include_bytes!("../../fixtures/keys/weak-1024.pkcs8.pem").to_vec())).unwrap_err();
        if cfg!(feature = "rsa-signer") {
            assert_eq!(weak, ConfigFileError::Key { key: "bot.privateKey", source: KeyError::TooSmall { bits: 1024 } });
        } else {
            // ring refuses small keys itself, before their size can be reported.
            assert!(matches!(weak, ConfigFileError::Key { key: "bot.privateKey", .. }), "{weak}");
        }
        let cert = parse("host: h\nbot: {username: b, certificate: {path: /c.pem}}").unwrap();
        let no_key = cert
            .load(&mut |_| Ok(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec()))
            .unwrap_err();
        assert_eq!(no_key, ConfigFileError::Identity { key: "bot.certificate", source: IdentityError::NoPrivateKey });
    }

    #[test]
    fn deprecated_bdk_java_keys_are_read() {
        let settings =
            parse("host: h\nbot: {username: b, privateKeyPath: /k.pem}\nssl: {trustStorePath: /ca.pem}").unwrap();
        assert!(matches!(settings.credentials, CredentialSource::RsaKey(Source::Path(_))));
        assert!(settings.trust_store.is_some());
    }
}
