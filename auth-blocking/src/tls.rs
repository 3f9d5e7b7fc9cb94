//! TLS for the bot's HTTP client: the core's `rustls::ClientConfig` (ring provider, Mozilla roots, optionally the
//! operating system's roots, plus any extra roots, the client certificate for mutual TLS) plugged into ureq as a
//! connector.
//!
//! Why a connector rather than ureq's `TlsConfig`: ureq takes root certificates as DER certificates, and the
//! built-in Mozilla set (`webpki-roots`) exists only as trust anchors, so `RootCerts::Specific` can add roots only
//! by *replacing* the Mozilla set. A `RootCertStore` holds both. Building the `ClientConfig` ourselves also fixes the
//! crypto provider to ring whatever a process installed globally, and turns a bad client key into an error at
//! build time (ureq would panic on first use).

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

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
