//! Turns the conformance files (`conformance/login-vectors.json`, `conformance/machine-transcripts.json`) into the
//! line format that `tests/conformance.c` reads, so that the C test needs no JSON parser:
//!
//! ```text
//! cargo run -p symphony-auth-c --example conformance-text -- conformance/login-vectors.json > vectors.txt
//! ```
//!
//! The format, one record a line, fields separated by one space:
//!
//! ```text
//! scenario NAME                      a new machine; ends at the next `scenario` or the end of the file
//! config KEY VALUE...                method rsa|certificate, key PATH, username U, url SERVICE URL, insecure_http,
//!                                    parallel BOOL, key_manager auto|always|never, jwt_lifetime_secs N,
//!                                    retry MAX INITIAL_MS MULTIPLIER MAX_MS JITTER, cool_down FIRST_MS MAX_MS, seed N
//! step AT INPUT ARGS...              poll | sign | sign_fails REASON | response ID STATUS BODY [NAME VALUE]... |
//!                                    failure ID KIND | refresh | unauthorized GENERATION | timeout | abandon
//! expect exact|subset CATEGORIES     what the step's poll must show: CATEGORIES is a comma-separated subset of
//! LINE...                            result, output, events, state; `exact`: the lines rendered for them, in order;
//! end                                `subset`: each line is among them (a last field `*` matches any rest), and a
//!                                    line `!PREFIX` matches none of them
//! ```
//!
//! Each field is the value's bytes with every byte outside `!`..`~`, and `%`, `"`, `~`, `*`, written `%XX`; an
//! empty value is `""`, an absent one `~`. A step gives its input at time AT (milliseconds), polls once at AT, and
//! renders what it sees in these lines (the C program renders them from the C API the same way):
//!
//! ```text
//! result accepted|unknown_request|true|false|expired|already_expired|unknown_generation | result stale N
//! output sign EXP SIGNING_INPUT | output send N | output await | output wait_until AT
//! output done tokens GENERATION SESSION KEY_MANAGER AUTHORIZATION SKD | output done error ERROR...
//! request ID ENDPOINT METHOD URL BODY        (after `output send`, each followed by its headers,
//! header NAME VALUE                           sorted by name)
//! event login_started REFRESH | event retry_scheduled ENDPOINT ATTEMPT MAX DELAY_MS CAUSE...
//! event authenticated GENERATION KEY_MANAGER | event login_failed ERROR... COOL_DOWN_MS | event expired GENERATION
//! state needs_session LOGGING_IN | state needs_key_manager | state ready GENERATION REFRESHING
//! state expired GENERATION LOGGING_IN
//! ERROR: rejected ENDPOINT STATUS SERVER_MESSAGE CLOCK_OFFSET | unavailable ENDPOINT ATTEMPTS CAUSE... |
//!        transport ENDPOINT KIND | protocol ENDPOINT STATUS PROBLEM BODY_PREFIX | signing
//! CAUSE: status N | transport KIND
//! ```
//!
//! Machine transcripts map one to one. Login vectors become small scenarios that reach the vector through the
//! machine: a JWT through its `sign` output and the request that carries it, a request through a machine configured
//! to send it, an answer or a token through the event or output it leads to. Both the earlier form of
//! `login-vectors.json` (`body_json`, `absent_headers`, `retry_after_secs`) and the current one are read.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// A time for vectors that give none.
const T: u64 = 1_700_000_000_000;

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: conformance-text FILE.json... (conformance/login-vectors.json, machine-transcripts.json)");
        std::process::exit(2);
    }
    let mut out = String::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| fail(&format!("cannot read {path}: {e}")));
        let file: Value = serde_json::from_str(&text).unwrap_or_else(|e| fail(&format!("{path}: {e}")));
        let scenarios = if file.get("scenarios").is_some() { transcripts(&file) } else { vectors(&file) };
        for scenario in scenarios {
            scenario.write(&mut out);
        }
    }
    print!("{out}");
}

fn fail(message: &str) -> ! {
    eprintln!("conformance-text: {message}");
    std::process::exit(1);
}

/// A field: see the module documentation.
fn field(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "\"\"".into();
    }
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (b'!'..=b'~').contains(&b) && !b"%\"~*".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn text(value: &str) -> String {
    field(value.as_bytes())
}

/// A JSON value as a field: strings by their bytes, `null` as absent, numbers and booleans as written.
fn value(value: &Value) -> String {
    match value {
        Value::Null => "~".into(),
        Value::String(s) => text(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => fail(&format!("a scalar was expected, found {other}")),
    }
}

fn str_of<'a>(object: &'a Value, key: &str) -> &'a str {
    object[key].as_str().unwrap_or_else(|| fail(&format!("`{key}` must be a string in {object}")))
}

fn u64_of(object: &Value, key: &str) -> u64 {
    object[key].as_u64().unwrap_or_else(|| fail(&format!("`{key}` must be a number in {object}")))
}

#[derive(Default)]
struct Scenario {
    name: String,
    config: Vec<String>,
    steps: Vec<Step>,
}

struct Step {
    at: u64,
    input: String,
    expect: Option<Expect>,
}

struct Expect {
    exact: bool,
    categories: &'static str,
    lines: Vec<String>,
}

impl Scenario {
    fn new(name: &str) -> Self {
        Self { name: text(name), ..Self::default() }
    }

    fn config(mut self, line: &str) -> Self {
        self.config.push(line.to_owned());
        self
    }

    fn step(mut self, at: u64, input: &str) -> Self {
        self.steps.push(Step { at, input: input.to_owned(), expect: None });
        self
    }

    fn expect(mut self, at: u64, input: &str, exact: bool, categories: &'static str, lines: Vec<String>) -> Self {
        self.steps.push(Step { at, input: input.to_owned(), expect: Some(Expect { exact, categories, lines }) });
        self
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "scenario {}", self.name);
        for line in &self.config {
            let _ = writeln!(out, "config {line}");
        }
        for step in &self.steps {
            let _ = writeln!(out, "step {} {}", step.at, step.input);
            if let Some(expect) = &step.expect {
                let mode = if expect.exact { "exact" } else { "subset" };
                let _ = writeln!(out, "expect {mode} {}", expect.categories);
                for line in &expect.lines {
                    let _ = writeln!(out, "{line}");
                }
                let _ = writeln!(out, "end");
            }
        }
    }
}

// ----- Machine transcripts -----

fn transcripts(file: &Value) -> Vec<Scenario> {
    let format = file["format"].as_str().unwrap_or("");
    if format != "symphony-auth machine transcripts, version 1" {
        fail(&format!("unknown transcript format {format:?}"));
    }
    let scenarios = file["scenarios"].as_array().unwrap_or_else(|| fail("`scenarios` must be an array"));
    scenarios.iter().map(transcript).collect()
}

fn transcript(scenario: &Value) -> Scenario {
    let spec = &scenario["config"];
    let mut out = Scenario::new(&format!("transcript/{}", str_of(scenario, "name")));
    out = out.config(&format!("method {}", str_of(spec, "method")));
    if let Some(key) = spec["key"].as_str() {
        out = out.config(&format!("key {}", text(key)));
    }
    out = out.config(&format!("username {}", text(str_of(spec, "username"))));
    for service in ["pod", "key_manager", "session_auth", "agent"] {
        if let Some(url) = spec["endpoints"][service].as_str() {
            out = out.config(&format!("url {service} {}", text(url)));
        }
    }
    let retry = &spec["retry"];
    let cool = &spec["cool_down"];
    out = out
        .config(&format!("parallel {}", spec["parallel"]))
        .config(&format!("key_manager {}", str_of(spec, "key_manager")))
        .config(&format!("jwt_lifetime_secs {}", u64_of(spec, "jwt_lifetime_secs")))
        .config(&format!(
            "retry {} {} {} {} {}",
            u64_of(retry, "max_attempts"),
            u64_of(retry, "initial_interval_ms"),
            retry["multiplier"],
            u64_of(retry, "max_interval_ms"),
            retry["jitter"]
        ))
        .config(&format!("cool_down {} {}", u64_of(cool, "first_ms"), u64_of(cool, "max_ms")))
        .config(&format!("seed {}", u64_of(spec, "seed")));
    for step in scenario["steps"].as_array().unwrap_or_else(|| fail("`steps` must be an array")) {
        let expect = &step["expect"];
        let mut lines = Vec::new();
        if let Some(result) = expect.get("result") {
            lines.push(match result {
                Value::Object(stale) => format!("result stale {}", value(&stale["stale"])),
                other => format!("result {}", value(other)),
            });
        }
        lines.extend(output_lines(&expect["output"]));
        for event in expect["events"].as_array().into_iter().flatten() {
            lines.push(event_line(event));
        }
        lines.push(state_line(&expect["state"]));
        out = out.expect(u64_of(step, "at"), &input(&step["input"]), true, "result,output,events,state", lines);
    }
    out
}

fn input(input: &Value) -> String {
    let kind = str_of(input, "type");
    match kind {
        "poll" | "sign" | "refresh" | "timeout" | "abandon" => kind.to_owned(),
        "sign_fails" => format!("sign_fails {}", text(str_of(input, "reason"))),
        "response" => response_input(u64_of(input, "id"), input),
        "failure" => format!("failure {} {}", u64_of(input, "id"), str_of(input, "kind")),
        "unauthorized" => format!("unauthorized {}", u64_of(input, "generation")),
        other => fail(&format!("unknown input type {other}")),
    }
}

/// `response ID STATUS BODY [NAME VALUE]...` from an object with `status`, `body` and optional `headers`.
fn response_input(id: u64, answer: &Value) -> String {
    let mut line =
        format!("response {id} {} {}", u64_of(answer, "status"), text(answer["body"].as_str().unwrap_or("")));
    for (name, header) in answer["headers"].as_object().into_iter().flatten() {
        let _ = write!(line, " {} {}", text(name), value(header));
    }
    line
}

fn output_lines(output: &Value) -> Vec<String> {
    match str_of(output, "type") {
        "sign" => vec![format!("output sign {} {}", u64_of(output, "exp"), text(str_of(output, "signing_input")))],
        "send" => {
            let requests = output["requests"].as_array().unwrap_or_else(|| fail("`requests` must be an array"));
            let mut lines = vec![format!("output send {}", requests.len())];
            for request in requests {
                lines.push(format!(
                    "request {} {} {} {} {}",
                    u64_of(request, "id"),
                    str_of(request, "endpoint"),
                    str_of(request, "method"),
                    text(str_of(request, "url")),
                    text(str_of(request, "body"))
                ));
                lines.extend(header_lines(request["headers"].as_object()));
            }
            lines
        }
        "await" => vec!["output await".into()],
        "wait_until" => vec![format!("output wait_until {}", u64_of(output, "at"))],
        "done" => match output.get("tokens") {
            Some(tokens) => vec![format!(
                "output done tokens {} {} {} {} {}",
                u64_of(tokens, "generation"),
                value(&tokens["session"]),
                value(&tokens["key_manager"]),
                value(&tokens["authorization"]),
                value(&tokens["simplified_key_delivery"])
            )],
            None => vec![format!("output done error {}", error_fields(&output["error"]))],
        },
        other => fail(&format!("unknown output type {other}")),
    }
}

/// The headers a request must carry, sorted by name, with the implementation's version for `<version>`.
fn header_lines(headers: Option<&Map<String, Value>>) -> Vec<String> {
    let mut sorted: Vec<(&String, &Value)> = headers.into_iter().flatten().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .into_iter()
        .map(|(name, header)| {
            let header = header.as_str().unwrap_or_else(|| fail("header values must be strings"));
            let header = header.replace("symphony-auth/<version>", symphony_auth_core::USER_AGENT_VALUE);
            format!("header {} {}", text(name), text(&header))
        })
        .collect()
}

fn cause_fields(cause: &Value) -> String {
    match (cause.get("status"), cause.get("transport")) {
        (Some(status), _) => format!("status {status}"),
        (_, Some(kind)) => format!("transport {}", value(kind)),
        _ => fail(&format!("unknown cause {cause}")),
    }
}

fn error_fields(error: &Value) -> String {
    let endpoint = || str_of(error, "endpoint");
    match str_of(error, "class") {
        "rejected" => format!(
            "rejected {} {} {} {}",
            endpoint(),
            u64_of(error, "status"),
            value(&error["server_message"]),
            value(&error["clock_offset_secs"])
        ),
        "unavailable" => {
            format!("unavailable {} {} {}", endpoint(), u64_of(error, "attempts"), cause_fields(&error["last"]))
        }
        "transport" => format!("transport {} {}", endpoint(), str_of(error, "kind")),
        "protocol" => format!(
            "protocol {} {} {} {}",
            endpoint(),
            u64_of(error, "status"),
            str_of(error, "problem"),
            text(str_of(error, "body_prefix"))
        ),
        "signing" => "signing".into(),
        other => fail(&format!("unknown error class {other}")),
    }
}

fn event_line(event: &Value) -> String {
    match str_of(event, "type") {
        "login_started" => format!("event login_started {}", event["refresh"]),
        "retry_scheduled" => format!(
            "event retry_scheduled {} {} {} {} {}",
            str_of(event, "endpoint"),
            u64_of(event, "attempt"),
            u64_of(event, "max_attempts"),
            u64_of(event, "delay_ms"),
            cause_fields(&event["cause"])
        ),
        "authenticated" => {
            format!("event authenticated {} {}", u64_of(event, "generation"), str_of(event, "key_manager"))
        }
        "login_failed" => {
            format!("event login_failed {} {}", error_fields(&event["error"]), u64_of(event, "cool_down_ms"))
        }
        "expired" => format!("event expired {}", u64_of(event, "generation")),
        other => fail(&format!("unknown event type {other}")),
    }
}

fn state_line(state: &Value) -> String {
    match str_of(state, "type") {
        "needs_session" => format!("state needs_session {}", state["logging_in"]),
        "needs_key_manager" => "state needs_key_manager".into(),
        "ready" => format!("state ready {} {}", u64_of(state, "generation"), state["refreshing"]),
        "expired" => format!("state expired {} {}", u64_of(state, "generation"), state["logging_in"]),
        other => fail(&format!("unknown state type {other}")),
    }
}

// ----- Login vectors -----

fn vectors(file: &Value) -> Vec<Scenario> {
    let array = |key: &str| file[key].as_array().map(Vec::as_slice).unwrap_or_default();
    let jwts = array("login_jwt");
    if jwts.is_empty() {
        fail("neither `scenarios` nor `login_jwt`: not a conformance file");
    }
    let mut all = Vec::new();
    all.extend(jwts.iter().map(login_jwt));
    all.extend(array("requests").iter().map(|request| login_request(request, jwts)));
    all.extend(array("skd").iter().enumerate().map(|(n, vector)| skd(n, vector)));
    all.extend(array("agent_versions").iter().enumerate().map(|(n, vector)| agent_version(n, vector)));
    let policy = file.get("login_responses_policy");
    all.extend(array("login_responses").iter().enumerate().map(|(n, vector)| login_response(n, vector, policy)));
    all
}

/// A certificate bot on `https://pod.example` with the given key-manager policy, one login at a time.
fn certificate_bot(name: &str, key_manager: &str) -> Scenario {
    Scenario::new(name)
        .config("method certificate")
        .config("username cert.bot")
        .config("url pod https://pod.example")
        .config(&format!("key_manager {key_manager}"))
        .config("parallel false")
}

/// An RSA bot as a `login_jwt` vector describes it.
fn rsa_bot(name: &str, jwt: &Value, pod: &str) -> Scenario {
    Scenario::new(name)
        .config("method rsa")
        .config(&format!("key {}", text(str_of(jwt, "key"))))
        .config(&format!("username {}", text(str_of(jwt, "username"))))
        .config(&format!("url pod {}", text(pod)))
        .config(&format!("jwt_lifetime_secs {}", u64_of(jwt, "lifetime_secs")))
}

/// A session token whose claims are `claims`, as the pod signs them (the signature is not checked).
fn session_token(claims: &Value) -> String {
    format!("eyJhbGciOiJSUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn token_body(token: &str) -> String {
    json!({ "token": token }).to_string()
}

fn login_jwt(vector: &Value) -> Scenario {
    let now = u64_of(vector, "now_unix_ms");
    let exp = now / 1000 + u64_of(vector, "lifetime_secs");
    let signing_input = vector["signing_input"].as_str().map_or_else(|| "*".to_owned(), text);
    let body = token_body(str_of(vector, "jwt"));
    let pod = "https://acme.symphony.com";
    rsa_bot(&format!("login_jwt/{}", str_of(vector, "name")), vector, pod)
        .config("key_manager never")
        .expect(now, "poll", false, "output", vec![format!("output sign {exp} {signing_input}")])
        .expect(
            now,
            "sign",
            false,
            "output",
            vec![format!(
                "request 1 RsaSession POST {} {}",
                text(&format!("{pod}/login/pubkey/authenticate")),
                text(&body)
            )],
        )
}

fn login_request(vector: &Value, jwts: &[Value]) -> Scenario {
    let name = format!("requests/{}", str_of(vector, "name"));
    let base = str_of(vector, "base_url");
    let endpoint = str_of(vector, "endpoint");
    let at = |jwt: &Value| u64_of(jwt, "now_unix_ms");
    let jwt = || {
        let wanted = vector["jwt_from"].as_str().unwrap_or("");
        jwts.iter().find(|jwt| jwt["name"] == wanted).unwrap_or_else(|| fail(&format!("{name}: no JWT {wanted}")))
    };
    let (scenario, now, id) = match endpoint {
        "RsaSession" => {
            let jwt = jwt();
            let scenario = rsa_bot(&name, jwt, base).config("insecure_http").config("key_manager never");
            (scenario.step(at(jwt), "poll"), at(jwt), 1)
        }
        "RsaKeyManager" => {
            let jwt = jwt();
            let scenario = rsa_bot(&name, jwt, base)
                .config("insecure_http")
                .config("key_manager always")
                .config("parallel false")
                .step(at(jwt), "poll")
                .step(at(jwt), "sign");
            (scenario, at(jwt), 2)
        }
        "CertificateSession" => {
            let scenario = certificate_bot(&name, "never").config(&format!("url session_auth {}", text(base)));
            (scenario, T, 1)
        }
        "CertificateKeyManager" => {
            let scenario =
                certificate_bot(&name, "always").config(&format!("url key_manager {}", text(base))).step(T, "poll");
            (scenario, T, 2)
        }
        "AgentVersion" => {
            let scenario = certificate_bot(&name, "auto").config(&format!("url agent {}", text(base))).step(T, "poll");
            (scenario, T, 2)
        }
        other => fail(&format!("{name}: unknown endpoint {other}")),
    };
    // The step that hands out the request: the signed session login, the key-manager login after the session
    // token, or the agent's version after a session token that grants simplified key delivery.
    let input = match (endpoint, id) {
        ("RsaSession", _) => "sign".to_owned(),
        ("AgentVersion", _) => response_input(1, &json!({ "status": 200, "body": token_body(&skd_token()) })),
        (_, 2) => response_input(1, &json!({ "status": 200, "body": token_body("session-token") })),
        _ => "poll".to_owned(),
    };
    let body = match vector.get("body_json") {
        Some(json) => json.to_string(),
        None => str_of(vector, "body").to_owned(),
    };
    let mut lines = vec![
        "output send 1".to_owned(),
        format!("request {id} {endpoint} {} {} {}", str_of(vector, "method"), text(str_of(vector, "uri")), text(&body)),
    ];
    lines.extend(header_lines(vector["headers"].as_object()));
    // The earlier form lists some headers and those that must be absent; the current one lists all of them.
    let partial = vector.get("absent_headers").is_some() || vector.get("body_json").is_some();
    for absent in vector["absent_headers"].as_array().into_iter().flatten() {
        lines.push(format!("!header {}", value(absent)));
    }
    scenario.expect(now, &input, !partial, "output", lines)
}

fn skd_token() -> String {
    session_token(&json!({ "sub": "1234567890", "canUseSimplifiedKeyDelivery": true }))
}

fn skd(n: usize, vector: &Value) -> Scenario {
    let token = match vector.get("claims") {
        Some(claims) => session_token(claims),
        None => str_of(vector, "token").to_owned(),
    };
    let lines = if vector["skd"].as_bool().unwrap_or_else(|| fail("`skd` must be a boolean")) {
        vec![format!("output done tokens 1 {} ~ ~ true", text(&token))]
    } else {
        vec!["output send 1".into(), "request 2 CertificateKeyManager *".into()]
    };
    certificate_bot(&format!("skd/{n}"), "auto").step(T, "poll").expect(
        T,
        &response_input(1, &json!({ "status": 200, "body": token_body(&token) })),
        false,
        "output",
        lines,
    )
}

fn agent_version(n: usize, vector: &Value) -> Scenario {
    let token = skd_token();
    let body = match vector.get("version") {
        Some(version) => json!({ "version": version }).to_string(),
        None => str_of(vector, "body").to_owned(),
    };
    let lines = if vector["supports_skd"].as_bool().unwrap_or_else(|| fail("`supports_skd` must be a boolean")) {
        vec![format!("output done tokens 1 {} ~ ~ true", text(&token))]
    } else {
        vec!["output send 1".into(), "request 3 CertificateKeyManager *".into()]
    };
    certificate_bot(&format!("agent_versions/{n}"), "auto")
        .config("url agent https://agent.example")
        .step(T, "poll")
        .step(T, &response_input(1, &json!({ "status": 200, "body": token_body(&token) })))
        .expect(T, &response_input(2, &json!({ "status": vector["status"], "body": body })), false, "output", lines)
}

fn login_response(n: usize, vector: &Value, policy: Option<&Value>) -> Scenario {
    // The earlier form gives no policy: one with no jitter, so that a `Retry-After` is the delay exactly.
    let fallback = json!({
        "now_unix_ms": T, "max_attempts": 10, "initial_interval_ms": 500, "multiplier": 2.0,
        "max_interval_ms": 300_000, "jitter": 0.0,
    });
    let policy = policy.unwrap_or(&fallback);
    let now = u64_of(policy, "now_unix_ms");
    let max_attempts = u64_of(policy, "max_attempts");
    let status = u64_of(vector, "status");
    let line = match str_of(vector, "outcome") {
        "token" => format!("output done tokens 1 {} *", text(str_of(vector, "token"))),
        "rejected" => format!("event login_failed rejected CertificateSession {status} *"),
        "protocol" => {
            format!("event login_failed protocol CertificateSession {status} {} *", str_of(vector, "problem"))
        }
        "retry" => {
            let delay = vector.get("delay_ms").or_else(|| vector.get("retry_after_secs")).map(|delay| {
                let ms = delay.as_u64().unwrap_or_else(|| fail("delays must be numbers"));
                if vector.get("delay_ms").is_some() { ms } else { ms * 1000 }
            });
            match delay {
                Some(ms) => format!("event retry_scheduled CertificateSession 1 {max_attempts} {ms} status {status}"),
                None => format!("event retry_scheduled CertificateSession 1 {max_attempts} *"),
            }
        }
        other => fail(&format!("unknown outcome {other}")),
    };
    certificate_bot(&format!("login_responses/{n}"), "never")
        .config(&format!(
            "retry {max_attempts} {} {} {} {}",
            u64_of(policy, "initial_interval_ms"),
            policy["multiplier"],
            u64_of(policy, "max_interval_ms"),
            policy["jitter"]
        ))
        .step(now, "poll")
        .expect(now, &response_input(1, vector), false, "output,events", vec![line])
}
