//! The machine driven through whole scenarios in virtual time: first login, expiry and re-login, retries, simplified
//! key delivery, bad credentials, malformed answers, aborted logins.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{BrokenSigner, Reply, START, Sim, endpoints, rsa_config, session_jwt};
use symphony_auth_core::{
    AuthError, Authenticator, Config, Event, FailureCause, Generation, KeyManagerOutcome, KeyManagerPolicy,
    LoginEndpoint, ProtocolProblem, RetryPolicy, State, TransportFailure, TransportKind, UnauthorizedOutcome,
    UsageError,
};

const SESSION: LoginEndpoint = LoginEndpoint::RsaSession;
const KM: LoginEndpoint = LoginEndpoint::RsaKeyManager;

fn plain_pod(endpoint: LoginEndpoint, _: usize) -> Reply {
    match endpoint {
        LoginEndpoint::RsaSession | LoginEndpoint::CertificateSession => Reply::Ok("session-1"),
        _ => Reply::Ok("km-1"),
    }
}

#[test]
fn first_login_sends_both_logins_together_and_yields_both_tokens() {
    let mut sim = Sim::new(rsa_config(10));
    assert_eq!(sim.machine.state(), State::NeedsSession);
    assert!(sim.machine.start());
    assert!(!sim.machine.start(), "a second start while logging in does nothing");
    let event = sim.drive(plain_pod);
    assert_eq!(
        event,
        Event::Authenticated { generation: Generation::from_u64(1), key_manager: KeyManagerOutcome::Obtained }
    );
    assert_eq!(sim.sent.len(), 2);
    assert_eq!(sim.sent[0].batch, sim.sent[1].batch, "parallel login sends both in one batch");
    assert_eq!(sim.machine.state(), State::Ready);
    let tokens = sim.machine.tokens().unwrap();
    assert_eq!(tokens.session().expose_secret(), "session-1");
    assert_eq!(tokens.key_manager().unwrap().expose_secret(), "km-1");
    assert!(!sim.machine.start(), "no login while tokens are valid");
}

#[test]
fn sequential_login_waits_for_the_session_and_shows_needs_key_manager() {
    let mut sim = Sim::new(rsa_config(10).with_parallel_login(false));
    sim.machine.start();
    let first = sim.machine.poll_request(START).unwrap();
    assert_eq!(first.endpoint, SESSION);
    assert!(sim.machine.poll_request(START).is_none(), "the key-manager login waits");
    let ok = support::response(200, support::token_body("s"), None);
    sim.machine.handle_response(first.id, &ok, START).unwrap();
    assert_eq!(sim.machine.state(), State::NeedsKeyManager);
    let second = sim.machine.poll_request(START).unwrap();
    assert_eq!(second.endpoint, KM);
    sim.machine.handle_response(second.id, &ok, START).unwrap();
    assert_eq!(sim.machine.state(), State::Ready);
}

#[test]
fn a_401_on_the_current_generation_expires_and_relogs_once() {
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    sim.drive(plain_pod);
    let g1 = sim.machine.tokens().unwrap().generation();
    assert_eq!(sim.machine.report_unauthorized(g1), Ok(UnauthorizedOutcome::LoginStarted));
    assert_eq!(sim.machine.state(), State::Expired);
    assert!(sim.machine.tokens().is_none(), "expired tokens are not handed out");
    for _ in 0..10 {
        assert_eq!(sim.machine.report_unauthorized(g1), Ok(UnauthorizedOutcome::LoginInProgress));
    }
    let event = sim.drive(plain_pod);
    assert!(matches!(event, Event::Authenticated { generation, .. } if generation.get() == 2));
    assert_eq!(sim.sent.len(), 4, "one re-login: two requests");
    assert!(sim.events.contains(&Event::Expired { generation: g1 }));
    assert_eq!(
        sim.machine.report_unauthorized(g1),
        Ok(UnauthorizedOutcome::Stale { current: Generation::from_u64(2) })
    );
    assert_eq!(
        sim.machine.report_unauthorized(Generation::from_u64(3)),
        Err(UsageError::UnknownGeneration { reported: 3, latest: 2 })
    );
}

#[test]
fn server_errors_are_retried_with_the_policy_waits() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.machine.start();
    let event = sim.drive(|_, n| if n <= 3 { Reply::Status(503) } else { Reply::Ok("s") });
    assert!(matches!(event, Event::Authenticated { key_manager: KeyManagerOutcome::Disabled, .. }));
    let waits: Vec<Duration> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled { delay, cause: FailureCause::Status(503), .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)]);
    assert_eq!(sim.now.saturating_since(START), Duration::from_millis(3500), "exactly the waits, in virtual time");
    assert_eq!(sim.sent.len(), 4);
}

#[test]
fn retry_after_is_honoured_and_capped() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.machine.start();
    sim.drive(|_, n| match n {
        1 => Reply::StatusWith(429, "retry-after", "7"),
        2 => Reply::StatusWith(503, "retry-after", "86400"),
        _ => Reply::Ok("s"),
    });
    assert_eq!(sim.sent[1].at.saturating_since(sim.sent[0].at), Duration::from_secs(7));
    assert_eq!(sim.sent[2].at.saturating_since(sim.sent[1].at), Duration::from_secs(300), "capped by the policy");
}

#[test]
fn retries_stop_at_the_policy_limit() {
    let mut sim = Sim::new(rsa_config(4).with_key_manager(KeyManagerPolicy::Never));
    sim.machine.start();
    let event = sim.drive(|_, _| Reply::Fail(TransportKind::Connect));
    match event {
        Event::LoginFailed(AuthError::Unavailable { endpoint, username, attempts, last }) => {
            assert_eq!((endpoint, username.as_str(), attempts), (SESSION, "bot.user", 4));
            assert!(matches!(last, FailureCause::Transport(TransportFailure { kind: TransportKind::Connect, .. })));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.sent.len(), 4);
    assert_eq!(sim.machine.state(), State::NeedsSession);
}

#[test]
fn rejected_credentials_fail_at_once_and_the_machine_stays_usable() {
    for status in [400, 401, 403, 407] {
        let mut sim = Sim::new(rsa_config(10));
        sim.machine.start();
        let event = sim.drive(|endpoint, _| {
            if endpoint == SESSION { Reply::Body(status, r#"{"code":401,"message":"bad JWT"}"#) } else { Reply::Drop }
        });
        match &event {
            Event::LoginFailed(AuthError::Rejected { endpoint, username, status: s, server_message, .. }) => {
                assert_eq!((*endpoint, username.as_str(), *s), (SESSION, "bot.user", status));
                assert_eq!(server_message.as_deref(), Some("bad JWT"));
            }
            other => panic!("{other:?}"),
        }
        let message = match event {
            Event::LoginFailed(e) => e.to_string(),
            _ => unreachable!(),
        };
        assert!(message.contains("bot.user") && message.contains("/login/pubkey/authenticate"), "{message}");
        assert_eq!(sim.endpoints_sent().iter().filter(|e| **e == SESSION).count(), 1, "never retried");
        assert_eq!(sim.machine.state(), State::NeedsSession);
        assert!(sim.machine.start(), "a later attempt can be made");
        assert!(matches!(sim.drive(plain_pod), Event::Authenticated { .. }));
    }
}

#[test]
fn malformed_answers_are_protocol_errors_that_keep_no_success_body() {
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    let event = sim
        .drive(|endpoint, _| if endpoint == SESSION { Reply::Body(200, "<html>secret</html>") } else { Reply::Drop });
    assert_eq!(
        event,
        Event::LoginFailed(AuthError::Protocol {
            endpoint: SESSION,
            status: 200,
            problem: ProtocolProblem::NotJson,
            body_prefix: String::new()
        })
    );
}

#[test]
fn tls_failures_are_not_retried() {
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    let event = sim.drive(|_, _| Reply::Fail(TransportKind::Tls));
    assert!(matches!(
        event,
        Event::LoginFailed(AuthError::Transport { failure: TransportFailure { kind: TransportKind::Tls, .. }, .. })
    ));
    assert_eq!(sim.machine.poll_timeout(), None);
}

#[test]
fn simplified_key_delivery_skips_the_key_manager_and_is_remembered() {
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    let skd = session_jwt(true);
    let skd: &'static str = Box::leak(skd.into_boxed_str());
    // The key manager never answers: with SKD the login must not wait for it.
    let event = sim.drive(|endpoint, _| if endpoint == SESSION { Reply::Ok(skd) } else { Reply::Drop });
    assert!(matches!(
        event,
        Event::Authenticated { key_manager: KeyManagerOutcome::SkippedBySimplifiedKeyDelivery, .. }
    ));
    let tokens = sim.machine.tokens().unwrap();
    assert!(tokens.simplified_key_delivery() && tokens.key_manager().is_none());
    // The abandoned key-manager request may still answer: it is accepted and ignored.
    let km_id = symphony_auth_core::RequestId::from_u64(2);
    assert_eq!(
        sim.machine.handle_response(km_id, &support::response(200, support::token_body("late"), None), sim.now),
        Ok(())
    );
    assert!(sim.machine.tokens().unwrap().key_manager().is_none());
    // Re-login: the pod granted SKD last time, so the session login goes alone.
    sim.machine.report_unauthorized(tokens.generation()).unwrap();
    let before = sim.sent.len();
    sim.drive(|endpoint, _| if endpoint == SESSION { Reply::Ok(skd) } else { Reply::Drop });
    assert_eq!(&sim.endpoints_sent()[before..], [SESSION]);
}

#[test]
fn with_simplified_key_delivery_a_key_manager_failure_does_not_fail_the_login() {
    let skd: &'static str = Box::leak(session_jwt(true).into_boxed_str());
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    // The key manager fails first (rejected), then the session arrives with SKD.
    let mut km_first = true;
    let mut pending_session = None;
    let first: Vec<_> = std::iter::from_fn(|| sim.machine.poll_request(START)).collect();
    for request in first {
        if request.endpoint == KM && km_first {
            km_first = false;
            sim.machine.handle_response(request.id, &support::response(403, String::new(), None), START).unwrap();
        } else {
            pending_session = Some(request.id);
        }
    }
    assert!(sim.machine.poll_event().is_none(), "the key-manager failure waits for the session's verdict");
    sim.machine
        .handle_response(pending_session.unwrap(), &support::response(200, support::token_body(skd), None), START)
        .unwrap();
    assert!(matches!(sim.machine.poll_event(), Some(Event::Authenticated { .. })));

    // Without SKD the same failure fails the login.
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    let event = sim.drive(|endpoint, _| if endpoint == KM { Reply::Status(403) } else { Reply::Ok("plain-session") });
    assert!(matches!(event, Event::LoginFailed(AuthError::Rejected { endpoint: KM, status: 403, .. })));
}

#[test]
fn key_manager_always_fails_the_login_even_under_skd() {
    let skd: &'static str = Box::leak(session_jwt(true).into_boxed_str());
    let mut sim = Sim::new(rsa_config(2).with_key_manager(KeyManagerPolicy::Always));
    sim.machine.start();
    let event = sim.drive(|endpoint, _| if endpoint == KM { Reply::Status(503) } else { Reply::Ok(skd) });
    assert!(matches!(event, Event::LoginFailed(AuthError::Unavailable { endpoint: KM, attempts: 2, .. })));
}

#[test]
fn certificate_logins_send_no_body_to_the_certificate_endpoints() {
    let config = Config::certificate(endpoints(), "bot.user").unwrap();
    let mut sim = Sim::new(config);
    sim.machine.start();
    assert!(matches!(sim.drive(plain_pod), Event::Authenticated { .. }));
    let mut sent = sim.endpoints_sent();
    sent.sort_by_key(|e| e.path());
    assert_eq!(sent, [LoginEndpoint::CertificateKeyManager, LoginEndpoint::CertificateSession]);
    assert!(sim.sent.iter().all(|s| s.body_empty && !s.has_content_type));
}

#[test]
fn an_aborted_login_can_start_afresh_and_late_answers_are_ignored() {
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.start();
    let lost: Vec<_> = std::iter::from_fn(|| sim.machine.poll_request(START)).collect();
    assert_eq!(lost.len(), 2);
    assert!(sim.machine.abort_login());
    assert!(!sim.machine.is_logging_in());
    let ok = support::response(200, support::token_body("late"), None);
    assert_eq!(sim.machine.handle_response(lost[0].id, &ok, START), Ok(()));
    assert!(sim.machine.tokens().is_none(), "an abandoned answer yields no tokens");
    assert!(sim.machine.start());
    assert!(matches!(sim.drive(plain_pod), Event::Authenticated { .. }));
    assert_eq!(
        sim.machine.handle_response(symphony_auth_core::RequestId::from_u64(99), &ok, START),
        Err(UsageError::UnknownRequest(99))
    );
}

#[test]
fn a_failing_signer_fails_the_login_with_its_reason() {
    let config = Config::rsa(endpoints(), "bot.user", Arc::new(BrokenSigner)).unwrap();
    let mut machine = Authenticator::new(config, 1);
    machine.start();
    assert!(machine.poll_request(START).is_none());
    match machine.poll_event() {
        Some(Event::LoginFailed(AuthError::Signing(e))) => assert_eq!(e.to_string(), "signing failed: HSM unavailable"),
        other => panic!("{other:?}"),
    }
    assert!(!machine.is_logging_in());
}

#[test]
fn the_jwt_is_fresh_for_every_attempt() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.machine.start();
    let first = sim.machine.poll_request(START).unwrap();
    sim.machine.handle_response(first.id, &support::response(503, String::new(), None), START).unwrap();
    let later = START.saturating_add(Duration::from_secs(1));
    let second = sim.machine.poll_request(later).unwrap();
    let exp = |r: &symphony_auth_core::LoginRequest| {
        let body: serde_json::Value = serde_json::from_slice(r.request.body()).unwrap();
        symphony_auth_core::decode_claims(body["token"].as_str().unwrap()).unwrap()["exp"].as_u64().unwrap()
    };
    assert_eq!(exp(&first), START.as_secs() + 240);
    assert_eq!(exp(&second), START.as_secs() + 241);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        let retry = RetryPolicy::default();
        let config = rsa_config(10).with_retry(retry).with_key_manager(KeyManagerPolicy::Never);
        let mut sim = Sim::new(config);
        sim.machine = Authenticator::new(sim.machine.config().clone(), seed);
        sim.machine.start();
        sim.drive(|_, n| if n < 6 { Reply::Status(500) } else { Reply::Ok("s") });
        sim.events
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12), "jitter depends on the seed");
}

#[test]
fn both_legs_of_a_parallel_login_share_one_signature() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);
    impl symphony_auth_core::JwtSigner for Counting {
        fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, symphony_auth_core::SignError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            support::signer().sign_rs512(message)
        }
    }

    let signer = Arc::new(Counting::default());
    let config = Config::rsa(endpoints(), "bot.user", signer.clone()).unwrap();
    let mut sim = Sim::new(config);
    sim.machine.start();
    let batch: Vec<_> = std::iter::from_fn(|| sim.machine.poll_request(START)).collect();
    assert_eq!(batch.len(), 2);
    assert_eq!(signer.0.load(Ordering::SeqCst), 1, "RS512 is deterministic: the same second gives the same JWT");
    assert_eq!(batch[0].request.body(), batch[1].request.body());
    // A retry a second later needs a fresh JWT.
    sim.machine.handle_response(batch[0].id, &support::response(503, String::new(), None), START).unwrap();
    let later = START.saturating_add(Duration::from_secs(1));
    let retry = sim.machine.poll_request(later).unwrap();
    assert_eq!(signer.0.load(Ordering::SeqCst), 2);
    assert_ne!(retry.request.body(), batch[1].request.body());
}

/// An RSA bot whose agent has a host of its own, so that SKD depends on the agent's version.
fn dedicated_agent_config() -> Config {
    let mut endpoints = endpoints();
    endpoints.agent = symphony_auth_core::BaseUrl::parse("agent", "https://agent.example:8443").unwrap();
    rsa_config(10).with_endpoints_for_test(endpoints).with_parallel_login(false)
}

trait WithEndpoints {
    fn with_endpoints_for_test(self, endpoints: symphony_auth_core::Endpoints) -> Self;
}

impl WithEndpoints for Config {
    fn with_endpoints_for_test(self, endpoints: symphony_auth_core::Endpoints) -> Self {
        Config::new(endpoints, self.username().as_str(), self.method().clone())
            .unwrap()
            .with_retry(self.retry().clone())
    }
}

fn agent_info(version: &'static str) -> Reply {
    Reply::Body(200, Box::leak(format!(r#"{{"version":"{version}","onPrem":false,"mt":true}}"#).into_boxed_str()))
}

#[test]
fn with_a_dedicated_agent_skd_needs_an_agent_of_24_12_or_later() {
    let skd: &'static str = Box::leak(session_jwt(true).into_boxed_str());
    for (version, km_expected) in
        [("Agent-24.12.0-1000-Linux", false), ("Agent-25.1.0", false), ("Agent-24.11.3", true)]
    {
        let mut sim = Sim::new(dedicated_agent_config());
        sim.machine.start();
        let event = sim.drive(|endpoint, _| match endpoint {
            LoginEndpoint::AgentVersion => agent_info(version),
            SESSION => Reply::Ok(skd),
            _ => Reply::Ok("km"),
        });
        let sent = sim.endpoints_sent();
        assert_eq!(sent[..2], [SESSION, LoginEndpoint::AgentVersion], "{version}");
        assert_eq!(sent.contains(&KM), km_expected, "{version}: {sent:?}");
        let expected =
            if km_expected { KeyManagerOutcome::Obtained } else { KeyManagerOutcome::SkippedBySimplifiedKeyDelivery };
        assert!(
            matches!(event, Event::Authenticated { key_manager, .. } if key_manager == expected),
            "{version}: {event:?}"
        );
    }
}

#[test]
fn an_agent_that_cannot_tell_its_version_gets_the_key_manager() {
    let skd: &'static str = Box::leak(session_jwt(true).into_boxed_str());
    for answer in
        [Reply::Status(404), Reply::Body(200, r#"{"version":"unknown"}"#), Reply::Fail(TransportKind::Connect)]
    {
        let mut sim = Sim::new(dedicated_agent_config());
        sim.machine.start();
        let event = sim.drive(|endpoint, _| match endpoint {
            LoginEndpoint::AgentVersion => answer.clone(),
            SESSION => Reply::Ok(skd),
            _ => Reply::Ok("km"),
        });
        assert!(matches!(event, Event::Authenticated { key_manager: KeyManagerOutcome::Obtained, .. }), "{answer:?}");
        assert_eq!(
            sim.endpoints_sent().iter().filter(|e| **e == LoginEndpoint::AgentVersion).count(),
            1,
            "never retried"
        );
    }
}

#[test]
fn without_skd_the_agent_is_not_asked() {
    let mut sim = Sim::new(dedicated_agent_config());
    sim.machine.start();
    sim.drive(plain_pod);
    assert!(!sim.endpoints_sent().contains(&LoginEndpoint::AgentVersion));
}

#[test]
fn the_jwt_can_be_signed_outside_the_machine() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct Counting(AtomicUsize);
    impl symphony_auth_core::JwtSigner for Counting {
        fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, symphony_auth_core::SignError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            support::signer().sign_rs512(message)
        }
    }

    let signer = Arc::new(Counting::default());
    let mut machine = Authenticator::new(Config::rsa(endpoints(), "bot.user", signer.clone()).unwrap(), 1);
    assert!(machine.poll_jwt(START).is_none(), "nothing to sign before a login");
    machine.start();
    let job = machine.poll_jwt(START).expect("both legs are due");
    assert_eq!(job.exp(), START.as_secs() + 240);
    assert_eq!(signer.0.load(Ordering::SeqCst), 0, "handing out the job signs nothing");
    let signed = job.sign();
    machine.supply_jwt(signed);
    assert!(machine.poll_jwt(START).is_none(), "supplied already");
    // A second later (the next second began while signing), the supplied JWT is still used.
    let later = START.saturating_add(Duration::from_secs(1));
    let batch: Vec<_> = std::iter::from_fn(|| machine.poll_request(later)).collect();
    assert_eq!(batch.len(), 2);
    assert_eq!(signer.0.load(Ordering::SeqCst), 1, "one signature, made outside");
    // An answer drops it: the retry needs a fresh one.
    machine.handle_response(batch[0].id, &support::response(503, String::new(), None), later).unwrap();
    let retry_at = machine.poll_timeout().unwrap();
    assert!(machine.poll_jwt(retry_at).is_some());

    // A failed signature fails the login.
    let mut machine = Authenticator::new(support::rsa_config(10), 1);
    machine.start();
    let _job = machine.poll_jwt(START).unwrap();
    machine.supply_jwt(Err(symphony_auth_core::SignError("HSM unplugged".into())));
    assert!(matches!(machine.poll_event(), Some(Event::LoginFailed(AuthError::Signing(_)))));
    assert!(!machine.is_logging_in());

    // Certificate logins sign nothing.
    let mut machine = Authenticator::new(Config::certificate(endpoints(), "bot.user").unwrap(), 1);
    machine.start();
    assert!(machine.poll_jwt(START).is_none());
}
