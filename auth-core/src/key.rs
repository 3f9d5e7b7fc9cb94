//! Private keys from PEM bytes: PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`), chosen by label,
//! and the signers built on them. The PEM comes in as bytes: the core reads no files.

// Without a signer feature only the key-format vocabulary is used.
#![cfg_attr(not(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer")), allow(dead_code))]

use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::pem::{PemError, displayable_label, pem_blocks};

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The two unencrypted encodings of an RSA private key that pods' users hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFormat {
    /// `-----BEGIN PRIVATE KEY-----`.
    Pkcs8,
    /// `-----BEGIN RSA PRIVATE KEY-----`.
    Pkcs1,
}

impl KeyFormat {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pkcs8 => "PKCS#8",
            Self::Pkcs1 => "PKCS#1",
        }
    }
}

/// A private key's DER bytes, wiped on drop.
pub(crate) struct KeyDer {
    pub(crate) format: KeyFormat,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// DER of the rsaEncryption algorithm identifier (OID 1.2.840.113549.1.1.1), found near the start of an RSA
/// PKCS#8 key.
const RSA_ENCRYPTION_OID: [u8; 11] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];

/// Decodes the first private-key PEM block of `pem` (or the first block, when none is labelled as a private key),
/// choosing the format by its label.
pub(crate) fn decode_pem(pem: &[u8]) -> Result<KeyDer, KeyError> {
    let blocks = pem_blocks(pem).map_err(|e| match e {
        PemError::NoBlock => KeyError::NotPem,
        // Only legacy OpenSSL encryption writes `Proc-Type:`/`DEK-Info:` headers into a key block.
        PemError::Headers { .. } => KeyError::Encrypted,
        other => KeyError::Malformed { format: "PEM", reason: other.to_string() },
    })?;
    let mut blocks = blocks.into_iter();
    let mut first = None;
    let block = loop {
        match blocks.next() {
            Some(block) if block.label.ends_with("PRIVATE KEY") => break block,
            Some(block) => {
                first.get_or_insert(block);
            }
            None => break first.ok_or(KeyError::NotPem)?,
        }
    };
    let format = match block.label.as_str() {
        "PRIVATE KEY" => KeyFormat::Pkcs8,
        "RSA PRIVATE KEY" => KeyFormat::Pkcs1,
        "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
        other => return Err(KeyError::UnsupportedLabel(displayable_label(other).unwrap_or_default().to_owned())),
    };
    let der = block.der;
    if format == KeyFormat::Pkcs8 && !der[..der.len().min(64)].windows(11).any(|w| w == RSA_ENCRYPTION_OID) {
        return Err(KeyError::NotRsa);
    }
    Ok(KeyDer { format, der })
}

fn check_size(bits: usize) -> Result<(), KeyError> {
    if bits < MIN_RSA_BITS { Err(KeyError::TooSmall { bits }) } else { Ok(()) }
}

#[cfg(feature = "rsa-signer")]
mod rsa_signer {
    use std::fmt;

    use rsa::pkcs1::DecodeRsaPrivateKey as _;
    use rsa::pkcs1v15::SigningKey;
    use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding};
    use rsa::sha2::Sha512;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    use rsa::traits::PublicKeyParts as _;

    use super::{KeyFormat, check_size, decode_pem};
    use crate::error::{KeyError, SignError};
    use crate::signer::JwtSigner;

    /// The default signer, over the pure-Rust `rsa` crate (constant-time arithmetic, blinded signing).
    pub struct RsaSigner {
        key: SigningKey<Sha512>,
        bits: usize,
        format: KeyFormat,
    }

    impl RsaSigner {
        /// Loads an unencrypted PKCS#8 or PKCS#1 PEM key of at least 2048 bits.
        pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
            let decoded = decode_pem(pem)?;
            let malformed =
                |e: &dyn fmt::Display| KeyError::Malformed { format: decoded.format.name(), reason: e.to_string() };
            let key = match decoded.format {
                KeyFormat::Pkcs8 => rsa::PrivateKey::from_pkcs8_der(&decoded.der).map_err(|e| malformed(&e))?,
                KeyFormat::Pkcs1 => rsa::PrivateKey::from_pkcs1_der(&decoded.der).map_err(|e| malformed(&e))?,
            };
            let bits = key.size() * 8;
            check_size(bits)?;
            Ok(Self { key: SigningKey::new(key), bits, format: decoded.format })
        }

        /// The modulus size in bits.
        #[must_use]
        pub fn bits(&self) -> usize {
            self.bits
        }

        /// The encoding the key was loaded from.
        #[must_use]
        pub fn format(&self) -> KeyFormat {
            self.format
        }

        /// The public key as SPKI PEM (`BEGIN PUBLIC KEY`), the form a pod administrator uploads.
        #[must_use]
        pub fn public_key_pem(&self) -> String {
            let public = self.key.as_ref().to_public_key();
            public.to_public_key_pem(LineEnding::LF).unwrap_or_default()
        }
    }

    impl JwtSigner for RsaSigner {
        fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
            let signature = self.key.try_sign(message).map_err(|e| SignError(e.to_string()))?;
            Ok(signature.to_vec())
        }
    }

    impl fmt::Debug for RsaSigner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RsaSigner").field("bits", &self.bits).field("format", &self.format).finish_non_exhaustive()
        }
    }
}

#[cfg(feature = "rsa-signer")]
pub use rsa_signer::RsaSigner;

#[cfg(feature = "ring-signer")]
mod ring_signer {
    use std::fmt;

    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA512, RsaKeyPair};

    use super::{KeyFormat, check_size, decode_pem};
    use crate::error::{KeyError, SignError};
    use crate::signer::JwtSigner;

    /// A signer over `ring`: faster, and a deployment that uses it can drop the `rsa` crate. Produces the same
    /// JWTs as [`RsaSigner`](crate::RsaSigner).
    pub struct RingSigner {
        key: RsaKeyPair,
        rng: SystemRandom,
        format: KeyFormat,
    }

    impl RingSigner {
        /// Loads an unencrypted PKCS#8 or PKCS#1 PEM key of at least 2048 bits.
        pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
            let decoded = decode_pem(pem)?;
            let key = match decoded.format {
                KeyFormat::Pkcs8 => RsaKeyPair::from_pkcs8(&decoded.der),
                KeyFormat::Pkcs1 => RsaKeyPair::from_der(&decoded.der),
            }
            .map_err(|e| KeyError::Malformed {
                format: decoded.format.name(),
                reason: format!("rejected by ring: {e}"),
            })?;
            check_size(key.public().modulus_len() * 8)?;
            Ok(Self { key, rng: SystemRandom::new(), format: decoded.format })
        }

        /// The modulus size in bits.
        #[must_use]
        pub fn bits(&self) -> usize {
            self.key.public().modulus_len() * 8
        }
    }

    impl JwtSigner for RingSigner {
        fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
            let mut signature = vec![0; self.key.public().modulus_len()];
            self.key
                .sign(&RSA_PKCS1_SHA512, &self.rng, message, &mut signature)
                .map_err(|_| SignError("ring could not sign".into()))?;
            Ok(signature)
        }
    }

    impl fmt::Debug for RingSigner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RingSigner")
                .field("bits", &self.bits())
                .field("format", &self.format)
                .finish_non_exhaustive()
        }
    }
}

#[cfg(feature = "ring-signer")]
pub use ring_signer::RingSigner;

#[cfg(feature = "aws-lc-signer")]
mod aws_lc_signer;
#[cfg(feature = "aws-lc-signer")]
pub use aws_lc_signer::AwsLcSigner;

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS8: &str = include_str!("../../fixtures/keys/bot-2048.pkcs8.pem");
    const PKCS1: &str = include_str!("../../fixtures/keys/bot-2048.pkcs1.pem");

    #[test]
    fn labels_choose_the_format() {
        assert_eq!(decode_pem(PKCS8.as_bytes()).unwrap().format, KeyFormat::Pkcs8);
        assert_eq!(decode_pem(PKCS1.as_bytes()).unwrap().format, KeyFormat::Pkcs1);
    }

    #[test]
    fn escaped_newlines_from_environment_variables_are_accepted() {
        let escaped = PKCS8.trim_end().replace('\n', "\\n");
        assert!(!escaped.contains('\n'));
        assert_eq!(*decode_pem(escaped.as_bytes()).unwrap().der, *decode_pem(PKCS8.as_bytes()).unwrap().der);
    }

    #[test]
    fn unusable_pem_gets_a_named_error() {
        let err = |pem: &str| decode_pem(pem.as_bytes()).err();
        assert_eq!(err("hello"), Some(KeyError::NotPem));
        assert_eq!(
            err("-----BEGIN SOMETHING ELSE-----\nAAAA\n-----END SOMETHING ELSE-----\n"),
            Some(KeyError::UnsupportedLabel("SOMETHING ELSE".into()))
        );
        assert_eq!(err(include_str!("../../fixtures/keys/bot-2048.encrypted.pem")), Some(KeyError::Encrypted));
        assert_eq!(
            err(
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            ),
            Some(KeyError::Encrypted)
        );
        assert_eq!(err(include_str!("../../fixtures/keys/ec-p256.pkcs8.pem")), Some(KeyError::NotRsa));
        assert!(matches!(
            err("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
            Some(KeyError::Malformed { format: "PEM", .. })
        ));
        assert!(matches!(err("-----BEGIN PRIVATE KEY-----\nAAAA\n"), Some(KeyError::Malformed { format: "PEM", .. })));
        assert_eq!(
            err(
                "-----BEGIN MIIEVQIBADANBGKQHKIG9W0BAQEFAASC-----\nAAAA\n-----END MIIEVQIBADANBGKQHKIG9W0BAQEFAASC-----\n"
            ),
            Some(KeyError::UnsupportedLabel(String::new()))
        );
        let cert_then_key = format!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n{PKCS8}");
        assert_eq!(decode_pem(cert_then_key.as_bytes()).unwrap().format, KeyFormat::Pkcs8);
    }

    #[test]
    fn a_begin_line_without_its_dashes_names_the_problem_and_not_the_key() {
        let broken = PKCS8.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1);
        let error = decode_pem(broken.as_bytes()).err().unwrap();
        assert!(matches!(error, KeyError::Malformed { format: "PEM", .. }), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(shown.contains("`-----BEGIN` line is malformed"), "{shown}");
        let body: String = PKCS8.lines().filter(|l| !l.starts_with("-----")).collect();
        for window in body.as_bytes().windows(16) {
            assert!(!shown.contains(std::str::from_utf8(window).unwrap()), "{shown}");
        }
    }

    #[cfg(feature = "rsa-signer")]
    #[test]
    fn der_that_is_not_a_key_is_malformed_pkcs8() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMBMCAQAwDQYJKoZIhvcNAQEBBQA=\n-----END PRIVATE KEY-----\n";
        let error = RsaSigner::from_pem(pem.as_bytes()).err().unwrap();
        assert!(matches!(error, KeyError::Malformed { format: "PKCS#8", .. }), "{error:?}");
    }

    #[cfg(feature = "rsa-signer")]
    #[test]
    fn rsa_signer_loads_both_formats_and_refuses_small_keys() {
        let a = RsaSigner::from_pem(PKCS8.as_bytes()).unwrap();
        let b = RsaSigner::from_pem(PKCS1.as_bytes()).unwrap();
        assert_eq!(a.bits(), 2048);
        assert_eq!(a.public_key_pem(), include_str!("../../fixtures/keys/bot-2048.pub.pem"));
        use crate::signer::JwtSigner as _;
        assert_eq!(a.sign_rs512(b"m").unwrap(), b.sign_rs512(b"m").unwrap());
        assert_eq!(
            RsaSigner::from_pem(include_bytes!("../../fixtures/keys/weak-1024.pkcs8.pem")).err(),
            Some(KeyError::TooSmall { bits: 1024 })
        );
        assert!(!format!("{a:?}").contains("MII"));
    }
}
