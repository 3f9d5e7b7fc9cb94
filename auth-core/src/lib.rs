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
//!                 start / refresh                 session token
//!  NeedsSession ───────────────────▶ (logging in) ───────────────▶ NeedsKeyManager ──km token──┐
//!       ▲   ▲                              │                                                   ▼
//!       │   └──── login failed ────────────┘◀── session token (SKD, or KM not needed) ─────▶ Ready
//!       │                                                                                     │
//!       └────── (same, from Expired) ◀── Expired ◀── 401 reported on the current generation ──┘
//! ```
//!
//! - **Parallel login**: the session and key-manager logins are independent, so both requests are handed out at
//!   once and a driver sends them concurrently ([`Config::with_parallel_login`]).
//! - **Simplified key delivery**: a session token whose claims say `canUseSimplifiedKeyDelivery: true` makes the
//!   key-manager token unnecessary; a key-manager failure then does not fail the login ([`KeyManagerPolicy`]).
//!   When the agent has a host of its own, its version is read first (`GET /agent/v1/info`): only agents from
//!   24.12 on deliver keys that way.
//! - **Generations**: every login bumps a [`Generation`]. A 401 reported for tokens older than the current ones
//!   changes nothing, so any number of concurrent 401s cause exactly one new login
//!   ([`Authenticator::report_unauthorized`]).
//! - **Retries**: 5xx, 429, 408 and transport failures are retried with the BDK backoff plus jitter, honouring
//!   `Retry-After` ([`RetryPolicy`]); 400/401/403/407 at login are final ([`AuthError::Rejected`]).
//! - **Signing where it belongs**: [`Authenticator::poll_jwt`] hands out the login JWT to sign, so that a driver
//!   signs off its lock or its async executor, or a binding signs in an HSM; [`Authenticator::supply_jwt`] takes
//!   the result. A driver that skips this step gets the JWT signed inside [`Authenticator::poll_request`].
//! - **Secrets**: tokens, JWTs and keys print as `<redacted>` and have no `Display`; header values are marked
//!   sensitive.
//!
//! ## The driver loop
//!
//! A driver feeds inputs and drains outputs. Here the "network" is a closure that plays the pod:
//!
//! ```
//! use std::sync::Arc;
//! use symphony_auth_core::{Authenticator, Config, Endpoints, Event, HttpRequest, HttpResponse, UnixTime};
//! # #[cfg(not(feature = "rsa-signer"))] use symphony_auth_core::RingSigner as RsaSigner;
//! # #[cfg(feature = "rsa-signer")]
//! use symphony_auth_core::RsaSigner;
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
//! let now = UnixTime::from_secs(1_700_000_000);
//! machine.start();
//! let tokens = loop {
//!     // Requests polled together may be sent concurrently.
//!     while let Some(login) = machine.poll_request(now) {
//!         let response = send(login.request);
//!         machine.handle_response(login.id, &response, now)?;
//!     }
//!     match machine.poll_event() {
//!         Some(Event::Authenticated { .. }) => break machine.tokens().expect("ready"),
//!         Some(Event::LoginFailed(error)) => return Err(error.into()),
//!         Some(_) => continue,
//!         // Nothing to send and no event: a retry is waiting. Sleep until `poll_timeout`, then tell the machine.
//!         None => match machine.poll_timeout() {
//!             Some(at) => machine.handle_timeout(at),
//!             None => unreachable!("a login in progress always has a request, an event or a timeout"),
//!         },
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

#![deny(missing_docs)]

pub use http;

mod api;
#[cfg(feature = "bdk-config")]
mod bdk;
mod config;
mod error;
mod identity;
mod jwt;
mod key;
mod machine;
mod pem;
mod request;
mod response;
mod retry;
mod signer;
mod time;
mod tokens;

/// A request, as the machine builds it and a driver sends it.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response, as a driver reads it and the machine parses it.
pub type HttpResponse = http::Response<Vec<u8>>;

pub use api::{ApiVerdict, SessionInfo, SessionInfoError, api_verdict, parse_session_info};
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
pub use identity::{ClientIdentity, IdentityError, IdentityKeyFormat};
pub use jwt::{Jwt, SKD_CLAIM, SignedJwt, UnsignedJwt, decode_claims, grants_simplified_key_delivery, login_jwt};
#[cfg(feature = "ring-signer")]
pub use key::RingSigner;
#[cfg(feature = "rsa-signer")]
pub use key::RsaSigner;
pub use key::{KeyFormat, MIN_RSA_BITS};
pub use machine::{Authenticator, Event, KeyManagerOutcome, LoginRequest, RequestId, State, UnauthorizedOutcome};
pub use request::{
    LoginEndpoint, Purpose, USER_AGENT_VALUE, agent_info, certificate_login, echo, rsa_login, session_info,
};
pub use response::{MAX_RESPONSE_BODY, agent_supports_simplified_key_delivery, server_clock_offset};
pub use retry::{RetryPolicy, parse_retry_after};
pub use signer::JwtSigner;
pub use time::UnixTime;
pub use tokens::{
    AuthorizationToken, Generation, KEY_MANAGER_TOKEN_HEADER, KeyManagerToken, SESSION_TOKEN_HEADER, SessionToken,
    Target, Tokens,
};
