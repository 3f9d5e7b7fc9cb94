//! An arbitrary answer (status, `Retry-After`, `Date`, body) to every login request of a fresh certificate
//! `Authenticator` (no signing), driven through its one output until `Done` (the key-manager leg and retries after
//! their wait included, so that `Auto`/`Always` key-manager policies can finish too). Checks: no panic; tokens handed
//! out have a non-empty ASCII session token equal to its header value (and ASCII authorization and key-manager
//! tokens, when present) and the latest generation; waits are in the future; `AwaitAnswers` only with requests out.

#![no_main]

use arbitrary::Arbitrary;
use symphony_auth_core::{Authenticator, Config, Endpoints, HttpResponse, KeyManagerPolicy, Output, Tokens, UnixTime};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;

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
    Raw(Vec<u8>),
    /// `{"token": ..., "authorizationToken": ..., "name": ...}`.
    Token { token: String, authorization: Option<String>, name: Option<String> },
    /// A JWT-shaped session token with (or without) the simplified-key-delivery claim.
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

fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Raw(bytes) => bytes.clone(),
        Body::Token { token, authorization, name } => {
            let mut object = serde_json::Map::new();
            object.insert("token".into(), token.clone().into());
            if let Some(authorization) = authorization {
                object.insert("authorizationToken".into(), authorization.clone().into());
            }
            if let Some(name) = name {
                object.insert("name".into(), name.clone().into());
            }
            serde_json::to_vec(&object).unwrap()
        }
        Body::Jwt { skd, bearer, padding, extra } => {
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), "fuzz.bot".into());
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
            let token = if *bearer { format!("Bearer {jwt}") } else { jwt };
            serde_json::to_vec(&serde_json::json!({ "token": token })).unwrap()
        }
        Body::Error { code, message } => serde_json::to_vec(&serde_json::json!({ "code": code, "message": message })).unwrap(),
    }
}

fn check_invariants(machine: &Authenticator) {
    assert_eq!(machine.tokens().is_some(), machine.state().is_ready(), "tokens() vs state()");
}

fn check_tokens(tokens: &Tokens) {
    let session = tokens.session().expose_secret();
    assert!(!session.is_empty(), "empty session token accepted");
    assert!(session.is_ascii(), "non-ASCII session token accepted: {session:?}");
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

fuzz_target!(|input: Input| {
    let Ok(status) = http::StatusCode::from_u16(100 + input.status % 900) else { return };
    let mut builder = http::Response::builder().status(status);
    for (name, value) in [(http::header::RETRY_AFTER, &input.retry_after), (http::header::DATE, &input.date)] {
        if let Some(value) = value.as_ref().and_then(header_value) {
            builder = builder.header(name, value);
        }
    }
    let response: HttpResponse = builder.body(body_bytes(&input.body)).unwrap();

    let policy = match input.policy {
        Policy::Auto => KeyManagerPolicy::Auto,
        Policy::Always => KeyManagerPolicy::Always,
        Policy::Never => KeyManagerPolicy::Never,
    };
    let endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
    let config = Config::certificate(endpoints, "fuzz.bot").unwrap().with_key_manager(policy).with_parallel_login(input.parallel);
    let mut machine = Authenticator::new(config, input.seed);
    let mut now = UnixTime::from_millis(input.now_millis);

    let mut outstanding = Vec::new();
    // The same answer to every request, for as long as the login goes on (bounded: retries end it).
    for _ in 0..32 {
        match machine.poll_output(now) {
            Output::Sign(_) => panic!("a certificate login signs nothing"),
            Output::Send(batch) => outstanding.extend(batch.into_iter().map(|login| login.id)),
            Output::AwaitAnswers => {
                assert!(!outstanding.is_empty(), "AwaitAnswers with nothing out");
                let id = outstanding.remove(0);
                machine.handle_response(id, &response, now).expect("an id just handed out is known");
            }
            Output::WaitUntil(at) => {
                assert!(at > now, "a wait that is over");
                now = at;
            }
            Output::Done(outcome) => {
                if let Ok(tokens) = &outcome {
                    check_tokens(tokens);
                    assert_eq!(tokens.generation(), machine.latest_generation());
                }
                drop(format!("{outcome:?}"));
                break;
            }
        }
        while let Some(event) = machine.poll_event() {
            drop(format!("{event:?}"));
        }
        check_invariants(&machine);
    }
});
