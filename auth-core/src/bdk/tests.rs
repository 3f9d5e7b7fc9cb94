//! The BDK configuration reader's tests.

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

#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
#[test]
fn loading_reads_through_the_callers_reader_and_names_failures() {
    let settings =
        parse("host: h\nbot: {username: b, privateKey: {path: /keys/bot.pem}}\nssl: {trustStorePath: /ca.pem}")
            .unwrap();
    let key = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
    let mut reads = Vec::new();
    let loaded = settings
        .load(&mut |path| {
            reads.push(path.to_owned());
            Ok(if path.ends_with("bot.pem") { key.to_vec() } else { b"roots".to_vec() })
        })
        .unwrap();
    assert_eq!(reads, [PathBuf::from("/keys/bot.pem"), PathBuf::from("/ca.pem")]);
    assert!(matches!(loaded.config.method(), LoginMethod::Rsa(_)));
    let compiled = if cfg!(feature = "rsa-signer") {
        "RsaSigner"
    } else if cfg!(feature = "ring-signer") {
        "RingSigner"
    } else {
        "AwsLcSigner"
    };
    assert!(format!("{:?}", loaded.config.method()).contains(compiled), "the default signer is preferred");
    assert_eq!(loaded.extra_roots_pem.as_deref(), Some(&b"roots"[..]));

    let missing = settings.load(&mut |_| Err(std::io::Error::from(std::io::ErrorKind::NotFound))).unwrap_err();
    assert!(matches!(&missing, ConfigFileError::Read { key: "bot.privateKey", .. }), "{missing}");
    assert!(missing.to_string().starts_with("`bot.privateKey`: cannot read \"/keys/bot.pem\""), "{missing}");
    let weak =
        settings.load(&mut |_| Ok(include_bytes!("../../../fixtures/keys/weak-1024.pkcs8.pem").to_vec())).unwrap_err();
    if cfg!(feature = "rsa-signer") || !cfg!(feature = "ring-signer") {
        assert_eq!(weak, ConfigFileError::Key { key: "bot.privateKey", source: KeyError::TooSmall { bits: 1024 } });
    } else {
        // ring refuses small keys itself, before their size can be reported.
        assert!(matches!(weak, ConfigFileError::Key { key: "bot.privateKey", .. }), "{weak}");
    }
    let cert = parse("host: h\nbot: {username: b, certificate: {path: /c.pem}}").unwrap();
    let no_key =
        cert.load(&mut |_| Ok(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec())).unwrap_err();
    assert_eq!(no_key, ConfigFileError::Identity { key: "bot.certificate", source: IdentityError::NoPrivateKey });
}

/// An explicit backend loads the key when compiled in, and is named with its feature when not; `None` behaves as
/// a build without a signer.
#[test]
fn loading_with_a_chosen_signer_uses_it_or_names_its_feature() {
    let settings = parse("host: h\nbot: {username: b, privateKey: {path: /keys/bot.pem}}").unwrap();
    let key = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
    for backend in crate::SignerBackend::ALL {
        match settings.load_with_signer(Some(backend), &mut |_| Ok(key.to_vec())) {
            Ok(loaded) => {
                assert!(backend.is_compiled(), "{backend}");
                let LoginMethod::Rsa(signer) = loaded.config.method() else { panic!("not an RSA login") };
                let expected = match backend {
                    crate::SignerBackend::Rsa => "RsaSigner",
                    crate::SignerBackend::Ring => "RingSigner",
                    _ => "AwsLcSigner",
                };
                assert!(format!("{signer:?}").starts_with(expected), "{signer:?}");
            }
            Err(error) => {
                assert!(!backend.is_compiled(), "{backend}: {error}");
                let source = KeyError::BackendNotCompiled { backend: backend.name(), feature: backend.feature() };
                assert_eq!(error, ConfigFileError::Key { key: "bot.privateKey", source });
            }
        }
    }
    let none = settings.load_with_signer(None, &mut |_| Ok(key.to_vec())).unwrap_err();
    assert!(none.to_string().contains("`aws-lc-signer`"), "{none}");
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
        BdkConfigError::WrongType { key: "bot.certificate.password".into(), expected: "a string", found: "a number" }
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
fn only_a_credential_written_inline_gets_the_path_hint() {
    for text in [
        "host: h\nretry: fast\nbot: {username: b, privateKey: {path: k}}",
        "host: h\nallowInsecureHttp: maybe\nbot: {username: b, privateKey: {path: k}}",
    ] {
        let error = parse(text).unwrap_err();
        assert!(matches!(&error, BdkConfigError::WrongType { found: "a string", .. }), "{text}: {error:?}");
        assert!(!error.to_string().contains("path: <file>"), "{error}");
    }
}

#[test]
fn an_inline_key_where_a_mapping_belongs_is_named_not_shown() {
    let key = include_str!("../../../fixtures/keys/bot-2048.pkcs8.pem");
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
        ("host: h\nbot: {username: b, certificate: {path: c, password: \"s3cr3t-918273645", "not valid YAML or JSON"),
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
        BdkConfigError::WrongType { key: "(top level)".into(), expected: "a mapping of settings", found: "a string" }
    );
}

#[test]
fn other_values_are_not_repeated_either() {
    let long_scheme = parse("host: h\nscheme: s3cr3t-918273645\nbot: {username: b, privateKey: {path: k}}");
    assert_eq!(long_scheme.unwrap_err(), BdkConfigError::UnknownScheme { key: "scheme".into(), value: String::new() });
    let dollar = parse("host: h\nbot: {username: b, certificate: {path: c, password: 'ab${s3cr3t 9}cd'}}");
    let error = dollar.unwrap_err();
    assert_eq!(error, BdkConfigError::UnsetVariable(String::new()));
    assert!(!shown(&error).contains("s3cr3t"), "{error}");
    let url = parse("host: 'user:s3cr3t@h'\nbot: {username: b, privateKey: {path: k}}").unwrap_err();
    assert!(!shown(&url).contains("s3cr3t"), "{url}");
}

#[test]
fn a_value_of_the_wrong_type_is_named_by_its_whole_path() {
    let bot = "bot: {username: b, privateKey: {path: k}}";
    for (yaml, key) in [
        ("host: [h]", "host"),
        ("host: h\nagent: {host: 5}", "agent.host"),
        ("host: h\nkeyManager: {host: k, context: [c]}", "keyManager.context"),
        ("host: h\nscheme: 443", "scheme"),
        ("host: h\nproxy: {host: 7, port: 1}", "proxy.host"),
        ("host: h\npod: {proxy: {host: p, port: 1, username: [u]}}", "pod.proxy.username"),
    ] {
        match parse(&format!("{yaml}\n{bot}")) {
            Err(BdkConfigError::WrongType { key: named, expected: "a string", .. }) => assert_eq!(named, key, "{yaml}"),
            other => panic!("{yaml}: {other:?}"),
        }
    }
}

#[test]
fn an_unset_variable_is_named_only_when_it_looks_like_one() {
    let unset = |name: &str| match parse_bdk_config(&format!("host: ${{{name}}}"), &no_env) {
        Err(BdkConfigError::UnsetVariable(shown)) => shown,
        other => panic!("{name}: {other:?}"),
    };
    for name in ["_POD.HOST_2", "pod_host", "P", &"A".repeat(64)] {
        assert_eq!(unset(name), name);
    }
    for not_a_name in ["9LIVES", ".x", "p-w", "a b", "x\u{e9}", &"A".repeat(65)] {
        assert_eq!(unset(not_a_name), "", "{not_a_name}");
    }
}

#[test]
fn booleans_may_come_as_text_from_a_variable() {
    let env = |name: &str| match name {
        "YES" => Some(" TRUE ".to_owned()),
        "NO" => Some("False".to_owned()),
        "MAYBE" => Some("yes".to_owned()),
        _ => None,
    };
    let common_jwt = |value: &str| {
        let text = format!("host: h\nbot: {{username: b, privateKey: {{path: k}}}}\ncommonJwt:\n  enabled: {value}");
        parse_bdk_config(&text, &env).map(|settings| settings.common_jwt)
    };
    assert_eq!(common_jwt("${YES}"), Ok(true));
    assert_eq!(common_jwt("${NO}"), Ok(false));
    assert_eq!(common_jwt("true"), Ok(true));
    assert_eq!(common_jwt("false"), Ok(false));
    assert!(
        matches!(common_jwt("${MAYBE}"), Err(BdkConfigError::WrongType { expected: "`true` or `false`", .. })),
        "only true and false"
    );
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

#[test]
fn app_settings_key_manager_policy_and_default_headers_are_read() {
    let settings = parse(
        r"
host: acme.symphony.com
keyManagerPolicy: never
defaultHeaders: {X-Team: bots, User-Agent: my-bot/1.0}
agent: {host: agent.acme.com, defaultHeaders: {X-Team: agents}}
bot: {username: b, privateKey: {path: bot.pem}}
app: {appId: my-app, certificate: {path: app.p12, password: pw}}
",
    )
    .unwrap();
    let app = settings.app.as_ref().unwrap();
    assert_eq!(app.app_id, "my-app");
    assert!(matches!(&app.credentials, Some(c @ CredentialSource::Certificate { .. }) if c.is_pkcs12()));
    assert_eq!(settings.key_manager, Some(crate::KeyManagerPolicy::Never));
    let headers = &settings.default_headers;
    assert_eq!(headers.of(crate::Service::Pod)["x-team"], "bots");
    assert_eq!(headers.of(crate::Service::Agent)["x-team"], "agents", "a service's own value wins");
    assert_eq!(headers.of(crate::Service::Agent)["user-agent"], "my-bot/1.0", "the root's still apply");
    let config = settings.to_config(LoginMethod::Certificate).unwrap();
    assert_eq!(config.key_manager(), crate::KeyManagerPolicy::Never);
    assert_eq!(config.default_headers(), headers);

    assert!(
        parse("host: h\nbot: {username: b, privateKey: {path: k}}\napp: {appId: a}")
            .unwrap()
            .app
            .unwrap()
            .credentials
            .is_none()
    );
    let bad =
        |yaml: &str| parse(&format!("host: h\nbot: {{username: b, privateKey: {{path: k}}}}\n{yaml}")).unwrap_err();
    assert_eq!(bad("app: {privateKey: {path: k}}"), BdkConfigError::MissingKey("app.appId"));
    assert!(bad("app: {appId: a, privateKey: {path: k}, certificate: {path: c}}").to_string().contains("choose one"));
    assert!(bad("keyManagerPolicy: sometimes").to_string().contains("`keyManagerPolicy`"));
    let refused = bad("defaultHeaders: {sessionToken: s3cr3t-value}").to_string();
    assert!(refused.contains("sessionToken") && !refused.contains("s3cr3t-value"), "{refused}");
}

#[test]
fn each_key_manager_policy_is_read_whatever_its_case() {
    let policy =
        |yaml: &str| parse(&format!("host: h\nbot: {{username: b, privateKey: {{path: k}}}}\n{yaml}")).unwrap();
    for (written, expected) in [
        ("auto", crate::KeyManagerPolicy::Auto),
        ("ALWAYS", crate::KeyManagerPolicy::Always),
        ("' Never '", crate::KeyManagerPolicy::Never),
    ] {
        assert_eq!(policy(&format!("keyManagerPolicy: {written}")).key_manager, Some(expected), "{written}");
    }
    assert_eq!(policy("").key_manager, None, "unset: the configuration's default applies");
}

#[test]
fn an_empty_app_certificate_password_is_no_password() {
    let app = |password: &str| {
        let yaml = format!(
            "host: h\nbot: {{username: b, privateKey: {{path: k}}}}\n\
             app: {{appId: a, certificate: {{path: app.pem, password: '{password}'}}}}"
        );
        parse(&yaml).unwrap().app.unwrap().credentials.unwrap()
    };
    let empty = app("");
    assert_eq!(empty.password(), None);
    assert!(!empty.is_pkcs12(), "a PEM path with an empty password stays PEM");
    let given = app("pw");
    assert_eq!(given.password(), Some("pw"));
    assert!(given.is_pkcs12(), "a password makes it PKCS#12");
}

#[test]
fn with_no_proxy_anywhere_every_service_goes_direct() {
    let settings = parse("host: h\nbot: {username: b, privateKey: {path: k}}").unwrap();
    assert_eq!(settings.proxies.uniform().map(|proxy| proxy.map(|p| p.url.clone())), Ok(None));
    assert!(settings.proxy.is_none());
}

#[test]
fn a_proxy_on_one_service_applies_to_that_service_only() {
    let proxy = |yaml: &str| parse(&format!("host: h\nbot: {{username: b, privateKey: {{path: k}}}}\n{yaml}")).unwrap();
    let pod_only = proxy("pod: {proxy: {host: p.acme, port: 3128}}");
    assert_eq!(pod_only.proxies.pod.as_ref().unwrap().url, "http://p.acme:3128");
    assert!(pod_only.proxies.agent.is_none() && pod_only.proxies.key_manager.is_none());
    assert!(pod_only.proxy.is_none(), "no proxy is shared by every service");
    assert_eq!(pod_only.proxies.uniform().unwrap_err(), crate::Service::KeyManager);

    let root = proxy("proxy: {host: r.acme, port: 8080}\nagent: {proxy: {host: a.acme, port: 8081}}");
    assert_eq!(root.proxies.pod.as_ref().unwrap().url, "http://r.acme:8080");
    assert_eq!(root.proxies.agent.as_ref().unwrap().url, "http://a.acme:8081");
    assert!(root.proxy.is_none());
    let everywhere = proxy("proxy: {host: r.acme, port: 8080}");
    assert_eq!(everywhere.proxy.unwrap().url, "http://r.acme:8080");
    let error = parse("host: h\nbot: {username: b, privateKey: {path: k}}\nagent: {proxy: {host: a}}").unwrap_err();
    assert!(error.to_string().contains("agent.proxy.port"), "{error}");
}

#[test]
fn a_java_keystore_trust_store_names_the_keytool_command() {
    let settings = |store: &str| {
        parse(&format!(
            "host: h\nbot: {{username: b, certificate: {{path: c.pem}}}}\nssl: {{trustStore: {{path: {store}}}}}"
        ))
        .unwrap()
    };
    let bundle = include_str!("../../../fixtures/keys/bot-2048.pkcs8.pem").as_bytes().to_vec();
    let mut read = |path: &std::path::Path| -> std::io::Result<Vec<u8>> {
        match path.to_str() {
            Some("c.pem") => Ok(b"not used".to_vec()),
            Some("magic.store") => Ok(vec![0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]),
            _ => Ok(bundle.clone()),
        }
    };
    for store in ["truststore.jks", "magic.store"] {
        // The identity is read first and fails on purpose in one case: read the trust store through `loaded`.
        let error = settings(store)
            .loaded(Config::certificate(Endpoints::single("h").unwrap(), "b").unwrap(), None, &mut read)
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, ConfigFileError::JavaKeyStore { .. }), "{text}");
        assert!(text.contains(&format!("keytool -list -rfc -keystore {store}")), "{text}");
    }
    assert!(
        settings("bundle.pem")
            .loaded(Config::certificate(Endpoints::single("h").unwrap(), "b").unwrap(), None, &mut read)
            .is_ok()
    );
}

/// A file with an `app` section and no `bot` one serves OBO and extension apps; asked for a bot, it says what
/// is missing. Without the `app` section, the missing `bot.username` is reported as before.
#[cfg(any(feature = "rsa-signer", feature = "ring-signer"))]
#[test]
fn an_app_only_file_serves_obo_and_extension_apps_but_no_bot() {
    const KEY: &[u8] = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
    let text = "host: acme.symphony.com\napp:\n  appId: my-app\n  privateKey:\n    path: /keys/app.pem\n";
    let settings = parse(text).unwrap();
    assert!(!settings.has_bot());
    assert!(matches!(settings.credentials, CredentialSource::Absent));
    let mut read = |path: &std::path::Path| {
        assert_eq!(path, std::path::Path::new("/keys/app.pem"), "only the app's key is read");
        Ok(KEY.to_vec())
    };
    let error = settings.load(&mut read).unwrap_err();
    assert!(matches!(error, ConfigFileError::Parse(BdkConfigError::NoBot)), "{error:?}");
    assert!(error.to_string().contains("no `bot` section"), "{error}");

    let obo = settings.load_obo(crate::OboUser::id(12345), &mut read).unwrap();
    assert_eq!(obo.config.username().as_str(), "my-app");
    assert_eq!(obo.config.key_manager(), KeyManagerPolicy::Never, "an OBO session has no key-manager token");
    let app = settings.load_app(&mut read).unwrap();
    assert_eq!(app.config.username().as_str(), "my-app");
    assert!(matches!(app.config.method(), crate::config::LoginMethod::Rsa(_)));
    assert_eq!(app.config.endpoints().pod.to_string(), "https://acme.symphony.com:443");

    assert_eq!(parse("host: acme.symphony.com\n").unwrap_err(), BdkConfigError::MissingKey("bot.username"));
    let with_bot = parse(RSA_YAML).unwrap();
    assert!(with_bot.has_bot());
    assert_eq!(with_bot.load_app(&mut read).unwrap_err().to_string(), "missing key `app.privateKey`");
}
