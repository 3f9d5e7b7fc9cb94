//! `symphony-auth logout`: log in, end the session through `POST /sessionauth/v1/logout`, and check that the
//! session no longer works.

use std::path::Path;

use symphony_auth_blocking::symphony_auth_core;

use crate::failure::{Class, Failure};

/// Logs in with the configuration at `path`, logs out, and checks the old session is refused.
pub(crate) fn run(path: &Path, json: bool, attempts: Option<u32>) -> Result<(), Failure> {
    let loaded = crate::load_config_file(path)?;
    let bot = crate::build_bot(loaded, attempts, None)?;
    let endpoints = bot.config().endpoints().clone();
    let tokens = bot.tokens().map_err(|error| Failure::of_request(error, endpoints.pod.host()))?;
    bot.logout().map_err(|error| Failure::of_request(error, endpoints.session_auth.host()))?;

    // The old session, sent as it is: the bot itself would log in again.
    let mut check = symphony_auth_core::session_info(&endpoints);
    tokens.authorize(&mut check, symphony_auth_core::Target::Pod);
    let status = bot
        .send_unauthenticated(check)
        .map_err(|error| Failure::of_request(error, endpoints.pod.host()))?
        .status()
        .as_u16();
    if status != 401 {
        return Err(Failure::new(
            Class::Other,
            format!("the session still answers HTTP {status} on GET /pod/v2/sessioninfo after the logout"),
        ));
    }
    if json {
        println!(r#"{{"logout":"ok"}}"#);
    } else {
        println!("logout: ok (POST /sessionauth/v1/logout; the old session is refused with 401)");
    }
    Ok(())
}
