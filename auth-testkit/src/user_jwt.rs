//! The pod certificate (E3/E4) and the user JWTs it signs, for tests of an extension app's backend: valid ones,
//! and each kind of bad one (expired, for another app, signed by another key, unsupported algorithm).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rcgen::{CertificateParams, DnType, KeyPair, PKCS_RSA_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RSA_PKCS1_SHA512, RsaKeyPair};
use serde_json::{Value, json};

use crate::error::TestkitError;

/// Test-only keys (see `keys/README.md`): the pod certificate's, and another one for forged JWTs.
const POD_CERT_KEY: &str = include_str!("keys/pod-cert-rsa2048.pkcs8.pem");
const OTHER_KEY: &str = include_str!("keys/server-rsa2048.pkcs8.pem");

/// The issuer pods write into user JWTs.
pub const USER_JWT_ISSUER: &str = "Symphony Communication Services LLC.";

/// The pod's certificate and its key: serves E3/E4 and mints user JWTs.
pub struct PodCertificate {
    pem: String,
    key: RsaKeyPair,
    other: RsaKeyPair,
}

impl fmt::Debug for PodCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodCertificate").finish_non_exhaustive()
    }
}

impl PodCertificate {
    /// A self-signed certificate over the fixed test key.
    ///
    /// # Errors
    /// [`TestkitError::Certificate`] if rcgen or ring refuse the key (they do not).
    pub fn new() -> Result<Self, TestkitError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, "fake-pod user JWT signer");
        let key_pair = KeyPair::from_pkcs8_pem_and_sign_algo(POD_CERT_KEY, &PKCS_RSA_SHA256)?;
        let pem = params.self_signed(&key_pair)?.pem();
        Ok(Self { pem, key: ring_key(POD_CERT_KEY)?, other: ring_key(OTHER_KEY)? })
    }

    /// The certificate, PEM: what E3 and E4 answer with.
    #[must_use]
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// Signs `jwt`.
    #[must_use]
    pub fn mint(&self, jwt: &UserJwt) -> String {
        let alg = match jwt.algorithm {
            UserJwtAlgorithm::Rs256 => "RS256",
            UserJwtAlgorithm::Rs512 => "RS512",
            UserJwtAlgorithm::None => "none",
        };
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(jwt.claims().to_string());
        let input = format!("{header}.{claims}");
        let key = if jwt.foreign_key { &self.other } else { &self.key };
        let padding = match jwt.algorithm {
            UserJwtAlgorithm::Rs512 => &RSA_PKCS1_SHA512,
            UserJwtAlgorithm::Rs256 | UserJwtAlgorithm::None => &RSA_PKCS1_SHA256,
        };
        let mut signature = vec![0; key.public().modulus_len()];
        // Signing with a valid key pair into a buffer of the modulus size does not fail.
        let _ = key.sign(padding, &SystemRandom::new(), input.as_bytes(), &mut signature);
        if jwt.algorithm == UserJwtAlgorithm::None {
            return format!("{input}.");
        }
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

impl PodCertificate {
    /// The key id of the pod key in the JWKS.
    pub(crate) const KEY_ID: &'static str = "fake-pod-key-1";

    /// A JWT over `claims`, RS256 with the pod key, with header `{"alg":"RS256","kid":...}`: how the fake signs
    /// Common JWT access tokens.
    pub(crate) fn sign_rs256(&self, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": Self::KEY_ID}).to_string());
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        let _ = self.key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The JWKS of A6: the pod key as an RSA JWK.
    pub(crate) fn jwks(&self) -> Value {
        let public = self.key.public();
        let components: ring::rsa::PublicKeyComponents<Vec<u8>> = public.into();
        json!({"keys": [{
            "kty": "RSA",
            "kid": Self::KEY_ID,
            "use": "sig",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&components.n),
            "e": URL_SAFE_NO_PAD.encode(&components.e),
        }]})
    }
}

fn ring_key(pem: &str) -> Result<RsaKeyPair, TestkitError> {
    use rustls_pki_types::pem::PemObject as _;
    let unusable = |_| TestkitError::Certificate(rcgen::Error::CouldNotParseKeyPair);
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| unusable(()))?;
    RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).map_err(|_| unusable(()))
}

/// The signature algorithm of a minted user JWT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserJwtAlgorithm {
    /// RS256, what BDK-Java's tests use.
    Rs256,
    /// RS512, what BDK-Python accepts.
    Rs512,
    /// `none`, with an empty signature: must be refused.
    None,
}

/// What a minted user JWT says. [`UserJwt::valid`] is what a pod issues; the setters make the bad ones.
#[derive(Clone, Debug)]
pub struct UserJwt {
    app_id: String,
    user_id: u64,
    username: String,
    exp: u64,
    algorithm: UserJwtAlgorithm,
    foreign_key: bool,
    numeric_sub: bool,
    with_audience: bool,
    /// `aud` as an array of these instead of the app id alone.
    audiences: Option<Vec<String>>,
}

impl UserJwt {
    /// A JWT for `user_id`/`username` and the app `app_id`, valid for five minutes from `now`, RS512.
    #[must_use]
    pub fn valid(app_id: &str, user_id: u64, username: &str, now: SystemTime) -> Self {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Self {
            app_id: app_id.to_owned(),
            user_id,
            username: username.to_owned(),
            exp: now + 300,
            algorithm: UserJwtAlgorithm::Rs512,
            foreign_key: false,
            numeric_sub: true,
            with_audience: true,
            audiences: None,
        }
    }

    /// Already expired at the `now` it was made with: `exp` is `ago` before it.
    #[must_use]
    pub fn expired(mut self, ago: Duration) -> Self {
        self.exp = self.exp.saturating_sub(300 + ago.as_secs());
        self
    }

    /// For another app.
    #[must_use]
    pub fn audience(mut self, app_id: &str) -> Self {
        self.app_id = app_id.to_owned();
        self
    }

    /// With `aud` an array of these (RFC 7519 allows a string or an array), which may or may not hold the app id.
    #[must_use]
    pub fn audiences(mut self, app_ids: &[&str]) -> Self {
        self.audiences = Some(app_ids.iter().map(|&id| id.to_owned()).collect());
        self
    }

    /// Signed by a key other than the pod certificate's.
    #[must_use]
    pub fn signed_by_another_key(mut self) -> Self {
        self.foreign_key = true;
        self
    }

    /// With this algorithm.
    #[must_use]
    pub fn algorithm(mut self, algorithm: UserJwtAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// With the username as `sub` instead of the user id.
    #[must_use]
    pub fn non_numeric_subject(mut self) -> Self {
        self.numeric_sub = false;
        self
    }

    /// With no `aud` claim.
    #[must_use]
    pub fn without_audience(mut self) -> Self {
        self.with_audience = false;
        self
    }

    fn claims(&self) -> Value {
        let sub = if self.numeric_sub { self.user_id.to_string() } else { self.username.clone() };
        let mut claims = json!({
            "iss": USER_JWT_ISSUER,
            "sub": sub,
            "aud": self.app_id,
            "exp": self.exp,
            "user": {
                "id": self.user_id,
                "emailAddress": format!("{}@example.com", self.username),
                "username": self.username,
                "firstName": "Test",
                "lastName": "User",
                "displayName": format!("Test User {}", self.username),
                "company": "Acme",
                "companyId": 190,
            }
        });
        if let Some(audiences) = &self.audiences {
            claims["aud"] = json!(audiences);
        }
        if !self.with_audience {
            claims.as_object_mut().map(|claims| claims.remove("aud"));
        }
        claims
    }
}
