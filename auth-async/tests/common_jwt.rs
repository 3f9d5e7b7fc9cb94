//! Common JWT against the fake pod over HTTPS, as in the blocking driver: the bearer on pod calls, refreshed
//! before it expires, and one login when the pod ended the session.

mod common;

use std::time::Duration;

use common::{BOT, https_server, rsa_config};
use symphony_auth_async::Bot;
use symphony_auth_core::{CommonJwtSettings, session_info};
use symphony_auth_testkit::{Endpoint, FakePodServer, Fault};

fn bot(server: &FakePodServer, settings: CommonJwtSettings) -> Bot {
    Bot::builder(rsa_config(server.rsa_endpoints()).with_common_jwt(settings))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn pod_calls_carry_a_bearer_refreshed_before_it_expires() {
    let server = https_server(|pod| pod.set_access_token_ttl(Duration::from_secs(3)));
    let bot = bot(&server, CommonJwtSettings::on_pod_calls().with_leeway(Duration::from_secs(2)));
    assert_eq!(bot.session_info().await.unwrap().username, BOT);
    assert_eq!(bot.common_jwt_refreshes(), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while bot.common_jwt_refreshes() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no refresh within 10 s");
        assert_eq!(bot.send(session_info(bot.config().endpoints())).await.unwrap().status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counters = server.counters();
    assert_eq!(counters.responses(Endpoint::SessionInfo, 401), 0);
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
}

#[tokio::test]
async fn a_session_the_pod_ended_is_replaced_through_one_login() {
    let server = https_server(|_| {});
    let bot = bot(&server, CommonJwtSettings::on_pod_calls());
    assert_eq!(bot.session_info().await.unwrap().username, BOT);
    server.pod().expire_all();
    server.pod().expire_access_tokens();
    assert_eq!(bot.session_info().await.unwrap().username, BOT);
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
    assert_eq!(counters.responses(Endpoint::AccessToken, 401), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_without_a_bearer_share_one_a5_call() {
    // The first A5 answer is held back, so that every task asks while it is out.
    let server = https_server(|pod| pod.inject(Endpoint::AccessToken, 1, Fault::Delay(Duration::from_millis(500))));
    let bot = bot(&server, CommonJwtSettings::on_pod_calls());
    bot.tokens().await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let bot = bot.clone();
            tokio::spawn(async move { bot.session_info().await.map(|info| info.username) })
        })
        .collect();
    for task in tasks {
        let name = tokio::time::timeout(Duration::from_secs(30), task).await.expect("no task hangs");
        assert_eq!(name.unwrap().unwrap(), BOT);
    }
    assert_eq!(server.counters().requests(Endpoint::AccessToken), 1, "one A5 call for every task");
    assert_eq!(bot.common_jwt_refreshes(), 1);
}

/// A task cancelled while its A5 call is out hands the call over: the others do not wait for it forever.
#[tokio::test]
async fn a_cancelled_a5_call_is_taken_over() {
    let server = https_server(|pod| pod.inject(Endpoint::AccessToken, 1, Fault::Delay(Duration::from_secs(60))));
    let bot = bot(&server, CommonJwtSettings::on_pod_calls());
    bot.tokens().await.unwrap();
    let stuck = {
        let bot = bot.clone();
        tokio::spawn(async move { bot.session_info().await })
    };
    // On this single-threaded runtime the spawned tasks run while the test awaits.
    let out = async {
        while server.counters().requests(Endpoint::AccessToken) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), out).await.expect("the first A5 call goes out");
    let follower = {
        let bot = bot.clone();
        tokio::spawn(async move { bot.session_info().await.map(|info| info.username) })
    };
    // One turn of the runtime: the follower finds the A5 call out and waits for it.
    tokio::task::yield_now().await;
    stuck.abort();
    let name = tokio::time::timeout(Duration::from_secs(30), follower).await.expect("the follower takes over");
    assert_eq!(name.unwrap().unwrap(), BOT);
    assert_eq!(server.counters().requests(Endpoint::AccessToken), 2);
}
