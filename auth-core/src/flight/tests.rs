//! The single flight: who leads, who follows, what followers get, and what a leader that leaves hands over.

use std::sync::Arc;
use std::time::Duration;

use super::{Flight, Step, Want};
use crate::config::{Config, Endpoints, KeyManagerPolicy};
use crate::error::{AuthError, SignError, UsageError};
use crate::machine::{Authenticator, Event, LoginRequest};
use crate::retry::RetryPolicy;
use crate::signer::JwtSigner;
use crate::time::UnixTime;
use crate::tokens::{Generation, Tokens};
use crate::{HttpResponse, State};

const NOW: UnixTime = UnixTime::from_secs(1_700_000_000);

#[derive(Debug)]
struct Constant;
impl JwtSigner for Constant {
    fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(vec![1; 4])
    }
}

fn flight() -> Flight {
    let retry = RetryPolicy::new(5, Duration::from_millis(500), 2.0, Duration::from_secs(60))
        .unwrap()
        .with_jitter(0.0)
        .unwrap();
    let config = Config::rsa(Endpoints::single("https://pod.example").unwrap(), "bot", Arc::new(Constant))
        .unwrap()
        .with_retry(retry)
        .with_key_manager(KeyManagerPolicy::Never);
    Flight::new(Authenticator::new(config, 1))
}

fn ok(token: &str) -> HttpResponse {
    http::Response::builder().status(200).body(format!(r#"{{"token":"{token}"}}"#).into_bytes()).unwrap()
}

fn status(code: u16) -> HttpResponse {
    http::Response::builder().status(code).body(Vec::new()).unwrap()
}

/// Polls `caller` past signing until it has requests to send.
fn requests(flight: &mut Flight, caller: &mut super::Caller, now: UnixTime) -> Vec<LoginRequest> {
    // Signing once must be enough: a bounded loop fails rather than hangs if it is not.
    for _ in 0..3 {
        match flight.poll(caller, now) {
            Step::Sign(jwt) => flight.supply_jwt(jwt.sign(), now),
            Step::Send(batch) => return batch,
            other => panic!("expected requests, got {other:?}"),
        }
    }
    panic!("still asked to sign after a signature was supplied");
}

fn done(step: Step) -> (Result<Arc<Tokens>, AuthError>, bool) {
    match step {
        Step::Done { outcome, wake_followers } => (outcome, wake_followers),
        other => panic!("expected Done, got {other:?}"),
    }
}

#[test]
fn many_callers_share_one_login_and_get_the_same_tokens() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    let mut followers: Vec<_> = (0..5).map(|_| flight.join(Want::Current).unwrap()).collect();
    let batch = requests(&mut flight, &mut leader, NOW);
    assert!(flight.has_leader());
    for follower in &mut followers {
        assert!(matches!(flight.poll(follower, NOW), Step::Follow));
    }
    assert_eq!(batch.len(), 1);
    flight.handle_response(batch[0].id, &ok("t1"), NOW).unwrap();
    let (tokens, wake) = done(flight.poll(&mut leader, NOW));
    let tokens = tokens.unwrap();
    assert!(wake, "the leader wakes its followers");
    assert!(!flight.has_leader());
    for follower in &mut followers {
        let (theirs, wake) = done(flight.poll(follower, NOW));
        assert!(Arc::ptr_eq(&theirs.unwrap(), &tokens));
        assert!(!wake);
    }
    // Later callers get the same tokens without a login.
    let mut late = flight.join(Want::Current).unwrap();
    assert!(Arc::ptr_eq(&done(flight.poll(&mut late, NOW)).0.unwrap(), &tokens));
    assert_eq!(flight.machine().latest_generation(), Generation(1));
}

#[test]
fn followers_get_the_leaders_error() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    let mut follower = flight.join(Want::Current).unwrap();
    let batch = requests(&mut flight, &mut leader, NOW);
    assert!(matches!(flight.poll(&mut follower, NOW), Step::Follow));
    flight.handle_response(batch[0].id, &status(403), NOW).unwrap();
    let (error, _) = done(flight.poll(&mut leader, NOW));
    let error = error.unwrap_err();
    assert!(matches!(error, AuthError::Rejected { status: 403, .. }));
    assert_eq!(done(flight.poll(&mut follower, NOW)).0.unwrap_err(), error);
    // A new caller during the cool-down gets it too, without leading a login.
    let mut next = flight.join(Want::Current).unwrap();
    let (again, wake) = done(flight.poll(&mut next, NOW));
    assert_eq!(again.unwrap_err(), error);
    assert!(wake, "it led, briefly: the machine answered at once");
}

#[test]
fn a_leader_that_leaves_hands_its_login_over_with_the_backoff() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    let mut follower = flight.join(Want::Current).unwrap();
    let batch = requests(&mut flight, &mut leader, NOW);
    assert!(matches!(flight.poll(&mut follower, NOW), Step::Follow));
    let bystander = bystander(&mut flight);
    assert!(!flight.leave(&bystander, NOW), "a caller that does not lead wakes no one");
    assert!(flight.leave(&leader, NOW), "the leader leaves: a follower must take over");
    assert!(!flight.has_leader());
    // The request it sent counts as a failed attempt: the follower waits the first backoff before sending again.
    match flight.poll(&mut follower, NOW) {
        Step::WaitUntil(at) => assert_eq!(at, NOW.saturating_add(Duration::from_millis(500))),
        other => panic!("{other:?}"),
    }
    assert!(flight.has_leader());
    let later = NOW.saturating_add(Duration::from_millis(500));
    let retry = requests(&mut flight, &mut follower, later);
    // The abandoned answer arrives late: accepted and ignored.
    flight.handle_response(batch[0].id, &ok("late"), later).unwrap();
    assert!(matches!(flight.poll(&mut follower, later), Step::AwaitAnswers));
    flight.handle_response(retry[0].id, &ok("t"), later).unwrap();
    let (tokens, wake) = done(flight.poll(&mut follower, later));
    assert_eq!(tokens.unwrap().session().expose_secret(), "t");
    assert!(wake);
    let retries: Vec<_> = std::iter::from_fn(|| flight.poll_event())
        .filter_map(|e| match e {
            Event::RetryScheduled { attempt, delay, .. } => Some((attempt, delay)),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [(1, Duration::from_millis(500))]);
}

/// A caller that joins and leaves without polling.
fn bystander(flight: &mut Flight) -> super::Caller {
    flight.join(Want::Current).unwrap()
}

#[test]
fn a_fresh_caller_joins_a_login_under_way() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    let batch = requests(&mut flight, &mut leader, NOW);
    let mut fresh = flight.join(Want::Fresh).unwrap();
    assert_eq!(fresh.want(), Want::Fresh);
    assert!(matches!(flight.poll(&mut fresh, NOW), Step::Follow));
    flight.handle_response(batch[0].id, &ok("t"), NOW).unwrap();
    let tokens = done(flight.poll(&mut leader, NOW)).0.unwrap();
    assert!(Arc::ptr_eq(&done(flight.poll(&mut fresh, NOW)).0.unwrap(), &tokens));
    assert_eq!(flight.machine().latest_generation(), Generation(1), "one login for both");
}

#[test]
fn a_fresh_caller_with_valid_tokens_leads_a_new_login() {
    let mut flight = flight();
    let mut first = flight.join(Want::Current).unwrap();
    let batch = requests(&mut flight, &mut first, NOW);
    flight.handle_response(batch[0].id, &ok("t1"), NOW).unwrap();
    let old = done(flight.poll(&mut first, NOW)).0.unwrap();
    let mut fresh = flight.join(Want::Fresh).unwrap();
    let batch = requests(&mut flight, &mut fresh, NOW);
    assert_eq!(flight.state(), State::Ready { generation: Generation(1), refreshing: true });
    // Meanwhile current callers still get the old tokens.
    let mut current = flight.join(Want::Current).unwrap();
    assert!(Arc::ptr_eq(&done(flight.poll(&mut current, NOW)).0.unwrap(), &old));
    flight.handle_response(batch[0].id, &ok("t2"), NOW).unwrap();
    let new = done(flight.poll(&mut fresh, NOW)).0.unwrap();
    assert_eq!(new.generation(), Generation(2));
    assert_eq!(new.session().expose_secret(), "t2");
}

#[test]
fn many_401s_on_one_generation_cause_one_login() {
    let mut flight = flight();
    let mut first = flight.join(Want::Current).unwrap();
    let batch = requests(&mut flight, &mut first, NOW);
    flight.handle_response(batch[0].id, &ok("t1"), NOW).unwrap();
    let g1 = done(flight.poll(&mut first, NOW)).0.unwrap().generation();
    let mut callers: Vec<_> = (0..8).map(|_| flight.join(Want::Newer(g1)).unwrap()).collect();
    let expired: Vec<_> =
        std::iter::from_fn(|| flight.poll_event()).filter(|e| matches!(e, Event::Expired { .. })).collect();
    assert_eq!(expired, [Event::Expired { generation: g1 }], "eight reports, one expiry");
    let (leader, rest) = callers.split_first_mut().unwrap();
    let batch = requests(&mut flight, leader, NOW);
    for caller in rest.iter_mut() {
        assert!(matches!(flight.poll(caller, NOW), Step::Follow));
    }
    // More reports on the old generation while the login is under way change nothing.
    let mut during = flight.join(Want::Newer(g1)).unwrap();
    assert!(matches!(flight.poll(&mut during, NOW), Step::Follow));
    flight.handle_response(batch[0].id, &ok("t2"), NOW).unwrap();
    let tokens = done(flight.poll(leader, NOW)).0.unwrap();
    assert_eq!(tokens.generation(), Generation(2));
    for caller in rest.iter_mut().chain([&mut during]) {
        assert!(Arc::ptr_eq(&done(flight.poll(caller, NOW)).0.unwrap(), &tokens));
    }
    // A report on the old generation after the login is stale: the new tokens, at once.
    let mut after = flight.join(Want::Newer(g1)).unwrap();
    assert!(Arc::ptr_eq(&done(flight.poll(&mut after, NOW)).0.unwrap(), &tokens));
    assert_eq!(flight.machine().latest_generation(), Generation(2));
    assert_eq!(
        flight.join(Want::Newer(Generation(7))).unwrap_err(),
        UsageError::UnknownGeneration { reported: 7, latest: 2 }
    );
}

#[test]
fn a_follower_of_a_login_that_ended_before_it_polled_again_gets_that_outcome() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    let mut follower = flight.join(Want::Current).unwrap();
    let batch = requests(&mut flight, &mut leader, NOW);
    assert!(matches!(flight.poll(&mut follower, NOW), Step::Follow));
    flight.handle_response(batch[0].id, &status(401), NOW).unwrap();
    let error = done(flight.poll(&mut leader, NOW)).0.unwrap_err();
    // The follower, a Fresh-less Current caller, gets the error even though the cool-down has ended by then.
    let later = NOW.saturating_add(Duration::from_secs(120));
    assert_eq!(done(flight.poll(&mut follower, later)).0.unwrap_err(), error);
}

#[test]
fn leaving_while_following_or_after_done_wakes_no_one() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    let mut follower = flight.join(Want::Current).unwrap();
    requests(&mut flight, &mut leader, NOW);
    assert!(matches!(flight.poll(&mut follower, NOW), Step::Follow));
    assert!(!flight.leave(&follower, NOW));
    assert!(flight.has_leader(), "the leader keeps leading");
}

#[test]
fn api_calls_carry_the_machines_retry_policy_and_refuse_foreign_hosts() {
    let mut flight = flight();
    let request = http::Request::get("https://evil.example/pod/v1/x").body(Vec::new()).unwrap();
    assert!(matches!(flight.api_call(request), Err(UsageError::ForeignUri(_))));
    let request = http::Request::get("https://pod.example/agent/v1/x").body(Vec::new()).unwrap();
    assert_eq!(flight.api_call(request).unwrap().target(), crate::Target::Agent);
}

#[test]
fn flight_abandon_requests_counts_them_as_failed() {
    let mut flight = flight();
    let mut leader = flight.join(Want::Current).unwrap();
    requests(&mut flight, &mut leader, NOW);
    flight.abandon_requests(NOW);
    assert!(matches!(flight.poll(&mut leader, NOW), Step::WaitUntil(_)));
}

#[test]
fn each_api_call_draws_its_own_jitter_seed_from_the_machine() {
    let retry =
        crate::ApiRetry::new(RetryPolicy::new(5, Duration::from_millis(500), 2.0, Duration::from_secs(60)).unwrap());
    let config =
        Config::certificate(Endpoints::single("https://pod.example").unwrap(), "bot").unwrap().with_api_retry(retry);
    let waits = |flight: &mut Flight| {
        let request = http::Request::get("https://pod.example/pod/v1/x").body(Vec::new()).unwrap();
        let mut call = flight.api_call(request).unwrap();
        (0..3)
            .map(|_| match call.handle(Ok(status(503)), NOW) {
                crate::ApiStep::RetryAt(at) => at,
                other => panic!("{other:?}"),
            })
            .collect::<Vec<_>>()
    };
    let mut one = Flight::new(Authenticator::new(config.clone(), 5));
    let first = waits(&mut one);
    assert_ne!(first, waits(&mut one), "two calls of one bot do not retry in step");
    let mut same = Flight::new(Authenticator::new(config, 5));
    assert_eq!(waits(&mut same), first, "the machine's seed replays them");
}
