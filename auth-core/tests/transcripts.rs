//! Runs the machine transcripts of `conformance/machine-transcripts.json`: each scenario configures a machine, then
//! each step gives it one input at a time `at`, polls once at `at`, and compares the output, the events and the
//! state with the expected ones. The format is described in `conformance/README.md`; bindings run the same file.
//!
//! To add a scenario, write its config and inputs (with any `expect`), then run this test with
//! `SYMPHONY_AUTH_RECORD_TRANSCRIPTS=1`: it writes what the machine does into every `expect`. Review that diff by
//! hand before committing it: the file is the specification, not a snapshot.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use symphony_auth_core::{
    AuthError, Authenticator, BaseUrl, Config, CoolDown, Endpoints, Event, FailureCause, Generation, JwtSigner,
    KeyManagerOutcome, KeyManagerPolicy, LoginEndpoint, OboUser, Output, RequestId, RetryPolicy, SignError, State,
    Tokens, TransportFailure, TransportKind, USER_AGENT_VALUE, UnauthorizedOutcome, UnixTime, UnsignedJwt, UsageError,
};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/machine-transcripts.json");
const OBO_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/obo-transcripts.json");
const VERSION_PLACEHOLDER: &str = "symphony-auth/<version>";

// Tests read their fixtures from disk; the crate itself never does.
#[allow(clippy::disallowed_methods)]
fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn signer(key: &str) -> Arc<dyn JwtSigner> {
    match symphony_auth_core::SignerBackend::build_default() {
        Some(backend) => backend.load_pem(&read(key)).unwrap(),
        None => Arc::new(support::ConstantSigner),
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("`{key}` must be a string in {value}"))
}

fn u64_of(value: &Value, key: &str) -> u64 {
    value[key].as_u64().unwrap_or_else(|| panic!("`{key}` must be a number in {value}"))
}

fn config(spec: &Value) -> Config {
    let url = |name: &'static str| -> BaseUrl {
        let url = spec["endpoints"][name].as_str().unwrap_or_else(|| str_of(&spec["endpoints"], "pod"));
        BaseUrl::parse(name, url).unwrap()
    };
    let endpoints = Endpoints {
        pod: url("pod"),
        key_manager: url("key_manager"),
        session_auth: url("session_auth"),
        agent: url("agent"),
    };
    let username = str_of(spec, "username");
    let obo = spec.get("obo").map(|obo| match obo.get("user_id") {
        Some(id) => OboUser::id(id.as_u64().unwrap()),
        None => OboUser::username(str_of(obo, "username")).unwrap(),
    });
    let config = match (str_of(spec, "method"), obo) {
        ("rsa", None) => Config::rsa(endpoints, username, signer(str_of(spec, "key"))),
        ("certificate", None) => Config::certificate(endpoints, username),
        ("rsa", Some(user)) => Config::obo_rsa(endpoints, username, signer(str_of(spec, "key")), user),
        ("certificate", Some(user)) => Config::obo_certificate(endpoints, username, user),
        (other, _) => panic!("unknown method {other}"),
    }
    .unwrap();
    let retry = &spec["retry"];
    let policy = RetryPolicy::new(
        u32::try_from(u64_of(retry, "max_attempts")).unwrap(),
        Duration::from_millis(u64_of(retry, "initial_interval_ms")),
        retry["multiplier"].as_f64().unwrap(),
        Duration::from_millis(u64_of(retry, "max_interval_ms")),
    )
    .unwrap()
    .with_jitter(retry["jitter"].as_f64().unwrap())
    .unwrap();
    let cool = &spec["cool_down"];
    let cool_down =
        CoolDown::new(Duration::from_millis(u64_of(cool, "first_ms")), Duration::from_millis(u64_of(cool, "max_ms")))
            .unwrap();
    let policy_name = str_of(spec, "key_manager");
    let key_manager = match policy_name {
        "auto" => KeyManagerPolicy::Auto,
        "always" => KeyManagerPolicy::Always,
        "never" => KeyManagerPolicy::Never,
        other => panic!("unknown key-manager policy {other}"),
    };
    config
        .with_jwt_lifetime(Duration::from_secs(u64_of(spec, "jwt_lifetime_secs")))
        .unwrap()
        .with_retry(policy)
        .with_cool_down(cool_down)
        .with_key_manager(key_manager)
        .with_parallel_login(spec["parallel"].as_bool().unwrap())
}

fn endpoint_name(endpoint: LoginEndpoint) -> String {
    format!("{endpoint:?}")
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

fn cause(cause: &FailureCause) -> Value {
    match cause {
        FailureCause::Status(status) => json!({ "status": status }),
        FailureCause::Transport(failure) => json!({ "transport": kind_name(failure.kind) }),
        other => panic!("unknown cause {other:?}"),
    }
}

fn error(error: &AuthError) -> Value {
    match error {
        AuthError::Rejected { endpoint, status, server_message, clock_offset_secs, .. } => json!({
            "class": "rejected", "endpoint": endpoint_name(*endpoint), "status": status,
            "server_message": server_message, "clock_offset_secs": clock_offset_secs,
        }),
        AuthError::Unavailable { endpoint, attempts, last, .. } => json!({
            "class": "unavailable", "endpoint": endpoint_name(*endpoint), "attempts": attempts, "last": cause(last),
        }),
        AuthError::Transport { endpoint, failure, .. } => json!({
            "class": "transport", "endpoint": endpoint_name(*endpoint), "kind": kind_name(failure.kind),
        }),
        AuthError::Protocol { endpoint, status, problem, body_prefix } => json!({
            "class": "protocol", "endpoint": endpoint_name(*endpoint), "status": status,
            "problem": format!("{problem:?}"), "body_prefix": body_prefix,
        }),
        AuthError::Signing(_) => json!({ "class": "signing" }),
        AuthError::OboNotInstalled { endpoint, app_id, user, status } => json!({
            "class": "obo_not_installed", "endpoint": endpoint_name(*endpoint), "app_id": app_id, "user": user,
            "status": status,
        }),
        AuthError::OboUnknownUser { endpoint, user } => json!({
            "class": "obo_unknown_user", "endpoint": endpoint_name(*endpoint), "user": user,
        }),
        other => panic!("unknown error {other:?}"),
    }
}

fn tokens(tokens: &Tokens) -> Value {
    json!({
        "generation": tokens.generation().get(),
        "session": tokens.session().expose_secret(),
        "key_manager": tokens.key_manager().map(|t| t.expose_secret()),
        "authorization": tokens.authorization().map(|t| t.expose_secret()),
        "simplified_key_delivery": tokens.simplified_key_delivery(),
    })
}

fn output(output: &Output) -> Value {
    match output {
        Output::Sign(jwt) => json!({
            "type": "sign", "exp": jwt.exp(), "signing_input": String::from_utf8(jwt.signing_input().to_vec()).unwrap(),
        }),
        Output::Send(batch) => {
            let requests: Vec<Value> = batch
                .iter()
                .map(|login| {
                    let headers: Map<String, Value> = login
                        .request
                        .headers()
                        .iter()
                        .map(|(name, value)| {
                            let value = value.to_str().unwrap().replace(USER_AGENT_VALUE, VERSION_PLACEHOLDER);
                            (name.as_str().to_owned(), Value::String(value))
                        })
                        .collect();
                    json!({
                        "id": login.id.get(),
                        "endpoint": endpoint_name(login.endpoint),
                        "method": login.request.method().as_str(),
                        "url": login.request.uri().to_string(),
                        "headers": headers,
                        "body": String::from_utf8(login.request.body().clone()).unwrap(),
                    })
                })
                .collect();
            json!({ "type": "send", "requests": requests })
        }
        Output::AwaitAnswers => json!({ "type": "await" }),
        Output::WaitUntil(at) => json!({ "type": "wait_until", "at": at.as_millis() }),
        Output::Done(Ok(t)) => json!({ "type": "done", "tokens": tokens(t) }),
        Output::Done(Err(e)) => json!({ "type": "done", "error": error(e) }),
    }
}

fn event(event: &Event) -> Value {
    match event {
        Event::LoginStarted { refresh } => json!({ "type": "login_started", "refresh": refresh }),
        Event::RetryScheduled { endpoint, attempt, max_attempts, delay, cause: why } => json!({
            "type": "retry_scheduled", "endpoint": endpoint_name(*endpoint), "attempt": attempt,
            "max_attempts": max_attempts, "delay_ms": u64::try_from(delay.as_millis()).unwrap(), "cause": cause(why),
        }),
        Event::Authenticated { generation, key_manager } => json!({
            "type": "authenticated", "generation": generation.get(), "key_manager": match key_manager {
                KeyManagerOutcome::Obtained => "obtained",
                KeyManagerOutcome::SkippedBySimplifiedKeyDelivery => "skipped_by_simplified_key_delivery",
                KeyManagerOutcome::Disabled => "disabled",
                other => panic!("unknown outcome {other:?}"),
            },
        }),
        Event::LoginFailed { error: e, cool_down } => json!({
            "type": "login_failed", "error": error(e), "cool_down_ms": u64::try_from(cool_down.as_millis()).unwrap(),
        }),
        Event::Expired { generation } => json!({ "type": "expired", "generation": generation.get() }),
        other => panic!("unknown event {other:?}"),
    }
}

fn state(state: State) -> Value {
    match state {
        State::NeedsSession { logging_in } => json!({ "type": "needs_session", "logging_in": logging_in }),
        State::NeedsKeyManager => json!({ "type": "needs_key_manager" }),
        State::Ready { generation, refreshing } => {
            json!({ "type": "ready", "generation": generation.get(), "refreshing": refreshing })
        }
        State::Expired { generation, logging_in } => {
            json!({ "type": "expired", "generation": generation.get(), "logging_in": logging_in })
        }
        other => panic!("unknown state {other:?}"),
    }
}

fn response(input: &Value) -> symphony_auth_core::HttpResponse {
    let mut builder = http::Response::builder().status(u16::try_from(u64_of(input, "status")).unwrap());
    for (name, value) in input["headers"].as_object().into_iter().flatten() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    builder.body(input["body"].as_str().unwrap_or("").as_bytes().to_vec()).unwrap()
}

/// Applies one input; returns the `result` it must be compared with, for inputs that return one.
fn apply(machine: &mut Authenticator, input: &Value, at: UnixTime, to_sign: &mut Option<UnsignedJwt>) -> Option<Value> {
    let accepted = |result: Result<(), UsageError>| match result {
        Ok(()) => json!("accepted"),
        Err(UsageError::UnknownRequest(_)) => json!("unknown_request"),
        Err(other) => panic!("{other}"),
    };
    match str_of(input, "type") {
        "poll" => None,
        "sign" => {
            let jwt = to_sign.take().expect("a `sign` input needs a `sign` output before it");
            machine.supply_jwt(jwt.sign(), at);
            None
        }
        "sign_fails" => {
            to_sign.take();
            machine.supply_jwt(Err(SignError(str_of(input, "reason").to_owned())), at);
            None
        }
        "response" => {
            let id = RequestId::from_u64(u64_of(input, "id"));
            Some(accepted(machine.handle_response(id, &response(input), at)))
        }
        "failure" => {
            let id = RequestId::from_u64(u64_of(input, "id"));
            let failure = TransportFailure::new(kind_of(str_of(input, "kind")), "transcript");
            Some(accepted(machine.handle_failure(id, failure, at)))
        }
        "refresh" => Some(json!(machine.refresh(at))),
        "unauthorized" => Some(match machine.report_unauthorized(Generation::from_u64(u64_of(input, "generation"))) {
            Ok(UnauthorizedOutcome::Expired) => json!("expired"),
            Ok(UnauthorizedOutcome::Stale { current }) => json!({ "stale": current.get() }),
            Ok(UnauthorizedOutcome::AlreadyExpired) => json!("already_expired"),
            Ok(other) => panic!("unknown outcome {other:?}"),
            Err(UsageError::UnknownGeneration { .. }) => json!("unknown_generation"),
            Err(other) => panic!("{other}"),
        }),
        "timeout" => {
            machine.handle_timeout(at);
            None
        }
        "abandon" => {
            machine.abandon_requests(at);
            None
        }
        other => panic!("unknown input {other}"),
    }
}

/// Runs a scenario; returns its steps with what the machine did in each `expect`.
fn run(scenario: &Value) -> Vec<Value> {
    let spec = &scenario["config"];
    let mut machine = Authenticator::new(config(spec), u64_of(spec, "seed"));
    let mut to_sign = None;
    let mut steps = Vec::new();
    for step in scenario["steps"].as_array().unwrap() {
        let at = UnixTime::from_millis(u64_of(step, "at"));
        let result = apply(&mut machine, &step["input"], at, &mut to_sign);
        let polled = machine.poll_output(at);
        let mut expect = Map::new();
        if let Some(result) = result {
            expect.insert("result".into(), result);
        }
        expect.insert("output".into(), output(&polled));
        expect.insert("events".into(), std::iter::from_fn(|| machine.poll_event()).map(|e| event(&e)).collect());
        expect.insert("state".into(), state(machine.state()));
        if let Output::Sign(jwt) = polled {
            to_sign = Some(jwt);
        }
        let mut recorded = step.clone();
        recorded["expect"] = Value::Object(expect);
        steps.push(recorded);
    }
    steps
}

#[allow(clippy::disallowed_methods)]
fn load() -> Value {
    load_file(FILE)
}

#[allow(clippy::disallowed_methods)]
fn load_file(file: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

#[test]
fn machine_transcripts_replay_exactly() {
    replay(FILE, 12);
}

#[test]
fn obo_transcripts_replay_exactly() {
    replay(OBO_FILE, 3);
}

#[allow(clippy::disallowed_methods)]
fn replay(file: &str, at_least: usize) {
    let mut all = load_file(file);
    let record = std::env::var_os("SYMPHONY_AUTH_RECORD_TRANSCRIPTS").is_some();
    let scenarios = all["scenarios"].as_array_mut().unwrap();
    assert!(scenarios.len() >= at_least, "at least {at_least} scenarios");
    for scenario in scenarios.iter_mut() {
        let name = scenario["name"].as_str().unwrap().to_owned();
        let steps = run(scenario);
        if record {
            scenario["steps"] = Value::Array(steps);
            continue;
        }
        for (n, (expected, actual)) in scenario["steps"].as_array().unwrap().iter().zip(&steps).enumerate() {
            assert_eq!(expected["expect"], actual["expect"], "scenario {name}, step {n}: {}", expected["input"]);
        }
    }
    if record {
        let text = serde_json::to_string_pretty(&all).unwrap() + "\n";
        std::fs::write(file, text).unwrap();
    }
}

#[test]
fn every_kind_of_input_output_event_state_and_error_is_covered() {
    let all = load();
    let mut seen = std::collections::BTreeSet::new();
    for scenario in all["scenarios"].as_array().unwrap() {
        seen.insert(format!("method:{}", str_of(&scenario["config"], "method")));
        seen.insert(format!("parallel:{}", scenario["config"]["parallel"]));
        for step in scenario["steps"].as_array().unwrap() {
            let expect = &step["expect"];
            seen.insert(format!("input:{}", str_of(&step["input"], "type")));
            let output = &expect["output"];
            seen.insert(format!("output:{}", str_of(output, "type")));
            if let Some(error) = output.get("error") {
                seen.insert(format!("error:{}", str_of(error, "class")));
            }
            if output.get("tokens").is_some() {
                seen.insert("output:done with tokens".into());
            }
            for request in output["requests"].as_array().into_iter().flatten() {
                seen.insert(format!("endpoint:{}", str_of(request, "endpoint")));
            }
            for event in expect["events"].as_array().unwrap() {
                seen.insert(format!("event:{}", str_of(event, "type")));
            }
            seen.insert(format!("state:{}", str_of(&expect["state"], "type")));
        }
    }
    let wanted = [
        "method:rsa",
        "method:certificate",
        "parallel:true",
        "parallel:false",
        "input:poll",
        "input:sign",
        "input:sign_fails",
        "input:response",
        "input:failure",
        "input:refresh",
        "input:unauthorized",
        "input:timeout",
        "input:abandon",
        "output:sign",
        "output:send",
        "output:await",
        "output:wait_until",
        "output:done",
        "output:done with tokens",
        "error:rejected",
        "error:unavailable",
        "error:transport",
        "error:protocol",
        "error:signing",
        "endpoint:RsaSession",
        "endpoint:RsaKeyManager",
        "endpoint:CertificateSession",
        "endpoint:CertificateKeyManager",
        "endpoint:AgentVersion",
        "event:login_started",
        "event:retry_scheduled",
        "event:authenticated",
        "event:login_failed",
        "event:expired",
        "state:needs_session",
        "state:needs_key_manager",
        "state:ready",
        "state:expired",
    ];
    let missing: Vec<_> = wanted.iter().filter(|w| !seen.contains(**w)).collect();
    assert!(missing.is_empty(), "no transcript covers {missing:?}");
}
