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

use rustls::ClientConfig;
use symphony_auth_core::driver::{ClientOptions, ProxyUrl, append_wiping};
use symphony_auth_core::{ConfigError, HttpRequest, HttpResponse, TransportFailure, TransportKind};
use zeroize::Zeroizing;

use crate::Error;
use crate::gate::Gate;

/// An HTTP client of the bot (one per distinct proxy): no redirects, no proxy unless one is given (never from the environment), HTTP/1.1,
/// the given timeouts, statuses never turned into errors (reqwest's default).
///
/// Pool: reqwest keeps every idle connection for 90 s by default, so a storm of 1,000 calls left 1,000 sockets
/// and their buffers behind; with the bound, no more than it are ever open, and the idle ones close after 15 s. hyper sizes its buffers to
/// the traffic (8 KiB to start), which reqwest does not let us change: `read_buffer` and `write_buffer` do not
/// apply here.
pub(crate) fn build_client(
    options: &ClientOptions,
    proxy: Option<&ProxyUrl>,
    tls: Arc<ClientConfig>,
) -> Result<reqwest::Client, Error> {
    let builder = reqwest::Client::builder()
        // Verbose connections log every byte read and written at TRACE: tokens and JWTs. Off (the default),
        // stated so that it stays off.
        .connection_verbose(false)
        .tls_backend_preconfigured(Arc::unwrap_or_clone(tls))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.connections.max_idle_per_host())
        .pool_idle_timeout(options.connections.idle_timeout());
    let builder = match proxy {
        Some(url) => builder.proxy(reqwest::Proxy::all(url.expose_url()).map_err(|_| {
            Error::Config(ConfigError::InvalidUrl {
                which: "proxy",
                url: url.shown().to_owned(),
                reason: "not a proxy URL",
            })
        })?),
        None => builder.no_proxy(),
    };
    builder.build().map_err(|e| Error::Tls(format!("cannot build the HTTP client: {}", chain(&e))))
}

/// What to do with a body over the cap.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Oversize {
    /// Hand over the first `cap + 1` bytes: the core sees that the body is too large and says so.
    Truncate,
    /// Fail with a failure of kind `Other`.
    Fail,
}

/// Sends `request` and reads the answer, whatever its status, reading at most `cap + 1` body bytes; holds a slot
/// of `gate` for its host from before connecting until the body is read.
pub(crate) async fn exchange(
    client: &reqwest::Client,
    gate: &Gate,
    request: HttpRequest,
    cap: usize,
    oversize: Oversize,
) -> Result<HttpResponse, TransportFailure> {
    let _permit = gate.enter(request.uri()).await;
    // The body moves (no copy) into a buffer whose owner wipes it when the last reference is dropped.
    let request = request.map(|body| bytes::Bytes::from_owner(Zeroizing::new(body)));
    let request = reqwest::Request::try_from(request)
        .map_err(|e| TransportFailure::new(TransportKind::Other, format!("invalid request: {}", chain(&e))))?;
    let mut response = client.execute(request).await.map_err(|e| classify(&e))?;
    let mut head = http::Response::new(Vec::new());
    *head.status_mut() = response.status();
    *head.version_mut() = response.version();
    *head.headers_mut() = std::mem::take(response.headers_mut());
    let limit = cap.saturating_add(1);
    // A claimed length is not trusted for more than a first allocation of 16 KiB.
    let first = response.content_length().map_or(0, |n| n.min(limit.min(16 * 1024) as u64) as usize);
    let mut body = Zeroizing::new(Vec::with_capacity(first));
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        let room = limit - body.len();
        append_wiping(&mut body, &chunk[..chunk.len().min(room)]);
        if body.len() > cap {
            match oversize {
                Oversize::Truncate => break,
                Oversize::Fail => {
                    let detail = format!("response body larger than {cap} bytes");
                    return Err(TransportFailure::new(TransportKind::Other, detail));
                }
            }
        }
    }
    *head.body_mut() = std::mem::take(&mut *body);
    Ok(head)
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
