//! A proxy set for one service carries that service's requests only (async driver).

mod common;

use common::*;
use symphony_auth_async::Bot;
use symphony_auth_testkit::{Endpoint, Role};

/// A minimal HTTP CONNECT proxy on loopback: tunnels every connection and records each `CONNECT` target.
fn connect_proxy() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let targets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = std::sync::Arc::clone(&targets);
    // Detached: it lives as long as the test process, serving whatever connects.
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = std::sync::Arc::clone(&seen);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let target = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap() <= 2 {
                        break;
                    }
                }
                seen.lock().unwrap().push(target.clone());
                let upstream = TcpStream::connect(&target).unwrap();
                let mut client_write = client.try_clone().unwrap();
                client_write.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").unwrap();
                let mut upstream_read = upstream.try_clone().unwrap();
                let mut upstream_write = upstream;
                let down = std::thread::spawn(move || std::io::copy(&mut upstream_read, &mut client_write));
                let _ = std::io::copy(&mut reader, &mut upstream_write);
                let _ = upstream_write.shutdown(std::net::Shutdown::Write);
                let _ = down.join();
            });
        }
    });
    (url, targets)
}

#[tokio::test]
async fn a_proxy_for_one_service_carries_that_service_only() {
    let server = https_server(|_| {});
    let (proxy, targets) = connect_proxy();
    let bot = Bot::builder(rsa_config(server.rsa_endpoints()))
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .service_proxy(symphony_auth_core::Service::Pod, Some(&proxy))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(bot.session_info().await.unwrap().username, BOT);
    let targets = targets.lock().unwrap().clone();
    let pod = server.addr(Role::Pod).to_string();
    assert!(!targets.is_empty() && targets.iter().all(|t| *t == pod), "only the pod through the proxy: {targets:?}");
    assert_eq!(server.counters().requests(Endpoint::KeyManagerLogin), 1, "the key manager was reached directly");
}

/// An extension app's calls go through the proxy of the service they are on, as a bot's do: the pod's own proxy
/// carries E1 and E3, and a root proxy that is down is never tried for them.
#[tokio::test]
async fn an_extension_app_uses_its_services_proxy() {
    use std::sync::Arc;

    use symphony_auth_async::ExtensionAppClient;
    use symphony_auth_core::driver::{ClientOptions, ProxyUrl, parse_certificates};
    use symphony_auth_core::{AppCredential, AppId, ExtensionApp, RsaSigner, Service};

    let server = https_server(|pod| pod.add_extension_app("my-app", PUBLIC_KEY).unwrap());
    let (proxy, targets) = connect_proxy();
    // A port bound and closed at once: a request sent through the root proxy fails.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut options = ClientOptions::new();
    options.extra_roots = parse_certificates(server.ca_pem().as_bytes()).unwrap();
    options.proxy = Some(ProxyUrl::parse(&format!("http://{dead}")).unwrap());
    options.service_proxies = vec![(Service::Pod, Some(ProxyUrl::parse(&proxy).unwrap()))];
    let signer = Arc::new(RsaSigner::from_pem(KEY).unwrap());
    let app = ExtensionApp::new(server.rsa_endpoints(), AppId::new("my-app").unwrap(), AppCredential::Rsa(signer));
    let client = ExtensionAppClient::new(app, &options).unwrap();
    let tokens = client.authenticate().await.unwrap();
    assert_eq!(tokens.app_id(), "my-app");
    client.fetch_pod_certificate().await.unwrap();
    let targets = targets.lock().unwrap().clone();
    let pod = server.addr(Role::Pod).to_string();
    assert!(!targets.is_empty() && targets.iter().all(|t| *t == pod), "through the pod's proxy: {targets:?}");
}
