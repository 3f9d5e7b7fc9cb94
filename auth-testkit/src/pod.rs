//! `FakePod`: the pure pod, key manager and agent. It owns bots, issued tokens, the clock skew and the
//! fault script, and turns one request into one [`Reply`] without touching a socket or the real clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use ring::hmac;
use serde_json::{Value, json};

use crate::endpoint::Endpoint;
use crate::error::TestkitError;
use crate::fault::{Fault, RetryAfter};
use crate::jwt::{BotKey, parse_login_jwt, sign_hs512};
use crate::peer::Peer;
use crate::reply::Reply;

mod apps;
mod datafeed;
mod extension;
pub use extension::DEFAULT_ACCESS_TOKEN_TTL;

/// How long issued session and key-manager tokens live unless [`FakePod::set_session_ttl`] says otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(3600);
/// The agent version `GET /agent/v1/info` reports by default: the first one that supports SKD (PROTOCOL §7).
pub const DEFAULT_AGENT_VERSION: &str = "Agent-24.12.0-1000-Linux-fake-pod";
/// The pod's limit on a login JWT's `exp`: at most this far ahead of its clock (PROTOCOL §5).
pub const MAX_JWT_LIFETIME: Duration = Duration::from_secs(300);

/// The first agent version that accepts a session without a key-manager token under SKD (PROTOCOL §7): major
/// and minor.
const FIRST_SKD_AGENT: (u64, u64) = (24, 12);

/// Bytes a `Fault::Garbage` writes: not a status line, so any HTTP client must fail to parse them.
const GARBAGE: &[u8] = b"\x16\x03\x01 this is not HTTP \x00\xff\r\n\r\n";

/// Above this many stored tokens, dead ones are dropped, so long benchmarks do not grow without bound.
const PRUNE_THRESHOLD: usize = 4096;

/// Which token a login issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Session,
    KeyManager,
}

/// A registered service account.
struct Bot {
    user_id: u64,
    rsa_key: Option<BotKey>,
    cert: bool,
    active: bool,
}

/// At most `logins` requests to each login endpoint within any `window`: the rest are answered
/// 429 with `Retry-After` (whole seconds until a slot frees up, at least 1).
///
/// Every login request counts, whether or not its credentials are good (a limiter sits in front of the
/// service); refused requests do not use up the budget. Each of the four login endpoints has its own budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginRateLimit {
    /// Logins allowed per window on each login endpoint (0 refuses every login).
    pub logins: u32,
    /// The length of the sliding window.
    pub window: Duration,
}

impl LoginRateLimit {
    /// `logins` per `window` on each login endpoint.
    #[must_use]
    pub fn new(logins: u32, window: Duration) -> Self {
        LoginRateLimit { logins, window }
    }
}

/// What an issued token stands for.
#[derive(Clone, Debug)]
struct Grant {
    username: String,
    expires_at: SystemTime,
    skd: bool,
}

/// Requests per endpoint, and responses per endpoint and status.
///
/// A request answered by [`Fault::Close`] or [`Fault::Garbage`] counts as a request with no response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    requests: BTreeMap<Endpoint, u64>,
    responses: BTreeMap<(Endpoint, u16), u64>,
}

impl Counters {
    /// Requests received for `endpoint`.
    #[must_use]
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.requests.get(&endpoint).copied().unwrap_or(0)
    }

    /// Responses sent for `endpoint` with `status`.
    #[must_use]
    pub fn responses(&self, endpoint: Endpoint, status: u16) -> u64 {
        self.responses.get(&(endpoint, status)).copied().unwrap_or(0)
    }

    /// Requests received, all endpoints together.
    #[must_use]
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    /// Every `(endpoint, status, count)` with a non-zero count, in endpoint then status order.
    pub fn iter(&self) -> impl Iterator<Item = (Endpoint, u16, u64)> + '_ {
        self.responses.iter().map(|(&(e, s), &n)| (e, s, n))
    }

    fn record(&mut self, endpoint: Endpoint, status: Option<u16>) {
        *self.requests.entry(endpoint).or_default() += 1;
        if let Some(status) = status {
            *self.responses.entry((endpoint, status)).or_default() += 1;
        }
    }
}

/// The fake pod, key manager and agent as one pure object.
///
/// Every answer comes from [`FakePod::handle`]; everything else configures or inspects it.
pub struct FakePod {
    bots: BTreeMap<String, Bot>,
    sessions: HashMap<String, Grant>,
    key_manager_tokens: HashMap<String, Grant>,
    prune_at: usize,
    token_seq: u64,
    session_mac: hmac::Key,
    random: &'static dyn rustls::crypto::SecureRandom,
    session_ttl: Duration,
    skd: bool,
    agent_version: String,
    clock_skew_secs: i64,
    key_manager_down: bool,
    login_limit: Option<LoginRateLimit>,
    /// Pod times of the logins let through within the current window, per login endpoint.
    recent_logins: BTreeMap<Endpoint, VecDeque<SystemTime>>,
    latency: BTreeMap<Endpoint, Duration>,
    faults: BTreeMap<Endpoint, VecDeque<Fault>>,
    counters: Counters,
    apps: apps::Apps,
    extension: extension::Extension,
    datafeeds: datafeed::Datafeeds,
}

impl Default for FakePod {
    fn default() -> Self {
        Self::new()
    }
}

/// Tokens and keys stay out of Debug output.
impl fmt::Debug for FakePod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakePod")
            .field("bots", &self.bots.keys().collect::<Vec<_>>())
            .field("sessions", &self.sessions.len())
            .field("key_manager_tokens", &self.key_manager_tokens.len())
            .field("session_ttl", &self.session_ttl)
            .field("skd", &self.skd)
            .field("agent_version", &self.agent_version)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field("key_manager_down", &self.key_manager_down)
            .field("login_limit", &self.login_limit)
            .field("latency", &self.latency)
            .field("faults", &self.faults)
            .field("counters", &self.counters)
            .field("apps", &self.apps.app_ids())
            .finish_non_exhaustive()
    }
}

impl FakePod {
    /// A pod with no bots, a one-hour session lifetime, no SKD, no skew and no faults.
    #[must_use]
    pub fn new() -> Self {
        let random = rustls::crypto::ring::default_provider().secure_random;
        let mut mac_key = [0u8; 64];
        // The MAC key only makes tokens look signed (nothing verifies them), so a failed RNG may leave it zero.
        let _ = random.fill(&mut mac_key);
        FakePod {
            bots: BTreeMap::new(),
            sessions: HashMap::new(),
            key_manager_tokens: HashMap::new(),
            prune_at: PRUNE_THRESHOLD,
            token_seq: 0,
            session_mac: hmac::Key::new(hmac::HMAC_SHA512, &mac_key),
            random,
            session_ttl: DEFAULT_SESSION_TTL,
            skd: false,
            agent_version: DEFAULT_AGENT_VERSION.to_owned(),
            clock_skew_secs: 0,
            key_manager_down: false,
            login_limit: None,
            recent_logins: BTreeMap::new(),
            latency: BTreeMap::new(),
            faults: BTreeMap::new(),
            counters: Counters::default(),
            apps: apps::Apps::default(),
            extension: extension::Extension::default(),
            datafeeds: datafeed::Datafeeds::default(),
        }
    }

    // ---- bots -------------------------------------------------------------------------------

    /// Registers (or re-keys) an RSA bot from its SPKI PEM public key (`BEGIN PUBLIC KEY`) and
    /// returns its user id. A bot may hold both an RSA key and a certificate.
    ///
    /// # Errors
    /// [`TestkitError::InvalidBotName`] or [`TestkitError::InvalidPublicKey`] (not SPKI PEM, not
    /// RSA, or under 2048 bits).
    pub fn add_rsa_bot(&mut self, username: &str, public_key_pem: &str) -> Result<u64, TestkitError> {
        check_bot_name(username)?;
        let key = BotKey::from_spki_pem(public_key_pem)
            .map_err(|reason| TestkitError::InvalidPublicKey { username: username.to_owned(), reason })?;
        let bot = self.bot_entry(username);
        bot.rsa_key = Some(key);
        Ok(bot.user_id)
    }

    /// Registers a certificate bot: a client certificate whose CN is `username` may log in.
    /// Returns its user id.
    ///
    /// # Errors
    /// [`TestkitError::InvalidBotName`].
    pub fn add_cert_bot(&mut self, username: &str) -> Result<u64, TestkitError> {
        check_bot_name(username)?;
        let bot = self.bot_entry(username);
        bot.cert = true;
        Ok(bot.user_id)
    }

    fn bot_entry(&mut self, username: &str) -> &mut Bot {
        let taken: Vec<u64> = self.bots.values().map(|b| b.user_id).collect();
        self.bots.entry(username.to_owned()).or_insert_with(|| Bot {
            user_id: stable_user_id(username, &taken),
            rsa_key: None,
            cert: false,
            active: true,
        })
    }

    /// The user id of a registered bot. Ids derive from the name, so they are stable across runs.
    #[must_use]
    pub fn user_id(&self, username: &str) -> Option<u64> {
        self.bots.get(username).map(|b| b.user_id)
    }

    /// Names of the bots that may log in with a certificate, in name order.
    #[must_use]
    pub fn cert_bots(&self) -> Vec<String> {
        self.bots.iter().filter(|(_, b)| b.cert).map(|(n, _)| n.clone()).collect()
    }

    /// Activates or deactivates a bot. An inactive bot cannot log in and its tokens are dead
    /// (they live again if it is reactivated before they expire). Returns false for an unknown bot.
    pub fn set_active(&mut self, username: &str, active: bool) -> bool {
        self.bots.get_mut(username).map(|b| b.active = active).is_some()
    }

    /// Ends every session and key-manager token of one bot, as an admin logout does; the bot may
    /// log in again. Returns how many tokens were revoked.
    pub fn revoke_tokens(&mut self, username: &str) -> usize {
        let before = self.sessions.len() + self.key_manager_tokens.len();
        self.sessions.retain(|_, g| g.username != username);
        self.key_manager_tokens.retain(|_, g| g.username != username);
        before - self.sessions.len() - self.key_manager_tokens.len()
    }

    // ---- tokens and clock -------------------------------------------------------------------

    /// How long tokens issued from now on live (measured on the pod's skewed clock).
    pub fn set_session_ttl(&mut self, ttl: Duration) {
        self.session_ttl = ttl;
    }

    /// Whether session tokens issued from now on carry `canUseSimplifiedKeyDelivery: true`, which
    /// also lets an agent of version 24.12 or later accept them without a key-manager token.
    pub fn set_skd(&mut self, skd: bool) {
        self.skd = skd;
    }

    /// The `version` that `GET /agent/v1/info` reports. An agent before 24.12 (or whose version does not read
    /// `Agent-MAJOR.MINOR.…`) does not know SKD: it refuses a session without a key-manager token even when the
    /// session grants SKD, as a real one does.
    pub fn set_agent_version(&mut self, version: impl Into<String>) {
        self.agent_version = version.into();
    }

    /// Whether the agent's version supports SKD (24.12 or later, PROTOCOL §7).
    #[must_use]
    pub fn agent_supports_skd(&self) -> bool {
        agent_version(&self.agent_version).is_some_and(|version| version >= FIRST_SKD_AGENT)
    }

    /// Offsets the pod's clock from the `now` given to [`FakePod::handle`]: positive seconds put it
    /// ahead of the caller. It applies to JWT `exp` checks and token lifetimes alike, so a jump
    /// ahead by more than the session lifetime kills every token.
    pub fn set_clock_skew(&mut self, seconds: i64) {
        self.clock_skew_secs = seconds;
    }

    /// The current clock skew in seconds.
    #[must_use]
    pub fn clock_skew(&self) -> i64 {
        self.clock_skew_secs
    }

    /// The pod's own time for a caller's `now`.
    #[must_use]
    pub fn pod_time(&self, now: SystemTime) -> SystemTime {
        let skew = Duration::from_secs(self.clock_skew_secs.unsigned_abs());
        if self.clock_skew_secs >= 0 {
            now.checked_add(skew).unwrap_or(now)
        } else {
            now.checked_sub(skew).unwrap_or(UNIX_EPOCH)
        }
    }

    /// Expires every session token now, apps' and OBO users' included (key-manager tokens stay valid).
    pub fn expire_sessions(&mut self) {
        self.sessions.clear();
        self.apps.expire_sessions();
    }

    /// Expires every key-manager token now (sessions stay valid).
    pub fn expire_key_manager_tokens(&mut self) {
        self.key_manager_tokens.clear();
    }

    /// Expires every token now: the next protected call of every bot answers 401.
    pub fn expire_all(&mut self) {
        self.expire_sessions();
        self.expire_key_manager_tokens();
    }

    /// Session tokens still alive at the caller's `now`.
    #[must_use]
    pub fn live_sessions(&self, now: SystemTime) -> usize {
        let now = self.pod_time(now);
        self.sessions.values().filter(|g| self.is_live(g, now)).count()
    }

    /// Key-manager tokens still alive at the caller's `now`.
    #[must_use]
    pub fn live_key_manager_tokens(&self, now: SystemTime) -> usize {
        let now = self.pod_time(now);
        self.key_manager_tokens.values().filter(|g| self.is_live(g, now)).count()
    }

    /// Every session and key-manager token the pod still holds (issued, and not since cleared by `expire_*`,
    /// `revoke_tokens` or pruning), for tests that check a client never shows one.
    #[must_use]
    pub fn issued_tokens(&self) -> Vec<String> {
        self.sessions.keys().chain(self.key_manager_tokens.keys()).cloned().collect()
    }

    // ---- faults -----------------------------------------------------------------------------

    /// Queues `fault` to answer the next `times` requests to `endpoint`, after any already queued.
    pub fn inject(&mut self, endpoint: Endpoint, times: usize, fault: Fault) {
        let queue = self.faults.entry(endpoint).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Faults still queued for `endpoint`.
    #[must_use]
    pub fn pending_faults(&self, endpoint: Endpoint) -> usize {
        self.faults.get(&endpoint).map_or(0, VecDeque::len)
    }

    /// Drops every queued fault.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Delays every answer from `endpoint` by `latency` (zero removes it).
    pub fn set_latency(&mut self, endpoint: Endpoint, latency: Duration) {
        self.latency.insert(endpoint, latency);
    }

    /// Delays every answer from every endpoint by `latency`.
    pub fn set_latency_all(&mut self, latency: Duration) {
        for endpoint in Endpoint::ALL {
            self.set_latency(endpoint, latency);
        }
    }

    /// The latency configured for `endpoint`.
    #[must_use]
    pub fn latency(&self, endpoint: Endpoint) -> Duration {
        self.latency.get(&endpoint).copied().unwrap_or_default()
    }

    /// Limits the rate of logins (see [`LoginRateLimit`]); `None` removes the limit. Setting it starts a new window.
    pub fn set_login_rate_limit(&mut self, limit: Option<LoginRateLimit>) {
        self.login_limit = limit;
        self.recent_logins.clear();
    }

    /// The login rate limit, if any.
    #[must_use]
    pub fn login_rate_limit(&self) -> Option<LoginRateLimit> {
        self.login_limit
    }

    /// While down, the key manager's logins (`/relay`, `/keyauth`) answer
    /// 503 `{"code":503,"message":"Key manager unavailable"}`; the pod and agent still answer.
    pub fn set_key_manager_down(&mut self, down: bool) {
        self.key_manager_down = down;
    }

    // ---- counters ---------------------------------------------------------------------------

    /// Requests and responses so far.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Forgets every count.
    pub fn reset_counters(&mut self) {
        self.counters = Counters::default();
    }

    // ---- the pod ----------------------------------------------------------------------------

    /// Answers one request as the real pod, key manager or agent would, at the caller's `now`
    /// (the pod adds its clock skew). A request that reaches the host of another role (`peer.role`) is
    /// [`Endpoint::NotFound`] there, answered 404. Faults queued for the endpoint come first; configured latency
    /// wraps the answer in [`Reply::Delayed`]. Header names are case-insensitive.
    pub fn handle(&mut self, now: SystemTime, request: Request<Vec<u8>>, peer: &Peer) -> Reply {
        let endpoint = Endpoint::routed(request.method(), request.uri().path(), peer.role);
        let now = self.pod_time(now);
        let scripted = self.faults.get_mut(&endpoint).and_then(VecDeque::pop_front);
        let mut reply = match scripted {
            Some(fault) => self.fault_reply(fault, endpoint, now, &request, peer),
            None => Reply::Response(self.serve(endpoint, now, &request, peer)),
        };
        // Every HTTP server stamps its answers with its own clock; clients read it to spot skew.
        if let Reply::Response(response) = &mut reply
            && let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(now))
        {
            response.headers_mut().insert(http::header::DATE, date);
        }
        let reply = match self.latency(endpoint) {
            d if d.is_zero() => reply,
            d => Reply::Delayed(d, Box::new(reply)),
        };
        self.counters.record(endpoint, reply.status());
        reply
    }

    fn fault_reply(
        &mut self,
        fault: Fault,
        endpoint: Endpoint,
        now: SystemTime,
        request: &Request<Vec<u8>>,
        peer: &Peer,
    ) -> Reply {
        match fault {
            Fault::Status { status, retry_after, location } => {
                let mut response = error(status_code(status), "Injected fault");
                if let Some(retry_after) = retry_after {
                    response.headers_mut().insert(RETRY_AFTER, retry_after_value(retry_after, now));
                }
                if let Some(location) = location {
                    match HeaderValue::from_str(&location) {
                        Ok(value) => {
                            response.headers_mut().insert(LOCATION, value);
                        }
                        Err(_) => {
                            let message = "Injected fault: its Location is not a valid header value";
                            return Reply::Response(error(StatusCode::INTERNAL_SERVER_ERROR, message));
                        }
                    }
                }
                Reply::Response(response)
            }
            Fault::Delay(delay) => {
                Reply::Delayed(delay, Box::new(Reply::Response(self.serve(endpoint, now, request, peer))))
            }
            Fault::Close => Reply::Close,
            Fault::Garbage => Reply::Garbage(GARBAGE.to_vec()),
            Fault::MalformedJson => Reply::Response(json_bytes(
                StatusCode::OK,
                br#"{"name":"sessionToken","token":"eyJhbGciOiJSUzUxMiJ9"#.to_vec(),
            )),
            Fault::OversizedBody(size) => {
                let (head, tail) = (r#"{"name":"sessionToken","token":""#, r#""}"#);
                let fill = size.saturating_sub(head.len() + tail.len());
                let body = format!("{head}{}{tail}", "A".repeat(fill));
                Reply::Response(json_bytes(StatusCode::OK, body.into_bytes()))
            }
        }
    }

    fn serve(
        &mut self,
        endpoint: Endpoint,
        now: SystemTime,
        request: &Request<Vec<u8>>,
        peer: &Peer,
    ) -> Response<Vec<u8>> {
        if endpoint.is_key_manager() && self.key_manager_down {
            return error(StatusCode::SERVICE_UNAVAILABLE, "Key manager unavailable");
        }
        if endpoint.is_login()
            && let Some(wait) = self.rate_limited(endpoint, now)
        {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Too many login attempts");
            response.headers_mut().insert(RETRY_AFTER, wait.into());
            return response;
        }
        match endpoint {
            Endpoint::SessionLogin => self.rsa_login(now, request, TokenKind::Session),
            Endpoint::KeyManagerLogin => self.rsa_login(now, request, TokenKind::KeyManager),
            Endpoint::CertSessionLogin => self.cert_login(now, request, peer, TokenKind::Session),
            Endpoint::CertKeyManagerLogin => self.cert_login(now, request, peer, TokenKind::KeyManager),
            Endpoint::SessionInfo => self.session_info(now, request),
            Endpoint::Echo => self.echo(now, request),
            Endpoint::AgentInfo => json(
                StatusCode::OK,
                &json!({
                    "hostname": "fake-pod",
                    "version": self.agent_version,
                    "onPrem": false,
                    "mt": true,
                    "commitId": "0000000",
                }),
            ),
            Endpoint::Health => json(StatusCode::OK, &json!({"status": "UP"})),
            Endpoint::HealthExtended => self.health_extended(),
            Endpoint::AppLogin | Endpoint::CertAppLogin => self.app_login(now, request, peer, endpoint),
            Endpoint::OboUserLogin
            | Endpoint::OboUsernameLogin
            | Endpoint::CertOboUserLogin
            | Endpoint::CertOboUsernameLogin => self.obo_login(now, request, peer, endpoint),
            Endpoint::Logout => self.logout(now, request, peer),
            Endpoint::ExtensionAppLogin => self.extension_app_login(now, request),
            Endpoint::CertExtensionAppLogin => self.cert_extension_app_login(now, request, peer),
            Endpoint::PodCertificate => self.pod_certificate_answer(peer, false),
            Endpoint::AppPodCertificate => self.pod_certificate_answer(peer, true),
            Endpoint::AccessToken => self.access_token(now, request),
            Endpoint::AccessTokenKeys => self.access_token_keys(),
            Endpoint::DatafeedCreate => self.datafeed_create(now, request),
            Endpoint::DatafeedRead => self.datafeed_read(now, request),
            Endpoint::NotFound => not_found(request, peer),
        }
    }

    /// `Some(seconds to wait)` when `endpoint` has used up its login budget; otherwise counts this login.
    fn rate_limited(&mut self, endpoint: Endpoint, now: SystemTime) -> Option<u64> {
        let limit = self.login_limit?;
        let recent = self.recent_logins.entry(endpoint).or_default();
        // A pod clock moved backwards (negative skew) finds "future" entries: they still count until they age out.
        while recent.front().is_some_and(|&t| now.duration_since(t).is_ok_and(|age| age >= limit.window)) {
            recent.pop_front();
        }
        if recent.len() < usize::try_from(limit.logins).unwrap_or(usize::MAX) {
            recent.push_back(now);
            return None;
        }
        // The oldest login's slot frees a window after it; with a budget of 0 there is none, and a client is told
        // to come back after a window.
        let start = recent.front().copied().unwrap_or(now);
        let wait = start.checked_add(limit.window).and_then(|frees| frees.duration_since(now).ok());
        Some(ceil_secs(wait.unwrap_or(limit.window)).max(1))
    }

    /// A1/A2: PROTOCOL §3.1 and §5.
    fn rsa_login(&mut self, now: SystemTime, request: &Request<Vec<u8>>, kind: TokenKind) -> Response<Vec<u8>> {
        if !is_json_media_type(request.headers().get(CONTENT_TYPE)) {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type: send Content-Type: application/json",
            );
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body()) else {
            return error(StatusCode::BAD_REQUEST, "Invalid request body: expected JSON {\"token\": ...}");
        };
        let Some(Value::String(token)) = body.get("token") else {
            return unauthorized("Invalid JWT: no token");
        };
        let jwt = match parse_login_jwt(token) {
            Ok(jwt) => jwt,
            Err(message) => return unauthorized(message),
        };
        let Some(bot) = self.bots.get(&jwt.sub) else {
            return unauthorized("Invalid user");
        };
        if !bot.active {
            return unauthorized("User is not active");
        }
        let Some(key) = &bot.rsa_key else {
            return unauthorized("No public key registered for user");
        };
        if !jwt.signed_by(key) {
            return unauthorized("Invalid JWT signature");
        }
        let now_secs = epoch_secs(now);
        if jwt.exp <= now_secs {
            return unauthorized("JWT expired");
        }
        if jwt.exp > now_secs + MAX_JWT_LIFETIME.as_secs_f64() {
            return unauthorized("JWT expiration is more than 5 minutes ahead");
        }
        self.issue(now, &jwt.sub, kind)
    }

    /// A3/A4: PROTOCOL §3.3 and §3.4.
    fn cert_login(
        &mut self,
        now: SystemTime,
        request: &Request<Vec<u8>>,
        peer: &Peer,
        kind: TokenKind,
    ) -> Response<Vec<u8>> {
        if request.headers().contains_key(CONTENT_TYPE) || !request.body().is_empty() {
            return error(StatusCode::BAD_REQUEST, "Certificate authentication takes no body and no Content-Type");
        }
        let Some(cn) = &peer.client_cn else {
            return error(StatusCode::BAD_REQUEST, "No client certificate presented");
        };
        let Some(bot) = self.bots.get(cn) else {
            return unauthorized("Invalid certificate: unknown user");
        };
        if !bot.active {
            return unauthorized("User is not active");
        }
        if !bot.cert {
            return error(StatusCode::FORBIDDEN, "Certificate authentication is not allowed for the requested user");
        }
        let cn = cn.clone();
        self.issue(now, &cn, kind)
    }

    fn issue(&mut self, now: SystemTime, username: &str, kind: TokenKind) -> Response<Vec<u8>> {
        let expires_at = now.checked_add(self.session_ttl).unwrap_or(now);
        let grant = Grant { username: username.to_owned(), expires_at, skd: self.skd };
        let (name, token) = match kind {
            TokenKind::Session => {
                let user_id = self.user_id(username).unwrap_or_default();
                let mut claims = json!({
                    "sub": username,
                    "iss": "symphony",
                    "sessionId": self.random_hex(16),
                    "userId": user_id,
                    "exp": expires_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                });
                if self.skd {
                    claims["canUseSimplifiedKeyDelivery"] = Value::Bool(true);
                }
                let token = sign_hs512(&self.session_mac, &claims);
                self.sessions.insert(token.clone(), grant);
                ("sessionToken", token)
            }
            TokenKind::KeyManager => {
                let token = self.random_hex(32);
                self.key_manager_tokens.insert(token.clone(), grant);
                ("keyManagerToken", token)
            }
        };
        self.prune(now);
        json(StatusCode::OK, &json!({"name": name, "token": token}))
    }

    /// S1: the bot's own `UserV2` record.
    fn session_info(&self, now: SystemTime, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        // With Common JWT on, pod calls carry the access token instead of the session token.
        let grant = self.live_grant(&self.sessions, request, "sessionToken", now);
        let Some(grant) = grant.or_else(|| self.bearer_grant(request, now)) else {
            return match self.obo_session_info(now, request) {
                Some(user) => json(StatusCode::OK, &user),
                None => unauthorized("Invalid session"),
            };
        };
        let name = &grant.username;
        let id = self.user_id(name).unwrap_or_default();
        json(
            StatusCode::OK,
            &json!({
                "id": id,
                "emailAddress": format!("{name}@bots.fake-pod.test"),
                "firstName": name,
                "lastName": "Bot",
                "displayName": name,
                "title": "Service account",
                "company": "Fake Pod",
                "username": name,
                "location": "Loopback",
                "accountType": "SYSTEM",
                "avatars": [
                    {"size": "original", "url": "../avatars/static/150/default.png"},
                    {"size": "small", "url": "../avatars/static/50/default.png"}
                ],
                "roles": ["INDIVIDUAL"],
            }),
        )
    }

    /// G1: both tokens of the same bot, or the session alone when it was issued with SKD and the agent
    /// supports SKD (24.12 or later).
    fn echo(&self, now: SystemTime, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let Some(session) = self.live_grant(&self.sessions, request, "sessionToken", now) else {
            return unauthorized("Invalid session");
        };
        if !(session.skd && self.agent_supports_skd()) {
            let km = self.live_grant(&self.key_manager_tokens, request, "keyManagerToken", now);
            if km.is_none_or(|km| km.username != session.username) {
                return unauthorized("Invalid key manager token");
            }
        }
        if serde_json::from_slice::<Value>(request.body()).is_err() {
            return error(StatusCode::BAD_REQUEST, "Invalid request body: expected JSON");
        }
        json_bytes(StatusCode::OK, request.body().clone())
    }

    fn live_grant<'a>(
        &self,
        store: &'a HashMap<String, Grant>,
        request: &Request<Vec<u8>>,
        header: &str,
        now: SystemTime,
    ) -> Option<&'a Grant> {
        let token = request.headers().get(header)?.to_str().ok()?;
        store.get(token).filter(|g| self.is_live(g, now))
    }

    fn is_live(&self, grant: &Grant, now: SystemTime) -> bool {
        now < grant.expires_at && self.bots.get(&grant.username).is_some_and(|b| b.active)
    }

    fn prune(&mut self, now: SystemTime) {
        if self.sessions.len() + self.key_manager_tokens.len() < self.prune_at {
            return;
        }
        self.sessions.retain(|_, g| now < g.expires_at);
        self.key_manager_tokens.retain(|_, g| now < g.expires_at);
        let kept = self.sessions.len() + self.key_manager_tokens.len();
        self.prune_at = PRUNE_THRESHOLD.max(kept * 2);
    }

    fn random_hex(&mut self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.token_seq += 1;
        // Should the OS RNG ever fail, tokens must still be unique: a sequence number keeps them so.
        if self.random.fill(&mut buf).is_err() {
            buf.iter_mut().zip(self.token_seq.to_be_bytes()).for_each(|(b, n)| *b = n);
        }
        buf.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn check_bot_name(name: &str) -> Result<(), TestkitError> {
    let ok = (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok { Ok(()) } else { Err(TestkitError::InvalidBotName(name.to_owned())) }
}

/// FNV-1a of the name, folded into the 14-digit range real Symphony user ids use.
fn stable_user_id(name: &str, taken: &[u64]) -> u64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    let mut id = 10_000_000_000_000 + hash % 90_000_000_000_000;
    while taken.contains(&id) {
        id += 1;
    }
    id
}

/// `(major, minor)` of an agent version such as `Agent-24.10.1-815-Linux-...` (PROTOCOL §7: `Agent-(\d+)\.(\d+)\.`).
fn agent_version(version: &str) -> Option<(u64, u64)> {
    let rest = version.strip_prefix("Agent-")?;
    let mut parts = rest.splitn(3, '.');
    let (major, minor, _) = (parts.next()?, parts.next()?, parts.next()?);
    let number = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten();
    Some((number(major)?, number(minor)?))
}

/// Whether a `Content-Type` names `application/json`, parameters (`; charset=utf-8`) allowed. The comparison is
/// the whole of media-type matching the fake needs, so no media-type crate is pulled in for it.
fn is_json_media_type(value: Option<&HeaderValue>) -> bool {
    let Some(Ok(value)) = value.map(HeaderValue::to_str) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn retry_after_value(retry_after: RetryAfter, pod_now: SystemTime) -> HeaderValue {
    let date = |t: SystemTime| HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok();
    let value = match retry_after {
        RetryAfter::Seconds(seconds) => Some(HeaderValue::from(seconds)),
        RetryAfter::DateIn(after) => pod_now.checked_add(after).and_then(date),
        RetryAfter::Date(at) => date(at),
    };
    // HTTP dates cover years 1970 to 9999; a date beyond them is shown as the latest one.
    value.unwrap_or_else(|| HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"))
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// 404 for an unknown path, or for a path that another host serves (a client sent it to the wrong host).
fn not_found(request: &Request<Vec<u8>>, peer: &Peer) -> Response<Vec<u8>> {
    let (method, path) = (request.method(), request.uri().path());
    let elsewhere = Endpoint::classify(method, path).role().filter(|home| Some(*home) != peer.role);
    let message = match (peer.role, elsewhere) {
        (Some(here), Some(home)) => {
            format!("No route for {method} {path} on the {} host: the {} host serves it", here.name(), home.name())
        }
        _ => format!("No route for {method} {path}"),
    };
    error(StatusCode::NOT_FOUND, &message)
}

fn epoch_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(status: StatusCode, body: &Value) -> Response<Vec<u8>> {
    json_bytes(status, body.to_string().into_bytes())
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// The pod's `Error` schema: `{"code": int, "message": string}`.
fn error(status: StatusCode, message: &str) -> Response<Vec<u8>> {
    json(status, &json!({"code": status.as_u16(), "message": message}))
}

fn unauthorized(message: &str) -> Response<Vec<u8>> {
    error(StatusCode::UNAUTHORIZED, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_key_parses_and_user_ids_are_stable() {
        let mut pod = FakePod::new();
        let a = pod.add_cert_bot("alice").unwrap();
        assert_eq!(a, stable_user_id("alice", &[]));
        assert_eq!(a.to_string().len(), 14);
        assert_eq!(pod.add_cert_bot("alice").unwrap(), a);
        assert!(pod.add_cert_bot("../x").is_err());
        assert!(pod.add_cert_bot("").is_err());
    }

    #[test]
    fn agent_versions_parse_as_the_bdks_do() {
        assert_eq!(agent_version("Agent-24.10.1-815-Linux-4.14.314-237.533.amzn2.x86_64"), Some((24, 10)));
        assert_eq!(agent_version("Agent-2.55.0-SNAPSHOT-Linux-4.4.86+"), Some((2, 55)));
        assert_eq!(agent_version(DEFAULT_AGENT_VERSION), Some((24, 12)));
        for bad in ["unknown", "Agent-24", "Agent-24.12", "Agent-.12.0", "agent-24.12.0", "Agent-24.x.0", ""] {
            assert_eq!(agent_version(bad), None, "{bad}");
        }
        let mut pod = FakePod::new();
        for (version, skd) in [("Agent-24.12.0", true), ("Agent-25.0.0", true), ("Agent-24.13.0", true)] {
            pod.set_agent_version(version);
            assert_eq!(pod.agent_supports_skd(), skd, "{version}");
        }
        for version in ["Agent-24.11.0", "Agent-23.15.0", "Agent-2.55.0-SNAPSHOT", "unknown"] {
            pod.set_agent_version(version);
            assert!(!pod.agent_supports_skd(), "{version}");
        }
    }

    #[test]
    fn json_media_types() {
        let is_json = |v: &'static str| is_json_media_type(Some(&HeaderValue::from_static(v)));
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/json-patch+json"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json_media_type(None));
    }

    #[test]
    fn skew_moves_the_pod_clock_both_ways() {
        let mut pod = FakePod::new();
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        pod.set_clock_skew(-10);
        assert_eq!(pod.pod_time(t), UNIX_EPOCH + Duration::from_secs(990));
        pod.set_clock_skew(10);
        assert_eq!(pod.pod_time(t), UNIX_EPOCH + Duration::from_secs(1010));
    }
}
