use std::time::{Duration, SystemTime};

use http::Method;

use super::*;
use crate::endpoint::Endpoint;

fn request(method: Method, path: &str, headers: &[(&str, &str)], body: &str) -> Request<Vec<u8>> {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.as_bytes().to_vec()).unwrap()
}

fn answer(pod: &mut FakePod, now: SystemTime, request: Request<Vec<u8>>, peer: &Peer) -> (u16, Value) {
    let crate::Reply::Response(response) = pod.handle(now, request, peer) else { panic!("not a response") };
    (response.status().as_u16(), serde_json::from_slice(response.body()).unwrap_or(Value::Null))
}

fn session(pod: &mut FakePod, now: SystemTime) -> String {
    pod.add_cert_bot("bot").unwrap();
    let peer = Peer::with_certificate("bot");
    let (status, body) = answer(pod, now, request(Method::POST, "/sessionauth/v1/authenticate", &[], ""), &peer);
    assert_eq!(status, 200);
    body["token"].as_str().unwrap().to_owned()
}

#[test]
fn certificate_apps_get_tokens_that_expire_with_the_session_lifetime() {
    let mut pod = FakePod::new();
    pod.add_cert_extension_app("my-app");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let e2 = || request(Method::POST, "/sessionauth/v1/authenticate/extensionApp", &[], r#"{"appToken":"abc"}"#);
    let (status, body) = answer(&mut pod, now, e2(), &Peer::with_certificate("my-app"));
    assert_eq!(status, 200);
    assert_eq!(body["appId"], "my-app");
    assert_eq!(body["appToken"], "abc");
    assert_eq!(body["expireAt"], 1_700_003_600_000u64);
    assert_eq!(body["symphonyToken"].as_str().unwrap().len(), 64);
    let (status, _) = answer(&mut pod, now, e2(), &Peer::with_certificate("other"));
    assert_eq!(status, 401);
    let e4 = request(Method::GET, "/sessionauth/v1/app/pod/certificate", &[], "");
    let (status, body) = answer(&mut pod, now, e4, &Peer::with_certificate("my-app"));
    assert_eq!(status, 200);
    assert!(body["certificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(pod.counters().requests(Endpoint::CertExtensionAppLogin), 2);
}

#[test]
fn access_tokens_live_for_their_lifetime_and_stand_in_for_the_session_on_pod_calls() {
    let mut pod = FakePod::new();
    pod.set_access_token_ttl(Duration::from_secs(20));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let session = session(&mut pod, now);
    let peer = Peer::in_process();
    let a5 = |token: &str| request(Method::POST, "/login/idm/tokens?scope=", &[("sessionToken", token)], "");
    let (status, body) = answer(&mut pod, now, a5(&session), &peer);
    assert_eq!(status, 200);
    assert_eq!((body["token_type"].as_str(), body["expires_in"].as_u64()), (Some("Bearer"), Some(20)));
    let bearer = format!("Bearer {}", body["access_token"].as_str().unwrap());
    let info = || request(Method::GET, "/pod/v2/sessioninfo", &[("Authorization", bearer.as_str())], "");
    assert_eq!(answer(&mut pod, now, info(), &peer).0, 200);
    assert_eq!(answer(&mut pod, now + Duration::from_secs(20), info(), &peer).0, 401);
    assert_eq!(answer(&mut pod, now, a5("not-a-session"), &peer).0, 401);
    let (status, jwks) = answer(&mut pod, now, request(Method::GET, "/login/idm/keys", &[], ""), &peer);
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
}
