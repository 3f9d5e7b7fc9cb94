//! The HTTP client: one ureq agent per bot, configured once, and the mapping of its errors to
//! [`TransportKind`].

use std::io::{self, Read as _};
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use symphony_auth_core::{HttpRequest, HttpResponse, TransportFailure, TransportKind, USER_AGENT_VALUE};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{ConnectProxyConnector, Connector as _, TcpConnector};
use ureq::{Agent, Proxy};

use crate::Error;
use crate::tls::TlsConnector;
use symphony_auth_core::ConfigError;
use symphony_auth_core::driver::ProxyUrl;

/// Builds the agent: no redirects, statuses never errors, no proxy unless `proxy`, the timeouts, and TLS through
/// our own `ClientConfig`.
pub(crate) fn agent(
    tls: Arc<ClientConfig>,
    proxy: Option<&ProxyUrl>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Agent, Error> {
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
        .timeout_connect(Some(connect_timeout))
        .timeout_global(Some(timeout))
        .user_agent(USER_AGENT_VALUE)
        .build();
    // A CONNECT proxy (when configured) prepares the socket, TCP opens it otherwise, then TLS for `https`.
    let connector =
        ().chain(ConnectProxyConnector::default()).chain(TcpConnector::default()).chain(TlsConnector::new(tls));
    Ok(Agent::with_parts(config, connector, DefaultResolver::default()))
}

/// Sends `request` and reads at most `limit` bytes of body. Over the limit: with `truncate`, the first `limit + 1`
/// bytes are returned (the core then reports "too large" for a login answer); without, a failure of kind `Other`.
pub(crate) fn execute(
    agent: &Agent,
    request: HttpRequest,
    limit: usize,
    truncate: bool,
) -> Result<HttpResponse, TransportFailure> {
    let response = agent.run(request).map_err(|e| classify(&e))?;
    let (parts, body) = response.into_parts();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    body.into_with_config().reader().take(cap).read_to_end(&mut bytes).map_err(|e| classify(&ureq::Error::from(e)))?;
    if bytes.len() > limit && !truncate {
        let detail = format!("the response body exceeds the limit of {limit} bytes");
        return Err(TransportFailure::new(TransportKind::Other, detail));
    }
    Ok(HttpResponse::from_parts(parts, bytes))
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
