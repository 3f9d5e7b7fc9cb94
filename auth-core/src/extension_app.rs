//! Extension apps (Circle of Trust): the app backend's side of the protocol, pure.
//!
//! ```text
//! backend                                   pod / session-auth host
//!   app token (random, from the caller) ──▶ E1 POST /login/v1/pubkey/app/authenticate/extensionApp  (RSA JWT sub=appId)
//!                                           E2 POST /sessionauth/v1/authenticate/extensionApp       (mutual TLS)
//!   ◀── {"appId","appToken","symphonyToken","expireAt"} ── store it (AppTokenStore), give appToken to the frontend
//!   frontend hands back (appToken, symphonyToken) ──▶ AppTokenStore::check (local: no endpoint exists for it)
//!   pod certificate ──────────────────────▶ E3 GET /pod/v1/podcert | E4 GET /sessionauth/v1/app/pod/certificate
//!   frontend hands over a user JWT ───────▶ PodCertificate::verify_user_jwt (signature, exp, aud, sub, user)
//! ```
//!
//! The app's identity (its id and its key or certificate) is given as values; randomness and time come from the
//! caller, as everywhere in this crate.

mod backend;
mod store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use serde::Deserialize;

use crate::HttpRequest;
use crate::HttpResponse;
use crate::config::{DEFAULT_JWT_LIFETIME, Endpoints};
use crate::error::{ProtocolProblem, SignError};
use crate::jwt::login_jwt;
use crate::request::USER_AGENT_VALUE;
use crate::response::MAX_RESPONSE_BODY;
use crate::signer::JwtSigner;
use crate::time::UnixTime;
use crate::tokens::SecretHeader;

pub use backend::{AppBackend, AppBackendError, DEFAULT_APP_TOKEN_STORE_CAPACITY};
pub use store::{AppTokenStore, PairCheckError};

/// E1: the RSA extension-app login, on the pod.
pub const EXTENSION_APP_RSA_PATH: &str = "/login/v1/pubkey/app/authenticate/extensionApp";
/// E2: the certificate extension-app login, on the session-auth host.
pub const EXTENSION_APP_CERTIFICATE_PATH: &str = "/sessionauth/v1/authenticate/extensionApp";
/// E3: the pod certificate, on the pod.
pub const POD_CERTIFICATE_PATH: &str = "/pod/v1/podcert";
/// E4: the pod certificate, on the session-auth host over mutual TLS.
pub const APP_POD_CERTIFICATE_PATH: &str = "/sessionauth/v1/app/pod/certificate";

/// The least number of random bytes an [`AppToken`] is made from (the BDK-Java starter uses 64).
pub const MIN_APP_TOKEN_RANDOM_BYTES: usize = 16;

/// Why an extension-app identity or token could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppIdentityError {
    /// The app id is empty, or holds whitespace, control or non-ASCII characters.
    #[error("the app id must be non-empty visible ASCII")]
    InvalidAppId,
    /// An app token made from fewer random bytes than [`MIN_APP_TOKEN_RANDOM_BYTES`].
    #[error("an app token needs at least {MIN_APP_TOKEN_RANDOM_BYTES} random bytes, got {0}")]
    TooFewRandomBytes(usize),
    /// An app token that is empty or not visible ASCII.
    #[error("an app token must be non-empty visible ASCII")]
    InvalidAppToken,
}

/// An extension app's id, as registered on the pod (the `sub` of its JWTs, the `aud` of user JWTs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AppId(String);

impl AppId {
    /// Checks `id`: non-empty visible ASCII.
    ///
    /// # Errors
    /// [`AppIdentityError::InvalidAppId`].
    pub fn new(id: &str) -> Result<Self, AppIdentityError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppIdentityError::InvalidAppId);
        }
        Ok(Self(id.to_owned()))
    }

    /// The id.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! app_secret {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Its `Debug` prints a placeholder; it has no `Display`.
        #[derive(Clone)]
        pub struct $name(SecretHeader);

        impl $name {
            /// The secret value. Never log it.
            #[must_use]
            pub fn expose_secret(&self) -> &str {
                self.0.expose()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

app_secret!(
    /// The token an app backend makes up and hands to its frontend; the pod pairs it with a
    /// [`SymphonyToken`].
    AppToken
);
app_secret!(
    /// The token the pod pairs with an [`AppToken`]; the Symphony client hands it to the app's frontend.
    SymphonyToken
);

impl AppToken {
    /// A fresh app token: `random` (from the operating system's generator, at least
    /// [`MIN_APP_TOKEN_RANDOM_BYTES`]) hex-encoded, as the BDK-Java starter does.
    ///
    /// # Errors
    /// [`AppIdentityError::TooFewRandomBytes`].
    pub fn from_random_bytes(random: &[u8]) -> Result<Self, AppIdentityError> {
        if random.len() < MIN_APP_TOKEN_RANDOM_BYTES {
            return Err(AppIdentityError::TooFewRandomBytes(random.len()));
        }
        let hex = zeroize::Zeroizing::new(random.iter().map(|b| format!("{b:02x}")).collect::<String>());
        Self::new(&hex)
    }

    /// An app token given as text (one the frontend handed back, say).
    ///
    /// # Errors
    /// [`AppIdentityError::InvalidAppToken`] when it is empty or not visible ASCII.
    pub fn new(text: &str) -> Result<Self, AppIdentityError> {
        SecretHeader::new(text).map(Self).ok_or(AppIdentityError::InvalidAppToken)
    }
}

impl SymphonyToken {
    /// A symphony token given as text (one the frontend handed back, say); `None` when empty or not visible ASCII.
    #[must_use]
    pub fn new(text: &str) -> Option<Self> {
        SecretHeader::new(text).map(Self)
    }
}

/// How the app authenticates.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AppCredential {
    /// E1 with a JWT whose `sub` is the app id, signed with the app's key; the pod certificate through E3.
    Rsa(Arc<dyn JwtSigner>),
    /// E2 over mutual TLS with the app's certificate (the driver's client identity); the pod certificate through
    /// E4.
    Certificate,
}

/// An extension app: its id, its credential and where the pod is.
#[derive(Clone, Debug)]
pub struct ExtensionApp {
    app_id: AppId,
    credential: AppCredential,
    endpoints: Endpoints,
    jwt_lifetime: Duration,
}

impl ExtensionApp {
    /// An app `app_id` on `endpoints`, authenticating with `credential`.
    #[must_use]
    pub fn new(endpoints: Endpoints, app_id: AppId, credential: AppCredential) -> Self {
        Self { app_id, credential, endpoints, jwt_lifetime: DEFAULT_JWT_LIFETIME }
    }

    /// The app's id.
    #[must_use]
    pub fn app_id(&self) -> &AppId {
        &self.app_id
    }

    /// Where the pod is.
    #[must_use]
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Whether the app's calls need the driver's mutual-TLS client (certificate apps).
    #[must_use]
    pub fn uses_client_certificate(&self) -> bool {
        matches!(self.credential, AppCredential::Certificate)
    }

    /// E1 or E2 for `app_token`. An RSA app signs its JWT here (`sub` = app id, `exp` = `now` + 240 s).
    ///
    /// # Errors
    /// The signer's error.
    pub fn authenticate_request(&self, app_token: &AppToken, now: UnixTime) -> Result<HttpRequest, SignError> {
        // Built by hand, like the login bodies, so that no JSON tree keeps a copy of the JWT; both values are
        // visible ASCII, and the escaping below covers the two characters JSON needs escaped.
        let mut body = zeroize::Zeroizing::new(Vec::new());
        body.extend_from_slice(br#"{"appToken":""#);
        push_json_text(&mut body, app_token.expose_secret());
        let uri = match &self.credential {
            AppCredential::Rsa(signer) => {
                let jwt = login_jwt(self.app_id.as_str(), now, self.jwt_lifetime, signer.as_ref())?;
                body.extend_from_slice(br#"","authToken":""#);
                push_json_text(&mut body, jwt.expose_secret());
                self.endpoints.pod.join(EXTENSION_APP_RSA_PATH)
            }
            AppCredential::Certificate => self.endpoints.session_auth.join(EXTENSION_APP_CERTIFICATE_PATH),
        };
        body.extend_from_slice(br#""}"#);
        let builder =
            base_request(Method::POST, uri).header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(finish(builder, std::mem::take(&mut *body)))
    }

    /// Reads the answer to [`authenticate_request`](Self::authenticate_request): the pod must echo the app id and
    /// the app token that were sent.
    ///
    /// # Errors
    /// [`ExtensionAppError`] naming what was wrong; never a token.
    pub fn handle_authenticate(
        &self,
        app_token: &AppToken,
        response: &HttpResponse,
    ) -> Result<ExtensionAppTokens, ExtensionAppError> {
        let tokens = parse_extension_app_tokens(response)?;
        if tokens.app_id != self.app_id.as_str() {
            return Err(ExtensionAppError::AppIdMismatch { expected: self.app_id.to_string() });
        }
        if !constant_time_eq(tokens.app_token.expose_secret(), app_token.expose_secret()) {
            return Err(ExtensionAppError::AppTokenMismatch);
        }
        Ok(tokens)
    }

    /// E3 (RSA apps) or E4 (certificate apps): the pod certificate that signs user JWTs.
    #[must_use]
    pub fn pod_certificate_request(&self) -> HttpRequest {
        let uri = match self.credential {
            AppCredential::Rsa(_) => self.endpoints.pod.join(POD_CERTIFICATE_PATH),
            AppCredential::Certificate => self.endpoints.session_auth.join(APP_POD_CERTIFICATE_PATH),
        };
        finish(base_request(Method::GET, uri), Vec::new())
    }
}

/// What the pod answers to E1 or E2.
#[derive(Clone, Debug)]
pub struct ExtensionAppTokens {
    app_id: String,
    app_token: AppToken,
    symphony_token: SymphonyToken,
    expire_at: UnixTime,
}

impl ExtensionAppTokens {
    /// The app id the pod names.
    #[must_use]
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The app token, as the pod echoes it.
    #[must_use]
    pub fn app_token(&self) -> &AppToken {
        &self.app_token
    }

    /// The symphony token paired with it.
    #[must_use]
    pub fn symphony_token(&self) -> &SymphonyToken {
        &self.symphony_token
    }

    /// When the pair expires (`expireAt`, milliseconds since the epoch on the wire).
    #[must_use]
    pub fn expire_at(&self) -> UnixTime {
        self.expire_at
    }
}

/// Why an extension-app answer (E1–E4) was unusable. No message carries a token or a certificate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionAppError {
    /// The pod refused the app (400, 401, 403): app not registered, wrong key or certificate, app disabled.
    #[error("the pod refused the extension app: HTTP {status}")]
    Rejected {
        /// The status.
        status: u16,
    },
    /// Any other non-2xx status.
    #[error("the extension-app call failed: HTTP {status}")]
    Status {
        /// The status.
        status: u16,
    },
    /// A 2xx answer that could not be used.
    #[error("unusable extension-app answer: {problem}")]
    Protocol {
        /// What was wrong.
        problem: ProtocolProblem,
        /// Which field, when one was missing or wrong.
        field: Option<&'static str>,
    },
    /// The pod answered for another app.
    #[error("the pod's answer names another app than {expected:?}")]
    AppIdMismatch {
        /// The app id that was sent.
        expected: String,
    },
    /// The pod echoed another app token than the one sent.
    #[error("the pod's answer echoes another app token than the one sent")]
    AppTokenMismatch,
    /// The pod certificate is not a PEM X.509 certificate with an RSA key.
    #[error("the pod certificate is unusable: {0}")]
    Certificate(&'static str),
}

/// Reads `{"appId", "appToken", "symphonyToken", "expireAt"}` (`expireAt` in milliseconds; a number, or a string
/// of digits as some gateways send).
///
/// # Errors
/// [`ExtensionAppError`].
pub fn parse_extension_app_tokens(response: &HttpResponse) -> Result<ExtensionAppTokens, ExtensionAppError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire {
        app_id: Option<String>,
        app_token: Option<String>,
        symphony_token: Option<String>,
        #[serde(default, deserialize_with = "number_or_digits")]
        expire_at: Option<u64>,
    }
    let body = success_body(response)?;
    let wire: Wire = serde_json::from_slice(body).map_err(|_| protocol(ProtocolProblem::NotJson, None))?;
    let app_id = wire.app_id.ok_or(protocol(ProtocolProblem::MissingToken, Some("appId")))?;
    // The decoded strings are wiped once copied into the tokens' own wiping buffers.
    let token = |value: Option<String>, field| {
        let value = zeroize::Zeroizing::new(value.ok_or(protocol(ProtocolProblem::MissingToken, Some(field)))?);
        if value.is_empty() {
            return Err(protocol(ProtocolProblem::EmptyToken, Some(field)));
        }
        SecretHeader::new(&value).ok_or(protocol(ProtocolProblem::TokenNotAHeaderValue, Some(field)))
    };
    let app_token = AppToken(token(wire.app_token, "appToken")?);
    let symphony_token = SymphonyToken(token(wire.symphony_token, "symphonyToken")?);
    let expire_at = wire.expire_at.ok_or(protocol(ProtocolProblem::MissingToken, Some("expireAt")))?;
    Ok(ExtensionAppTokens { app_id, app_token, symphony_token, expire_at: UnixTime::from_millis(expire_at) })
}

/// Reads `{"certificate": "<PEM>"}` (E3, E4).
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
///
/// # Errors
/// [`ExtensionAppError`]; [`ExtensionAppError::Certificate`] when the PEM is not an X.509 certificate with an
/// RSA key.
pub fn parse_pod_certificate(response: &HttpResponse) -> Result<crate::PodCertificate, ExtensionAppError> {
    #[derive(Deserialize)]
    struct Wire {
        certificate: Option<String>,
    }
    let body = success_body(response)?;
    let wire: Wire = serde_json::from_slice(body).map_err(|_| protocol(ProtocolProblem::NotJson, None))?;
    let pem = wire.certificate.ok_or(protocol(ProtocolProblem::MissingToken, Some("certificate")))?;
    crate::PodCertificate::from_pem(pem.as_bytes()).map_err(ExtensionAppError::Certificate)
}

fn success_body(response: &HttpResponse) -> Result<&[u8], ExtensionAppError> {
    let status = response.status();
    if !status.is_success() {
        let status_code = status.as_u16();
        return Err(match status {
            StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                ExtensionAppError::Rejected { status: status_code }
            }
            _ => ExtensionAppError::Status { status: status_code },
        });
    }
    if response.body().len() > MAX_RESPONSE_BODY {
        return Err(protocol(ProtocolProblem::BodyTooLarge, None));
    }
    Ok(response.body())
}

fn protocol(problem: ProtocolProblem, field: Option<&'static str>) -> ExtensionAppError {
    ExtensionAppError::Protocol { problem, field }
}

/// A JSON number, or a string of digits.
pub(crate) fn number_or_digits<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(u64),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(deserializer)? {
        Some(Either::Number(n)) => Some(n),
        Some(Either::Text(text)) => Some(text.parse().map_err(|_| serde::de::Error::custom("expected digits"))?),
        None => None,
    })
}

/// Appends `text` as the inside of a JSON string.
fn push_json_text(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Equality whose time does not depend on where two equal-length strings differ: a pair check must not tell an
/// attacker how much of a guessed token was right.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn base_request(method: Method, uri: http::Uri) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
}

fn finish(builder: http::request::Builder, body: Vec<u8>) -> HttpRequest {
    // URIs come from a `BaseUrl` and header values are static, so the builder cannot fail; the fallback keeps
    // this total without a panic path.
    builder.body(body).unwrap_or_else(|_| Request::new(Vec::new()))
}

#[cfg(test)]
mod tests;
