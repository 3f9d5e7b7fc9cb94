//! The machine driven through whole scenarios in virtual time through its one output: first login, expiry and
//! re-login, retries, simplified key delivery, bad credentials, malformed answers, abandoned requests, the cool-down
//! after a failed login, and a clock that goes backwards.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{
    BrokenSigner, CountingSigner, Order, Reply, START, Sim, agent_info, dedicated_agent_endpoints, endpoints, ok,
    rsa_config, session_jwt,
};
use symphony_auth_core::{
    AuthError, Authenticator, Config, CoolDown, Event, FailureCause, Generation, KeyManagerOutcome, KeyManagerPolicy,
    LoginEndpoint, Output, ProtocolProblem, RequestId, RetryPolicy, State, TransportFailure, TransportKind,
    UnauthorizedOutcome, UnixTime, UsageError,
};

const SESSION: LoginEndpoint = LoginEndpoint::RsaSession;
const KM: LoginEndpoint = LoginEndpoint::RsaKeyManager;

fn plain_pod(endpoint: LoginEndpoint, _: usize) -> Reply {
    match endpoint {
        LoginEndpoint::RsaSession | LoginEndpoint::CertificateSession => ok("session-1"),
        _ => ok("km-1"),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(offset: Duration) -> UnixTime {
    START.saturating_add(offset)
}

#[test]
fn first_login_sends_both_logins_together_and_yields_both_tokens() {
    let mut sim = Sim::new(rsa_config(10));
    assert_eq!(sim.machine.state(), State::NeedsSession { logging_in: false });
    let tokens = sim.drive(plain_pod).unwrap();
    assert_eq!(tokens.generation(), Generation::from_u64(1));
    assert!(
        sim.events.contains(&Event::Authenticated {
            generation: Generation::from_u64(1),
            key_manager: KeyManagerOutcome::Obtained
        }),
        "{:?}",
        sim.events
    );
    assert_eq!(sim.events[0], Event::LoginStarted { refresh: false });
    assert_eq!(sim.sent.len(), 2);
    assert_eq!(sim.sent[0].batch, sim.sent[1].batch, "parallel login sends both in one batch");
    assert_eq!(sim.machine.state(), State::Ready { generation: Generation::from_u64(1), refreshing: false });
    assert_eq!(tokens.session().expose_secret(), "session-1");
    assert_eq!(tokens.key_manager().unwrap().expose_secret(), "km-1");
    assert!(Arc::ptr_eq(&tokens, &sim.machine.tokens().unwrap()));
    // While the tokens are valid, every poll hands out the same tokens and sends nothing.
    for _ in 0..3 {
        match sim.machine.poll_output(sim.now) {
            Output::Done(Ok(again)) => assert!(Arc::ptr_eq(&again, &tokens)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn a_refresh_while_logging_in_starts_nothing_new() {
    let mut sim = Sim::new(rsa_config(10));
    let batch = sim.send_batch();
    assert_eq!(batch.len(), 2);
    assert!(!sim.machine.refresh(START), "a login is under way");
    assert_eq!(sim.machine.state(), State::NeedsSession { logging_in: true });
    assert!(matches!(sim.machine.poll_output(START), Output::AwaitAnswers));
}

#[test]
fn sequential_login_waits_for_the_session_and_shows_needs_key_manager() {
    let mut sim = Sim::new(rsa_config(10).with_parallel_login(false));
    let first = sim.send_batch();
    assert_eq!(first.iter().map(|r| r.endpoint).collect::<Vec<_>>(), [SESSION], "the key-manager login waits");
    assert!(matches!(sim.machine.poll_output(START), Output::AwaitAnswers));
    sim.answer(first[0].id, &ok("s"));
    assert_eq!(sim.machine.state(), State::NeedsKeyManager);
    assert!(sim.machine.state().is_logging_in());
    let second = sim.send_batch();
    assert_eq!(second.iter().map(|r| r.endpoint).collect::<Vec<_>>(), [KM]);
    assert_eq!(sim.signatures, 1, "the JWT of the same second serves the key-manager login too");
    sim.answer(second[0].id, &ok("k"));
    assert_eq!(sim.machine.state(), State::Ready { generation: Generation::from_u64(1), refreshing: false });
    assert!(matches!(sim.machine.poll_output(START), Output::Done(Ok(_))));
}

#[test]
fn a_401_on_the_current_generation_expires_and_relogs_once() {
    let mut sim = Sim::new(rsa_config(10));
    let g1 = sim.drive(plain_pod).unwrap().generation();
    assert_eq!(sim.machine.report_unauthorized(g1), Ok(UnauthorizedOutcome::Expired));
    assert_eq!(sim.machine.state(), State::Expired { generation: g1, logging_in: false });
    assert!(sim.machine.tokens().is_none(), "expired tokens are not handed out");
    for _ in 0..10 {
        assert_eq!(sim.machine.report_unauthorized(g1), Ok(UnauthorizedOutcome::AlreadyExpired));
    }
    let batch = sim.send_batch();
    assert_eq!(batch.len(), 2);
    assert_eq!(sim.machine.state(), State::Expired { generation: g1, logging_in: true });
    assert_eq!(sim.machine.report_unauthorized(g1), Ok(UnauthorizedOutcome::AlreadyExpired), "during the login");
    for login in batch {
        sim.answer(login.id, &ok("second"));
    }
    let tokens = sim.drive(plain_pod).unwrap();
    assert_eq!(tokens.generation().get(), 2);
    assert_eq!(tokens.session().expose_secret(), "second");
    assert_eq!(sim.sent.len(), 4, "one re-login: two requests");
    assert!(sim.events.contains(&Event::Expired { generation: g1 }));
    assert_eq!(sim.events.iter().filter(|e| matches!(e, Event::Expired { .. })).count(), 1);
    assert_eq!(
        sim.machine.report_unauthorized(g1),
        Ok(UnauthorizedOutcome::Stale { current: Generation::from_u64(2) })
    );
    assert_eq!(sim.machine.state(), State::Ready { generation: Generation::from_u64(2), refreshing: false });
    assert_eq!(
        sim.machine.report_unauthorized(Generation::from_u64(3)),
        Err(UsageError::UnknownGeneration { reported: 3, latest: 2 })
    );
    assert_eq!(
        sim.machine.report_unauthorized(Generation::from_u64(0)),
        Err(UsageError::UnknownGeneration { reported: 0, latest: 2 })
    );
}

#[test]
fn a_401_before_any_login_is_a_usage_error() {
    let mut machine = Authenticator::new(rsa_config(10), 1);
    assert_eq!(
        machine.report_unauthorized(Generation::from_u64(1)),
        Err(UsageError::UnknownGeneration { reported: 1, latest: 0 })
    );
    assert_eq!(machine.latest_generation(), Generation::from_u64(0));
}

#[test]
fn a_refresh_keeps_the_old_tokens_in_use_until_the_new_ones_arrive() {
    let mut sim = Sim::new(rsa_config(10));
    let old = sim.drive(plain_pod).unwrap();
    assert!(sim.machine.refresh(sim.now));
    assert_eq!(sim.machine.state(), State::Ready { generation: old.generation(), refreshing: true });
    assert!(sim.machine.tokens().is_some_and(|t| Arc::ptr_eq(&t, &old)), "the old tokens stay in use");
    let new = sim.drive(|_, _| ok("renewed")).unwrap();
    assert_eq!(new.generation().get(), 2);
    assert_eq!(new.session().expose_secret(), "renewed");
    assert!(sim.events.contains(&Event::LoginStarted { refresh: true }));
}

#[test]
fn a_failed_refresh_is_reported_once_then_the_old_tokens_serve_again() {
    let mut sim = Sim::new(rsa_config(10));
    let old = sim.drive(plain_pod).unwrap();
    sim.machine.refresh(sim.now);
    let error = sim.drive(|_, _| Reply::Status(403)).unwrap_err();
    assert!(matches!(error, AuthError::Rejected { status: 403, .. }), "{error:?}");
    match sim.machine.poll_output(sim.now) {
        Output::Done(Ok(tokens)) => assert!(Arc::ptr_eq(&tokens, &old)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn server_errors_are_retried_with_the_policy_waits() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    let tokens = sim.drive(|_, n| if n <= 3 { Reply::Status(503) } else { ok("s") }).unwrap();
    assert!(tokens.key_manager().is_none());
    assert!(sim.events.contains(&Event::Authenticated {
        generation: Generation::from_u64(1),
        key_manager: KeyManagerOutcome::Disabled
    }));
    assert_eq!(sim.retry_delays(), [Duration::from_millis(500), secs(1), secs(2)]);
    let attempts: Vec<u32> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RetryScheduled { attempt, max_attempts: 10, cause: FailureCause::Status(503), endpoint, .. } => {
                assert_eq!(*endpoint, SESSION);
                Some(*attempt)
            }
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(sim.now.saturating_since(START), Duration::from_millis(3500), "exactly the waits, in virtual time");
    assert_eq!(sim.sent.len(), 4);
}

#[test]
fn retry_after_is_honoured_in_seconds_and_as_a_date_and_capped() {
    let date = httpdate::fmt_http_date(at(secs(7 + 300 + 12)).to_system_time());
    let config = rsa_config(10)
        .with_key_manager(KeyManagerPolicy::Never)
        .with_retry(RetryPolicy::default().with_jitter(0.0).unwrap());
    let mut sim = Sim::new(config);
    sim.drive(|_, n| match n {
        1 => Reply::StatusWith(429, "retry-after", "7".into()),
        2 => Reply::StatusWith(503, "retry-after", "86400".into()),
        3 => Reply::StatusWith(503, "retry-after", date.clone()),
        _ => ok("s"),
    })
    .unwrap();
    let gaps: Vec<Duration> = sim.sent.windows(2).map(|w| w[1].at.saturating_since(w[0].at)).collect();
    assert_eq!(gaps, [secs(7), secs(300), secs(12)], "7 s, then capped by the policy's 300 s, then up to the date");
}

#[test]
fn retries_stop_at_the_policy_limit() {
    let mut sim = Sim::new(rsa_config(4).with_key_manager(KeyManagerPolicy::Never));
    let error = sim.drive(|_, _| Reply::Fail(TransportKind::Connect)).unwrap_err();
    match &error {
        AuthError::Unavailable { endpoint, username, attempts, last } => {
            assert_eq!((*endpoint, username.as_str(), *attempts), (SESSION, "bot.user", 4));
            assert!(matches!(last, FailureCause::Transport(TransportFailure { kind: TransportKind::Connect, .. })));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(sim.sent.len(), 4);
    assert_eq!(sim.retry_delays().len(), 3);
    assert_eq!(sim.machine.state(), State::NeedsSession { logging_in: false });
    assert!(sim.events.contains(&Event::LoginFailed { error, cool_down: secs(1) }));
}

#[test]
fn rejected_credentials_fail_at_once_and_the_machine_stays_usable() {
    for status in [400, 401, 403, 407] {
        let mut sim = Sim::new(rsa_config(10));
        let error = sim
            .drive(|endpoint, _| {
                if endpoint == SESSION {
                    Reply::Body(status, r#"{"code":401,"message":"bad JWT"}"#.into())
                } else {
                    Reply::Drop
                }
            })
            .unwrap_err();
        match &error {
            AuthError::Rejected { endpoint, username, status: s, server_message, .. } => {
                assert_eq!((*endpoint, username.as_str(), *s), (SESSION, "bot.user", status));
                assert_eq!(server_message.as_deref(), Some("bad JWT"));
            }
            other => panic!("{other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains("bot.user") && message.contains("/login/pubkey/authenticate"), "{message}");
        assert_eq!(sim.count(SESSION), 1, "never retried");
        assert_eq!(sim.machine.state(), State::NeedsSession { logging_in: false });
        // After the cool-down, a later attempt can be made.
        sim.advance(secs(1));
        assert_eq!(sim.drive(plain_pod).unwrap().generation().get(), 1);
    }
}

#[test]
fn malformed_answers_are_protocol_errors_that_keep_no_success_body() {
    for (body, problem) in [
        ("<html>secret</html>", ProtocolProblem::NotJson),
        (r#"{"sessionToken":"secret"}"#, ProtocolProblem::MissingToken),
        (r#"{"token":""}"#, ProtocolProblem::EmptyToken),
    ] {
        let mut sim = Sim::new(rsa_config(10));
        let error = sim
            .drive(|endpoint, _| if endpoint == SESSION { Reply::Body(200, body.into()) } else { Reply::Drop })
            .unwrap_err();
        assert_eq!(error, AuthError::Protocol { endpoint: SESSION, status: 200, problem, body_prefix: String::new() });
        assert!(!error.to_string().contains("secret"));
    }
    // An error status keeps the server's message, for diagnosis.
    let mut sim = Sim::new(rsa_config(10));
    let error = sim.drive(|_, _| Reply::Body(404, r#"{"message":"no such path"}"#.into())).unwrap_err();
    assert!(
        matches!(&error, AuthError::Protocol { status: 404, problem: ProtocolProblem::UnexpectedStatus, body_prefix, .. } if body_prefix == "no such path"),
        "{error:?}"
    );
}

#[test]
fn tls_failures_are_not_retried() {
    let mut sim = Sim::new(rsa_config(10));
    let error = sim.drive(|_, _| Reply::Fail(TransportKind::Tls)).unwrap_err();
    assert!(
        matches!(
            error,
            AuthError::Transport { endpoint: SESSION, failure: TransportFailure { kind: TransportKind::Tls, .. }, .. }
        ),
        "{error:?}"
    );
    assert!(sim.retry_delays().is_empty());
    assert_eq!(sim.sent.len(), 2);
}

#[test]
fn simplified_key_delivery_completes_without_the_key_manager_answer_and_is_remembered() {
    let mut sim = Sim::new(rsa_config(10));
    let skd = session_jwt(true);
    // The key manager never answers: with SKD the login must not wait for it.
    let tokens = sim.drive(|endpoint, _| if endpoint == SESSION { ok(&skd) } else { Reply::Drop }).unwrap();
    assert_eq!(sim.count(KM), 1, "the key-manager request went out and is still unanswered");
    assert!(sim.events.contains(&Event::Authenticated {
        generation: Generation::from_u64(1),
        key_manager: KeyManagerOutcome::SkippedBySimplifiedKeyDelivery
    }));
    assert!(tokens.simplified_key_delivery() && tokens.key_manager().is_none());
    // The key-manager request may still answer: it is accepted and ignored.
    let km_id = sim.sent.iter().find(|s| s.endpoint == KM).unwrap().id;
    sim.answer(km_id, &ok("late"));
    assert!(sim.machine.tokens().unwrap().key_manager().is_none());
    assert_eq!(sim.machine.tokens().unwrap().generation().get(), 1);
    // Re-login: the pod granted SKD last time, so the session login goes alone.
    sim.machine.report_unauthorized(tokens.generation()).unwrap();
    let before = sim.sent.len();
    sim.drive(|endpoint, _| if endpoint == SESSION { ok(&skd) } else { Reply::Drop }).unwrap();
    assert_eq!(&sim.endpoints_sent()[before..], [SESSION]);
}

#[test]
fn skd_is_done_while_the_key_manager_request_is_still_out_even_when_the_session_answers_second() {
    let mut sim = Sim::new(rsa_config(10));
    let batch = sim.send_batch();
    let (session, km) = (batch.iter().find(|r| r.endpoint == SESSION).unwrap().id, batch[1].id);
    assert_eq!(batch[1].endpoint, KM);
    sim.answer(session, &ok(&session_jwt(true)));
    match sim.machine.poll_output(START) {
        Output::Done(Ok(tokens)) => assert!(tokens.key_manager().is_none()),
        other => panic!("the login waited for the key manager: {other:?}"),
    }
    // Its answer, late, changes nothing.
    sim.answer(km, &ok("late"));
    assert!(sim.machine.tokens().unwrap().key_manager().is_none());
}

#[test]
fn without_skd_the_login_waits_for_the_key_manager() {
    let mut sim = Sim::new(rsa_config(10));
    let batch = sim.send_batch();
    sim.answer(batch[0].id, &ok(&session_jwt(false)));
    assert!(matches!(sim.machine.poll_output(START), Output::AwaitAnswers));
    assert_eq!(sim.machine.state(), State::NeedsKeyManager);
    sim.answer(batch[1].id, &ok("km"));
    assert!(matches!(sim.machine.poll_output(START), Output::Done(Ok(t)) if t.key_manager().is_some()));
}

#[test]
fn with_simplified_key_delivery_a_key_manager_failure_does_not_fail_the_login() {
    let mut sim = Sim::new(rsa_config(10));
    let batch = sim.send_batch();
    // The key manager fails first (rejected), then the session arrives with SKD.
    sim.answer(batch[1].id, &Reply::Status(403));
    assert!(
        matches!(sim.machine.poll_output(START), Output::AwaitAnswers),
        "the key-manager failure waits for the session's verdict"
    );
    assert!(!sim.events.iter().any(|e| matches!(e, Event::LoginFailed { .. })));
    sim.answer(batch[0].id, &ok(&session_jwt(true)));
    assert!(matches!(sim.machine.poll_output(START), Output::Done(Ok(t)) if t.simplified_key_delivery()));

    // Without SKD the same failure fails the login, whichever answers first.
    for order in [Order::Fifo, Order::Lifo] {
        let mut sim = Sim::new(rsa_config(10));
        sim.order = order;
        let error = sim.drive(|endpoint, _| if endpoint == KM { Reply::Status(403) } else { ok("plain-session") });
        assert!(matches!(error, Err(AuthError::Rejected { endpoint: KM, status: 403, .. })), "{order:?}: {error:?}");
    }
}

#[test]
fn key_manager_always_fails_the_login_even_under_skd() {
    let skd = session_jwt(true);
    let mut sim = Sim::new(rsa_config(2).with_key_manager(KeyManagerPolicy::Always));
    let error = sim.drive(|endpoint, _| if endpoint == KM { Reply::Status(503) } else { ok(&skd) }).unwrap_err();
    assert!(matches!(error, AuthError::Unavailable { endpoint: KM, attempts: 2, .. }), "{error:?}");
    // And a key-manager token is required for success.
    let mut sim = Sim::new(rsa_config(2).with_key_manager(KeyManagerPolicy::Always));
    let tokens = sim.drive(|endpoint, _| if endpoint == KM { ok("km") } else { ok(&skd) }).unwrap();
    assert_eq!(tokens.key_manager().unwrap().expose_secret(), "km");
}

#[test]
fn with_key_manager_always_a_refusal_fails_the_login_without_waiting_for_the_session() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Always));
    let batch = sim.send_batch();
    sim.answer(batch[1].id, &Reply::Status(403));
    match sim.machine.poll_output(START) {
        Output::Done(Err(AuthError::Rejected { endpoint: KM, status: 403, .. })) => {}
        other => panic!("the session answer cannot change the verdict: {other:?}"),
    }
}

#[test]
fn certificate_logins_send_no_body_to_the_certificate_endpoints_and_sign_nothing() {
    let config = Config::certificate(endpoints(), "bot.user").unwrap();
    let mut sim = Sim::new(config);
    sim.drive(plain_pod).unwrap();
    let mut sent = sim.endpoints_sent();
    sent.sort_by_key(|e| e.path());
    assert_eq!(sent, [LoginEndpoint::CertificateKeyManager, LoginEndpoint::CertificateSession]);
    assert!(sim.sent.iter().all(|s| s.body.is_empty() && !s.has_content_type));
    assert_eq!(sim.signatures, 0);
}

#[test]
fn abandoned_requests_count_as_failed_attempts_and_keep_the_backoff() {
    let mut sim = Sim::new(rsa_config(3).with_key_manager(KeyManagerPolicy::Never));
    let lost = sim.send_batch();
    sim.machine.abandon_requests(START);
    assert_eq!(
        sim.machine.poll_output(START).wait(),
        Some(at(Duration::from_millis(500))),
        "the next attempt waits the first backoff"
    );
    // Late answers to abandoned requests are accepted, and yield no tokens.
    sim.answer(lost[0].id, &ok("late"));
    assert!(sim.machine.tokens().is_none());
    sim.now = at(Duration::from_millis(500));
    let second = sim.send_batch();
    sim.machine.abandon_requests(sim.now);
    assert_eq!(sim.machine.poll_output(sim.now).wait(), Some(at(Duration::from_millis(1500))), "the backoff grew");
    sim.now = at(Duration::from_millis(1500));
    sim.send_batch();
    sim.machine.abandon_requests(sim.now);
    match sim.machine.poll_output(sim.now) {
        Output::Done(Err(AuthError::Unavailable { attempts: 3, .. })) => {}
        other => panic!("three abandoned attempts spend a policy of three: {other:?}"),
    }
    sim.answer(second[0].id, &ok("late too"));
    assert_eq!(
        sim.machine.handle_response(RequestId::from_u64(99), &support::response(200, String::new(), None), sim.now),
        Err(UsageError::UnknownRequest(99))
    );
}

#[test]
fn an_abandoned_request_that_ends_the_login_is_answered_once() {
    let mut sim = Sim::new(rsa_config(1).with_key_manager(KeyManagerPolicy::Never));
    let lost = sim.send_batch();
    sim.machine.abandon_requests(START);
    assert!(matches!(sim.machine.poll_output(START), Output::Done(Err(AuthError::Unavailable { attempts: 1, .. }))));
    let late = support::response(200, support::token_body("late"), None);
    assert_eq!(sim.machine.handle_response(lost[0].id, &late, START), Ok(()));
    assert_eq!(
        sim.machine.handle_response(lost[0].id, &late, START),
        Err(UsageError::UnknownRequest(lost[0].id.get())),
        "a second answer to the same request"
    );
}

#[test]
fn an_abandoned_retry_after_still_holds() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    let first = sim.send_batch();
    sim.answer(first[0].id, &Reply::StatusWith(503, "retry-after", "30".into()));
    // The leader goes away while waiting: nothing is out, and the server's wait is kept.
    sim.machine.abandon_requests(START);
    assert_eq!(sim.machine.poll_output(START).wait(), Some(at(secs(30))));
    assert_eq!(sim.machine.poll_output(at(secs(29))).wait(), Some(at(secs(30))));
}

#[test]
fn abandoning_with_nothing_out_or_no_login_changes_nothing() {
    let mut sim = Sim::new(rsa_config(10));
    sim.machine.abandon_requests(START);
    sim.drive(plain_pod).unwrap();
    let before = format!("{:?}", sim.machine);
    sim.machine.abandon_requests(sim.now);
    assert_eq!(format!("{:?}", sim.machine), before);
}

#[test]
fn after_a_failed_login_callers_get_the_error_without_a_request_until_the_cool_down_ends() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    let error = sim.drive(|_, _| Reply::Status(401)).unwrap_err();
    assert_eq!(sim.cool_downs(), [secs(1)]);
    assert_eq!(
        sim.machine.cooling_down(START).map(|(e, until)| (e.clone(), until)),
        Some((error.clone(), at(secs(1))))
    );
    for offset in [0, 500, 999] {
        match sim.machine.poll_output(at(Duration::from_millis(offset))) {
            Output::Done(Err(again)) => assert_eq!(again, error),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(sim.sent.len(), 1, "no request during the cool-down");
    assert_eq!(sim.machine.cooling_down(at(secs(1))), None);
    sim.now = at(secs(1));
    assert!(matches!(sim.machine.poll_output(sim.now), Output::Sign(_)), "a new login once it is over");
}

#[test]
fn the_cool_down_grows_with_each_failure_in_a_row_up_to_its_cap_and_a_success_resets_it() {
    let cool = CoolDown::new(secs(1), secs(5)).unwrap();
    let config = rsa_config(10).with_key_manager(KeyManagerPolicy::Never).with_cool_down(cool);
    let mut sim = Sim::new(config);
    for _ in 0..5 {
        sim.drive(|_, _| Reply::Status(403)).unwrap_err();
        let (_, until) = sim.machine.cooling_down(sim.now).unwrap();
        // One millisecond before the end: still the error, and nothing sent.
        let sent = sim.sent.len();
        assert!(matches!(sim.machine.poll_output(UnixTime::from_millis(until.as_millis() - 1)), Output::Done(Err(_))));
        assert_eq!(sim.sent.len(), sent);
        sim.now = until;
    }
    assert_eq!(sim.cool_downs(), [secs(1), secs(2), secs(4), secs(5), secs(5)]);
    sim.drive(|_, _| ok("s")).unwrap();
    let g = sim.machine.latest_generation();
    sim.machine.report_unauthorized(g).unwrap();
    sim.drive(|_, _| Reply::Status(403)).unwrap_err();
    assert_eq!(sim.cool_downs().last(), Some(&secs(1)), "a success resets the count");
}

#[test]
fn a_refresh_overrides_the_cool_down() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.drive(|_, _| Reply::Status(403)).unwrap_err();
    assert!(sim.machine.cooling_down(START).is_some());
    assert!(sim.machine.refresh(START));
    assert_eq!(sim.machine.cooling_down(START), None);
    assert!(matches!(sim.machine.poll_output(START), Output::Sign(_)), "the error is not handed out again");
    assert_eq!(sim.drive(|_, _| ok("s")).unwrap().generation().get(), 1);
}

#[test]
fn without_a_cool_down_each_failure_is_still_reported_once() {
    let config = rsa_config(10).with_key_manager(KeyManagerPolicy::Never).with_cool_down(CoolDown::none());
    let mut sim = Sim::new(config);
    let error = sim.drive(|_, _| Reply::Status(403)).unwrap_err();
    assert!(matches!(error, AuthError::Rejected { .. }));
    assert_eq!(sim.cool_downs(), [Duration::ZERO]);
    assert!(matches!(sim.machine.poll_output(sim.now), Output::Sign(_)), "the next poll logs in again");
}

#[test]
fn a_clock_set_back_never_lengthens_a_wait() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    let first = sim.send_batch();
    sim.answer(first[0].id, &Reply::StatusWith(503, "retry-after", "60".into()));
    sim.now = at(secs(10));
    assert_eq!(sim.machine.poll_output(sim.now).wait(), Some(at(secs(60))), "50 s left");
    // The wall clock jumps back an hour: still 50 s left, not an hour and 50 s.
    let back = UnixTime::from_millis(at(secs(10)).as_millis() - 3_600_000);
    let until = sim.machine.poll_output(back).wait().unwrap();
    assert_eq!(until.saturating_since(back), secs(50));
    // handle_timeout with an earlier time does the same.
    let further = UnixTime::from_millis(back.as_millis() - 10_000);
    sim.machine.handle_timeout(further);
    assert_eq!(sim.machine.poll_output(further).wait().unwrap().saturating_since(further), secs(50));
}

#[test]
fn a_clock_set_back_never_lengthens_a_cool_down() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.drive(|_, _| Reply::Status(403)).unwrap_err();
    let back = UnixTime::from_millis(START.as_millis() - 600_000);
    assert!(matches!(sim.machine.poll_output(back), Output::Done(Err(_))));
    let (_, until) = sim.machine.cooling_down(back).unwrap();
    assert_eq!(until.saturating_since(back), secs(1));
}

#[test]
fn asking_about_a_cool_down_with_an_earlier_clock_reads_it_as_stepped_back() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.drive(|_, _| Reply::Status(403)).unwrap_err();
    let (_, until) = sim.machine.cooling_down(sim.now).unwrap();
    let left = until.saturating_since(sim.now);
    // Asked before any input tells the machine of the step back: the same time is left, not an hour more.
    let back = UnixTime::from_millis(sim.now.as_millis() - 3_600_000);
    let (_, until) = sim.machine.cooling_down(back).unwrap();
    assert_eq!(until.saturating_since(back), left);
    // Once told of the step back, the machine ends the cool-down that much after the earlier time.
    sim.machine.handle_timeout(back);
    assert!(sim.machine.cooling_down(UnixTime::from_millis(back.saturating_add(left).as_millis() - 1)).is_some());
    assert_eq!(sim.machine.cooling_down(back.saturating_add(left)), None);
}

#[test]
fn handle_timeout_is_idempotent() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    let first = sim.send_batch();
    sim.answer(first[0].id, &Reply::Status(503));
    for now in [START, at(Duration::from_millis(499)), at(Duration::from_millis(500)), at(secs(3))] {
        sim.machine.handle_timeout(now);
        let once = format!("{:?}", sim.machine);
        sim.machine.handle_timeout(now);
        sim.machine.handle_timeout(now);
        assert_eq!(format!("{:?}", sim.machine), once, "at {now:?}");
    }
    // The retry that came due is sent once.
    sim.now = at(secs(3));
    assert_eq!(sim.send_batch().len(), 1);
    assert!(matches!(sim.machine.poll_output(sim.now), Output::AwaitAnswers));
}

#[test]
fn a_failing_signer_fails_the_login_with_its_reason() {
    let config = Config::rsa(endpoints(), "bot.user", Arc::new(BrokenSigner)).unwrap();
    let mut sim = Sim::new(config);
    let error = sim.drive(plain_pod).unwrap_err();
    assert!(matches!(&error, AuthError::Signing(_)));
    assert_eq!(error.to_string(), "signing failed: HSM unavailable");
    assert!(sim.sent.is_empty());
    assert!(!sim.machine.state().is_logging_in());
    assert_eq!(error.endpoint(), None);
}

#[test]
fn a_signature_supplied_late_sets_the_clock_its_cool_down_is_measured_by() {
    let config = Config::rsa(endpoints(), "bot.user", Arc::new(BrokenSigner)).unwrap();
    let mut sim = Sim::new(config.with_key_manager(KeyManagerPolicy::Never));
    let Output::Sign(jwt) = sim.machine.poll_output(START) else { panic!("expected a Sign output") };
    // The signature fails two hours later; then the wall clock steps back one hour.
    let late = at(secs(7200));
    sim.machine.supply_jwt(jwt.sign(), late);
    let (_, until) = sim.machine.cooling_down(late).unwrap();
    let left = until.saturating_since(late);
    let back = at(secs(3600));
    let (_, until) = sim.machine.cooling_down(back).unwrap();
    assert_eq!(until.saturating_since(back), left, "a step back must not lengthen the cool-down");
}

#[test]
fn the_jwt_is_fresh_for_every_attempt() {
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.drive(|_, n| if n == 1 { Reply::Status(503) } else { ok("s") }).unwrap();
    let exp = |s: &support::Sent| {
        let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        symphony_auth_core::decode_claims(body["token"].as_str().unwrap()).unwrap()["exp"].as_u64().unwrap()
    };
    assert_eq!(exp(&sim.sent[0]), START.as_secs() + 240);
    assert_eq!(sim.sent[1].at, at(Duration::from_millis(500)));
    // Half a second later is the same second: the JWT is the same one; a second later, a new one.
    let mut sim = Sim::new(rsa_config(10).with_key_manager(KeyManagerPolicy::Never));
    sim.drive(|_, n| if n <= 2 { Reply::Status(503) } else { ok("s") }).unwrap();
    assert_eq!(
        sim.sent.iter().map(exp).collect::<Vec<_>>(),
        [START.as_secs() + 240, START.as_secs() + 240, START.as_secs() + 241]
    );
    assert_eq!(sim.signatures, 2);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        let config = rsa_config(10).with_retry(RetryPolicy::default()).with_key_manager(KeyManagerPolicy::Never);
        let mut sim = Sim::seeded(config, seed);
        sim.drive(|_, n| if n < 6 { Reply::Status(500) } else { ok("s") }).unwrap();
        sim.events
    };
    assert_eq!(run(11), run(11));
    assert_ne!(run(11), run(12), "jitter depends on the seed");
}

#[test]
fn both_legs_of_a_parallel_login_share_one_signature() {
    let signer = Arc::new(CountingSigner::default());
    let mut sim = Sim::new(Config::rsa(endpoints(), "bot.user", signer.clone()).unwrap());
    let batch = sim.send_batch();
    assert_eq!(batch.len(), 2);
    assert_eq!(signer.count(), 1, "RS512 is deterministic: the same second gives the same JWT");
    assert_eq!(batch[0].request.body(), batch[1].request.body());
    // A retry a second later needs a fresh JWT.
    sim.answer(batch[0].id, &Reply::Status(503));
    sim.now = at(secs(1));
    let retry = sim.send_batch();
    assert_eq!(signer.count(), 2);
    assert_ne!(retry[0].request.body(), batch[1].request.body());
}

#[test]
fn with_a_dedicated_agent_skd_needs_an_agent_of_24_12_or_later() {
    let skd = session_jwt(true);
    for (version, km_expected) in
        [("Agent-24.12.0-1000-Linux", false), ("Agent-25.1.0", false), ("Agent-24.11.3", true), ("Agent-23.12.0", true)]
    {
        let config =
            Config::rsa(dedicated_agent_endpoints(), "bot.user", support::signer()).unwrap().with_parallel_login(false);
        let mut sim = Sim::new(config);
        let tokens = sim
            .drive(|endpoint, _| match endpoint {
                LoginEndpoint::AgentVersion => agent_info(version),
                SESSION => ok(&skd),
                _ => ok("km"),
            })
            .unwrap();
        let sent = sim.endpoints_sent();
        assert_eq!(sent[..2], [SESSION, LoginEndpoint::AgentVersion], "{version}");
        assert_eq!(sent.contains(&KM), km_expected, "{version}: {sent:?}");
        assert_eq!(tokens.key_manager().is_some(), km_expected, "{version}");
        let expected =
            if km_expected { KeyManagerOutcome::Obtained } else { KeyManagerOutcome::SkippedBySimplifiedKeyDelivery };
        assert!(
            sim.events
                .iter()
                .any(|e| matches!(e, Event::Authenticated { key_manager, .. } if *key_manager == expected)),
            "{version}: {:?}",
            sim.events
        );
    }
}

#[test]
fn with_a_dedicated_agent_and_parallel_login_the_key_manager_answer_is_dropped_for_a_new_agent() {
    let skd = session_jwt(true);
    let config = Config::rsa(dedicated_agent_endpoints(), "bot.user", support::signer()).unwrap();
    let mut sim = Sim::new(config);
    let tokens = sim
        .drive(|endpoint, _| match endpoint {
            LoginEndpoint::AgentVersion => agent_info("Agent-24.12.0"),
            SESSION => ok(&skd),
            _ => Reply::Drop,
        })
        .unwrap();
    assert!(tokens.key_manager().is_none());
    assert_eq!(sim.count(KM), 1);
}

#[test]
fn an_agent_that_cannot_tell_its_version_gets_the_key_manager() {
    let skd = session_jwt(true);
    for answer in [
        Reply::Status(404),
        Reply::Status(503),
        Reply::Body(200, r#"{"version":"unknown"}"#.into()),
        Reply::Fail(TransportKind::Connect),
    ] {
        let config =
            Config::rsa(dedicated_agent_endpoints(), "bot.user", support::signer()).unwrap().with_parallel_login(false);
        let mut sim = Sim::new(config);
        let tokens = sim
            .drive(|endpoint, _| match endpoint {
                LoginEndpoint::AgentVersion => answer.clone(),
                SESSION => ok(&skd),
                _ => ok("km"),
            })
            .unwrap();
        assert!(tokens.key_manager().is_some(), "{answer:?}");
        assert_eq!(sim.count(LoginEndpoint::AgentVersion), 1, "never retried: {answer:?}");
    }
}

#[test]
fn without_skd_the_agent_is_not_asked() {
    let config = Config::rsa(dedicated_agent_endpoints(), "bot.user", support::signer()).unwrap();
    let mut sim = Sim::new(config);
    sim.drive(plain_pod).unwrap();
    assert_eq!(sim.count(LoginEndpoint::AgentVersion), 0);
}

#[test]
fn the_jwt_is_signed_outside_the_machine() {
    let signer = Arc::new(CountingSigner::default());
    let config = Config::rsa(endpoints(), "bot.user", signer.clone()).unwrap().with_retry(support::exact_retry(10));
    let mut machine = Authenticator::new(config, 1);
    // Nothing to sign without a login: a supplied JWT is ignored.
    machine.supply_jwt(Err(symphony_auth_core::SignError("ignored".into())), START);
    let job = match machine.poll_output(START) {
        Output::Sign(job) => job,
        other => panic!("{other:?}"),
    };
    assert_eq!(job.exp(), START.as_secs() + 240);
    assert_eq!(signer.count(), 0, "handing out the job signs nothing");
    // Polling again before the signature arrives asks again; the driver signs once and supplies.
    assert!(matches!(machine.poll_output(START), Output::Sign(_)));
    machine.supply_jwt(job.sign(), START);
    // A second later (the next second began while signing), the supplied JWT still serves its batch.
    let later = START.saturating_add(secs(1));
    let batch = match machine.poll_output(later) {
        Output::Send(batch) => batch,
        other => panic!("{other:?}"),
    };
    assert_eq!(batch.len(), 2);
    assert_eq!(signer.count(), 1, "one signature, made outside");
    // An answer ends its use: the retry needs a fresh one.
    machine.handle_response(batch[0].id, &support::response(503, String::new(), None), later).unwrap();
    machine.handle_response(batch[1].id, &support::response(200, support::token_body("km"), None), later).unwrap();
    let retry_at = machine.poll_output(later).wait();
    assert_eq!(retry_at, Some(later.saturating_add(Duration::from_millis(500))));
    assert!(matches!(machine.poll_output(retry_at.unwrap()), Output::Sign(_)));

    // A failed signature fails the login.
    let mut machine = Authenticator::new(rsa_config(10), 1);
    assert!(matches!(machine.poll_output(START), Output::Sign(_)));
    machine.supply_jwt(Err(symphony_auth_core::SignError("HSM unplugged".into())), START);
    assert!(matches!(machine.poll_output(START), Output::Done(Err(AuthError::Signing(_)))));
    assert!(!machine.state().is_logging_in());
}

/// `Output::WaitUntil`'s instant, if that is what it is.
trait WaitOf {
    fn wait(self) -> Option<UnixTime>;
}

impl WaitOf for Output {
    fn wait(self) -> Option<UnixTime> {
        match self {
            Output::WaitUntil(at) => Some(at),
            _ => None,
        }
    }
}

/// A thousand bots signing on two cores supply their JWTs seconds late: the batch each was signed for still takes
/// it while half its lifetime is left, rather than asking for another signature (which would come late as well).
#[test]
fn a_jwt_supplied_late_serves_its_batch_while_half_its_lifetime_is_left() {
    let lifetime = rsa_config(1).jwt_lifetime().as_secs();
    for (late, signs_again) in [(10, false), (lifetime / 2, false), (lifetime / 2 + 1, true)] {
        let mut machine = Authenticator::new(rsa_config(1).with_key_manager(KeyManagerPolicy::Never), 1);
        let Output::Sign(job) = machine.poll_output(START) else { panic!("expected a Sign output") };
        let supplied_at = at(secs(late));
        machine.supply_jwt(job.sign(), supplied_at);
        match machine.poll_output(supplied_at) {
            Output::Sign(_) => assert!(signs_again, "{late} s late: signed again"),
            Output::Send(batch) => {
                assert!(!signs_again, "{late} s late: sent a JWT with less than half its lifetime left");
                let body: serde_json::Value = serde_json::from_slice(batch[0].request.body()).unwrap();
                let claims = symphony_auth_core::decode_claims(body["token"].as_str().unwrap()).unwrap();
                assert_eq!(claims["exp"].as_u64(), Some(START.as_secs() + lifetime));
            }
            other => panic!("{late} s late: unexpected {other:?}"),
        }
    }
}
