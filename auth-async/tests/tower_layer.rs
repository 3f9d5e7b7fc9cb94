//! `SymphonyAuthLayer` around hyper-util's client, against the fake pod: tokens on the bot's services only, an
//! expiry in the middle of a run, a storm of 401s costing one login, and a body that cannot be replayed.
#![cfg(feature = "tower")]

mod common;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::StatusCode;
use http_body_util::Full;
use hyper::body::{Body, Frame};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use symphony_auth_async::{Bot, Error, ReplayBody, SymphonyAuthLayer, SymphonyAuthService};
use symphony_auth_testkit::{Endpoint, FakePodServer, Fault, HeaderRecorder};
use tower_layer::Layer;
use tower_service::Service;

/// Fails the test when `test` takes longer than 60 s.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), test).await.expect("the test timed out")
}

type Authed<B> = SymphonyAuthService<Client<HttpConnector, B>>;

fn service<B>(bot: &Bot) -> Authed<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let client = Client::builder(TokioExecutor::new()).build_http::<B>();
    SymphonyAuthLayer::new(bot.clone()).layer(client)
}

async fn status<B>(
    service: &mut Authed<B>,
    request: http::Request<B>,
) -> Result<StatusCode, symphony_auth_async::BoxError>
where
    B: ReplayBody + Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    poll_fn(|cx| service.poll_ready(cx)).await?;
    Ok(service.call(request).await?.status())
}

fn get(url: String) -> http::Request<Full<Bytes>> {
    http::Request::get(url).body(Full::default()).unwrap()
}

fn echo(server: &FakePodServer) -> http::Request<Full<Bytes>> {
    http::Request::post(format!("{}/agent/v1/util/echo", server.agent_url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"message":"hi"}"#)))
        .unwrap()
}

#[tokio::test]
async fn pod_and_agent_calls_get_their_tokens_and_an_expiry_mid_run_costs_one_login() {
    within(async {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let mut service = service(&bot);
        for round in 0..10 {
            if round == 5 {
                server.pod().expire_sessions();
            }
            let info = get(format!("{}/pod/v2/sessioninfo", server.pod_url()));
            assert_eq!(status(&mut service, info).await.unwrap(), StatusCode::OK, "round {round}");
            assert_eq!(status(&mut service, echo(&server)).await.unwrap(), StatusCode::OK, "round {round}");
        }
        let counters = server.counters();
        assert_eq!(counters.requests(Endpoint::SessionLogin), 2);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 401), 1);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 200), 10);
        assert_eq!(counters.responses(Endpoint::Echo, 200), 10);
    })
    .await;
}

const TASKS: usize = 200;

async fn storm(service: &Authed<Full<Bytes>>, server: &FakePodServer) -> Vec<StatusCode> {
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let url = format!("{}/pod/v2/sessioninfo", server.pod_url());
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (mut service, start, url) = (service.clone(), Arc::clone(&start), url.clone());
            tokio::spawn(async move {
                start.wait().await;
                status(&mut service, get(url)).await.unwrap()
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
async fn a_storm_of_401s_through_the_layer_causes_exactly_one_login() {
    within(async {
        let server = server(|pod| pod.set_latency(Endpoint::SessionInfo, Duration::from_millis(200)));
        let bot = rsa_bot(&server);
        let service = service(&bot);
        // Warm-up: the connections the storm holds open together.
        assert!(storm(&service, &server).await.iter().all(|s| *s == StatusCode::OK));
        {
            let mut pod = server.pod();
            pod.expire_sessions();
            pod.set_latency(Endpoint::SessionInfo, Duration::from_secs(1));
            pod.reset_counters();
        }
        assert!(storm(&service, &server).await.iter().all(|s| *s == StatusCode::OK));
        let counters = server.counters();
        assert_eq!(counters.requests(Endpoint::SessionLogin), 1);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 401), TASKS as u64);
        assert_eq!(counters.responses(Endpoint::SessionInfo, 200), TASKS as u64);
    })
    .await;
}

#[tokio::test]
async fn a_request_to_another_host_goes_out_untouched() {
    within(async {
        let server = server(|_| {});
        let recorder = HeaderRecorder::start().unwrap();
        let bot = rsa_bot(&server);
        let mut service = service(&bot);
        let foreign = http::Request::get(format!("{}/pod/v2/sessioninfo", recorder.url()))
            .header("x-caller", "kept")
            .body(Full::default())
            .unwrap();
        assert_eq!(status(&mut service, foreign).await.unwrap(), StatusCode::OK);
        assert_eq!(server.counters().total_requests(), 0, "no login for a foreign host");
        assert_eq!(status(&mut service, echo(&server)).await.unwrap(), StatusCode::OK);
        let foreign = http::Request::post(format!("{}/agent/v1/util/echo", recorder.url())).body(Full::default());
        assert_eq!(status(&mut service, foreign.unwrap()).await.unwrap(), StatusCode::OK);
        let requests = recorder.requests();
        assert_eq!(requests.len(), 2);
        for request in &requests {
            assert_eq!(request.header("sessionToken"), None, "{request:?}");
            assert_eq!(request.header("keyManagerToken"), None, "{request:?}");
        }
        assert_eq!(requests[0].header("x-caller"), Some("kept"));
    })
    .await;
}

/// A body the layer may not send twice.
struct Once(Full<Bytes>);

impl Body for Once {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }
}

impl ReplayBody for Once {
    fn try_clone(&self) -> Option<Self> {
        None
    }
}

#[tokio::test]
async fn a_body_that_cannot_be_cloned_is_sent_once_and_its_401_returned_as_it_is() {
    within(async {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let mut service = service::<Once>(&bot);
        let once = || {
            http::Request::post(format!("{}/agent/v1/util/echo", server.agent_url()))
                .header("content-type", "application/json")
                .body(Once(Full::new(Bytes::from_static(br#"{"message":"once"}"#))))
                .unwrap()
        };
        assert_eq!(status(&mut service, once()).await.unwrap(), StatusCode::OK);
        server.pod().expire_sessions();
        assert_eq!(status(&mut service, once()).await.unwrap(), StatusCode::UNAUTHORIZED);
        assert_eq!(server.counters().requests(Endpoint::SessionLogin), 1);
        let mut replayable = self::service(&bot);
        assert_eq!(status(&mut replayable, echo(&server)).await.unwrap(), StatusCode::OK);
        assert_eq!(server.counters().requests(Endpoint::SessionLogin), 2);
    })
    .await;
}

#[tokio::test]
async fn a_second_401_is_the_bots_error() {
    within(async {
        let server = server(|_| {});
        let bot = rsa_bot(&server);
        let mut service = service(&bot);
        server.pod().inject(Endpoint::SessionInfo, 2, Fault::status(401));
        let error = status(&mut service, get(format!("{}/pod/v2/sessioninfo", server.pod_url()))).await.unwrap_err();
        assert!(matches!(error.downcast_ref::<Error>(), Some(Error::Unauthorized { generation: 2 })), "{error:?}");
    })
    .await;
}
