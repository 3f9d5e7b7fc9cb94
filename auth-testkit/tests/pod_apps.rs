//! The fake pod's apps: OBO logins (O1–O6) with the pod's rules, logout (S2) that ends a session, and G3.

mod common;

use common::{
    BOT_2048_KEY, BOT_2048_PUB, OTHER_2048_KEY, OTHER_2048_PUB, error, get, key, login_jwt, post, rsa_login, secs, t0,
    token,
};
use symphony_auth_testkit::{FakePod, Peer, Role};

const INSTALLED: u64 = 12_345;
const NOT_INSTALLED: u64 = 23_456;

fn pod() -> FakePod {
    let mut pod = FakePod::new();
    pod.add_rsa_app("my-app", BOT_2048_PUB).unwrap();
    pod.add_cert_app("cert-app").unwrap();
    pod.add_rsa_bot("bot", OTHER_2048_PUB).unwrap();
    pod.add_user(INSTALLED, "j.doe", true).unwrap();
    pod.add_user(NOT_INSTALLED, "r.roe", false).unwrap();
    pod
}

fn app_session(pod: &mut FakePod) -> String {
    let jwt = login_jwt(&key(BOT_2048_KEY), "my-app", secs(t0()) + 240);
    token(&pod.handle(t0(), rsa_login("/login/pubkey/app/authenticate", &jwt), &Peer::on(Role::Pod)), "sessionToken")
}

fn with_session(path: &str, session: &str) -> http::Request<Vec<u8>> {
    post(path, &[("sessionToken", session)], b"")
}

#[test]
fn an_app_jwt_is_checked_against_the_apps_own_key() {
    let mut pod = pod();
    assert!(!app_session(&mut pod).is_empty());
    let exp = secs(t0()) + 240;
    let wrong_key = login_jwt(&key(OTHER_2048_KEY), "my-app", exp);
    let reply = pod.handle(t0(), rsa_login("/login/pubkey/app/authenticate", &wrong_key), &Peer::on(Role::Pod));
    assert_eq!(error(&reply, 401), "Invalid JWT signature");
    let a_bot = login_jwt(&key(OTHER_2048_KEY), "bot", exp);
    let reply = pod.handle(t0(), rsa_login("/login/pubkey/app/authenticate", &a_bot), &Peer::on(Role::Pod));
    assert!(error(&reply, 401).contains("no public key registered for this app id"));
    let too_late = login_jwt(&key(BOT_2048_KEY), "my-app", secs(t0()) + 600);
    let reply = pod.handle(t0(), rsa_login("/login/pubkey/app/authenticate", &too_late), &Peer::on(Role::Pod));
    error(&reply, 401);
}

#[test]
fn obo_is_only_for_users_who_installed_the_app() {
    let mut pod = pod();
    let app = app_session(&mut pod);
    let on_pod = Peer::on(Role::Pod);
    let path = format!("/login/pubkey/app/user/{INSTALLED}/authenticate");
    let user = token(&pod.handle(t0(), with_session(&path, &app), &on_pod), "sessionToken");
    let by_name = token(
        &pod.handle(t0(), with_session("/login/pubkey/app/username/j.doe/authenticate", &app), &on_pod),
        "sessionToken",
    );
    assert_ne!(user, by_name);
    let info = pod.handle(t0(), get("/pod/v2/sessioninfo", &[("sessionToken", &user)]), &on_pod);
    assert_eq!(info.json().unwrap()["id"], INSTALLED);
    assert_eq!(info.json().unwrap()["username"], "j.doe");
    assert_eq!(pod.live_obo_sessions(t0()), 2);

    let path = format!("/login/pubkey/app/user/{NOT_INSTALLED}/authenticate");
    assert_eq!(error(&pod.handle(t0(), with_session(&path, &app), &on_pod), 403), "The user has not installed the app");
    error(&pod.handle(t0(), with_session("/login/pubkey/app/user/999/authenticate", &app), &on_pod), 401);
    let path = format!("/login/pubkey/app/user/{INSTALLED}/authenticate");
    assert_eq!(error(&pod.handle(t0(), with_session(&path, &user), &on_pod), 401), "Invalid app session");
    assert_eq!(error(&pod.handle(t0(), post(&path, &[], b""), &on_pod), 401), "Invalid app session");
    assert!(pod.set_installed(NOT_INSTALLED, true));
    let path = format!("/login/pubkey/app/user/{NOT_INSTALLED}/authenticate");
    token(&pod.handle(t0(), with_session(&path, &app), &on_pod), "sessionToken");
}

#[test]
fn certificate_obo_answers_session_token_and_404_for_an_unknown_user() {
    let mut pod = pod();
    let cert_app = Peer { role: Some(Role::SessionAuth), client_cn: Some("cert-app".into()) };
    let reply = pod.handle(t0(), post("/sessionauth/v1/app/authenticate", &[], b""), &cert_app);
    let app = token(&reply, "sessionToken");
    let reply = pod.handle(t0(), with_session("/sessionauth/v1/app/username/j.doe/authenticate", &app), &cert_app);
    assert_eq!(reply.status(), Some(200));
    let user = reply.json().unwrap()["sessionToken"].as_str().unwrap().to_owned();
    assert!(!user.is_empty());
    let reply = pod.handle(t0(), with_session("/sessionauth/v1/app/user/999/authenticate", &app), &cert_app);
    assert_eq!(error(&reply, 404), "User not found");
    let other = Peer { role: Some(Role::SessionAuth), client_cn: Some("bot".into()) };
    let reply = pod.handle(t0(), with_session("/sessionauth/v1/app/username/j.doe/authenticate", &app), &other);
    error(&reply, 403);
    // Served on the session-auth host only.
    let reply =
        pod.handle(t0(), with_session("/sessionauth/v1/app/username/j.doe/authenticate", &app), &Peer::on(Role::Pod));
    error(&reply, 404);
    let unknown = Peer { role: Some(Role::SessionAuth), client_cn: Some("nobody".into()) };
    error(&pod.handle(t0(), post("/sessionauth/v1/app/authenticate", &[], b""), &unknown), 401);
}

#[test]
fn logout_ends_a_session_for_good() {
    let mut pod = pod();
    let app = app_session(&mut pod);
    let path = format!("/login/pubkey/app/user/{INSTALLED}/authenticate");
    let user = token(&pod.handle(t0(), with_session(&path, &app), &Peer::on(Role::Pod)), "sessionToken");
    let cert = Peer { role: Some(Role::SessionAuth), client_cn: Some("bot".into()) };
    let reply = pod.handle(t0(), with_session("/sessionauth/v1/logout", &user), &cert);
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.json().unwrap()["message"], "Logout successful");
    let info = pod.handle(t0(), get("/pod/v2/sessioninfo", &[("sessionToken", &user)]), &Peer::on(Role::Pod));
    error(&info, 401);
    error(&pod.handle(t0(), with_session("/sessionauth/v1/logout", &user), &cert), 401);

    let jwt = login_jwt(&key(OTHER_2048_KEY), "bot", secs(t0()) + 240);
    let bot =
        token(&pod.handle(t0(), rsa_login("/login/pubkey/authenticate", &jwt), &Peer::on(Role::Pod)), "sessionToken");
    assert_eq!(pod.handle(t0(), with_session("/sessionauth/v1/logout", &bot), &cert).status(), Some(200));
    error(&pod.handle(t0(), get("/pod/v2/sessioninfo", &[("sessionToken", &bot)]), &Peer::on(Role::Pod)), 401);
    error(&pod.handle(t0(), post("/sessionauth/v1/logout", &[], b""), &cert), 400);
}

#[test]
fn extended_health_reports_each_service() {
    let mut pod = pod();
    let reply = pod.handle(t0(), get("/agent/v3/health/extended", &[]), &Peer::on(Role::Agent));
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.json().unwrap()["services"]["key_manager"]["status"], "UP");
    pod.set_key_manager_down(true);
    let reply = pod.handle(t0(), get("/agent/v3/health/extended", &[]), &Peer::on(Role::Agent));
    assert_eq!(reply.status(), Some(503));
    assert_eq!(reply.json().unwrap()["services"]["key_manager"]["status"], "DOWN");
}
