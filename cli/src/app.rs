//! `symphony-auth app-auth` and `verify-jwt`: an extension app's backend (Circle of Trust) from the BDK file's
//! `app` section.
//!
//! The `app` keys (`app.appId`, `app.privateKey.path`/`.content`, `app.certificate.path`: a PEM file holding the
//! certificate and its unencrypted key) are read here until the core's BDK reader exposes them; the hosts, trust
//! store, proxy and timeouts come from the core's reader, as for `login`.

use std::path::Path;
use std::time::Duration;

use serde_yaml_ng::Value;
use symphony_auth_blocking::symphony_auth_core::driver::{ClientOptions, ProxyUrl, parse_certificates};
use symphony_auth_blocking::symphony_auth_core::{
    AppCredential, AppId, ClientIdentity, ExtensionApp, LoadedSettings, Service, SignerBackend,
};
use symphony_auth_blocking::{Error, ExtensionAppClient};

use crate::failure::{Class, Failure};

/// `app-auth`: E1/E2 with a fresh app token, the local pair check, and E3/E4.
pub(crate) fn app_auth(path: &Path, json: bool) -> Result<(), Failure> {
    let (client, host) = client(path)?;
    let tokens = client.authenticate().map_err(|e| Failure::of_request(e, &host))?;
    client
        .check_tokens(tokens.app_token().expose_secret(), tokens.symphony_token().expose_secret())
        .map_err(Failure::from)?;
    client.fetch_pod_certificate().map_err(|e| Failure::of_request(e, &host))?;
    let app_id = serde_json::Value::from(tokens.app_id()).to_string();
    let expire_at = tokens.expire_at().as_millis();
    if json {
        println!(r#"{{"app_id":{app_id},"symphony_token":"ok","expire_at":{expire_at},"pod_certificate":"ok"}}"#);
    } else {
        println!(
            "extension app {} authenticated; its tokens expire at {expire_at} (ms since the epoch)",
            tokens.app_id()
        );
        println!("pair check:      ok");
        println!("pod certificate: ok");
    }
    Ok(())
}

/// `verify-jwt`: the user JWT's claims, verified against the pod certificate. `-` reads the JWT from standard
/// input, so that it does not show in the process list.
pub(crate) fn verify_jwt(path: &Path, jwt: &str, json: bool) -> Result<(), Failure> {
    let from_stdin = if jwt == "-" { Some(jwt_from_stdin()?) } else { None };
    let jwt = from_stdin.as_deref().map_or(jwt, |text| text.trim());
    let (client, host) = client(path)?;
    client.fetch_pod_certificate().map_err(|e| Failure::of_request(e, &host))?;
    let claims = client.verify_jwt(jwt).map_err(Failure::from)?;
    let user = &claims.user;
    if json {
        let mut object = serde_json::json!({
            "user_id": claims.user_id,
            "username": user.username,
            "email_address": user.email_address,
            "display_name": user.display_name,
            "company": user.company,
            "expires_at": claims.expires_at.as_secs(),
        });
        if let Some(fields) = object.as_object_mut() {
            fields.retain(|_, value| !value.is_null());
        }
        println!("{object}");
    } else {
        let name = user.username.as_deref().unwrap_or("(no username)");
        println!("user {name} (user id {}), JWT valid until {}", claims.user_id, claims.expires_at.as_secs());
    }
    Ok(())
}

/// A JWT is a few kilobytes: more on standard input is not one.
const MAX_JWT_INPUT: u64 = 64 * 1024;

/// The JWT piped to `--jwt -`, in a buffer wiped on drop.
fn jwt_from_stdin() -> Result<zeroize::Zeroizing<String>, Failure> {
    use std::io::Read as _;
    let usage = |message: &str| Failure::new(Class::Usage, format!("--jwt -: {message}"));
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(MAX_JWT_INPUT + 1)
        .read_to_string(&mut text)
        .map_err(|_| usage("standard input is not readable UTF-8 text"))?;
    if text.len() as u64 > MAX_JWT_INPUT {
        return Err(usage("standard input holds more than 64 KiB, which is no JWT"));
    }
    if text.trim().is_empty() {
        return Err(usage("standard input holds no JWT"));
    }
    Ok(text)
}

/// The app's client and the host its calls go to (for naming an unreachable host).
fn client(path: &Path) -> Result<(ExtensionAppClient, String), Failure> {
    // The app's settings: a file with an `app` section needs no `bot` one.
    let read = &mut |file: &Path| std::fs::read(file);
    let loaded =
        crate::read_config_file(path)?.load_app_with_signer(crate::signer_backend(), read).map_err(Error::from)?;
    let app = read_app(path)?;
    let endpoints = loaded.config.endpoints().clone();
    let host = if app.certificate { endpoints.session_auth.host() } else { endpoints.pod.host() }.to_owned();
    let mut options = options(&loaded)?;
    let credential = if app.certificate {
        let identity = ClientIdentity::from_pem(&app.pem).map_err(Error::from)?;
        options.identity = Some(identity);
        AppCredential::Certificate
    } else {
        let backend = crate::signer_backend().unwrap_or(SignerBackend::Rsa);
        let signer =
            backend.load_pem(&app.pem).map_err(|e| Failure::new(Class::Config, format!("app.privateKey: {e}")))?;
        AppCredential::Rsa(signer)
    };
    let app_id = AppId::new(&app.id).map_err(|e| Failure::new(Class::Config, format!("app.appId: {e}")))?;
    let client = ExtensionAppClient::new(ExtensionApp::new(endpoints, app_id, credential), &options)?;
    Ok((client, host))
}

/// The file's trust store, proxy and timeouts, as a bot would use them.
fn options(loaded: &LoadedSettings) -> Result<ClientOptions, Error> {
    let mut options = ClientOptions::new();
    if let Some(pem) = &loaded.extra_roots_pem {
        options.extra_roots = parse_certificates(pem)?;
    }
    if let Some(proxy) = &loaded.proxy {
        options.proxy = Some(ProxyUrl::parse(&proxy.url_with_credentials())?);
    }
    if loaded.proxies.uniform().is_err() {
        // Services with proxies of their own (or none while others have one), as for a bot.
        for service in Service::ALL {
            let url = loaded.proxies.of(service).map(|p| ProxyUrl::parse(&p.url_with_credentials())).transpose()?;
            options.service_proxies.push((service, url));
        }
    }
    if let Some(timeout) = loaded.connect_timeout {
        options.connect_timeout = timeout;
    }
    if let Some(timeout) = loaded.read_timeout {
        options.timeout = timeout.max(Duration::from_secs(1));
    }
    Ok(options)
}

/// The `app` section: its id, and its key or certificate bundle (PEM).
struct AppSection {
    id: String,
    certificate: bool,
    pem: zeroize::Zeroizing<Vec<u8>>,
}

fn read_app(path: &Path) -> Result<AppSection, Failure> {
    let config = |message: String| Failure::new(Class::Config, message);
    let text = std::fs::read(path).map_err(|e| config(format!("cannot read {}: {e}", path.display())))?;
    let root: Value =
        serde_yaml_ng::from_slice(&text).map_err(|_| config(format!("{} is not YAML or JSON", path.display())))?;
    let app = root.get("app").ok_or_else(|| config("no `app` section (app.appId and a key or certificate)".into()))?;
    let id = app.get("appId").and_then(Value::as_str).ok_or_else(|| config("app.appId is missing".into()))?;
    let text_at = |section: &str, key: &str| app.get(section).and_then(|s| s.get(key)).and_then(Value::as_str);
    let read = |file: &str, key: &str| {
        std::fs::read(file).map(zeroize::Zeroizing::new).map_err(|e| config(format!("{key}: cannot read {file}: {e}")))
    };
    let (certificate, pem) =
        match (text_at("privateKey", "path"), text_at("privateKey", "content"), text_at("certificate", "path")) {
            (Some(file), None, None) => (false, read(file, "app.privateKey.path")?),
            (None, Some(content), None) => (false, zeroize::Zeroizing::new(content.as_bytes().to_vec())),
            (None, None, Some(file)) => (true, read(file, "app.certificate.path")?),
            (None, None, None) => return Err(config("app: neither privateKey nor certificate is set".into())),
            _ => return Err(config("app: set one of privateKey.path, privateKey.content or certificate.path".into())),
        };
    Ok(AppSection { id: id.to_owned(), certificate, pem })
}
