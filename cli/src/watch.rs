//! `symphony-auth watch`: keep one bot for a while, calling the session info and the agent's echo through it
//! every second, and count what happened: calls, failures, logins and the 401s that caused re-logins.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use symphony_auth_blocking::symphony_auth_core::{self, Event};

use crate::failure::Failure;

/// The message sent to the agent's echo.
const ECHO_MESSAGE: &str = "symphony-auth watch";

/// What the bot's events told.
#[derive(Default)]
struct Counts {
    logins: AtomicU64,
    unauthorized: AtomicU64,
}

/// Watches the bot of the configuration at `path` for `seconds`, and prints the counts.
pub(crate) fn run(path: &Path, seconds: u64, json: bool, attempts: Option<u32>) -> Result<(), Failure> {
    let loaded = crate::load_config_file(path)?;
    let counts = Arc::new(Counts::default());
    let seen = Arc::clone(&counts);
    let hook = move |event: &Event| match event {
        Event::Authenticated { .. } => {
            seen.logins.fetch_add(1, Ordering::Relaxed);
        }
        Event::Expired { .. } => {
            seen.unauthorized.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    };
    let bot = crate::build_bot(loaded, attempts, Some(Box::new(hook)))?;
    let endpoints = bot.config().endpoints().clone();
    let (mut calls, mut ok) = (0_u64, 0_u64);
    let started = Instant::now();
    for tick in 0..seconds {
        let mut record = |succeeded: bool| {
            calls += 1;
            ok += u64::from(succeeded);
        };
        record(bot.session_info().is_ok());
        // An echo needs the key-manager token, or a session that grants simplified key delivery.
        let echo_possible = bot.tokens().is_ok_and(|t| t.key_manager().is_some() || t.simplified_key_delivery());
        if echo_possible {
            let echo = bot.send(symphony_auth_core::echo(&endpoints, ECHO_MESSAGE));
            record(echo.is_ok_and(|response| response.status() == 200));
        }
        // The calls run once a second: wait for the start of the next one.
        let next = started + Duration::from_secs(tick + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let (logins, unauthorized) = (counts.logins.load(Ordering::Relaxed), counts.unauthorized.load(Ordering::Relaxed));
    let failed = calls - ok;
    let refreshes = bot.common_jwt_refreshes();
    if json {
        println!(
            r#"{{"calls":{calls},"ok":{ok},"failed":{failed},"logins":{logins},"unauthorized":{unauthorized},"common_jwt_refreshes":{refreshes}}}"#
        );
    } else {
        println!("calls: {calls} ({ok} ok, {failed} failed)");
        println!("logins: {logins} ({unauthorized} after a 401)");
        if bot.config().common_jwt().is_some() {
            println!("Common JWT access tokens: {refreshes}");
        }
    }
    Ok(())
}
