//! A datafeed read through a session expiry: `cargo run -p symphony-auth-examples --example datafeed`.
//!
//! It starts the embedded fake pod, key manager and agent (auth-testkit), gives the bot's own reqwest client the
//! `SymphonyAuth` middleware, creates a datafeed (`POST /agent/v5/datafeeds`) and reads it in a loop
//! (`POST /agent/v5/datafeeds/{id}/read` with the last `ackId`). Half-way through, every session on the fake
//! expires: the next read meets a 401, the middleware logs in again once and replays it, and the **same
//! datafeed** keeps delivering, as Symphony's datafeeds survive a re-login. It checks that every message
//! arrived once, on one datafeed, with two logins, and fails otherwise.

use std::error::Error;
use std::sync::Arc;

use reqwest_middleware::ClientBuilder;
use serde_json::{Value, json};
use symphony_auth_async::{Bot, SymphonyAuth};
use symphony_auth_core::{Config, RsaSigner};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer};

const BOT: &str = "datafeed.bot";
const KEY: &[u8] = include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem");
const PUBLIC_KEY: &str = include_str!("../../fixtures/keys/bot-2048.pub.pem");
const READS: usize = 6;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, PUBLIC_KEY)?;
    let server = FakePodServer::start(pod)?;
    println!("embedded fake pod: {} (pod), {} (agent)\n", server.pod_url(), server.agent_url());

    let config = Config::rsa(server.rsa_endpoints(), BOT, Arc::new(RsaSigner::from_pem(KEY)?))?;
    let bot = Bot::builder(config).build()?;
    let client = ClientBuilder::new(http_client()?).with(SymphonyAuth::new(bot.clone())).build();

    let created: Value =
        json_of(client.post(format!("{}/agent/v5/datafeeds", server.agent_url())).send().await?).await?;
    let id = created["id"].as_str().ok_or("the datafeed has no id")?.to_owned();
    println!("datafeed {id} created\n");
    println!("{:<6} {:<28} {:>6} {:>10} {:>7}", "read", "event", "events", "generation", "logins");

    let read_url = format!("{}/agent/v5/datafeeds/{id}/read", server.agent_url());
    let mut ack = String::new();
    let mut received = Vec::new();
    for read in 1..=READS {
        server.pod().publish_message(&format!("message {read}"));
        if read == READS / 2 + 1 {
            server.pod().expire_all();
            println!("{:<6} every session on the fake expires now", "");
        }
        let body = json!({ "ackId": ack }).to_string();
        let request = client.post(&read_url).header("content-type", "application/json").body(body);
        let answer = json_of(request.send().await?).await?;
        ack = answer["ackId"].as_str().ok_or("a read without ackId")?.to_owned();
        let events = answer["events"].as_array().cloned().unwrap_or_default();
        for event in &events {
            let text = event["payload"]["messageSent"]["message"]["message"].as_str().unwrap_or_default();
            received.push(text.to_owned());
        }
        let event = events.first().and_then(|e| e["type"].as_str()).unwrap_or("-");
        let generation = bot.tokens().await?.generation().get();
        let logins = server.counters().requests(Endpoint::SessionLogin);
        println!("{read:<6} {event:<28} {:>6} {generation:>10} {logins:>7}", events.len());
    }

    let (logins, feeds) = (server.counters().requests(Endpoint::SessionLogin), server.pod().datafeed_count());
    let refused = server.counters().responses(Endpoint::DatafeedRead, 401);
    println!(
        "\n{} messages on datafeed {id}; {refused} read(s) refused with 401, {logins} logins, {feeds} datafeed(s)",
        received.len()
    );
    let all_once = received.len() == READS
        && (1..=READS).all(|n| received.iter().filter(|t| t.contains(&format!("message {n}<"))).count() == 1);
    if !all_once || logins != 2 || feeds != 1 || refused != 1 {
        return Err("the datafeed did not survive the re-login as expected".into());
    }
    println!("the same datafeed kept delivering across the re-login");
    Ok(())
}

/// The application's own reqwest client. This workspace builds reqwest without a TLS provider of its own, so it
/// is given ring's; with reqwest's default features `reqwest::Client::new()` does.
fn http_client() -> Result<reqwest::Client, Box<dyn Error>> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(reqwest::Client::builder().tls_backend_preconfigured(tls).no_proxy().build()?)
}

/// The JSON body of a successful answer; an error naming the status otherwise.
async fn json_of(response: reqwest::Response) -> Result<Value, Box<dyn Error>> {
    let status = response.status();
    if !status.is_success() {
        return Err(format!("the agent answered {status}").into());
    }
    Ok(serde_json::from_slice(&response.bytes().await?)?)
}
