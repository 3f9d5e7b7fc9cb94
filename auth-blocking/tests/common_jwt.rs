//! Common JWT against the fake pod over HTTPS: the bearer replaces `sessionToken` on pod calls, is refreshed
//! before it expires, and a session the pod ended leads to one new login.

mod common;

use std::time::Duration;

use common::{https_server, rsa_config};
use symphony_auth_blocking::Bot;
use symphony_auth_core::{BearerAuth, CommonJwtSettings, echo, session_info};
use symphony_auth_testkit::{Endpoint, FakePodServer, Fault};

fn bot(server: &FakePodServer, settings: CommonJwtSettings) -> Bot {
    let config = rsa_config(server.rsa_endpoints(), common::KEY_2048).with_common_jwt(settings);
    Bot::builder(config)
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[test]
fn pod_calls_carry_a_bearer_refreshed_before_it_expires() {
    // Tokens live 3 s and are refreshed 2 s before they expire: each is used for about a second.
    let server = https_server(|pod| pod.set_access_token_ttl(Duration::from_secs(3)));
    let bot = bot(&server, CommonJwtSettings::on_pod_calls().with_leeway(Duration::from_secs(2)));
    assert_eq!(bot.session_info().unwrap().username, common::BOT);
    assert_eq!(bot.session_info().unwrap().username, common::BOT);
    assert_eq!(bot.common_jwt_refreshes(), 1, "the cached bearer serves while it is fresh");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bot.common_jwt_refreshes() < 2 {
        assert!(std::time::Instant::now() < deadline, "no refresh within 10 s");
        assert_eq!(bot.send(session_info(bot.config().endpoints())).unwrap().status(), 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let counters = server.counters();
    assert_eq!(counters.responses(Endpoint::SessionInfo, 401), 0, "refreshed before expiry: never refused");
    assert_eq!(counters.requests(Endpoint::SessionLogin), 1, "A5 refreshes, no new login");
    // Agent calls keep their session and key-manager tokens.
    assert_eq!(bot.send(echo(bot.config().endpoints(), "hi")).unwrap().status(), 200);
}

#[test]
fn a_session_the_pod_ended_is_replaced_through_one_login() {
    let server = https_server(|_| {});
    let bot = bot(&server, CommonJwtSettings::on_pod_calls());
    assert_eq!(bot.session_info().unwrap().username, common::BOT);
    server.pod().expire_all();
    server.pod().expire_access_tokens();
    // Bearer refused → A5 with the dead session refused → one login → A5 → replay with the fresh bearer.
    assert_eq!(bot.session_info().unwrap().username, common::BOT);
    let counters = server.counters();
    assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
    assert_eq!(counters.responses(Endpoint::AccessToken, 401), 1);
    assert_eq!(bot.common_jwt_refreshes(), 2);
}

#[test]
fn per_call_bearers_go_only_where_asked() {
    let server = https_server(|_| {});
    let bot = bot(&server, CommonJwtSettings::per_call());
    assert_eq!(bot.session_info().unwrap().username, common::BOT);
    assert_eq!(bot.common_jwt_refreshes(), 0);
    let mut asked = session_info(bot.config().endpoints());
    asked.extensions_mut().insert(BearerAuth);
    assert_eq!(bot.send(asked).unwrap().status(), 200);
    assert_eq!(bot.common_jwt_refreshes(), 1);
}

#[test]
fn concurrent_calls_without_a_bearer_share_one_a5_call() {
    // The first A5 answer is held back, so that every thread asks while it is out.
    let server = https_server(|pod| pod.inject(Endpoint::AccessToken, 1, Fault::Delay(Duration::from_millis(500))));
    let bot = bot(&server, CommonJwtSettings::on_pod_calls());
    bot.tokens().unwrap();
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    bot.session_info().map(|info| info.username)
                })
            })
            .collect();
        for thread in threads {
            assert_eq!(thread.join().unwrap().unwrap(), common::BOT);
        }
    });
    assert_eq!(server.counters().requests(Endpoint::AccessToken), 1, "one A5 call for every thread");
    assert_eq!(bot.common_jwt_refreshes(), 1);
}
