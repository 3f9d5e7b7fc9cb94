//! The network shell: serves one shared [`FakePod`] on loopback over HTTP, HTTPS and mutual TLS,
//! from its own thread and tokio runtime, so callers need no runtime; it stops on drop.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use http::header::CONNECTION;
use http::{HeaderValue, Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::endpoint::Endpoint;
use crate::error::TestkitError;
use crate::hijack::{Hijack, HijackIo, SharedHijack};
use crate::peer::{Listener, Peer};
use crate::pki::{ClientIdentity, Pki, common_name};
use crate::pod::{Counters, FakePod};
use crate::reply::Reply;

/// Request bodies above this size are refused with 413 before they reach the pod.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// A running fake pod on loopback: three listeners sharing one [`FakePod`].
///
/// - [`http_url`](Self::http_url): plain HTTP, every endpoint (`/login`, `/relay`, `/pod`, `/agent`,
///   and the certificate logins, which answer 400 there as no certificate can be presented);
/// - [`https_url`](Self::https_url): the same over TLS with server authentication only;
/// - [`mtls_url`](Self::mtls_url): TLS that requires a client certificate signed by the fake's CA
///   (the handshake fails without one); every endpoint, meant for `/sessionauth` and `/keyauth`.
///
/// The server certificate is valid for `127.0.0.1` and `localhost` under [`ca_pem`](Self::ca_pem).
/// Dropping the server stops it and joins its thread; requests in flight are cut off.
pub struct FakePodServer {
    shared: Arc<Shared>,
    http: SocketAddr,
    https: SocketAddr,
    mtls: SocketAddr,
    pki: Pki,
    identities: BTreeMap<String, ClientIdentity>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakePodServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakePodServer")
            .field("http", &self.http)
            .field("https", &self.https)
            .field("mtls", &self.mtls)
            .field("cert_bots", &self.identities.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What the connection tasks share with the handle.
#[derive(Debug)]
struct Shared {
    pod: Mutex<FakePod>,
    in_flight: InFlight,
}

impl Shared {
    fn pod(&self) -> MutexGuard<'_, FakePod> {
        // A panic while scripting must not turn every later request into a panic too.
        self.pod.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Requests being handled now, and the most ever handled at once, overall and per endpoint.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    peak: AtomicUsize,
    per_endpoint: [(AtomicUsize, AtomicUsize); Endpoint::ALL.len()],
}

impl InFlight {
    fn enter(&self, endpoint: Endpoint) -> InFlightGuard<'_> {
        let (now, peak) = &self.per_endpoint[endpoint as usize];
        peak.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        self.peak.fetch_max(self.now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        InFlightGuard { in_flight: self, endpoint }
    }

    fn reset_peaks(&self) {
        self.peak.store(self.now.load(Ordering::SeqCst), Ordering::SeqCst);
        for (now, peak) in &self.per_endpoint {
            peak.store(now.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }
}

/// Leaves the in-flight count when dropped, so a cancelled request is not counted forever.
struct InFlightGuard<'a> {
    in_flight: &'a InFlight,
    endpoint: Endpoint,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.in_flight.now.fetch_sub(1, Ordering::SeqCst);
        self.in_flight.per_endpoint[self.endpoint as usize].0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakePodServer {
    /// Serves `pod` on `127.0.0.1`, each listener on a free port. Every certificate bot registered
    /// in `pod` at this point gets a client certificate ([`client_identity`](Self::client_identity)).
    ///
    /// # Errors
    /// Certificate generation, TLS set-up, binding or starting the thread failed.
    pub fn start(pod: FakePod) -> Result<Self, TestkitError> {
        Self::start_on(pod, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
    }

    /// As [`start`](Self::start), with the plain HTTP listener on `bind`; the two TLS listeners take
    /// free ports on the same address.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_on(pod: FakePod, bind: SocketAddr) -> Result<Self, TestkitError> {
        let pki = Pki::generate()?;
        let identities = pod
            .cert_bots()
            .into_iter()
            .map(|name| Ok((name.clone(), pki.client_identity(&name)?)))
            .collect::<Result<BTreeMap<_, _>, TestkitError>>()?;
        let (tls, mtls) = tls_configs(&pki)?;

        let http_listener = bind_listener(bind)?;
        let https_listener = bind_listener(SocketAddr::new(bind.ip(), 0))?;
        let mtls_listener = bind_listener(SocketAddr::new(bind.ip(), 0))?;
        let (http, https, mtls_addr) =
            (http_listener.local_addr()?, https_listener.local_addr()?, mtls_listener.local_addr()?);

        let shared = Arc::new(Shared { pod: Mutex::new(pod), in_flight: InFlight::default() });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (shutdown, stopped) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        // `start` returns once every listener listens, so that a caller can connect at once.
        let (ready, listening) = std::sync::mpsc::channel::<Result<(), std::io::Error>>();
        let thread = std::thread::Builder::new().name("fake-pod".to_owned()).spawn(move || {
            runtime.block_on(async move {
                let listeners = [
                    (http_listener, Listener::Http, None),
                    (https_listener, Listener::Https, Some(TlsAcceptor::from(tls))),
                    (mtls_listener, Listener::MutualTls, Some(TlsAcceptor::from(mtls))),
                ];
                for (listener, kind, acceptor) in listeners {
                    match listener.listen(BACKLOG) {
                        Ok(listener) => {
                            tokio::spawn(accept_loop(listener, kind, acceptor, Arc::clone(&task_shared)));
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    }
                }
                let _ = ready.send(Ok(()));
                // Resolves on an explicit stop or when the handle is dropped; the runtime's drop
                // at the end of the thread then cancels every connection task.
                let _ = stopped.await;
            });
        })?;

        match listening.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(std::io::Error::other("the fake pod's thread ended before listening").into()),
        }
        Ok(FakePodServer {
            shared,
            http,
            https,
            mtls: mtls_addr,
            pki,
            identities,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` of the plain listener (pod, key manager and agent).
    #[must_use]
    pub fn http_url(&self) -> String {
        url("http", self.http)
    }

    /// `https://127.0.0.1:PORT` of the server-TLS listener.
    #[must_use]
    pub fn https_url(&self) -> String {
        url("https", self.https)
    }

    /// `https://127.0.0.1:PORT` of the listener that requires a client certificate.
    #[must_use]
    pub fn mtls_url(&self) -> String {
        url("https", self.mtls)
    }

    /// The address of the plain HTTP listener.
    #[must_use]
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The address of the server-TLS listener.
    #[must_use]
    pub fn https_addr(&self) -> SocketAddr {
        self.https
    }

    /// The address of the mutual-TLS listener.
    #[must_use]
    pub fn mtls_addr(&self) -> SocketAddr {
        self.mtls
    }

    /// The CA certificate (PEM) that signed the server and client certificates.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The client certificate generated at start for certificate bot `name`.
    #[must_use]
    pub fn client_identity(&self, name: &str) -> Option<&ClientIdentity> {
        self.identities.get(name)
    }

    /// Every client certificate generated at start, in name order.
    pub fn client_identities(&self) -> impl Iterator<Item = &ClientIdentity> {
        self.identities.values()
    }

    /// A new client certificate for any CN, signed by the fake's CA, without registering a bot:
    /// for "valid certificate, unknown user" cases.
    ///
    /// # Errors
    /// Certificate generation failed.
    pub fn issue_client_identity(&self, cn: &str) -> Result<ClientIdentity, TestkitError> {
        self.pki.client_identity(cn)
    }

    /// Locks the shared pod to script faults, register bots, expire tokens or read counters.
    /// Requests wait while the guard is held, so keep it briefly.
    pub fn pod(&self) -> MutexGuard<'_, FakePod> {
        self.shared.pod()
    }

    /// A snapshot of the pod's counters.
    #[must_use]
    pub fn counters(&self) -> Counters {
        self.pod().counters().clone()
    }

    /// Requests being handled right now (including those waiting out a latency).
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.now.load(Ordering::SeqCst)
    }

    /// The most requests ever handled at once, all endpoints together.
    #[must_use]
    pub fn peak_in_flight(&self) -> usize {
        self.shared.in_flight.peak.load(Ordering::SeqCst)
    }

    /// The most requests to `endpoint` ever handled at once.
    #[must_use]
    pub fn peak_in_flight_of(&self, endpoint: Endpoint) -> usize {
        self.shared.in_flight.per_endpoint[endpoint as usize].1.load(Ordering::SeqCst)
    }

    /// Restarts the peaks from the current in-flight counts.
    pub fn reset_peaks(&self) {
        self.shared.in_flight.reset_peaks();
    }
}

impl Drop for FakePodServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn url(scheme: &str, addr: SocketAddr) -> String {
    // Unspecified binds are reached through loopback, which the server certificate names.
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// Pending connections the kernel queues per listener: a storm test opens a thousand at once, and the default
/// of `std` (128) would make some of them wait for a SYN retry.
const BACKLOG: u32 = 1024;

/// A bound socket; it starts listening inside the server's runtime.
fn bind_listener(addr: SocketAddr) -> Result<tokio::net::TcpSocket, TestkitError> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.bind(addr)?;
    Ok(socket)
}

/// Server-auth-only and client-auth-required configurations, both with the ring provider passed
/// explicitly: a library must not install process-wide crypto state.
fn tls_configs(pki: &Pki) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), TestkitError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(pki.server_chain(), pki.server_key())?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];

    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der())?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider)).build()?;
    let mut mtls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain(), pki.server_key())?;
    mtls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(tls), Arc::new(mtls)))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    kind: Listener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, kind, acceptor.clone(), Arc::clone(&shared)));
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, kind: Listener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    match acceptor {
        None => serve_connection(stream, Peer::without_certificate(kind), shared).await,
        Some(acceptor) => {
            // A failed handshake (no or untrusted client certificate on the mTLS listener) ends here.
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let client_cn =
                tls.get_ref().1.peer_certificates().and_then(<[_]>::first).and_then(|cert| common_name(cert));
            serve_connection(tls, Peer { listener: kind, client_cn }, shared).await;
        }
    }
}

async fn serve_connection<S>(io: S, peer: Peer, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hijack = SharedHijack::default();
    let io = TokioIo::new(HijackIo::new(io, Arc::clone(&hijack)));
    let service = service_fn(move |request| answer(request, peer.clone(), Arc::clone(&shared), Arc::clone(&hijack)));
    // Errors here are the client's doing (reset, malformed request) or our own hijack.
    let _ = http1::Builder::new().timer(TokioTimer::new()).serve_connection(io, service).await;
}

async fn answer(
    request: Request<Incoming>,
    peer: Peer,
    shared: Arc<Shared>,
    hijack: SharedHijack,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let endpoint = Endpoint::classify(request.method(), request.uri().path());
    let _in_flight = shared.in_flight.enter(endpoint);
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => {
            let mut response =
                Response::new(Full::new(Bytes::from_static(br#"{"code":413,"message":"Request body too large"}"#)));
            *response.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
            return Ok(response);
        }
    };
    // The lock is released before any delay, so delayed requests overlap.
    let reply = shared.pod().handle(SystemTime::now(), Request::from_parts(parts, body), &peer);
    Ok(enact(reply, &hijack).await)
}

async fn enact(mut reply: Reply, hijack: &Mutex<Hijack>) -> Response<Full<Bytes>> {
    loop {
        match reply {
            Reply::Delayed(delay, inner) => {
                tokio::time::sleep(delay).await;
                reply = *inner;
            }
            Reply::Response(response) => return response.map(|body| Full::new(Bytes::from(body))),
            Reply::Close => return hijacked(hijack, Vec::new()),
            Reply::Garbage(bytes) => return hijacked(hijack, bytes),
        }
    }
}

/// Arms the hijack and returns the placeholder hyper will "write" (swallowed) before closing.
fn hijacked(hijack: &Mutex<Hijack>, bytes: Vec<u8>) -> Response<Full<Bytes>> {
    hijack.lock().unwrap_or_else(PoisonError::into_inner).arm(bytes);
    let mut response = Response::new(Full::new(Bytes::new()));
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}
