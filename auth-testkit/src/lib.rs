//! A fake Symphony pod, key manager and agent, faithful enough to test bot authentication against.
//!
//! It accepts what the real pod accepts and rejects what it rejects:
//! RS512 login JWTs signed by the key registered for `sub` with `now < exp <= now + 300 s` on the
//! pod's own, skewable clock; certificate logins whose client-certificate CN is a registered bot,
//! with no body and no `Content-Type`; session tokens that are RS512 JWTs (with
//! `canUseSimplifiedKeyDelivery` when configured) and opaque key-manager tokens, both checked by
//! `/pod/v2/sessioninfo` and `/agent/v1/util/echo`. Faults are scripted per [`Endpoint`].
//!
//! Three layers:
//! - [`FakePod`]: pure; [`FakePod::handle`] turns a request into a [`Reply`] at a given time.
//! - [`FakePodServer`]: the same pod on `127.0.0.1` over HTTP, HTTPS and mutual TLS, on its own
//!   thread (callers need no async runtime); it stops on drop.
//! - the `fake-pod` binary, for other languages' test suites.
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use symphony_auth_testkit::{Endpoint, FakePod, Fault, Peer};
//!
//! let mut pod = FakePod::new();
//! pod.add_rsa_bot("bot", include_str!("../../fixtures/keys/bot-2048.pub.pem"))?;
//! pod.inject(Endpoint::SessionLogin, 1, Fault::status_retry_after(503, 2));
//!
//! let login = || {
//!     http::Request::post("/login/pubkey/authenticate")
//!         .body(br#"{"token":"not.a.jwt"}"#.to_vec())
//!         .unwrap()
//! };
//! let now = SystemTime::now();
//! let reply = pod.handle(now, login(), &Peer::in_process());
//! assert_eq!(reply.status(), Some(503));
//! let reply = pod.handle(now, login(), &Peer::in_process());
//! assert_eq!(reply.status(), Some(401)); // the script is used up; a bad JWT is refused
//! assert_eq!(pod.counters().requests(Endpoint::SessionLogin), 2);
//! # Ok::<(), symphony_auth_testkit::TestkitError>(())
//! ```

mod endpoint;
mod error;
mod fault;
mod hijack;
mod jwt;
mod peer;
mod pki;
mod pod;
mod reply;
mod server;

pub use endpoint::Endpoint;
pub use error::TestkitError;
pub use fault::Fault;
pub use peer::{Listener, Peer};
pub use pki::ClientIdentity;
pub use pod::{Counters, DEFAULT_AGENT_VERSION, DEFAULT_SESSION_TTL, FakePod, MAX_JWT_LIFETIME};
pub use reply::Reply;
pub use server::FakePodServer;
