//! BDK configuration files (the YAML or JSON that symphony-bdk-java and symphony-bdk-python read), resolved into
//! what this workspace needs. Pure: the text and the environment come in as values, and key, certificate and
//! trust-store files are named, not read (drivers read them).
//!
//! Real BDK files load unchanged: keys this library does not use (datafeed, app, loadBalancing, ...) are ignored.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_yaml_ng::{Mapping, Value};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{BaseUrl, Config, Endpoints, LoginMethod};
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

/// A client entry (`pod`, `agent`, `keyManager`, `sessionAuth`, or the root), borrowed from the YAML tree.
#[derive(Default)]
struct RawClient<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<&'a Value>,
    context: Option<&'a str>,
    proxy: Option<RawProxy<'a>>,
}

#[derive(Clone, PartialEq)]
struct RawProxy<'a> {
    host: Option<&'a str>,
    port: Option<&'a Value>,
    username: Option<&'a str>,
    password: Option<&'a str>,
}

/// `path` and `content`, or the deprecated flat spellings.
struct RawSource<'a> {
    path: Option<&'a str>,
    content: Option<&'a str>,
    password: Option<&'a str>,
}

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

/// A YAML tree whose strings are wiped when it is dropped: passwords and inline keys live in it.
struct WipedTree(Value);

impl Drop for WipedTree {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            match value {
                Value::String(text) => text.zeroize(),
                Value::Sequence(items) => items.iter_mut().for_each(wipe),
                Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| wipe(v)),
                Value::Tagged(tagged) => wipe(&mut tagged.value),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// The parser's complaint, as a place and a kind: its own messages can quote the text (a duplicated key, for
/// one), so only the location is kept, and a duplicated key is named as such.
fn syntax_error(error: &serde_yaml_ng::Error) -> BdkConfigError {
    let what = if error.to_string().starts_with("duplicate entry") {
        "a key appears twice in one mapping"
    } else {
        "not valid YAML or JSON"
    };
    let message = match error.location() {
        Some(at) => format!("{what} at line {}, column {}", at.line(), at.column()),
        None => what.to_owned(),
    };
    BdkConfigError::Syntax(message)
}

fn interpolate(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(), BdkConfigError> {
    match value {
        Value::String(text) if text.contains("${") => {
            let mut expanded = expand(text, env)?;
            std::mem::swap(text, &mut *expanded);
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(|v| interpolate(v, env))?,
        Value::Mapping(map) => map.iter_mut().try_for_each(|(_, v)| interpolate(v, env))?,
        _ => {}
    }
    Ok(())
}

/// Expands `${NAME}` and `${NAME:-default}`. The result is written once into a buffer of its final size, so that
/// no reallocation leaves part of a secret behind; the pieces and the replaced text are wiped.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Zeroizing<String>, BdkConfigError> {
    enum Piece<'t> {
        Text(&'t str),
        Variable(Zeroizing<String>),
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            pieces.push(Piece::Text(&rest[start..]));
            rest = "";
            break;
        };
        let expression = &after[..end];
        let (name, default) = match expression.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expression, None),
        };
        match (env(name).map(Zeroizing::new), default) {
            (Some(value), _) => pieces.push(Piece::Variable(value)),
            (None, Some(default)) => pieces.push(Piece::Text(default)),
            (None, None) => return Err(BdkConfigError::UnsetVariable(plausible_variable(name))),
        }
        rest = &after[end + 1..];
    }
    pieces.push(Piece::Text(rest));
    let text_of = |piece: &'_ Piece<'_>| -> usize {
        match piece {
            Piece::Text(text) => text.len(),
            Piece::Variable(value) => value.len(),
        }
    };
    let mut out = Zeroizing::new(String::with_capacity(pieces.iter().map(text_of).sum()));
    for piece in &pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Variable(value) => out.push_str(value),
        }
    }
    Ok(out)
}

/// The name of an unset variable when it looks like one (`[A-Za-z_][A-Za-z0-9_.]*`, at most 64 characters), and
/// empty otherwise: `${` inside a password is not a variable, and its text is not repeated.
fn plausible_variable(name: &str) -> String {
    let plausible = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if plausible { name.to_owned() } else { String::new() }
}

/// What kind of YAML value `value` is, for messages that must not show it.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> BdkConfigError {
    BdkConfigError::WrongType { key: key.to_owned(), expected, found: kind(found) }
}

/// `map[key]`, with `null` (an empty value) read as absent.
fn get<'a>(map: Option<&'a Mapping>, key: &str) -> Option<&'a Value> {
    map?.get(key).filter(|value| !value.is_null())
}

fn mapping<'a>(
    value: Option<&'a Value>,
    key: &str,
    expected: &'static str,
) -> Result<Option<&'a Mapping>, BdkConfigError> {
    match value {
        None => Ok(None),
        Some(Value::Mapping(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(key, expected, other)),
    }
}

fn string<'a>(value: Option<&'a Value>, key: &str) -> Result<Option<&'a str>, BdkConfigError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(key, "a string", other)),
    }
}

/// A boolean, or the text `true`/`false` (what `${VARIABLE}` gives).
fn boolean(value: Option<&Value>, key: &str) -> Result<Option<bool>, BdkConfigError> {
    match value {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::String(text)) if text.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(text)) if text.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(wrong_type(key, "`true` or `false`", other)),
    }
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

/// `prefix.key`, or `key` at the top level.
fn key_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

fn raw_client<'a>(map: Option<&'a Mapping>, prefix: &str) -> Result<RawClient<'a>, BdkConfigError> {
    let proxy_key = key_path(prefix, "proxy");
    let proxy = mapping(get(map, "proxy"), &proxy_key, "a mapping (`host`, `port`, `username`, `password`)")?;
    let proxy = match proxy {
        None => None,
        Some(proxy) => Some(RawProxy {
            host: string(get(Some(proxy), "host"), &key_path(&proxy_key, "host"))?,
            port: get(Some(proxy), "port"),
            username: string(get(Some(proxy), "username"), &key_path(&proxy_key, "username"))?,
            password: string(get(Some(proxy), "password"), &key_path(&proxy_key, "password"))?,
        }),
    };
    Ok(RawClient {
        scheme: string(get(map, "scheme"), &key_path(prefix, "scheme"))?,
        host: string(get(map, "host"), &key_path(prefix, "host"))?,
        port: get(map, "port"),
        context: string(get(map, "context"), &key_path(prefix, "context"))?,
        proxy,
    })
}

fn raw_source<'a>(map: Option<&'a Mapping>, key: &str) -> Result<Option<RawSource<'a>>, BdkConfigError> {
    let Some(source) = mapping(get(map, key_leaf(key)), key, "a mapping with `path` or `content`")? else {
        return Ok(None);
    };
    Ok(Some(RawSource {
        path: string(get(Some(source), "path"), &format!("{key}.path"))?,
        content: string(get(Some(source), "content"), &format!("{key}.content"))?,
        password: string(get(Some(source), "password"), &format!("{key}.password"))?,
    }))
}

/// `privateKey` of `bot.privateKey`.
fn key_leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn resolve(root: &Mapping) -> Result<BotSettings, BdkConfigError> {
    let top = raw_client(Some(root), "")?;
    let entry = |name: &'static str| -> Result<Option<RawClient<'_>>, BdkConfigError> {
        let map = mapping(get(Some(root), name), name, "a mapping (`scheme`, `host`, `port`, `context`, ...)")?;
        map.map(|map| raw_client(Some(map), name)).transpose()
    };
    let (pod, agent, key_manager, session_auth) =
        (entry("pod")?, entry("agent")?, entry("keyManager")?, entry("sessionAuth")?);

    let url = |which: &'static str, client: Option<&RawClient<'_>>| -> Result<BaseUrl, BdkConfigError> {
        let empty = RawClient::default();
        let client = client.unwrap_or(&empty);
        let scheme = client.scheme.or(top.scheme).unwrap_or("https").trim();
        if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
            let key = if client.scheme.is_some() { format!("{which}.scheme") } else { "scheme".to_owned() };
            // A scheme is never a secret, but only a short word is worth repeating.
            let shown = if scheme.len() <= 16 && scheme.bytes().all(|b| b.is_ascii_alphanumeric()) {
                scheme.to_owned()
            } else {
                String::new()
            };
            return Err(BdkConfigError::UnknownScheme { key, value: shown });
        }
        let host = client.host.or(top.host).ok_or(BdkConfigError::MissingKey("host"))?;
        let port_key = if client.port.is_some() { format!("{which}.port") } else { "port".to_owned() };
        let port = whole(client.port.or(top.port), &port_key, 1.0, 65535.0)?.map(|p| p as u16);
        let context = client.context.or(top.context).unwrap_or("");
        BaseUrl::from_parts(which, scheme, host.trim(), Some(port.unwrap_or(443)), context)
            .map_err(|source| BdkConfigError::Invalid { key: which, source })
    };
    let mut endpoints = Endpoints {
        pod: url("pod", pod.as_ref())?,
        key_manager: url("keyManager", key_manager.as_ref())?,
        session_auth: url("sessionAuth", session_auth.as_ref())?,
        agent: url("agent", agent.as_ref())?,
    };
    if boolean(get(Some(root), "allowInsecureHttp"), "allowInsecureHttp")?.unwrap_or(false) {
        endpoints = endpoints.allow_insecure_http();
    }
    endpoints.check_insecure_http().map_err(|source| {
        let key = match &source {
            ConfigError::InsecureHttp { which, .. } => which,
            _ => "scheme",
        };
        BdkConfigError::Invalid { key, source }
    })?;

    let bot = mapping(get(Some(root), "bot"), "bot", "a mapping (`username`, `privateKey` or `certificate`)")?;
    let username = string(get(bot, "username"), "bot.username")?
        .filter(|u| !u.trim().is_empty())
        .ok_or(BdkConfigError::MissingKey("bot.username"))?
        .to_owned();
    let private_key = raw_source(bot, "bot.privateKey")?;
    let certificate = raw_source(bot, "bot.certificate")?;
    let key = source(
        "bot.privateKey",
        private_key.as_ref().and_then(|k| k.path).or(string(get(bot, "privateKeyPath"), "bot.privateKeyPath")?),
        private_key
            .as_ref()
            .and_then(|k| k.content)
            .or(string(get(bot, "privateKeyContent"), "bot.privateKeyContent")?),
    )?;
    let certificate_source = source(
        "bot.certificate",
        certificate.as_ref().and_then(|c| c.path).or(string(get(bot, "certificatePath"), "bot.certificatePath")?),
        certificate
            .as_ref()
            .and_then(|c| c.content)
            .or(string(get(bot, "certificateContent"), "bot.certificateContent")?),
    )?;
    let certificate_password = certificate
        .as_ref()
        .and_then(|c| c.password)
        .or(string(get(bot, "certificatePassword"), "bot.certificatePassword")?);
    let credentials = match (key, certificate_source) {
        (Some(_), Some(_)) => return Err(BdkConfigError::BothRsaAndCertificate),
        (Some(key), None) => CredentialSource::RsaKey(key),
        (None, Some(certificate)) => CredentialSource::Certificate {
            source: certificate,
            password: certificate_password.filter(|p| !p.is_empty()).map(|p| SecretString::from(p.to_owned())),
        },
        (None, None) => return Err(BdkConfigError::NoCredentials),
    };

    let ssl = mapping(get(Some(root), "ssl"), "ssl", "a mapping (`trustStore`)")?;
    let trust_store = raw_source(ssl, "ssl.trustStore")?;
    let trust_store = source(
        "ssl.trustStore",
        trust_store.as_ref().and_then(|t| t.path).or(string(get(ssl, "trustStorePath"), "ssl.trustStorePath")?),
        trust_store.as_ref().and_then(|t| t.content),
    )?;

    let retry = match mapping(get(Some(root), "retry"), "retry", "a mapping (`maxAttempts`, ...)")? {
        None => RetryPolicy::default(),
        Some(r) => {
            let r = Some(r);
            let defaults = RetryPolicy::default();
            let attempts = match number(get(r, "maxAttempts"), "retry.maxAttempts")? {
                None => defaults.max_attempts(),
                // "No limit" in the BDKs; here the most a policy allows, so that every wait stays bounded.
                Some(n) if n < 0.0 => RetryPolicy::MAX_ATTEMPTS,
                // Beyond the cap, the cap: every wait stays bounded.
                Some(_) => whole(get(r, "maxAttempts"), "retry.maxAttempts", 1.0, f64::from(u32::MAX))?
                    .unwrap_or(10)
                    .min(u64::from(RetryPolicy::MAX_ATTEMPTS)) as u32,
            };
            let cap = u64::try_from(RetryPolicy::MAX_INTERVAL.as_millis()).unwrap_or(u64::MAX);
            let initial =
                whole(get(r, "initialIntervalMillis"), "retry.initialIntervalMillis", 0.0, 1e12)?.unwrap_or(500);
            // BDK: a multiplier below 1 becomes 2.
            let multiplier = number(get(r, "multiplier"), "retry.multiplier")?.filter(|m| *m >= 1.0).unwrap_or(2.0);
            let max =
                whole(get(r, "maxIntervalMillis"), "retry.maxIntervalMillis", 0.0, 1e12)?.unwrap_or(300_000).min(cap);
            let initial = initial.min(max);
            RetryPolicy::new(attempts, Duration::from_millis(initial), multiplier, Duration::from_millis(max))
                .map_err(|source| BdkConfigError::Invalid { key: "retry", source })?
        }
    };

    let proxy = resolve_proxy(&top, [&pod, &agent, &key_manager, &session_auth])?;
    let millis = |key: &str| -> Result<Option<Duration>, BdkConfigError> {
        Ok(whole(get(Some(root), key), key, 1.0, 1e9)?.map(Duration::from_millis))
    };
    Ok(BotSettings {
        endpoints,
        username,
        credentials,
        trust_store,
        retry,
        proxy,
        connect_timeout: millis("connectionTimeout")?,
        read_timeout: millis("readTimeout")?,
    })
}

fn source(key: &'static str, path: Option<&str>, content: Option<&str>) -> Result<Option<Source>, BdkConfigError> {
    let path = path.filter(|p| !p.trim().is_empty());
    let content = content.filter(|c| !c.trim().is_empty());
    match (path, content) {
        (Some(_), Some(_)) => Err(BdkConfigError::BothPathAndContent(key)),
        (Some(path), None) => Ok(Some(Source::Path(PathBuf::from(path.trim())))),
        (None, Some(content)) => Ok(Some(Source::Content(content.as_bytes().to_vec()))),
        (None, None) => Ok(None),
    }
}

/// One HTTP client serves every service, so one proxy: the root's, or one that every entry that sets a proxy
/// agrees on.
fn resolve_proxy(
    root: &RawClient<'_>,
    clients: [&Option<RawClient<'_>>; 4],
) -> Result<Option<ProxySettings>, BdkConfigError> {
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
    let port = whole(proxy.port, "proxy.port", 1.0, 65535.0)?.ok_or(BdkConfigError::MissingKey("proxy.port"))?;
    Ok(Some(ProxySettings {
        url: format!("http://{}:{port}", host.trim()),
        username: proxy.username.filter(|u| !u.is_empty()).map(str::to_owned),
        password: proxy.password.filter(|p| !p.is_empty()).map(|p| SecretString::from(p.to_owned())),
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
        assert_eq!(settings.retry.max_attempts(), RetryPolicy::MAX_ATTEMPTS, "-1 is 'no limit': the cap");
        assert_eq!(settings.proxy.as_ref().unwrap().url, "http://proxy.acme:3128");
        assert_eq!(settings.proxy.as_ref().unwrap().url_with_credentials().as_str(), "http://u:p@proxy.acme:3128");
        assert_eq!(settings.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(settings.read_timeout, Some(Duration::from_secs(30)));
        assert!(!format!("{settings:?}").contains("changeit"), "no password in Debug");
    }

    #[test]
    fn retry_settings_beyond_the_bounds_are_capped() {
        let yaml = "host: a.b\nbot: {username: u, privateKey: {path: k}}\n\
                    retry: {maxAttempts: 5000, initialIntervalMillis: 90000000, maxIntervalMillis: 86400000}\n";
        let settings = parse(yaml).unwrap();
        assert_eq!(settings.retry.max_attempts(), RetryPolicy::MAX_ATTEMPTS);
        assert_eq!(settings.retry.max_interval(), RetryPolicy::MAX_INTERVAL);
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

    /// The message and the `Debug` of an error, for checks that a value is not in them.
    fn shown(error: &BdkConfigError) -> String {
        format!("{error} {error:?}")
    }

    #[test]
    fn a_password_written_as_a_number_is_named_not_shown() {
        let text = "host: h\nbot: {username: b, certificate: {path: /c.p12, password: 918273645}}";
        let error = parse(text).unwrap_err();
        assert_eq!(
            error,
            BdkConfigError::WrongType {
                key: "bot.certificate.password".into(),
                expected: "a string",
                found: "a number"
            }
        );
        assert!(!shown(&error).contains("918273645"), "{error}");
        assert!(error.to_string().contains("write the value in quotes"), "{error}");
        // Quoted, it is a password like any other.
        let quoted = parse("host: h\nbot: {username: b, certificate: {path: /c.p12, password: '918273645'}}").unwrap();
        assert_eq!(quoted.credentials.password(), Some("918273645"));
        for text in [
            "host: h\nproxy: {host: p, port: 1, username: u, password: 918273645}\nbot: {username: b, privateKey: {path: k}}",
            "host: h\nbot: {username: b, certificatePath: /c.p12, certificatePassword: 918273645}",
            "host: h\nbot: {username: b, certificate: {path: /c.p12, password: [918273645]}}",
            "host: h\nbot: {username: b, certificate: {path: /c.p12, password: !secret 918273645}}",
        ] {
            let error = parse(text).unwrap_err();
            assert!(matches!(error, BdkConfigError::WrongType { .. }), "{text}: {error:?}");
            assert!(!shown(&error).contains("918273645"), "{error}");
        }
    }

    #[test]
    fn an_inline_key_where_a_mapping_belongs_is_named_not_shown() {
        let key = include_str!("../../fixtures/keys/bot-2048.pkcs8.pem");
        let text = format!(
            "host: h\nbot:\n  username: b\n  privateKey: |\n{}",
            key.lines().map(|l| format!("    {l}\n")).collect::<String>()
        );
        let error = parse(&text).unwrap_err();
        assert_eq!(
            error,
            BdkConfigError::WrongType {
                key: "bot.privateKey".into(),
                expected: "a mapping with `path` or `content`",
                found: "a string"
            }
        );
        let message = shown(&error);
        assert!(message.contains("content: <the PEM>"), "{message}");
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        for window in body.as_bytes().windows(16) {
            assert!(!message.contains(std::str::from_utf8(window).unwrap()), "{message}");
        }
    }

    #[test]
    fn syntax_errors_give_a_place_and_never_the_text() {
        for (text, expected) in [
            (
                "host: h\nbot: {username: b, certificate: {path: c, password: \"s3cr3t-918273645",
                "not valid YAML or JSON",
            ),
            ("host: h\ns3cr3t-918273645: 1\ns3cr3t-918273645: 2\n", "a key appears twice in one mapping"),
            ("host: [unclosed", "not valid YAML or JSON"),
        ] {
            let error = parse(text).unwrap_err();
            let BdkConfigError::Syntax(message) = &error else { panic!("{error:?}") };
            assert!(message.starts_with(expected) && message.contains(" at line "), "{message}");
            assert!(!shown(&error).contains("s3cr3t"), "{error}");
        }
        assert_eq!(
            parse("just a string").unwrap_err(),
            BdkConfigError::WrongType {
                key: "(top level)".into(),
                expected: "a mapping of settings",
                found: "a string"
            }
        );
    }

    #[test]
    fn other_values_are_not_repeated_either() {
        let long_scheme = parse("host: h\nscheme: s3cr3t-918273645\nbot: {username: b, privateKey: {path: k}}");
        assert_eq!(
            long_scheme.unwrap_err(),
            BdkConfigError::UnknownScheme { key: "scheme".into(), value: String::new() }
        );
        let dollar = parse("host: h\nbot: {username: b, certificate: {path: c, password: 'ab${s3cr3t 9}cd'}}");
        let error = dollar.unwrap_err();
        assert_eq!(error, BdkConfigError::UnsetVariable(String::new()));
        assert!(!shown(&error).contains("s3cr3t"), "{error}");
        let url = parse("host: 'user:s3cr3t@h'\nbot: {username: b, privateKey: {path: k}}").unwrap_err();
        assert!(!shown(&url).contains("s3cr3t"), "{url}");
    }

    #[test]
    fn plain_http_to_a_remote_host_needs_allow_insecure_http() {
        let text = "scheme: http\nhost: pod.internal\nport: 8080\nbot: {username: b, privateKey: {path: k}}";
        let error = parse(text).unwrap_err();
        assert!(
            matches!(
                &error,
                BdkConfigError::Invalid { key: "pod", source: ConfigError::InsecureHttp { which: "pod", .. } }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("allowInsecureHttp: true"), "{error}");
        let allowed = parse(&format!("allowInsecureHttp: true\n{text}")).unwrap();
        assert!(allowed.endpoints.pod.insecure_http_allowed());
        assert!(allowed.to_config(LoginMethod::Certificate).is_ok());
        let from_env = |name: &str| (name == "ALLOW").then(|| "true".to_owned());
        assert!(parse_bdk_config(&format!("allowInsecureHttp: ${{ALLOW}}\n{text}"), &from_env).is_ok());
        assert!(matches!(
            parse(&format!("allowInsecureHttp: 1\n{text}")).unwrap_err(),
            BdkConfigError::WrongType { expected: "`true` or `false`", .. }
        ));
        // Loopback needs no consent; one remote service is enough to refuse.
        assert!(parse("scheme: http\nhost: 127.0.0.1\nbot: {username: b, privateKey: {path: k}}").is_ok());
        let agent =
            "scheme: http\nhost: localhost\nagent: {host: agent.internal}\nbot: {username: b, privateKey: {path: k}}";
        assert!(matches!(parse(agent).unwrap_err(), BdkConfigError::Invalid { key: "agent", .. }));
    }

    #[test]
    fn proxy_credentials_are_percent_encoded() {
        let settings = parse(
            "host: h\nproxy: {host: proxy.acme, port: 3128, username: 'd@m', password: 'p:w/ é'}\nbot: {username: b, privateKey: {path: k}}",
        )
        .unwrap();
        let url = settings.proxy.unwrap().url_with_credentials();
        assert_eq!(url.as_str(), "http://d%40m:p%3Aw%2F%20%C3%A9@proxy.acme:3128");
    }
}
