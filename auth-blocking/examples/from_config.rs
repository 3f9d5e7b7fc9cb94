//! Logs a bot in from a BDK configuration file and prints its user id.
//!
//! ```text
//! cargo run -p symphony-auth-blocking --example from_config -- config.yaml
//! ```

use std::process::ExitCode;

use symphony_auth_blocking::Bot;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: from_config <config.yaml>");
        return ExitCode::from(2);
    };
    match Bot::from_config_file(&path).and_then(|bot| bot.session_info()) {
        Ok(me) => {
            println!("{}", me.id);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
