//! The optional check of an access token against the pod's JWKS (A6 `GET /login/idm/keys`): an RS256 or RS512
//! signature by the key its `kid` names (or the only RSA key, when the token names none).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::{AccessToken, AccessTokenError};
use crate::HttpResponse;
use crate::error::ProtocolProblem;
use crate::response::MAX_RESPONSE_BODY;
use crate::user_jwt::{Algorithm, verify_pkcs1};

/// The RSA keys of A6, by key id.
#[derive(Clone, Debug)]
pub struct AccessTokenKeys {
    keys: Vec<(Option<String>, Vec<u8>)>,
}

/// Reads a 200 A6 answer, `{"keys": [JWK]}`; keys other than RSA are skipped.
///
/// # Errors
/// [`AccessTokenError::Status`] or [`AccessTokenError::Protocol`].
pub fn parse_access_token_keys(response: &HttpResponse) -> Result<AccessTokenKeys, AccessTokenError> {
    #[derive(Deserialize)]
    struct Jwk {
        kty: Option<String>,
        kid: Option<String>,
        n: Option<String>,
        e: Option<String>,
    }
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<Jwk>,
    }
    if response.status() != http::StatusCode::OK {
        return Err(AccessTokenError::Status { status: response.status().as_u16() });
    }
    let protocol = |problem| AccessTokenError::Protocol { problem };
    if response.body().len() > MAX_RESPONSE_BODY {
        return Err(protocol(ProtocolProblem::BodyTooLarge));
    }
    let jwks: Jwks = serde_json::from_slice(response.body()).map_err(|_| protocol(ProtocolProblem::NotJson))?;
    let keys = jwks
        .keys
        .into_iter()
        .filter(|jwk| jwk.kty.as_deref() == Some("RSA"))
        .filter_map(|jwk| {
            let n = URL_SAFE_NO_PAD.decode(jwk.n?.trim_end_matches('=')).ok()?;
            let e = URL_SAFE_NO_PAD.decode(jwk.e?.trim_end_matches('=')).ok()?;
            Some((jwk.kid, rsa_public_key_der(&n, &e)))
        })
        .collect();
    Ok(AccessTokenKeys { keys })
}

impl AccessTokenKeys {
    /// How many RSA keys were read.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no RSA key was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that `token` is an RS256 or RS512 JWT signed by one of these keys (the one its `kid` names, or the
    /// only one).
    ///
    /// # Errors
    /// [`AccessTokenError::Unverified`].
    pub fn verify(&self, token: &AccessToken) -> Result<(), AccessTokenError> {
        #[derive(Deserialize)]
        struct Header {
            alg: Option<String>,
            kid: Option<String>,
        }
        let jwt = token.expose_secret();
        let (signing_input, signature) = jwt.rsplit_once('.').ok_or(AccessTokenError::Unverified("not a JWT"))?;
        let header = signing_input.split('.').next().unwrap_or_default();
        let header: Header = URL_SAFE_NO_PAD
            .decode(header.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(AccessTokenError::Unverified("the header is not base64url JSON"))?;
        let algorithm = match header.alg.as_deref() {
            Some("RS256") => Algorithm::Rs256,
            Some("RS512") => Algorithm::Rs512,
            _ => return Err(AccessTokenError::Unverified("the algorithm is not RS256 or RS512")),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature.trim_end_matches('='))
            .map_err(|_| AccessTokenError::Unverified("the signature is not base64url"))?;
        let key = match &header.kid {
            Some(kid) => self.keys.iter().find(|(id, _)| id.as_deref() == Some(kid.as_str())),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
        .ok_or(AccessTokenError::Unverified("no key of the JWKS matches the token's `kid`"))?;
        if verify_pkcs1(&key.1, algorithm, signing_input.as_bytes(), &signature) {
            Ok(())
        } else {
            Err(AccessTokenError::Unverified("the signature is not the JWKS key's"))
        }
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` from big-endian magnitudes.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(magnitude: &[u8], out: &mut Vec<u8>) {
        let trimmed: &[u8] = {
            let start = magnitude.iter().position(|b| *b != 0).unwrap_or(magnitude.len().saturating_sub(1));
            &magnitude[start.min(magnitude.len())..]
        };
        // A leading zero keeps a magnitude whose top bit is set positive.
        let pad = trimmed.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(trimmed.len() + usize::from(pad), out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(trimmed);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    integer(n, &mut body);
    integer(e, &mut body);
    let mut der = vec![0x30];
    length(body.len(), &mut der);
    der.extend(body);
    der
}

/// A DER length: one byte below 128, else `0x80 | count` and the big-endian bytes.
fn length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::length;

    #[test]
    fn der_lengths_switch_to_the_long_form_at_128() {
        let encoded = |len: usize| {
            let mut out = Vec::new();
            length(len, &mut out);
            out
        };
        assert_eq!(encoded(0), [0x00]);
        assert_eq!(encoded(127), [0x7f]);
        assert_eq!(encoded(128), [0x81, 0x80]);
        assert_eq!(encoded(255), [0x81, 0xff]);
        assert_eq!(encoded(256), [0x82, 0x01, 0x00]);
        assert_eq!(encoded(0x01_0203), [0x83, 0x01, 0x02, 0x03]);
    }
}
