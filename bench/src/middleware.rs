//! Measure 7, `middleware_overhead`: what each middleware costs per call over the bare client it sits in, beside
//! `Bot::send`, on the same echo endpoint (the approach of `overhead`: tokens already there, warm-up calls first,
//! the sides taken in a rotating order so that drift on a shared machine hits all of them alike).
//!
//! - blocking: `Bot::send`, a ureq agent with `SymphonyAuth`, the bare ureq agent (tokens added by hand);
//! - async: `Bot::send`, reqwest with the reqwest-middleware `SymphonyAuth`, the bare reqwest client; the tower
//!   `SymphonyAuthLayer` over hyper-util's client, and that client bare.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use symphony_auth_core::{
    JwtSigner, KEY_MANAGER_TOKEN_HEADER, RsaSigner, SESSION_TOKEN_HEADER, Tokens, USER_AGENT_VALUE, echo,
};
use symphony_auth_testkit::FakePodServer;
use tokio::runtime::Runtime;
use tower_layer::Layer;
use tower_service::Service;

use crate::fixture::{self, KEY_4096};
use crate::stats::{Summary, Table, cell, us};

/// Timed calls per side, after untimed warm-up calls.
const CALLS: usize = 2000;
const WARM_UP: usize = 200;
const BODY: &str = r#"{"message":"bench"}"#;

fn headers(tokens: &Tokens) -> (String, String) {
    let session = tokens.session().expose_secret().to_owned();
    let km = tokens.key_manager().expect("the fake grants a key-manager token").expose_secret().to_owned();
    (session, km)
}

/// One side: its driver, its name, the side it is compared with, and its samples.
struct Side {
    driver: &'static str,
    name: &'static str,
    baseline: Option<&'static str>,
    samples: Vec<Duration>,
}

impl Side {
    fn new(driver: &'static str, name: &'static str, baseline: Option<&'static str>) -> Self {
        Self { driver, name, baseline, samples: Vec::with_capacity(CALLS) }
    }
}

/// Runs `CALLS` rounds of every side (plus `WARM_UP` untimed), each round starting with the next side.
fn rounds(sides: &mut [Side], mut call: impl FnMut(usize)) {
    for i in 0..WARM_UP {
        (0..sides.len()).for_each(|k| call((i + k) % sides.len()));
    }
    for i in 0..CALLS {
        for k in 0..sides.len() {
            let which = (i + k) % sides.len();
            let t = Instant::now();
            call(which);
            sides[which].samples.push(t.elapsed());
        }
    }
}

fn blocking(server: &FakePodServer, signer: &Arc<dyn JwtSigner>) -> Vec<Side> {
    let bot = fixture::blocking_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let bare = fixture::bare_ureq();
    let with_middleware = ureq_agent(&bot);
    let (session, km) = headers(&bot.tokens().expect("login"));
    let url = format!("{}/agent/v1/util/echo", server.agent_url());
    let mut sides = vec![
        Side::new("blocking", "Bot::send", Some("ureq Agent")),
        Side::new("blocking", "ureq + SymphonyAuth", Some("ureq Agent")),
        Side::new("blocking", "ureq Agent", None),
    ];
    rounds(&mut sides, |which| match which {
        0 => {
            let response = bot.send(echo(bot.config().endpoints(), "bench")).expect("bot echo");
            assert_eq!(response.status(), 200);
            black_box(response);
        }
        1 => {
            let mut response = with_middleware
                .post(&url)
                .header("Content-Type", "application/json")
                .send(BODY)
                .expect("middleware echo");
            assert_eq!(response.status(), 200);
            black_box(response.body_mut().read_to_vec().expect("body"));
        }
        _ => {
            let mut response = bare
                .post(&url)
                .header(SESSION_TOKEN_HEADER, &session)
                .header(KEY_MANAGER_TOKEN_HEADER, &km)
                .header("Content-Type", "application/json")
                .send(BODY)
                .expect("bare echo");
            assert_eq!(response.status(), 200);
            black_box(response.body_mut().read_to_vec().expect("body"));
        }
    });
    sides
}

/// The bare agent's settings (`fixture::bare_ureq`) with the middleware.
fn ureq_agent(bot: &symphony_auth_blocking::Bot) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .timeout_connect(Some(symphony_auth_blocking::DEFAULT_CONNECT_TIMEOUT))
        .timeout_global(Some(symphony_auth_blocking::DEFAULT_TIMEOUT))
        .user_agent(USER_AGENT_VALUE)
        .tls_config(tls)
        .middleware(symphony_auth_blocking::SymphonyAuth::new(bot.clone()))
        .build()
        .new_agent()
}

fn asynchronous(rt: &Runtime, server: &FakePodServer, signer: &Arc<dyn JwtSigner>) -> Vec<Side> {
    let bot = fixture::async_bot(fixture::config(&server.rsa_endpoints(), Arc::clone(signer), true));
    let bare = fixture::bare_reqwest();
    let with_middleware = reqwest_middleware::ClientBuilder::new(fixture::bare_reqwest())
        .with(symphony_auth_async::SymphonyAuth::new(bot.clone()))
        .build();
    let url = format!("{}/agent/v1/util/echo", server.agent_url());
    let mut sides = vec![
        Side::new("async", "Bot::send", Some("reqwest Client")),
        Side::new("async", "reqwest + SymphonyAuth", Some("reqwest Client")),
        Side::new("async", "reqwest Client", None),
        Side::new("async", "hyper-util + SymphonyAuthLayer", Some("hyper-util Client")),
        Side::new("async", "hyper-util Client", None),
    ];
    rt.block_on(async {
        let (session, km) = headers(&bot.tokens().await.expect("login"));
        let mut hyper_client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut tower = symphony_auth_async::SymphonyAuthLayer::new(bot.clone()).layer(hyper_client.clone());
        let hyper_request = |tokens: bool| {
            let mut request = http::Request::post(&url).header("Content-Type", "application/json");
            if tokens {
                request = request.header(SESSION_TOKEN_HEADER, &session).header(KEY_MANAGER_TOKEN_HEADER, &km);
            }
            request.body(Full::new(Bytes::from_static(BODY.as_bytes()))).expect("a valid request")
        };
        let total = WARM_UP + CALLS;
        for i in 0..total {
            for k in 0..sides.len() {
                let which = (i + k) % sides.len();
                let t = Instant::now();
                match which {
                    0 => {
                        let response = bot.send(echo(bot.config().endpoints(), "bench")).await.expect("bot echo");
                        assert_eq!(response.status(), 200);
                        black_box(response);
                    }
                    1 | 2 => {
                        let response = if which == 1 {
                            let request =
                                with_middleware.post(&url).header("Content-Type", "application/json").body(BODY);
                            request.send().await.expect("middleware echo")
                        } else {
                            let request = bare
                                .post(&url)
                                .header(SESSION_TOKEN_HEADER, &session)
                                .header(KEY_MANAGER_TOKEN_HEADER, &km)
                                .header("Content-Type", "application/json")
                                .body(BODY);
                            request.send().await.expect("bare echo")
                        };
                        assert_eq!(response.status(), 200);
                        black_box(response.bytes().await.expect("body"));
                    }
                    3 => {
                        std::future::poll_fn(|cx| tower.poll_ready(cx)).await.expect("ready");
                        let response = tower.call(hyper_request(false)).await.expect("tower echo");
                        assert_eq!(response.status(), 200);
                        black_box(response.into_body().collect().await.expect("body").to_bytes());
                    }
                    _ => {
                        std::future::poll_fn(|cx| hyper_client.poll_ready(cx)).await.expect("ready");
                        let response = hyper_client.call(hyper_request(true)).await.expect("bare echo");
                        assert_eq!(response.status(), 200);
                        black_box(response.into_body().collect().await.expect("body").to_bytes());
                    }
                }
                if i >= WARM_UP {
                    sides[which].samples.push(t.elapsed());
                }
            }
        }
    });
    sides
}

pub(crate) fn run(rt: &Runtime) -> Value {
    let signer: Arc<dyn JwtSigner> = Arc::new(RsaSigner::from_pem(KEY_4096.0).expect("fixture key"));
    let server = fixture::fake_pod(KEY_4096.1);
    let mut sides = blocking(&server, &signer);
    sides.extend(asynchronous(rt, &server, &signer));

    let mut table = Table::new(
        format!("middleware_overhead: echo through each middleware vs its bare client, {CALLS} calls each, µs"),
        &["driver", "client", "p50 µs", "p99 µs", "mean µs", "p50 overhead", "p99 overhead"],
    );
    let mut out = json!({ "calls": CALLS });
    for side in &sides {
        let summary = Summary::of(&side.samples);
        let baseline = side.baseline.and_then(|name| {
            sides
                .iter()
                .find(|other| other.driver == side.driver && other.name == name)
                .map(|b| Summary::of(&b.samples))
        });
        let overhead = |f: fn(&Summary) -> f64| baseline.as_ref().map(|b| f(&summary) - f(b));
        let (p50, p99) = (overhead(|s| s.p50), overhead(|s| s.p99));
        table.row(vec![
            side.driver.to_owned(),
            side.name.to_owned(),
            cell(summary.p50 * 1e6, 1),
            cell(summary.p99 * 1e6, 1),
            cell(summary.mean * 1e6, 1),
            p50.map_or_else(String::new, |o| cell(o * 1e6, 1)),
            p99.map_or_else(String::new, |o| cell(o * 1e6, 1)),
        ]);
        let mut entry = summary.json_us();
        if let (Some(p50), Some(p99), Some(baseline)) = (p50, p99, side.baseline) {
            entry["over"] = json!(baseline);
            entry["overhead_p50_us"] = json!(us(p50));
            entry["overhead_p99_us"] = json!(us(p99));
        }
        out[side.driver][side.name] = entry;
    }
    table.print();
    out
}
