//! Helpers shared by the test files: fixture keys, hand-signed JWTs, hand-built requests.
#![allow(dead_code, unreachable_pub)]

pub mod net;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::PrivateKey;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::sha2::Sha512;
use serde_json::{Value, json};
use symphony_auth_testkit::Reply;

pub const BOT_2048_KEY: &str = include_str!("../../../fixtures/keys/bot-2048.pkcs8.pem");
pub const BOT_2048_PUB: &str = include_str!("../../../fixtures/keys/bot-2048.pub.pem");
pub const BOT_4096_KEY: &str = include_str!("../../../fixtures/keys/bot-4096.pkcs8.pem");
pub const BOT_4096_PUB: &str = include_str!("../../../fixtures/keys/bot-4096.pub.pem");
pub const OTHER_2048_KEY: &str = include_str!("../../../fixtures/keys/other-2048.pkcs8.pem");
pub const OTHER_2048_PUB: &str = include_str!("../../../fixtures/keys/other-2048.pub.pem");

/// A fixed instant, so in-process tests do not depend on the real clock.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

pub fn key(pem: &str) -> PrivateKey {
    PrivateKey::from_pkcs8_pem(pem).unwrap()
}

/// A compact JWS with any header and claims, RS512-signed by `key`.
pub fn jwt_with(key: &PrivateKey, header: &Value, claims: &Value) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key.pkcs1v15_sign::<Sha512>(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A login JWT as the BDKs write it: `{"alg":"RS512"}`, `sub`, `exp`.
pub fn login_jwt(key: &PrivateKey, sub: &str, exp: u64) -> String {
    jwt_with(key, &json!({"alg": "RS512"}), &json!({"sub": sub, "exp": exp}))
}

pub fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::post(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.to_vec()).unwrap()
}

pub fn get(path: &str, headers: &[(&str, &str)]) -> http::Request<Vec<u8>> {
    let mut builder = http::Request::get(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Vec::new()).unwrap()
}

/// `POST path` with `{"token": jwt}` and a JSON content type.
pub fn rsa_login(path: &str, jwt: &str) -> http::Request<Vec<u8>> {
    post(path, &[("Content-Type", "application/json")], json!({ "token": jwt }).to_string().as_bytes())
}

/// The `token` of a 200 login reply, checking `name`.
pub fn token(reply: &Reply, name: &str) -> String {
    assert_eq!(reply.status(), Some(200), "login failed: {:?}", reply.json());
    let body = reply.json().unwrap();
    assert_eq!(body["name"], name);
    body["token"].as_str().unwrap().to_owned()
}

/// The claims of a JWT, decoded without verification.
pub fn claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Asserts a `{"code":status,"message":...}` error reply and returns the message.
pub fn error(reply: &Reply, status: u16) -> String {
    assert_eq!(reply.status(), Some(status), "{:?}", reply.json());
    let body = reply.json().expect("JSON error body");
    assert_eq!(body["code"], status);
    body["message"].as_str().expect("message").to_owned()
}
