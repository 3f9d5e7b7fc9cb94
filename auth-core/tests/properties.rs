//! Properties of the machine under random sequences of answers, failures, time jumps and 401 reports.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use support::{START, response, session_jwt, token_body};
use symphony_auth_core::{
    Authenticator, Event, Generation, KeyManagerPolicy, LoginEndpoint, RequestId, State, TransportFailure,
    TransportKind, UnauthorizedOutcome,
};

#[derive(Clone, Debug)]
enum Step {
    /// Answer the oldest outstanding request.
    Answer(Answer),
    /// Let time pass.
    Wait(u64),
    /// An API call with the current (or an older) generation got a 401.
    Unauthorized {
        back: u64,
    },
    Start,
    Refresh,
    Abort,
}

#[derive(Clone, Debug)]
enum Answer {
    Token { skd: bool },
    Status(u16),
    Garbage,
    Failure(u8),
    AgentInfo(&'static str),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => any::<bool>().prop_map(|skd| Answer::Token { skd }),
        3 => prop::sample::select(vec![500u16, 502, 503, 429, 408, 400, 401, 403, 404, 302]).prop_map(Answer::Status),
        1 => Just(Answer::Garbage),
        2 => (0u8..5).prop_map(Answer::Failure),
        1 => prop::sample::select(vec!["Agent-24.12.0", "Agent-23.1.0"]).prop_map(Answer::AgentInfo),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => answer().prop_map(Step::Answer),
        3 => (0u64..400_000).prop_map(Step::Wait),
        2 => (0u64..3).prop_map(|back| Step::Unauthorized { back }),
        1 => Just(Step::Start),
        1 => Just(Step::Refresh),
        1 => Just(Step::Abort),
    ]
}

/// Attempts, key-manager policy, parallel login, and whether the agent has a host of its own.
fn policy() -> impl Strategy<Value = (u32, KeyManagerPolicy, bool, bool)> {
    (
        1u32..6,
        prop::sample::select(vec![KeyManagerPolicy::Auto, KeyManagerPolicy::Always, KeyManagerPolicy::Never]),
        any::<bool>(),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random inputs never panic, tokens are handed out exactly when ready, an expired machine hands out none,
    /// and no endpoint is tried more often in one login than the policy allows.
    #[test]
    fn invariants_hold_under_random_inputs(
        (attempts, km_policy, parallel, dedicated_agent) in policy(),
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 1..120),
    ) {
        let config = support::fast_config_with(attempts, dedicated_agent).with_key_manager(km_policy).with_parallel_login(parallel);
        let mut machine = Authenticator::new(config, seed);
        let mut now = START;
        let mut outstanding: Vec<(RequestId, LoginEndpoint)> = Vec::new();
        let mut tries_this_login: HashMap<LoginEndpoint, u32> = HashMap::new();
        for step in steps {
            match step {
                Step::Answer(answer) => {
                    if outstanding.is_empty() { continue; }
                    let (id, _) = outstanding.remove(0);
                    let result = match answer {
                        Answer::Token { skd } => machine.handle_response(id, &response(200, token_body(&session_jwt(skd)), None), now),
                        Answer::AgentInfo(version) => machine.handle_response(id, &response(200, format!(r#"{{"version":"{version}"}}"#), None), now),
                        Answer::Status(status) => machine.handle_response(id, &response(status, String::new(), None), now),
                        Answer::Garbage => machine.handle_response(id, &response(200, "{".into(), None), now),
                        Answer::Failure(kind) => {
                            let kind = [TransportKind::Timeout, TransportKind::Connect, TransportKind::Reset, TransportKind::Tls, TransportKind::Other][kind as usize];
                            machine.handle_failure(id, TransportFailure::new(kind, "x"), now)
                        }
                    };
                    prop_assert!(result.is_ok(), "an id the machine handed out is always accepted: {result:?}");
                }
                Step::Wait(ms) => {
                    now = now.saturating_add(Duration::from_millis(ms));
                    machine.handle_timeout(now);
                }
                Step::Unauthorized { back } => {
                    let latest = machine.latest_generation().get();
                    if latest > back {
                        prop_assert!(machine.report_unauthorized(Generation::from_u64(latest - back)).is_ok());
                    }
                }
                Step::Start => { machine.start(); }
                Step::Refresh => { machine.refresh(); }
                Step::Abort => { machine.abort_login(); outstanding.clear(); }
            }
            if !machine.is_logging_in() {
                tries_this_login.clear();
            }
            while let Some(request) = machine.poll_request(now) {
                let tries = tries_this_login.entry(request.endpoint).or_default();
                *tries += 1;
                prop_assert!(*tries <= attempts, "{:?} tried {} times with a limit of {}", request.endpoint, tries, attempts);
                outstanding.push((request.id, request.endpoint));
            }
            while let Some(event) = machine.poll_event() {
                if matches!(event, Event::Authenticated { .. } | Event::LoginFailed(_)) {
                    tries_this_login.clear();
                }
                if let Event::RetryScheduled { delay, .. } = event {
                    prop_assert!(delay <= Duration::from_secs(300));
                }
            }
            let state = machine.state();
            prop_assert_eq!(machine.tokens().is_some(), state == State::Ready);
            if let Some(tokens) = machine.tokens() {
                prop_assert_eq!(tokens.generation(), machine.latest_generation());
                if km_policy == KeyManagerPolicy::Always { prop_assert!(tokens.key_manager().is_some()); }
                if km_policy == KeyManagerPolicy::Never { prop_assert!(tokens.key_manager().is_none()); }
            }
            if let Some(at) = machine.poll_timeout() {
                prop_assert!(at > now, "a due retry must already have been handed out");
            }
        }
    }

    /// Any number of 401s reported on one generation start exactly one login, however they interleave with the
    /// answers of that login.
    #[test]
    fn many_401s_on_one_generation_cause_one_login(reports in 1usize..200, answer_after in 0usize..200) {
        let mut machine = Authenticator::new(support::fast_config(10), 3);
        machine.start();
        let ok = response(200, token_body("t"), None);
        let first: Vec<_> = std::iter::from_fn(|| machine.poll_request(START)).collect();
        for request in first { machine.handle_response(request.id, &ok, START).unwrap(); }
        let g1 = machine.tokens().unwrap().generation();
        let mut started = 0;
        let mut pending = Vec::new();
        let mut requests = 0;
        for i in 0..reports {
            match machine.report_unauthorized(g1).unwrap() {
                UnauthorizedOutcome::LoginStarted => started += 1,
                UnauthorizedOutcome::Stale { current } => prop_assert!(current > g1),
                _ => {}
            }
            let batch: Vec<_> = std::iter::from_fn(|| machine.poll_request(START)).collect();
            requests += batch.len();
            pending.extend(batch);
            if i == answer_after {
                for request in pending.drain(..) { machine.handle_response(request.id, &ok, START).unwrap(); }
            }
        }
        for request in pending.drain(..) { machine.handle_response(request.id, &ok, START).unwrap(); }
        prop_assert_eq!(started, 1);
        prop_assert_eq!(requests, 2, "one login: a session and a key-manager request");
        prop_assert_eq!(machine.latest_generation().get(), 2);
    }
}
