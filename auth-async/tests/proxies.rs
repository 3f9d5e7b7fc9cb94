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
