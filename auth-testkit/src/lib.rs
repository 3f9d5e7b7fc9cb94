//! A fake Symphony pod, key manager and agent, faithful enough to test bot authentication against.
//!
//! It accepts what the real pod accepts and rejects what it rejects:
//! RS512 login JWTs signed by the key registered for `sub` with `now < exp <= now + 300 s` on the
//! pod's own, skewable clock; certificate logins whose client-certificate CN is a registered bot,
//! with no body and no `Content-Type`; RSA logins only with `Content-Type: application/json` (415 otherwise);
//! session tokens that are JWTs (with `canUseSimplifiedKeyDelivery` when configured) and opaque key-manager
//! tokens, both checked by `/pod/v2/sessioninfo` and `/agent/v1/util/echo` (whose agent accepts a session without
//! a key-manager token only under SKD and from version 24.12 on). An optional login rate limit answers 429 with
//! `Retry-After`. Faults are scripted per [`Endpoint`].
//!
//! Three layers:
//! - [`FakePod`]: pure; [`FakePod::handle`] turns a request into a [`Reply`] at a given time.
//! - [`FakePodServer`]: the same pod on `127.0.0.1`, one listener per [`Role`] (pod, key manager, agent over
//!   HTTP or HTTPS; session auth and key auth over mutual TLS, RSA 4096 certificates by default), so that a
//!   request sent to the wrong host fails; on its own threads (callers need no async runtime); it stops on drop.
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
//!         .header("Content-Type", "application/json")
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

mod connections;
mod endpoint;
mod error;
mod fault;
mod hijack;
mod jwt;
mod peer;
mod pki;
mod pod;
mod recorder;
mod reply;
mod server;
mod user_jwt;

pub use endpoint::{Endpoint, Role};
pub use error::TestkitError;
pub use fault::{Fault, RetryAfter};
pub use peer::Peer;
pub use pki::{ClientIdentity, PkiKeys};
pub use pod::{
    Counters, DEFAULT_ACCESS_TOKEN_TTL, DEFAULT_AGENT_VERSION, DEFAULT_SESSION_TTL, FakePod, LoginRateLimit,
    MAX_JWT_LIFETIME,
};
pub use recorder::{HeaderRecorder, RecordedRequest};
pub use reply::Reply;
pub use server::{FakePodServer, FakePodServerBuilder};
pub use user_jwt::{PodCertificate, USER_JWT_ISSUER, UserJwt, UserJwtAlgorithm};
