//! What every measure shares: the test-only keys, the fake pod (in process, or in a child process for the memory
//! measure), bot configurations, and bare HTTP clients set up as the drivers set up theirs.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use symphony_auth_core::{BaseUrl, Config, Endpoints, JwtSigner, SignerBackend, USER_AGENT_VALUE};
use symphony_auth_testkit::{Endpoint, FakePod, FakePodServer};

/// The bot's name on the fake.
pub(crate) const BOT: &str = "bench.bot";

/// The test-only fixture keys (PKCS#8 private, SPKI public), compiled in so the binary runs from anywhere.
pub(crate) const KEY_2048: (&[u8], &str) =
    (include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem"), include_str!("../../fixtures/keys/bot-2048.pub.pem"));
pub(crate) const KEY_4096: (&[u8], &str) =
    (include_bytes!("../../fixtures/keys/bot-4096.pkcs8.pem"), include_str!("../../fixtures/keys/bot-4096.pub.pem"));

/// The drivers' default timeouts: the bare clients use the same.
const CONNECT_TIMEOUT: Duration = symphony_auth_blocking::DEFAULT_CONNECT_TIMEOUT;
const TIMEOUT: Duration = symphony_auth_blocking::DEFAULT_TIMEOUT;

/// The fastest signer compiled in (the bench compiles all three) over `private_pem`, and which one it is.
pub(crate) fn fastest_signer(private_pem: &[u8]) -> (SignerBackend, Arc<dyn JwtSigner>) {
    let backend = SignerBackend::fastest().expect("the bench compiles every signer");
    (backend, backend.load_pem(private_pem).expect("fixture key"))
}

/// A fake pod on loopback with [`BOT`] registered under `public_key_pem`.
pub(crate) fn fake_pod(public_key_pem: &str) -> FakePodServer {
    let mut pod = FakePod::new();
    pod.add_rsa_bot(BOT, public_key_pem).expect("the fixture public key is accepted");
    FakePodServer::start(pod).expect("the fake pod starts on loopback")
}

/// The fake's latency on both RSA login endpoints (the pod's and the key manager's).
pub(crate) fn set_login_latency(server: &FakePodServer, latency: Duration) {
    let mut pod = server.pod();
    pod.set_latency(Endpoint::SessionLogin, latency);
    pod.set_latency(Endpoint::KeyManagerLogin, latency);
}

/// An RSA configuration for [`BOT`] against `endpoints` (the fake's pod, key manager and agent, plain HTTP: the
/// bench measures authentication, not TLS handshakes).
pub(crate) fn config(endpoints: &Endpoints, signer: Arc<dyn JwtSigner>, parallel: bool) -> Config {
    Config::rsa(endpoints.clone(), BOT, signer).expect("a valid configuration").with_parallel_login(parallel)
}

pub(crate) fn blocking_bot(config: Config) -> symphony_auth_blocking::Bot {
    symphony_auth_blocking::Bot::builder(config).build().expect("the blocking bot builds")
}

pub(crate) fn async_bot(config: Config) -> symphony_auth_async::Bot {
    symphony_auth_async::Bot::builder(config).build().expect("the async bot builds")
}

/// A plain ureq agent with the blocking driver's settings (see `auth-blocking/src/transport.rs`): statuses are not
/// errors, no redirects, no proxy (none from the environment either), the same timeouts and User-Agent, rustls
/// with the ring provider and the Mozilla roots.
pub(crate) fn bare_ureq() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(TIMEOUT))
        .user_agent(USER_AGENT_VALUE)
        .tls_config(tls)
        .build()
        .new_agent()
}

/// A plain reqwest client with the async driver's settings (see `auth-async/src/transport.rs`): a preconfigured
/// rustls `ClientConfig` with the ring provider and the Mozilla roots, no redirects, no proxy, HTTP/1.1 only,
/// `TCP_NODELAY`, the same timeouts.
pub(crate) fn bare_reqwest() -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TIMEOUT)
        .http1_only()
        .tcp_nodelay(true)
        .no_proxy()
        .user_agent(USER_AGENT_VALUE)
        .build()
        .expect("the bare reqwest client builds")
}

/// The argument that makes this binary serve a fake pod instead of benchmarking (see [`ChildPod`]).
pub(crate) const CHILD_FLAG: &str = "--serve-fake-pod";

/// The child's side: serve a fake pod with [`BOT`] and the fleet's bots (4096-bit key), print the URLs of its
/// pod, key manager and agent on one line, answer the parent's commands (see [`ChildPod::command`]), and stop when
/// the parent closes our standard input.
pub(crate) fn serve_fake_pod_child() {
    let server = fake_pod(KEY_4096.1);
    crate::fleet::register(&mut server.pod());
    println!("{} {} {}", server.pod_url(), server.key_manager_url(), server.agent_url());
    std::io::stdout().flush().expect("stdout");
    // Blocks until the parent closes the pipe (or dies).
    for command in std::io::stdin().lines() {
        let Ok(command) = command else { break };
        let answer = match command.trim() {
            "expire" => {
                server.pod().expire_sessions();
                "expired".to_owned()
            }
            "logins" => server.counters().requests(Endpoint::SessionLogin).to_string(),
            other => format!("unknown command {other:?}"),
        };
        println!("{answer}");
        std::io::stdout().flush().expect("stdout");
    }
    drop(server);
}

/// A fake pod in a child process (this same binary with [`CHILD_FLAG`]).
///
/// Why: the memory measure counts every live heap byte of this process. The fake keeps a session per login and a
/// task and buffers per connection; in process, those would be charged to the bots.
#[derive(Debug)]
pub(crate) struct ChildPod {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub(crate) endpoints: Endpoints,
}

impl ChildPod {
    pub(crate) fn start() -> Self {
        let exe = std::env::current_exe().expect("the bench knows its own path");
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the fake-pod child starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut urls = String::new();
        stdout.read_line(&mut urls).expect("the child prints its URLs");
        let mut urls = urls.split_whitespace();
        let mut base = |which| BaseUrl::parse(which, urls.next().expect("three URLs")).expect("a loopback URL");
        let (pod, key_manager, agent) = (base("pod"), base("keyManager"), base("agent"));
        let mut endpoints = Endpoints::single(&pod.to_string()).expect("a loopback URL");
        endpoints.key_manager = key_manager;
        endpoints.agent = agent;
        let stdin = child.stdin.take();
        ChildPod { child, stdin, stdout, endpoints }
    }

    /// Sends `command` to the child and returns its one-line answer: `expire` ends every session (answer
    /// `expired`), `logins` counts the RSA session logins so far.
    pub(crate) fn command(&mut self, command: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the child's stdin is open until drop");
        writeln!(stdin, "{command}").and_then(|()| stdin.flush()).expect("the child reads commands");
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).expect("the child answers");
        answer.trim().to_owned()
    }

    /// The child's process id, to read its CPU time.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildPod {
    fn drop(&mut self) {
        // Closing its standard input is the child's signal to stop; then reap it.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
