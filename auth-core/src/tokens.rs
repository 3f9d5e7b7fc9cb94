//! The tokens a login yields, as types that cannot leak: no `Display`, no `Serialize`, a `Debug` that prints a
//! placeholder, and header values marked sensitive.

use std::fmt;

use bytes::Bytes;
use http::HeaderValue;
use http::header::HeaderName;
use zeroize::Zeroizing;

/// Name of the header that carries the session token on pod and agent calls.
pub const SESSION_TOKEN_HEADER: HeaderName = HeaderName::from_static("sessiontoken");
/// Name of the header that carries the key-manager token on agent calls.
pub const KEY_MANAGER_TOKEN_HEADER: HeaderName = HeaderName::from_static("keymanagertoken");

/// A secret string that is also a valid HTTP header value. One copy of the text exists: the header value's
/// shared buffer, which wipes itself when its last clone (a request's header included) is dropped. Attaching the
/// token to a request is a reference-count increment and never fails.
#[derive(Clone)]
pub(crate) struct SecretHeader {
    header: HeaderValue,
}

impl fmt::Debug for SecretHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl SecretHeader {
    /// `None` when `text` is empty or holds anything but visible ASCII (tokens never contain spaces, control
    /// characters or non-ASCII, and a header value must survive every HTTP stack unchanged).
    pub(crate) fn new(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        // `from_maybe_shared` keeps a `Bytes` as it is, so the header value shares this wiping buffer.
        let shared = Bytes::from_owner(Zeroizing::new(text.as_bytes().to_vec()));
        let mut header = HeaderValue::from_maybe_shared(shared).ok()?;
        header.set_sensitive(true);
        Some(Self { header })
    }

    pub(crate) fn expose(&self) -> &str {
        // Checked to be visible ASCII on construction, so `to_str` cannot fail.
        self.header.to_str().unwrap_or_default()
    }
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Its `Debug` prints a placeholder; it has no `Display` and no `Serialize`. Call
        /// [`expose_secret`](Self::expose_secret) only to hand it to something that needs the value.
        #[derive(Clone)]
        pub struct $name(pub(crate) SecretHeader);

        impl $name {
            /// The secret value. Never log it.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                self.0.expose()
            }

            /// The value as an HTTP header value, marked sensitive (its `Debug` prints `Sensitive`). It shares the
            /// token's wiping buffer: no copy is made.
            #[must_use]
            pub fn header_value(&self) -> HeaderValue {
                self.0.header.clone()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_type!(
    /// The pod's session token, sent as header `sessionToken` on pod and agent calls.
    SessionToken
);
secret_type!(
    /// The key manager's token, sent as header `keyManagerToken` on agent calls.
    KeyManagerToken
);
secret_type!(
    /// The Common JWT `authorizationToken` a recent pod returns beside the session token, without its `Bearer `
    /// prefix.
    AuthorizationToken
);

/// Which kind of service a request goes to, and so which tokens it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A pod call (`/pod/...`, `/login/idm/...`): `sessionToken` only.
    Pod,
    /// An agent call (`/agent/...`): `sessionToken`, and `keyManagerToken` when one was obtained.
    Agent,
}

/// Counts successful logins. Tokens carry the generation that issued them, so that a 401 reported for old tokens
/// can be told apart from a 401 on the current ones (see [`Authenticator::report_unauthorized`]).
///
/// [`Authenticator::report_unauthorized`]: crate::Authenticator::report_unauthorized
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Generation(pub(crate) u64);

impl Generation {
    /// The number: 1 for the first successful login, then one more for each.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// A generation from its number, as a binding that stored [`get`](Self::get) hands it back.
    #[must_use]
    pub const fn from_u64(value: u64) -> Self {
        Self(value)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The result of a successful login: what a bot needs to call pod and agent APIs.
///
/// # Secrets in memory
///
/// Each token lives in one buffer, shared by every [`HeaderValue`] made from it (a reference count, not a copy),
/// and wiped when the last of them is dropped. The same goes for what else the crate holds: the login JWT
/// ([`Jwt`](crate::Jwt)), decoded key DER and PEM text unescaped from `\n`, the YAML tree and `content` of a BDK
/// configuration (`Source::Content`), the proxy URL with its password, and the buffers the drivers read
/// answers into. Keys are wiped by the `rsa` crate (its `PrivateKey` zeroizes on drop).
///
/// Copies that cannot be wiped, and why:
/// - what an HTTP stack copies a header or a body into to send it, and what it reads an answer into (ureq's and
///   hyper's connection buffers, hyper's `Bytes` chunks): they are theirs, and offer no hook to wipe them;
/// - a request body once a driver has handed it to its client (the async driver gives reqwest a buffer that wipes
///   itself when reqwest and hyper drop it; the blocking driver wipes its own once ureq has sent it), and the
///   response body a driver hands to the machine, which is the caller's to drop;
/// - the scratch buffer in which `serde_json` decodes a token written with escapes (`\/`, `\u...`), and what the
///   YAML parser (`unsafe-libyaml`) buffers while reading a configuration;
/// - the key pair of `RingSigner`: `ring` does not wipe its keys;
/// - an `http::HeaderValue` made by other code from [`expose_secret`](SessionToken::expose_secret) rather than
///   taken from [`header_value`](SessionToken::header_value): it has its own copy, and `http` has no zeroize.
///
/// Zeroizing is the second line of defence; the first is that no token, JWT, key or password is ever printed:
/// these types have no `Display` and a `Debug` that prints a placeholder, header values are marked sensitive, and
/// no error carries a secret (see `tests/canaries.rs`).
#[derive(Clone, Debug)]
pub struct Tokens {
    pub(crate) generation: Generation,
    pub(crate) session: SessionToken,
    pub(crate) key_manager: Option<KeyManagerToken>,
    pub(crate) authorization: Option<AuthorizationToken>,
    pub(crate) simplified_key_delivery: bool,
}

impl Tokens {
    /// The login that issued these tokens; report it with a 401 (see [`crate::Authenticator::report_unauthorized`]).
    #[must_use]
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The session token.
    #[must_use]
    pub fn session(&self) -> &SessionToken {
        &self.session
    }

    /// The key-manager token; `None` when the login skipped the key manager (simplified key delivery, or the
    /// key-manager policy `Never`).
    #[must_use]
    pub fn key_manager(&self) -> Option<&KeyManagerToken> {
        self.key_manager.as_ref()
    }

    /// The Common JWT returned beside the session token by pods that support it.
    #[must_use]
    pub fn authorization(&self) -> Option<&AuthorizationToken> {
        self.authorization.as_ref()
    }

    /// Whether the session token grants simplified key delivery (claim `canUseSimplifiedKeyDelivery: true`).
    #[must_use]
    pub fn simplified_key_delivery(&self) -> bool {
        self.simplified_key_delivery
    }

    /// Adds the headers a `target` call needs: `sessionToken`, plus `keyManagerToken` on agent calls when there is
    /// one. Existing values of those headers are replaced. The values are marked sensitive.
    pub fn authorize<B>(&self, request: &mut http::Request<B>, target: Target) {
        let headers = request.headers_mut();
        headers.insert(SESSION_TOKEN_HEADER, self.session.header_value());
        headers.remove(KEY_MANAGER_TOKEN_HEADER);
        if let (Target::Agent, Some(km)) = (target, &self.key_manager) {
            headers.insert(KEY_MANAGER_TOKEN_HEADER, km.header_value());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(km: Option<&str>) -> Tokens {
        Tokens {
            generation: Generation(3),
            session: SessionToken(SecretHeader::new("s3cr3t-session").unwrap()),
            key_manager: km.map(|k| KeyManagerToken(SecretHeader::new(k).unwrap())),
            authorization: None,
            simplified_key_delivery: km.is_none(),
        }
    }

    #[test]
    fn debug_never_shows_a_token() {
        let t = tokens(Some("s3cr3t-km"));
        let mut request = http::Request::new(Vec::<u8>::new());
        t.authorize(&mut request, Target::Agent);
        let printed = format!("{t:?} {request:?} {:?}", t.session().header_value());
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("SessionToken(<redacted>)"), "{printed}");
    }

    #[test]
    fn pod_calls_carry_the_session_token_only() {
        let t = tokens(Some("km"));
        let mut request = http::Request::new(());
        request.headers_mut().insert(KEY_MANAGER_TOKEN_HEADER, HeaderValue::from_static("stale"));
        t.authorize(&mut request, Target::Pod);
        assert_eq!(request.headers()["sessionToken"], "s3cr3t-session");
        assert!(request.headers().get("keyManagerToken").is_none());
        assert!(request.headers()["sessionToken"].is_sensitive());
    }

    #[test]
    fn agent_calls_carry_both_tokens_or_only_the_session_under_skd() {
        let mut request = http::Request::new(());
        tokens(Some("km")).authorize(&mut request, Target::Agent);
        assert_eq!(request.headers()["keyManagerToken"], "km");
        tokens(None).authorize(&mut request, Target::Agent);
        assert!(request.headers().get("keyManagerToken").is_none());
        assert_eq!(request.headers()["sessionToken"], "s3cr3t-session");
    }

    #[test]
    fn header_values_share_the_one_wiping_buffer() {
        let t = tokens(Some("km"));
        let header = t.session().header_value();
        assert_eq!(header.as_bytes().as_ptr(), t.session().expose_secret().as_ptr());
        let mut request = http::Request::new(());
        t.authorize(&mut request, Target::Pod);
        assert_eq!(request.headers()["sessionToken"].as_bytes().as_ptr(), header.as_bytes().as_ptr());
    }

    #[test]
    fn rejects_values_that_cannot_be_headers() {
        assert!(SecretHeader::new("").is_none());
        assert!(SecretHeader::new("a\nb").is_none());
        assert!(SecretHeader::new("é").is_none());
    }
}
