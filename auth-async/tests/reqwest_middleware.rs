//! `SymphonyAuth` in a reqwest-middleware client, against the fake pod: tokens on the bot's services only, an
//! expiry in the middle of a run, a storm of 401s costing one login, and a body that cannot be replayed.
#![cfg(feature = "reqwest-middleware")]

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use symphony_auth_async::{Bot, Error, SymphonyAuth};
use symphony_auth_testkit::{Endpoint, FakePodServer, HeaderRecorder};

/// Fails the test when `test` takes longer than 60 s.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), test).await.expect("the test timed out")
}

/// The bot's client: a reqwest client of the application's own (no proxy from the environment; this workspace's
/// reqwest has no TLS provider of its own, so it is given ring's) with the middleware.
fn client(bot: &Bot) -> ClientWithMiddleware {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let plain = reqwest::Client::builder().tls_backend_preconfigured(tls).no_proxy().build().unwrap();
    ClientBuilder::new(plain).with(SymphonyAuth::new(bot.clone())).build()
}

async fn session_info(client: &ClientWithMiddleware, server: &FakePodServer) -> StatusCode {
    client.get(format!("{}/pod/v2/sessioninfo", server.pod_url())).send().await.unwrap().status()
}

async fn echo(client: &ClientWithMiddleware, server: &FakePodServer) -> StatusCode {
    let url = format!("{}/agent/v1/util/echo", server.agent_url());
    let request = client.post(url).header("content-type", "application/json").body(r#"{"message":"hi"}"#);
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn pod_and_agent_calls_get_their_tokens_and_an_expiry_mid_run_costs_one_login() {
    within(async {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let client = client(&bot);
        for round in 0..10 {
            if round == 5 {
                server.pod().expire_sessions();
            }
            assert_eq!(session_info(&client, &server).await, StatusCode::OK, "round {round}");
            assert_eq!(echo(&client, &server).await, StatusCode::OK, "round {round}");
        }
        let counters = server.counters();
        assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 401), 1, "one call hit the expiry, then was replayed");
        assert_eq!(counters.responses(Endpoint::SessionInfo, 200), 10);
        assert_eq!(counters.responses(Endpoint::Echo, 200), 10);
        assert_eq!(bot.tokens().await.unwrap().generation().get(), 2);
    })
    .await;
}

const TASKS: usize = 200;

async fn storm(client: &ClientWithMiddleware, server: &FakePodServer) -> Vec<StatusCode> {
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let url = format!("{}/pod/v2/sessioninfo", server.pod_url());
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (client, start, url) = (client.clone(), Arc::clone(&start), url.clone());
            tokio::spawn(async move {
                start.wait().await;
                client.get(url).send().await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(TASKS);
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_401s_through_the_middleware_causes_exactly_one_login() {
    within(async {
        let server = server(|pod| pod.set_latency(Endpoint::SessionInfo, Duration::from_millis(200)));
        let bot = rsa_bot(&server);
        let client = client(&bot);
        // Warm-up: the connections the storm holds open together, so that opening them does not delay a call
        // past the re-login (it would then never see a 401).
        assert!(storm(&client, &server).await.iter().all(|s| *s == StatusCode::OK));
        {
            let mut pod = server.pod();
            pod.expire_sessions();
            // Every call is held long enough for all of them to be sent with the old tokens.
            pod.set_latency(Endpoint::SessionInfo, Duration::from_secs(1));
            pod.reset_counters();
        }
        assert!(storm(&client, &server).await.iter().all(|s| *s == StatusCode::OK));
        let counters = server.counters();
        assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 401), TASKS as u64);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 200), TASKS as u64);
    })
    .await;
}

#[tokio::test]
async fn a_request_to_another_host_goes_out_untouched_and_logs_nobody_in() {
    within(async {
        let server = server(|_| {});
        let recorder = HeaderRecorder::start().unwrap();
        let bot = rsa_bot(&server);
        let client = client(&bot);
        let response = client
            .get(format!("{}/pod/v2/sessioninfo", recorder.url()))
            .header("x-caller", "kept")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(server.counters().total_requests(), 0, "no login for a foreign host");
        // Now with tokens in hand: still none on the foreign host.
        assert_eq!(session_info(&client, &server).await, StatusCode::OK);
        client.post(format!("{}/agent/v1/util/echo", recorder.url())).body("{}").send().await.unwrap();
        let requests = recorder.requests();
        assert_eq!(requests.len(), 2);
        for request in &requests {
            assert_eq!(request.header("sessionToken"), None, "{request:?}");
            assert_eq!(request.header("keyManagerToken"), None, "{request:?}");
            assert_eq!(request.header("authorization"), None, "{request:?}");
        }
        assert_eq!(requests[0].header("x-caller"), Some("kept"));
    })
    .await;
}

#[tokio::test]
async fn a_streamed_body_is_sent_once_and_its_401_returned_as_it_is() {
    within(async {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let client = client(&bot);
        assert_eq!(echo(&client, &server).await, StatusCode::OK);
        server.pod().expire_sessions();
        let body = http_body_util::Full::new(bytes::Bytes::from_static(br#"{"message":"streamed"}"#));
        let response = client
            .post(format!("{}/agent/v1/util/echo", server.agent_url()))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap(body))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "no replay of a body that cannot be cloned");
        assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1, "and no login for it");
        // A buffered body after it: the one re-login and a replay.
        assert_eq!(echo(&client, &server).await, StatusCode::OK);
        assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
    })
    .await;
}

#[tokio::test]
async fn a_second_401_and_a_failed_login_are_the_bots_errors() {
    within(async {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let client = client(&bot);
        // Every session is refused: the replay after the re-login too.
        server.pod().inject(Endpoint::SessionInfo, 2, symphony_auth_testkit::Fault::status(401));
        let error = client.get(format!("{}/pod/v2/sessioninfo", server.pod_url())).send().await.unwrap_err();
        let bot_error = match &error {
            reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<Error>().unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(matches!(bot_error, Error::Unauthorized { generation: 2 }), "{bot_error:?}");

        let refused = common::server(|pod| {
            pod.add_rsa_bot(BOT, OTHER_PUBLIC_KEY).unwrap();
        });
        let bot = Bot::builder(pod_only(rsa_config(refused.rsa_endpoints()))).build().unwrap();
        let error =
            self::client(&bot).get(format!("{}/pod/v2/sessioninfo", refused.pod_url())).send().await.unwrap_err();
        let bot_error = match &error {
            reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<Error>().unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(matches!(bot_error, Error::Auth(_)), "{bot_error:?}");
        assert_eq!(refused.counters().requests(Endpoint::SessionInfo), 0, "no API call without tokens");
    })
    .await;
}
