use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{ACCEPT, CONTENT_TYPE};

use super::*;
use crate::config::BaseUrl;
use crate::jwt::decode_claims;

fn endpoints() -> Endpoints {
    let mut e = Endpoints::single("https://acme.symphony.com").unwrap();
    e.session_auth = BaseUrl::parse("sessionAuth", "https://acme-api.symphony.com").unwrap();
    e
}

#[derive(Debug)]
struct Fixed;
impl JwtSigner for Fixed {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![1, 2, 3])
    }
}

fn rsa_app() -> ExtensionApp {
    ExtensionApp::new(endpoints(), AppId::new("my-app").unwrap(), AppCredential::Rsa(Arc::new(Fixed)))
}

fn cert_app() -> ExtensionApp {
    ExtensionApp::new(endpoints(), AppId::new("my-app").unwrap(), AppCredential::Certificate)
}

fn app_token() -> AppToken {
    AppToken::new("a1b2c3d4").unwrap()
}

fn response(status: u16, body: &str) -> HttpResponse {
    http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
}

const ANSWER: &str =
    r#"{"appId":"my-app","appToken":"a1b2c3d4","symphonyToken":"s3cr3t-symphony","expireAt":1539636528288}"#;

#[test]
fn e1_posts_the_app_token_and_a_jwt_for_the_app_id_to_the_pod() {
    let now = UnixTime::from_secs(1_700_000_000);
    let request = rsa_app().authenticate_request(&app_token(), now).unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "https://acme.symphony.com/login/v1/pubkey/app/authenticate/extensionApp");
    assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(request.headers()[ACCEPT], "application/json");
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 2);
    assert_eq!(body["appToken"], "a1b2c3d4");
    let claims = decode_claims(body["authToken"].as_str().unwrap()).unwrap();
    assert_eq!(serde_json::Value::Object(claims), serde_json::json!({"sub": "my-app", "exp": 1_700_000_240}));
}

#[test]
fn e2_posts_only_the_app_token_to_the_session_auth_host() {
    let request = cert_app().authenticate_request(&app_token(), UnixTime::from_secs(1)).unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri(), "https://acme-api.symphony.com/sessionauth/v1/authenticate/extensionApp");
    assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(request.body(), br#"{"appToken":"a1b2c3d4"}"#);
    assert!(cert_app().uses_client_certificate());
    assert!(!rsa_app().uses_client_certificate());
}

#[test]
fn app_tokens_with_json_specials_stay_valid_json() {
    let token = AppToken::new(r#"a"b\c"#).unwrap();
    let request = cert_app().authenticate_request(&token, UnixTime::from_secs(1)).unwrap();
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body["appToken"], r#"a"b\c"#);
}

#[test]
fn e3_and_e4_get_the_pod_certificate_from_the_host_of_the_credential() {
    let e3 = rsa_app().pod_certificate_request();
    assert_eq!((e3.method(), e3.uri().to_string()), (&Method::GET, "https://acme.symphony.com/pod/v1/podcert".into()));
    let e4 = cert_app().pod_certificate_request();
    assert_eq!(e4.method(), Method::GET);
    assert_eq!(e4.uri(), "https://acme-api.symphony.com/sessionauth/v1/app/pod/certificate");
    assert!(e4.body().is_empty() && e4.headers().get(CONTENT_TYPE).is_none());
}

#[test]
fn the_answer_is_read_and_checked_against_what_was_sent() {
    let tokens = rsa_app().handle_authenticate(&app_token(), &response(200, ANSWER)).unwrap();
    assert_eq!(tokens.app_id(), "my-app");
    assert_eq!(tokens.symphony_token().expose_secret(), "s3cr3t-symphony");
    assert_eq!(tokens.expire_at(), UnixTime::from_millis(1_539_636_528_288));
    let printed = format!("{tokens:?}");
    assert!(!printed.contains("s3cr3t") && !printed.contains("a1b2c3d4"), "{printed}");

    let other_app = ANSWER.replace("\"my-app\"", "\"other\"");
    assert_eq!(
        rsa_app().handle_authenticate(&app_token(), &response(200, &other_app)).unwrap_err(),
        ExtensionAppError::AppIdMismatch { expected: "my-app".into() }
    );
    let other_token = AppToken::new("zzzzzzzz").unwrap();
    assert_eq!(
        rsa_app().handle_authenticate(&other_token, &response(200, ANSWER)).unwrap_err(),
        ExtensionAppError::AppTokenMismatch
    );
}

#[test]
fn expire_at_may_come_as_digits() {
    let digits = ANSWER.replace("1539636528288", "\"1539636528288\"");
    let tokens = parse_extension_app_tokens(&response(200, &digits)).unwrap();
    assert_eq!(tokens.expire_at().as_millis(), 1_539_636_528_288);
}

#[test]
fn unusable_answers_name_the_status_or_the_field() {
    let parse = |status, body: &str| parse_extension_app_tokens(&response(status, body)).unwrap_err();
    assert_eq!(parse(401, r#"{"code":401,"message":"bad"}"#), ExtensionAppError::Rejected { status: 401 });
    assert_eq!(parse(400, ""), ExtensionAppError::Rejected { status: 400 });
    assert_eq!(parse(500, ""), ExtensionAppError::Status { status: 500 });
    assert_eq!(parse(200, "nope"), protocol(ProtocolProblem::NotJson, None));
    for field in ["appId", "appToken", "symphonyToken", "expireAt"] {
        let mut body: serde_json::Value = serde_json::from_str(ANSWER).unwrap();
        body.as_object_mut().unwrap().remove(field);
        assert_eq!(parse(200, &body.to_string()), protocol(ProtocolProblem::MissingToken, Some(field)), "{field}");
    }
    let empty = ANSWER.replace("s3cr3t-symphony", "");
    assert_eq!(parse(200, &empty), protocol(ProtocolProblem::EmptyToken, Some("symphonyToken")));
    let spaced = ANSWER.replace("s3cr3t-symphony", "s3cr3t symphony");
    let error = parse(200, &spaced);
    assert_eq!(error, protocol(ProtocolProblem::TokenNotAHeaderValue, Some("symphonyToken")));
    assert!(!format!("{error} {error:?}").contains("s3cr3t"));
    let big = format!(r#"{{"appId":"{}"}}"#, "x".repeat(MAX_RESPONSE_BODY));
    assert_eq!(parse(200, &big), protocol(ProtocolProblem::BodyTooLarge, None));
}

#[test]
fn app_tokens_are_hex_of_enough_random_bytes() {
    let token = AppToken::from_random_bytes(&[0xab; 32]).unwrap();
    assert_eq!(token.expose_secret(), "ab".repeat(32));
    assert_eq!(AppToken::from_random_bytes(&[1; 15]).unwrap_err(), AppIdentityError::TooFewRandomBytes(15));
    assert_eq!(format!("{token:?}"), "AppToken(<redacted>)");
    assert_eq!(AppToken::new("a b").unwrap_err(), AppIdentityError::InvalidAppToken);
    assert_eq!(AppId::new("").unwrap_err(), AppIdentityError::InvalidAppId);
    assert_eq!(AppId::new("my app").unwrap_err(), AppIdentityError::InvalidAppId);
}

fn issued(app_token: &str, symphony: &str, expire_at_secs: u64) -> (AppToken, ExtensionAppTokens) {
    let body = format!(
        r#"{{"appId":"my-app","appToken":"{app_token}","symphonyToken":"{symphony}","expireAt":{}}}"#,
        expire_at_secs * 1000
    );
    (AppToken::new(app_token).unwrap(), parse_extension_app_tokens(&response(200, &body)).unwrap())
}

#[test]
fn the_store_checks_pairs_until_they_expire() {
    let mut store = AppTokenStore::new(10);
    let now = UnixTime::from_secs(100);
    let (app, tokens) = issued("app-1", "sym-1", 200);
    assert!(store.insert(&app, &tokens, now));
    let symphony = |s| SymphonyToken::new(s).unwrap();
    assert_eq!(store.check(&app, &symphony("sym-1"), now), Ok(()));
    assert_eq!(store.check(&app, &symphony("sym-2"), now), Err(PairCheckError::Mismatch));
    assert_eq!(store.check(&app, &symphony("sym-"), now), Err(PairCheckError::Mismatch));
    let unknown = AppToken::new("app-2").unwrap();
    assert_eq!(store.check(&unknown, &symphony("sym-1"), now), Err(PairCheckError::UnknownAppToken));
    assert_eq!(store.check(&app, &symphony("sym-1"), UnixTime::from_secs(199)), Ok(()));
    assert_eq!(store.check(&app, &symphony("sym-1"), UnixTime::from_secs(200)), Err(PairCheckError::Expired));
    assert!(store.is_empty(), "an expired entry is dropped when found");
    assert_eq!(store.check(&app, &symphony("sym-1"), now), Err(PairCheckError::UnknownAppToken));
}

#[test]
fn the_store_is_bounded_and_drops_expired_then_soonest_entries() {
    let mut store = AppTokenStore::new(2);
    let now = UnixTime::from_secs(100);
    let (late, late_tokens) = issued("late", "s-late", 500);
    let (soon, soon_tokens) = issued("soon", "s-soon", 300);
    let (third, third_tokens) = issued("third", "s-third", 400);
    assert!(store.insert(&late, &late_tokens, now));
    assert!(store.insert(&soon, &soon_tokens, now));
    assert!(store.insert(&third, &third_tokens, now));
    assert_eq!(store.len(), 2);
    let check = |store: &mut AppTokenStore, app: &AppToken, s: &str, at| {
        store.check(app, &SymphonyToken::new(s).unwrap(), UnixTime::from_secs(at))
    };
    assert_eq!(check(&mut store, &soon, "s-soon", 100), Err(PairCheckError::UnknownAppToken));
    assert_eq!(check(&mut store, &late, "s-late", 100), Ok(()));
    assert_eq!(check(&mut store, &third, "s-third", 100), Ok(()));
    // At 450 "third" has expired: it makes room before "late" would be evicted.
    let (fourth, fourth_tokens) = issued("fourth", "s-fourth", 900);
    assert!(store.insert(&fourth, &fourth_tokens, UnixTime::from_secs(450)));
    assert_eq!(check(&mut store, &late, "s-late", 450), Ok(()));
    assert_eq!(check(&mut store, &fourth, "s-fourth", 450), Ok(()));
    let (stale, stale_tokens) = issued("stale", "s-stale", 100);
    assert!(!store.insert(&stale, &stale_tokens, now), "an answer already expired is not stored");
    let shown = format!("{store:?}");
    assert_eq!(shown, "AppTokenStore { capacity: 2, len: 2, .. }", "sizes only");
    assert!(!shown.contains("s-late") && !shown.contains("late"));
}

#[test]
fn expired_pairs_make_room_before_any_live_one_is_evicted_and_a_renewed_pair_evicts_nothing() {
    let mut store = AppTokenStore::new(3);
    let at = UnixTime::from_secs;
    let pairs: Vec<_> = [("a", 200), ("b", 300), ("c", 400)].map(|(app, exp)| issued(app, app, exp)).into();
    for (app, tokens) in &pairs {
        assert!(store.insert(app, tokens, at(100)));
    }
    assert!(!store.is_empty());
    store.remove_expired(at(300));
    assert_eq!(store.len(), 1, "a (200) and b (300) have expired at 300; c (400) has not");
    let symphony = |s| SymphonyToken::new(s).unwrap();
    assert_eq!(store.check(&pairs[2].0, &symphony("c"), at(300)), Ok(()));

    // Full of expired pairs: a new one drops them all rather than one.
    let mut store = AppTokenStore::new(2);
    let (a, b) = (issued("a", "a", 200), issued("b", "b", 300));
    assert!(store.insert(&a.0, &a.1, at(100)) && store.insert(&b.0, &b.1, at(100)));
    let d = issued("d", "d", 900);
    assert!(store.insert(&d.0, &d.1, at(350)));
    assert_eq!(store.len(), 1);

    // Full of live pairs: renewing one that is stored replaces it and evicts no other.
    let mut store = AppTokenStore::new(2);
    let (a, b) = (issued("a", "a", 200), issued("b", "b", 300));
    assert!(store.insert(&a.0, &a.1, at(100)) && store.insert(&b.0, &b.1, at(100)));
    let renewed = issued("b", "b2", 800);
    assert!(store.insert(&renewed.0, &renewed.1, at(150)));
    assert_eq!(store.len(), 2);
    assert_eq!(store.check(&a.0, &symphony("a"), at(150)), Ok(()), "a stays");
    assert_eq!(store.check(&b.0, &symphony("b2"), at(150)), Ok(()), "b holds its new pair");
    // Below capacity, a new pair leaves expired ones to be dropped when found or when room is needed.
    let mut store = AppTokenStore::new(3);
    assert!(store.insert(&a.0, &a.1, at(100)));
    let e = issued("e", "e", 900);
    assert!(store.insert(&e.0, &e.1, at(250)));
    assert_eq!(store.len(), 2);
}

#[test]
fn a_backend_checks_the_pairs_it_was_answered_with() {
    let mut backend = AppBackend::new(cert_app(), 4);
    let now = UnixTime::from_secs(1_000);
    let (token, request) = backend.authenticate_request(&[0xab; 32], now).unwrap();
    assert_eq!(token.expose_secret(), "ab".repeat(32));
    assert_eq!(request.uri(), cert_app().authenticate_request(&token, now).unwrap().uri());
    let app = token.expose_secret().to_owned();
    let body = format!(r#"{{"appId":"my-app","appToken":"{app}","symphonyToken":"sym-1","expireAt":2000000}}"#);
    assert_eq!(
        backend.handle_authenticate(&token, &response(200, &body), now).unwrap().expire_at(),
        UnixTime::from_secs(2_000)
    );
    let pair = |error| Err(AppBackendError::Pair(error));
    assert_eq!(backend.check_pair(&app, "sym-1", now), Ok(()));
    assert_eq!(backend.check_pair(&app, "sym-2", now), pair(PairCheckError::Mismatch));
    assert_eq!(backend.check_pair(&app, "", now), pair(PairCheckError::Mismatch));
    assert_eq!(backend.check_pair("b0b0", "sym-1", now), pair(PairCheckError::UnknownAppToken));
    assert!(matches!(backend.check_pair("a b", "sym-1", now), Err(AppBackendError::Identity(_))));
    assert_eq!(backend.check_pair(&app, "sym-1", UnixTime::from_secs(2_000)), pair(PairCheckError::Expired));
    let refused = backend.handle_authenticate(&token, &response(401, ""), now).unwrap_err();
    assert_eq!(refused, AppBackendError::Answer(ExtensionAppError::Rejected { status: 401 }));
}

#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
mod user_jwts {
    use symphony_auth_testkit::{PodCertificate as Signer, UserJwt, UserJwtAlgorithm};

    use super::*;
    use crate::user_jwt::{PodCertificate, UserJwtError};

    fn setup() -> (Signer, PodCertificate, SystemTime, UnixTime) {
        let signer = Signer::new().unwrap();
        let body = serde_json::json!({ "certificate": signer.pem() }).to_string();
        let certificate = parse_pod_certificate(&response(200, &body)).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        (signer, certificate, now, UnixTime::from_system_time(now))
    }

    fn app() -> AppId {
        AppId::new("my-app").unwrap()
    }

    #[test]
    fn a_valid_jwt_yields_the_user() {
        let (signer, certificate, now, unix) = setup();
        for algorithm in [UserJwtAlgorithm::Rs512, UserJwtAlgorithm::Rs256] {
            let jwt = signer.mint(&UserJwt::valid("my-app", 12345, "jdoe", now).algorithm(algorithm));
            let claims = certificate.verify_user_jwt(&jwt, &app(), unix).unwrap();
            assert_eq!(claims.user_id, 12345);
            assert_eq!(claims.user.id, Some(12345));
            assert_eq!(claims.user.username.as_deref(), Some("jdoe"));
            assert_eq!(claims.user.company_id, Some(190));
            assert_eq!(claims.issuer.as_deref(), Some(symphony_auth_testkit::USER_JWT_ISSUER));
            assert_eq!(claims.expires_at, UnixTime::from_secs(1_700_000_300));
        }
    }

    #[test]
    fn each_way_to_fail_has_its_own_error_and_none_shows_the_jwt() {
        let (signer, certificate, now, unix) = setup();
        let valid = || UserJwt::valid("my-app", 12345, "jdoe", now);
        let cases: Vec<(String, UserJwtError)> = vec![
            (
                signer.mint(&valid().expired(Duration::from_secs(1))),
                UserJwtError::Expired { expired_at: 1_699_999_999, now: 1_700_000_000 },
            ),
            (signer.mint(&valid().audience("other-app")), UserJwtError::WrongAudience { expected: "my-app".into() }),
            (signer.mint(&valid().without_audience()), UserJwtError::MissingAudience),
            (signer.mint(&valid().signed_by_another_key()), UserJwtError::BadSignature),
            (signer.mint(&valid().non_numeric_subject()), UserJwtError::SubjectNotNumeric),
            (
                signer.mint(&valid().algorithm(UserJwtAlgorithm::None)),
                UserJwtError::UnsupportedAlgorithm("none".into()),
            ),
            ("a.b".into(), UserJwtError::Malformed("not three dot-separated parts")),
            ("!!.e30.c2ln".into(), UserJwtError::Malformed("header is not base64url")),
        ];
        for (jwt, expected) in cases {
            let error = certificate.verify_user_jwt(&jwt, &app(), unix).unwrap_err();
            assert_eq!(error, expected);
            let shown = format!("{error} {error:?}");
            for part in jwt.split('.').filter(|p| p.len() > 8) {
                assert!(!shown.contains(part), "{shown}");
            }
        }
    }

    #[test]
    fn an_audience_array_must_hold_the_app_id() {
        let (signer, certificate, now, unix) = setup();
        let valid = || UserJwt::valid("my-app", 12345, "jdoe", now);
        let among_others = signer.mint(&valid().audiences(&["other-app", "my-app"]));
        assert_eq!(certificate.verify_user_jwt(&among_others, &app(), unix).map(|claims| claims.user_id), Ok(12345));
        let alone = signer.mint(&valid().audiences(&["my-app"]));
        assert_eq!(certificate.verify_user_jwt(&alone, &app(), unix).map(|claims| claims.user_id), Ok(12345));
        for audiences in [&["other-app"][..], &["other-app", "my-app-2"], &[]] {
            let jwt = signer.mint(&valid().audiences(audiences));
            assert_eq!(
                certificate.verify_user_jwt(&jwt, &app(), unix),
                Err(UserJwtError::WrongAudience { expected: "my-app".into() }),
                "{audiences:?}"
            );
        }
    }

    #[test]
    fn a_backend_fetches_the_pod_certificate_once_and_verifies_with_it() {
        let (signer, _, now, unix) = setup();
        let mut backend = AppBackend::new(rsa_app(), 4);
        let request = backend.pod_certificate_request().expect("not fetched yet");
        assert_eq!(request.uri(), rsa_app().pod_certificate_request().uri());
        let jwt = signer.mint(&UserJwt::valid("my-app", 12345, "jdoe", now));
        let not_fetched = ExtensionAppError::Certificate("the pod certificate was not fetched");
        assert_eq!(backend.verify_user_jwt(&jwt, unix), Err(AppBackendError::Answer(not_fetched)));
        let refused = backend.handle_pod_certificate(&response(401, "")).unwrap_err();
        assert_eq!(refused, AppBackendError::Answer(ExtensionAppError::Rejected { status: 401 }));
        assert!(backend.pod_certificate_request().is_some(), "a refusal keeps nothing");
        let body = serde_json::json!({ "certificate": signer.pem() }).to_string();
        assert_eq!(backend.handle_pod_certificate(&response(200, &body)), Ok(()));
        assert!(backend.pod_certificate_request().is_none(), "fetched once");
        assert_eq!(backend.verify_user_jwt(&jwt, unix).map(|claims| claims.user_id), Ok(12345));
        let other = signer.mint(&UserJwt::valid("other-app", 12345, "jdoe", now));
        let wrong = UserJwtError::WrongAudience { expected: "my-app".into() };
        assert_eq!(backend.verify_user_jwt(&other, unix), Err(AppBackendError::UserJwt(wrong)));
    }

    #[test]
    fn a_tampered_payload_breaks_the_signature() {
        let (signer, certificate, now, unix) = setup();
        let jwt = signer.mint(&UserJwt::valid("my-app", 12345, "jdoe", now));
        let forged = signer.mint(&UserJwt::valid("my-app", 99999, "root", now));
        let mut parts: Vec<&str> = jwt.split('.').collect();
        parts[1] = forged.split('.').nth(1).unwrap();
        let tampered = parts.join(".");
        assert_eq!(certificate.verify_user_jwt(&tampered, &app(), unix), Err(UserJwtError::BadSignature));
    }

    #[test]
    fn the_expiry_is_checked_at_the_given_time() {
        let (signer, certificate, now, _) = setup();
        let jwt = signer.mint(&UserJwt::valid("my-app", 1, "a", now));
        assert!(certificate.verify_user_jwt(&jwt, &app(), UnixTime::from_secs(1_700_000_299)).is_ok());
        assert!(matches!(
            certificate.verify_user_jwt(&jwt, &app(), UnixTime::from_secs(1_700_000_300)),
            Err(UserJwtError::Expired { .. })
        ));
    }

    #[test]
    fn a_pod_certificate_prints_the_length_of_its_key_only() {
        let (_, certificate, _, _) = setup();
        let printed = format!("{certificate:?}");
        assert!(printed.starts_with("PodCertificate { spki_len: "), "{printed}");
    }

    /// The certificate parses as X.509 (its signature is not checked), but the RSA key inside is not one.
    #[cfg(feature = "rsa-signer")]
    #[test]
    fn a_pod_certificate_with_a_malformed_rsa_key_is_refused() {
        use x509_cert::der::Decode as _;
        let (signer, _, _, _) = setup();
        let mut der = pem_rfc7468::decode_vec(signer.pem().as_bytes()).unwrap().1;
        let parsed = x509_cert::Certificate::from_der(&der).unwrap();
        let pkcs1 = parsed.tbs_certificate().subject_public_key_info().subject_public_key.raw_bytes().to_vec();
        let at = der.windows(pkcs1.len()).position(|w| w == pkcs1).unwrap();
        // `30 82 LL LL 02 ...`: the modulus's INTEGER tag becomes an OCTET STRING.
        assert_eq!((pkcs1[0], pkcs1[1], pkcs1[4]), (0x30, 0x82, 0x02));
        der[at + 4] = 0x04;
        assert_eq!(PodCertificate::from_der(&der).unwrap_err(), "the RSA key is malformed");
    }

    #[test]
    fn pod_certificates_must_be_x509_with_an_rsa_key() {
        let parse = |pem: &str| {
            let body = serde_json::json!({ "certificate": pem }).to_string();
            parse_pod_certificate(&response(200, &body)).unwrap_err()
        };
        assert_eq!(parse("PEM_content"), ExtensionAppError::Certificate("not PEM"));
        assert_eq!(
            parse(include_str!("../../../fixtures/keys/bot-2048.pub.pem")),
            ExtensionAppError::Certificate("no CERTIFICATE block")
        );
        assert_eq!(
            parse(include_str!("../../../fixtures/certs/ec-bot.pem")),
            ExtensionAppError::Certificate("the certificate's key is not RSA")
        );
        assert_eq!(
            parse("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            ExtensionAppError::Certificate("not an X.509 certificate")
        );
        assert_eq!(parse_pod_certificate(&response(401, "")).unwrap_err(), ExtensionAppError::Rejected { status: 401 });
    }
}

#[test]
fn answers_fill_the_body_bound_exactly_and_one_byte_more_is_refused() {
    let full = format!("{ANSWER}{}", " ".repeat(MAX_RESPONSE_BODY - ANSWER.len()));
    assert_eq!(parse_extension_app_tokens(&response(200, &full)).unwrap().app_id(), "my-app");
    assert_eq!(
        parse_extension_app_tokens(&response(200, &format!("{full} "))).unwrap_err(),
        protocol(ProtocolProblem::BodyTooLarge, None)
    );
}

#[test]
fn the_fewest_random_bytes_allowed_make_an_app_token() {
    let token = AppToken::from_random_bytes(&[0x0f; MIN_APP_TOKEN_RANDOM_BYTES]).unwrap();
    assert_eq!(token.expose_secret(), "0f".repeat(MIN_APP_TOKEN_RANDOM_BYTES));
}
