//! TLS for the bot's HTTP client: one `rustls::ClientConfig` built here (ring provider, Mozilla roots, optionally
//! the operating system's roots, plus any extra roots, the client certificate for mutual TLS) and plugged into
//! ureq as a connector.
//!
//! Why a connector rather than ureq's `TlsConfig`: ureq takes root certificates as DER certificates, and the
//! built-in Mozilla set (`webpki-roots`) exists only as trust anchors, so `RootCerts::Specific` can add roots only
//! by *replacing* the Mozilla set. A `RootCertStore` holds both. Building the `ClientConfig` here also fixes the
//! crypto provider to ring whatever a process installed globally, and turns a bad client key into an error at
//! build time (ureq would panic on first use).

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer, ServerName,
};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use symphony_auth_core::{ClientIdentity, IdentityKeyFormat};

use crate::Error;

/// Parses every `CERTIFICATE` block of `pem`.
pub(crate) fn parse_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("cannot read the root certificates PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls("no `-----BEGIN CERTIFICATE-----` block in the root certificates PEM".into()));
    }
    Ok(certs)
}

/// The certificates of the operating system's trust store, read now (`rustls-native-certs`: the files of
/// `/etc/ssl/certs` and the like on Linux, or those named by `SSL_CERT_FILE` / `SSL_CERT_DIR`; the keychain on
/// macOS; the system store on Windows).
///
/// An error only when the store cannot be read at all (no certificate and errors reported); when some
/// certificates load, the errors of the others are ignored.
pub(crate) fn platform_certificates() -> Result<Vec<CertificateDer<'static>>, Error> {
    let loaded = rustls_native_certs::load_native_certs();
    if loaded.certs.is_empty() && !loaded.errors.is_empty() {
        let errors = loaded.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        return Err(Error::Tls(format!("cannot read the operating system's certificate store: {errors}")));
    }
    Ok(loaded.certs)
}

/// The client configuration: ring, TLS 1.2 and 1.3, Mozilla roots, the operating system's roots if
/// `platform_roots`, plus `extra_roots`, the client certificate if given, ALPN `http/1.1`.
pub(crate) fn client_config(
    extra_roots: &[CertificateDer<'static>],
    platform_roots: bool,
    identity: Option<&ClientIdentity>,
) -> Result<Arc<ClientConfig>, Error> {
    let platform = if platform_roots { platform_certificates()? } else { Vec::new() };
    let roots = root_store(&platform, extra_roots)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = identity.certificate_chain_der().iter().map(|der| CertificateDer::from(der.clone())).collect();
            let der = identity.private_key_der().to_vec();
            let key = match identity.private_key_format() {
                IdentityKeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
                IdentityKeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
                // Pkcs8, and any format added later (PKCS#8 is what PKCS#12 yields).
                _ => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            };
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("unusable client certificate or key: {e}")))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The Mozilla roots, plus the `platform` roots (those rustls cannot parse are skipped), plus `extra_roots`.
fn root_store(
    platform: &[CertificateDer<'static>],
    extra_roots: &[CertificateDer<'static>],
) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    // Operating system stores often hold old or malformed certificates: skipped, as rustls intends.
    roots.add_parsable_certificates(platform.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone()).map_err(|e| Error::Tls(format!("unusable root certificate: {e}")))?;
    }
    Ok(roots)
}

/// Wraps the chained transport in TLS with our `ClientConfig` when the scheme is `https`.
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl TlsConnector {
    pub(crate) fn new(config: Arc<ClientConfig>) -> Self {
        Self { config }
    }
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().ok_or_else(|| ureq::Error::BadUri("no host".into()))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = ServerName::try_from(host.to_owned()).map_err(|_| ureq::Error::Tls("invalid TLS server name"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), Arc::clone(&details.current_time));
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock).map_err(from_io)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned::new(conn, sock) })))
    }
}

/// An established TLS connection, as ureq's transport.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").field("chained", &self.stream.sock.inner()).finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output).map_err(from_io)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input).map_err(from_io)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// An I/O error from rustls: a TLS failure (it wraps a `rustls::Error`) becomes `ureq::Error::Rustls`, a ureq
/// error that travelled through `io::Error` (a timeout) is unwrapped, anything else stays `Io`.
fn from_io(error: io::Error) -> ureq::Error {
    if error.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        if let Some(inner) = error.into_inner() {
            return match inner.downcast::<rustls::Error>() {
                Ok(tls) => ureq::Error::Rustls(*tls),
                Err(other) => ureq::Error::Io(io::Error::other(other)),
            };
        }
        return ureq::Error::Tls("TLS error");
    }
    ureq::Error::from(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_are_added_to_the_mozilla_roots() {
        let server = symphony_auth_testkit::FakePodServer::start(symphony_auth_testkit::FakePod::new()).unwrap();
        let extra = parse_certificates(server.ca_pem().as_bytes()).unwrap();
        assert_eq!(extra.len(), 1);
        let builtin = webpki_roots::TLS_SERVER_ROOTS.len();
        assert!(builtin > 100);
        assert_eq!(root_store(&[], &[]).unwrap().len(), builtin);
        assert_eq!(root_store(&[], &extra).unwrap().len(), builtin + 1);
    }

    #[test]
    fn platform_roots_are_added_to_the_mozilla_roots() {
        // Debian and most Linux systems have `/etc/ssl/certs`.
        let platform = platform_certificates().unwrap();
        assert!(!platform.is_empty(), "no certificate in the operating system's store");
        let builtin = webpki_roots::TLS_SERVER_ROOTS.len();
        let with_platform = root_store(&platform, &[]).unwrap().len();
        assert!(with_platform > builtin, "{with_platform} roots with the platform's, {builtin} without");
        // Unparsable certificates are skipped, not an error.
        let garbage = [CertificateDer::from(b"not a certificate".to_vec())];
        assert_eq!(root_store(&garbage, &[]).unwrap().len(), builtin);
        assert!(client_config(&[], true, None).is_ok());
    }

    #[test]
    fn pem_without_certificates_is_an_error() {
        assert!(matches!(parse_certificates(b""), Err(Error::Tls(_))));
        assert!(matches!(
            parse_certificates(include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem")),
            Err(Error::Tls(_))
        ));
    }
}
