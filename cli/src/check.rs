//! `symphony-auth check`: what a bot developer needs when a login fails. The configuration as resolved, the key or
//! certificate, each host's reachability and TLS trust, the clock offset, and each login endpoint's own answer.
//! Requests go through the bot's own HTTP client ([`Bot::send_unauthenticated`]), so trust store, client
//! certificate, proxy and timeouts are the ones a login uses. Never prints a token, a JWT or a key. With `--json`,
//! the same findings as one JSON object on stdout at the end.

use std::path::Path;
use std::time::SystemTime;

use symphony_auth_blocking::symphony_auth_core::{
    self, BaseUrl, ConfigFileError, CredentialSource, HttpRequest, HttpResponse, IdentityKeyFormat, KeyFormat,
    KeyManagerPolicy, LoginEndpoint, LoginMethod, RsaSigner, Source, UnixTime, grants_simplified_key_delivery,
    login_jwt, parse_bdk_config,
};
use symphony_auth_blocking::{Bot, Error};

use serde_json::{Map, Value, json};

use crate::failure::{Class, Failure};

/// A clock offset above this is a problem for RSA logins (the threshold the library uses to blame the clock).
const CLOCK_TOLERANCE_SECS: i64 = 30;

/// The findings so far: as text, lines are printed as they come; as JSON, they are gathered for one object at the
/// end. Problems are kept for the exit status.
#[derive(Default)]
struct Report {
    problems: Vec<(Class, String)>,
    /// `Some` with `--json`: the object printed at the end.
    json: Option<Map<String, Value>>,
    /// The section findings go to (`credentials`, `hosts`, `clock`, `logins`).
    section: &'static str,
}

impl Report {
    fn new(json: bool) -> Self {
        Self { json: json.then(Map::new), ..Self::default() }
    }

    /// A heading line of the text, and the section of the findings that follow it.
    fn section(&mut self, section: &'static str, heading: &str) {
        self.section = section;
        self.text(heading);
    }

    /// A line of the text only.
    fn text(&self, line: &str) {
        if self.json.is_none() {
            println!("{line}");
        }
    }

    /// A setting: a line of the text, a field of the JSON object.
    fn setting(&mut self, key: &str, line: &str, value: Value) {
        match &mut self.json {
            Some(object) => {
                object.insert(key.to_owned(), value);
            }
            None => println!("{line}"),
        }
    }

    fn finding(&mut self, status: &str, mark: &str, text: &str) {
        match &mut self.json {
            Some(object) => {
                let findings = object.entry("findings").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(findings) = findings {
                    findings.push(json!({"section": self.section, "status": status, "text": text}));
                }
            }
            None => println!("  {mark:<6}{text}"),
        }
    }

    fn ok(&mut self, text: &str) {
        self.finding("ok", "ok", text);
    }

    fn note(&mut self, text: &str) {
        self.finding("note", "-", text);
    }

    /// Works, but should not be so: plain HTTP, for one.
    fn warn(&mut self, text: &str) {
        self.finding("warn", "WARN", text);
    }

    fn problem(&mut self, class: Class, text: String) {
        self.finding("fail", "FAIL", &text);
        self.problems.push((class, text));
    }

    /// Exit status: success when nothing was wrong, else the first problem's class.
    fn finish(mut self) -> Result<(), Failure> {
        let count = self.problems.len();
        if let Some(mut object) = self.json.take() {
            object.entry("findings").or_insert_with(|| Value::Array(Vec::new()));
            object.insert("problems".into(), json!(count));
            object.insert("ok".into(), json!(count == 0));
            println!("{}", Value::Object(object));
        } else if count == 0 {
            println!("everything looks right");
        } else {
            println!("{count} problem(s) found");
        }
        if self.problems.is_empty() {
            return Ok(());
        }
        let (class, text) = self.problems.remove(0);
        let more = if count > 1 { format!(" (and {} more problem(s), see above)", count - 1) } else { String::new() };
        Err(Failure::new(class, format!("{text}{more}")))
    }
}

/// Runs every check on the configuration at `path`.
pub(crate) fn run(path: &Path, attempts: Option<u32>, json: bool) -> Result<(), Failure> {
    let config_error = |error: ConfigFileError| Failure::from(Error::ConfigFile(error));
    let text = std::fs::read_to_string(path)
        .map_err(|e| config_error(ConfigFileError::Unreadable { path: path.to_owned(), reason: e.to_string() }))?;
    let settings = parse_bdk_config(&text, &|name| std::env::var(name).ok()).map_err(|e| config_error(e.into()))?;
    let rsa = matches!(settings.credentials, CredentialSource::RsaKey(_));
    let mut report = Report::new(json);

    let shown = path.display().to_string();
    report.setting("config", &format!("configuration: {shown}"), json!(shown));
    let username = settings.username.as_str();
    report.setting("username", &format!("bot username:  {username}"), json!(username));
    let method = if rsa { "RSA key (bot.privateKey)" } else { "client certificate (bot.certificate)" };
    report.setting("method", &format!("login method:  {method}"), json!(if rsa { "rsa" } else { "certificate" }));
    let e = &settings.endpoints;
    let unused = if rsa { "  (not used by RSA login)" } else { "" };
    report.setting(
        "services",
        &format!(
            "services:\n  pod           {}\n  agent         {}\n  key manager   {}\n  session auth  {}{unused}",
            e.pod, e.agent, e.key_manager, e.session_auth
        ),
        json!({
            "pod": e.pod.to_string(),
            "agent": e.agent.to_string(),
            "key_manager": e.key_manager.to_string(),
            "session_auth": e.session_auth.to_string(),
        }),
    );
    if let Some(proxy) = &settings.proxy {
        report.setting("proxy", &format!("proxy:         {}", proxy.url), json!(proxy.url));
    }

    report.section("credentials", "credentials:");
    let loaded = match settings.load_with_signer(crate::signer_backend(), &mut |file| std::fs::read(file)) {
        Ok(loaded) => loaded,
        Err(error) => {
            report.problem(Class::Config, error.to_string());
            return report.finish();
        }
    };
    match &settings.credentials {
        CredentialSource::RsaKey(source) => describe_rsa_key(source, &mut report),
        _ => match &loaded.identity {
            Some(identity) => {
                let kind = if settings.credentials.is_pkcs12() { "PKCS#12" } else { "PEM" };
                let key = match identity.private_key_format() {
                    IdentityKeyFormat::Pkcs8 => "PKCS#8",
                    IdentityKeyFormat::Pkcs1 => "PKCS#1 (RSA)",
                    IdentityKeyFormat::Sec1 => "SEC 1 (EC)",
                    _ => "other",
                };
                let chain = identity.certificate_chain_der().len();
                report.ok(&format!("certificate ({kind}): chain of {chain} certificate(s), private key {key}"));
            }
            None => report.problem(Class::Config, "`bot.certificate`: no client certificate loaded".into()),
        },
    }
    match &loaded.extra_roots_pem {
        Some(pem) => {
            let roots = String::from_utf8_lossy(pem).matches("-----BEGIN CERTIFICATE-----").count();
            report.ok(&format!("ssl.trustStore: {roots} extra root certificate(s), added to the Mozilla roots"));
        }
        None => report.note("ssl.trustStore: not set (the Mozilla roots only)"),
    }
    // The host whose name a failed request needed: the proxy's when there is one.
    let proxy_host = settings.proxy.as_ref().and_then(|p| p.url.parse::<http::Uri>().ok()?.host().map(str::to_owned));
    let name_of = |base: &BaseUrl| proxy_host.clone().unwrap_or_else(|| base.host().to_owned());
    let bot = match crate::build_bot(loaded, attempts, None) {
        Ok(bot) => bot,
        Err(error) => {
            report.problem(Class::of(&error), error.to_string());
            return report.finish();
        }
    };
    if !report.problems.is_empty() {
        return report.finish();
    }

    report.section("hosts", "hosts (reachability and TLS trust):");
    let endpoints = bot.config().endpoints();
    let mut bases = vec![&endpoints.pod];
    if !rsa {
        bases.push(&endpoints.session_auth);
    }
    bases.extend([&endpoints.key_manager, &endpoints.agent]);
    let mut probed = Vec::new();
    let mut failed_origins = Vec::new();
    let mut clock = None;
    for base in bases {
        let origin = origin(base);
        if probed.contains(&origin) {
            continue;
        }
        probed.push(origin.clone());
        let probe = http::Request::get(base.join("/")).body(Vec::new()).unwrap_or_default();
        let outcome = bot.send_unauthenticated(probe);
        let received = SystemTime::now();
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                if base.scheme() == "https" {
                    report.ok(&format!("{origin}  TLS trusted, answered HTTP {status}"));
                } else {
                    // Tokens and the login JWT cross the network readable by anyone on the path.
                    report.warn(&format!("{origin}  plain HTTP, no TLS: tokens travel unencrypted (HTTP {status})"));
                }
                if clock.is_none()
                    && let Some(offset) = clock_offset(&response, received)
                {
                    clock = Some((origin, offset));
                }
            }
            Err(error) => {
                let class = Failure::of_request(error.clone(), &name_of(base)).class;
                let hint = match class {
                    Class::Tls => "; is the CA that signed its certificate in ssl.trustStore?",
                    Class::Unreachable => "; check the host, the port and the proxy",
                    _ => "",
                };
                report.problem(class, format!("{origin}  {error}{hint}"));
                failed_origins.push(origin);
            }
        }
    }

    report.section("clock", "clock:");
    match clock {
        Some((origin, offset)) => {
            let text = format!("the server's clock ({origin}, Date header) is {offset:+} s from ours");
            if offset.abs() <= CLOCK_TOLERANCE_SECS {
                report.ok(&text);
            } else if rsa {
                let lifetime = bot.config().jwt_lifetime().as_secs();
                report.problem(
                    Class::Clock,
                    format!("{text}: login JWTs live {lifetime} s by our clock, so the pod may refuse them; fix the clock (NTP)"),
                );
            } else {
                report.note(&format!("{text} (certificate logins do not depend on it)"));
            }
        }
        None => report.note("unknown: no server answered with a Date header"),
    }

    report.section("logins", "login endpoints:");
    check_logins(&bot, &failed_origins, &name_of, &mut report);
    report.finish()
}

/// Prints the key's format and size and its public key, the one to register on the pod.
fn describe_rsa_key(source: &Source, report: &mut Report) {
    let pem = match source {
        Source::Path(path) => std::fs::read(path).unwrap_or_default(),
        Source::Content(bytes) => bytes.clone(),
        _ => Vec::new(),
    };
    match RsaSigner::from_pem(&pem) {
        Ok(signer) => {
            let format = match signer.format() {
                KeyFormat::Pkcs8 => "PKCS#8",
                KeyFormat::Pkcs1 => "PKCS#1",
                _ => "other",
            };
            report.ok(&format!("RSA private key: {format}, {} bits", signer.bits()));
            if let Some(backend) = crate::signer_backend() {
                report.note(&format!("signed with {backend}, the fastest signer in this build"));
            }
            let public = signer.public_key_pem();
            report.setting(
                "public_key_pem",
                &format!(
                    "public key (SPKI PEM): the pod must hold exactly this one for the bot\n{}",
                    public.trim_end()
                ),
                json!(public),
            );
        }
        Err(error) => report.problem(Class::Config, format!("`bot.privateKey`: {error}")),
    }
}

/// Sends each login request as it is and reports each answer: status and server message, never the token.
fn check_logins(bot: &Bot, failed_origins: &[String], name_of: &dyn Fn(&BaseUrl) -> String, report: &mut Report) {
    let config = bot.config();
    let endpoints = config.endpoints();
    let requests: Vec<(LoginEndpoint, HttpRequest)> = match config.method() {
        LoginMethod::Rsa(signer) => {
            let now = UnixTime::from_system_time(SystemTime::now());
            match login_jwt(config.username().as_str(), now, config.jwt_lifetime(), signer.as_ref()) {
                Ok(jwt) => [LoginEndpoint::RsaSession, LoginEndpoint::RsaKeyManager]
                    .into_iter()
                    .map(|endpoint| (endpoint, symphony_auth_core::rsa_login(endpoint, endpoints, &jwt)))
                    .collect(),
                Err(error) => {
                    report.problem(Class::Config, format!("cannot sign the login JWT: {error}"));
                    return;
                }
            }
        }
        _ => [LoginEndpoint::CertificateSession, LoginEndpoint::CertificateKeyManager]
            .into_iter()
            .map(|endpoint| (endpoint, symphony_auth_core::certificate_login(endpoint, endpoints)))
            .collect(),
    };
    let mut skd = false;
    for (endpoint, request) in requests {
        let url = format!("POST {}", request.uri());
        let key_manager = endpoint == LoginEndpoint::RsaKeyManager || endpoint == LoginEndpoint::CertificateKeyManager;
        if key_manager && config.key_manager() == KeyManagerPolicy::Never {
            report.note(&format!("{url}: not used (key manager disabled)"));
            continue;
        }
        if failed_origins.contains(&origin(endpoint.base(endpoints))) {
            report.note(&format!("{url}: not tried (its host failed above)"));
            continue;
        }
        let optional = key_manager && skd && config.key_manager() != KeyManagerPolicy::Always;
        match bot.send_unauthenticated(request) {
            Ok(response) => {
                let answer = Answer::read(&response);
                if answer.token.is_some() && response.status() == 200 {
                    skd |= !key_manager && answer.token.as_deref().is_some_and(grants_simplified_key_delivery);
                    let note = if skd && !key_manager { " (simplified key delivery)" } else { "" };
                    report.ok(&format!("{url}: HTTP 200, token received{note}"));
                } else if optional {
                    report.note(&format!("{url}: {} (not needed: simplified key delivery)", answer.describe()));
                } else {
                    let class = match answer.status {
                        400 | 401 | 403 | 407 => Class::Rejected,
                        _ => Class::Other,
                    };
                    report.problem(class, format!("{url}: {}", answer.describe()));
                }
            }
            Err(error) if optional => report.note(&format!("{url}: {error} (not needed: simplified key delivery)")),
            Err(error) => {
                let class = Failure::of_request(error.clone(), &name_of(endpoint.base(endpoints))).class;
                report.problem(class, format!("{url}: {error}"));
            }
        }
    }
    let has = |wanted: Class| report.problems.iter().any(|(class, _)| *class == wanted);
    if has(Class::Rejected) && !has(Class::Clock) && matches!(config.method(), LoginMethod::Rsa(_)) {
        let hint = format!(
            "compare the public key above with the one registered for {:?} on the pod",
            config.username().as_str()
        );
        report.finding("hint", "hint:", &hint);
    }
}

/// What a login endpoint answered. The token, when there is one, is only ever tested, never printed.
struct Answer {
    status: u16,
    token: Option<String>,
    message: Option<String>,
}

impl Answer {
    fn read(response: &HttpResponse) -> Self {
        let body = serde_json::from_slice::<serde_json::Value>(response.body()).ok();
        let field = |name| body.as_ref().and_then(|b| b.get(name)).and_then(serde_json::Value::as_str);
        let status = response.status().as_u16();
        let token = field("token").filter(|t| !t.is_empty()).map(str::to_owned);
        // Only error answers' messages are shown: a success's body is the token's.
        let message = if status == 200 {
            None
        } else {
            field("message").map(|m| m.chars().filter(|c| !c.is_control()).take(200).collect())
        };
        Self { status, token, message }
    }

    fn describe(&self) -> String {
        match (&self.message, self.status) {
            (Some(message), status) => format!("HTTP {status}: {message}"),
            (None, 200) => "HTTP 200 but no token in the answer".to_owned(),
            (None, status) => format!("HTTP {status}"),
        }
    }
}

/// `scheme://host:port`: what TLS trust and reachability are about.
fn origin(base: &BaseUrl) -> String {
    format!("{}://{}:{}", base.scheme(), base.host(), base.port())
}

/// Server time minus `received`, in whole seconds, from the answer's `Date` header.
fn clock_offset(response: &HttpResponse, received: SystemTime) -> Option<i64> {
    symphony_auth_core::server_clock_offset(response, UnixTime::from_system_time(received))
}
