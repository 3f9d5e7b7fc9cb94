//! `symphony-auth obo`: log in as the configured app (`app.*`), obtain a session for one user on their behalf,
//! and read that user's session info with it.

use std::path::Path;

use symphony_auth_blocking::Error;
use symphony_auth_blocking::symphony_auth_core::OboUser;

use crate::failure::{Class, Failure};

/// Runs the OBO login for `user` with the configuration at `path`, and prints the outcome.
pub(crate) fn run(path: &Path, user: OboUser, json: bool, attempts: Option<u32>) -> Result<(), Failure> {
    let settings = crate::read_config_file(path)?;
    let app_id = settings.app.as_ref().map(|app| app.app_id.clone()).unwrap_or_default();
    let read = &mut |file: &Path| std::fs::read(file);
    let loaded = settings.load_obo_with_signer(crate::signer_backend(), user, read).map_err(Error::from)?;
    let pod_host = loaded.config.endpoints().pod.host().to_owned();
    let bot = crate::build_bot(loaded, attempts, None)?;
    // The session info is the first call: it logs the app in, then the user, then reads the user's record.
    let info = bot.session_info().map_err(|error| Failure::of_request(error, &pod_host))?;
    if bot.tokens().is_ok_and(|tokens| tokens.key_manager().is_some()) {
        return Err(Failure::new(Class::Other, "an OBO session came with a key-manager token"));
    }
    if json {
        let object = serde_json::json!({
            "app_id": app_id, "user_id": info.id, "username": info.username, "session": "ok",
        });
        // serde_json's map keeps the keys sorted; the contract names them, not their order.
        println!("{object}");
    } else {
        println!("app {app_id} acting for {} (user id {})", info.username, info.id);
        println!("session: ok (GET /pod/v2/sessioninfo with the user's session)");
    }
    Ok(())
}
