//! `symphony-auth login`: log in, read the session info, and call the agent's echo with both tokens.

use std::path::Path;
use std::time::{Duration, Instant};

use symphony_auth_blocking::symphony_auth_core::{
    self, Endpoints, Event, FailureCause, LoadedSettings, LoginEndpoint, LoginMethod,
};

use crate::failure::{Class, Failure};

/// The message sent to the agent's echo.
const ECHO_MESSAGE: &str = "symphony-auth login";

/// Logs in with the configuration at `path` and prints the outcome (a summary, or one JSON object).
pub(crate) fn run(path: &Path, json: bool, attempts: Option<u32>) -> Result<(), Failure> {
    let loaded = crate::load_config_file(path)?;
    let proxy = proxy_host(&loaded);
    let endpoints = loaded.config.endpoints().clone();
    let report = move |event: &Event| {
        if let Some(line) = retry_line(event, &endpoints) {
            eprintln!("{line}");
        }
    };
    let bot = crate::build_bot(loaded, attempts, Some(Box::new(report)))?;
    let endpoints = bot.config().endpoints();
    // The host a failed request tried to reach by name: the proxy's when there is one.
    let host = |base: &symphony_auth_core::BaseUrl| proxy.clone().unwrap_or_else(|| base.host().to_owned());

    let started = Instant::now();
    let tokens = bot.tokens().map_err(|error| {
        let base = match &error {
            symphony_auth_blocking::Error::Auth(auth) => auth.endpoint().map(|e| e.base(endpoints)),
            _ => None,
        };
        Failure::of_request(error, &host(base.unwrap_or(&endpoints.pod)))
    })?;
    let login_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let info = bot.session_info().map_err(|error| Failure::of_request(error, &host(&endpoints.pod)))?;
    let key_manager = tokens.key_manager().is_some();
    if key_manager {
        let response = bot
            .send(symphony_auth_core::echo(endpoints, ECHO_MESSAGE))
            .map_err(|error| Failure::of_request(error, &host(&endpoints.agent)))?;
        check_echo(response.status().as_u16(), response.body())?;
    }
    // The session-info call went out with the Common JWT when the file enables it: A5 answered, the call passed.
    let common_jwt = bot.config().common_jwt().is_some() && bot.common_jwt_refreshes() > 0;
    let skipped = |done| if done { "ok" } else { "skipped" };
    if json {
        // Written by hand to keep the documented order of the fields; the username is escaped by serde_json.
        let username = serde_json::Value::from(info.username).to_string();
        let done = skipped(key_manager);
        let common_jwt = skipped(common_jwt);
        println!(
            r#"{{"username":{username},"user_id":{},"session":"ok","key_manager":"{done}","echo":"{done}","common_jwt":"{common_jwt}","login_ms":{login_ms}}}"#,
            info.id
        );
        return Ok(());
    }
    let method = match bot.config().method() {
        LoginMethod::Certificate => "client certificate",
        _ => "RSA key",
    };
    println!("logged in as {} (user id {}) by {method} in {login_ms} ms", info.username, info.id);
    println!("session:     ok (GET /pod/v2/sessioninfo)");
    if common_jwt {
        println!("common JWT:  ok (POST /login/idm/tokens, then the session info with it)");
    }
    if key_manager {
        println!("key manager: ok");
        println!("echo:        ok (POST /agent/v1/util/echo)");
    } else {
        let why = if tokens.simplified_key_delivery() { "simplified key delivery" } else { "key manager disabled" };
        println!("key manager: skipped ({why})");
        println!("echo:        skipped (no key-manager token)");
    }
    Ok(())
}

/// The proxy's host, when the file names a proxy.
fn proxy_host(loaded: &LoadedSettings) -> Option<String> {
    let uri = loaded.proxy.as_ref()?.url.parse::<http::Uri>().ok()?;
    uri.host().map(str::to_owned)
}

/// The stderr line for a retry the login has just scheduled: what failed, which attempt of how many, and how long
/// until the next. `None` for every other event.
fn retry_line(event: &Event, endpoints: &Endpoints) -> Option<String> {
    let Event::RetryScheduled { endpoint, attempt, max_attempts, delay, cause, .. } = event else { return None };
    let base = endpoint.base(endpoints);
    let what = match cause {
        FailureCause::Status(status) => format!("answered HTTP {status}"),
        other => format!("failed: {other}"),
    };
    Some(format!(
        "retrying: {} on {base} {what}; attempt {attempt} of {max_attempts} failed, next try in {}",
        describe(*endpoint),
        seconds(*delay),
    ))
}

/// `POST /login/pubkey/authenticate (session login)`.
fn describe(endpoint: LoginEndpoint) -> String {
    let role = match endpoint {
        LoginEndpoint::RsaSession | LoginEndpoint::CertificateSession => "session login",
        LoginEndpoint::RsaKeyManager | LoginEndpoint::CertificateKeyManager => "key-manager login",
        _ => "agent version check",
    };
    format!("{endpoint} ({role})")
}

/// `0.5 s`, `12 s`.
fn seconds(delay: Duration) -> String {
    let secs = delay.as_secs_f64();
    if secs < 10.0 { format!("{secs:.1} s") } else { format!("{secs:.0} s") }
}

/// The echo must answer 200 with the message sent.
fn check_echo(status: u16, body: &[u8]) -> Result<(), Failure> {
    if status != 200 {
        return Err(Failure::new(Class::Other, format!("POST /agent/v1/util/echo answered HTTP {status}")));
    }
    let echoed = serde_json::from_slice::<serde_json::Value>(body).ok();
    match echoed.as_ref().and_then(|v| v.get("message")).and_then(serde_json::Value::as_str) {
        Some(ECHO_MESSAGE) => Ok(()),
        _ => Err(Failure::new(Class::Other, "POST /agent/v1/util/echo answered HTTP 200 without the message sent")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use symphony_auth_core::{Generation, TransportFailure, TransportKind};

    #[test]
    fn a_scheduled_retry_says_what_failed_the_attempt_and_the_wait() {
        let endpoints = Endpoints::single("https://acme.example:8443").unwrap();
        let refused = TransportFailure::new(TransportKind::Connect, "connection failed");
        let event = Event::RetryScheduled {
            endpoint: LoginEndpoint::RsaSession,
            attempt: 2,
            max_attempts: 10,
            delay: Duration::from_millis(1500),
            cause: FailureCause::Transport(refused),
        };
        assert_eq!(
            retry_line(&event, &endpoints).unwrap(),
            "retrying: POST /login/pubkey/authenticate (session login) on https://acme.example:8443 failed: \
             connection failed: connection failed; attempt 2 of 10 failed, next try in 1.5 s"
        );
        let event = Event::RetryScheduled {
            endpoint: LoginEndpoint::CertificateKeyManager,
            attempt: 1,
            max_attempts: 3,
            delay: Duration::from_secs(30),
            cause: FailureCause::Status(503),
        };
        let line = retry_line(&event, &endpoints).unwrap();
        assert!(line.contains("(key-manager login) on https://acme.example:8443 answered HTTP 503;"), "{line}");
        assert!(line.ends_with("attempt 1 of 3 failed, next try in 30 s"), "{line}");

        assert_eq!(retry_line(&Event::Expired { generation: Generation::default() }, &endpoints), None);
    }
}
