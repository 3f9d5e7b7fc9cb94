//! Runs the flight transcripts of `conformance/flight-transcripts.json`: the Common JWT as the single flight
//! handles it (the bearer attached to API calls, refreshed through A5 before it expires, a refused bearer
//! refreshed, a full login when A5 refuses the session, one A5 call for concurrent callers). Each step gives the
//! flight one input at time `at` and compares what it answered, its A5 count and the machine's state with the
//! step's `expect`. The format is described in `conformance/README.md`; bindings run the same file.
//!
//! To add a scenario, write its config and inputs, then run this test with `SYMPHONY_AUTH_RECORD_TRANSCRIPTS=1`:
//! it writes what the flight does into every `expect`. Review that diff by hand before committing it.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use symphony_auth_core::{
    AccessToken, AccessTokenError, ApiCall, ApiError, ApiStep, Bearer, BearerAuth, BearerStep, CommonJwtSettings,
    Config, Endpoints, Flight, Generation, HttpRequest, JwtSigner, KeyManagerPolicy, Report, State, Step, Tokens,
    TransportFailure, TransportKind, USER_AGENT_VALUE, UnixTime, Want,
};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/flight-transcripts.json");
const VERSION_PLACEHOLDER: &str = "symphony-auth/<version>";

// Tests read their fixtures from disk; the crate itself never does.
#[allow(clippy::disallowed_methods)]
fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn signer(key: &str) -> Arc<dyn JwtSigner> {
    let pem = read(key);
    #[cfg(feature = "rsa-signer")]
    return Arc::new(symphony_auth_core::RsaSigner::from_pem(&pem).unwrap());
    #[cfg(all(not(feature = "rsa-signer"), feature = "ring-signer"))]
    return Arc::new(symphony_auth_core::RingSigner::from_pem(&pem).unwrap());
    #[cfg(not(any(feature = "rsa-signer", feature = "ring-signer")))]
    {
        let _ = pem;
        Arc::new(support::ConstantSigner)
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("`{key}` must be a string in {value}"))
}

fn u64_of(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("`{key}` must be a number in {value}"))
}

fn flight(spec: &Value) -> Flight {
    let endpoints = Endpoints::single(str_of(spec, "pod")).unwrap();
    let jwt = &spec["common_jwt"];
    let settings = if jwt["on_pod_calls"].as_bool().unwrap() {
        CommonJwtSettings::on_pod_calls()
    } else {
        CommonJwtSettings::per_call()
    };
    let settings =
        settings.with_scope(str_of(jwt, "scope")).with_leeway(Duration::from_millis(u64_of(jwt, "leeway_ms")));
    let config = Config::rsa(endpoints, str_of(spec, "username"), signer(str_of(spec, "key")))
        .unwrap()
        .with_key_manager(KeyManagerPolicy::Never)
        .with_common_jwt(settings);
    Flight::new(symphony_auth_core::Authenticator::new(config, u64_of(spec, "seed")))
}

fn request(request: &HttpRequest) -> Value {
    let headers: Map<String, Value> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = value.to_str().unwrap().replace(USER_AGENT_VALUE, VERSION_PLACEHOLDER);
            (name.as_str().to_owned(), Value::String(value))
        })
        .collect();
    json!({
        "method": request.method().as_str(),
        "url": request.uri().to_string(),
        "headers": headers,
        "body": String::from_utf8(request.body().clone()).unwrap(),
    })
}

fn response(input: &Value) -> symphony_auth_core::HttpResponse {
    let mut builder = http::Response::builder().status(u16::try_from(u64_of(input, "status")).unwrap());
    for (name, value) in input["headers"].as_object().into_iter().flatten() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    builder.body(input["body"].as_str().unwrap_or("").as_bytes().to_vec()).unwrap()
}

/// An answer, or (with `kind` instead of `status`) a failure below HTTP.
fn outcome(input: &Value) -> Result<symphony_auth_core::HttpResponse, TransportFailure> {
    match input.get("kind") {
        None => Ok(response(input)),
        Some(_) => Err(TransportFailure::new(kind_of(str_of(input, "kind")), "transcript")),
    }
}

fn kind_of(name: &str) -> TransportKind {
    match name {
        "timeout" => TransportKind::Timeout,
        "connect" => TransportKind::Connect,
        "reset" => TransportKind::Reset,
        "tls" => TransportKind::Tls,
        "other" => TransportKind::Other,
        other => panic!("unknown transport failure kind {other}"),
    }
}

fn kind_name(kind: TransportKind) -> &'static str {
    match kind {
        TransportKind::Timeout => "timeout",
        TransportKind::Connect => "connect",
        TransportKind::Reset => "reset",
        TransportKind::Tls => "tls",
        _ => "other",
    }
}

fn access_token(kind: &str, token: &AccessToken) -> Value {
    json!({
        "type": kind,
        "token": token.expose_secret(),
        "generation": token.generation().get(),
        "expires_at": token.expires_at().as_millis(),
        "refresh_at": token.refresh_at().as_millis(),
    })
}

fn access_token_error(error: &AccessTokenError) -> Value {
    match error {
        AccessTokenError::Status { status } => json!({ "class": "status", "status": status }),
        AccessTokenError::Protocol { problem } => json!({ "class": "protocol", "problem": format!("{problem:?}") }),
        AccessTokenError::NoExpiry => json!({ "class": "no_expiry" }),
        AccessTokenError::Unauthorized => json!({ "class": "unauthorized" }),
        AccessTokenError::Transport(failure) => json!({ "class": "transport", "kind": kind_name(failure.kind) }),
        other => panic!("unknown access-token error {other:?}"),
    }
}

fn state(state: State) -> Value {
    match state {
        State::NeedsSession { logging_in } => json!({ "type": "needs_session", "logging_in": logging_in }),
        State::Ready { generation, refreshing } => {
            json!({ "type": "ready", "generation": generation.get(), "refreshing": refreshing })
        }
        State::Expired { generation, logging_in } => {
            json!({ "type": "expired", "generation": generation.get(), "logging_in": logging_in })
        }
        other => panic!("unknown state {other:?}"),
    }
}

/// One API call of a scenario, by its name: the call, and the bearer last given for it.
struct Call {
    call: ApiCall,
    bearer: Option<AccessToken>,
}

/// A scenario in progress.
struct Run {
    flight: Flight,
    /// The tokens of the last login, which API calls and A5 calls use.
    tokens: Option<Arc<Tokens>>,
    calls: HashMap<String, Call>,
}

impl Run {
    fn tokens(&self) -> Arc<Tokens> {
        Arc::clone(self.tokens.as_ref().expect("a `login` step comes first"))
    }

    fn call(&mut self, input: &Value) -> &mut Call {
        let name = str_of(input, "call");
        self.calls.get_mut(name).unwrap_or_else(|| panic!("no `api_call` named {name} before"))
    }

    /// A caller joins with `want` and is polled to its end: it signs what it is asked to sign and answers each
    /// request sent with the next of `answers`.
    fn login(&mut self, input: &Value, at: UnixTime) -> Value {
        let want = match str_of(input, "want") {
            "current" => Want::Current,
            "fresh" => Want::Fresh,
            "newer" => Want::Newer(Generation::from_u64(u64_of(input, "generation"))),
            other => panic!("unknown want {other}"),
        };
        let mut answers = input["answers"].as_array().map(Vec::as_slice).unwrap_or_default().iter();
        let mut caller = self.flight.join(want).unwrap();
        let mut sent = Vec::new();
        loop {
            match self.flight.poll(&mut caller, at) {
                Step::Sign(jwt) => self.flight.report(Report::Signed(jwt.sign()), at).unwrap(),
                Step::Send(batch) => {
                    for login in batch {
                        sent.push(json!({ "endpoint": format!("{:?}", login.endpoint), "url": login.request.uri().to_string() }));
                        let answer = answers.next().expect("an answer for each login request");
                        self.flight.report(Report::Answer(login.id, outcome(answer)), at).unwrap();
                    }
                }
                Step::Done { outcome: Ok(tokens), .. } => {
                    let result = json!({
                        "requests": sent,
                        "tokens": { "generation": tokens.generation().get(), "session": tokens.session().expose_secret() },
                    });
                    self.tokens = Some(tokens);
                    return result;
                }
                Step::Done { outcome: Err(error), .. } => {
                    return json!({ "requests": sent, "error": error.to_string() });
                }
                other => panic!("a transcript login is answered at once, not {other:?}"),
            }
        }
    }

    fn apply(&mut self, input: &Value, at: UnixTime) -> Value {
        match str_of(input, "type") {
            "login" => self.login(input, at),
            "api_call" => {
                let mut builder = http::Request::builder().method(str_of(input, "method")).uri(str_of(input, "url"));
                if input["bearer_auth"].as_bool() == Some(true) {
                    builder = builder.extension(BearerAuth);
                }
                let call = self.flight.api_call(builder.body(Vec::new()).unwrap()).unwrap();
                let result = json!({ "wants_bearer": call.wants_bearer() });
                self.calls.insert(str_of(input, "call").to_owned(), Call { call, bearer: None });
                result
            }
            "bearer" => {
                let tokens = self.tokens();
                let name = str_of(input, "call").to_owned();
                let call = self.calls.get_mut(&name).unwrap_or_else(|| panic!("no call {name}"));
                let (result, bearer) = match self.flight.bearer(&call.call, &tokens, at) {
                    Bearer::NotNeeded => (json!({ "type": "not_needed" }), None),
                    Bearer::Attach(token) => (access_token("attach", &token), Some(token)),
                    Bearer::Fetch(a5) => (json!({ "type": "fetch", "request": request(&a5) }), None),
                    Bearer::Follow => (json!({ "type": "follow" }), None),
                    Bearer::Relogin(generation) => (json!({ "type": "relogin", "generation": generation.get() }), None),
                };
                call.bearer = bearer;
                result
            }
            "bearer_answer" => {
                let tokens = self.tokens();
                let name = str_of(input, "call").to_owned();
                let call = self.calls.get_mut(&name).unwrap_or_else(|| panic!("no call {name}"));
                match self.flight.handle_bearer(&mut call.call, &tokens, outcome(input), at) {
                    BearerStep::Attach(token) => {
                        let result = access_token("attach", &token);
                        call.bearer = Some(token);
                        result
                    }
                    BearerStep::Relogin(generation) => json!({ "type": "relogin", "generation": generation.get() }),
                    BearerStep::Fail(error) => json!({ "type": "fail", "error": access_token_error(&error) }),
                }
            }
            "send" => {
                let tokens = self.tokens();
                let call = self.call(input);
                let sent = call.call.request_with(&tokens, call.bearer.as_ref());
                json!({ "request": request(&sent) })
            }
            "api_answer" => {
                let name = str_of(input, "call").to_owned();
                let call = self.calls.get_mut(&name).unwrap_or_else(|| panic!("no call {name}"));
                match self.flight.handle_api(&mut call.call, outcome(input), at) {
                    ApiStep::Return(response) => json!({ "type": "return", "status": response.status().as_u16() }),
                    ApiStep::Relogin(generation) => json!({ "type": "relogin", "generation": generation.get() }),
                    ApiStep::RetryAt(when) => json!({ "type": "retry_at", "at": when.as_millis() }),
                    ApiStep::Fail(ApiError::Unauthorized { generation }) => {
                        json!({ "type": "fail", "error": { "class": "unauthorized", "generation": generation } })
                    }
                    ApiStep::Fail(ApiError::Transport { attempts, .. }) => {
                        json!({ "type": "fail", "error": { "class": "transport", "attempts": attempts } })
                    }
                    ApiStep::Fail(other) => panic!("unknown API error {other:?}"),
                }
            }
            other => panic!("unknown input {other}"),
        }
    }
}

/// Runs a scenario; returns its steps with what the flight did in each `expect`.
fn run(scenario: &Value) -> Vec<Value> {
    let mut run = Run { flight: flight(&scenario["config"]), tokens: None, calls: HashMap::new() };
    let mut steps = Vec::new();
    for step in scenario["steps"].as_array().unwrap() {
        let at = UnixTime::from_millis(u64_of(step, "at"));
        let result = run.apply(&step["input"], at);
        let expect = json!({
            "result": result,
            "common_jwt_refreshes": run.flight.common_jwt_refreshes(),
            "state": state(run.flight.state()),
        });
        let mut recorded = step.clone();
        recorded["expect"] = expect;
        steps.push(recorded);
    }
    steps
}

#[test]
#[allow(clippy::disallowed_methods)]
fn flight_transcripts_replay_exactly() {
    let mut all: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let record = std::env::var_os("SYMPHONY_AUTH_RECORD_TRANSCRIPTS").is_some();
    let scenarios = all["scenarios"].as_array_mut().unwrap();
    assert!(scenarios.len() >= 5, "at least five scenarios");
    for scenario in scenarios.iter_mut() {
        let name = scenario["name"].as_str().unwrap().to_owned();
        let steps = run(scenario);
        if record {
            scenario["steps"] = Value::Array(steps);
            continue;
        }
        let expected = scenario["steps"].as_array().unwrap();
        assert_eq!(expected.len(), steps.len());
        for (n, (expected, actual)) in expected.iter().zip(&steps).enumerate() {
            assert_eq!(expected["expect"], actual["expect"], "scenario {name}, step {n}: {}", expected["input"]);
        }
    }
    if record {
        std::fs::write(FILE, serde_json::to_string_pretty(&all).unwrap() + "\n").unwrap();
    }
}

/// The file exercises every input and every answer its runners must read, so that a runner that skips one fails.
#[test]
#[allow(clippy::disallowed_methods)]
fn every_kind_of_input_and_answer_is_covered() {
    let all: Value = serde_json::from_str(&std::fs::read_to_string(FILE).unwrap()).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for scenario in all["scenarios"].as_array().unwrap() {
        for step in scenario["steps"].as_array().unwrap() {
            let input = str_of(&step["input"], "type");
            seen.insert(format!("input:{input}"));
            if let Some(kind) = step["expect"]["result"]["type"].as_str() {
                seen.insert(format!("{input}:{kind}"));
            }
        }
    }
    for wanted in [
        "input:login",
        "input:api_call",
        "input:send",
        "bearer:not_needed",
        "bearer:attach",
        "bearer:fetch",
        "bearer:follow",
        "bearer:relogin",
        "bearer_answer:attach",
        "bearer_answer:relogin",
        "bearer_answer:fail",
        "api_answer:return",
        "api_answer:retry_at",
        "api_answer:fail",
    ] {
        assert!(seen.contains(wanted), "no step covers {wanted}");
    }
}
