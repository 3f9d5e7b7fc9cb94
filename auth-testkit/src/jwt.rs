//! The compact JWS the fake reads (a bot's RS512 login JWT, PROTOCOL §5) and writes (session tokens, §6).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::sha2::Sha512;
use rsa::{PrivateKey, PublicKey};
use serde_json::{Map, Value};

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
    pub(crate) fn signed_by(&self, key: &PublicKey) -> bool {
        key.pkcs1v15_verify::<Sha512>(self.signing_input.as_bytes(), &self.signature).is_ok()
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

/// Signs `claims` as an RS512 compact JWS, as the pod signs the session tokens it issues.
pub(crate) fn sign_rs512(key: &PrivateKey, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS512","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{claims}");
    // Signing with a valid 2048-bit key and SHA-512 cannot fail but for an RNG failure (blinding);
    // an unsigned token is still a well-formed one for clients, which never verify it.
    let signature = key.pkcs1v15_sign::<Sha512>(signing_input.as_bytes()).unwrap_or_default();
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey as _;

    fn key() -> PrivateKey {
        PrivateKey::from_pkcs8_pem(include_str!("../../fixtures/keys/bot-2048.pkcs8.pem")).unwrap()
    }

    #[test]
    fn signed_tokens_parse_and_verify() {
        let key = key();
        let jwt = sign_rs512(&key, &serde_json::json!({"sub":"bot","exp":12}));
        let parsed = parse_login_jwt(&jwt).unwrap();
        assert_eq!(parsed.sub, "bot");
        assert!((parsed.exp - 12.0).abs() < f64::EPSILON);
        assert!(parsed.signed_by(&key.to_public_key()));
        let parts: Vec<&str> = jwt.split('.').collect();
        let other_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"bot","exp":13}"#);
        let tampered = format!("{}.{other_claims}.{}", parts[0], parts[2]);
        assert!(!parse_login_jwt(&tampered).unwrap().signed_by(&key.to_public_key()));
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
