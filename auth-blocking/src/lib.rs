//! # auth-blocking: Symphony bot authentication for blocking code
//!
//! A thin driver over [ureq](https://docs.rs/ureq) 3 for the sans-IO machine in [`symphony_auth_core`]. The core makes
//! every protocol decision (which login, what a 401 means, retries and backoff, simplified key delivery); this
//! crate moves the bytes, sends the session and key-manager logins concurrently, sleeps until the next retry, and
//! makes every thread that needs tokens share one login.
//!
//! - [`Bot::tokens`] logs in on first use; [`Bot::refresh`] forces a new login; concurrent callers share one.
//! - [`Bot::send`] attaches the tokens to an API call and, on a 401, waits for the one shared re-login and replays
//!   the call once.
//! - In your own ureq agent instead: [`SymphonyAuth`], a ureq middleware over the core's API-call step; only
//!   requests to the bot's services get tokens.
//! - One HTTP client per bot: rustls with the ring provider (no process-wide state), the Mozilla roots, the
//!   [operating system's roots](BotBuilder::platform_roots) if asked, plus any
//!   [extra roots](BotBuilder::extra_root_certificates_pem), the [client certificate](BotBuilder::client_identity)
//!   for mutual TLS, timeouts, an explicit [proxy](BotBuilder::proxy) only, no redirects, capped response bodies.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use symphony_auth_blocking::Bot;
//! use symphony_auth_blocking::symphony_auth_core::{self, Config, Endpoints, RsaSigner};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = std::fs::read("/etc/my-bot/private-key.pem")?;
//! let signer = Arc::new(RsaSigner::from_pem(&key)?);
//! let config = Config::rsa(Endpoints::single("https://acme.symphony.com")?, "my.bot", signer)?;
//! let bot = Bot::builder(config).connect_timeout(Duration::from_secs(10)).build()?;
//!
//! let me = bot.session_info()?; // logs in first
//! println!("logged in as {} (user id {})", me.username, me.id);
//! let echo = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "hello"))?; // both tokens attached
//! assert_eq!(echo.status(), 200);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use symphony_auth_core;

mod bot;
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
mod extension_app;
mod gate;
mod middleware;
mod tls;
mod transport;

pub use bot::{Blocking, Bot, BotBuilder};
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
pub use extension_app::ExtensionAppClient;
pub use middleware::SymphonyAuth;
pub use symphony_auth_core::driver::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BODY, DEFAULT_TIMEOUT};

/// Why building a bot, logging in or an API call failed: the same type in every driver. Messages never contain a
/// token, a JWT or key material.
pub type Error = symphony_auth_core::driver::BotError;
