//! The bot's TLS client identity for certificate logins, from PEM or PKCS#12 bytes, handed to a driver's TLS
//! stack as DER. Parsing only: files are read by the drivers.

use std::fmt;

use zeroize::Zeroizing;

use crate::pem::{PemError, pem_blocks};

/// How the private key of a [`ClientIdentity`] is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityKeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`, and every PKCS#12 key).
    Pkcs8,
    /// PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1,
    /// SEC 1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1,
}

/// A client identity cannot be read. Never holds key material or the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// No certificate was found.
    #[error("no certificate found: the client identity needs `-----BEGIN CERTIFICATE-----` blocks (or a PKCS#12 file)")]
    NoCertificate,
    /// No private key was found.
    #[error(
        "no private key found beside the certificate: expected `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` or `BEGIN EC PRIVATE KEY`"
    )]
    NoPrivateKey,
    /// The private key is encrypted.
    #[error("the client key is encrypted; give it unencrypted, or use a PKCS#12 file with its password")]
    Encrypted,
    /// The PEM is malformed. The description names the block and what is wrong with it, never its text.
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    /// The PKCS#12 file cannot be opened (wrong password, corrupt, unsupported algorithm).
    #[error("cannot open the PKCS#12 file (wrong password, or a corrupt or unsupported file): {0}")]
    Pkcs12(String),
}

/// A certificate chain (leaf first) and its private key, in DER.
#[derive(Clone)]
pub struct ClientIdentity {
    chain: Vec<Vec<u8>>,
    key: Zeroizing<Vec<u8>>,
    key_format: IdentityKeyFormat,
}

impl ClientIdentity {
    /// Reads certificates and one private key from PEM (one buffer holding both, as BDK-Python's
    /// `bot.certificate.path` does, or the concatenation of a certificate file and a key file).
    pub fn from_pem(pem: &[u8]) -> Result<Self, IdentityError> {
        let blocks = pem_blocks(pem).map_err(|e| match e {
            PemError::NoBlock => IdentityError::NoCertificate,
            // Only legacy OpenSSL encryption writes `Proc-Type:`/`DEK-Info:` headers into a PEM block.
            PemError::Headers { .. } => IdentityError::Encrypted,
            other => IdentityError::MalformedPem(other.to_string()),
        })?;
        let mut chain = Vec::new();
        let mut key = None;
        for block in blocks {
            let format = match block.label.as_str() {
                "CERTIFICATE" => None,
                "PRIVATE KEY" => Some(IdentityKeyFormat::Pkcs8),
                "RSA PRIVATE KEY" => Some(IdentityKeyFormat::Pkcs1),
                "EC PRIVATE KEY" => Some(IdentityKeyFormat::Sec1),
                "ENCRYPTED PRIVATE KEY" => return Err(IdentityError::Encrypted),
                _ => continue,
            };
            match format {
                None => chain.push(block.der.to_vec()),
                Some(format) if key.is_none() => key = Some((block.der, format)),
                Some(_) => return Err(IdentityError::MalformedPem("more than one private key".into())),
            }
        }
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        let (key, key_format) = key.ok_or(IdentityError::NoPrivateKey)?;
        Ok(Self { chain, key, key_format })
    }

    /// Reads a PKCS#12 (`.p12`, `.pfx`) file, as BDK-Java's `bot.certificate.path` + `.password` give it.
    #[cfg(feature = "client-identity")]
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self, IdentityError> {
        use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
        let store = KeyStore::from_pkcs12(der, password, Pkcs12ImportPolicy::Relaxed)
            .map_err(|e| IdentityError::Pkcs12(e.to_string()))?;
        let (_alias, chain) = store.private_key_chain().ok_or(IdentityError::NoPrivateKey)?;
        let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        if certs.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        Ok(Self {
            chain: certs,
            key: Zeroizing::new(chain.key().as_der().to_vec()),
            key_format: IdentityKeyFormat::Pkcs8,
        })
    }

    /// The certificates, leaf first, DER.
    #[must_use]
    pub fn certificate_chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The private key, DER. Never log it.
    #[must_use]
    pub fn private_key_der(&self) -> &[u8] {
        &self.key
    }

    /// How [`private_key_der`](Self::private_key_der) is encoded.
    #[must_use]
    pub fn private_key_format(&self) -> IdentityKeyFormat {
        self.key_format
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("certificates", &self.chain.len())
            .field("key_format", &self.key_format)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../fixtures/keys/bot-2048.pkcs8.pem");
    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n";

    #[test]
    fn reads_certificate_and_key_in_either_order() {
        for pem in [format!("{CERT}{KEY}"), format!("{KEY}{CERT}")] {
            let identity = ClientIdentity::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(identity.certificate_chain_der(), [vec![0, 1, 2, 3]]);
            assert_eq!(identity.private_key_format(), IdentityKeyFormat::Pkcs8);
            assert!(!format!("{identity:?}").contains("MII"));
        }
    }

    #[test]
    fn missing_or_encrypted_parts_are_named() {
        assert_eq!(ClientIdentity::from_pem(KEY.as_bytes()).err(), Some(IdentityError::NoCertificate));
        assert_eq!(ClientIdentity::from_pem(CERT.as_bytes()).err(), Some(IdentityError::NoPrivateKey));
        assert_eq!(ClientIdentity::from_pem(b"nothing").err(), Some(IdentityError::NoCertificate));
        let encrypted = format!("{CERT}{}", include_str!("../../fixtures/keys/bot-2048.encrypted.pem"));
        assert_eq!(ClientIdentity::from_pem(encrypted.as_bytes()).err(), Some(IdentityError::Encrypted));
    }

    #[cfg(feature = "client-identity")]
    #[test]
    fn pkcs12_files_give_the_same_identity_as_their_pem() {
        let pem = ClientIdentity::from_pem(include_bytes!("../../fixtures/certs/bot.pem")).unwrap();
        for p12 in
            [&include_bytes!("../../fixtures/certs/bot.p12")[..], include_bytes!("../../fixtures/certs/bot-legacy.p12")]
        {
            let identity = ClientIdentity::from_pkcs12(p12, "changeit").unwrap();
            assert_eq!(identity.certificate_chain_der(), pem.certificate_chain_der());
            assert_eq!(identity.private_key_der(), pem.private_key_der());
            assert_eq!(identity.private_key_format(), IdentityKeyFormat::Pkcs8);
            let wrong = ClientIdentity::from_pkcs12(p12, "wrong").unwrap_err();
            assert!(matches!(wrong, IdentityError::Pkcs12(_)), "{wrong}");
            assert!(!wrong.to_string().contains("changeit"));
        }
    }

    #[cfg(feature = "client-identity")]
    #[test]
    fn pkcs12_garbage_is_a_clear_error() {
        assert!(matches!(ClientIdentity::from_pkcs12(b"not a p12", "pw"), Err(IdentityError::Pkcs12(_))));
    }
}
