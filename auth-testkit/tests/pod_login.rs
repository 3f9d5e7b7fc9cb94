//! The fake's login endpoints against hand-built requests: what the real pod accepts and refuses.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use symphony_auth_testkit::{Endpoint, FakePod, Fault, Peer, Role, TestkitError};

const LOGIN: &str = "/login/pubkey/authenticate";
const RELAY: &str = "/relay/pubkey/authenticate";
const SESSIONAUTH: &str = "/sessionauth/v1/authenticate";
const KEYAUTH: &str = "/keyauth/v1/authenticate";

fn pod() -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bot", BOT_2048_PUB).unwrap();
    pod.add_rsa_bot("big", BOT_4096_PUB).unwrap();
    pod.add_cert_bot("certbot").unwrap();
    pod
}

fn login(pod: &mut FakePod, path: &str, jwt: &str) -> symphony_auth_testkit::Reply {
    pod.handle(t0(), rsa_login(path, jwt), &Peer::in_process())
}

#[test]
fn good_jwt_gets_a_session_jwt_and_an_opaque_key_manager_token() {
    let mut pod = pod();
    let key = key(BOT_2048_KEY);
    let exp = secs(t0()) + 240;

    let session = token(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", exp)), "sessionToken");
    let claims = claims(&session);
    assert_eq!(claims["sub"], "bot");
    assert_eq!(claims["iss"], "symphony");
    assert!(claims["sessionId"].as_str().is_some_and(|s| s.len() == 32));
    assert_eq!(claims["userId"], pod.user_id("bot").unwrap());
    assert_eq!(claims["exp"], secs(t0()) + 3600);
    assert!(claims.get("canUseSimplifiedKeyDelivery").is_none());

    let km = token(&login(&mut pod, RELAY, &login_jwt(&key, "bot", exp)), "keyManagerToken");
    assert!(!km.contains('.') && km.len() == 64, "opaque: {km}");
    assert_ne!(
        token(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", exp)), "sessionToken"),
        session,
        "every login issues a new session"
    );
}

#[test]
fn headers_with_typ_and_4096_bit_keys_are_accepted() {
    let mut pod = pod();
    let big = key(BOT_4096_KEY);
    let exp = secs(t0()) + 240;
    let jwt = jwt_with(&big, &json!({"alg":"RS512","typ":"JWT"}), &json!({"sub":"big","exp":exp}));
    token(&login(&mut pod, LOGIN, &jwt), "sessionToken");
    // Postman's header order, {typ, alg}, and a fractional exp.
    let jwt = jwt_with(&big, &json!({"typ":"JWT","alg":"RS512"}), &json!({"exp":exp as f64 + 0.5,"sub":"big"}));
    token(&login(&mut pod, RELAY, &jwt), "keyManagerToken");
}

#[test]
fn exp_must_lie_in_now_to_now_plus_five_minutes() {
    let mut pod = pod();
    let key = key(BOT_2048_KEY);
    let now = secs(t0());
    assert_eq!(error(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", now)), 401), "JWT expired");
    assert_eq!(error(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", now - 60)), 401), "JWT expired");
    assert!(error(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", now + 301)), 401).contains("5 minutes"));
    token(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", now + 1)), "sessionToken");
    token(&login(&mut pod, LOGIN, &login_jwt(&key, "bot", now + 300)), "sessionToken");
}

#[test]
fn a_skewed_pod_clock_turns_a_good_jwt_bad() {
    let mut pod = pod();
    let key = key(BOT_2048_KEY);
    let jwt = login_jwt(&key, "bot", secs(t0()) + 240);
    pod.set_clock_skew(240);
    assert_eq!(error(&login(&mut pod, LOGIN, &jwt), 401), "JWT expired");
    pod.set_clock_skew(-61);
    assert!(error(&login(&mut pod, LOGIN, &jwt), 401).contains("5 minutes"));
    // Within BDK's budget (PROTOCOL §5): pod 60 s behind or 239 s ahead.
    pod.set_clock_skew(-60);
    token(&login(&mut pod, LOGIN, &jwt), "sessionToken");
    pod.set_clock_skew(239);
    token(&login(&mut pod, LOGIN, &jwt), "sessionToken");
}

#[test]
fn wrong_key_unknown_inactive_and_cert_only_users_get_401() {
    let mut pod = pod();
    let exp = secs(t0()) + 240;
    let other = key(OTHER_2048_KEY);
    assert_eq!(error(&login(&mut pod, LOGIN, &login_jwt(&other, "bot", exp)), 401), "Invalid JWT signature");
    let bot_key = key(BOT_2048_KEY);
    assert_eq!(error(&login(&mut pod, LOGIN, &login_jwt(&bot_key, "nobody", exp)), 401), "Invalid user");
    error(&login(&mut pod, LOGIN, &login_jwt(&bot_key, "certbot", exp)), 401);

    assert!(pod.set_active("bot", false));
    assert_eq!(error(&login(&mut pod, LOGIN, &login_jwt(&bot_key, "bot", exp)), 401), "User is not active");
    assert_eq!(error(&login(&mut pod, RELAY, &login_jwt(&bot_key, "bot", exp)), 401), "User is not active");
    assert!(pod.set_active("bot", true));
    token(&login(&mut pod, LOGIN, &login_jwt(&bot_key, "bot", exp)), "sessionToken");
    assert!(!pod.set_active("nobody", true));
}

#[test]
fn a_signature_does_not_carry_over_to_other_claims() {
    let mut pod = pod();
    pod.add_rsa_bot("twin", BOT_2048_PUB).unwrap();
    let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240);
    let parts: Vec<&str> = jwt.split('.').collect();
    let forged = json!({"sub": "twin", "exp": secs(t0()) + 240}).to_string();
    use base64::Engine as _;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
    let jwt = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(error(&login(&mut pod, LOGIN, &jwt), 401), "Invalid JWT signature");
}

#[test]
fn alg_other_than_rs512_is_refused() {
    let mut pod = pod();
    let key = key(BOT_2048_KEY);
    let claims = json!({"sub": "bot", "exp": secs(t0()) + 240});
    for header in [json!({"alg": "RS256"}), json!({"alg": "none"}), json!({"typ": "JWT"}), json!({"alg": "rs512"})] {
        let jwt = jwt_with(&key, &header, &claims);
        assert_eq!(error(&login(&mut pod, LOGIN, &jwt), 401), "Invalid JWT: algorithm must be RS512", "{header}");
    }
    let unsigned = jwt_with(&key, &json!({"alg": "none"}), &claims);
    let unsigned = format!("{}.", unsigned.rsplit_once('.').unwrap().0);
    error(&login(&mut pod, LOGIN, &unsigned), 401);
}

#[test]
fn malformed_bodies_and_jwts() {
    let mut pod = pod();
    let peer = Peer::in_process();
    for body in [&b"not json"[..], b"", b"[\"token\"]", b"{\"token\":"] {
        let reply = pod.handle(t0(), post(LOGIN, &[("Content-Type", "application/json")], body), &peer);
        error(&reply, 400);
    }
    for body in [json!({}), json!({"token": 5}), json!({"jwt": "a.b.c"})] {
        let reply =
            pod.handle(t0(), post(LOGIN, &[("Content-Type", "application/json")], body.to_string().as_bytes()), &peer);
        error(&reply, 401);
    }
    let good = login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240);
    let (head, sig) = good.rsplit_once('.').unwrap();
    for jwt in [
        "a.b".to_owned(),
        format!("{good}.extra"),
        format!("{head}.{sig}=="),                          // padded base64url
        format!("{head}.{}", sig.replace(['-', '_'], "+")), // standard alphabet
        "e30.e30.AAAA".to_owned(),                          // {} header and claims
        String::new(),
    ] {
        error(&login(&mut pod, LOGIN, &jwt), 401);
    }
}

#[test]
fn rsa_logins_need_a_json_content_type() {
    let mut pod = pod();
    let peer = Peer::in_process();
    let body = json!({ "token": login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240) }).to_string();
    for path in [LOGIN, RELAY] {
        for headers in [&[][..], &[("Content-Type", "text/plain")], &[("Content-Type", "application/jsonx")]] {
            let reply = pod.handle(t0(), post(path, headers, body.as_bytes()), &peer);
            assert!(error(&reply, 415).contains("application/json"), "{path} {headers:?}");
        }
        // Parameters and case do not matter.
        let utf8 = [("content-type", "Application/JSON; charset=UTF-8")];
        assert_eq!(pod.handle(t0(), post(path, &utf8, body.as_bytes()), &peer).status(), Some(200), "{path}");
    }
    assert_eq!(pod.counters().responses(Endpoint::SessionLogin, 415), 3);
    assert_eq!(pod.live_sessions(t0()), 1, "a refused login issues nothing");
}

#[test]
fn certificate_login_needs_a_registered_cn_and_no_body() {
    let mut pod = pod();
    let cert = Peer::with_certificate("certbot");
    let ok = pod.handle(t0(), post(SESSIONAUTH, &[], b""), &cert);
    let session = token(&ok, "sessionToken");
    assert_eq!(claims(&session)["sub"], "certbot");
    token(&pod.handle(t0(), post(KEYAUTH, &[("Accept", "application/json")], b""), &cert), "keyManagerToken");

    let with_body = pod.handle(t0(), post(SESSIONAUTH, &[], b"{\"token\":\"x\"}"), &cert);
    assert!(error(&with_body, 400).contains("no body"));
    let with_type = pod.handle(t0(), post(KEYAUTH, &[("Content-Type", "application/json")], b""), &cert);
    error(&with_type, 400);
    let both = pod.handle(t0(), post(SESSIONAUTH, &[("Content-Type", "application/json")], b"{}"), &cert);
    error(&both, 400);

    let no_cert = pod.handle(t0(), post(SESSIONAUTH, &[], b""), &Peer::in_process());
    assert_eq!(error(&no_cert, 400), "No client certificate presented");
    let unknown = pod.handle(t0(), post(SESSIONAUTH, &[], b""), &Peer::with_certificate("stranger"));
    error(&unknown, 401);
    let rsa_only = pod.handle(t0(), post(KEYAUTH, &[], b""), &Peer::with_certificate("bot"));
    error(&rsa_only, 403);
    pod.set_active("certbot", false);
    error(&pod.handle(t0(), post(SESSIONAUTH, &[], b""), &cert), 401);
}

#[test]
fn invalid_public_keys_and_names_are_refused_at_registration() {
    let mut pod = FakePod::new();
    let weak_pub = {
        use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
        let weak = key(include_str!("../../fixtures/keys/weak-1024.pkcs8.pem"));
        weak.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
    };
    assert!(matches!(pod.add_rsa_bot("weak", &weak_pub), Err(TestkitError::InvalidPublicKey { .. })));
    assert!(matches!(pod.add_rsa_bot("bot", BOT_2048_KEY), Err(TestkitError::InvalidPublicKey { .. })));
    assert!(matches!(pod.add_rsa_bot("a/b", BOT_2048_PUB), Err(TestkitError::InvalidBotName(_))));
    assert_eq!(pod.user_id("weak"), None);
    // Re-keying keeps the id; the new key works and the old one no longer does.
    let id = pod.add_rsa_bot("bot", BOT_2048_PUB).unwrap();
    assert_eq!(pod.add_rsa_bot("bot", OTHER_2048_PUB).unwrap(), id);
    let exp = secs(t0()) + 240;
    error(&login(&mut pod, LOGIN, &login_jwt(&key(BOT_2048_KEY), "bot", exp)), 401);
    token(&login(&mut pod, LOGIN, &login_jwt(&key(OTHER_2048_KEY), "bot", exp)), "sessionToken");
}

#[test]
fn session_lifetime_is_configurable() {
    let mut pod = pod();
    pod.set_session_ttl(Duration::from_secs(90));
    let session =
        token(&login(&mut pod, LOGIN, &login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240)), "sessionToken");
    assert_eq!(claims(&session)["exp"], secs(t0()) + 90);
    assert_eq!(pod.counters().responses(Endpoint::SessionLogin, 200), 1);
}

#[test]
fn a_request_on_another_roles_host_is_not_found_there() {
    let mut pod = pod();
    let jwt = login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240);
    // A fault scripted for the login does not fire for a login that never reaches the login service.
    pod.inject(Endpoint::SessionLogin, 1, Fault::status(503));
    for role in [Role::KeyManager, Role::Agent, Role::SessionAuth, Role::KeyAuth] {
        let reply = pod.handle(t0(), rsa_login(LOGIN, &jwt), &Peer::on(role));
        let message = error(&reply, 404);
        assert!(message.contains("the pod host serves it"), "{role:?}: {message}");
    }
    assert_eq!(pod.pending_faults(Endpoint::SessionLogin), 1);
    assert_eq!(pod.counters().requests(Endpoint::SessionLogin), 0);
    assert_eq!(pod.counters().responses(Endpoint::NotFound, 404), 4);
    error(&pod.handle(t0(), rsa_login(LOGIN, &jwt), &Peer::on(Role::Pod)), 503);
    token(&pod.handle(t0(), rsa_login(LOGIN, &jwt), &Peer::on(Role::Pod)), "sessionToken");
    token(&pod.handle(t0(), rsa_login(RELAY, &jwt), &Peer::on(Role::KeyManager)), "keyManagerToken");
    error(&pod.handle(t0(), rsa_login(RELAY, &jwt), &Peer::on(Role::Pod)), 404);

    // Certificate logins: each on its own mutual-TLS host.
    let on = |role| Peer { role: Some(role), client_cn: Some("certbot".to_owned()) };
    token(&pod.handle(t0(), post(SESSIONAUTH, &[], b""), &on(Role::SessionAuth)), "sessionToken");
    token(&pod.handle(t0(), post(KEYAUTH, &[], b""), &on(Role::KeyAuth)), "keyManagerToken");
    error(&pod.handle(t0(), post(KEYAUTH, &[], b""), &on(Role::SessionAuth)), 404);
    error(&pod.handle(t0(), post(SESSIONAUTH, &[], b""), &on(Role::KeyAuth)), 404);
    // An unknown path is plain 404 on every host.
    assert_eq!(
        error(&pod.handle(t0(), get("/pod/v9/nothing", &[]), &Peer::on(Role::Pod)), 404),
        "No route for GET /pod/v9/nothing"
    );
}
