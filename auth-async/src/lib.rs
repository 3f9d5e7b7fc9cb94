//! # auth-async: Symphony bot authentication for tokio applications
//!
//! A thin async driver over [`symphony_auth_core`], the sans-IO machine that makes every protocol decision (which login
//! next, what a 401 means, when to retry, whether the key manager is needed). This crate only moves bytes with
//! one [`reqwest`] client per bot, sends the two logins of a parallel login concurrently, sleeps until retries are
//! due, and lets any number of tasks share one login.
//!
//! - [`Bot::tokens`] logs in on first use; concurrent callers share one login (single flight) and get the same
//!   tokens or the same error. If the task driving a login is cancelled, a waiting task takes it over.
//! - [`Bot::send`] attaches the tokens to an API call; on a 401 it reports the tokens' generation, waits for the
//!   shared re-login and replays once, so a storm of 401s costs one login.
//! - In your own client instead of [`Bot::send`]: [`SymphonyAuth`] for reqwest-middleware (feature
//!   `reqwest-middleware`) and [`SymphonyAuthLayer`] for tower stacks (feature `tower`), both over the core's
//!   API-call step; only requests to the bot's services get tokens.
//! - TLS is rustls with the ring provider, configured here: no process-global crypto provider is needed or
//!   installed. Extra root certificates, and on request the [operating system's](BotBuilder::platform_roots), are
//!   added to the Mozilla set; no redirects are followed; no proxy is read
//!   from the environment; response bodies are capped.
//!
//! ```no_run
//! use std::sync::Arc;
//! use symphony_auth_async::Bot;
//! use symphony_auth_core::{Config, Endpoints, RsaSigner};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = std::fs::read("/etc/bot/private-key.pem")?;
//! let signer = Arc::new(RsaSigner::from_pem(&key)?);
//! let config = Config::rsa(Endpoints::single("https://acme.symphony.com")?, "my.bot", signer)?;
//! let bot = Bot::builder(config).build()?;
//!
//! let me = bot.session_info().await?; // logs in, then GET /pod/v2/sessioninfo
//! println!("logged in as {} ({})", me.username, me.id);
//!
//! let echo = symphony_auth_core::echo(bot.config().endpoints(), "hello");
//! let response = bot.send(echo).await?; // both tokens attached; a 401 is recovered once
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```

pub use symphony_auth_core;

mod bot;
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
mod extension_app;
mod gate;
#[cfg(any(feature = "reqwest-middleware", feature = "tower"))]
mod middleware;
mod transport;

pub use bot::{Async, Bot, BotBuilder};
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
pub use extension_app::ExtensionAppClient;
#[cfg(feature = "reqwest-middleware")]
pub use middleware::for_reqwest::SymphonyAuth;
#[cfg(feature = "tower")]
pub use middleware::for_tower::{BoxError, ReplayBody, SymphonyAuthLayer, SymphonyAuthService};
pub use symphony_auth_core::driver::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BODY, DEFAULT_TIMEOUT};

/// Why building a bot, logging in or an API call failed: the same type in every driver. Messages never contain a
/// token, a JWT or key material.
pub type Error = symphony_auth_core::driver::BotError;
