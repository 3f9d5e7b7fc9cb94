//! Logs a bot in with explicit settings and prints its user id.
//!
//! ```text
//! cargo run -p symphony-auth-blocking --example login -- https://acme.symphony.com my.bot /path/to/private-key.pem [ca.pem]
//! SYMPHONY_POD_URL=... SYMPHONY_BOT_USERNAME=... SYMPHONY_BOT_KEY=/path/key.pem cargo run -p symphony-auth-blocking --example login
//! ```
//!
//! The optional fourth argument (or `SYMPHONY_CA_PEM`) names a PEM file of extra root certificates, trusted in
//! addition to the built-in ones.

use std::process::ExitCode;
use std::sync::Arc;

use symphony_auth_blocking::Bot;
use symphony_auth_blocking::symphony_auth_core::{Config, Endpoints, RsaSigner};

const USAGE: &str = "usage: login <pod-url> <username> <private-key.pem> [extra-roots.pem]
   or: SYMPHONY_POD_URL=... SYMPHONY_BOT_USERNAME=... SYMPHONY_BOT_KEY=... [SYMPHONY_CA_PEM=...] login";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setting = |index: usize, var: &str| args.get(index).cloned().or_else(|| std::env::var(var).ok());
    let (Some(url), Some(username), Some(key_path)) =
        (setting(0, "SYMPHONY_POD_URL"), setting(1, "SYMPHONY_BOT_USERNAME"), setting(2, "SYMPHONY_BOT_KEY"))
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let ca_path = setting(3, "SYMPHONY_CA_PEM");
    match login(&url, &username, &key_path, ca_path.as_deref()) {
        Ok(id) => {
            println!("{id}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn login(url: &str, username: &str, key_path: &str, ca_path: Option<&str>) -> Result<u64, Box<dyn std::error::Error>> {
    let key = std::fs::read(key_path).map_err(|e| format!("cannot read {key_path}: {e}"))?;
    let signer = Arc::new(RsaSigner::from_pem(&key)?);
    let config = Config::rsa(Endpoints::single(url)?, username, signer)?;
    let mut builder = Bot::builder(config);
    if let Some(ca_path) = ca_path {
        let pem = std::fs::read(ca_path).map_err(|e| format!("cannot read {ca_path}: {e}"))?;
        builder = builder.extra_root_certificates_pem(&pem)?;
    }
    let bot = builder.build()?;
    Ok(bot.session_info()?.id)
}
