//! `AwsLcSigner`: RS512 over `aws-lc-rs` (AWS-LC), the fastest of the three signers on x86-64 and aarch64.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA512, RsaKeyPair};

use super::{KeyFormat, MIN_RSA_BITS, check_size, decode_pem};
use crate::error::{KeyError, SignError};
use crate::signer::JwtSigner;

/// A signer over `aws-lc-rs`: the fastest RS512 here (about twice `ring`, six times `rsa` at 4096 bits), and a
/// deployment that uses it can drop the `rsa` crate. Produces the same JWTs as [`RsaSigner`](crate::RsaSigner).
///
/// AWS-LC keeps the key in C memory and frees it with `RSA_free`, which wipes it (`OPENSSL_free` zeroes).
pub struct AwsLcSigner {
    key: RsaKeyPair,
    rng: SystemRandom,
    format: KeyFormat,
}

impl AwsLcSigner {
    /// Loads an unencrypted PKCS#8 or PKCS#1 PEM key of at least 2048 bits.
    ///
    /// # Errors
    /// The same [`KeyError`]s as the other signers: not PEM, an unsupported label, encrypted, malformed, not RSA,
    /// too small.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let decoded = decode_pem(pem)?;
        let key = match decoded.format {
            KeyFormat::Pkcs8 => RsaKeyPair::from_pkcs8(&decoded.der),
            KeyFormat::Pkcs1 => RsaKeyPair::from_der(&decoded.der),
        }
        .map_err(|e| match modulus_bits(decoded.format, &decoded.der) {
            // AWS-LC refuses keys under 2048 bits itself, before their size can be asked: read it from the DER,
            // so that a small key gets the same error as with `RsaSigner`.
            Some(bits) if bits < MIN_RSA_BITS => KeyError::TooSmall { bits },
            _ => KeyError::Malformed { format: decoded.format.name(), reason: format!("rejected by aws-lc: {e}") },
        })?;
        check_size(key.public_modulus_len() * 8)?;
        Ok(Self { key, rng: SystemRandom::new(), format: decoded.format })
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> usize {
        self.key.public_modulus_len() * 8
    }

    /// The encoding the key was loaded from.
    #[must_use]
    pub fn format(&self) -> KeyFormat {
        self.format
    }
}

impl JwtSigner for AwsLcSigner {
    fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA512, &self.rng, message, &mut signature)
            .map_err(|_| SignError("aws-lc could not sign".into()))?;
        Ok(signature)
    }
}

impl fmt::Debug for AwsLcSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not `RsaKeyPair`'s own Debug: it prints the public key, which is not secret but identifies the bot.
        f.debug_struct("AwsLcSigner").field("bits", &self.bits()).field("format", &self.format).finish_non_exhaustive()
    }
}

/// The modulus size of a PKCS#1 `RSAPrivateKey` (`SEQUENCE { version, modulus, ... }`), or of the one inside a
/// PKCS#8 `PrivateKeyInfo` (`SEQUENCE { version, algorithm, privateKey OCTET STRING, ... }`); `None` when the DER is
/// not that shape.
fn modulus_bits(format: KeyFormat, der: &[u8]) -> Option<usize> {
    use x509_cert::der::asn1::{AnyRef, UintRef};
    use x509_cert::der::{Decode as _, Tag, Tagged as _};
    let fields = Vec::<AnyRef<'_>>::from_der(der).ok()?;
    match format {
        KeyFormat::Pkcs1 => {
            let modulus = UintRef::try_from(*fields.get(1)?).ok()?;
            let bytes = modulus.as_bytes();
            let top = bytes.first()?;
            Some((bytes.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
        }
        KeyFormat::Pkcs8 => {
            let private_key = fields.get(2).filter(|field| field.tag() == Tag::OctetString)?;
            modulus_bits(KeyFormat::Pkcs1, private_key.value())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS8: &[u8] = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
    const PKCS1: &[u8] = include_bytes!("../../../fixtures/keys/bot-2048.pkcs1.pem");
    const PKCS8_4096: &[u8] = include_bytes!("../../../fixtures/keys/bot-4096.pkcs8.pem");
    const WEAK: &[u8] = include_bytes!("../../../fixtures/keys/weak-1024.pkcs8.pem");

    #[test]
    fn loads_both_formats_into_the_same_signatures() {
        let a = AwsLcSigner::from_pem(PKCS8).unwrap();
        let b = AwsLcSigner::from_pem(PKCS1).unwrap();
        assert_eq!((a.bits(), a.format(), b.format()), (2048, KeyFormat::Pkcs8, KeyFormat::Pkcs1));
        let signature = a.sign_rs512(b"m").unwrap();
        assert_eq!(signature.len(), 256);
        assert_eq!(signature, b.sign_rs512(b"m").unwrap());
        assert_ne!(signature, a.sign_rs512(b"n").unwrap());
        assert_eq!(AwsLcSigner::from_pem(PKCS8_4096).unwrap().sign_rs512(b"m").unwrap().len(), 512);
    }

    #[test]
    fn small_keys_report_their_size_in_both_formats() {
        assert_eq!(AwsLcSigner::from_pem(WEAK).err(), Some(KeyError::TooSmall { bits: 1024 }));
        let der = decode_pem(WEAK).unwrap().der;
        let pkcs1 = modulus_bits(KeyFormat::Pkcs8, &der);
        assert_eq!(pkcs1, Some(1024));
        assert_eq!(modulus_bits(KeyFormat::Pkcs1, &decode_pem(PKCS1).unwrap().der), Some(2048));
        assert_eq!(modulus_bits(KeyFormat::Pkcs8, &decode_pem(PKCS8_4096).unwrap().der), Some(4096));
        assert_eq!(modulus_bits(KeyFormat::Pkcs1, b"\x30\x00"), None);
        // SEQUENCE { 0, 0x0100 }: a top byte without its high bit counts only its significant bits.
        assert_eq!(modulus_bits(KeyFormat::Pkcs1, b"\x30\x07\x02\x01\x00\x02\x02\x01\x00"), Some(9));
    }

    /// A key of full size that AWS-LC refuses (its CRT coefficient altered) is malformed, not "too small".
    #[test]
    fn a_full_size_key_that_aws_lc_refuses_is_malformed() {
        use base64::Engine as _;
        let mut der = decode_pem(PKCS1).unwrap().der.to_vec();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let body = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
        let pem = format!("-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----\n", lines.join("\n"));
        assert_eq!(modulus_bits(KeyFormat::Pkcs1, &der), Some(2048));
        let error = AwsLcSigner::from_pem(pem.as_bytes()).err().unwrap();
        assert!(
            matches!(&error, KeyError::Malformed { format: "PKCS#1", reason } if reason.starts_with("rejected by aws-lc")),
            "{error:?}"
        );
    }

    #[test]
    fn bad_der_is_malformed_and_the_key_never_shows() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nMBMCAQAwDQYJKoZIhvcNAQEBBQA=\n-----END PRIVATE KEY-----\n";
        let error = AwsLcSigner::from_pem(pem).err().unwrap();
        assert!(matches!(error, KeyError::Malformed { format: "PKCS#8", .. }), "{error:?}");
        let pem = b"-----BEGIN RSA PRIVATE KEY-----\nMAMCAQA=\n-----END RSA PRIVATE KEY-----\n";
        let error = AwsLcSigner::from_pem(pem).err().unwrap();
        assert!(matches!(error, KeyError::Malformed { format: "PKCS#1", .. }), "{error:?}");
        assert_eq!(
            AwsLcSigner::from_pem(include_bytes!("../../../fixtures/keys/ec-p256.pkcs8.pem")).err(),
            Some(KeyError::NotRsa)
        );
        let signer = AwsLcSigner::from_pem(PKCS8).unwrap();
        let shown = format!("{signer:?}");
        assert_eq!(shown, "AwsLcSigner { bits: 2048, format: Pkcs8, .. }");
        let body: String = std::str::from_utf8(PKCS8).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
        for window in body.as_bytes().windows(16) {
            assert!(!shown.contains(std::str::from_utf8(window).unwrap()));
        }
    }
}
