//! Canary secrets (a private key, a login JWT, session, key-manager and authorization tokens, passwords) go into
//! every public type and every error of the crate, by the paths a user or a hostile server would take; no canary,
//! nor any 16-character slice of one, may come out of a `Debug` or `Display`.

// The RSA signer signs the canary JWT; BDK configurations are half the inputs.
#![cfg(all(feature = "rsa-signer", feature = "bdk-config"))]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use symphony_auth_core::{
    AuthError, Authenticator, BaseUrl, BdkConfigError, ClientIdentity, Config, ConfigError, ConfigFileError, Endpoints,
    FailureCause, HttpResponse, IdentityError, JwtSigner, KeyError, KeyManagerPolicy, LoginEndpoint, LoginMethod,
    Output, ProtocolProblem, RetryPolicy, RsaSigner, SessionInfoError, SignError, Target, Tokens, TransportFailure,
    TransportKind, UnixTime, UsageError, login_jwt, parse_bdk_config, parse_session_info, session_info,
};

/// Test-only key (fixtures/keys/README.md): its base64 is the key canary.
const KEY_PEM: &str = include_str!("../../fixtures/keys/bot-2048.pkcs8.pem");
const SESSION: &str = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJjYW5hcnkuYm90Iiwic2Vzc2lvbklkIjoiY2FuYXJ5In0.U0VTU0lPTi1jYW5hcnktc2lnbmF0dXJlLTcxMw";
const KEY_MANAGER: &str = "0100c4n4ry7f3a9c2e5b1d4086a2f9e1c3b5d7f9a1e3c5b7d9f1a3c5e7b9d1f3a5c7e9";
const AUTHORIZATION: &str =
    "eyJraWQiOiJjYW5hcnkiLCJhbGciOiJSUzI1NiJ9.eyJhdXRoeiI6ImNhbmFyeSJ9.QVVUSFotY2FuYXJ5LXNpZ25hdHVyZQ";
const PASSWORD: &str = "918273645";
const PROXY_PASSWORD: &str = "pr0xy-Pa55w0rd-c4n4ry-4711";
const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

fn key_body() -> String {
    KEY_PEM.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// The first login JWT the machine signs for `canary.bot` at [`NOW`]: deterministic (RS512).
fn login_jwt_canary() -> String {
    login_jwt("canary.bot", NOW, Duration::from_secs(240), signer().as_ref()).unwrap().expose_secret().to_owned()
}

fn canaries() -> &'static [String] {
    static CANARIES: OnceLock<Vec<String>> = OnceLock::new();
    CANARIES.get_or_init(|| {
        [key_body(), login_jwt_canary(), SESSION.into(), KEY_MANAGER.into(), AUTHORIZATION.into()]
            .into_iter()
            .chain([PASSWORD.into(), PROXY_PASSWORD.into()])
            .collect()
    })
}

/// Fails when `shown` holds a canary (a short one whole, a long one by any 16-character slice).
#[track_caller]
fn assert_clean(what: &str, shown: &str) {
    for canary in canaries() {
        let bytes = canary.as_bytes();
        for window in bytes.windows(16.min(bytes.len())) {
            let window = std::str::from_utf8(window).unwrap();
            assert!(!shown.contains(window), "{what} shows {window:?} of a secret: {shown}");
        }
    }
}

/// `Display` and `Debug` of an error, both checked.
#[track_caller]
fn check_error<E: std::fmt::Display + std::fmt::Debug>(what: &str, error: &E) {
    assert_clean(what, &format!("{error}\n{error:?}"));
}

fn signer() -> Arc<RsaSigner> {
    Arc::new(RsaSigner::from_pem(KEY_PEM.as_bytes()).unwrap())
}

fn endpoints() -> Endpoints {
    Endpoints::single("https://pod.example").unwrap()
}

fn config(method: LoginMethod) -> Config {
    Config::new(endpoints(), "canary.bot", method).unwrap().with_retry(RetryPolicy::no_retry())
}

fn response(status: u16, body: &str) -> HttpResponse {
    http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
}

#[test]
fn canaries_are_what_they_claim() {
    // The JWT canary is the one a login sends; the key canary is the key that signs it.
    let jwt = login_jwt_canary();
    assert!(jwt.starts_with("eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9.") && jwt.len() > 300);
    assert!(key_body().len() > 1000);
    // The check itself catches a slice.
    let caught = std::panic::catch_unwind(|| assert_clean("probe", &format!("x{}y", &SESSION[20..36])));
    assert!(caught.is_err());
}

#[test]
fn key_errors_from_keys_gone_wrong() {
    let body = key_body();
    let wrapped: String =
        body.as_bytes().chunks(64).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect();
    let cases: Vec<(&str, String)> = vec![
        ("no BEGIN line", wrapped.clone()),
        ("BEGIN line lost its dashes", KEY_PEM.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1)),
        ("BEGIN line without label end", format!("-----BEGIN PRIVATE KEY{}", body)),
        ("END line lost its dashes", KEY_PEM.replace("-----END PRIVATE KEY-----", "-----END PRIVATE KEY")),
        ("no END line", KEY_PEM.replace("-----END PRIVATE KEY-----", "")),
        ("label is key text", format!("-----BEGIN {}-----\n{wrapped}-----END {}-----\n", &body[..40], &body[..40])),
        ("legacy encryption headers", KEY_PEM.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1)),
        (
            "encrypted label",
            format!("-----BEGIN ENCRYPTED PRIVATE KEY-----\n{wrapped}-----END ENCRYPTED PRIVATE KEY-----\n"),
        ),
        ("PKCS#1 label on PKCS#8 DER", KEY_PEM.replace("PRIVATE KEY", "RSA PRIVATE KEY")),
        ("truncated DER", KEY_PEM.replacen(&body[64..128], "", 1)),
        ("not base64", KEY_PEM.replacen(&body[64..68], "!!!!", 1)),
    ];
    let mut seen = Vec::new();
    for (what, pem) in cases {
        let error = RsaSigner::from_pem(pem.as_bytes()).unwrap_err();
        check_error(what, &error);
        check_error(what, &ConfigError::Key(error.clone()));
        // A client identity checks the PEM, not the DER inside (the TLS stack does).
        let bundle = format!("{pem}\n-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n");
        if let Err(error) = ClientIdentity::from_pem(bundle.as_bytes()) {
            check_error(what, &error);
        }
        seen.push(std::mem::discriminant(&error));
    }
    for (what, error) in [
        ("EC key", RsaSigner::from_pem(include_bytes!("../../fixtures/keys/ec-p256.pkcs8.pem")).unwrap_err()),
        ("small key", RsaSigner::from_pem(include_bytes!("../../fixtures/keys/weak-1024.pkcs8.pem")).unwrap_err()),
    ] {
        check_error(what, &error);
        seen.push(std::mem::discriminant(&error));
    }
    // Every variant was reached.
    for variant in [
        KeyError::NotPem,
        KeyError::UnsupportedLabel(String::new()),
        KeyError::Encrypted,
        KeyError::Malformed { format: "PEM", reason: String::new() },
        KeyError::NotRsa,
        KeyError::TooSmall { bits: 0 },
    ] {
        assert!(seen.contains(&std::mem::discriminant(&variant)), "{variant:?} not reached");
    }
}

#[test]
fn identity_errors_from_bundles_gone_wrong() {
    let cert = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";
    let lost_dashes = KEY_PEM.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1);
    let encrypted = KEY_PEM.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1);
    let cases = [
        ("no certificate", KEY_PEM.to_owned()),
        ("no key", cert.to_owned()),
        ("malformed key", format!("{cert}{lost_dashes}")),
        ("two keys", format!("{cert}{KEY_PEM}{KEY_PEM}")),
        ("encrypted key", format!("{cert}{encrypted}")),
    ];
    for (what, pem) in cases {
        check_error(what, &ClientIdentity::from_pem(pem.as_bytes()).unwrap_err());
    }
    let identity = ClientIdentity::from_pem(format!("{cert}{KEY_PEM}").as_bytes()).unwrap();
    assert_clean("ClientIdentity", &format!("{identity:?}"));
    #[cfg(feature = "client-identity")]
    {
        let p12 = include_bytes!("../../fixtures/certs/bot.p12");
        check_error("wrong PKCS#12 password", &ClientIdentity::from_pkcs12(p12, PASSWORD).unwrap_err());
        check_error("PKCS#12 garbage", &ClientIdentity::from_pkcs12(KEY_PEM.as_bytes(), PROXY_PASSWORD).unwrap_err());
        check_error("PKCS#12 variant", &IdentityError::Pkcs12(String::new()));
    }
}

#[test]
fn configuration_errors_from_urls_holding_secrets() {
    for url in [
        format!("https://bot:{PROXY_PASSWORD}@pod.example"),
        format!("https://pod.example/?token={SESSION}"),
        format!("https://pod.example/#{SESSION}"),
        format!("gopher://pod.example/ctx?{KEY_MANAGER}&{PASSWORD}"),
    ] {
        check_error("base URL", &BaseUrl::parse("pod", &url).unwrap_err());
        check_error("endpoints", &Endpoints::single(&url).unwrap_err());
    }
    let insecure = Config::certificate(Endpoints::single("http://pod.example").unwrap(), "canary.bot").unwrap_err();
    assert!(matches!(insecure, ConfigError::InsecureHttp { .. }));
    check_error("plain http", &insecure);
    let config = config(LoginMethod::Certificate);
    check_error("lifetime", &config.clone().with_jwt_lifetime(Duration::from_secs(301)).unwrap_err());
    check_error("retry", &RetryPolicy::new(1, Duration::from_millis(1), 2.0, Duration::from_secs(1)).unwrap_err());
    check_error("username", &Config::certificate(endpoints(), "a\nb").unwrap_err());
    check_error("no credentials", &ConfigError::MissingCredentials);
}

#[test]
fn usage_errors_from_uris_holding_secrets() {
    let endpoints = endpoints();
    for uri in [
        format!("https://bot:{PROXY_PASSWORD}@evil.example/x?token={SESSION}"),
        // The path is the caller's own data and is shown; the query and user information are not.
        format!("https://pod.example/agent/../pod/x?{KEY_MANAGER}&{PASSWORD}"),
        format!("https://pod.example/relay/x?token={AUTHORIZATION}"),
    ] {
        let error = endpoints.target_of(&uri.parse().unwrap()).unwrap_err();
        check_error("target", &error);
    }
    let mut machine = Authenticator::new(config(LoginMethod::Certificate), 1);
    let never_issued = symphony_auth_core::RequestId::from_u64(999);
    check_error("unknown request", &machine.handle_response(never_issued, &response(200, SESSION), NOW).unwrap_err());
    check_error(
        "unknown generation",
        &machine.report_unauthorized(symphony_auth_core::Generation::from_u64(9)).unwrap_err(),
    );
    check_error("refused", &UsageError::RefusedUri { uri: String::new(), reason: "" });
}

/// Runs a login to its end against `answer`, which plays the pod; returns what came out, with the machine, every
/// output and every event formatted at every step (the machine holds the JWT while a login is under way).
fn login(
    config: Config,
    answer: impl Fn(LoginEndpoint, &[u8]) -> Result<HttpResponse, TransportKind>,
) -> Result<Arc<Tokens>, AuthError> {
    let mut machine = Authenticator::new(config, 7);
    let mut now = NOW;
    let mut answers = std::collections::VecDeque::new();
    for _ in 0..100 {
        assert_clean("machine", &format!("{machine:?} {:?}", machine.state()));
        let output = machine.poll_output(now);
        assert_clean("output", &format!("{output:?}"));
        match output {
            Output::Sign(jwt) => machine.supply_jwt(jwt.sign(), now),
            Output::Send(batch) => {
                for login in batch {
                    answers.push_back((login.id, answer(login.endpoint, login.request.body())));
                }
            }
            Output::AwaitAnswers => match answers.pop_front().expect("an answer awaited was sent") {
                (id, Ok(response)) => machine.handle_response(id, &response, now).unwrap(),
                (id, Err(kind)) => machine.handle_failure(id, TransportFailure::new(kind, "boom"), now).unwrap(),
            },
            Output::WaitUntil(at) => now = at,
            Output::Done(outcome) => {
                while let Some(event) = machine.poll_event() {
                    assert_clean("event", &format!("{event:?}"));
                }
                if let Ok(tokens) = &outcome {
                    assert_clean("tokens", &format!("{tokens:?}"));
                }
                return outcome;
            }
        }
        while let Some(event) = machine.poll_event() {
            assert_clean("event", &format!("{event:?}"));
        }
    }
    panic!("the login did not end");
}

#[test]
fn a_full_login_and_its_tokens_show_no_secret() {
    let jwt = login_jwt_canary();
    let outcome =
        login(config(LoginMethod::Rsa(signer())).with_key_manager(KeyManagerPolicy::Always), |endpoint, body| {
            // The canary JWT is what the machine sends.
            assert_eq!(body, format!(r#"{{"token":"{jwt}"}}"#).as_bytes());
            let token = if endpoint == LoginEndpoint::RsaSession { SESSION } else { KEY_MANAGER };
            let body = format!(r#"{{"name":"x","token":"{token}","authorizationToken":"Bearer {AUTHORIZATION}"}}"#);
            Ok(response(200, &body))
        });
    assert!(outcome.is_ok(), "{outcome:?}");

    let mut machine = Authenticator::new(config(LoginMethod::Rsa(signer())), 7);
    // Signed in two steps, as a driver that signs off its lock does.
    let Output::Sign(unsigned) = machine.poll_output(NOW) else { panic!("a JWT to sign first") };
    assert_clean("unsigned JWT", &format!("{unsigned:?}"));
    let signed = unsigned.sign().unwrap();
    assert_clean("signed JWT", &format!("{signed:?}"));
    machine.supply_jwt(Ok(signed), NOW);
    assert_clean("machine holding a JWT", &format!("{machine:?}"));
    let Output::Send(batch) = machine.poll_output(NOW) else { panic!("the login requests") };
    for request in batch {
        let token = if request.endpoint == LoginEndpoint::RsaSession { SESSION } else { KEY_MANAGER };
        let answer = format!(r#"{{"token":"{token}","authorizationToken":"{AUTHORIZATION}"}}"#);
        machine.handle_response(request.id, &response(200, &answer), NOW).unwrap();
    }
    assert!(matches!(machine.poll_output(NOW), Output::Done(Ok(_))));
    let tokens = machine.tokens().expect("logged in");
    assert_eq!(tokens.session().expose_secret(), SESSION);
    assert_eq!(tokens.authorization().unwrap().expose_secret(), AUTHORIZATION);
    let mut call = session_info(machine.config().endpoints());
    tokens.authorize(&mut call, Target::Agent);
    let shown = format!(
        "{tokens:?} {:?} {:?} {:?} {:?} {call:?} {:?} {machine:?}",
        tokens.session(),
        tokens.key_manager(),
        tokens.authorization(),
        tokens.session().header_value(),
        call.headers(),
    );
    assert_clean("tokens and an authorized call", &shown);
}

#[test]
fn every_login_failure_shows_no_secret() {
    // Servers and proxies that echo the request, or the tokens, back in their error answers.
    let echoes = [
        format!(r#"{{"code":401,"message":"bad JWT {}"}}"#, login_jwt_canary()),
        format!(r#"{{"code":401,"message":"token={SESSION} key={KEY_MANAGER}"}}"#),
        format!("<html><title>{AUTHORIZATION}</title><body>{}</body></html>", login_jwt_canary()),
        format!(r#"{{"message":"{}"}}"#, key_body()),
        format!("{PROXY_PASSWORD} {SESSION}"),
    ];
    let mut seen = Vec::new();
    for echo in &echoes {
        for status in [200, 302, 400, 401, 403, 404, 407, 418, 500, 503] {
            let body = if status == 200 { format!(r#"{{"sessionToken":"{SESSION}"}}"#) } else { echo.clone() };
            let outcome = login(config(LoginMethod::Rsa(signer())), |_, _| Ok(response(status, &body)));
            let Err(error) = outcome else { panic!("{status} {outcome:?}") };
            check_error(&format!("HTTP {status}"), &error);
            seen.push(std::mem::discriminant(&error));
        }
    }
    for kind in [TransportKind::Tls, TransportKind::Timeout, TransportKind::Refused] {
        let Err(error) = login(config(LoginMethod::Certificate), |_, _| Err(kind)) else { panic!() };
        check_error("transport", &error);
        seen.push(std::mem::discriminant(&error));
    }
    #[derive(Debug)]
    struct Refusing;
    impl JwtSigner for Refusing {
        fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
            Err(SignError("the HSM is offline".into()))
        }
    }
    let Err(error) = login(config(LoginMethod::Rsa(Arc::new(Refusing))), |_, _| Ok(response(500, ""))) else {
        panic!()
    };
    check_error("signing", &error);
    seen.push(std::mem::discriminant(&error));
    for variant in [
        AuthError::Rejected {
            endpoint: LoginEndpoint::RsaSession,
            username: String::new(),
            status: 0,
            server_message: None,
            clock_offset_secs: None,
        },
        AuthError::Unavailable {
            endpoint: LoginEndpoint::RsaSession,
            username: String::new(),
            attempts: 0,
            last: FailureCause::Status(0),
        },
        AuthError::Transport {
            endpoint: LoginEndpoint::RsaSession,
            username: String::new(),
            failure: TransportFailure::new(TransportKind::Tls, ""),
        },
        AuthError::Protocol {
            endpoint: LoginEndpoint::RsaSession,
            status: 0,
            problem: ProtocolProblem::NotJson,
            body_prefix: String::new(),
        },
        AuthError::Signing(SignError(String::new())),
    ] {
        assert!(seen.contains(&std::mem::discriminant(&variant)), "{variant:?} not reached");
    }
}

#[test]
fn session_info_errors_show_no_secret() {
    let echo = format!(r#"{{"code":401,"message":"{SESSION}"}}"#);
    check_error("status", &parse_session_info(&response(401, &echo)).unwrap_err());
    check_error("not a user", &parse_session_info(&response(200, "[]")).unwrap_err());
    check_error("too large", &SessionInfoError::Body("larger than the size limit".into()));
}

const RSA_FILE: &str = "host: pod.example\nbot:\n  username: canary.bot\n";

fn inline_key_yaml() -> String {
    let indented: String = KEY_PEM.lines().map(|l| format!("      {l}\n")).collect();
    format!("{RSA_FILE}  privateKey:\n    content: |\n{indented}")
}

#[test]
fn bdk_configuration_errors_show_no_secret() {
    let no_env = |_: &str| None;
    let key_inline_as_string = {
        let indented: String = KEY_PEM.lines().map(|l| format!("    {l}\n")).collect();
        format!("{RSA_FILE}  privateKey: |\n{indented}")
    };
    let cases = [
        // The issue's configurations: a numeric password, a key where a mapping belongs.
        format!("host: h\nbot: {{username: b, certificate: {{path: c.p12, password: {PASSWORD}}}}}"),
        key_inline_as_string,
        format!("host: h\nbot: {{username: b, certificatePath: c.p12, certificatePassword: {PASSWORD}}}"),
        format!("host: h\nbot: {{username: b, certificate: {{path: c, password: \"{PROXY_PASSWORD}"),
        format!("host: h\n{PROXY_PASSWORD}: 1\n{PROXY_PASSWORD}: 2\nbot: {{username: b, privateKey: {{path: k}}}}"),
        format!("host: h\nscheme: {PROXY_PASSWORD}\nbot: {{username: b, privateKey: {{path: k}}}}"),
        format!("host: h\nport: {PASSWORD}\nbot: {{username: b, privateKey: {{path: k}}}}"),
        format!("host: 'u:{PROXY_PASSWORD}@h'\nbot: {{username: b, privateKey: {{path: k}}}}"),
        format!("host: h\nbot: {{username: b, certificate: {{path: c, password: 'a${{{PROXY_PASSWORD}}}'}}}}"),
        format!("host: h\nbot: {{username: b, privateKey: {{path: k, content: '{SESSION}'}}}}"),
        format!("host: h\nbot: {{username: b, privateKey: {{content: k}}, certificate: {{content: '{SESSION}'}}}}"),
        format!("host: h\nbot: {{username: b, certificate: {{path: c, password: [{PASSWORD}]}}}}"),
        format!(
            "host: h\nproxy: {{host: p, port: 1, password: {PASSWORD}}}\nbot: {{username: b, privateKey: {{path: k}}}}"
        ),
        format!(
            "scheme: http\nhost: pod.example\nbot: {{username: b, certificate: {{path: c, password: '{PROXY_PASSWORD}'}}}}"
        ),
        PROXY_PASSWORD.to_owned(),
        format!("host: h\nbot: {{username: b}}\npassword: {PROXY_PASSWORD}"),
    ];
    let mut seen = Vec::new();
    for text in &cases {
        let error = parse_bdk_config(text, &no_env).unwrap_err();
        check_error(text, &error);
        check_error(text, &ConfigFileError::Parse(error.clone()));
        seen.push(std::mem::discriminant(&error));
    }
    assert!(seen.contains(&std::mem::discriminant(&BdkConfigError::WrongType {
        key: String::new(),
        expected: "",
        found: ""
    })));
    assert!(seen.contains(&std::mem::discriminant(&BdkConfigError::Syntax(String::new()))));
    assert!(seen.contains(&std::mem::discriminant(&BdkConfigError::UnsetVariable(String::new()))));

    // Settings holding every secret a file can hold print none of them.
    let full = format!(
        "{}proxy: {{host: proxy.example, port: 3128, username: u, password: '{PROXY_PASSWORD}'}}\n",
        inline_key_yaml()
    );
    let settings = parse_bdk_config(&full, &no_env).unwrap();
    assert_clean("settings", &format!("{settings:?} {:?}", settings.credentials));
    let loaded = settings.load(&mut |_| unreachable!("the key is inline")).unwrap();
    assert_clean("loaded settings", &format!("{loaded:?} {:?}", loaded.config));
    let certificate = parse_bdk_config(
        &format!("host: h\nbot: {{username: b, certificate: {{path: /bot.p12, password: '{PASSWORD}'}}}}"),
        &no_env,
    )
    .unwrap();
    assert_clean("certificate settings", &format!("{certificate:?}"));
    #[cfg(feature = "client-identity")]
    check_error(
        "wrong PKCS#12 password",
        &certificate.load(&mut |_| Ok(include_bytes!("../../fixtures/certs/bot.p12").to_vec())).unwrap_err(),
    );

    // Files named by the configuration that are not what they should be.
    let by_path = parse_bdk_config(&format!("{RSA_FILE}  privateKey: {{path: /bot.pem}}\n"), &no_env).unwrap();
    let lost_dashes = KEY_PEM.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1);
    check_error("key file", &by_path.load(&mut |_| Ok(lost_dashes.clone().into_bytes())).unwrap_err());
    check_error(
        "unreadable",
        &by_path.load(&mut |_| Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied))).unwrap_err(),
    );
    let cert_by_path = parse_bdk_config("host: h\nbot: {username: b, certificate: {path: /bot.pem}}", &no_env).unwrap();
    check_error("certificate file", &cert_by_path.load(&mut |_| Ok(lost_dashes.clone().into_bytes())).unwrap_err());
}
