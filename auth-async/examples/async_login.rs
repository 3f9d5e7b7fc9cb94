//! Logs a bot in with explicit settings and prints its user id.
//!
//! ```text
//! cargo run -p symphony-auth-async --example async_login -- --pod https://acme.symphony.com --user my.bot --key bot.pem
//! ```
//!
//! Every setting can also come from the environment (an argument wins): `SYMPHONY_POD_URL`,
//! `SYMPHONY_BOT_USERNAME`, `SYMPHONY_BOT_PRIVATE_KEY` (RSA key, PEM file) or `SYMPHONY_BOT_CERTIFICATE` (PEM file
//! with the certificate and its key), and optionally `SYMPHONY_AGENT_URL`, `SYMPHONY_KEY_MANAGER_URL`,
//! `SYMPHONY_SESSION_AUTH_URL`, `SYMPHONY_CA_PEM` (extra root certificates) and `SYMPHONY_PROXY`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use symphony_auth_async::Bot;
use symphony_auth_core::{BaseUrl, ClientIdentity, Config, Endpoints, RsaSigner};

const USAGE: &str = "usage: async_login --pod URL --user NAME (--key RSA_KEY.pem | --cert CERT_AND_KEY.pem)
             [--agent URL] [--key-manager URL] [--session-auth URL] [--ca ROOTS.pem] [--proxy URL]
(or the SYMPHONY_* environment variables named in the example's source)";

/// (argument, environment variable)
const SETTINGS: [(&str, &str); 9] = [
    ("--pod", "SYMPHONY_POD_URL"),
    ("--user", "SYMPHONY_BOT_USERNAME"),
    ("--key", "SYMPHONY_BOT_PRIVATE_KEY"),
    ("--cert", "SYMPHONY_BOT_CERTIFICATE"),
    ("--agent", "SYMPHONY_AGENT_URL"),
    ("--key-manager", "SYMPHONY_KEY_MANAGER_URL"),
    ("--session-auth", "SYMPHONY_SESSION_AUTH_URL"),
    ("--ca", "SYMPHONY_CA_PEM"),
    ("--proxy", "SYMPHONY_PROXY"),
];

fn settings() -> Result<HashMap<&'static str, String>, String> {
    let mut found = HashMap::new();
    for (arg, var) in SETTINGS {
        if let Ok(value) = std::env::var(var) {
            found.insert(arg, value);
        }
    }
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some((name, _)) = SETTINGS.iter().find(|(name, _)| *name == arg) else {
            return Err(format!("unknown argument {arg:?}"));
        };
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        found.insert(*name, value);
    }
    Ok(found)
}

fn read(path: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}").into())
}

async fn login(settings: &HashMap<&'static str, String>) -> Result<(), Box<dyn std::error::Error>> {
    let pod = BaseUrl::parse("pod", &settings["--pod"])?;
    let other = |arg, which| settings.get(arg).map_or(Ok(pod.clone()), |url| BaseUrl::parse(which, url));
    let endpoints = Endpoints {
        agent: other("--agent", "agent")?,
        key_manager: other("--key-manager", "key manager")?,
        session_auth: other("--session-auth", "session auth")?,
        pod: pod.clone(),
    };
    let user = &settings["--user"];
    let mut builder = match (settings.get("--key"), settings.get("--cert")) {
        (Some(key), None) => {
            let signer = Arc::new(RsaSigner::from_pem(&read(key)?)?);
            Bot::builder(Config::rsa(endpoints, user, signer)?)
        }
        (None, Some(cert)) => {
            Bot::builder(Config::certificate(endpoints, user)?).client_identity(ClientIdentity::from_pem(&read(cert)?)?)
        }
        _ => return Err("give either an RSA key (--key) or a client certificate (--cert)".into()),
    };
    if let Some(ca) = settings.get("--ca") {
        builder = builder.extra_root_certificates_pem(&read(ca)?)?;
    }
    if let Some(proxy) = settings.get("--proxy") {
        builder = builder.proxy(proxy)?;
    }
    let bot = builder.build()?;
    let me = bot.session_info().await?;
    println!("{}", me.id);
    eprintln!("logged in as {:?} (user id {}), state {:?}", me.username, me.id, bot.state());
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let settings = match settings() {
        Ok(settings) if settings.contains_key("--pod") && settings.contains_key("--user") => settings,
        Ok(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match login(&settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("login failed: {error}");
            ExitCode::FAILURE
        }
    }
}
