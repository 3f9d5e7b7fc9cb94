//! The network shell: serves one shared [`FakePod`] on loopback, one listener per [`Role`] (pod, key manager and
//! agent over plain HTTP or HTTPS; session auth and key auth over mutual TLS), from its own thread and tokio
//! runtime, so callers need no runtime; it stops on drop.

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
use symphony_auth_core::{BaseUrl, Endpoints};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::connections::Connections;
use crate::endpoint::{Endpoint, Role};
use crate::error::TestkitError;
use crate::hijack::{Hijack, HijackIo, SharedHijack};
use crate::peer::Peer;
use crate::pki::{ClientIdentity, Pki, PkiKeys, common_name};
use crate::pod::{Counters, FakePod};
use crate::reply::Reply;

/// Request bodies above this size are refused with 413 before they reach the pod.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Worker threads by default: two cores carry more logins than one, and more only add switching on a small box.
const DEFAULT_WORKERS: usize = 2;

/// A running fake deployment on loopback: one listener per [`Role`], all sharing one [`FakePod`].
///
/// | role | serves | transport |
/// |---|---|---|
/// | [`Role::Pod`] | `/login`, `/pod` | plain HTTP, or HTTPS with [`FakePodServerBuilder::https`] |
/// | [`Role::KeyManager`] | `/relay` | as the pod |
/// | [`Role::Agent`] | `/agent` | as the pod |
/// | [`Role::SessionAuth`] | `/sessionauth` | mutual TLS: the handshake fails without a client certificate signed by the fake's CA |
/// | [`Role::KeyAuth`] | `/keyauth` | mutual TLS |
///
/// A request for a path that another role serves is answered 404, as a real deployment whose services live on
/// different hosts answers it, so a client that sends a login or a call to the wrong host fails here too.
/// [`rsa_endpoints`](Self::rsa_endpoints) and [`cert_endpoints`](Self::cert_endpoints) give a client its
/// configuration ready-made.
///
/// TLS certificates are valid for `127.0.0.1` and `localhost` under [`ca_pem`](Self::ca_pem); by default the CA
/// and client certificates are RSA 4096 ([`PkiKeys`]). Dropping the server stops it and joins its threads;
/// requests in flight are cut off.
pub struct FakePodServer {
    shared: Arc<Shared>,
    addrs: [SocketAddr; Role::ALL.len()],
    https: bool,
    pki: Pki,
    identities: BTreeMap<String, ClientIdentity>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakePodServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("FakePodServer");
        for role in Role::ALL {
            debug.field(role.name(), &self.url(role));
        }
        debug.field("cert_bots", &self.identities.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// How to start a [`FakePodServer`]: [`FakePodServer::builder`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `start`"]
pub struct FakePodServerBuilder {
    pod: FakePod,
    bind: SocketAddr,
    https: bool,
    keys: PkiKeys,
    workers: usize,
}

impl FakePodServerBuilder {
    /// Serves the pod, key manager and agent over HTTPS (server authentication only) instead of plain HTTP.
    pub fn https(mut self, https: bool) -> Self {
        self.https = https;
        self
    }

    /// The keys of the CA, server and client certificates (RSA 4096 by default).
    pub fn pki(mut self, keys: PkiKeys) -> Self {
        self.keys = keys;
        self
    }

    /// The pod's listener binds `addr` (port 0: any free port); every other listener takes a free port on the same
    /// address. `127.0.0.1:0` by default.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Threads that serve requests (2 by default; at least 1).
    pub fn worker_threads(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Makes the certificates, binds every listener and starts serving. Every certificate bot registered in the
    /// pod at this point gets a client certificate ([`FakePodServer::client_identity`]).
    ///
    /// # Errors
    /// Certificate generation, TLS set-up, binding or starting the threads failed.
    pub fn start(self) -> Result<FakePodServer, TestkitError> {
        FakePodServer::launch(self)
    }
}

/// What the connection tasks share with the handle.
#[derive(Debug)]
struct Shared {
    pod: Mutex<FakePod>,
    in_flight: InFlight,
    connections: Connections,
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
    /// Serves `pod` on `127.0.0.1` with the defaults: the pod, key manager and agent over plain HTTP, session auth
    /// and key auth over mutual TLS, an RSA 4096 PKI, each listener on a free port.
    ///
    /// # Errors
    /// As [`FakePodServerBuilder::start`].
    pub fn start(pod: FakePod) -> Result<Self, TestkitError> {
        Self::builder(pod).start()
    }

    /// A server for `pod` to configure before [`start`](FakePodServerBuilder::start).
    pub fn builder(pod: FakePod) -> FakePodServerBuilder {
        FakePodServerBuilder {
            pod,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            https: false,
            keys: PkiKeys::default(),
            workers: DEFAULT_WORKERS,
        }
    }

    fn launch(options: FakePodServerBuilder) -> Result<Self, TestkitError> {
        let FakePodServerBuilder { pod, bind, https, keys, workers } = options;
        let pki = Pki::generate(keys)?;
        let identities = pod
            .cert_bots()
            .into_iter()
            .chain(pod.cert_apps())
            .map(|name| Ok((name.clone(), pki.client_identity(&name)?)))
            .collect::<Result<BTreeMap<_, _>, TestkitError>>()?;
        let (tls, mtls) = tls_configs(&pki)?;

        let mut sockets = Vec::with_capacity(Role::ALL.len());
        for role in Role::ALL {
            let addr = if role == Role::Pod { bind } else { SocketAddr::new(bind.ip(), 0) };
            let acceptor = if role.requires_client_certificate() {
                Some(TlsAcceptor::from(Arc::clone(&mtls)))
            } else {
                https.then(|| TlsAcceptor::from(Arc::clone(&tls)))
            };
            sockets.push((role, bind_listener(addr)?, acceptor));
        }
        let mut addrs = [bind; Role::ALL.len()];
        for (slot, (_, socket, _)) in addrs.iter_mut().zip(&sockets) {
            *slot = socket.local_addr()?;
        }

        let shared = Arc::new(Shared {
            pod: Mutex::new(pod),
            in_flight: InFlight::default(),
            connections: Connections::default(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("fake-pod-worker")
            .enable_all()
            .build()?;
        let (shutdown, stopped) = oneshot::channel();
        let task_shared = Arc::clone(&shared);
        // `start` returns once every listener listens, so that a caller can connect at once.
        let (ready, listening) = std::sync::mpsc::channel::<Result<(), std::io::Error>>();
        let thread = std::thread::Builder::new().name("fake-pod".to_owned()).spawn(move || {
            runtime.block_on(async move {
                for (role, socket, acceptor) in sockets {
                    match socket.listen(BACKLOG) {
                        Ok(listener) => {
                            tokio::spawn(accept_loop(listener, role, acceptor, Arc::clone(&task_shared)));
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return;
                        }
                    }
                }
                let _ = ready.send(Ok(()));
                // Resolves on an explicit stop or when the handle is dropped; the runtime's drop at the end of the
                // thread then cancels every connection task and joins the workers.
                let _ = stopped.await;
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
        })?;

        match listening.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(std::io::Error::other("the fake pod's thread ended before listening").into()),
        }
        Ok(FakePodServer { shared, addrs, https, pki, identities, shutdown: Some(shutdown), thread: Some(thread) })
    }

    /// The address of the listener of `role`.
    #[must_use]
    pub fn addr(&self, role: Role) -> SocketAddr {
        self.addrs[role as usize]
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`: the base URL of the listener of `role`.
    #[must_use]
    pub fn url(&self, role: Role) -> String {
        let scheme = if self.https || role.requires_client_certificate() { "https" } else { "http" };
        url(scheme, self.addr(role))
    }

    /// The pod's base URL (`/login`, `/pod`).
    #[must_use]
    pub fn pod_url(&self) -> String {
        self.url(Role::Pod)
    }

    /// The key manager's base URL (`/relay`).
    #[must_use]
    pub fn key_manager_url(&self) -> String {
        self.url(Role::KeyManager)
    }

    /// The agent's base URL (`/agent`).
    #[must_use]
    pub fn agent_url(&self) -> String {
        self.url(Role::Agent)
    }

    /// The session-auth host's base URL (`/sessionauth`, mutual TLS).
    #[must_use]
    pub fn session_auth_url(&self) -> String {
        self.url(Role::SessionAuth)
    }

    /// The key manager's certificate-login base URL (`/keyauth`, mutual TLS).
    #[must_use]
    pub fn key_auth_url(&self) -> String {
        self.url(Role::KeyAuth)
    }

    /// The pod's base URL, under its old name.
    #[doc(hidden)]
    #[must_use]
    pub fn http_url(&self) -> String {
        self.pod_url()
    }

    /// Whether the pod, key manager and agent are served over HTTPS.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// A client's endpoints for an RSA bot: the pod, the key manager (`/relay`), the agent, and the session-auth
    /// host (which RSA logins do not use).
    #[must_use]
    pub fn rsa_endpoints(&self) -> Endpoints {
        self.endpoints(Role::KeyManager)
    }

    /// A client's endpoints for a certificate bot: the pod, the agent, the session-auth host, and the key manager
    /// at the key-auth listener (a client's key-manager base URL serves its certificate login, `/keyauth`).
    #[must_use]
    pub fn cert_endpoints(&self) -> Endpoints {
        self.endpoints(Role::KeyAuth)
    }

    #[expect(clippy::expect_used, reason = "an IP address and a port always make a valid base URL")]
    fn endpoints(&self, key_manager: Role) -> Endpoints {
        let base = |which: &'static str, role: Role| BaseUrl::parse(which, &self.url(role)).expect("a base URL");
        // From `single`, then field by field: a field later added to `Endpoints` still gets a sensible value.
        let mut endpoints = Endpoints::single(&self.pod_url()).expect("a base URL");
        endpoints.key_manager = base("keyManager", key_manager);
        endpoints.session_auth = base("sessionAuth", Role::SessionAuth);
        endpoints.agent = base("agent", Role::Agent);
        endpoints
    }

    /// The CA certificate (PEM) that signed the server and client certificates.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        self.pki.ca_pem()
    }

    /// The client certificate made at start for certificate bot `name`.
    #[must_use]
    pub fn client_identity(&self, name: &str) -> Option<&ClientIdentity> {
        self.identities.get(name)
    }

    /// Every client certificate made at start, in name order.
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

    /// Connections accepted on `role`'s listener since the start or the last
    /// [`reset_connection_counts`](Self::reset_connection_counts): with a client that reuses its connections, how
    /// many it opened.
    #[must_use]
    pub fn accepted_connections(&self, role: Role) -> u64 {
        self.shared.connections.accepted_on(role)
    }

    /// Connections open on `role`'s listener now.
    #[must_use]
    pub fn open_connections(&self, role: Role) -> usize {
        self.shared.connections.open_on(role)
    }

    /// The most connections ever open at once on `role`'s listener (since the last reset).
    #[must_use]
    pub fn peak_open_connections(&self, role: Role) -> usize {
        self.shared.connections.peak_open_on(role)
    }

    /// Zeroes the accepted-connection counts and restarts the open peaks from the connections open now.
    pub fn reset_connection_counts(&self) {
        self.shared.connections.reset();
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
    role: Role,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(stream, role, acceptor.clone(), Arc::clone(&shared)));
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn connection(stream: tokio::net::TcpStream, role: Role, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let counted = Arc::clone(&shared);
    let _open = counted.connections.accepted(role);
    match acceptor {
        None => serve_connection(stream, Peer::on(role), shared).await,
        Some(acceptor) => {
            // A failed handshake (no or untrusted client certificate on the mTLS listeners) ends here.
            let Ok(tls) = acceptor.accept(stream).await else { return };
            let client_cn =
                tls.get_ref().1.peer_certificates().and_then(<[_]>::first).and_then(|cert| common_name(cert));
            serve_connection(tls, Peer { role: Some(role), client_cn }, shared).await;
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
    let endpoint = Endpoint::routed(request.method(), request.uri().path(), peer.role);
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
