//! An arbitrary answer (status, `Retry-After`, `Date`, body) to the first login request of a fresh certificate
//! `Authenticator` (no signing). Checks: no panic; an `Event::Authenticated` only with a non-empty ASCII session
//! token (and authorization token, when present); `tokens().is_some() == (state() == Ready)`; no canary token (in
//! a `token` field, a JWT, or an echoed request at the start of an error page) in any event, error or `Debug`,
//! unless the fuzzer's own bytes already hold one (see `common::contains_secret`).
//!
//! After the first answer the same response also answers whatever the machine asks next (the key-manager leg,
//! retries after their timeout), a few rounds, so that `Auto`/`Always` key-manager policies can finish too.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use symphony_auth_core::{Authenticator, Config, Endpoints, Event, HttpResponse, KeyManagerPolicy, State, UnixTime};

mod common;
use common::{AUTHORIZATION_CANARY, ECHO_CANARY, JWT_CLAIM_CANARY, SESSION_CANARY};

#[derive(Arbitrary, Debug)]
enum Policy {
    Auto,
    Always,
    Never,
}

#[derive(Arbitrary, Debug)]
enum HeaderInput {
    /// Any bytes (skipped if not a valid header value).
    Raw(Vec<u8>),
    /// Delta-seconds, as text.
    Seconds(u64),
    /// An HTTP date this many seconds after the epoch (kept before year 9999, which `httpdate` cannot print).
    Date(u64),
}

#[derive(Arbitrary, Debug)]
enum SkdClaim {
    True,
    False,
    StringTrue,
    Absent,
}

#[derive(Arbitrary, Debug)]
enum Body {
    /// Any bytes; with `echo`, after a request quoted back (an error page that echoes what it was sent).
    Raw { bytes: Vec<u8>, echo: bool },
    /// `{"token": ..., "authorizationToken": ..., "name": ...}`; with `canary`, the tokens end with a canary.
    Token { token: String, authorization: Option<String>, name: Option<String>, canary: bool },
    /// A JWT-shaped session token with (or without) the simplified-key-delivery claim, and a canary claim.
    Jwt { skd: SkdClaim, bearer: bool, padding: bool, extra: String },
    /// `{"code": ..., "message": ...}`, as pods answer errors.
    Error { code: i64, message: String },
}

#[derive(Arbitrary, Debug)]
struct Input {
    status: u16,
    retry_after: Option<HeaderInput>,
    date: Option<HeaderInput>,
    policy: Policy,
    parallel: bool,
    seed: u64,
    now_millis: u64,
    body: Body,
}

fn header_value(input: &HeaderInput) -> Option<http::HeaderValue> {
    match input {
        HeaderInput::Raw(bytes) => http::HeaderValue::from_bytes(bytes).ok(),
        HeaderInput::Seconds(secs) => Some(http::HeaderValue::from(*secs)),
        HeaderInput::Date(secs) => {
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs % 253_402_300_800);
            http::HeaderValue::from_str(&httpdate::fmt_http_date(time)).ok()
        }
    }
}

/// The body, and the secrets in it beside the constant canaries (the JWT, whose text is the secret).
fn body_bytes(body: &Body) -> (Vec<u8>, Option<String>) {
    let bytes = match body {
        Body::Raw { bytes, echo } => {
            let mut out =
                if *echo { format!("POST /login HTTP/1.1\r\n{ECHO_CANARY}\r\n\r\n").into_bytes() } else { Vec::new() };
            out.extend_from_slice(bytes);
            out
        }
        Body::Token { token, authorization, name, canary } => {
            let mut object = serde_json::Map::new();
            let token = if *canary { format!("{token}{SESSION_CANARY}") } else { token.clone() };
            object.insert("token".into(), token.into());
            if let Some(authorization) = authorization {
                let authorization =
                    if *canary { format!("{authorization}{AUTHORIZATION_CANARY}") } else { authorization.clone() };
                object.insert("authorizationToken".into(), authorization.into());
            }
            if let Some(name) = name {
                object.insert("name".into(), name.clone().into());
            }
            serde_json::to_vec(&object).unwrap()
        }
        Body::Jwt { skd, bearer, padding, extra } => {
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), "fuzz.bot".into());
            claims.insert("jti".into(), JWT_CLAIM_CANARY.into());
            claims.insert("extra".into(), extra.clone().into());
            match skd {
                SkdClaim::True => drop(claims.insert(symphony_auth_core::SKD_CLAIM.into(), true.into())),
                SkdClaim::False => drop(claims.insert(symphony_auth_core::SKD_CLAIM.into(), false.into())),
                SkdClaim::StringTrue => drop(claims.insert(symphony_auth_core::SKD_CLAIM.into(), "true".into())),
                SkdClaim::Absent => {}
            }
            let mut payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
            if *padding {
                payload.push_str("==");
            }
            let jwt = format!("eyJhbGciOiJSUzUxMiJ9.{payload}.c2ln");
            let token = if *bearer { format!("Bearer {jwt}") } else { jwt.clone() };
            return (serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap(), Some(jwt));
        }
        Body::Error { code, message } => {
            serde_json::to_vec(&serde_json::json!({ "code": code, "message": message })).unwrap()
        }
    };
    (bytes, None)
}

/// Everything a user of the machine can print after an input: its `Debug`, and the tokens' `Debug`.
fn check_no_leak(machine: &Authenticator, secrets: &[&str]) {
    common::assert_debug_clean("Authenticator", machine, secrets);
    if let Some(tokens) = machine.tokens() {
        common::assert_debug_clean("Tokens", &tokens, secrets);
    }
}

fn check_invariants(machine: &Authenticator) {
    assert_eq!(machine.tokens().is_some(), machine.state() == State::Ready, "tokens() vs state()");
}

fn drain_events(machine: &mut Authenticator, secrets: &[&str]) {
    while let Some(event) = machine.poll_event() {
        common::assert_debug_clean("event", &event, secrets);
        if let Event::LoginFailed(error) = &event {
            common::assert_error_clean("AuthError", error, secrets);
        }
        if let Event::Authenticated { generation, .. } = event {
            let tokens = machine.tokens().expect("Authenticated without tokens");
            assert_eq!(tokens.generation(), generation);
            let session = tokens.session().expose_secret();
            assert!(!session.is_empty(), "empty session token accepted");
            assert!(session.is_ascii(), "non-ASCII session token accepted");
            assert_eq!(tokens.session().header_value().as_bytes(), session.as_bytes());
            if let Some(authorization) = tokens.authorization() {
                let authorization = authorization.expose_secret();
                assert!(!authorization.is_empty() && authorization.is_ascii(), "bad authorization token accepted");
            }
            if let Some(key_manager) = tokens.key_manager() {
                let key_manager = key_manager.expose_secret();
                assert!(!key_manager.is_empty() && key_manager.is_ascii(), "bad key-manager token accepted");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // As `fuzz_target!(|input: Input|)` decodes it, so that the corpus keeps its meaning.
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else { return };
    run(data, input);
});

fn run(data: &[u8], input: Input) {
    let Ok(status) = http::StatusCode::from_u16(100 + input.status % 900) else { return };
    let mut builder = http::Response::builder().status(status);
    for (name, value) in [(http::header::RETRY_AFTER, &input.retry_after), (http::header::DATE, &input.date)] {
        if let Some(value) = value.as_ref().and_then(header_value) {
            builder = builder.header(name, value);
        }
    }
    let (body, jwt) = body_bytes(&input.body);
    let response: HttpResponse = builder.body(body).unwrap();
    let mut secrets = vec![SESSION_CANARY, AUTHORIZATION_CANARY, ECHO_CANARY];
    secrets.extend(jwt.as_deref());
    if common::contains_secret(data, &secrets) {
        // The fuzzer wrote a canary it learned into a field quoted on purpose (a server message): panics only.
        secrets.clear();
    }

    let policy = match input.policy {
        Policy::Auto => KeyManagerPolicy::Auto,
        Policy::Always => KeyManagerPolicy::Always,
        Policy::Never => KeyManagerPolicy::Never,
    };
    let endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
    let config = Config::certificate(endpoints, "fuzz.bot")
        .unwrap()
        .with_key_manager(policy)
        .with_parallel_login(input.parallel);
    let mut machine = Authenticator::new(config, input.seed);
    let mut now = UnixTime::from_millis(input.now_millis);

    assert!(machine.start());
    let first = machine.poll_request(now).expect("a fresh login has a request");
    let mut outstanding = vec![first.id];
    while let Some(request) = machine.poll_request(now) {
        outstanding.push(request.id);
    }
    check_invariants(&machine);

    for _round in 0..4 {
        for id in std::mem::take(&mut outstanding) {
            machine.handle_response(id, &response, now).expect("an id just handed out is known");
            drain_events(&mut machine, &secrets);
            check_invariants(&machine);
            check_no_leak(&machine, &secrets);
        }
        if let Some(at) = machine.poll_timeout() {
            now = now.max(at);
        }
        while let Some(request) = machine.poll_request(now) {
            outstanding.push(request.id);
        }
        drain_events(&mut machine, &secrets);
        check_invariants(&machine);
        check_no_leak(&machine, &secrets);
        if outstanding.is_empty() {
            break;
        }
    }
}
