//! The fake's PKI, generated at start: a CA, a server certificate for `127.0.0.1` and `localhost`,
//! client certificates by CN, and reading the CN back out of a verified client certificate.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::TestkitError;

/// A client certificate and its key, as PEM, for a certificate bot.
#[derive(Clone)]
pub struct ClientIdentity {
    name: String,
    cert_pem: String,
    key_pem: String,
}

impl ClientIdentity {
    /// The certificate's CN: the bot's username.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client certificate (`BEGIN CERTIFICATE`), signed by the fake's CA.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate's unencrypted PKCS#8 private key (`BEGIN PRIVATE KEY`).
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate followed by its key, the single-file form BDK-Python reads.
    #[must_use]
    pub fn bundle_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// The private key stays out of Debug output.
impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("name", &self.name)
            .field("key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The CA (kept to sign more client certificates on demand) and the server's certificate.
pub(crate) struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki").finish_non_exhaustive()
    }
}

impl Pki {
    /// A fresh CA and server certificate (ECDSA P-256: ring cannot generate RSA keys, and client
    /// code paths do not depend on the algorithm).
    pub(crate) fn generate() -> Result<Self, TestkitError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name.push(DnType::CommonName, "symphony-auth-testkit fake pod CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        server_params.distinguished_name.push(DnType::CommonName, "fake-pod");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server_key = KeyPair::generate()?;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        Ok(Pki {
            issuer,
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
        })
    }

    /// A client certificate with this CN and the ClientAuth usage, signed by the CA.
    pub(crate) fn client_identity(&self, cn: &str) -> Result<ClientIdentity, TestkitError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ClientIdentity { name: cn.to_owned(), cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub(crate) fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    pub(crate) fn server_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.server_der.clone(), self.ca_der.clone()]
    }

    pub(crate) fn server_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key_der.clone()))
    }
}

/// The first subject CN of a DER X.509 certificate (UTF8String, PrintableString or IA5String).
///
/// Only ever given certificates rustls has already verified against the fake's CA, so a minimal
/// DER walk suffices and no X.509 parser is needed.
pub(crate) fn common_name(cert_der: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];
    let (cert, _) = read_tagged(cert_der, SEQUENCE)?;
    let (tbs, _) = read_tagged(cert, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = skip(rest)?; // [0] version
    }
    for _ in 0..4 {
        rest = skip(rest)?; // serial, signature algorithm, issuer, validity
    }
    let (mut rdns, _) = read_tagged(rest, SEQUENCE)?;
    while !rdns.is_empty() {
        let (set, next) = read_tagged(rdns, SET)?;
        rdns = next;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, next) = read_tagged(attributes, SEQUENCE)?;
            attributes = next;
            let (oid, value) = read_tagged(attribute, OID)?;
            if oid == CN_OID {
                let (tag, value, _) = read_any(value)?;
                return match tag {
                    0x0c | 0x13 | 0x16 => String::from_utf8(value.to_vec()).ok(),
                    _ => None,
                };
            }
        }
    }
    None
}

/// One DER TLV: (tag, value, rest). Lengths up to 4 bytes long.
fn read_any(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn read_tagged(input: &[u8], expected: u8) -> Option<(&[u8], &[u8])> {
    let (tag, value, rest) = read_any(input)?;
    (tag == expected).then_some((value, rest))
}

fn skip(input: &[u8]) -> Option<&[u8]> {
    read_any(input).map(|(_, _, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_cn_of_generated_certificates() {
        let pki = Pki::generate().unwrap();
        let id = pki.client_identity("bot.user@acme").unwrap();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(id.cert_pem().as_bytes());
        let der: CertificateDer<'static> = der.unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("bot.user@acme"));
        assert_eq!(common_name(&pki.server_chain()[0]).as_deref(), Some("fake-pod"));
        assert_eq!(common_name(&[0x30, 0x03, 0x02, 0x01]), None);
        assert!(!format!("{id:?}").contains("PRIVATE KEY"));
        assert!(id.bundle_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
