//! OBO logins through the machine: the app's session, then the user's with it; no key manager; the user step's
//! refusals as typed errors; a 401 on the user's session redoes both steps.

mod support;

use std::sync::Arc;

use support::{Reply, Sim, endpoints, exact_retry, ok, signer};
use symphony_auth_core::{AuthError, Config, Event, KeyManagerOutcome, LoginEndpoint, OboUser, UnauthorizedOutcome};

fn rsa_obo(user: OboUser) -> Config {
    Config::obo_rsa(endpoints(), "my-app", signer(), user).unwrap().with_retry(exact_retry(3))
}

fn cert_obo(user: OboUser) -> Config {
    Config::obo_certificate(endpoints(), "my-app", user).unwrap().with_retry(exact_retry(3))
}

fn obo_answer(token: &str) -> Reply {
    Reply::Body(200, format!(r#"{{"sessionToken":"{token}"}}"#))
}

#[test]
fn rsa_obo_asks_the_app_session_then_the_user_session_with_it() {
    let mut sim = Sim::new(rsa_obo(OboUser::id(12345)));
    let app = sim.send_batch();
    assert_eq!(app.len(), 1, "one step at a time, and no key manager");
    assert_eq!(app[0].endpoint, LoginEndpoint::RsaAppSession);
    assert_eq!(app[0].request.uri(), "https://pod.example/login/pubkey/app/authenticate");
    let body: serde_json::Value = serde_json::from_slice(app[0].request.body()).unwrap();
    let jwt = body["token"].as_str().unwrap();
    let claims = symphony_auth_core::decode_claims(jwt).unwrap();
    assert_eq!(claims["sub"], "my-app", "the app JWT's subject is the app id");
    sim.answer(app[0].id, &ok("app-session"));

    let user = sim.send_batch();
    assert_eq!(user.len(), 1);
    assert_eq!(user[0].endpoint, LoginEndpoint::RsaOboUserId);
    assert_eq!(user[0].request.uri(), "https://pod.example/login/pubkey/app/user/12345/authenticate");
    assert_eq!(user[0].request.headers()["sessionToken"], "app-session");
    assert!(user[0].request.body().is_empty());
    assert!(!user[0].request.headers().contains_key("content-type"));
    sim.answer(user[0].id, &ok("user-session"));

    let tokens = sim.drive(|endpoint, _| panic!("nothing more to send, got {endpoint}")).unwrap();
    assert_eq!(tokens.session().expose_secret(), "user-session");
    assert!(tokens.key_manager().is_none());
    assert_eq!(sim.signatures, 1, "the user step needs no JWT");
    assert!(
        sim.events.iter().any(|e| matches!(e, Event::Authenticated { key_manager: KeyManagerOutcome::Disabled, .. }))
    );
}

#[test]
fn certificate_obo_reads_the_session_token_field() {
    let mut sim = Sim::new(cert_obo(OboUser::username("jdoe").unwrap()));
    let tokens = sim
        .drive(|endpoint, _| match endpoint {
            LoginEndpoint::CertificateAppSession => ok("app-session"),
            LoginEndpoint::CertificateOboUsername => obo_answer("user-session"),
            other => panic!("unexpected {other}"),
        })
        .unwrap();
    assert_eq!(tokens.session().expose_secret(), "user-session");
    assert_eq!(sim.endpoints_sent(), [LoginEndpoint::CertificateAppSession, LoginEndpoint::CertificateOboUsername]);
    assert!(sim.sent.iter().all(|s| s.body.is_empty() && !s.has_content_type));
    assert_eq!(sim.signatures, 0);
}

#[test]
fn a_token_field_in_a_certificate_obo_answer_is_not_the_session() {
    let mut sim = Sim::new(cert_obo(OboUser::id(7)));
    let error = sim
        .drive(|endpoint, _| match endpoint {
            LoginEndpoint::CertificateAppSession => ok("app-session"),
            _ => ok("wrong-shape"),
        })
        .unwrap_err();
    assert!(matches!(error, AuthError::Protocol { endpoint: LoginEndpoint::CertificateOboUserId, .. }), "{error:?}");
}

#[test]
fn refusals_of_the_user_step_say_the_app_is_not_installed_or_the_user_unknown() {
    for status in [401, 403] {
        let mut sim = Sim::new(rsa_obo(OboUser::username("jdoe").unwrap()));
        let error = sim
            .drive(|endpoint, _| match endpoint {
                LoginEndpoint::RsaAppSession => ok("app-session"),
                _ => Reply::Status(status),
            })
            .unwrap_err();
        assert_eq!(
            error,
            AuthError::OboNotInstalled {
                endpoint: LoginEndpoint::RsaOboUsername,
                app_id: "my-app".into(),
                user: "username \"jdoe\"".into(),
                status,
            }
        );
        assert!(error.to_string().contains("has not installed the app"), "{error}");
        assert_eq!(sim.count(LoginEndpoint::RsaOboUsername), 1, "a refusal is not retried");
    }
    let mut sim = Sim::new(cert_obo(OboUser::id(99)));
    let error = sim
        .drive(|endpoint, _| match endpoint {
            LoginEndpoint::CertificateAppSession => ok("app-session"),
            _ => Reply::Body(404, r#"{"code":404,"message":"User not found"}"#.into()),
        })
        .unwrap_err();
    assert_eq!(
        error,
        AuthError::OboUnknownUser { endpoint: LoginEndpoint::CertificateOboUserId, user: "user id 99".into() }
    );
}

#[test]
fn a_refused_app_is_a_rejected_login_not_an_obo_refusal() {
    let mut sim = Sim::new(rsa_obo(OboUser::id(1)));
    let error = sim.drive(|_, _| Reply::Status(401)).unwrap_err();
    assert!(
        matches!(error, AuthError::Rejected { endpoint: LoginEndpoint::RsaAppSession, status: 401, .. }),
        "{error:?}"
    );
}

#[test]
fn a_401_on_the_user_session_redoes_both_steps_once() {
    let mut sim = Sim::new(rsa_obo(OboUser::id(5)));
    let mut pod = |endpoint: LoginEndpoint, n: usize| match endpoint {
        LoginEndpoint::RsaAppSession => ok(&format!("app-{n}")),
        _ => ok(&format!("user-{n}")),
    };
    let first = sim.drive(&mut pod).unwrap();
    assert_eq!(sim.machine.report_unauthorized(first.generation()), Ok(UnauthorizedOutcome::Expired));
    assert_eq!(sim.machine.report_unauthorized(first.generation()), Ok(UnauthorizedOutcome::AlreadyExpired));
    let second = sim.drive(&mut pod).unwrap();
    assert_eq!(second.session().expose_secret(), "user-1", "each drive counts its own requests");
    assert!(second.generation() > first.generation());
    assert_eq!(sim.count(LoginEndpoint::RsaAppSession), 2);
    assert_eq!(sim.count(LoginEndpoint::RsaOboUserId), 2);
}

#[test]
fn a_server_error_at_the_user_step_retries_that_step_alone() {
    let mut sim = Sim::new(rsa_obo(OboUser::id(5)));
    let tokens = sim
        .drive(|endpoint, n| match (endpoint, n) {
            (LoginEndpoint::RsaAppSession, _) => ok("app"),
            (_, 1) => Reply::Status(503),
            _ => ok("user"),
        })
        .unwrap();
    assert_eq!(tokens.session().expose_secret(), "user");
    assert_eq!(
        sim.endpoints_sent(),
        [LoginEndpoint::RsaAppSession, LoginEndpoint::RsaOboUserId, LoginEndpoint::RsaOboUserId]
    );
    let user_requests: Vec<_> = sim.sent.iter().filter(|s| s.endpoint == LoginEndpoint::RsaOboUserId).collect();
    assert!(user_requests[1].at > user_requests[0].at, "the retry waits for its backoff");
}

#[test]
fn obo_configurations_have_no_key_manager() {
    let config = rsa_obo(OboUser::id(5));
    assert_eq!(config.key_manager(), symphony_auth_core::KeyManagerPolicy::Never);
    assert_eq!(config.obo_user(), Some(&OboUser::id(5)));
    assert!(Config::rsa(endpoints(), "bot", Arc::clone(&signer())).unwrap().obo_user().is_none());
}
