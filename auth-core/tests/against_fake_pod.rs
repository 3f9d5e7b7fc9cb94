//! The machine, through its single flight and the API-call step, against auth-testkit's pure `FakePod`, in virtual
//! time: real signatures checked by the fake, real token lifetimes, expiry and re-login, SKD, retries and clock
//! skew, with no sockets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::{START, endpoints, rsa_config};
use symphony_auth_core::{
    ApiError, ApiStep, AuthError, Authenticator, BaseUrl, Config, Event, Flight, HttpRequest, HttpResponse,
    KeyManagerOutcome, Step, Target, Tokens, TransportFailure, TransportKind, UnixTime, Want, echo, parse_session_info,
    session_info,
};
use symphony_auth_testkit::{Endpoint, FakePod, Fault, Peer, Reply};

struct World {
    pod: FakePod,
    flight: Flight,
    now: UnixTime,
    peer: Peer,
    events: Vec<Event>,
}

impl World {
    fn rsa(config: Config) -> Self {
        let mut pod = FakePod::new();
        pod.add_rsa_bot("bot.user", include_str!("../../fixtures/keys/bot-2048.pub.pem")).unwrap();
        Self::with(pod, config, Peer::in_process())
    }

    fn certificate(cn: &str) -> Self {
        let mut pod = FakePod::new();
        pod.add_cert_bot("cert.bot").unwrap();
        let config = Config::certificate(endpoints(), "cert.bot").unwrap();
        Self::with(pod, config, Peer::with_certificate(cn))
    }

    fn with(pod: FakePod, config: Config, peer: Peer) -> Self {
        Self { pod, flight: Flight::new(Authenticator::new(config, 5)), now: START, peer, events: Vec::new() }
    }

    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportFailure> {
        let reply = self.pod.handle(self.now.to_system_time(), request, &self.peer);
        self.now = self.now.saturating_add(reply.delay());
        match reply {
            Reply::Close | Reply::Garbage(_) => Err(TransportFailure::new(TransportKind::Reset, "closed")),
            other => Ok(other.into_response().expect("a response")),
        }
    }

    /// One caller through the flight, as a driver runs it: lead, send, report, sleep in virtual time.
    fn obtain(&mut self, want: Want) -> Result<Arc<Tokens>, AuthError> {
        let mut caller = self.flight.join(want).unwrap();
        for _ in 0..1_000 {
            let step = self.flight.poll(&mut caller, self.now);
            while let Some(event) = self.flight.poll_event() {
                self.events.push(event);
            }
            match step {
                Step::Sign(jwt) => self.flight.supply_jwt(jwt.sign(), self.now),
                Step::Send(batch) => {
                    for login in batch {
                        match self.send(login.request) {
                            Ok(response) => self.flight.handle_response(login.id, &response, self.now).unwrap(),
                            Err(failure) => self.flight.handle_failure(login.id, failure, self.now).unwrap(),
                        }
                    }
                }
                Step::WaitUntil(at) => self.now = at,
                Step::Done { outcome, .. } => return outcome,
                Step::AwaitAnswers | Step::Follow => panic!("one caller answers at once and follows no one"),
            }
        }
        panic!("the login did not end");
    }

    fn tokens(&mut self) -> Arc<Tokens> {
        self.obtain(Want::Current).expect("login")
    }

    /// An API call the way a driver makes it, through `ApiCall`.
    fn call(&mut self, request: HttpRequest) -> Result<HttpResponse, ApiError> {
        let mut call = self.flight.api_call(request).unwrap();
        let mut tokens = self.tokens();
        for _ in 0..100 {
            let outcome = self.send(call.request(&tokens));
            match call.handle(outcome, self.now) {
                ApiStep::Return(response) => return Ok(response),
                ApiStep::Relogin(generation) => tokens = self.obtain(Want::Newer(generation)).expect("re-login"),
                ApiStep::RetryAt(at) => self.now = at,
                ApiStep::Fail(error) => return Err(error),
            }
        }
        panic!("the API call neither returned nor failed in 100 attempts");
    }
}

#[test]
fn rsa_login_is_accepted_by_the_fake_and_the_tokens_work() {
    let mut world = World::rsa(rsa_config(10));
    let info = parse_session_info(&world.call(session_info(&endpoints())).unwrap()).unwrap();
    assert_eq!(info.username, "bot.user");
    assert_eq!(Some(info.id), world.pod.user_id("bot.user"));
    let echoed = world.call(echo(&endpoints(), "hello")).unwrap();
    assert_eq!(echoed.status(), 200, "{}", String::from_utf8_lossy(echoed.body()));
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 1);
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 1);
}

#[test]
fn an_expired_session_is_renewed_once_and_the_call_replayed() {
    let mut world = World::rsa(rsa_config(10));
    world.tokens();
    world.pod.expire_all();
    let response = world.call(echo(&endpoints(), "again")).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 2);
    assert_eq!(world.pod.counters().responses(Endpoint::Echo, 401), 1);
    assert_eq!(world.flight.machine().latest_generation().get(), 2);
}

#[test]
fn a_key_manager_token_refused_while_the_session_is_fine_is_renewed_by_one_login() {
    let mut world = World::rsa(rsa_config(10));
    world.tokens();
    world.pod.expire_key_manager_tokens();
    // A pod call still works with the session token alone.
    assert_eq!(world.call(session_info(&endpoints())).unwrap().status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 1);
    // The agent refuses the key-manager token: one login, and the replay succeeds.
    assert_eq!(world.call(echo(&endpoints(), "km")).unwrap().status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 2);
    assert_eq!(world.pod.counters().responses(Endpoint::Echo, 401), 1);
}

#[test]
fn a_401_right_after_the_new_login_is_an_error_not_a_loop() {
    let mut world = World::rsa(rsa_config(10));
    world.tokens();
    world.pod.inject(Endpoint::Echo, 2, Fault::status(401));
    assert_eq!(world.call(echo(&endpoints(), "refused")).unwrap_err(), ApiError::Unauthorized { generation: 2 });
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 2, "one re-login, no loop");
    assert_eq!(world.pod.counters().requests(Endpoint::Echo), 2, "one replay");
    // The tokens themselves were fine: the next call uses them.
    assert_eq!(world.call(echo(&endpoints(), "fine")).unwrap().status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 2);
}

#[test]
fn sessions_that_outlive_their_ttl_are_renewed_in_virtual_time() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.set_session_ttl(Duration::from_secs(3600));
    world.tokens();
    world.now = world.now.saturating_add(Duration::from_secs(3601));
    assert_eq!(world.call(session_info(&endpoints())).unwrap().status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 2);
}

#[test]
fn simplified_key_delivery_needs_no_key_manager() {
    let mut world = World::rsa(rsa_config(10).with_parallel_login(false));
    world.pod.set_skd(true);
    world.pod.set_key_manager_down(true);
    let tokens = world.tokens();
    assert!(tokens.key_manager().is_none());
    assert!(world.events.iter().any(|e| matches!(
        e,
        Event::Authenticated { key_manager: KeyManagerOutcome::SkippedBySimplifiedKeyDelivery, .. }
    )));
    assert_eq!(world.call(echo(&endpoints(), "skd")).unwrap().status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 0);
}

#[test]
fn unavailable_logins_are_retried_as_the_fake_asks() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.inject(Endpoint::SessionLogin, 3, Fault::status_retry_after(503, 2));
    world.tokens();
    assert_eq!(world.now.saturating_since(START), Duration::from_secs(6), "three Retry-After waits of 2 s");
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 4);
}

#[test]
fn a_pod_clock_far_behind_ours_rejects_the_jwt() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.set_clock_skew(-400);
    match world.obtain(Want::Current) {
        Err(AuthError::Rejected { status: 401, username, clock_offset_secs: Some(-400), .. }) => {
            assert_eq!(username, "bot.user");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 1, "a rejected JWT is not retried");
    // Within the cool-down, a second caller gets the same error without a request.
    assert!(world.obtain(Want::Current).is_err());
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 1);
}

#[test]
fn a_key_the_pod_does_not_know_is_rejected() {
    let mut pod = FakePod::new();
    pod.add_rsa_bot("bot.user", include_str!("../../fixtures/keys/other-2048.pub.pem")).unwrap();
    let mut world = World::with(pod, rsa_config(10), Peer::in_process());
    assert!(matches!(world.obtain(Want::Current), Err(AuthError::Rejected { status: 401, .. })));
}

#[test]
fn certificate_login_works_with_the_right_cn_only() {
    let mut world = World::certificate("cert.bot");
    assert_eq!(world.call(echo(&endpoints(), "cert")).unwrap().status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::CertSessionLogin), 1);

    let mut stranger = World::certificate("someone.else");
    assert!(matches!(stranger.obtain(Want::Current), Err(AuthError::Rejected { .. })));
}

#[test]
fn a_connection_closed_before_the_answer_is_retried() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.inject(Endpoint::KeyManagerLogin, 1, Fault::Close);
    let tokens = world.tokens();
    assert!(tokens.key_manager().is_some());
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 2);
}

#[test]
fn target_detection_sends_the_key_manager_token_to_the_agent_only() {
    let mut world = World::rsa(rsa_config(10));
    let tokens = world.tokens();
    let mut pod_call = world.flight.api_call(session_info(&endpoints())).unwrap();
    assert_eq!(pod_call.target(), Target::Pod);
    let request = pod_call.request(&tokens);
    assert!(request.headers().contains_key("sessionToken"));
    assert!(!request.headers().contains_key("keyManagerToken"));
    let mut agent_call = world.flight.api_call(echo(&endpoints(), "x")).unwrap();
    assert_eq!(agent_call.target(), Target::Agent);
    let request = agent_call.request(&tokens);
    assert_eq!(request.headers()["keyManagerToken"], tokens.key_manager().unwrap().expose_secret());
}

#[test]
fn a_rejection_caused_by_clock_skew_says_so() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.set_clock_skew(400);
    match world.obtain(Want::Current) {
        Err(error @ AuthError::Rejected { clock_offset_secs: Some(400), .. }) => {
            assert!(error.to_string().contains("clock"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dedicated_agent_too_old_for_skd_gets_the_key_manager_login() {
    let mut endpoints = endpoints();
    endpoints.agent = BaseUrl::parse("agent", "https://agent.example").unwrap();
    for (version, km_logins) in [("Agent-23.11.0", 1), ("Agent-24.11.9", 1), ("Agent-24.12.0", 0)] {
        let config = Config::new(endpoints.clone(), "bot.user", rsa_config(10).method().clone())
            .unwrap()
            .with_parallel_login(false);
        let mut world = World::rsa(config);
        world.pod.set_skd(true);
        world.pod.set_agent_version(version);
        let tokens = world.tokens();
        assert_eq!(tokens.key_manager().is_some(), km_logins == 1, "{version}");
        assert_eq!(world.pod.counters().requests(Endpoint::AgentInfo), 1, "{version}");
        assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), km_logins, "{version}");
    }
}
