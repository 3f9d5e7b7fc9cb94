//! `symphony-auth`: log a Symphony bot in from its BDK configuration file, or find out why it cannot.
//!
//! - `symphony-auth login --config FILE [--json]`: logs in, reads the session info, calls the agent's echo.
//! - `symphony-auth check --config FILE [--json]`: the resolved URLs, the key, the TLS trust of each host, the clock
//!   offset, and each login endpoint's answer.
//! - `symphony-auth obo --config FILE (--user-id N | --username NAME)`: the app's session, a user's on its behalf,
//!   and that user's session info.
//! - `symphony-auth logout --config FILE`: logs in, logs out, checks the session no longer works.
//! - `symphony-auth watch --config FILE --seconds S`: one bot for S seconds, calls every second, counts.
//! - `symphony-auth app-auth --config FILE [--json]`: an extension app's authentication, pair check and pod
//!   certificate.
//! - `symphony-auth verify-jwt --config FILE --jwt JWT|- [--json]`: a user JWT (`-`: read from standard input)
//!   checked against the pod certificate.
//! - `symphony-auth config --config FILE [--json]`: the resolved settings, secrets masked; no request.
//! - `symphony-auth completions SHELL`: a completion script for the shell.
//!
//! A failure prints one line on stderr, whose prefix and exit code tell its class (see [`EXIT_CODES`]). Nothing
//! this tool prints ever holds a token, a JWT or a private key.

#![forbid(unsafe_code)]

mod app;
mod check;
mod config;
mod failure;
mod logging;
mod login;
mod logout;
mod obo;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory as _, Parser, Subcommand};
use symphony_auth_blocking::symphony_auth_core::{Event, LoadedSettings};
use symphony_auth_blocking::{Bot, Error};

use failure::{Class, Failure};

/// The end of `--help`: where diagnostics go, and what each exit code means.
const EXIT_CODES: &str = "\
DIAGNOSTICS:
    Each login retry is reported on stderr when it is scheduled: what failed, the attempt, the wait.
    Logs go to stderr as RUST_LOG says (tracing's EnvFilter syntax: `debug`, `ureq=trace,rustls=debug`,
    `symphony_auth_core=debug`): the bot's logins (a `login` span with the method, endpoints and attempt;
    retries, 401s, re-logins, failures) and the HTTP and TLS stacks' records. -v shows info, -vv debug,
    -vvv trace, for every target, over RUST_LOG's default level. Neither set: none. Colour only on a
    terminal, and not with NO_COLOR set. The `ureq_proto` target never logs at trace: there it hex-dumps
    every request and answer, tokens and JWTs included, so it is capped at debug whatever RUST_LOG or -v
    ask.

EXIT CODES (a failure ends with one line on stderr, starting with the prefix shown):
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

Nothing printed ever contains a token, a JWT or a private key.";

/// Authenticate a Symphony bot from its BDK configuration file (YAML or JSON).
#[derive(Debug, Parser)]
#[command(name = "symphony-auth", version, after_long_help = EXIT_CODES)]
struct Cli {
    /// More diagnostics on stderr: -v info, -vv debug, -vvv trace (see DIAGNOSTICS in --help)
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in, read the session info and call the agent's echo
    ///
    /// Logs in (RSA key or client certificate, as configured), calls GET /pod/v2/sessioninfo and, when a
    /// key-manager token was obtained, POST /agent/v1/util/echo. Prints a short summary; with --json, exactly one
    /// JSON object on stdout:
    /// {"username": str, "user_id": int, "session": "ok", "key_manager": "ok"|"skipped",
    ///  "echo": "ok"|"skipped", "common_jwt": "ok"|"skipped", "login_ms": int}
    /// common_jwt is ok when commonJwt.enabled is set, an access token came from POST /login/idm/tokens and the
    /// session info call succeeded with it.
    #[command(verbatim_doc_comment)]
    Login {
        #[command(flatten)]
        target: Target,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Diagnose a configuration: URLs, key, TLS trust, clock, each login endpoint
    ///
    /// The resolved URL of each service, the key's format and size and the public key (SPKI PEM) to register on
    /// the pod, or the certificate chain, the TLS trust of each host, the clock offset from the server's Date
    /// header, and each login endpoint's answer (status and server message). Exits 0 when everything looks right.
    /// With --json, one JSON object on stdout at the end:
    /// {"config": str, "username": str, "method": "rsa"|"certificate", "services": {...}, "public_key_pem": str,
    ///  "findings": [{"section": str, "status": "ok"|"note"|"warn"|"fail"|"hint", "text": str}],
    ///  "problems": int, "ok": bool}
    #[command(verbatim_doc_comment)]
    Check {
        #[command(flatten)]
        target: Target,
        /// Print one JSON object instead of the report
        #[arg(long)]
        json: bool,
    },
    /// Print the settings of a configuration file as they are resolved, secrets masked
    ///
    /// What the library reads from the BDK file: ${ENV} expanded, each service's URL, the key or certificate
    /// (paths shown, inline key material never), the trust store, proxies (URL and user; the password masked),
    /// timeouts, retries, key-manager policy, default header names (values masked) and the OBO app. Reads no
    /// key and sends no request. With --json, one JSON object on stdout.
    #[command(verbatim_doc_comment)]
    Config {
        /// The BDK configuration file (`${ENV}` and `${ENV:-default}` are expanded)
        #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        config: PathBuf,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Act for a user as the configured app (OBO) and read that user's session info
    ///
    /// Logs in as the app of `app.*` (RSA key or certificate), obtains a session for the user, and calls
    /// GET /pod/v2/sessioninfo with it. With --json, exactly one JSON object on stdout:
    /// {"app_id": str, "user_id": int, "username": str, "session": "ok"}
    #[command(verbatim_doc_comment)]
    Obo {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        user: OboUserArg,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Authenticate the configured extension app (Circle of Trust)
    ///
    /// Reads app.appId and app.privateKey (RSA: POST /login/v1/pubkey/app/authenticate/extensionApp, then GET
    /// /pod/v1/podcert) or app.certificate (a PEM file with the certificate and its key: the same calls on the
    /// session-auth host over mutual TLS), with a fresh app token; checks the returned pair locally. With --json,
    /// exactly one JSON object on stdout:
    /// {"app_id": str, "symphony_token": "ok", "expire_at": int, "pod_certificate": "ok"}
    #[command(verbatim_doc_comment)]
    AppAuth {
        /// The BDK configuration file, with an `app` section
        #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        config: PathBuf,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Log in, log out through POST /sessionauth/v1/logout, and check the session no longer works
    ///
    /// The session-auth host asks for a client certificate. With --json: {"logout": "ok"}
    #[command(verbatim_doc_comment)]
    Logout {
        #[command(flatten)]
        target: Target,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Keep one bot for S seconds, calling the session info and echo every second
    ///
    /// With --json, one JSON object on stdout at the end:
    /// {"calls": int, "ok": int, "failed": int, "logins": int, "unauthorized": int, "common_jwt_refreshes": int}
    #[command(verbatim_doc_comment)]
    Watch {
        #[command(flatten)]
        target: Target,
        /// How long to watch, in seconds
        #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        seconds: u64,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Verify a user JWT from an extension app's frontend
    ///
    /// Checks the JWT's signature against the pod certificate, its exp, its aud (the configured app.appId) and
    /// its numeric sub, and prints the user's claims; with --json one JSON object:
    /// {"user_id": int, "username": str, ...}
    /// An expired, wrongly signed or wrong-audience JWT exits 4 with the reason on one line.
    #[command(verbatim_doc_comment)]
    VerifyJwt {
        /// The BDK configuration file, with an `app` section
        #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
        config: PathBuf,
        /// The user JWT (never printed); `-` reads it from standard input, keeping it out of the process list
        #[arg(long, value_name = "JWT")]
        jwt: String,
        /// Print one JSON object instead of the summary
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for SHELL on stdout
    ///
    /// For example `symphony-auth completions bash > ~/.local/share/bash-completion/completions/symphony-auth`.
    /// No --json: its output is a shell script, which the shell reads as it is.
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The bot a command works on.
#[derive(Debug, Args, PartialEq, Eq)]
struct Target {
    /// The BDK configuration file (`${ENV}` and `${ENV:-default}` are expanded)
    #[arg(short, long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    config: PathBuf,
    /// Login attempts per endpoint, the first included (default: the file's retry.maxAttempts, else 10); 1
    /// answers at once when a host is down
    #[arg(long, value_name = "N", value_hint = clap::ValueHint::Other, value_parser = clap::value_parser!(u32).range(1..=1000))]
    attempts: Option<u32>,
}

/// The user an OBO command acts for: by id or by username, exactly one.
#[derive(Debug, Args, PartialEq, Eq)]
#[group(required = true, multiple = false)]
struct OboUserArg {
    /// The user's numeric id
    #[arg(long, value_name = "N")]
    user_id: Option<u64>,
    /// The user's username
    #[arg(long, value_name = "NAME")]
    username: Option<String>,
}

impl OboUserArg {
    fn user(&self) -> Result<symphony_auth_blocking::symphony_auth_core::OboUser, Failure> {
        use symphony_auth_blocking::symphony_auth_core::OboUser;
        match (self.user_id, &self.username) {
            (Some(id), _) => Ok(OboUser::id(id)),
            (None, Some(name)) => {
                OboUser::username(name).map_err(|e| Failure::new(Class::Usage, format!("--username: {e}")))
            }
            (None, None) => Err(Failure::new(Class::Usage, "give --user-id or --username")),
        }
    }
}

/// What is told of each event of the bot's logins.
type EventHook = Box<dyn Fn(&Event) + Send + Sync>;

/// Reads a BDK configuration file, as `Bot::from_config_file` does, for the commands that adjust it first; an RSA
/// key goes to the fastest signer compiled in ([`signer_backend`]).
fn load_config_file(path: &std::path::Path) -> Result<LoadedSettings, Error> {
    let read = &mut |file: &std::path::Path| std::fs::read(file);
    Ok(read_config_file(path)?.load_with_signer(signer_backend(), read)?)
}

/// The signer of RSA keys: the fastest compiled in, `aws-lc` with the `aws-lc-signer` feature, else `ring`.
fn signer_backend() -> Option<symphony_auth_blocking::symphony_auth_core::SignerBackend> {
    symphony_auth_blocking::symphony_auth_core::SignerBackend::fastest()
}

/// Reads and parses a BDK configuration file without loading what it names.
fn read_config_file(path: &std::path::Path) -> Result<symphony_auth_blocking::symphony_auth_core::BotSettings, Error> {
    let read = &mut |file: &std::path::Path| std::fs::read(file);
    symphony_auth_blocking::symphony_auth_core::driver::read_bdk_file(path, read, &|name| std::env::var(name).ok())
}

/// The bot of the settings, with `--attempts` applied and `on_event` given the bot's events.
fn build_bot(mut loaded: LoadedSettings, attempts: Option<u32>, on_event: Option<EventHook>) -> Result<Bot, Error> {
    if let Some(attempts) = attempts {
        let retry = loaded.config.retry().clone().with_max_attempts(attempts)?;
        loaded.config = loaded.config.with_retry(retry);
    }
    let builder = symphony_auth_blocking::BotBuilder::from_settings(loaded)?;
    match on_event {
        Some(hook) => builder.on_event(hook).build(),
        None => builder.build(),
    }
}

/// A command-line mistake as one line: clap's message without its usage block, pointing at `--help`.
fn usage_failure(error: &clap::Error) -> Failure {
    if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap's message here is the whole help text.
        return Failure::new(
            Class::Usage,
            "no command given: expected `login`, `check`, `obo`, `logout`, `watch` or `completions` (see \
             `symphony-auth --help`)",
        );
    }
    let text = error.to_string();
    let message = text
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    Failure::new(Class::Usage, format!("{message} (see `symphony-auth --help`)"))
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Login { target, json } => login::run(&target.config, json, target.attempts),
        Command::Check { target, json } => check::run(&target.config, target.attempts, json),
        Command::Config { config, json } => config::run(&config, json),
        Command::Obo { target, user, json } => obo::run(&target.config, user.user()?, json, target.attempts),
        Command::Logout { target, json } => logout::run(&target.config, json, target.attempts),
        Command::Watch { target, seconds, json } => watch::run(&target.config, seconds, json, target.attempts),
        Command::AppAuth { config, json } => app::app_auth(&config, json),
        Command::VerifyJwt { config, jwt, json } => app::verify_jwt(&config, &jwt, json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "symphony-auth", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.exit_code() == 0 => {
            // --help, --version: clap prints them, in colour on a terminal only.
            return match error.print() {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        Err(error) => {
            let failure = usage_failure(&error);
            eprintln!("{failure}");
            return ExitCode::from(failure.class.code());
        }
    };
    logging::init(cli.verbose, std::env::var("RUST_LOG").ok().as_deref());
    match run(cli) {
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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("symphony-auth").chain(args.iter().copied()))
    }

    fn target(config: &str, attempts: Option<u32>) -> Target {
        Target { config: config.into(), attempts }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn commands_and_options() {
        let cli = parse(&["login", "--config", "c.yaml"]).unwrap();
        assert!(matches!(cli.command, Command::Login { target: t, json: false } if t == target("c.yaml", None)));
        assert_eq!(cli.verbose, 0);

        let cli = parse(&["login", "--json", "--config=c.yaml", "--attempts", "2", "-vv"]).unwrap();
        assert!(matches!(cli.command, Command::Login { target: t, json: true } if t == target("c.yaml", Some(2))));
        assert_eq!(cli.verbose, 2, "-v after the command");
        assert_eq!(parse(&["-vvv", "check", "-c", "c"]).unwrap().verbose, 3, "-v before the command");
        assert_eq!(parse(&["--verbose", "check", "-c", "c"]).unwrap().verbose, 1);

        let cli = parse(&["check", "-c", "c.yaml", "--attempts", "1000"]).unwrap();
        assert!(matches!(cli.command, Command::Check { target: t, json: false } if t == target("c.yaml", Some(1000))));
        assert!(matches!(parse(&["check", "-c", "c", "--json"]).unwrap().command, Command::Check { json: true, .. }));
        let cli = parse(&["config", "--config", "c.yaml", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Config { json: true, .. }));
        assert!(parse(&["config"]).is_err(), "a file is required");
        assert!(parse(&["completions", "bash", "--json"]).is_err(), "completions print a script, never JSON");

        let cli = parse(&["obo", "-c", "c", "--username", "j.doe", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Obo { user: OboUserArg { user_id: None, username: Some(_) }, json: true, .. }
        ));
        assert!(parse(&["obo", "-c", "c"]).is_err(), "a user is required");
        assert!(parse(&["obo", "-c", "c", "--user-id", "1", "--username", "x"]).is_err(), "only one user");
        assert!(parse(&["obo", "-c", "c", "--user-id", "x"]).is_err());
        let cli = parse(&["watch", "-c", "c", "--seconds", "5"]).unwrap();
        assert!(matches!(cli.command, Command::Watch { seconds: 5, json: false, .. }));
        assert!(parse(&["watch", "-c", "c"]).is_err() && parse(&["watch", "-c", "c", "--seconds", "0"]).is_err());
        assert!(matches!(parse(&["logout", "-c", "c", "--json"]).unwrap().command, Command::Logout { json: true, .. }));

        let cli = parse(&["completions", "zsh"]).unwrap();
        assert!(matches!(cli.command, Command::Completions { shell: clap_complete::Shell::Zsh }));
    }

    #[test]
    fn help_and_version_are_not_failures() {
        for args in [&["--help"][..], &["-h"], &["check", "--help"], &["help", "login"], &["--version"]] {
            let error = parse(args).unwrap_err();
            assert_eq!(error.exit_code(), 0, "{args:?}: {error}");
        }
    }

    #[test]
    fn mistakes_are_one_line_usage_errors_that_name_the_mistake() {
        for (args, names) in [
            (&[][..], "no command given"),
            (&["logn"], "'logn'"),
            (&["login"], "--config <FILE>"),
            (&["login", "--config"], "--config <FILE>"),
            (&["login", "--config", ""], "--config <FILE>"),
            (&["completions", "zsh", "--json"], "'--json'"),
            (&["login", "-c", "c", "--attempts", "0"], "1..=1000"),
            (&["login", "-c", "c", "--attempts", "many"], "'many'"),
            (&["completions", "cmd.exe"], "'cmd.exe'"),
        ] {
            let error = parse(args).unwrap_err();
            assert_ne!(error.exit_code(), 0, "{args:?}");
            let failure = usage_failure(&error);
            assert_eq!(failure.class, Class::Usage, "{args:?}");
            let line = failure.to_string();
            assert!(line.starts_with("usage error: "), "{line}");
            assert!(!line.starts_with("usage error: error"), "{line}");
            assert!(line.contains(names), "{args:?} should name {names}: {line}");
            assert!(line.ends_with("(see `symphony-auth --help`)"), "{line}");
            assert!(!line.contains('\n') && !line.contains("Usage:"), "{line}");
        }
    }

    #[test]
    fn the_help_lists_every_exit_code_and_prefix_and_the_trace_cap() {
        let help = Cli::command().render_long_help().to_string();
        for class in Class::ALL {
            let line = format!("    {}   `{}:`", class.code(), class.prefix());
            assert!(help.contains(&line), "{line}");
        }
        assert!(help.contains("`ureq_proto` target never logs at trace"), "{help}");
        assert!(help.contains("-v, --verbose"), "{help}");
    }
}
