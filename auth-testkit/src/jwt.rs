//! The compact JWS the fake reads (a bot's RS512 login JWT, PROTOCOL §5) and writes (session tokens, §6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::{hmac, signature};
use rsa::PublicKey;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Map, Value};

/// A bot's registered RSA public key, kept as modulus and exponent for ring, whose verification is several times
/// faster than the `rsa` crate's: a loaded fake spends most of its time checking login JWTs.
#[derive(Debug)]
pub(crate) struct BotKey {
    n: Box<[u8]>,
    e: Box<[u8]>,
}

impl BotKey {
    /// Reads an SPKI PEM (`BEGIN PUBLIC KEY`) RSA key of at least 2048 bits; the error says what is wrong.
    pub(crate) fn from_spki_pem(pem: &str) -> Result<Self, String> {
        let key = PublicKey::from_public_key_pem(pem).map_err(|e| e.to_string())?;
        let bits = key.n_bits_precision();
        if bits < 2048 {
            return Err(format!("{bits}-bit key; at least 2048 bits are required"));
        }
        Ok(BotKey { n: key.n_bytes(), e: key.e_bytes() })
    }
}

/// A login JWT whose form is valid; its signature is not yet checked (the key depends on `sub`).
#[derive(Debug)]
pub(crate) struct LoginJwt<'a> {
    pub(crate) sub: String,
    /// `exp` in seconds since the epoch (JSON numbers may carry a fraction).
    pub(crate) exp: f64,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl LoginJwt<'_> {
    /// Whether the signature is RSASSA-PKCS1-v1_5 with SHA-512 by `key` over `header.claims`.
    pub(crate) fn signed_by(&self, key: &BotKey) -> bool {
        let components = signature::RsaPublicKeyComponents { n: &key.n[..], e: &key.e[..] };
        components
            .verify(&signature::RSA_PKCS1_2048_8192_SHA512, self.signing_input.as_bytes(), &self.signature)
            .is_ok()
    }
}

/// Parses a login JWT, rejecting anything the pod would: the message is for the 401 body.
pub(crate) fn parse_login_jwt(jwt: &str) -> Result<LoginJwt<'_>, &'static str> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("Invalid JWT: expected three dot-separated parts");
    };
    let header = decode_json_object(header).ok_or("Invalid JWT header")?;
    match header.get("alg") {
        Some(Value::String(alg)) if alg == "RS512" => {}
        _ => return Err("Invalid JWT: algorithm must be RS512"),
    }
    let claims = decode_json_object(claims).ok_or("Invalid JWT claims")?;
    let sub = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => return Err("Invalid JWT: missing subject"),
    };
    let exp = claims.get("exp").and_then(Value::as_f64).ok_or("Invalid JWT: missing expiration")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "Invalid JWT signature")?;
    let signing_input = &jwt[..header_len(jwt)];
    Ok(LoginJwt { sub, exp, signing_input, signature })
}

/// The length of `header.claims`: everything before the last dot.
fn header_len(jwt: &str) -> usize {
    jwt.rfind('.').unwrap_or(jwt.len())
}

fn decode_json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Signs `claims` as an HS512 compact JWS. The pod's own session tokens are RS512, but clients only decode their
/// claims (nobody outside the pod can verify them), and an RSA signature per login would cap the fake at a few
/// hundred logins per second; a MAC keeps them JWT-shaped for a microsecond.
pub(crate) fn sign_hs512(key: &hmac::Key, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    let tag = hmac::sign(key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::PrivateKey;
    use rsa::pkcs8::DecodePrivateKey as _;
    use rsa::sha2::Sha512;

    fn key() -> PrivateKey {
        PrivateKey::from_pkcs8_pem(include_str!("../../fixtures/keys/bot-2048.pkcs8.pem")).unwrap()
    }

    fn sign_rs512(key: &PrivateKey, header: &str, claims: &str) -> String {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = key.pkcs1v15_sign::<Sha512>(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn rs512_tokens_parse_and_verify_with_ring() {
        let bot = BotKey::from_spki_pem(include_str!("../../fixtures/keys/bot-2048.pub.pem")).unwrap();
        let other = BotKey::from_spki_pem(include_str!("../../fixtures/keys/other-2048.pub.pem")).unwrap();
        let jwt = sign_rs512(&key(), r#"{"alg":"RS512"}"#, r#"{"sub":"bot","exp":12}"#);
        let parsed = parse_login_jwt(&jwt).unwrap();
        assert_eq!(parsed.sub, "bot");
        assert!((parsed.exp - 12.0).abs() < f64::EPSILON);
        assert!(parsed.signed_by(&bot));
        assert!(!parsed.signed_by(&other));
        let parts: Vec<&str> = jwt.split('.').collect();
        let other_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"bot","exp":13}"#);
        let tampered = format!("{}.{other_claims}.{}", parts[0], parts[2]);
        assert!(!parse_login_jwt(&tampered).unwrap().signed_by(&bot));
        // RS256 by the right key over the same input is not RS512.
        let input = format!("{}.{}", parts[0], parts[1]);
        let rs256 = key().pkcs1v15_sign::<rsa::sha2::Sha256>(input.as_bytes()).unwrap();
        let rs256 = format!("{input}.{}", URL_SAFE_NO_PAD.encode(rs256));
        assert!(!parse_login_jwt(&rs256).unwrap().signed_by(&bot));
    }

    #[test]
    fn small_and_non_rsa_keys_are_refused() {
        let weak = PrivateKey::from_pkcs8_pem(include_str!("../../fixtures/keys/weak-1024.pkcs8.pem")).unwrap();
        let weak = {
            use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
            weak.to_public_key().to_public_key_pem(LineEnding::LF).unwrap()
        };
        assert!(BotKey::from_spki_pem(&weak).unwrap_err().contains("1024-bit"));
        assert!(BotKey::from_spki_pem(include_str!("../../fixtures/keys/bot-2048.pkcs8.pem")).is_err());
    }

    #[test]
    fn session_tokens_are_hs512_jws() {
        let key = hmac::Key::new(hmac::HMAC_SHA512, b"test key");
        let jwt = sign_hs512(&key, &serde_json::json!({"sub":"bot","exp":12}));
        let (input, tag) = jwt.rsplit_once('.').unwrap();
        assert!(hmac::verify(&key, input.as_bytes(), &URL_SAFE_NO_PAD.decode(tag).unwrap()).is_ok());
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], "HS512");
    }

    #[test]
    fn rejects_bad_forms() {
        assert!(parse_login_jwt("a.b").is_err());
        assert!(parse_login_jwt("a.b.c.d").is_err());
        let hs = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512"}"#);
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"x","exp":1}"#);
        assert_eq!(
            parse_login_jwt(&format!("{hs}.{claims}.AAAA")).unwrap_err(),
            "Invalid JWT: algorithm must be RS512"
        );
        let rs = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS512"}"#);
        let no_sub = URL_SAFE_NO_PAD.encode(br#"{"exp":1}"#);
        assert!(parse_login_jwt(&format!("{rs}.{no_sub}.AAAA")).is_err());
        // Padding is not base64url-without-padding.
        assert!(parse_login_jwt(&format!("{rs}=.{claims}.AAAA")).is_err());
    }
}
