//! `SymphonyAuth` in a ureq agent, against the fake pod: tokens on the bot's services only, an expiry in the
//! middle of a run, a storm of 401s costing one login, and 401s seen as `Error::StatusCode`. Every request has a
//! timeout (the agent's 10 s, the bot's 5 s), which bounds every wait here.

mod common;

use std::sync::Barrier;
use std::time::Duration;

use common::*;
use symphony_auth_blocking::{Bot, Error, SymphonyAuth};
use symphony_auth_testkit::{Endpoint, FakePodServer, Fault, HeaderRecorder};
use ureq::Agent;

/// The application's agent with the middleware; statuses as errors (ureq's default) unless `statuses` is set.
fn agent(bot: &Bot, statuses_as_responses: bool) -> Agent {
    let config = Agent::config_builder()
        .middleware(SymphonyAuth::new(bot.clone()))
        .http_status_as_error(!statuses_as_responses)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    Agent::new_with_config(config)
}

fn session_info(agent: &Agent, server: &FakePodServer) -> Result<u16, ureq::Error> {
    Ok(agent.get(format!("{}/pod/v2/sessioninfo", server.pod_url())).call()?.status().as_u16())
}

fn echo(agent: &Agent, server: &FakePodServer) -> Result<u16, ureq::Error> {
    let url = format!("{}/agent/v1/util/echo", server.agent_url());
    Ok(agent.post(url).header("content-type", "application/json").send(r#"{"message":"hi"}"#)?.status().as_u16())
}

#[test]
fn pod_and_agent_calls_get_their_tokens_and_an_expiry_mid_run_costs_one_login() {
    for statuses_as_responses in [false, true] {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let agent = agent(&bot, statuses_as_responses);
        for round in 0..10 {
            if round == 5 {
                server.pod().expire_sessions();
            }
            assert_eq!(session_info(&agent, &server).unwrap(), 200, "round {round}");
            assert_eq!(echo(&agent, &server).unwrap(), 200, "round {round}");
        }
        let counters = server.counters();
        assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 401), 1);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 200), 10);
        assert_eq!(counters.responses(Endpoint::Echo, 200), 10);
    }
}

const THREADS: usize = 50;

fn storm(agent: &Agent, server: &FakePodServer) -> Vec<u16> {
    let start = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    session_info(agent, server).unwrap()
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).collect()
    })
}

#[test]
fn a_storm_of_401s_through_the_middleware_causes_exactly_one_login() {
    let server = server(|pod| pod.set_latency(Endpoint::SessionInfo, Duration::from_millis(200)));
    let bot = rsa_bot(&server);
    let agent = agent(&bot, false);
    assert!(storm(&agent, &server).iter().all(|s| *s == 200));
    {
        let mut pod = server.pod();
        pod.expire_sessions();
        // Every call is held long enough for all of them to be sent with the old tokens.
        pod.set_latency(Endpoint::SessionInfo, Duration::from_secs(1));
        pod.reset_counters();
    }
    assert!(storm(&agent, &server).iter().all(|s| *s == 200));
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
    assert_eq!(counters.responses(Endpoint::SessionInfo, 401), THREADS as u64);
    assert_eq!(counters.responses(Endpoint::SessionInfo, 200), THREADS as u64);
}

#[test]
fn a_request_to_another_host_goes_out_untouched() {
    let server = server(|_| {});
    let recorder = HeaderRecorder::start().unwrap();
    let bot = rsa_bot(&server);
    let agent = agent(&bot, false);
    let response = agent.get(format!("{}/pod/v2/sessioninfo", recorder.url())).header("x-caller", "kept").call();
    assert_eq!(response.unwrap().status(), 200);
    assert_eq!(server.counters().total_requests(), 0, "no login for a foreign host");
    assert_eq!(echo(&agent, &server).unwrap(), 200);
    agent.post(format!("{}/agent/v1/util/echo", recorder.url())).send("{}").unwrap();
    let requests = recorder.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("sessionToken"), None, "{request:?}");
        assert_eq!(request.header("keyManagerToken"), None, "{request:?}");
    }
    assert_eq!(requests[0].header("x-caller"), Some("kept"));
}

#[test]
fn a_second_401_is_the_bots_error_and_other_statuses_stay_ureqs() {
    let server = server(|_| {});
    let bot = rsa_bot(&server);
    let agent = agent(&bot, false);
    server.pod().inject(Endpoint::SessionInfo, 2, Fault::status(401));
    let error = session_info(&agent, &server).unwrap_err();
    let ureq::Error::Other(inner) = &error else { panic!("{error:?}") };
    assert!(matches!(inner.downcast_ref::<Error>(), Some(Error::Unauthorized { generation: 2 })), "{error:?}");
    server.pod().inject(Endpoint::SessionInfo, 1, Fault::status(404));
    assert!(matches!(session_info(&agent, &server), Err(ureq::Error::StatusCode(404))));
}
