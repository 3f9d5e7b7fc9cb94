//! ureq agents configured for the fake: no proxy, statuses as values, the fake's CA, client certs.
#![allow(dead_code)]

use std::time::Duration;

use symphony_auth_testkit::ClientIdentity;
use ureq::Agent;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// An agent trusting `ca_pem` (if any) and presenting `identity` (if any).
pub fn agent(ca_pem: Option<&str>, identity: Option<(&str, &str)>) -> Agent {
    let mut tls = TlsConfig::builder();
    if let Some(ca) = ca_pem {
        let ca = Certificate::from_pem(ca.as_bytes()).unwrap();
        tls = tls.root_certs(RootCerts::new_with_certs(&[ca]));
    }
    if let Some((cert, key)) = identity {
        let cert = Certificate::from_pem(cert.as_bytes()).unwrap();
        let key = PrivateKey::from_pem(key.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
    }
    Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .tls_config(tls.build())
        .build()
        .new_agent()
}

pub fn identity(id: &ClientIdentity) -> Option<(&str, &str)> {
    Some((id.cert_pem(), id.key_pem()))
}

/// Status and body of a response.
pub fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> (u16, serde_json::Value) {
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}
