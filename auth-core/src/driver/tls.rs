//! The rustls client configuration every driver uses: the ring provider (never a process-global one), TLS 1.2 and
//! 1.3, the Mozilla roots plus the operating system's and the extra roots, the client certificate for mutual TLS,
//! and ALPN `http/1.1`. rustls is itself sans-IO, so this is pure; the operating system's store is read by the
//! driver and passed in.

use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_native_certs::CertificateResult;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use super::{BotError, ClientOptions};
use crate::identity::IdentityKeyFormat;

/// Parses every `CERTIFICATE` block of `pem`; at least one is required.
///
/// # Errors
/// [`BotError::Tls`] for a malformed block, or none at all.
pub fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, BotError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BotError::Tls(format!("cannot read the root certificates PEM: {e}")))?;
    if certs.is_empty() {
        return Err(BotError::Tls("no `-----BEGIN CERTIFICATE-----` block in the root certificates PEM".into()));
    }
    Ok(certs)
}

impl ClientOptions {
    /// The rustls configuration of these settings. `platform` reads the operating system's store (drivers pass
    /// `rustls_native_certs::load_native_certs`); it is called only when
    /// [`platform_roots`](Self::platform_roots) is set.
    ///
    /// # Errors
    /// [`BotError::Tls`] for an unusable root certificate or client key, or an operating system store that cannot
    /// be read at all (no certificate and errors reported; when some load, the errors of the others are ignored).
    pub fn tls_config(&self, platform: impl FnOnce() -> CertificateResult) -> Result<Arc<ClientConfig>, BotError> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if self.platform_roots {
            let loaded = platform();
            if loaded.certs.is_empty() && !loaded.errors.is_empty() {
                let errors = loaded.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                return Err(BotError::Tls(format!("cannot read the operating system's certificate store: {errors}")));
            }
            // Operating system stores often hold old or malformed certificates: skipped, as rustls intends.
            roots.add_parsable_certificates(loaded.certs);
        }
        for cert in &self.extra_roots {
            roots.add(cert.clone()).map_err(|e| BotError::Tls(format!("unusable root certificate: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BotError::Tls(e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(identity) => {
                let chain =
                    identity.certificate_chain_der().iter().map(|der| CertificateDer::from(der.clone())).collect();
                let der = identity.private_key_der().to_vec();
                let key = match identity.private_key_format() {
                    IdentityKeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
                    IdentityKeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
                    // Pkcs8, and any format added later (PKCS#8 is what PKCS#12 yields).
                    _ => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
                };
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| BotError::Tls(format!("unusable client certificate or key: {e}")))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
