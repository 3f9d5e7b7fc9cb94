//! The HTTP side: one reqwest client per bot over a rustls configuration built here with the ring provider (so
//! reqwest never looks for a process-global provider), requests and responses converted to and from `http`
//! types with a size cap, and reqwest's errors mapped to the core's [`TransportKind`].
//!
//! Logging: of this stack only reqwest could write request or response bytes to the log, and only with
//! `connection_verbose` (TRACE, target `reqwest::connect::verbose`), which [`build_client`] keeps off. hyper is
//! built without its `tracing` feature and logs nothing; hyper-util logs through `tracing` (connections, pool
//! keys, errors) and rustls through `log` (handshake messages, certificates): neither records a header value or a
//! body. The test `tests/trace_logging.rs` holds this with every target at TRACE.
//!
//! Wiping: a request body (a login JWT) is handed to reqwest in a shared buffer that wipes itself once reqwest and
//! hyper drop it, and response bodies are read into buffers that are wiped as they grow. The chunks hyper reads
//! and the buffer it writes requests from are its own and are not wiped.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use symphony_auth_core::{
    ClientIdentity, HttpRequest, HttpResponse, IdentityKeyFormat, TransportFailure, TransportKind,
};
use zeroize::Zeroizing;

use crate::Error;

/// What the HTTP client is built from.
pub(crate) struct ClientSettings<'a> {
    pub(crate) extra_roots: &'a [CertificateDer<'static>],
    /// Also trust the operating system's store, read when the client is built.
    pub(crate) platform_roots: bool,
    pub(crate) identity: Option<&'a ClientIdentity>,
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) proxy: Option<reqwest::Proxy>,
}

/// Reads every `CERTIFICATE` block of `pem`; at least one is required.
pub(crate) fn parse_root_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("cannot read the extra root certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls("no `-----BEGIN CERTIFICATE-----` block in the extra root certificates".into()));
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

/// webpki-roots, plus the `platform` roots (those rustls cannot parse are skipped), plus the extra roots.
fn root_store(
    platform: &[CertificateDer<'static>],
    extra_roots: &[CertificateDer<'static>],
) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Operating system stores often hold old or malformed certificates: skipped, as rustls intends.
    roots.add_parsable_certificates(platform.iter().cloned());
    for cert in extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| Error::Tls(format!("an extra root certificate cannot be used as a trust anchor: {e}")))?;
    }
    Ok(roots)
}

/// The rustls configuration: ring, safe protocol versions, webpki-roots, the operating system's roots when asked,
/// plus the extra roots, and the client certificate when there is one.
fn tls_config(settings: &ClientSettings<'_>) -> Result<ClientConfig, Error> {
    let platform = if settings.platform_roots { platform_certificates()? } else { Vec::new() };
    let roots = root_store(&platform, settings.extra_roots)?;
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let mut config = match settings.identity {
        None => builder.with_no_client_auth(),
        Some(identity) => {
            let chain = identity.certificate_chain_der().iter().map(|der| CertificateDer::from(der.clone())).collect();
            let der = identity.private_key_der().to_vec();
            let key = match identity.private_key_format() {
                IdentityKeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
                IdentityKeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
                // Pkcs8, and any format a later core adds (all of them are PKCS#8 today in PKCS#12 files).
                _ => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
            };
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("the client certificate or its key cannot be used: {e}")))?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The bot's one HTTP client: no redirects, no proxy unless one is given (never from the environment), HTTP/1.1,
/// the given timeouts, statuses never turned into errors (reqwest's default).
pub(crate) fn build_client(settings: ClientSettings<'_>) -> Result<reqwest::Client, Error> {
    let tls = tls_config(&settings)?;
    let builder = reqwest::Client::builder()
        // Verbose connections log every byte read and written at TRACE: tokens and JWTs. Off (the default),
        // stated so that it stays off.
        .connection_verbose(false)
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .http1_only()
        .tcp_nodelay(true);
    let builder = match settings.proxy {
        Some(proxy) => builder.proxy(proxy),
        None => builder.no_proxy(),
    };
    builder.build().map_err(|e| Error::Tls(format!("cannot build the HTTP client: {}", chain(&e))))
}

/// Why an exchange produced no usable response.
pub(crate) enum Failure {
    /// The transport failed.
    Transport(TransportFailure),
    /// The body is larger than the cap (only when the caller asked for an error rather than a truncated body).
    TooLarge(usize),
}

impl From<Failure> for TransportFailure {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Transport(failure) => failure,
            Failure::TooLarge(cap) => {
                TransportFailure::new(TransportKind::Other, format!("response body larger than {cap} bytes"))
            }
        }
    }
}

/// What to do with a body over the cap.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Oversize {
    /// Hand over the first `cap + 1` bytes: the core sees that the body is too large and says so.
    Truncate,
    /// Fail with [`Failure::TooLarge`].
    Fail,
}

/// Sends `request` and reads the answer, whatever its status, reading at most `cap + 1` body bytes.
pub(crate) async fn exchange(
    client: &reqwest::Client,
    request: HttpRequest,
    cap: usize,
    oversize: Oversize,
) -> Result<HttpResponse, Failure> {
    // The body moves (no copy) into a buffer whose owner wipes it when the last reference is dropped.
    let request = request.map(|body| bytes::Bytes::from_owner(Zeroizing::new(body)));
    let request = reqwest::Request::try_from(request).map_err(|e| {
        Failure::Transport(TransportFailure::new(TransportKind::Other, format!("invalid request: {}", chain(&e))))
    })?;
    let mut response = client.execute(request).await.map_err(|e| Failure::Transport(classify(&e)))?;
    let mut head = http::Response::new(Vec::new());
    *head.status_mut() = response.status();
    *head.version_mut() = response.version();
    *head.headers_mut() = std::mem::take(response.headers_mut());
    let limit = cap.saturating_add(1);
    // A claimed length is not trusted for more than a first allocation of 16 KiB.
    let first = response.content_length().map_or(0, |n| n.min(limit.min(16 * 1024) as u64) as usize);
    let mut body = Zeroizing::new(Vec::with_capacity(first));
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::Transport(classify(&e)))? {
        let room = limit - body.len();
        append_wiping(&mut body, &chunk[..chunk.len().min(room)]);
        if body.len() > cap {
            match oversize {
                Oversize::Truncate => break,
                Oversize::Fail => return Err(Failure::TooLarge(cap)),
            }
        }
    }
    *head.body_mut() = std::mem::take(&mut *body);
    Ok(head)
}

/// Appends `data` to `buffer`; when it must grow, the contents move to a buffer twice the size and the old one is
/// wiped, rather than left behind by a reallocation.
fn append_wiping(buffer: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    if buffer.capacity() - buffer.len() < data.len() {
        let wanted = (buffer.len() + data.len()).max(buffer.capacity() * 2).max(1024);
        let mut grown = Zeroizing::new(Vec::with_capacity(wanted));
        grown.extend_from_slice(buffer);
        std::mem::swap(buffer, &mut grown);
    }
    buffer.extend_from_slice(data);
}

/// Maps a reqwest error to the core's kinds by walking its sources: TLS first (a handshake failure is also a
/// connect error), then timeouts, then a connection closed or reset before the answer, then connect failures.
pub(crate) fn classify(error: &reqwest::Error) -> TransportFailure {
    TransportFailure::new(kind_of(error), chain(error))
}

fn kind_of(error: &reqwest::Error) -> TransportKind {
    let mut tls = false;
    let mut timed_out = error.is_timeout();
    let mut reset = false;
    let mut refused = false;
    // A work list rather than `source()` alone: `io::Error::source` skips the error it wraps, and hyper-rustls
    // wraps rustls's error in two nested `io::Error`s.
    let mut pending: Vec<&(dyn StdError + 'static)> = vec![error];
    let mut visited = 0;
    while let Some(e) = pending.pop() {
        visited += 1;
        if visited > 32 {
            break;
        }
        if e.is::<rustls::Error>() {
            tls = true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::TimedOut => timed_out = true,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => reset = true,
                io::ErrorKind::ConnectionRefused
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::AddrNotAvailable => refused = true,
                _ => {}
            }
            if let Some(inner) = io.get_ref() {
                pending.push(inner);
            }
        }
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_closed() || hyper.is_canceled() {
                reset = true;
            }
            if hyper.is_timeout() {
                timed_out = true;
            }
        }
        if let Some(source) = e.source() {
            pending.push(source);
        }
    }
    if tls {
        TransportKind::Tls
    } else if timed_out {
        TransportKind::Timeout
    } else if reset {
        TransportKind::Reset
    } else if refused || error.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Other
    }
}

/// The error and its sources, joined with `: `, repeated messages dropped. reqwest's messages hold the URL,
/// never a header or a body, so no token or JWT.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_grow_by_moving_into_a_larger_one() {
        let mut buffer = Zeroizing::new(Vec::with_capacity(4));
        append_wiping(&mut buffer, &[1; 4]);
        let first = buffer.as_ptr();
        assert_eq!(buffer.capacity(), 4, "no move while it fits");
        append_wiping(&mut buffer, &[2; 10]);
        assert_ne!(buffer.as_ptr(), first);
        assert_eq!(buffer.capacity(), 1024);
        assert_eq!(&buffer[..], &[1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn extra_and_platform_roots_are_added_to_the_mozilla_roots() {
        let builtin = webpki_roots::TLS_SERVER_ROOTS.len();
        assert!(builtin > 100);
        assert_eq!(root_store(&[], &[]).unwrap().len(), builtin);
        let server = symphony_auth_testkit::FakePodServer::start(symphony_auth_testkit::FakePod::new()).unwrap();
        let extra = parse_root_certificates(server.ca_pem().as_bytes()).unwrap();
        assert_eq!(extra.len(), 1);
        assert_eq!(root_store(&[], &extra).unwrap().len(), builtin + 1);

        // Debian and most Linux systems have `/etc/ssl/certs`.
        let platform = platform_certificates().unwrap();
        assert!(!platform.is_empty(), "no certificate in the operating system's store");
        let with_platform = root_store(&platform, &[]).unwrap().len();
        assert!(with_platform > builtin, "{with_platform} roots with the platform's, {builtin} without");
        // Unparsable certificates are skipped, not an error.
        let garbage = [CertificateDer::from(b"not a certificate".to_vec())];
        assert_eq!(root_store(&garbage, &[]).unwrap().len(), builtin);
    }
}
