//! The HTTP client: one ureq agent per bot, configured once, and the mapping of its errors to
//! [`TransportKind`].
//!
//! ureq-proto writes every request it sends (the `sessionToken` and `keyManagerToken` headers, the login JWT) and
//! every response it reads (`{"token": ...}`) to the log as a hex dump at TRACE, unconditionally (`log_data` in
//! its `util.rs`, target [`UREQ_PROTO_DUMP_TARGET`]). Nothing in ureq turns that off, so [`execute`] refuses to
//! send anything while that target is enabled at TRACE: filter it to DEBUG (`RUST_LOG=trace,ureq_proto=debug`)
//! and every other target may stay at TRACE. The check relies on the logger's `enabled` agreeing with what it
//! records, as env_logger's, log4rs's and tracing-log's do.

use std::io::{self, Read as _};
use std::sync::Arc;

use zeroize::Zeroizing;

use rustls::ClientConfig;
use symphony_auth_core::{HttpRequest, HttpResponse, TransportFailure, TransportKind, USER_AGENT_VALUE};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector as _, NextTimeout, TcpConnector};
use ureq::{Agent, Proxy};

use crate::Error;
use crate::gate::Gate;
use crate::tls::TlsConnector;
use symphony_auth_core::ConfigError;
use symphony_auth_core::driver::{ClientOptions, ProxyUrl, append_wiping};

/// Builds the agent: no redirects, statuses never errors, no proxy unless `proxy`, the timeouts, and TLS through
/// our own `ClientConfig`; the pool and buffers of `options.connections`.
///
/// Buffers: ureq allocates a read and a write buffer of the configured sizes for every connection, in full, and
/// keeps them while the connection is pooled; its defaults (128 KiB each) made a ready bot cost half a megabyte.
/// The core's defaults (16 KiB read, enough for any response head; 8 KiB write, enough for any request head) bring
/// a connection to 24 KiB; bodies of any size stream through them. Pool: ureq's default of 3 idle connections per
/// host and 10 in all closed most connections of a storm's every wave, for the next wave to open them again; the
/// core's keeps as many as may be in use, for 15 s.
pub(crate) fn agent(tls: Arc<ClientConfig>, proxy: Option<&ProxyUrl>, options: &ClientOptions) -> Result<Agent, Error> {
    let proxy = match proxy {
        Some(url) => Some(Proxy::new(url.expose_url()).map_err(|_| {
            Error::Config(ConfigError::InvalidUrl {
                which: "proxy",
                url: url.shown().to_owned(),
                reason: "not a proxy URL",
            })
        })?),
        None => None,
    };
    let config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(proxy)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_global(Some(options.timeout))
        .user_agent(USER_AGENT_VALUE)
        .input_buffer_size(options.connections.read_buffer())
        .output_buffer_size(options.connections.write_buffer())
        .max_idle_connections_per_host(options.connections.max_idle_per_host())
        .max_idle_connections(options.connections.max_idle())
        .max_idle_age(options.connections.idle_timeout())
        .build();
    // A CONNECT proxy (when configured) prepares the socket, TCP opens it otherwise, then TLS for `https`.
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(TcpConnector::default()).chain(TlsConnector::new(tls));
    Ok(Agent::with_parts(config, connector, Resolve::default()))
}

/// ureq's resolver, with a failed lookup reported as `HostNotFound`: ureq passes the system's lookup error on as
/// a bare I/O error, and a name that does not resolve is a host out of reach (`Connect`), not "other".
#[derive(Debug, Default)]
struct Resolve(DefaultResolver);

impl Resolver for Resolve {
    fn resolve(
        &self,
        uri: &http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.0.resolve(uri, config, timeout).map_err(|error| match error {
            ureq::Error::Io(_) => ureq::Error::HostNotFound,
            other => other,
        })
    }
}

/// The `log` target of ureq-proto's hex dump of every request and response (its `util.rs`, `log_data`).
pub(crate) const UREQ_PROTO_DUMP_TARGET: &str = "ureq_proto::util";

/// Why [`execute`] refuses to send while ureq-proto's dump is on.
pub(crate) const DUMP_REFUSAL: &str = "the logger records TRACE for target `ureq_proto::util`, where ureq-proto \
    writes every request and response byte (tokens, the login JWT) to the log; nothing was sent. Filter that target \
    to DEBUG, for example `RUST_LOG=trace,ureq_proto=debug`";

/// Whether the installed logger would record ureq-proto's TRACE dump. Asked before every request: a logger's
/// filter can change at run time.
pub(crate) fn dump_would_be_logged() -> bool {
    log::log_enabled!(target: UREQ_PROTO_DUMP_TARGET, log::Level::Trace)
}

/// Sends `request` and reads at most `limit` bytes of body, holding a slot of `gate` for its host from before
/// connecting until the body is read (when ureq has put the connection back in its pool). Over the limit: with `truncate`, the first `limit + 1`
/// bytes are returned (the core then reports "too large"); without, a failure of kind `Other`.
///
/// Refused ([`TransportKind::Refused`], nothing sent) while ureq-proto's TRACE dump would be logged. The request
/// body (a login JWT) is wiped once sent, and the response body is read into buffers that are wiped as they grow;
/// the copies ureq keeps in its own buffers are out of reach.
pub(crate) fn execute(
    agent: &Agent,
    gate: &Gate,
    request: HttpRequest,
    limit: usize,
    truncate: bool,
) -> Result<HttpResponse, TransportFailure> {
    if dump_would_be_logged() {
        return Err(TransportFailure::new(TransportKind::Refused, DUMP_REFUSAL));
    }
    let _pass = gate.enter(request.uri());
    let (parts, body) = request.into_parts();
    let body = Zeroizing::new(body);
    let response = agent.run(http::Request::from_parts(parts, &body[..])).map_err(|e| classify(&e))?;
    drop(body);
    let (parts, body) = response.into_parts();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut reader = body.into_with_config().reader().take(cap);
    let mut bytes = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new([0_u8; 8192]);
    loop {
        let read = match reader.read(&mut chunk[..]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(classify(&ureq::Error::from(e))),
        };
        append_wiping(&mut bytes, &chunk[..read]);
    }
    if bytes.len() > limit && !truncate {
        let detail = format!("the response body exceeds the limit of {limit} bytes");
        return Err(TransportFailure::new(TransportKind::Other, detail));
    }
    Ok(HttpResponse::from_parts(parts, std::mem::take(&mut *bytes)))
}

/// Maps a ureq error to a [`TransportFailure`]: timeouts, connection failures, resets and TLS apart.
pub(crate) fn classify(error: &ureq::Error) -> TransportFailure {
    use ureq::Error as E;
    let kind = match error {
        E::Timeout(_) => TransportKind::Timeout,
        E::HostNotFound | E::ConnectionFailed | E::ConnectProxyFailed(_) => TransportKind::Connect,
        E::Rustls(_) | E::Tls(_) | E::Pem(_) | E::TlsRequired => TransportKind::Tls,
        E::Io(io) => io_kind(io),
        _ => TransportKind::Other,
    };
    TransportFailure::new(kind, error.to_string())
}

fn io_kind(error: &io::Error) -> TransportKind {
    if let Some(inner) = error.get_ref() {
        if inner.is::<rustls::Error>() {
            return TransportKind::Tls;
        }
        if let Some(ureq) = inner.downcast_ref::<ureq::Error>() {
            return classify(ureq).kind;
        }
    }
    use io::ErrorKind as K;
    match error.kind() {
        K::TimedOut | K::WouldBlock => TransportKind::Timeout,
        K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable | K::NotConnected => {
            TransportKind::Connect
        }
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => TransportKind::Reset,
        _ => TransportKind::Other,
    }
}
