//! The driver glue: what the builder hands a driver, the proxy URL's secrecy, the rustls configuration, the error
//! conversions and building from a BDK file. A capturing driver stands in for ureq and reqwest.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rustls_native_certs::{CertificateResult, Error as StoreError, ErrorKind as StoreErrorKind};

use super::{BotBuilder, BotError, ClientOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BODY, DEFAULT_TIMEOUT};
use super::{Driver, ProxyUrl, append_wiping, parse_certificates};
use crate::api::ApiError;
use crate::config::{Config, Endpoints};
use crate::error::{ConfigError, SignError, TransportFailure, TransportKind};
use crate::identity::ClientIdentity;
use crate::machine::Event;
use crate::signer::JwtSigner;
use zeroize::Zeroizing;

const BOT_PEM: &[u8] = include_bytes!("../../../fixtures/certs/bot.pem");

#[derive(Debug)]
struct Capture;

impl Driver for Capture {
    type Bot = (Config, ClientOptions);

    fn build(config: Config, options: ClientOptions) -> Result<Self::Bot, BotError> {
        Ok((config, options))
    }
}

#[derive(Debug)]
struct Constant;
impl JwtSigner for Constant {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![0; 4])
    }
}

fn rsa() -> Config {
    Config::rsa(Endpoints::single("https://pod.example").unwrap(), "bot.user", Arc::new(Constant)).unwrap()
}

fn certificate() -> Config {
    Config::certificate(Endpoints::single("https://pod.example").unwrap(), "cert.bot").unwrap()
}

/// Only the certificate blocks of a PEM bundle.
fn certificate_pem(bundle: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(bundle.to_vec()).unwrap();
    let end = "-----END CERTIFICATE-----";
    let stop = text.find(end).unwrap() + end.len();
    format!("{}\n", &text[..stop]).into_bytes()
}

#[test]
fn every_setting_reaches_the_driver() {
    let events = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&events);
    let identity = ClientIdentity::from_pem(BOT_PEM).unwrap();
    let builder = BotBuilder::<Capture>::new(certificate())
        .extra_root_certificates_pem(&certificate_pem(BOT_PEM))
        .unwrap()
        .platform_roots()
        .client_identity(identity)
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(7))
        .proxy("http://user:pa55@proxy.example:3128")
        .unwrap()
        .max_response_body(1234)
        .seed(42)
        .on_event(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
    assert_eq!(builder.config().username().as_str(), "cert.bot");
    let shown = format!("{builder:?}");
    assert!(shown.contains("cert.bot") && shown.contains("platform_roots: true"), "{shown}");
    assert!(!shown.contains("pa55"), "no proxy password in Debug: {shown}");
    let (config, options) = builder.build().unwrap();
    assert_eq!(config.username().as_str(), "cert.bot");
    assert_eq!(options.extra_roots.len(), 1);
    assert!(options.platform_roots);
    assert!(options.identity.is_some());
    assert_eq!(options.connect_timeout, Duration::from_secs(3));
    assert_eq!(options.timeout, Duration::from_secs(7));
    assert_eq!(options.proxy.as_ref().unwrap().expose_url(), "http://user:pa55@proxy.example:3128");
    assert_eq!(options.max_response_body, 1234);
    assert_eq!(options.seed, 42);
    let shown = format!("{options:?}");
    assert!(shown.contains("max_response_body: 1234") && shown.contains("on_event: true"), "{shown}");
    assert!(!shown.contains("pa55") && !shown.contains("MII"), "{shown}");
    options.emit(&[Event::LoginStarted { refresh: false }, Event::Expired { generation: crate::Generation(1) }]);
    assert_eq!(events.load(Ordering::SeqCst), 2, "the hook sees every event");
}

#[test]
fn defaults_are_the_bdk_ones_and_seeds_differ() {
    let (_, first) = BotBuilder::<Capture>::new(rsa()).build().unwrap();
    assert_eq!(first.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(first.connect_timeout, Duration::from_secs(15));
    assert_eq!(first.timeout, DEFAULT_TIMEOUT);
    assert_eq!(first.timeout, Duration::from_secs(60));
    assert_eq!(first.max_response_body, DEFAULT_MAX_RESPONSE_BODY);
    assert_eq!(DEFAULT_MAX_RESPONSE_BODY, 16_777_216);
    assert!(!first.platform_roots && first.proxy.is_none() && first.identity.is_none() && first.on_event.is_none());
    first.emit(&[Event::LoginStarted { refresh: false }]);
    let seeds: std::collections::HashSet<u64> =
        (0..4).map(|_| BotBuilder::<Capture>::new(rsa()).build().unwrap().1.seed).collect();
    assert!(seeds.len() > 1, "an unseeded bot draws its jitter seed: {seeds:?}");
}

#[test]
fn a_certificate_login_needs_a_client_identity() {
    assert_eq!(
        BotBuilder::<Capture>::new(certificate()).build().unwrap_err(),
        BotError::Config(ConfigError::MissingCredentials)
    );
    let identity = ClientIdentity::from_pem(BOT_PEM).unwrap();
    assert!(BotBuilder::<Capture>::new(certificate()).client_identity(identity).build().is_ok());
    assert!(BotBuilder::<Capture>::new(rsa()).build().is_ok(), "an RSA login needs none");
}

#[test]
fn proxy_urls_keep_their_credentials_out_of_messages() {
    let plain = ProxyUrl::parse("http://proxy.example:3128").unwrap();
    assert_eq!((plain.expose_url(), plain.shown()), ("http://proxy.example:3128", "http://proxy.example:3128"));
    let secret = ProxyUrl::parse("HTTPS://user:p@ss@proxy.example:8443/path").unwrap();
    assert_eq!(secret.shown(), "HTTPS://…@proxy.example:8443/path");
    assert_eq!(secret.expose_url(), "HTTPS://user:p@ss@proxy.example:8443/path");
    assert_eq!(format!("{secret:?}"), "ProxyUrl(HTTPS://…@proxy.example:8443/path)");
    for (url, shown, reason) in [
        (
            "socks5://u:pw@proxy:1080",
            "socks5://…@proxy:1080",
            "only HTTP CONNECT proxies (http:// or https://) are supported",
        ),
        ("proxy.example:3128", "proxy.example:3128", "not a URL (no scheme)"),
        ("u:pw@proxy.example:3128", "…@proxy.example:3128", "not a URL (no scheme)"),
        ("http://", "http://", "not a valid URL"),
        ("http://:3128", "http://:3128", "it has no host"),
        ("http://u:pw@", "http://…@", "not a valid URL"),
    ] {
        assert_eq!(
            ProxyUrl::parse(url),
            Err(ConfigError::InvalidUrl { which: "proxy", url: shown.to_owned(), reason }),
            "{url}"
        );
    }
    let error = BotBuilder::<Capture>::new(rsa()).proxy("socks5://u:pw@proxy:1080").unwrap_err();
    assert!(!error.to_string().contains("pw"), "{error}");
}

#[test]
fn root_certificates_are_parsed_or_refused_with_a_reason() {
    assert_eq!(parse_certificates(&certificate_pem(BOT_PEM)).unwrap().len(), 1);
    let twice = [certificate_pem(BOT_PEM), certificate_pem(BOT_PEM)].concat();
    assert_eq!(parse_certificates(&twice).unwrap().len(), 2);
    match parse_certificates(b"no pem here") {
        Err(BotError::Tls(reason)) => assert!(reason.contains("no `-----BEGIN CERTIFICATE-----`"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_certificates(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
        Err(BotError::Tls(_))
    ));
    assert!(BotBuilder::<Capture>::new(rsa()).extra_root_certificates_pem(b"nothing").is_err());
}

fn store(certs: usize, errors: usize) -> CertificateResult {
    let mut result = CertificateResult::default();
    let cert = parse_certificates(&certificate_pem(BOT_PEM)).unwrap().remove(0);
    result.certs = vec![cert; certs];
    result.errors = (0..errors)
        .map(|_| StoreError { context: "test store", kind: StoreErrorKind::Os("unreadable".into()) })
        .collect();
    result
}

fn options(configure: impl FnOnce(BotBuilder<Capture>) -> BotBuilder<Capture>) -> ClientOptions {
    configure(BotBuilder::<Capture>::new(rsa())).build().unwrap().1
}

#[test]
fn the_tls_configuration_speaks_http_1_1_and_reads_the_platform_store_only_when_asked() {
    let config = options(|b| b).tls_config(|| panic!("the platform store is read only when asked")).unwrap();
    assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    assert!(!config.client_auth_cert_resolver.has_certs());
    let asked = options(BotBuilder::platform_roots);
    assert!(asked.tls_config(|| store(1, 0)).is_ok());
    assert!(asked.tls_config(|| store(1, 2)).is_ok(), "unreadable entries beside good ones are skipped");
    assert!(asked.tls_config(|| store(0, 0)).is_ok(), "an empty store is no error");
    match asked.tls_config(|| store(0, 1)) {
        Err(BotError::Tls(reason)) => assert!(reason.contains("operating system's certificate store"), "{reason}"),
        other => panic!("a store that cannot be read at all: {other:?}"),
    }
}

#[test]
fn client_identities_of_every_key_format_are_handed_to_rustls() {
    for pem in [
        BOT_PEM,
        include_bytes!("../../../fixtures/certs/bot-pkcs1.pem"),
        include_bytes!("../../../fixtures/certs/ec-bot.pem"),
    ] {
        let identity = ClientIdentity::from_pem(pem).unwrap();
        let format = identity.private_key_format();
        let config = options(|b| b.client_identity(identity)).tls_config(CertificateResult::default).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs(), "{format:?}");
    }
}

#[test]
fn driver_errors_keep_the_core_errors_as_they_are() {
    assert_eq!(
        BotError::from(TransportFailure::new(TransportKind::Timeout, "slow")),
        BotError::Transport { kind: TransportKind::Timeout, detail: "slow".into() }
    );
    assert_eq!(BotError::from(ApiError::Unauthorized { generation: 3 }), BotError::Unauthorized { generation: 3 });
    let failure = TransportFailure::new(TransportKind::Reset, "closed");
    assert_eq!(
        BotError::from(ApiError::Transport { attempts: 2, failure }),
        BotError::Transport { kind: TransportKind::Reset, detail: "closed".into() }
    );
}

#[cfg(all(feature = "bdk-config", feature = "rsa-signer"))]
#[test]
fn a_bdk_file_becomes_a_builder_with_its_settings() {
    let yaml = "host: acme.symphony.com\nbot:\n  username: bot.user\n  privateKey:\n    path: /keys/bot.pem\n\
                ssl:\n  trustStore:\n    path: /certs/ca.pem\nproxy:\n  host: proxy.acme\n  port: 3128\n  \
                username: u\n  password: secret-pw\nconnectionTimeout: 5000\nreadTimeout: 30000\n";
    let mut read = |path: &std::path::Path| -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("/etc/bot.yaml") => Ok(yaml.as_bytes().to_vec()),
            Some("/keys/bot.pem") => Ok(include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem").to_vec()),
            Some("/certs/ca.pem") => Ok(certificate_pem(BOT_PEM)),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        }
    };
    let loaded = super::load_bdk_file(std::path::Path::new("/etc/bot.yaml"), &mut read, &|_| None).unwrap();
    let (config, options) = BotBuilder::<Capture>::from_settings(loaded).unwrap().build().unwrap();
    assert_eq!(config.username().as_str(), "bot.user");
    assert_eq!(options.extra_roots.len(), 1);
    assert_eq!(options.proxy.as_ref().unwrap().expose_url(), "http://u:secret-pw@proxy.acme:3128");
    assert_eq!(options.connect_timeout, Duration::from_secs(5));
    assert_eq!(options.timeout, Duration::from_secs(30));

    let missing = super::load_bdk_file(std::path::Path::new("/etc/none.yaml"), &mut read, &|_| None).unwrap_err();
    assert!(missing.to_string().contains("none.yaml"), "{missing}");
    let mut not_text = |_: &std::path::Path| -> std::io::Result<Vec<u8>> { Ok(vec![0xFF, 0xFE]) };
    let error = super::load_bdk_file(std::path::Path::new("/etc/bot.yaml"), &mut not_text, &|_| None).unwrap_err();
    assert!(error.to_string().contains("not UTF-8"), "{error}");
}

#[cfg(all(feature = "bdk-config", feature = "rsa-signer"))]
#[test]
fn a_certificate_bdk_file_hands_over_its_identity() {
    let yaml = "host: acme.symphony.com\nbot:\n  username: cert.bot\n  certificate:\n    path: /certs/bot.pem\n";
    let mut read = |path: &std::path::Path| -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("/etc/bot.yaml") => Ok(yaml.as_bytes().to_vec()),
            Some("/certs/bot.pem") => Ok(BOT_PEM.to_vec()),
            _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")),
        }
    };
    let loaded = super::load_bdk_file(std::path::Path::new("/etc/bot.yaml"), &mut read, &|_| None).unwrap();
    let (_, options) = BotBuilder::<Capture>::from_settings(loaded).unwrap().build().unwrap();
    assert!(options.identity.is_some());
    assert_eq!(options.connect_timeout, DEFAULT_CONNECT_TIMEOUT, "unset timeouts keep the defaults");
    assert!(options.proxy.is_none() && options.extra_roots.is_empty());
}

#[test]
fn buffers_grow_by_moving_into_a_larger_one() {
    let mut buffer = Zeroizing::new(Vec::new());
    append_wiping(&mut buffer, &[1; 10]);
    assert_eq!(buffer.capacity(), 1024);
    let first = buffer.as_ptr();
    append_wiping(&mut buffer, &[2; 1000]);
    assert_eq!(buffer.as_ptr(), first, "no move while it fits");
    append_wiping(&mut buffer, &[3; 100]);
    assert_eq!(buffer.capacity(), 2048);
    assert_eq!(buffer.len(), 1110);
    assert_eq!((buffer[0], buffer[10], buffer[1010]), (1, 2, 3));
}

#[cfg(all(feature = "bdk-config", feature = "rsa-signer"))]
#[test]
fn each_service_gets_its_own_proxy() {
    let load = |yaml: &'static str| {
        let mut read = move |path: &std::path::Path| -> std::io::Result<Vec<u8>> {
            match path.to_str() {
                Some("/etc/bot.yaml") => Ok(yaml.as_bytes().to_vec()),
                _ => Ok(include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem").to_vec()),
            }
        };
        super::load_bdk_file(std::path::Path::new("/etc/bot.yaml"), &mut read, &|_| None).unwrap()
    };
    let pod_only = load("host: h\nbot: {username: b, privateKey: {path: k}}\npod: {proxy: {host: p, port: 3128}}");
    let (config, options) = BotBuilder::<Capture>::from_settings(pod_only).unwrap().build().unwrap();
    assert!(options.proxy.is_none());
    assert_eq!(options.proxy_of(crate::Service::Pod).unwrap().expose_url(), "http://p:3128");
    assert!(
        options.proxy_of(crate::Service::Agent).is_none() && options.proxy_of(crate::Service::KeyManager).is_none()
    );
    let clients = options.clients_needed();
    assert_eq!(clients.len(), 2, "one client through the proxy, one direct");
    let endpoints = config.endpoints();
    let pod = options.client_index(endpoints, &"https://h/pod/v2/sessioninfo".parse().unwrap());
    let agent = options.client_index(endpoints, &"https://h/agent/v1/util/echo".parse().unwrap());
    assert_eq!(clients[pod].as_ref().unwrap().expose_url(), "http://p:3128");
    assert!(clients[agent].is_none());
    let everywhere = load("host: h\nbot: {username: b, privateKey: {path: k}}\nproxy: {host: p, port: 3128}");
    let (_, options) = BotBuilder::<Capture>::from_settings(everywhere).unwrap().build().unwrap();
    assert_eq!(options.proxy.unwrap().expose_url(), "http://p:3128");
}
