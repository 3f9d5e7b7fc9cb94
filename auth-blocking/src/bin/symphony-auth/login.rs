//! `symphony-auth login`: log in, read the session info, and call the agent's echo with both tokens.

use std::path::Path;
use std::time::Instant;

use symphony_auth_blocking::symphony_auth_core::{self, LoginMethod};

use crate::failure::{Class, Failure};

/// The message sent to the agent's echo.
const ECHO_MESSAGE: &str = "symphony-auth login";

/// Logs in with the configuration at `path` and prints the outcome (a summary, or one JSON object).
pub(crate) fn run(path: &Path, json: bool, attempts: Option<u32>) -> Result<(), Failure> {
    let bot = crate::bot_from(crate::with_attempts(crate::load_config_file(path.as_ref())?, attempts)?)?;
    let started = Instant::now();
    let tokens = bot.tokens()?;
    let login_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let info = bot.session_info()?;
    let key_manager = tokens.key_manager().is_some();
    if key_manager {
        let response = bot.send(symphony_auth_core::echo(bot.config().endpoints(), ECHO_MESSAGE))?;
        check_echo(response.status().as_u16(), response.body())?;
    }
    let skipped = |done| if done { "ok" } else { "skipped" };
    if json {
        // Written by hand to keep the documented order of the fields; the username is escaped by serde_json.
        let username = serde_json::Value::from(info.username).to_string();
        let done = skipped(key_manager);
        println!(
            r#"{{"username":{username},"user_id":{},"session":"ok","key_manager":"{done}","echo":"{done}","login_ms":{login_ms}}}"#,
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
