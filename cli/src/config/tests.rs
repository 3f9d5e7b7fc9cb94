//! The resolved settings show what a bot developer checks (paths, usernames, URLs, header names, defaults) and
//! none of the secrets a file holds: inline key material, passwords, header values, whether written in the file
//! or expanded from the environment.

use std::path::Path;

use symphony_auth_blocking::symphony_auth_core::parse_bdk_config;

use super::{resolved, text};

const KEY_CANARY: &str = "CANARYKEYMATERIAL0123456789abcdefCANARY";
const PROXY_PASSWORD: &str = "canary-proxy-pw-7f3a";
const CERT_PASSWORD: &str = "canary-cert-pw-91b2";
const HEADER_VALUE: &str = "canary-header-value-5c4d";
const APP_PASSWORD: &str = "canary-app-pw-e6f7";

/// Both forms of the settings of `yaml`, with `${CERT_PW}` set to the certificate's canary password.
fn shown(yaml: &str) -> (serde_json::Value, String) {
    let env = |name: &str| (name == "CERT_PW").then(|| CERT_PASSWORD.to_owned());
    let settings = parse_bdk_config(yaml, &env).expect("the test's configuration parses");
    let json = resolved(Path::new("bot.yaml"), &settings);
    let text = text(&json);
    (json, text)
}

fn assert_no_canary(shown: &str) {
    for canary in [KEY_CANARY, PROXY_PASSWORD, CERT_PASSWORD, HEADER_VALUE, APP_PASSWORD] {
        assert!(!shown.contains(canary), "{canary} is shown:\n{shown}");
        assert!(!shown.contains(&canary[..12]), "a part of {canary} is shown:\n{shown}");
    }
}

#[test]
fn an_rsa_file_with_inline_key_proxy_headers_and_app_shows_no_secret() {
    let yaml = format!(
        "host: pod.acme.com\n\
         agent: {{host: agent.acme.com, port: 8444}}\n\
         proxy: {{host: proxy.acme, port: 3128, username: proxy-user, password: '{PROXY_PASSWORD}'}}\n\
         defaultHeaders: {{X-Team: '{HEADER_VALUE}'}}\n\
         connectionTimeout: 2000\n\
         bot:\n  username: my-bot\n  privateKey:\n    content: \"-----BEGIN PRIVATE KEY-----\\n{KEY_CANARY}\\n-----END PRIVATE KEY-----\\n\"\n\
         app: {{appId: my-app, certificate: {{path: app.p12, password: '{APP_PASSWORD}'}}}}\n"
    );
    let (json, text) = shown(&yaml);
    assert_no_canary(&json.to_string());
    assert_no_canary(&text);

    assert_eq!(json["username"], "my-bot");
    assert_eq!(json["credentials"]["type"], "rsa");
    assert_eq!(json["credentials"]["private_key"]["content"], "***");
    assert!(json["credentials"]["private_key"]["bytes"].as_u64().unwrap() > KEY_CANARY.len() as u64);
    assert_eq!(json["services"]["pod"], "https://pod.acme.com:443");
    assert_eq!(json["services"]["agent"], "https://agent.acme.com:8444");
    assert_eq!(json["proxies"]["pod"]["url"], "http://proxy.acme:3128");
    assert_eq!(json["proxies"]["agent"]["username"], "proxy-user");
    assert_eq!(json["proxies"]["agent"]["password"], "***");
    assert_eq!(json["default_headers"]["pod"]["x-team"], "***");
    assert_eq!(json["connect_timeout_ms"], 2000);
    assert_eq!(json["read_timeout_ms"], 60_000, "the default when the file says nothing");
    assert_eq!(json["app"]["app_id"], "my-app");
    assert_eq!(json["app"]["credentials"]["certificate"]["path"], "app.p12");
    assert_eq!(json["app"]["credentials"]["password"], "***");

    assert!(text.contains("bot.username:    my-bot\n"), "{text}");
    assert!(text.contains("bot.privateKey:  inline content, "), "{text}");
    assert!(text.contains("proxy (agent):   http://proxy.acme:3128 (user \"proxy-user\", password ***)"), "{text}");
    assert!(text.contains("headers (pod):   x-team: ***"), "{text}");
}

#[test]
fn a_certificate_file_shows_its_path_and_masks_a_password_from_the_environment() {
    let yaml = "host: pod.acme.com\nsessionAuth: {host: auth.acme.com}\n\
                bot: {username: cert-bot, certificate: {path: certs/bot.p12, password: '${CERT_PW}'}}\n";
    let (json, text) = shown(yaml);
    assert_no_canary(&json.to_string());
    assert_no_canary(&text);
    assert_eq!(json["credentials"]["type"], "certificate");
    assert_eq!(json["credentials"]["format"], "pkcs12");
    assert_eq!(json["credentials"]["certificate"]["path"], "certs/bot.p12");
    assert_eq!(json["credentials"]["password"], "***");
    assert_eq!(json["services"]["sessionAuth"], "https://auth.acme.com:443");
    assert!(json["proxies"]["pod"].is_null() && json["app"].is_null() && json["trust_store"].is_null());
    assert!(text.contains("bot.certificate: path certs/bot.p12, pkcs12, password ***"), "{text}");
    assert!(text.contains("ssl.trustStore:  not set (the Mozilla roots only)"), "{text}");
}

#[test]
fn user_information_written_into_a_proxy_host_is_masked() {
    let yaml = format!(
        "host: pod.acme.com\nproxy: {{host: 'user:{PROXY_PASSWORD}@proxy.acme', port: 3128}}\n\
         bot: {{username: b, privateKey: {{path: k.pem}}}}\n"
    );
    let (json, text) = shown(&yaml);
    assert_no_canary(&json.to_string());
    assert_no_canary(&text);
    assert_eq!(json["proxies"]["pod"]["url"], "http://…@proxy.acme:3128");
}
