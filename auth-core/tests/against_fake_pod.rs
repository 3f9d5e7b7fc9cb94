//! The machine against auth-testkit's pure `FakePod`, in virtual time: real signatures checked by the fake, real
//! token lifetimes, expiry and re-login, SKD, retries and clock skew, with no sockets.

mod support;

use std::time::Duration;

use support::{START, endpoints, rsa_config};
use symphony_auth_core::{
    ApiVerdict, AuthError, Authenticator, Config, Event, KeyManagerOutcome, Target, Tokens, UnauthorizedOutcome,
    UnixTime, api_verdict, echo, parse_session_info, session_info,
};
use symphony_auth_testkit::{Endpoint, FakePod, Fault, Peer, Reply};

struct World {
    pod: FakePod,
    machine: Authenticator,
    now: UnixTime,
    peer: Peer,
}

impl World {
    fn rsa(config: Config) -> Self {
        let mut pod = FakePod::new();
        pod.add_rsa_bot("bot.user", include_str!("../../fixtures/keys/bot-2048.pub.pem")).unwrap();
        Self { pod, machine: Authenticator::new(config, 5), now: START, peer: Peer::in_process() }
    }

    fn certificate() -> Self {
        let mut pod = FakePod::new();
        pod.add_cert_bot("cert.bot").unwrap();
        let config = Config::certificate(endpoints(), "cert.bot").unwrap();
        Self { pod, machine: Authenticator::new(config, 5), now: START, peer: Peer::with_certificate("cert.bot") }
    }

    fn send(&mut self, request: symphony_auth_core::HttpRequest) -> Option<symphony_auth_core::HttpResponse> {
        let reply = self.pod.handle(self.now.to_system_time(), request, &self.peer);
        self.now = self.now.saturating_add(reply.delay());
        match reply {
            Reply::Close | Reply::Garbage(_) => None,
            other => other.into_response(),
        }
    }

    /// Runs the login under way to its end, sleeping through backoffs in virtual time.
    fn login(&mut self) -> Event {
        loop {
            let batch: Vec<_> = std::iter::from_fn(|| self.machine.poll_request(self.now)).collect();
            for login in batch {
                match self.send(login.request) {
                    Some(response) => self.machine.handle_response(login.id, &response, self.now).unwrap(),
                    None => self
                        .machine
                        .handle_failure(
                            login.id,
                            symphony_auth_core::TransportFailure::new(
                                symphony_auth_core::TransportKind::Reset,
                                "closed",
                            ),
                            self.now,
                        )
                        .unwrap(),
                }
            }
            while let Some(event) = self.machine.poll_event() {
                if matches!(event, Event::Authenticated { .. } | Event::LoginFailed(_)) {
                    return event;
                }
            }
            if let Some(at) = self.machine.poll_timeout() {
                self.now = at;
            }
        }
    }

    fn tokens(&mut self) -> std::sync::Arc<Tokens> {
        if let Some(tokens) = self.machine.tokens() {
            return tokens;
        }
        self.machine.start();
        match self.login() {
            Event::Authenticated { .. } => self.machine.tokens().unwrap(),
            other => panic!("login failed: {other:?}"),
        }
    }

    /// Sends an API call the way a driver does: authorize, and on 401 report, re-login and replay once.
    fn call(&mut self, build: impl Fn() -> symphony_auth_core::HttpRequest) -> symphony_auth_core::HttpResponse {
        let mut replayed = false;
        loop {
            let tokens = self.tokens();
            let mut request = build();
            let target = self.machine.config().endpoints().target_of(request.uri()).unwrap();
            tokens.authorize(&mut request, target);
            let response = self.send(request).unwrap();
            match api_verdict(response.status(), replayed) {
                ApiVerdict::ReauthenticateAndReplay => {
                    if self.machine.report_unauthorized(tokens.generation()).unwrap()
                        != UnauthorizedOutcome::LoginInProgress
                    {
                        assert!(matches!(self.login(), Event::Authenticated { .. }));
                    }
                    replayed = true;
                }
                _ => return response,
            }
        }
    }
}

#[test]
fn rsa_login_is_accepted_by_the_fake_and_the_tokens_work() {
    let mut world = World::rsa(rsa_config(10));
    let info = parse_session_info(&world.call(|| session_info(&endpoints()))).unwrap();
    assert_eq!(info.username, "bot.user");
    assert_eq!(Some(info.id), world.pod.user_id("bot.user"));
    let echoed = world.call(|| echo(&endpoints(), "hello"));
    assert_eq!(echoed.status(), 200, "{}", String::from_utf8_lossy(echoed.body()));
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 1);
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 1);
}

#[test]
fn an_expired_session_is_renewed_once_and_the_call_replayed() {
    let mut world = World::rsa(rsa_config(10));
    world.tokens();
    world.pod.expire_all();
    let response = world.call(|| echo(&endpoints(), "again"));
    assert_eq!(response.status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 2);
    assert_eq!(world.pod.counters().responses(Endpoint::Echo, 401), 1);
    assert_eq!(world.machine.latest_generation().get(), 2);
}

#[test]
fn sessions_that_outlive_their_ttl_are_renewed_in_virtual_time() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.set_session_ttl(Duration::from_secs(3600));
    world.tokens();
    world.now = world.now.saturating_add(Duration::from_secs(3601));
    assert_eq!(world.call(|| session_info(&endpoints())).status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 2);
}

#[test]
fn simplified_key_delivery_needs_no_key_manager() {
    let mut world = World::rsa(rsa_config(10).with_parallel_login(false));
    world.pod.set_skd(true);
    world.pod.set_key_manager_down(true);
    world.machine.start();
    assert!(matches!(
        world.login(),
        Event::Authenticated { key_manager: KeyManagerOutcome::SkippedBySimplifiedKeyDelivery, .. }
    ));
    assert_eq!(world.call(|| echo(&endpoints(), "skd")).status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 0);
}

#[test]
fn unavailable_logins_are_retried_as_the_fake_asks() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.inject(Endpoint::SessionLogin, 3, Fault::status_retry_after(503, 2));
    world.machine.start();
    assert!(matches!(world.login(), Event::Authenticated { .. }));
    assert_eq!(world.now.saturating_since(START), Duration::from_secs(6), "three Retry-After waits of 2 s");
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 4);
}

#[test]
fn a_pod_clock_far_behind_ours_rejects_the_jwt() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.set_clock_skew(-400);
    world.machine.start();
    match world.login() {
        Event::LoginFailed(AuthError::Rejected { status: 401, username, .. }) => assert_eq!(username, "bot.user"),
        other => panic!("{other:?}"),
    }
    assert_eq!(world.pod.counters().requests(Endpoint::SessionLogin), 1, "a rejected JWT is not retried");
}

#[test]
fn a_key_the_pod_does_not_know_is_rejected() {
    let mut world = World::rsa(rsa_config(10));
    world.pod = FakePod::new();
    world.pod.add_rsa_bot("bot.user", include_str!("../../fixtures/keys/other-2048.pub.pem")).unwrap();
    world.machine.start();
    assert!(matches!(world.login(), Event::LoginFailed(AuthError::Rejected { status: 401, .. })));
}

#[test]
fn certificate_login_works_with_the_right_cn_only() {
    let mut world = World::certificate();
    assert_eq!(world.call(|| echo(&endpoints(), "cert")).status(), 200);
    assert_eq!(world.pod.counters().requests(Endpoint::CertSessionLogin), 1);

    let mut stranger = World::certificate();
    stranger.peer = Peer::with_certificate("someone.else");
    stranger.machine.start();
    assert!(matches!(stranger.login(), Event::LoginFailed(AuthError::Rejected { .. })));
}

#[test]
fn a_connection_closed_before_the_answer_is_retried() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.inject(Endpoint::KeyManagerLogin, 1, Fault::Close);
    world.machine.start();
    assert!(matches!(world.login(), Event::Authenticated { key_manager: KeyManagerOutcome::Obtained, .. }));
    assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), 2);
}

#[test]
fn target_detection_sends_the_key_manager_token_to_the_agent_only() {
    let mut world = World::rsa(rsa_config(10));
    let tokens = world.tokens();
    let mut pod_call = session_info(&endpoints());
    let target = endpoints().target_of(pod_call.uri()).unwrap();
    assert_eq!(target, Target::Pod);
    tokens.authorize(&mut pod_call, target);
    assert!(!pod_call.headers().contains_key("keyManagerToken"));
    let mut agent_call = echo(&endpoints(), "x");
    tokens.authorize(&mut agent_call, Target::Agent);
    assert!(agent_call.headers().contains_key("keyManagerToken"));
}

#[test]
fn a_rejection_caused_by_clock_skew_says_so() {
    let mut world = World::rsa(rsa_config(10));
    world.pod.set_clock_skew(400);
    world.machine.start();
    match world.login() {
        Event::LoginFailed(error @ AuthError::Rejected { clock_offset_secs: Some(400), .. }) => {
            assert!(error.to_string().contains("clock"), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dedicated_agent_too_old_for_skd_gets_the_key_manager_login() {
    let mut endpoints = endpoints();
    endpoints.agent = symphony_auth_core::BaseUrl::parse("agent", "https://agent.example").unwrap();
    for (version, km_logins) in [("Agent-23.11.0", 1), ("Agent-24.12.0", 0)] {
        let config = Config::new(endpoints.clone(), "bot.user", rsa_config(10).method().clone())
            .unwrap()
            .with_parallel_login(false);
        let mut world = World::rsa(config);
        world.pod.set_skd(true);
        world.pod.set_agent_version(version);
        world.machine.start();
        assert!(matches!(world.login(), Event::Authenticated { .. }), "{version}");
        assert_eq!(world.pod.counters().requests(Endpoint::AgentInfo), 1, "{version}");
        assert_eq!(world.pod.counters().requests(Endpoint::KeyManagerLogin), km_logins, "{version}");
    }
}
