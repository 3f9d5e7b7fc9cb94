//! The fake's PKI, made at start: a CA, a server certificate for `127.0.0.1` and `localhost`,
//! client certificates by CN, and reading the CN back out of a verified client certificate.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_RSA_SHA256, SerialNumber,
};
use ring::rand::{SecureRandom as _, SystemRandom};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::TestkitError;

/// The keys of the fake's CA, server and client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PkiKeys {
    /// RSA, as pods require of bots: a 4096-bit CA and 4096-bit client certificates (and a 2048-bit server
    /// certificate). The keys are fixed, public, test-only fixtures (ring cannot generate RSA keys); each start
    /// still makes a CA of its own name, so one fake's certificates are not trusted by another.
    #[default]
    Rsa4096,
    /// ECDSA P-256 keys, generated at start.
    EcdsaP256,
}

/// Test-only RSA keys (see `keys/README.md`): public, and trusted nowhere.
const CA_RSA_KEY: &str = include_str!("keys/ca-rsa4096.pkcs8.pem");
const SERVER_RSA_KEY: &str = include_str!("keys/server-rsa2048.pkcs8.pem");
const CLIENT_RSA_KEY: &str = include_str!("keys/client-rsa4096.pkcs8.pem");

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
    keys: PkiKeys,
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
    /// A fresh CA and server certificate with `keys`.
    pub(crate) fn generate(keys: PkiKeys) -> Result<Self, TestkitError> {
        // A name of its own per CA: with fixed RSA keys, a shared name would let one fake's CA vouch for another's
        // certificates (chains are built by name).
        let ca_name = format!("symphony-auth-testkit fake pod CA {}", hex(&random_bytes::<8>()?));
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.serial_number = Some(serial()?);
        let ca_key = key_pair(keys, CA_RSA_KEY)?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        server_params.distinguished_name.push(DnType::CommonName, "fake-pod");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        server_params.serial_number = Some(serial()?);
        let server_key = key_pair(keys, SERVER_RSA_KEY)?;
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        Ok(Pki {
            keys,
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
        // The RSA client key is shared, so the serial cannot derive from the key as rcgen's default does.
        params.serial_number = Some(serial()?);
        let key = key_pair(self.keys, CLIENT_RSA_KEY)?;
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

/// The fixed RSA key `rsa_pem` or a new ECDSA P-256 key.
fn key_pair(keys: PkiKeys, rsa_pem: &str) -> Result<KeyPair, TestkitError> {
    Ok(match keys {
        PkiKeys::Rsa4096 => KeyPair::from_pkcs8_pem_and_sign_algo(rsa_pem, &PKCS_RSA_SHA256)?,
        PkiKeys::EcdsaP256 => KeyPair::generate()?,
    })
}

fn random_bytes<const N: usize>() -> Result<[u8; N], TestkitError> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| TestkitError::Certificate(rcgen::Error::RingUnspecified))?;
    Ok(bytes)
}

/// A random, positive 16-byte serial number (RFC 5280 allows up to 20).
fn serial() -> Result<SerialNumber, TestkitError> {
    let mut bytes = random_bytes::<16>()?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        let pki = Pki::generate(PkiKeys::EcdsaP256).unwrap();
        let id = pki.client_identity("bot.user@acme").unwrap();
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(id.cert_pem().as_bytes());
        let der: CertificateDer<'static> = der.unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("bot.user@acme"));
        assert_eq!(common_name(&pki.server_chain()[0]).as_deref(), Some("fake-pod"));
        assert_eq!(common_name(&[0x30, 0x03, 0x02, 0x01]), None);
        assert!(!format!("{id:?}").contains("PRIVATE KEY"));
        assert!(id.bundle_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    }

    /// The PKCS#1 public key of a fixture: what a certificate carrying that key embeds.
    fn public_key_der(pkcs8_pem: &str) -> (Vec<u8>, usize) {
        use rsa::pkcs1::EncodeRsaPublicKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let key = rsa::PrivateKey::from_pkcs8_pem(pkcs8_pem).unwrap().to_public_key();
        (key.to_pkcs1_der().unwrap().as_bytes().to_vec(), key.n_bits_precision() as usize)
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn the_default_pki_is_rsa_4096_with_a_ca_of_its_own() {
        let pki = Pki::generate(PkiKeys::default()).unwrap();
        let (ca_key, ca_bits) = public_key_der(CA_RSA_KEY);
        let (client_key, client_bits) = public_key_der(CLIENT_RSA_KEY);
        let (server_key, server_bits) = public_key_der(SERVER_RSA_KEY);
        assert_eq!((ca_bits, client_bits, server_bits), (4096, 4096, 2048));
        assert!(contains(&pki.ca_der(), &ca_key), "the CA certificate carries the 4096-bit CA key");
        assert!(contains(&pki.server_chain()[0], &server_key));
        let id = pki.client_identity("bot").unwrap();
        assert_eq!(id.key_pem(), CLIENT_RSA_KEY.replace("\r\n", "\n"));
        let cert: CertificateDer<'static> =
            rustls_pki_types::pem::PemObject::from_pem_slice(id.cert_pem().as_bytes()).unwrap();
        assert!(contains(&cert, &client_key), "the client certificate carries the 4096-bit client key");

        // Two fakes share the fixed keys, never a CA: their CAs' names differ, so neither vouches for the other.
        let other = Pki::generate(PkiKeys::default()).unwrap();
        assert_ne!(common_name(&pki.ca_der()), common_name(&other.ca_der()));
        assert!(common_name(&pki.ca_der()).unwrap().starts_with("symphony-auth-testkit fake pod CA "));
        // Each certificate has a serial of its own although the client key is shared.
        let again = pki.client_identity("bot").unwrap();
        assert_ne!(id.cert_pem(), again.cert_pem());

        let ecdsa = Pki::generate(PkiKeys::EcdsaP256).unwrap();
        assert!(!contains(&ecdsa.ca_der(), &ca_key));
        assert!(ecdsa.client_identity("bot").unwrap().key_pem() != id.key_pem());
    }
}
