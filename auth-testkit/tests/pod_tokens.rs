//! Issued tokens against the protected endpoints: sessioninfo and echo, SKD, expiry, revocation.

mod common;

use std::time::Duration;

use common::*;
use symphony_auth_testkit::{DEFAULT_AGENT_VERSION, FakePod, Peer, Reply};

const INFO: &str = "/pod/v2/sessioninfo";
const ECHO: &str = "/agent/v1/util/echo";
const MESSAGE: &[u8] = br#"{"message":"Hello World"}"#;

fn pod() -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bot", BOT_2048_PUB).unwrap();
    pod.add_rsa_bot("other", OTHER_2048_PUB).unwrap();
    pod
}

/// Logs `sub` in on the pod and the key manager at `t0()`.
fn tokens(pod: &mut FakePod, sub: &str, pem: &str) -> (String, String) {
    let key = key(pem);
    let exp = secs(t0()) + 240;
    let peer = Peer::in_process();
    let s = pod.handle(t0(), rsa_login("/login/pubkey/authenticate", &login_jwt(&key, sub, exp)), &peer);
    let k = pod.handle(t0(), rsa_login("/relay/pubkey/authenticate", &login_jwt(&key, sub, exp)), &peer);
    (token(&s, "sessionToken"), token(&k, "keyManagerToken"))
}

fn info(pod: &mut FakePod, after: Duration, session: &str) -> Reply {
    pod.handle(t0() + after, get(INFO, &[("sessionToken", session)]), &Peer::in_process())
}

fn echo(pod: &mut FakePod, session: &str, km: Option<&str>) -> Reply {
    let mut headers = vec![("sessionToken", session), ("Content-Type", "application/json")];
    if let Some(km) = km {
        headers.push(("keyManagerToken", km));
    }
    pod.handle(t0(), post(ECHO, &headers, MESSAGE), &Peer::in_process())
}

#[test]
fn sessioninfo_returns_the_bots_user_record_for_a_live_session() {
    let mut pod = pod();
    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    let reply = info(&mut pod, Duration::ZERO, &session);
    assert_eq!(reply.status(), Some(200));
    let user = reply.json().unwrap();
    assert_eq!(user["id"], pod.user_id("bot").unwrap());
    assert_eq!(user["username"], "bot");
    assert_eq!(user["displayName"], "bot");
    assert!(user["emailAddress"].as_str().unwrap().starts_with("bot@"));
    // Header names are case-insensitive on the wire.
    let lower = pod.handle(t0(), get(INFO, &[("SESSIONTOKEN", &session)]), &Peer::in_process());
    assert_eq!(lower.status(), Some(200));

    for dead in ["", "garbage", km.as_str()] {
        assert_eq!(error(&info(&mut pod, Duration::ZERO, dead), 401), "Invalid session");
    }
    let missing = pod.handle(t0(), get(INFO, &[]), &Peer::in_process());
    assert_eq!(error(&missing, 401), "Invalid session");
}

#[test]
fn sessions_expire_after_the_configured_lifetime() {
    let mut pod = pod();
    pod.set_session_ttl(Duration::from_secs(60));
    let (session, _) = tokens(&mut pod, "bot", BOT_2048_KEY);
    assert_eq!(info(&mut pod, Duration::from_secs(59), &session).status(), Some(200));
    assert_eq!(pod.live_sessions(t0() + Duration::from_secs(59)), 1);
    error(&info(&mut pod, Duration::from_secs(60), &session), 401);
    assert_eq!(pod.live_sessions(t0() + Duration::from_secs(60)), 0);
}

#[test]
fn a_clock_jump_past_the_lifetime_kills_sessions() {
    let mut pod = pod();
    let (session, _) = tokens(&mut pod, "bot", BOT_2048_KEY);
    pod.set_clock_skew(3599);
    assert_eq!(info(&mut pod, Duration::ZERO, &session).status(), Some(200));
    pod.set_clock_skew(3600);
    error(&info(&mut pod, Duration::ZERO, &session), 401);
}

#[test]
fn echo_needs_both_tokens_of_the_same_bot() {
    let mut pod = pod();
    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    let (other_session, other_km) = tokens(&mut pod, "other", OTHER_2048_KEY);

    let ok = echo(&mut pod, &session, Some(&km));
    assert_eq!(ok.status(), Some(200));
    assert_eq!(ok.response().unwrap().body(), MESSAGE);
    assert_eq!(echo(&mut pod, &other_session, Some(&other_km)).status(), Some(200));

    assert_eq!(error(&echo(&mut pod, &session, None), 401), "Invalid key manager token");
    error(&echo(&mut pod, &session, Some("")), 401);
    error(&echo(&mut pod, &session, Some(&other_km)), 401);
    error(&echo(&mut pod, &km, Some(&km)), 401);
    assert_eq!(error(&echo(&mut pod, "dead", Some(&km)), 401), "Invalid session");

    let bad_body = pod.handle(
        t0(),
        post(ECHO, &[("sessionToken", &session), ("keyManagerToken", &km)], b"{oops"),
        &Peer::in_process(),
    );
    error(&bad_body, 400);
}

#[test]
fn with_skd_the_session_alone_passes_echo() {
    let mut pod = pod();
    let (old_session, _) = tokens(&mut pod, "bot", BOT_2048_KEY);
    pod.set_skd(true);
    let (session, _) = tokens(&mut pod, "bot", BOT_2048_KEY);
    assert_eq!(claims(&session)["canUseSimplifiedKeyDelivery"], true);
    assert!(claims(&old_session).get("canUseSimplifiedKeyDelivery").is_none());

    assert_eq!(echo(&mut pod, &session, None).status(), Some(200));
    // BDK-Python sends an empty header under SKD.
    assert_eq!(echo(&mut pod, &session, Some("")).status(), Some(200));
    // A session issued before SKD was switched on still needs its KM token.
    error(&echo(&mut pod, &old_session, None), 401);
}

#[test]
fn with_skd_an_agent_before_24_12_still_needs_the_key_manager_token() {
    let mut pod = pod();
    pod.set_skd(true);
    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    for old in ["Agent-24.11.0-100-Linux", "Agent-23.15.0", "Agent-2.55.0-SNAPSHOT-Linux-4.4.86+", "unknown"] {
        pod.set_agent_version(old);
        assert_eq!(error(&echo(&mut pod, &session, None), 401), "Invalid key manager token", "{old}");
        error(&echo(&mut pod, &session, Some("")), 401);
        // With its key-manager token the SKD session passes, as on any agent.
        assert_eq!(echo(&mut pod, &session, Some(&km)).status(), Some(200), "{old}");
    }
    for new in ["Agent-24.12.0", "Agent-24.12.3-1-Linux", "Agent-25.1.0"] {
        pod.set_agent_version(new);
        assert_eq!(echo(&mut pod, &session, None).status(), Some(200), "{new}");
    }
}

#[test]
fn expire_now_per_token_kind_and_for_all() {
    let mut pod = pod();
    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    pod.expire_key_manager_tokens();
    assert_eq!(info(&mut pod, Duration::ZERO, &session).status(), Some(200));
    error(&echo(&mut pod, &session, Some(&km)), 401);

    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    pod.expire_sessions();
    error(&info(&mut pod, Duration::ZERO, &session), 401);
    assert_eq!(pod.live_key_manager_tokens(t0()), 1);

    let (session, km2) = tokens(&mut pod, "bot", BOT_2048_KEY);
    assert_eq!(echo(&mut pod, &session, Some(&km)).status(), Some(200));
    pod.expire_all();
    error(&info(&mut pod, Duration::ZERO, &session), 401);
    error(&echo(&mut pod, &session, Some(&km2)), 401);
    assert_eq!((pod.live_sessions(t0()), pod.live_key_manager_tokens(t0())), (0, 0));
}

#[test]
fn revoking_one_bot_leaves_the_others_alone() {
    let mut pod = pod();
    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    let (other_session, _) = tokens(&mut pod, "other", OTHER_2048_KEY);
    assert_eq!(pod.revoke_tokens("bot"), 2);
    error(&info(&mut pod, Duration::ZERO, &session), 401);
    error(&echo(&mut pod, &session, Some(&km)), 401);
    assert_eq!(info(&mut pod, Duration::ZERO, &other_session).status(), Some(200));
    // The bot may log in again.
    let (session, _) = tokens(&mut pod, "bot", BOT_2048_KEY);
    assert_eq!(info(&mut pod, Duration::ZERO, &session).status(), Some(200));
    // Deactivation kills its tokens too.
    pod.set_active("bot", false);
    error(&info(&mut pod, Duration::ZERO, &session), 401);
}

#[test]
fn agent_info_health_and_unknown_routes() {
    let mut pod = pod();
    let peer = Peer::in_process();
    let info = pod.handle(t0(), get("/agent/v1/info", &[]), &peer);
    let body = info.json().unwrap();
    assert_eq!(body["version"], DEFAULT_AGENT_VERSION);
    assert_eq!((body["onPrem"].clone(), body["mt"].clone()), (false.into(), true.into()));
    pod.set_agent_version("Agent-23.11.0-1-Linux");
    assert_eq!(pod.handle(t0(), get("/agent/v1/info", &[]), &peer).json().unwrap()["version"], "Agent-23.11.0-1-Linux");

    let health = pod.handle(t0(), get("/agent/v3/health", &[]), &peer);
    assert_eq!(health.json().unwrap(), serde_json::json!({"status": "UP"}));

    error(&pod.handle(t0(), get("/pod/v1/nothing", &[]), &peer), 404);
    error(&pod.handle(t0(), get("/login/pubkey/authenticate", &[]), &peer), 404);
    error(&pod.handle(t0(), post("/agent/v3/health", &[], b""), &peer), 404);
}

#[test]
fn debug_output_holds_no_token_or_key() {
    let mut pod = pod();
    let (session, km) = tokens(&mut pod, "bot", BOT_2048_KEY);
    let reply = info(&mut pod, Duration::ZERO, &session);
    let login = pod.handle(
        t0(),
        rsa_login("/login/pubkey/authenticate", &login_jwt(&key(BOT_2048_KEY), "bot", secs(t0()) + 240)),
        &Peer::in_process(),
    );
    let fresh = token(&login, "sessionToken");
    let shown = format!("{pod:?} {reply:?} {login:?}");
    for secret in [&session, &km, &fresh] {
        assert!(!shown.contains(secret.as_str()));
    }
    assert!(!shown.contains("PRIVATE KEY"));
}
