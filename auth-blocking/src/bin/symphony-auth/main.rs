//! `symphony-auth`: log a Symphony bot in from its BDK configuration file, or find out why it cannot.
//!
//! - `symphony-auth login --config FILE [--json]`: logs in, reads the session info, calls the agent's echo.
//! - `symphony-auth check --config FILE`: the resolved URLs, the key, the TLS trust of each host, the clock
//!   offset, and each login endpoint's answer.
//!
//! A failure prints one line on stderr, whose prefix and exit code tell its class (see [`HELP`]). Nothing this
//! tool prints ever holds a token, a JWT or a private key.

#![forbid(unsafe_code)]

mod check;
mod failure;
mod login;

/// `--attempts N` applied to the retry policy of loaded settings.
/// Reads a BDK configuration file, as `Bot::from_config_file` does, for the commands that adjust it first.
fn load_config_file(
    path: &std::path::Path,
) -> Result<symphony_auth_blocking::symphony_auth_core::LoadedSettings, symphony_auth_blocking::Error> {
    let read = &mut |file: &std::path::Path| std::fs::read(file);
    symphony_auth_blocking::symphony_auth_core::driver::load_bdk_file(path, read, &|name| std::env::var(name).ok())
}

/// A bot from settings read by [`load_config_file`].
fn bot_from(
    loaded: symphony_auth_blocking::symphony_auth_core::LoadedSettings,
) -> Result<symphony_auth_blocking::Bot, symphony_auth_blocking::Error> {
    symphony_auth_blocking::BotBuilder::from_settings(loaded)?.build()
}

fn with_attempts(
    mut loaded: symphony_auth_blocking::symphony_auth_core::LoadedSettings,
    attempts: Option<u32>,
) -> Result<symphony_auth_blocking::symphony_auth_core::LoadedSettings, symphony_auth_blocking::Error> {
    if let Some(attempts) = attempts {
        let retry = loaded.config.retry().clone().with_max_attempts(attempts)?;
        loaded.config = loaded.config.with_retry(retry);
    }
    Ok(loaded)
}

use std::path::PathBuf;
use std::process::ExitCode;

use failure::{Class, Failure};

/// The `--help` text, exit codes included.
const HELP: &str = "\
symphony-auth: authenticate a Symphony bot from its BDK configuration file (YAML or JSON)

USAGE:
    symphony-auth login --config FILE [--json] [--attempts N]
    symphony-auth check --config FILE [--attempts N]
    symphony-auth --help | --version

COMMANDS:
    login   Log in (RSA key or client certificate, as configured), call GET /pod/v2/sessioninfo and, when a
            key-manager token was obtained, POST /agent/v1/util/echo. Prints a short summary; with --json,
            exactly one JSON object on stdout:
            {\"username\": str, \"user_id\": int, \"session\": \"ok\", \"key_manager\": \"ok\"|\"skipped\",
             \"echo\": \"ok\"|\"skipped\", \"login_ms\": int}
    check   Diagnose a configuration: the resolved URL of each service, the key's format and size and the
            public key (SPKI PEM) to register on the pod, or the certificate chain, the TLS trust of each host,
            the clock offset from the server's Date header, and each login endpoint's answer (status and
            server message). Exits 0 when everything looks right.

OPTIONS:
    --config FILE   The BDK configuration file (`${ENV}` and `${ENV:-default}` are expanded)
    --json          (login) Print one JSON object instead of the summary
    --attempts N    Login attempts per endpoint, the first included (default: the file's retry.maxAttempts,
                    else 10); 1 answers at once when a host is down
    -h, --help      Print this help
    -V, --version   Print the version

EXIT CODES (a failure prints one line on stderr, starting with the prefix shown):
    0   success
    1   `error:`                      anything else (server error, unusable answer, failed API call)
    2   `usage error:`                bad command line
    3   `bad key or configuration:`   unreadable or invalid configuration file, key or certificate
    4   `credentials rejected:`       the pod refused the bot's key or certificate
    5   `host unreachable:`           connection refused or timed out, name not resolved
    6   `TLS trust failure:`          a TLS handshake failed (untrusted server certificate, client
                                      certificate refused): check ssl.trustStore
    7   `clock problem:`              a login was refused and the server's clock differs from ours by
                                      more than 30 s

Nothing printed ever contains a token, a JWT or a private key.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Version,
    Login { config: PathBuf, json: bool, attempts: Option<u32> },
    Check { config: PathBuf, attempts: Option<u32> },
}

/// Parses the arguments after the program name.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, Failure> {
    let usage = |message: String| Failure::new(Class::Usage, format!("{message} (see `symphony-auth --help`)"));
    let mut args = args.into_iter();
    let command = match args.next().as_deref() {
        None => return Err(usage("no command given: expected `login` or `check`".into())),
        Some("-h" | "--help" | "help") => return Ok(Command::Help),
        Some("-V" | "--version") => return Ok(Command::Version),
        Some(name @ ("login" | "check")) => name.to_owned(),
        Some(other) => return Err(usage(format!("unknown command `{other}`: expected `login` or `check`"))),
    };
    let mut config = None;
    let mut json = false;
    let mut attempts = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" if command == "login" => json = true,
            "--attempts" => match args.next().and_then(|n| n.parse::<u32>().ok()).filter(|n| (1..=1000).contains(n)) {
                Some(n) => attempts = Some(n),
                None => return Err(usage("`--attempts` needs a whole number from 1 to 1000".into())),
            },
            "--config" | "-c" => match args.next() {
                Some(path) if !path.is_empty() => config = Some(PathBuf::from(path)),
                _ => return Err(usage(format!("`{arg}` needs a file"))),
            },
            other => match other.strip_prefix("--config=") {
                Some(path) if !path.is_empty() => config = Some(PathBuf::from(path)),
                _ => return Err(usage(format!("unexpected argument `{other}` for `{command}`"))),
            },
        }
    }
    let config = config.ok_or_else(|| usage(format!("`{command}` needs `--config FILE`")))?;
    Ok(if command == "login" { Command::Login { config, json, attempts } } else { Command::Check { config, attempts } })
}

fn main() -> ExitCode {
    let outcome = parse_args(std::env::args().skip(1)).and_then(|command| match command {
        Command::Help => {
            print!("{HELP}");
            Ok(())
        }
        Command::Version => {
            println!("symphony-auth {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Login { config, json, attempts } => login::run(&config, json, attempts),
        Command::Check { config, attempts } => check::run(&config, attempts),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.class.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, Failure> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn commands_and_options() {
        assert_eq!(
            parse(&["login", "--config", "c.yaml"]).unwrap(),
            Command::Login { config: "c.yaml".into(), json: false, attempts: None }
        );
        assert_eq!(
            parse(&["login", "--json", "--config=c.yaml", "--attempts", "2"]).unwrap(),
            Command::Login { config: "c.yaml".into(), json: true, attempts: Some(2) }
        );
        assert_eq!(
            parse(&["check", "-c", "c.yaml"]).unwrap(),
            Command::Check { config: "c.yaml".into(), attempts: None }
        );
        assert_eq!(parse(&["check", "--help"]).unwrap(), Command::Help);
        assert_eq!(parse(&["--version"]).unwrap(), Command::Version);
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for args in [
            &[][..],
            &["logn"],
            &["login"],
            &["login", "--config"],
            &["check", "--json", "--config", "c"],
            &["login", "-c", "c", "--attempts", "0"],
        ] {
            let failure = parse(args).unwrap_err();
            assert_eq!(failure.class, Class::Usage, "{args:?}");
            assert!(failure.to_string().starts_with("usage error: "), "{failure}");
        }
    }

    #[test]
    fn the_help_lists_every_exit_code_and_prefix() {
        for class in Class::ALL {
            let line = format!("    {}   `{}:`", class.code(), class.prefix());
            assert!(HELP.contains(&line), "{line}");
        }
    }
}
