//! The BDK keys beyond a bot's login: the app (`app.appId`, `app.privateKey.*`, `app.certificate.*`, for OBO),
//! the key-manager policy (`keyManagerPolicy`), `defaultHeaders` (root and per service), and the proxy of each
//! service.

use serde_yaml_ng::Mapping;

use super::resolve::{key_leaf, raw_source, source};
use super::tree::{get, mapping, string};
use super::{BdkConfigError, CredentialSource, ProxySettings};
use crate::config::{DefaultHeaders, KeyManagerPolicy, Service};
use secrecy::{ExposeSecret, SecretString};

/// The `app` entry: the app that acts on behalf of users (OBO).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AppSettings {
    /// `app.appId`: the `sub` of the app's JWT, or the CN of its certificate.
    pub app_id: String,
    /// `app.privateKey` or `app.certificate`; `None` when neither is set.
    pub credentials: Option<CredentialSource>,
}

/// The proxy of each service: its own `proxy` entry, or the root's.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ServiceProxies {
    /// `pod.proxy`.
    pub pod: Option<ProxySettings>,
    /// `keyManager.proxy`.
    pub key_manager: Option<ProxySettings>,
    /// `sessionAuth.proxy`.
    pub session_auth: Option<ProxySettings>,
    /// `agent.proxy`.
    pub agent: Option<ProxySettings>,
}

impl ServiceProxies {
    /// The proxy of `service`.
    #[must_use]
    pub fn of(&self, service: Service) -> Option<&ProxySettings> {
        match service {
            Service::Pod => self.pod.as_ref(),
            Service::KeyManager => self.key_manager.as_ref(),
            Service::SessionAuth => self.session_auth.as_ref(),
            Service::Agent => self.agent.as_ref(),
        }
    }

    /// `Ok` with the one proxy (or none) every service uses; `Err` with the first service whose proxy differs from
    /// the pod's.
    pub fn uniform(&self) -> Result<Option<&ProxySettings>, Service> {
        let pod = self.pod.as_ref();
        for service in Service::ALL {
            let same = match (pod, self.of(service)) {
                (None, None) => true,
                (Some(a), Some(b)) => same_proxy(a, b),
                _ => false,
            };
            if !same {
                return Err(service);
            }
        }
        Ok(pod)
    }
}

fn same_proxy(a: &ProxySettings, b: &ProxySettings) -> bool {
    let password = |p: &ProxySettings| p.password.as_ref().map(|s| s.expose_secret().to_owned());
    a.url == b.url && a.username == b.username && password(a) == password(b)
}

pub(super) fn app(root: &Mapping) -> Result<Option<AppSettings>, BdkConfigError> {
    let Some(app) = mapping(get(Some(root), "app"), "app", "a mapping (`appId`, `privateKey` or `certificate`)")?
    else {
        return Ok(None);
    };
    let app = Some(app);
    let key =
        raw_source(app, "app.privateKey")?.map(|k| source("app.privateKey", k.path, k.content)).transpose()?.flatten();
    let certificate = raw_source(app, "app.certificate")?;
    let password = certificate.as_ref().and_then(|c| c.password).filter(|p| !p.is_empty());
    let certificate = certificate.map(|c| source("app.certificate", c.path, c.content)).transpose()?.flatten();
    let credentials = match (key, certificate) {
        (Some(_), Some(_)) => {
            return Err(BdkConfigError::InvalidValue {
                key: "app".into(),
                reason: "both `app.privateKey` (RSA) and `app.certificate` are configured: choose one".into(),
            });
        }
        (Some(key), None) => Some(CredentialSource::RsaKey(key)),
        (None, Some(source)) => {
            Some(CredentialSource::Certificate { source, password: password.map(|p| SecretString::from(p.to_owned())) })
        }
        (None, None) => None,
    };
    let app_id = string(get(app, "appId"), "app.appId")?.map(str::trim).filter(|id| !id.is_empty());
    match (app_id, credentials) {
        (Some(app_id), credentials) => Ok(Some(AppSettings { app_id: app_id.to_owned(), credentials })),
        (None, Some(_)) => Err(BdkConfigError::MissingKey("app.appId")),
        (None, None) => Ok(None),
    }
}

pub(super) fn key_manager_policy(root: &Mapping) -> Result<Option<KeyManagerPolicy>, BdkConfigError> {
    let Some(value) = string(get(Some(root), "keyManagerPolicy"), "keyManagerPolicy")? else { return Ok(None) };
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Some(KeyManagerPolicy::Auto)),
        "always" => Ok(Some(KeyManagerPolicy::Always)),
        "never" => Ok(Some(KeyManagerPolicy::Never)),
        _ => Err(BdkConfigError::InvalidValue {
            key: "keyManagerPolicy".into(),
            reason: "expected `auto` (log in to the key manager unless the pod grants simplified key delivery), \
                     `always` or `never` (pod-only bots)"
                .into(),
        }),
    }
}

/// The root's `defaultHeaders`, overridden per service by each entry's own.
pub(super) fn default_headers(root: &Mapping) -> Result<DefaultHeaders, BdkConfigError> {
    let mut headers = DefaultHeaders::new();
    let mut add = |service: Service, map: Option<&Mapping>, key: &str| -> Result<(), BdkConfigError> {
        let key = if key.is_empty() { "defaultHeaders".to_owned() } else { format!("{key}.defaultHeaders") };
        let Some(defaults) = mapping(get(map, "defaultHeaders"), &key, "a mapping of header names to values")? else {
            return Ok(());
        };
        for (name, value) in defaults {
            let Some(name) = name.as_str() else {
                return Err(BdkConfigError::InvalidValue { key, reason: "a header name must be a string".into() });
            };
            let value = string(Some(value), &format!("{key}.{name}"))?.unwrap_or_default();
            headers
                .insert(service, name, value)
                .map_err(|source| BdkConfigError::Invalid { key: key_leaf("defaultHeaders"), source })?;
        }
        Ok(())
    };
    for service in Service::ALL {
        add(service, Some(root), "")?;
        let entry = mapping(get(Some(root), service.name()), service.name(), "a mapping")?;
        add(service, entry, service.name())?;
    }
    Ok(headers)
}

/// Java KeyStore files start with these bytes (JKS `FEEDFEED`, JCEKS `CECECECE`).
const JAVA_KEYSTORE_MAGIC: [[u8; 4]; 2] = [[0xFE, 0xED, 0xFE, 0xED], [0xCE, 0xCE, 0xCE, 0xCE]];

/// Whether a trust store is a Java KeyStore (by its first bytes, or a `.jks`/`.jceks` name), which only Java reads.
pub(super) fn is_java_keystore(path: Option<&std::path::Path>, bytes: &[u8]) -> bool {
    let named = path
        .and_then(|p| p.extension())
        .is_some_and(|e| e.eq_ignore_ascii_case("jks") || e.eq_ignore_ascii_case("jceks"));
    named || JAVA_KEYSTORE_MAGIC.iter().any(|magic| bytes.starts_with(magic))
}
