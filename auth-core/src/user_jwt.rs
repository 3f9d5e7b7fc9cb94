//! The pod certificate and the user JWTs it signs: what an extension app's backend checks before trusting who the
//! frontend says the user is. Verification uses the crate's crypto backend (`rsa`, else `ring`, else `aws-lc`).
//!
//! The rules (PROTOCOL §9, §15.24): an RS256 or RS512 signature by the pod certificate's key; `exp` in the future;
//! `aud` equal to the app id (required, as BDK-Python does: a JWT minted for another app must not log a user into
//! this one); a numeric `sub`, the user id; a `user` claim whose `id`, when present, is that same id.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use x509_cert::der::{Decode as _, Encode as _};

use crate::extension_app::{AppId, number_or_digits};
use crate::pem::pem_blocks;
use crate::time::UnixTime;

/// DER of the rsaEncryption OID, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// The pod's certificate (E3, E4): the public key that signs user JWTs.
#[derive(Clone)]
pub struct PodCertificate {
    /// The SubjectPublicKeyInfo, DER.
    spki: Vec<u8>,
    /// The RSAPublicKey inside it (PKCS#1), DER.
    pkcs1: Vec<u8>,
}

impl fmt::Debug for PodCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodCertificate").field("spki_len", &self.spki.len()).finish_non_exhaustive()
    }
}

impl PodCertificate {
    /// Reads the first `CERTIFICATE` block of `pem`: an X.509 certificate with an RSA key.
    ///
    /// # Errors
    /// A short reason: no PEM certificate, not X.509, not an RSA key.
    pub fn from_pem(pem: &[u8]) -> Result<Self, &'static str> {
        let blocks = pem_blocks(pem).map_err(|_| "not PEM")?;
        let block = blocks.iter().find(|b| b.label == "CERTIFICATE").ok_or("no CERTIFICATE block")?;
        Self::from_der(&block.der)
    }

    /// Reads an X.509 certificate in DER.
    ///
    /// # Errors
    /// A short reason: not X.509, not an RSA key.
    pub fn from_der(der: &[u8]) -> Result<Self, &'static str> {
        let certificate = x509_cert::Certificate::from_der(der).map_err(|_| "not an X.509 certificate")?;
        let info = certificate.tbs_certificate().subject_public_key_info();
        if info.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return Err("the certificate's key is not RSA");
        }
        let spki = info.to_der().map_err(|_| "not an X.509 certificate")?;
        let pkcs1 = info.subject_public_key.raw_bytes().to_vec();
        let certificate = Self { spki, pkcs1 };
        certificate.check_key()?;
        Ok(certificate)
    }

    #[cfg(feature = "rsa-signer")]
    fn check_key(&self) -> Result<(), &'static str> {
        use rsa::pkcs8::DecodePublicKey as _;
        rsa::PublicKey::from_public_key_der(&self.spki).map(drop).map_err(|_| "the RSA key is malformed")
    }

    #[cfg(not(feature = "rsa-signer"))]
    fn check_key(&self) -> Result<(), &'static str> {
        Ok(())
    }

    /// Verifies a user JWT a frontend handed over, for the app `app_id`, at `now`.
    ///
    /// # Errors
    /// One [`UserJwtError`] per way it can fail; none carries the JWT or any part of it.
    pub fn verify_user_jwt(&self, jwt: &str, app_id: &AppId, now: UnixTime) -> Result<UserClaims, UserJwtError> {
        let mut parts = jwt.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(UserJwtError::Malformed("not three dot-separated parts"));
        };
        let decode = |part: &str, what| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| what);
        let header_bytes = decode(header, UserJwtError::Malformed("header is not base64url"))?;
        let signature = decode(signature, UserJwtError::Malformed("signature is not base64url"))?;
        #[derive(Deserialize)]
        struct Header {
            alg: Option<String>,
        }
        let jose: Header =
            serde_json::from_slice(&header_bytes).map_err(|_| UserJwtError::Malformed("header is not JSON"))?;
        let algorithm = match jose.alg.as_deref() {
            Some("RS256") => Algorithm::Rs256,
            Some("RS512") => Algorithm::Rs512,
            Some(other) => return Err(UserJwtError::UnsupportedAlgorithm(displayable(other))),
            None => return Err(UserJwtError::UnsupportedAlgorithm(String::new())),
        };
        let signing_input = &jwt.trim()[..header.len() + 1 + payload.len()];
        self.verify_signature(algorithm, signing_input.as_bytes(), &signature)?;

        let payload = decode(payload, UserJwtError::Malformed("payload is not base64url"))?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| UserJwtError::Malformed("payload is not a claims object"))?;
        let exp = claims.exp.ok_or(UserJwtError::MissingExpiry)?;
        let expires_at = UnixTime::from_secs(exp);
        if expires_at <= now {
            return Err(UserJwtError::Expired { expired_at: exp, now: now.as_secs() });
        }
        match claims.aud {
            None => return Err(UserJwtError::MissingAudience),
            Some(aud) if !aud.contains(app_id.as_str()) => {
                return Err(UserJwtError::WrongAudience { expected: app_id.to_string() });
            }
            Some(_) => {}
        }
        let user_id = match claims.sub {
            Some(Subject::Number(id)) => id,
            Some(Subject::Text(text)) => text.parse().map_err(|_| UserJwtError::SubjectNotNumeric)?,
            None => return Err(UserJwtError::SubjectNotNumeric),
        };
        let user = claims.user.ok_or(UserJwtError::MissingUser)?;
        let user: SymphonyUser = serde_json::from_value(user).map_err(|_| UserJwtError::MalformedUser)?;
        if user.id.is_some_and(|id| id != user_id) {
            return Err(UserJwtError::UserIdMismatch);
        }
        Ok(UserClaims { user_id, issuer: claims.iss, expires_at, user })
    }

    fn verify_signature(&self, algorithm: Algorithm, message: &[u8], signature: &[u8]) -> Result<(), UserJwtError> {
        if verify_pkcs1(&self.pkcs1, algorithm, message, signature) { Ok(()) } else { Err(UserJwtError::BadSignature) }
    }
}

/// Whether `signature` is an RSASSA-PKCS1-v1_5 signature of `message` by the RSA public key `pkcs1` (DER
/// `RSAPublicKey`), with the crate's crypto backend.
#[cfg(feature = "rsa-signer")]
pub(crate) fn verify_pkcs1(pkcs1: &[u8], algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::sha2::{Sha256, Sha512};
    use rsa::signature::Verifier as _;
    let (Ok(key), Ok(signature)) = (rsa::PublicKey::from_pkcs1_der(pkcs1), Signature::try_from(signature)) else {
        return false;
    };
    match algorithm {
        Algorithm::Rs256 => VerifyingKey::<Sha256>::new(key).verify(message, &signature).is_ok(),
        Algorithm::Rs512 => VerifyingKey::<Sha512>::new(key).verify(message, &signature).is_ok(),
    }
}

/// Whether `signature` is an RSASSA-PKCS1-v1_5 signature of `message` by the RSA public key `pkcs1` (DER
/// `RSAPublicKey`), with the crate's crypto backend.
#[cfg(all(feature = "ring-signer", not(feature = "rsa-signer")))]
pub(crate) fn verify_pkcs1(pkcs1: &[u8], algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512, UnparsedPublicKey};
    let parameters = match algorithm {
        Algorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
        Algorithm::Rs512 => &RSA_PKCS1_2048_8192_SHA512,
    };
    UnparsedPublicKey::new(parameters, pkcs1).verify(message, signature).is_ok()
}

/// Whether `signature` is an RSASSA-PKCS1-v1_5 signature of `message` by the RSA public key `pkcs1` (DER
/// `RSAPublicKey`), with the crate's crypto backend.
#[cfg(all(feature = "aws-lc-signer", not(feature = "rsa-signer"), not(feature = "ring-signer")))]
pub(crate) fn verify_pkcs1(pkcs1: &[u8], algorithm: Algorithm, message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_2048_8192_SHA512, UnparsedPublicKey};
    let parameters = match algorithm {
        Algorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
        Algorithm::Rs512 => &RSA_PKCS1_2048_8192_SHA512,
    };
    UnparsedPublicKey::new(parameters, pkcs1).verify(message, signature).is_ok()
}

/// The RSA signature algorithms accepted.
#[derive(Clone, Copy)]
pub(crate) enum Algorithm {
    Rs256,
    Rs512,
}

#[derive(Deserialize)]
struct Claims {
    exp: Option<u64>,
    aud: Option<Audience>,
    sub: Option<Subject>,
    iss: Option<String>,
    user: Option<serde_json::Value>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, app_id: &str) -> bool {
        match self {
            Self::One(aud) => aud == app_id,
            Self::Many(auds) => auds.iter().any(|aud| aud == app_id),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Subject {
    Number(u64),
    Text(String),
}

/// At most 40 visible ASCII characters of a value from a JWT header, for an error message.
fn displayable(text: &str) -> String {
    text.chars().filter(char::is_ascii_graphic).take(40).collect()
}

/// What a verified user JWT says.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserClaims {
    /// The user id (`sub`).
    pub user_id: u64,
    /// The issuer (`iss`), when present.
    pub issuer: Option<String>,
    /// When the JWT expires (`exp`).
    pub expires_at: UnixTime,
    /// The `user` claim.
    pub user: SymphonyUser,
}

/// The `user` claim of a user JWT: who the user is. Every field but the id may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SymphonyUser {
    /// The user id; when present it equals the JWT's `sub`.
    #[serde(default, deserialize_with = "number_or_digits")]
    pub id: Option<u64>,
    /// The e-mail address.
    pub email_address: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// The first name.
    pub first_name: Option<String>,
    /// The last name.
    pub last_name: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// The title.
    pub title: Option<String>,
    /// The company.
    pub company: Option<String>,
    /// The company id (a number on the wire).
    #[serde(default, deserialize_with = "number_or_digits")]
    pub company_id: Option<u64>,
    /// The location.
    pub location: Option<String>,
    /// The avatar's URL.
    pub avatar_url: Option<String>,
    /// The small avatar's URL.
    pub avatar_small_url: Option<String>,
}

/// Why a user JWT was refused. No variant carries the JWT or a part of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserJwtError {
    /// Not a compact JWS with a JSON header and claims.
    #[error("the user JWT is malformed: {0}")]
    Malformed(&'static str),
    /// An `alg` other than RS256 or RS512 (`none` included).
    #[error("the user JWT's algorithm {0:?} is not accepted (RS256 or RS512 only)")]
    UnsupportedAlgorithm(String),
    /// The signature is not the pod certificate's.
    #[error("the user JWT is not signed by the pod certificate")]
    BadSignature,
    /// No `exp` claim.
    #[error("the user JWT has no `exp` claim")]
    MissingExpiry,
    /// `exp` has passed.
    #[error("the user JWT expired at {expired_at} (now {now}, seconds since the epoch)")]
    Expired {
        /// `exp`.
        expired_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// No `aud` claim.
    #[error("the user JWT has no `aud` claim")]
    MissingAudience,
    /// `aud` is not this app.
    #[error("the user JWT was issued for another app than {expected:?}")]
    WrongAudience {
        /// This app's id.
        expected: String,
    },
    /// `sub` is missing or not a user id.
    #[error("the user JWT's `sub` is not a numeric user id")]
    SubjectNotNumeric,
    /// No `user` claim.
    #[error("the user JWT has no `user` claim")]
    MissingUser,
    /// The `user` claim is not an object of the expected fields.
    #[error("the user JWT's `user` claim is malformed")]
    MalformedUser,
    /// The `user` claim's `id` differs from `sub`.
    #[error("the user JWT's `user.id` differs from its `sub`")]
    UserIdMismatch,
}
