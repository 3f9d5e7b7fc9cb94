//! The login JWT the bot signs, and the lenient reading of the session token's claims (for simplified key
//! delivery). Written by hand: it is a header, two claims and a signature.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::SignError;
use crate::signer::JwtSigner;
use crate::time::UnixTime;

/// The JOSE header every login JWT carries, base64url-encoded: `{"alg":"RS512","typ":"JWT"}`.
const HEADER_B64: &str = "eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9";

/// The claim that grants simplified key delivery.
pub const SKD_CLAIM: &str = "canUseSimplifiedKeyDelivery";

/// A signed login JWT. Short-lived, but a credential while it lives: `Debug` prints a placeholder.
#[derive(Clone)]
pub struct Jwt(SecretString);

impl Jwt {
    /// The compact JWS. Never log it.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Jwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Jwt(<redacted>)")
    }
}

/// Signs a login JWT for `username`: header `{"alg":"RS512","typ":"JWT"}`, claims `{"sub":username,"exp":...}`
/// with `exp = now + lifetime` in whole seconds, base64url without padding.
pub fn login_jwt(username: &str, now: UnixTime, lifetime: Duration, signer: &dyn JwtSigner) -> Result<Jwt, SignError> {
    let (_, signing_input) = signing_input(username, now, lifetime);
    let signature = Zeroizing::new(signer.sign_rs512(signing_input.as_bytes())?);
    Ok(assemble(&signing_input, &signature))
}

/// `exp`, and `base64url(header).base64url(claims)`: what the signature covers.
fn signing_input(username: &str, now: UnixTime, lifetime: Duration) -> (u64, String) {
    let exp = now.as_secs().saturating_add(lifetime.as_secs());
    let claims = serde_json::json!({ "sub": username, "exp": exp });
    (exp, format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(claims.to_string())))
}

/// `signing_input.base64url(signature)`, written once into a buffer of the exact size: no reallocation or
/// temporary leaves a partial copy behind, and the whole is wiped when the [`Jwt`] is dropped.
fn assemble(signing_input: &str, signature: &[u8]) -> Jwt {
    let encoded_len = signature.len().div_ceil(3) * 4 - (3 - signature.len() % 3) % 3;
    let mut jwt = Zeroizing::new(Vec::with_capacity(signing_input.len() + 1 + encoded_len));
    jwt.extend_from_slice(signing_input.as_bytes());
    jwt.push(b'.');
    let start = jwt.len();
    jwt.resize(start + encoded_len, 0);
    let written = URL_SAFE_NO_PAD.encode_slice(signature, &mut jwt[start..]).unwrap_or(0);
    jwt.truncate(start + written);
    // Base64url and ASCII JSON only, so valid UTF-8; the buffer moves into the secret without a copy.
    let text = String::from_utf8(std::mem::take(&mut *jwt)).unwrap_or_default();
    Jwt(SecretString::from(text))
}

/// A login JWT that the machine has written and that still needs its signature. Signing is the one slow step of a
/// login (milliseconds for a 4096-bit key, a network call for a KMS), so the machine hands it out: sign it off the
/// lock, off the async executor, or in another process, then give the result to
/// [`Authenticator::supply_jwt`](crate::Authenticator::supply_jwt).
pub struct UnsignedJwt {
    exp: u64,
    signing_input: String,
    signer: Arc<dyn JwtSigner>,
}

impl UnsignedJwt {
    pub(crate) fn new(username: &str, now: UnixTime, lifetime: Duration, signer: Arc<dyn JwtSigner>) -> Self {
        let (exp, signing_input) = signing_input(username, now, lifetime);
        Self { exp, signing_input, signer }
    }

    /// The bytes the RS512 signature covers (`header.claims`, no secret in them), for a binding that signs
    /// elsewhere and calls [`with_signature`](Self::with_signature).
    #[must_use]
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The `exp` claim, in seconds since the epoch.
    #[must_use]
    pub fn exp(&self) -> u64 {
        self.exp
    }

    /// Signs with the configured signer.
    pub fn sign(self) -> Result<SignedJwt, SignError> {
        let signature = Zeroizing::new(self.signer.sign_rs512(self.signing_input.as_bytes())?);
        Ok(self.with_signature(&signature))
    }

    /// Completes the JWT with an RS512 signature made elsewhere.
    #[must_use]
    pub fn with_signature(self, signature: &[u8]) -> SignedJwt {
        SignedJwt { exp: self.exp, jwt: assemble(&self.signing_input, signature) }
    }
}

impl fmt::Debug for UnsignedJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsignedJwt").field("exp", &self.exp).field("signer", &self.signer).finish_non_exhaustive()
    }
}

/// A signed login JWT, ready for [`Authenticator::supply_jwt`](crate::Authenticator::supply_jwt).
pub struct SignedJwt {
    pub(crate) exp: u64,
    pub(crate) jwt: Jwt,
}

impl fmt::Debug for SignedJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedJwt").field("exp", &self.exp).finish_non_exhaustive()
    }
}

/// The claims of a JWT, decoded without checking its signature; `None` for anything that is not a JWT with a
/// JSON-object payload. Base64url with or without padding is accepted, and so is standard base64, as pods and
/// proxies have been seen to vary.
#[must_use]
pub fn decode_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = payload_bytes(payload)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The decoded payload of a JWT, wiped on drop (a session token's claims are part of a credential).
fn payload_bytes(payload: &str) -> Option<Zeroizing<Vec<u8>>> {
    let trimmed = payload.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD.decode(trimmed).or_else(|_| STANDARD_NO_PAD.decode(trimmed)).ok()?;
    Some(Zeroizing::new(bytes))
}

/// Whether a session token grants simplified key delivery: its claims hold `canUseSimplifiedKeyDelivery` as the
/// JSON boolean `true`. Anything else (no claim, `"yes"`, not a JWT) means no.
#[must_use]
pub fn grants_simplified_key_delivery(session_token: &str) -> bool {
    /// Only the one claim: the others are skipped without being copied.
    #[derive(serde::Deserialize)]
    struct Skd {
        #[serde(rename = "canUseSimplifiedKeyDelivery", default)]
        skd: Option<Value>,
    }
    let mut parts = session_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some(bytes) = payload_bytes(payload) else { return false };
    // A JSON object only: a derived struct would also accept an array (`[true]`).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    serde_json::from_slice::<Skd>(&bytes).is_ok_and(|claims| claims.skd == Some(Value::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;
    impl JwtSigner for Fixed {
        fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
            Ok(message.iter().rev().take(3).copied().collect())
        }
    }

    fn jwt_with(claims: &str) -> String {
        format!("{HEADER_B64}.{}.c2ln", URL_SAFE_NO_PAD.encode(claims))
    }

    #[test]
    fn header_constant_is_the_documented_header() {
        assert_eq!(URL_SAFE_NO_PAD.decode(HEADER_B64).unwrap(), br#"{"alg":"RS512","typ":"JWT"}"#);
    }

    #[test]
    fn login_jwt_has_sub_and_exp_in_seconds() {
        let jwt =
            login_jwt("bot.user", UnixTime::from_millis(1_700_000_000_999), Duration::from_secs(240), &Fixed).unwrap();
        let claims = decode_claims(jwt.expose_secret()).unwrap();
        assert_eq!(serde_json::Value::Object(claims), serde_json::json!({"sub": "bot.user", "exp": 1_700_000_240}));
        let parts: Vec<&str> = jwt.expose_secret().split('.').collect();
        assert_eq!(parts[0], HEADER_B64);
        assert!(!jwt.expose_secret().contains('='));
        assert_eq!(format!("{jwt:?}"), "Jwt(<redacted>)");
    }

    #[test]
    fn a_jwt_signed_in_two_steps_equals_one_signed_at_once() {
        let now = UnixTime::from_secs(1_700_000_000);
        let once = login_jwt("bot", now, Duration::from_secs(240), &Fixed).unwrap();
        let job = UnsignedJwt::new("bot", now, Duration::from_secs(240), Arc::new(Fixed));
        assert_eq!(job.exp(), 1_700_000_240);
        let signature = Fixed.sign_rs512(job.signing_input()).unwrap();
        let elsewhere =
            UnsignedJwt::new("bot", now, Duration::from_secs(240), Arc::new(Fixed)).with_signature(&signature);
        assert_eq!(job.sign().unwrap().jwt.expose_secret(), once.expose_secret());
        assert_eq!(elsewhere.jwt.expose_secret(), once.expose_secret());
        assert_eq!(format!("{elsewhere:?}"), "SignedJwt { exp: 1700000240, .. }");
    }

    #[test]
    fn usernames_are_json_escaped() {
        let jwt = login_jwt("a\"b", UnixTime::from_secs(0), Duration::from_secs(1), &Fixed).unwrap();
        assert_eq!(decode_claims(jwt.expose_secret()).unwrap()["sub"], "a\"b");
    }

    #[test]
    fn skd_follows_the_bdk_vectors() {
        assert!(grants_simplified_key_delivery(&jwt_with(
            r#"{"sub":"1234567890","canUseSimplifiedKeyDelivery":true}"#
        )));
        assert!(!grants_simplified_key_delivery(&jwt_with(r#"{"exp":1641308278,"sub":"13056700580915"}"#)));
        assert!(!grants_simplified_key_delivery(&jwt_with(r#"{"sub":"123","canUseSimplifiedKeyDelivery":"yes"}"#)));
        assert!(!grants_simplified_key_delivery(&jwt_with(r#"{"sub":"123","skd":true}"#)));
        assert!(!grants_simplified_key_delivery("only.two"));
        assert!(!grants_simplified_key_delivery("invalid.jwt.value"));
        assert!(!grants_simplified_key_delivery("a.b.c.d"));
        assert!(!grants_simplified_key_delivery(&jwt_with("[true]")));
    }

    #[test]
    fn claims_decode_with_padding_or_standard_alphabet() {
        let payload = r#"{"canUseSimplifiedKeyDelivery":true,"n":"??>"}"#;
        let padded = format!("h.{}.s", base64::engine::general_purpose::URL_SAFE.encode(payload));
        let standard = format!("h.{}.s", base64::engine::general_purpose::STANDARD.encode(payload));
        assert!(grants_simplified_key_delivery(&padded));
        assert!(grants_simplified_key_delivery(&standard));
    }
}
