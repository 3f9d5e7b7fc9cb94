//! The rustls client configuration every driver uses: the ring provider (never a process-global one), TLS 1.2 and
//! 1.3, the Mozilla roots plus the operating system's and the extra roots, the client certificate for mutual TLS,
//! and ALPN `http/1.1`. rustls is itself sans-IO, so this is pure; the operating system's store is read by the
//! driver and passed in.

use std::sync::{Arc, OnceLock};

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
    /// [`tls_config`](Self::tls_config) for an extension app's client, which presents the app's certificate when
    /// the app logs in by certificate (E2, E4).
    ///
    /// # Errors
    /// [`BotError::Config`] ([`ConfigError::MissingCredentials`](crate::ConfigError::MissingCredentials)) for a
    /// certificate app without a client identity; as [`tls_config`](Self::tls_config).
    pub fn extension_app_tls_config(
        &self,
        app: &crate::ExtensionApp,
        platform: impl FnOnce() -> CertificateResult,
    ) -> Result<Arc<ClientConfig>, BotError> {
        if app.uses_client_certificate() && self.identity.is_none() {
            return Err(BotError::Config(crate::ConfigError::MissingCredentials));
        }
        self.tls_config(platform)
    }

    /// The rustls configuration of these settings. `platform` reads the operating system's store (drivers pass
    /// `rustls_native_certs::load_native_certs`); it is called only when
    /// [`platform_roots`](Self::platform_roots) is set.
    ///
    /// # Errors
    /// [`BotError::Tls`] for an unusable root certificate or client key, or an operating system store that cannot
    /// be read at all (no certificate and errors reported; when some load, the errors of the others are ignored).
    ///
    /// With the default trust (Mozilla roots only) and no client certificate, every call returns the same
    /// configuration, built once per process: its root store and session cache are about 20 KiB that each bot of
    /// a fleet would otherwise hold, and nothing in them differs between such bots.
    pub fn tls_config(&self, platform: impl FnOnce() -> CertificateResult) -> Result<Arc<ClientConfig>, BotError> {
        static SHARED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        let shareable = self.identity.is_none() && self.extra_roots.is_empty() && !self.platform_roots;
        if let (true, Some(shared)) = (shareable, SHARED.get()) {
            return Ok(Arc::clone(shared));
        }
        let roots = self.root_store(platform)?;
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
        let config = Arc::new(config);
        if shareable {
            return Ok(Arc::clone(SHARED.get_or_init(|| config)));
        }
        Ok(config)
    }

    /// The Mozilla roots, plus the operating system's when asked (those rustls cannot parse are skipped), plus the
    /// extra roots.
    fn root_store(&self, platform: impl FnOnce() -> CertificateResult) -> Result<RootCertStore, BotError> {
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
        Ok(roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;
    use crate::driver::{BotBuilder, Driver};

    /// A driver that hands back the settings, to look at what the builder made.
    struct Options;

    impl Driver for Options {
        type Bot = ClientOptions;
        fn build(_: Config, options: ClientOptions) -> Result<ClientOptions, BotError> {
            Ok(options)
        }
    }

    #[derive(Debug)]
    struct NoSigner;

    impl crate::JwtSigner for NoSigner {
        fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, crate::SignError> {
            Err(crate::SignError("not used".into()))
        }
    }

    fn options(platform_roots: bool, extra: Option<&[u8]>) -> ClientOptions {
        let endpoints = crate::Endpoints::single("https://pod.example").unwrap();
        let config = Config::rsa(endpoints, "bot", Arc::new(NoSigner)).unwrap();
        let builder = BotBuilder::<Options>::new(config);
        let mut options = match extra {
            Some(pem) => builder.extra_root_certificates_pem(pem).unwrap(),
            None => builder,
        }
        .build()
        .unwrap_or_else(|_| panic!("the builder refused the settings"));
        options.platform_roots = platform_roots;
        options
    }

    fn no_platform() -> CertificateResult {
        panic!("the platform store is read only when asked for")
    }

    #[test]
    fn a_certificate_extension_app_needs_a_client_identity() {
        let app = |credential| {
            let app_id = crate::AppId::new("my-app").unwrap();
            crate::ExtensionApp::new(crate::Endpoints::single("https://pod.example").unwrap(), app_id, credential)
        };
        let options = ClientOptions::new();
        let refused = options.extension_app_tls_config(&app(crate::AppCredential::Certificate), no_platform);
        assert!(matches!(refused, Err(BotError::Config(crate::ConfigError::MissingCredentials))), "{refused:?}");
        #[derive(Debug)]
        struct Constant;
        impl crate::JwtSigner for Constant {
            fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, crate::SignError> {
                Ok(vec![0; 4])
            }
        }
        let signer: Arc<dyn crate::JwtSigner> = Arc::new(Constant);
        assert!(options.extension_app_tls_config(&app(crate::AppCredential::Rsa(signer)), no_platform).is_ok());
    }

    #[test]
    fn the_default_configuration_is_shared_and_no_other() {
        let default = options(false, None).tls_config(no_platform).unwrap();
        assert!(Arc::ptr_eq(&default, &options(false, None).tls_config(no_platform).unwrap()));
        let server = symphony_auth_testkit::FakePodServer::start(symphony_auth_testkit::FakePod::new()).unwrap();
        let extra = options(false, Some(server.ca_pem().as_bytes()));
        let own = extra.tls_config(no_platform).unwrap();
        assert!(!Arc::ptr_eq(&default, &own));
        assert!(!Arc::ptr_eq(&own, &extra.tls_config(no_platform).unwrap()), "a configuration of its own each time");
        let platform = options(true, None).tls_config(CertificateResult::default).unwrap();
        assert!(!Arc::ptr_eq(&default, &platform));
    }

    #[test]
    fn extra_roots_are_added_to_the_mozilla_roots() {
        let server = symphony_auth_testkit::FakePodServer::start(symphony_auth_testkit::FakePod::new()).unwrap();
        let builtin = webpki_roots::TLS_SERVER_ROOTS.len();
        assert!(builtin > 100);
        assert_eq!(options(false, None).root_store(no_platform).unwrap().len(), builtin);
        let with_extra = options(false, Some(server.ca_pem().as_bytes()));
        assert_eq!(with_extra.extra_roots.len(), 1);
        assert_eq!(with_extra.root_store(no_platform).unwrap().len(), builtin + 1);
    }

    #[test]
    fn platform_roots_are_added_and_unparsable_ones_skipped() {
        let builtin = webpki_roots::TLS_SERVER_ROOTS.len();
        let mut loaded = CertificateResult::default();
        loaded.certs.push(CertificateDer::from(b"not a certificate".to_vec()));
        let with_garbage = options(true, None).root_store(|| loaded).unwrap();
        assert_eq!(with_garbage.len(), builtin);
        // Debian and most Linux systems have `/etc/ssl/certs`.
        let platform = options(true, None).root_store(rustls_native_certs::load_native_certs).unwrap();
        assert!(platform.len() > builtin, "{} roots with the platform's, {builtin} without", platform.len());
    }

    #[test]
    fn an_unreadable_platform_store_is_an_error() {
        let mut loaded = CertificateResult::default();
        loaded.errors.push(rustls_native_certs::Error {
            context: "failed to read PEM from file",
            kind: rustls_native_certs::ErrorKind::Os(std::io::Error::other("denied").into()),
        });
        assert!(matches!(options(true, None).root_store(|| loaded), Err(BotError::Tls(_))));
    }

    #[test]
    fn pem_without_certificates_is_an_error() {
        assert!(matches!(parse_certificates(b""), Err(BotError::Tls(_))));
        let key = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
        assert!(matches!(parse_certificates(key), Err(BotError::Tls(_))));
    }
}
