//! The crate's small vocabulary, as callers and bindings read it: base URLs and which service a URI belongs to,
//! configuration defaults and bounds, times, ids, generations, states, tokens and the messages errors print.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::Uri;

use crate::config::{BaseUrl, Config, Endpoints, KeyManagerPolicy, LoginMethod, Username};
use crate::endpoint::{LoginEndpoint, Purpose};
use crate::error::{
    AuthError, ConfigError, FailureCause, ProtocolProblem, SignError, TransportFailure, TransportKind, UsageError,
};
use crate::machine::{LoginRequest, RequestId, State};
use crate::request::session_info;
use crate::response::MAX_RESPONSE_BODY;
use crate::retry::{CoolDown, RetryPolicy};
use crate::session_info::{SessionInfoError, parse_session_info};
use crate::signer::JwtSigner;
use crate::time::UnixTime;
use crate::tokens::{AuthorizationToken, Generation, KeyManagerToken, SecretHeader, SessionToken, Target, Tokens};
use crate::{ApiRetry, HttpResponse};

#[derive(Debug)]
struct Constant;
impl JwtSigner for Constant {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![0; 4])
    }
}

fn uri(text: &str) -> Uri {
    text.parse().unwrap()
}

#[test]
fn base_urls_expose_their_parts() {
    let url = BaseUrl::parse("pod", " https://Acme.example:8443/ctx/ ").unwrap();
    assert_eq!((url.scheme(), url.host(), url.port(), url.context()), ("https", "Acme.example", 8443, "/ctx"));
    assert_eq!(url.to_string(), "https://Acme.example:8443/ctx");
    assert_eq!(format!("{url:?}"), "BaseUrl(https://Acme.example:8443/ctx)");
    assert_eq!(url.join("/pod/v1/x"), uri("https://Acme.example:8443/ctx/pod/v1/x"));
    let plain = BaseUrl::parse("pod", "http://h").unwrap();
    assert_eq!((plain.scheme(), plain.port(), plain.context()), ("http", 80, ""));
    assert_eq!(BaseUrl::parse("pod", "https://h").unwrap().port(), 443);
    assert_eq!(BaseUrl::parse("pod", "HTTP://h").unwrap().scheme(), "http");
    for (url, reason) in [("https://", "not a valid URL"), ("https://x?q", "a base URL takes no query or fragment")] {
        assert!(
            matches!(BaseUrl::parse("agent", url), Err(ConfigError::InvalidUrl { reason: r, .. }) if r == reason),
            "{url}"
        );
    }
}

#[test]
fn base_urls_from_bdk_parts() {
    let https = BaseUrl::from_parts("pod", "HTTPS", "h", None, "").unwrap();
    assert_eq!(https.to_string(), "https://h");
    assert_eq!(BaseUrl::from_parts("pod", " http ", "h", Some(8080), "/ctx").unwrap().to_string(), "http://h:8080/ctx");
    assert_eq!(BaseUrl::from_parts("pod", "https", "h", None, "ctx").unwrap().context(), "/ctx");
    assert_eq!(
        BaseUrl::from_parts("keyManager", "ftp", "h", Some(21), "/c"),
        Err(ConfigError::InvalidUrl {
            which: "keyManager",
            url: "ftp://h:21/c".into(),
            reason: "the scheme must be `https` or `http`"
        })
    );
}

#[test]
fn a_base_url_contains_only_its_own_origin_and_context() {
    let base = BaseUrl::parse("pod", "https://h/ctx").unwrap();
    for (text, inside) in [
        ("https://h/ctx/pod/v1", true),
        ("https://H/ctx", true),
        ("https://h:443/ctx/x", true),
        ("https://h/ctxx", false),
        ("https://h/other", false),
        ("http://h/ctx/x", false),
        ("https://h:8443/ctx/x", false),
        ("https://other/ctx/x", false),
    ] {
        assert_eq!(base.contains(&uri(text)), inside, "{text}");
    }
    let http = BaseUrl::parse("pod", "http://h").unwrap();
    assert!(http.contains(&uri("http://h/anything")));
    assert!(http.contains(&uri("http://h:80/anything")));
    assert!(!http.contains(&uri("http://h:8080/anything")));
    assert!(!http.contains(&uri("https://h/anything")));
}

#[test]
fn which_service_a_uri_is_for() {
    let mut endpoints = Endpoints::single("https://pod.example").unwrap();
    endpoints.key_manager = BaseUrl::parse("keyManager", "https://km.example").unwrap();
    endpoints.session_auth = BaseUrl::parse("sessionAuth", "https://auth.example").unwrap();
    for (text, target) in [
        ("https://pod.example/agent", Target::Agent),
        ("https://pod.example/agent/v4/stream", Target::Agent),
        ("https://pod.example/pod/v1/x", Target::Pod),
        ("https://auth.example/sessionauth/x", Target::Pod),
    ] {
        assert_eq!(endpoints.target_of(&uri(text)), Ok(target), "{text}");
    }
    assert_eq!(
        endpoints.target_of(&uri("https://evil.example/pod/v1/x?token=1")),
        Err(UsageError::ForeignUri("https://evil.example/pod/v1/x".into())),
        "the query is not repeated in the message"
    );
}

#[test]
fn configuration_defaults_and_settings_read_back() {
    let endpoints = Endpoints::single("https://pod.example").unwrap();
    let config = Config::rsa(endpoints.clone(), "bot.user", Arc::new(Constant)).unwrap();
    assert_eq!(config.endpoints(), &endpoints);
    assert_eq!(config.username().as_str(), "bot.user");
    assert!(matches!(config.method(), LoginMethod::Rsa(_)));
    assert_eq!(config.jwt_lifetime(), Duration::from_secs(240));
    assert_eq!(config.retry(), &RetryPolicy::default());
    assert_eq!(config.key_manager(), KeyManagerPolicy::Auto);
    assert!(config.parallel_login());
    assert_eq!(config.cool_down(), CoolDown::default());
    assert!(config.api_retry().is_none());
    let cool = CoolDown::new(Duration::from_secs(2), Duration::from_secs(9)).unwrap();
    let retry = RetryPolicy::no_retry();
    let config = Config::certificate(endpoints, "cert.bot")
        .unwrap()
        .with_retry(retry.clone())
        .with_key_manager(KeyManagerPolicy::Never)
        .with_parallel_login(false)
        .with_cool_down(cool)
        .with_api_retry(ApiRetry::default().all_methods())
        .with_jwt_lifetime(Duration::from_secs(60))
        .unwrap();
    assert!(matches!(config.method(), LoginMethod::Certificate));
    assert_eq!(config.retry(), &retry);
    assert_eq!(config.retry().max_attempts(), 1);
    assert_eq!(config.key_manager(), KeyManagerPolicy::Never);
    assert!(!config.parallel_login());
    assert_eq!(config.cool_down(), cool);
    assert_eq!(config.api_retry(), Some(&ApiRetry::default().all_methods()));
    assert_eq!(config.jwt_lifetime(), Duration::from_secs(60));
}

#[test]
fn jwt_lifetimes_are_whole_seconds_from_1_to_300() {
    let config = Config::certificate(Endpoints::single("x").unwrap(), "bot").unwrap();
    for secs in [1, 2, 299, 300] {
        assert_eq!(config.clone().with_jwt_lifetime(Duration::from_secs(secs)).unwrap().jwt_lifetime().as_secs(), secs);
    }
    for lifetime in [Duration::ZERO, Duration::from_millis(999), Duration::from_millis(1500), Duration::from_secs(301)]
    {
        assert_eq!(
            config.clone().with_jwt_lifetime(lifetime).unwrap_err(),
            ConfigError::JwtLifetime { secs: lifetime.as_secs() },
            "{lifetime:?}"
        );
    }
}

#[test]
fn usernames_print_as_themselves() {
    let name = Username::new("bot \"one\"").unwrap();
    assert_eq!(name.as_str(), "bot \"one\"");
    assert_eq!(name.to_string(), "bot \"one\"");
    assert_eq!(format!("{name:?}"), r#""bot \"one\"""#);
    assert_eq!(Username::new(""), Err(ConfigError::InvalidUsername(String::new())));
}

#[test]
fn cool_downs_double_up_to_their_cap() {
    let cool = CoolDown::new(Duration::from_secs(1), Duration::from_secs(10)).unwrap();
    let waits: Vec<u64> = (0..7).map(|n| cool.after(n).as_secs()).collect();
    assert_eq!(waits, [1, 1, 2, 4, 8, 10, 10]);
    assert_eq!(cool.after(u32::MAX), Duration::from_secs(10));
    assert_eq!(CoolDown::default().after(1), Duration::from_secs(1));
    assert_eq!(CoolDown::default().after(100), Duration::from_secs(60));
    assert_eq!(CoolDown::none().after(5), Duration::ZERO);
    assert!(CoolDown::new(Duration::from_secs(5), Duration::from_secs(1)).is_err());
    assert!(CoolDown::new(Duration::from_secs(1), CoolDown::MAX).is_ok());
    assert!(CoolDown::new(Duration::from_secs(1), CoolDown::MAX + Duration::from_millis(1)).is_err());
    assert_eq!(CoolDown::MAX, Duration::from_secs(3600));
}

#[test]
fn retry_policies_are_bounded() {
    let ms = Duration::from_millis;
    assert!(RetryPolicy::new(100, ms(10), 1.0, RetryPolicy::MAX_INTERVAL).is_ok());
    assert!(RetryPolicy::new(101, ms(10), 1.0, ms(10)).is_err());
    assert!(RetryPolicy::new(1, ms(10), 1.0, RetryPolicy::MAX_INTERVAL + ms(1)).is_err());
    assert!(RetryPolicy::new(1, ms(9), 1.0, ms(10)).is_err());
    assert!(RetryPolicy::new(1, ms(10), 0.99, ms(10)).is_err());
    assert!(RetryPolicy::new(1, ms(10), f64::INFINITY, ms(10)).is_err());
    assert!(RetryPolicy::default().with_max_attempts(101).is_err());
    assert!(RetryPolicy::default().with_max_attempts(100).is_ok());
    assert!(RetryPolicy::default().with_jitter(1.0).is_ok() && RetryPolicy::default().with_jitter(-0.1).is_err());
    assert_eq!(RetryPolicy::default().max_interval(), Duration::from_secs(300));
    assert_eq!(RetryPolicy::no_retry().max_attempts(), 1);
    assert_eq!((RetryPolicy::MAX_ATTEMPTS, RetryPolicy::MAX_INTERVAL), (100, Duration::from_secs(3600)));
}

#[test]
fn times_convert_exactly() {
    let t = UnixTime::from_millis(1_500);
    assert_eq!((t.as_millis(), t.as_secs()), (1_500, 1));
    assert_eq!(UnixTime::from_millis(999).as_secs(), 0);
    assert_eq!(UnixTime::from_secs(2).as_millis(), 2_000);
    assert_eq!(t.to_system_time(), UNIX_EPOCH + Duration::from_millis(1_500));
    assert_eq!(UnixTime::from(UNIX_EPOCH + Duration::from_millis(2_250)), UnixTime::from_millis(2_250));
    assert_eq!(UnixTime::from_system_time(UNIX_EPOCH - Duration::from_secs(1)), UnixTime::from_millis(0));
    assert_eq!(UnixTime::from_secs(u64::MAX).as_millis(), u64::MAX);
    assert_eq!(t.saturating_add(Duration::from_millis(250)), UnixTime::from_millis(1_750));
    assert_eq!(UnixTime::from_millis(1_750).saturating_since(t), Duration::from_millis(250));
}

#[test]
fn ids_and_generations_round_trip_and_print() {
    let id = RequestId::from_u64(5);
    assert_eq!((id.get(), id.to_string()), (5, "#5".to_owned()));
    let generation = Generation::from_u64(3);
    assert_eq!((generation.get(), generation.to_string()), (3, "3".to_owned()));
    assert_eq!(Generation::default().get(), 0);
}

#[test]
fn states_say_whether_tokens_exist_and_a_login_is_under_way() {
    let g = Generation(1);
    for (state, ready, logging_in) in [
        (State::NeedsSession { logging_in: false }, false, false),
        (State::NeedsSession { logging_in: true }, false, true),
        (State::NeedsKeyManager, false, true),
        (State::Ready { generation: g, refreshing: false }, true, false),
        (State::Ready { generation: g, refreshing: true }, true, true),
        (State::Expired { generation: g, logging_in: false }, false, false),
        (State::Expired { generation: g, logging_in: true }, false, true),
    ] {
        assert_eq!((state.is_ready(), state.is_logging_in()), (ready, logging_in), "{state:?}");
    }
}

#[test]
fn login_requests_print_without_their_body() {
    let endpoints = Endpoints::single("https://pod.example").unwrap();
    let mut request = session_info(&endpoints);
    *request.body_mut() = b"secret-jwt".to_vec();
    let login = LoginRequest { id: RequestId::from_u64(7), endpoint: LoginEndpoint::RsaKeyManager, request };
    assert_eq!(login.purpose(), Purpose::KeyManager);
    let shown = format!("{login:?}");
    assert!(
        shown.contains("RequestId(7)") && shown.contains("RsaKeyManager") && shown.contains("/pod/v2/sessioninfo"),
        "{shown}"
    );
    assert!(!shown.contains("secret-jwt"), "{shown}");
}

#[test]
fn login_endpoints_describe_themselves() {
    let endpoints = Endpoints::single("https://pod.example").unwrap();
    for (endpoint, purpose, certificate, shown) in [
        (LoginEndpoint::RsaSession, Purpose::Session, false, "POST /login/pubkey/authenticate"),
        (LoginEndpoint::RsaKeyManager, Purpose::KeyManager, false, "POST /relay/pubkey/authenticate"),
        (LoginEndpoint::CertificateSession, Purpose::Session, true, "POST /sessionauth/v1/authenticate"),
        (LoginEndpoint::CertificateKeyManager, Purpose::KeyManager, true, "POST /keyauth/v1/authenticate"),
        (LoginEndpoint::AgentVersion, Purpose::AgentVersion, false, "GET /agent/v1/info"),
    ] {
        assert_eq!(endpoint.purpose(), purpose);
        assert_eq!(endpoint.uses_client_certificate(), certificate);
        assert_eq!(endpoint.to_string(), shown);
        assert_eq!(endpoint.base(&endpoints), &endpoints.pod);
    }
}

fn tokens(km: Option<&str>, authorization: Option<&str>, skd: bool) -> Tokens {
    Tokens {
        generation: Generation(4),
        session: SessionToken(SecretHeader::new("session").unwrap()),
        key_manager: km.map(|k| KeyManagerToken(SecretHeader::new(k).unwrap())),
        authorization: authorization.map(|a| AuthorizationToken(SecretHeader::new(a).unwrap())),
        simplified_key_delivery: skd,
    }
}

#[test]
fn tokens_read_back_and_never_print() {
    let full = tokens(Some("km"), Some("common"), false);
    assert_eq!(full.generation(), Generation(4));
    assert_eq!(full.session().expose_secret(), "session");
    assert_eq!(full.key_manager().map(KeyManagerToken::expose_secret), Some("km"));
    assert_eq!(full.authorization().map(AuthorizationToken::expose_secret), Some("common"));
    assert!(!full.simplified_key_delivery());
    let skd = tokens(None, None, true);
    assert!(skd.simplified_key_delivery() && skd.key_manager().is_none() && skd.authorization().is_none());
    assert_eq!(format!("{:?}", SecretHeader::new("hidden").unwrap()), "<redacted>");
    assert_eq!(format!("{:?}", full.authorization().unwrap()), "AuthorizationToken(<redacted>)");
    let mut request = http::Request::new(());
    full.authorize(&mut request, Target::Agent);
    assert_eq!(request.headers()["sessionToken"], "session");
    assert_eq!(request.headers()["keyManagerToken"], "km");
}

#[test]
fn transport_kinds_say_whether_to_retry_and_what_happened() {
    for (kind, retryable, shown) in [
        (TransportKind::Timeout, true, "timed out"),
        (TransportKind::Connect, true, "connection failed"),
        (TransportKind::Reset, true, "connection closed before the answer"),
        (TransportKind::Tls, false, "TLS handshake failed"),
        (TransportKind::Other, true, "transport error"),
    ] {
        assert_eq!(kind.is_retryable(), retryable, "{kind:?}");
        assert_eq!(kind.to_string(), shown);
    }
    assert_eq!(TransportFailure::new(TransportKind::Timeout, "").to_string(), "timed out");
    assert_eq!(TransportFailure::new(TransportKind::Connect, "refused").to_string(), "connection failed: refused");
    assert_eq!(FailureCause::Status(503).to_string(), "HTTP 503");
    assert_eq!(
        FailureCause::Transport(TransportFailure::new(TransportKind::Reset, "eof")).to_string(),
        "connection closed before the answer: eof"
    );
}

#[test]
fn errors_name_the_endpoint_and_the_problem() {
    let endpoint = LoginEndpoint::RsaSession;
    for (problem, shown) in [
        (ProtocolProblem::UnexpectedStatus, "unexpected status"),
        (ProtocolProblem::BodyTooLarge, "body too large"),
        (ProtocolProblem::NotJson, "body is not a JSON object"),
        (ProtocolProblem::MissingToken, "no string `token` field"),
        (ProtocolProblem::EmptyToken, "empty token"),
        (ProtocolProblem::TokenNotAHeaderValue, "token is not a valid header value"),
    ] {
        assert_eq!(problem.to_string(), shown);
    }
    let protocol = AuthError::Protocol {
        endpoint,
        status: 404,
        problem: ProtocolProblem::UnexpectedStatus,
        body_prefix: "x".into(),
    };
    assert_eq!(
        protocol.to_string(),
        "POST /login/pubkey/authenticate answered HTTP 404: unexpected status; the server says \"x\""
    );
    let unavailable = AuthError::Unavailable {
        endpoint: LoginEndpoint::RsaKeyManager,
        username: "bot".into(),
        attempts: 3,
        last: FailureCause::Status(503),
    };
    assert_eq!(
        unavailable.to_string(),
        "POST /relay/pubkey/authenticate unavailable for bot \"bot\" after 3 attempt(s); last: HTTP 503"
    );
    let transport = AuthError::Transport {
        endpoint: LoginEndpoint::CertificateSession,
        username: "bot".into(),
        failure: TransportFailure::new(TransportKind::Tls, "unknown ca"),
    };
    assert_eq!(
        transport.to_string(),
        "POST /sessionauth/v1/authenticate for bot \"bot\": TLS handshake failed: unknown ca"
    );
    let rejected = AuthError::Rejected {
        endpoint,
        username: "bot".into(),
        status: 401,
        server_message: Some("bad".into()),
        clock_offset_secs: Some(-90),
    };
    assert!(rejected.to_string().contains("(bad)") && rejected.to_string().contains("-90 s"), "{rejected}");
    for (error, expected) in [
        (protocol, Some(endpoint)),
        (unavailable, Some(LoginEndpoint::RsaKeyManager)),
        (transport, Some(LoginEndpoint::CertificateSession)),
        (rejected, Some(endpoint)),
        (AuthError::Signing(SignError("hsm".into())), None),
    ] {
        assert_eq!(error.endpoint(), expected, "{error}");
    }
}

fn answer(status: u16, body: Vec<u8>) -> HttpResponse {
    http::Response::builder().status(status).body(body).unwrap()
}

#[test]
fn session_info_answers_are_bounded_and_checked() {
    let record = br#"{"id":1,"username":"bot"}"#.to_vec();
    assert_eq!(parse_session_info(&answer(200, record.clone())).unwrap().username, "bot");
    assert_eq!(parse_session_info(&answer(204, record.clone())), Err(SessionInfoError::Status(204)));
    let mut exactly = record.clone();
    exactly.resize(MAX_RESPONSE_BODY, b' ');
    assert!(parse_session_info(&answer(200, exactly.clone())).is_ok(), "a body of exactly the limit is read");
    exactly.push(b' ');
    assert_eq!(
        parse_session_info(&answer(200, exactly)),
        Err(SessionInfoError::Body("larger than the size limit".into()))
    );
}

mod login_answers {
    use crate::response::{LoginAnswer, MAX_RESPONSE_BODY, read_login_answer, server_clock_offset};
    use crate::time::UnixTime;

    const NOW: UnixTime = UnixTime::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT

    fn answer(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> crate::HttpResponse {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(body).unwrap()
    }

    #[test]
    fn success_bodies_up_to_the_limit_are_read() {
        let mut body = br#"{"token":"a-token-of-some-length"}"#.to_vec();
        body.resize(MAX_RESPONSE_BODY, b' ');
        assert_eq!(MAX_RESPONSE_BODY, 65_536);
        match read_login_answer(&answer(200, &[], body.clone()), NOW) {
            LoginAnswer::Token(token) => assert_eq!(token.token.expose(), "a-token-of-some-length"),
            other => panic!("a body of exactly the limit: {other:?}"),
        }
        body.push(b' ');
        assert!(matches!(
            read_login_answer(&answer(200, &[], body), NOW),
            LoginAnswer::Unusable { problem: crate::ProtocolProblem::BodyTooLarge, .. }
        ));
    }

    #[test]
    fn a_clock_offset_is_reported_past_30_seconds() {
        let offset = |date: &str| match read_login_answer(&answer(401, &[("date", date)], Vec::new()), NOW) {
            LoginAnswer::Rejected { clock_offset_secs, .. } => clock_offset_secs,
            other => panic!("{other:?}"),
        };
        assert_eq!(offset("Wed, 21 Oct 2015 07:28:30 GMT"), None);
        assert_eq!(offset("Wed, 21 Oct 2015 07:28:31 GMT"), Some(31));
        assert_eq!(offset("Wed, 21 Oct 2015 07:27:29 GMT"), Some(-31));
        assert_eq!(offset("Wed, 21 Oct 2015 07:27:30 GMT"), None);
        let date = answer(200, &[("date", "Wed, 21 Oct 2015 07:28:02 GMT")], Vec::new());
        assert_eq!(server_clock_offset(&date, NOW), Some(2));
        assert_eq!(server_clock_offset(&answer(200, &[("date", "soon")], Vec::new()), NOW), None);
        assert_eq!(server_clock_offset(&answer(200, &[], Vec::new()), NOW), None);
    }

    #[test]
    fn retryable_and_refused_statuses() {
        for status in [408, 429, 500, 501, 503, 599] {
            assert!(
                matches!(read_login_answer(&answer(status, &[], Vec::new()), NOW), LoginAnswer::Retry { .. }),
                "{status}"
            );
        }
        for status in [301, 402, 404, 405, 409, 418] {
            assert!(
                matches!(read_login_answer(&answer(status, &[], Vec::new()), NOW), LoginAnswer::Unusable { .. }),
                "{status}"
            );
        }
    }

    #[test]
    fn agent_version_answers_up_to_the_limit_are_read() {
        let mut body = br#"{"version":"Agent-25.1.0"}"#.to_vec();
        body.resize(MAX_RESPONSE_BODY, b' ');
        assert!(crate::agent_supports_simplified_key_delivery(&answer(200, &[], body.clone())));
        body.push(b' ');
        assert!(!crate::agent_supports_simplified_key_delivery(&answer(200, &[], body)));
        assert!(!crate::agent_supports_simplified_key_delivery(&answer(
            201,
            &[],
            br#"{"version":"Agent-25.1.0"}"#.to_vec()
        )));
    }
}

#[test]
fn an_unsigned_jwt_prints_its_exp_and_signer_only() {
    let jwt =
        crate::jwt::UnsignedJwt::new("bot", UnixTime::from_secs(10), Duration::from_secs(240), Arc::new(Constant));
    assert_eq!(format!("{jwt:?}"), "UnsignedJwt { exp: 250, signer: Constant, .. }");
}

#[cfg(feature = "bdk-config")]
mod bdk_files {
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::bdk::{BdkConfigError, CredentialSource, ProxySettings, Source, parse_bdk_config};
    use crate::retry::RetryPolicy;

    const BOT: &str = "bot: {username: b, privateKey: {path: /k.pem}}\n";

    fn parse(text: &str) -> Result<crate::BotSettings, BdkConfigError> {
        parse_bdk_config(text, &|name| match name {
            "A" => Some("1".into()),
            "USER" => Some("env.bot".into()),
            _ => None,
        })
    }

    fn with_bot(text: &str) -> Result<crate::BotSettings, BdkConfigError> {
        parse(&format!("host: h\n{BOT}{text}"))
    }

    fn invalid(key: &str, reason: &str) -> BdkConfigError {
        BdkConfigError::InvalidValue { key: key.into(), reason: reason.into() }
    }

    #[test]
    fn sources_print_their_path_but_not_their_content() {
        assert_eq!(format!("{:?}", Source::Path("/k.pem".into())), r#"Path("/k.pem")"#);
        assert_eq!(format!("{:?}", Source::Content(b"secret".to_vec())), "Content(<6 bytes>)");
    }

    #[test]
    fn a_certificate_is_pkcs12_with_a_password_or_a_p12_name() {
        let certificate = |path: &str, password: Option<&str>| CredentialSource::Certificate {
            source: Source::Path(PathBuf::from(path)),
            password: password.map(secrecy::SecretString::from),
        };
        assert!(certificate("/c.pem", Some("pw")).is_pkcs12());
        assert!(certificate("/c.p12", None).is_pkcs12());
        assert!(certificate("/c.PFX", None).is_pkcs12());
        assert!(!certificate("/c.pem", None).is_pkcs12());
        let content = CredentialSource::Certificate { source: Source::Content(b"x".to_vec()), password: None };
        assert!(!content.is_pkcs12());
        assert!(!CredentialSource::RsaKey(Source::Path("/k.p12".into())).is_pkcs12());
        assert_eq!(certificate("/c.p12", Some("pw")).password(), Some("pw"));
        assert_eq!(certificate("/c.p12", None).password(), None);
        assert_eq!(CredentialSource::RsaKey(Source::Path("/k".into())).password(), None);
    }

    #[test]
    fn proxy_credentials_are_percent_encoded_into_the_url() {
        let proxy = |username: Option<&str>, password: Option<&str>| ProxySettings {
            url: "http://proxy:3128".into(),
            username: username.map(str::to_owned),
            password: password.map(secrecy::SecretString::from),
        };
        assert_eq!(proxy(None, Some("ignored")).url_with_credentials().as_str(), "http://proxy:3128");
        assert_eq!(proxy(Some("user"), None).url_with_credentials().as_str(), "http://user@proxy:3128");
        assert_eq!(
            proxy(Some("us er"), Some("p@ss:w/rd")).url_with_credentials().as_str(),
            "http://us%20er:p%40ss%3Aw%2Frd@proxy:3128"
        );
        assert_eq!(
            proxy(Some("a-B.9_~"), Some("é")).url_with_credentials().as_str(),
            "http://a-B.9_~:%C3%A9@proxy:3128"
        );
    }

    #[test]
    fn proxy_credentials_are_encoded_into_a_buffer_sized_once() {
        // Every byte of these needs percent-encoding: the worst case the buffer is sized for, exactly, so that no
        // reallocation leaves an unwiped copy of the password behind.
        let proxy = ProxySettings {
            url: "http://proxy.example:3128".into(),
            username: Some("@@@@".into()),
            password: Some(secrecy::SecretString::from("::::::::")),
        };
        let url = proxy.url_with_credentials();
        assert_eq!(url.as_str(), format!("http://{}:{}@proxy.example:3128", "%40".repeat(4), "%3A".repeat(8)));
        assert_eq!(url.capacity(), url.len());
    }

    #[test]
    fn variables_are_expanded_everywhere_with_defaults() {
        let settings =
            parse("host: h${A}\nbot: {username: '${USER}', privateKey: {path: '/${B:-keys}/${A}.pem'}}").unwrap();
        assert_eq!(settings.endpoints.pod.host(), "h1");
        assert_eq!(settings.username, "env.bot");
        assert!(
            matches!(&settings.credentials, CredentialSource::RsaKey(Source::Path(p)) if p == &PathBuf::from("/keys/1.pem"))
        );
        assert_eq!(with_bot("unused: [a, '${NOPE}']").unwrap_err(), BdkConfigError::UnsetVariable("NOPE".into()));
        let kept = parse("host: 'h'\nbot: {username: 'b${A', privateKey: {path: k}}").unwrap();
        assert_eq!(kept.username, "b${A", "an unterminated reference is kept as written");
        assert_eq!(parse("").unwrap_err(), BdkConfigError::MissingKey("host"));
    }

    #[test]
    fn numbers_are_whole_and_in_range() {
        for (port, ok) in
            [("1", true), ("65535", true), ("'8443'", true), ("0", false), ("65536", false), ("1.5", false)]
        {
            assert_eq!(with_bot(&format!("port: {port}")).is_ok(), ok, "port {port}");
        }
        assert_eq!(with_bot("port: true").unwrap_err(), invalid("port", "not a number"));
        assert_eq!(with_bot("port: '4x'").unwrap_err(), invalid("port", "not a number"));
        assert_eq!(with_bot("port: ~").unwrap().endpoints.pod.port(), 443);
        assert_eq!(
            with_bot("agent: {port: 0}").unwrap_err(),
            invalid("agent.port", "expected a whole number from 1 to 65535")
        );
        assert_eq!(with_bot("connectionTimeout: 2500").unwrap().connect_timeout, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn retry_settings_follow_the_bdk_rules() {
        let retry = |text: &str| with_bot(&format!("retry: {{{text}}}")).map(|s| s.retry);
        let policy = |attempts, initial, multiplier, max| {
            RetryPolicy::new(attempts, Duration::from_millis(initial), multiplier, Duration::from_millis(max)).unwrap()
        };
        assert_eq!(retry("maxAttempts: 5").unwrap(), policy(5, 500, 2.0, 300_000));
        assert_eq!(retry("maxAttempts: -1").unwrap().max_attempts(), RetryPolicy::MAX_ATTEMPTS);
        assert_eq!(
            retry("maxAttempts: 0").unwrap_err(),
            invalid("retry.maxAttempts", "expected a whole number from 1 to 4294967295")
        );
        assert_eq!(retry("multiplier: 3").unwrap(), policy(10, 500, 3.0, 300_000));
        assert_eq!(retry("multiplier: 1").unwrap(), policy(10, 500, 1.0, 300_000));
        assert_eq!(retry("multiplier: 0.5").unwrap(), policy(10, 500, 2.0, 300_000), "below 1 becomes 2");
        assert_eq!(retry("initialIntervalMillis: 20, maxIntervalMillis: 40").unwrap(), policy(10, 20, 2.0, 40));
    }

    #[test]
    fn schemes_usernames_and_sources_are_checked() {
        assert_eq!(
            parse(&format!("host: h\nscheme: HTTP\nallowInsecureHttp: true\n{BOT}")).unwrap().endpoints.agent.scheme(),
            "http"
        );
        assert_eq!(
            parse(&format!("host: h\nscheme: ftp\n{BOT}")).unwrap_err(),
            BdkConfigError::UnknownScheme { key: "scheme".into(), value: "ftp".into() }
        );
        assert_eq!(
            parse("host: h\nbot: {username: '  ', privateKey: {path: k}}").unwrap_err(),
            BdkConfigError::MissingKey("bot.username")
        );
        let blank_path = parse("host: h\nbot: {username: b, privateKey: {path: ' ', content: PEM}}").unwrap();
        assert!(matches!(&blank_path.credentials, CredentialSource::RsaKey(Source::Content(c)) if c == b"PEM"));
        let blank_content = parse("host: h\nbot: {username: b, privateKey: {path: ' /k.pem ', content: ' '}}").unwrap();
        assert!(
            matches!(&blank_content.credentials, CredentialSource::RsaKey(Source::Path(p)) if p == &PathBuf::from("/k.pem"))
        );
        let certificate = parse("host: h\nbot: {username: b, certificate: {path: /c.p12, password: pw}}").unwrap();
        assert_eq!(certificate.credentials.password(), Some("pw"));
        let empty = parse("host: h\nbot: {username: b, certificate: {path: /c.pem, password: ''}}").unwrap();
        assert_eq!(empty.credentials.password(), None);
        let config = with_bot("").unwrap().to_config(crate::LoginMethod::Certificate).unwrap();
        assert_eq!(config.username().as_str(), "b");
    }

    #[test]
    fn a_proxy_serves_the_services_it_is_set_for() {
        let proxy = |text: &str| with_bot(text).map(|s| s.proxy.map(|p| p.url_with_credentials().as_str().to_owned()));
        assert_eq!(proxy("").unwrap(), None);
        assert_eq!(proxy("proxy: {host: p, port: 3128}").unwrap().as_deref(), Some("http://p:3128"));
        // A proxy on one service is that service's only: no proxy is shared by all.
        assert_eq!(proxy("agent: {proxy: {host: p, port: 3128}}").unwrap(), None);
        let agent_only = with_bot("agent: {proxy: {host: p, port: 3128}}").unwrap();
        assert_eq!(agent_only.proxies.agent.unwrap().url, "http://p:3128");
        assert!(agent_only.proxies.pod.is_none());
        assert_eq!(
            proxy("proxy: {host: p, port: 3128}\npod: {proxy: {host: p, port: 3128}}").unwrap().as_deref(),
            Some("http://p:3128")
        );
        assert_eq!(proxy("proxy: {host: p, port: 3128}\nagent: {proxy: {host: q, port: 3128}}").unwrap(), None);
        let missing = |key: &str| invalid(key, "missing: a proxy needs `host` and `port`");
        assert_eq!(proxy("proxy: {host: ' ', port: 3128}").unwrap_err(), missing("proxy.host"));
        assert_eq!(proxy("proxy: {host: p}").unwrap_err(), missing("proxy.port"));
        assert_eq!(
            proxy("proxy: {host: p, port: 1, username: '', password: ''}").unwrap().as_deref(),
            Some("http://p:1"),
            "empty credentials are none"
        );
        assert_eq!(
            proxy("proxy: {host: p, port: 1, username: u, password: pw}").unwrap().as_deref(),
            Some("http://u:pw@p:1")
        );
    }
}

#[test]
fn jitter_is_splitmix64_so_that_bindings_replay_it() {
    let mut jitter = crate::retry::Jitter::new(0);
    let values: Vec<u64> = (0..3).map(|_| jitter.next_u64()).collect();
    assert_eq!(values, [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F]);
}
