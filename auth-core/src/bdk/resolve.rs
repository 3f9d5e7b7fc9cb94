//! From the YAML tree to [`BotSettings`]: the BDK's keys, its inheritance from the root to each service, and its
//! defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::tree::*;
use super::*;
use crate::config::{BaseUrl, Endpoints};
use crate::retry::RetryPolicy;

use super::extras::ServiceProxies;

/// A client entry (`pod`, `agent`, `keyManager`, `sessionAuth`, or the root), borrowed from the YAML tree.
#[derive(Default)]
pub(super) struct RawClient<'a> {
    scheme: Option<&'a str>,
    host: Option<&'a str>,
    port: Option<&'a Value>,
    context: Option<&'a str>,
    proxy: Option<RawProxy<'a>>,
}

#[derive(Clone, PartialEq)]
pub(super) struct RawProxy<'a> {
    host: Option<&'a str>,
    port: Option<&'a Value>,
    username: Option<&'a str>,
    password: Option<&'a str>,
}

/// `path` and `content`, or the deprecated flat spellings.
pub(super) struct RawSource<'a> {
    pub(super) path: Option<&'a str>,
    pub(super) content: Option<&'a str>,
    pub(super) password: Option<&'a str>,
}

pub(super) fn raw_client<'a>(map: Option<&'a Mapping>, prefix: &str) -> Result<RawClient<'a>, BdkConfigError> {
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

pub(super) fn raw_source<'a>(map: Option<&'a Mapping>, key: &str) -> Result<Option<RawSource<'a>>, BdkConfigError> {
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
pub(super) fn key_leaf(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

pub(super) fn resolve<'a>(root: &'a Mapping) -> Result<BotSettings, BdkConfigError> {
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

    let app = super::extras::app(root)?;
    let bot = mapping(get(Some(root), "bot"), "bot", "a mapping (`username`, `privateKey` or `certificate`)")?;
    // A file with an `app` section and no `bot` one configures an app only (OBO, extension apps): no bot
    // credentials to read, and `load` says so when asked for a bot.
    let (username, credentials) = match (bot, &app) {
        (None, Some(_)) => (String::new(), CredentialSource::Absent),
        (bot, _) => bot_credentials(bot)?,
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

    let common_jwt = mapping(get(Some(root), "commonJwt"), "commonJwt", "a mapping (`enabled`)")?;
    let common_jwt = boolean(get(common_jwt, "enabled"), "commonJwt.enabled")?.unwrap_or(false);

    // A service's own proxy, or the root's, named by the key it came from.
    let own = |client: &Option<RawClient<'a>>, key: &'static str| match client.as_ref().and_then(|c| c.proxy.clone()) {
        Some(proxy) => proxy_settings(Some(proxy), key),
        None => proxy_settings(top.proxy.clone(), "proxy"),
    };
    let proxies = ServiceProxies {
        pod: own(&pod, "pod.proxy")?,
        key_manager: own(&key_manager, "keyManager.proxy")?,
        session_auth: own(&session_auth, "sessionAuth.proxy")?,
        agent: own(&agent, "agent.proxy")?,
    };
    let proxy = proxies.uniform().ok().flatten().cloned();
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
        proxies,
        connect_timeout: millis("connectionTimeout")?,
        read_timeout: millis("readTimeout")?,
        app,
        key_manager: super::extras::key_manager_policy(root)?,
        default_headers: super::extras::default_headers(root)?,
        common_jwt,
    })
}

/// `bot.username` and the bot's key or certificate.
fn bot_credentials(bot: Option<&Mapping>) -> Result<(String, CredentialSource), BdkConfigError> {
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
    Ok((username, credentials))
}

pub(super) fn source(
    key: &'static str,
    path: Option<&str>,
    content: Option<&str>,
) -> Result<Option<Source>, BdkConfigError> {
    let path = path.filter(|p| !p.trim().is_empty());
    let content = content.filter(|c| !c.trim().is_empty());
    match (path, content) {
        (Some(_), Some(_)) => Err(BdkConfigError::BothPathAndContent(key)),
        (Some(path), None) => Ok(Some(Source::Path(PathBuf::from(path.trim())))),
        (None, Some(content)) => Ok(Some(Source::Content(content.as_bytes().to_vec()))),
        (None, None) => Ok(None),
    }
}

/// A service's proxy (its own entry's, or the root's), checked.
pub(super) fn proxy_settings(proxy: Option<RawProxy<'_>>, key: &str) -> Result<Option<ProxySettings>, BdkConfigError> {
    let Some(proxy) = proxy else { return Ok(None) };
    let missing = |leaf: &str| BdkConfigError::InvalidValue {
        key: format!("{key}.{leaf}"),
        reason: "missing: a proxy needs `host` and `port`".into(),
    };
    let host = proxy.host.filter(|h| !h.trim().is_empty()).ok_or_else(|| missing("host"))?;
    let port = whole(proxy.port, &format!("{key}.port"), 1.0, 65535.0)?.ok_or_else(|| missing("port"))?;
    Ok(Some(ProxySettings {
        url: format!("http://{}:{port}", host.trim()),
        username: proxy.username.filter(|u| !u.is_empty()).map(str::to_owned),
        password: proxy.password.filter(|p| !p.is_empty()).map(|p| SecretString::from(p.to_owned())),
    }))
}
