//! # auth-core: Symphony bot authentication as a pure state machine
//!
//! A Symphony bot needs a **session token** from the pod and, for agent calls, a **key-manager token**. It gets
//! them by logging in with an RSA-signed JWT (`/login/pubkey/authenticate`, `/relay/pubkey/authenticate`) or a
//! TLS client certificate (`/sessionauth/v1/authenticate`, `/keyauth/v1/authenticate`), uses them until a call
//! answers 401, then logs in again.
//!
//! This crate makes every decision of that protocol and performs none of its I/O, in the tradition of h11,
//! quinn-proto and rustls: it builds [`http::Request`] values, reads [`http::Response`] values, and is told the
//! time. No sockets, files, clocks, threads or async runtime, so the same logic serves the blocking driver
//! (`auth-blocking`), the async driver (`auth-async`) and bindings in other languages.
//!
//! ```text
//!                   poll_output / refresh                      session token
//!  NeedsSession ─────────────────────────▶ NeedsSession ───────────────────────▶ NeedsKeyManager
//!  {logging_in: false}                     {logging_in: true}                            │
//!       ▲    ▲                                 │    │ session token, key manager       │ key-manager token
//!       │    └─── login failed (cool-down) ────┘    │ not needed (SKD + agent ≥ 24.12,   │ (or, under SKD, the
//!       │                                           │ policy Never)                      │  agent's version)
//!       │                                           ▼                                    ▼
//!       │   Expired {logging_in} ◀── 401 on the current generation ── Ready {generation, refreshing}
//!       └────────── (as NeedsSession, from Expired) ───┘                 ▲   │ refresh: a login under way,
//!                                                                        └───┘ the old tokens still in use
//! ```
//!
//! - **One output**: [`Authenticator::poll_output`] always says what to do: [`Output::Sign`] a JWT,
//!   [`Output::Send`] requests (concurrently when several), [`Output::AwaitAnswers`], [`Output::WaitUntil`] an
//!   instant, or [`Output::Done`] with the tokens or the error. Events ([`Event`]) are for logs only.
//! - **Single flight**: [`Flight`] shares one machine between many callers: one leads each login, the others
//!   follow and get the same tokens or the same error; a leader that goes away (panic, cancelled future) leaves
//!   its login, backoff included, to a follower. A driver adds only a lock and a way to wait and wake.
//! - **The API call**: [`ApiCall`] attaches the tokens, turns a 401 into one shared re-login and one replay (a
//!   second 401 is an error, not a loop), and, when [`ApiRetry`] is configured, retries 5xx, 429 and transport
//!   failures of idempotent calls with backoff and `Retry-After`.
//! - **Safe under failure**: after a failed login, callers get the same error without a new request for a
//!   [`CoolDown`] that grows with each failure in a row; [`Authenticator::refresh`] overrides it. Retries,
//!   `Retry-After` and cool-downs are capped, so every wait has a bound; a wall clock set back shortens no wait
//!   and lengthens none.
//! - **Parallel login**: the session and key-manager logins are independent, so both requests are handed out at
//!   once ([`Config::with_parallel_login`]). **Simplified key delivery**: a session token whose claims say
//!   `canUseSimplifiedKeyDelivery: true` makes the key-manager token unnecessary; the login then completes without
//!   waiting for the key manager ([`KeyManagerPolicy`]). When the agent has a host of its own, its version is read
//!   first (`GET /agent/v1/info`): only agents from 24.12 on deliver keys that way.
//! - **Generations**: every login bumps a [`Generation`]. A 401 reported for tokens older than the current ones
//!   changes nothing, so any number of concurrent 401s cause exactly one new login.
//! - **Retries**: login 5xx, 429, 408 and transport failures are retried with the BDK backoff plus seeded jitter,
//!   honouring `Retry-After` ([`RetryPolicy`]); 400/401/403/407 at login are final ([`AuthError::Rejected`]).
//! - **Secrets**: tokens, JWTs and keys print as `<redacted>` and have no `Display`; header values are marked
//!   sensitive.
//! - **Purity**: no clock, sleep, file, socket or thread (a `clippy.toml` forbids them). The signers draw
//!   randomness from the operating system for RSA blinding (`rsa`) or use none (`ring`'s RS512 is deterministic
//!   and unblinded by design); the JWT they produce is the same.
//!
//! ## The driver loop
//!
//! A driver feeds inputs and acts on the one output. Here the "network" is a closure that plays the pod:
//!
//! ```
//! use std::sync::Arc;
//! use symphony_auth_core::{Authenticator, Config, Endpoints, HttpRequest, HttpResponse, Output, RsaSigner, UnixTime};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem"); // a test-only key
//! let signer = Arc::new(RsaSigner::from_pem(key)?);
//! let config = Config::rsa(Endpoints::single("https://acme.symphony.com")?, "my.bot", signer)?;
//! let mut machine = Authenticator::new(config, 42);
//!
//! let send = |request: HttpRequest| -> HttpResponse {
//!     let token = if request.uri().path().starts_with("/login") { "session-token" } else { "km-token" };
//!     let body = format!(r#"{{"token":"{token}"}}"#);
//!     http::Response::builder().status(200).body(body.into_bytes()).unwrap()
//! };
//!
//! let mut now = UnixTime::from_secs(1_700_000_000);
//! let mut answers = std::collections::VecDeque::new();
//! let tokens = loop {
//!     match machine.poll_output(now) {
//!         // Signing takes milliseconds: a driver does it with its lock released.
//!         Output::Sign(jwt) => machine.supply_jwt(jwt.sign(), now),
//!         // Requests handed out together are sent concurrently; a real driver starts them here...
//!         Output::Send(batch) => answers.extend(batch.into_iter().map(|login| (login.id, send(login.request)))),
//!         // ...and reports each answer as it comes, polling after each.
//!         Output::AwaitAnswers => {
//!             let (id, response) = answers.pop_front().ok_or("the machine awaits an answer never sent")?;
//!             machine.handle_response(id, &response, now)?;
//!         }
//!         // A retry's backoff: a driver sleeps until then.
//!         Output::WaitUntil(at) => now = at,
//!         Output::Done(outcome) => break outcome?,
//!     }
//! };
//! assert_eq!(tokens.generation().get(), 1);
//! assert_eq!(tokens.session().expose_secret(), "session-token");
//!
//! // Attach them to an API call; on a 401, report the generation used.
//! let mut call = symphony_auth_core::session_info(machine.config().endpoints());
//! tokens.authorize(&mut call, symphony_auth_core::Target::Pod);
//! assert!(call.headers()["sessionToken"].is_sensitive());
//! # Ok(())
//! # }
//! ```
//!
//! The drivers run the same loop through a [`Flight`], with a lock, a condition variable or `Notify`, and their
//! HTTP client.

#![deny(missing_docs)]

pub use http;

mod api;
#[cfg(feature = "bdk-config")]
mod bdk;
mod config;
#[cfg(feature = "driver")]
pub mod driver;
mod error;
mod flight;
mod identity;
mod jwt;
mod key;
mod machine;
mod pem;
mod request;
mod response;
mod retry;
mod session_info;
mod signer;
mod time;
mod tokens;

/// A request, as the machine builds it and a driver sends it.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response, as a driver reads it and the machine parses it.
pub type HttpResponse = http::Response<Vec<u8>>;

pub use api::{ApiCall, ApiError, ApiRetry, ApiStep, Idempotent};
#[cfg(feature = "bdk-config")]
pub use bdk::{
    BdkConfigError, BotSettings, ConfigFileError, CredentialSource, LoadedSettings, ProxySettings, Source,
    parse_bdk_config,
};
pub use config::{
    BaseUrl, Config, DEFAULT_JWT_LIFETIME, Endpoints, KeyManagerPolicy, LoginMethod, MAX_JWT_LIFETIME, Username,
};
pub use error::{
    AuthError, ConfigError, FailureCause, KeyError, ProtocolProblem, SignError, TransportFailure, TransportKind,
    UsageError,
};
pub use flight::{Caller, Flight, Step, Want};
pub use identity::{ClientIdentity, IdentityError, IdentityKeyFormat};
pub use jwt::{Jwt, SKD_CLAIM, SignedJwt, UnsignedJwt, decode_claims, grants_simplified_key_delivery, login_jwt};
#[cfg(feature = "ring-signer")]
pub use key::RingSigner;
#[cfg(feature = "rsa-signer")]
pub use key::RsaSigner;
pub use key::{KeyFormat, MIN_RSA_BITS};
pub use machine::{
    Authenticator, Event, KeyManagerOutcome, LoginRequest, Output, RequestId, State, UnauthorizedOutcome,
};
pub use request::{
    LoginEndpoint, Purpose, USER_AGENT_VALUE, agent_info, certificate_login, echo, rsa_login, session_info,
};
pub use response::{MAX_RESPONSE_BODY, agent_supports_simplified_key_delivery, server_clock_offset};
pub use retry::{CoolDown, RetryPolicy, parse_retry_after};
pub use session_info::{SessionInfo, SessionInfoError, parse_session_info};
pub use signer::JwtSigner;
pub use time::UnixTime;
pub use tokens::{
    AuthorizationToken, Generation, KEY_MANAGER_TOKEN_HEADER, KeyManagerToken, SESSION_TOKEN_HEADER, SessionToken,
    Target, Tokens,
};

#[cfg(test)]
mod tests;
