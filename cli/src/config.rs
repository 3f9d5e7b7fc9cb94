//! `symphony-auth config`: the settings of a BDK configuration file as this library resolves them (`${ENV}`
//! expanded, services inheriting the root `host`, defaults filled in), without reading the files it names and
//! without a request. Paths, usernames, URLs and header names are shown; key material given inline, passwords and
//! header values are masked as `***`, whatever they hold.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use symphony_auth_blocking::symphony_auth_core::driver::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, ProxyUrl};
use symphony_auth_blocking::symphony_auth_core::{
    BotSettings, CredentialSource, KeyManagerPolicy, ProxySettings, Service, Source,
};

use crate::failure::Failure;

/// What stands for a secret.
const MASK: &str = "***";

/// Prints the resolved settings of the file at `path`: a summary, or with `json` one JSON object.
pub(crate) fn run(path: &Path, json: bool) -> Result<(), Failure> {
    let settings = crate::read_config_file(path)?;
    let resolved = resolved(path, &settings);
    if json {
        println!("{resolved}");
    } else {
        print!("{}", text(&resolved));
    }
    Ok(())
}

/// The settings as one JSON object; every secret already masked.
fn resolved(path: &Path, settings: &BotSettings) -> Value {
    let e = &settings.endpoints;
    let proxies: serde_json::Map<String, Value> = Service::ALL
        .iter()
        .map(|s| (s.name().to_owned(), settings.proxies.of(*s).map_or(Value::Null, proxy)))
        .collect();
    let headers: serde_json::Map<String, Value> = Service::ALL
        .iter()
        .map(|s| {
            let names = settings.default_headers.of(*s).keys().map(|name| (name.to_string(), json!(MASK)));
            (s.name().to_owned(), Value::Object(names.collect()))
        })
        .filter(|(_, names)| names.as_object().is_some_and(|n| !n.is_empty()))
        .collect();
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    json!({
        "config": path.display().to_string(),
        "username": settings.username,
        "credentials": credentials(&settings.credentials),
        "services": {
            "pod": e.pod.to_string(),
            "agent": e.agent.to_string(),
            "keyManager": e.key_manager.to_string(),
            "sessionAuth": e.session_auth.to_string(),
        },
        "trust_store": settings.trust_store.as_ref().map_or(Value::Null, source),
        "proxies": proxies,
        "connect_timeout_ms": millis(settings.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT)),
        "read_timeout_ms": millis(settings.read_timeout.unwrap_or(DEFAULT_TIMEOUT)),
        "retry": {
            "max_attempts": settings.retry.max_attempts(),
            "max_interval_ms": millis(settings.retry.max_interval()),
        },
        "key_manager": match settings.key_manager.unwrap_or_default() {
            KeyManagerPolicy::Always => "always",
            KeyManagerPolicy::Never => "never",
            _ => "auto",
        },
        "common_jwt": settings.common_jwt,
        "default_headers": headers,
        "app": settings.app.as_ref().map_or(Value::Null, |app| json!({
            "app_id": app.app_id,
            "credentials": app.credentials.as_ref().map_or(Value::Null, credentials),
        })),
    })
}

fn credentials(credentials: &CredentialSource) -> Value {
    match credentials {
        CredentialSource::RsaKey(key) => json!({"type": "rsa", "private_key": source(key)}),
        certificate => json!({
            "type": "certificate",
            "format": if certificate.is_pkcs12() { "pkcs12" } else { "pem" },
            "certificate": match certificate {
                CredentialSource::Certificate { source: file, .. } => source(file),
                _ => Value::Null,
            },
            "password": certificate.password().map(|_| MASK),
        }),
    }
}

/// A path as it is; inline content as its size only.
fn source(source: &Source) -> Value {
    match source {
        Source::Path(path) => json!({"path": path.display().to_string()}),
        Source::Content(bytes) => json!({"content": MASK, "bytes": bytes.len()}),
        _ => json!({"content": MASK}),
    }
}

/// A proxy: its URL (any user information in it masked, as the core shows proxies), its user, whether a password
/// is set.
fn proxy(proxy: &ProxySettings) -> Value {
    let url = ProxyUrl::parse(&proxy.url).map_or_else(|_| MASK.to_owned(), |url| url.shown().to_owned());
    json!({
        "url": url,
        "username": proxy.username,
        "password": proxy.password.as_ref().map(|_| MASK),
    })
}

/// The summary: one line per setting, from the JSON object so that both show the same.
fn text(resolved: &Value) -> String {
    let mut out = String::new();
    let mut line = |key: &str, value: String| out.push_str(&format!("{key:<17}{value}\n"));
    let field = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Null => "not set".to_owned(),
        Value::Object(object) if object.contains_key("path") => format!("path {}", field_str(&object["path"])),
        Value::Object(object) if object.contains_key("bytes") => {
            format!("inline content, {} bytes ({MASK})", object["bytes"])
        }
        other => other.to_string(),
    };
    line("configuration:", field(&resolved["config"]));
    line("bot.username:", field(&resolved["username"]));
    let credentials = &resolved["credentials"];
    match credentials["type"].as_str() {
        Some("rsa") => line("bot.privateKey:", field(&credentials["private_key"])),
        _ => {
            let password = if credentials["password"].is_null() { "no password" } else { "password ***" };
            let format = field_str(&credentials["format"]);
            line("bot.certificate:", format!("{}, {format}, {password}", field(&credentials["certificate"])));
        }
    }
    for (key, name) in
        [("pod", "pod"), ("agent", "agent"), ("keyManager", "keyManager"), ("sessionAuth", "sessionAuth")]
    {
        line(&format!("{name}:"), field(&resolved["services"][key]));
    }
    line(
        "ssl.trustStore:",
        match &resolved["trust_store"] {
            Value::Null => "not set (the Mozilla roots only)".to_owned(),
            store => field(store),
        },
    );
    if let Some(proxies) = resolved["proxies"].as_object() {
        for (service, proxy) in proxies.iter().filter(|(_, p)| !p.is_null()) {
            let user = match (proxy["username"].as_str(), proxy["password"].is_null()) {
                (Some(user), true) => format!(" (user {user:?})"),
                (Some(user), false) => format!(" (user {user:?}, password ***)"),
                (None, _) => String::new(),
            };
            line(&format!("proxy ({service}):"), format!("{}{user}", field_str(&proxy["url"])));
        }
    }
    line("connectionTimeout:", format!("{} ms", resolved["connect_timeout_ms"]));
    line("readTimeout:", format!("{} ms", resolved["read_timeout_ms"]));
    let retry = &resolved["retry"];
    line("retry:", format!("{} attempt(s), waits up to {} ms", retry["max_attempts"], retry["max_interval_ms"]));
    line("keyManager:", field(&resolved["key_manager"]));
    line("commonJwt:", if resolved["common_jwt"] == json!(true) { "enabled" } else { "disabled" }.to_owned());
    if let Some(headers) = resolved["default_headers"].as_object() {
        for (service, names) in headers {
            let names = names.as_object().map(|n| n.keys().map(|k| format!("{k}: ***")).collect::<Vec<_>>());
            line(&format!("headers ({service}):"), names.unwrap_or_default().join(", "));
        }
    }
    let app = &resolved["app"];
    if !app.is_null() {
        line("app.appId:", field(&app["app_id"]));
        let credentials = &app["credentials"];
        let shown = match credentials["type"].as_str() {
            Some("rsa") => format!("RSA key, {}", field(&credentials["private_key"])),
            Some(_) => format!("certificate, {}", field(&credentials["certificate"])),
            None => "not set".to_owned(),
        };
        line("app credentials:", shown);
    }
    out
}

fn field_str(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

#[cfg(test)]
mod tests;
