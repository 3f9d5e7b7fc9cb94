//! `SymphonyAuthConfig`: the settings an authenticator is made from, collected one call at a time or loaded from
//! a BDK configuration file, and checked by the core when the authenticator is made.

use std::path::Path;
use std::time::Duration;

use symphony_auth_core::{
    Authenticator, BaseUrl, Config, ConfigFileError, CoolDown, Endpoints, KeyManagerPolicy, LoginMethod, RetryPolicy,
    SignerBackend, parse_bdk_config,
};
use zeroize::Zeroizing;

use crate::abi::{
    Failure, Handle, LastError, Live, Out, SymphonyAuthBytes, SymphonyAuthStatus, bytes, code, free_handle, guard,
    into_handle, last_error, text, with_handle,
};
use crate::machine::SymphonyAuthAuthenticator;

/// The signer of RSA keys: `aws-lc` when this library is built with the `aws-lc-signer` feature, else `rsa`.
fn signer_backend() -> SignerBackend {
    SignerBackend::fastest().unwrap_or(SignerBackend::Rsa)
}

/// Which service a base URL is for (`symphony_auth_config_set_url`). A service left unset uses the pod's URL.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthService {
    /// The pod: RSA session login, pod APIs.
    Pod = 1,
    /// The key manager (RSA and certificate key-manager logins).
    KeyManager = 2,
    /// The session-auth host (certificate session login).
    SessionAuth = 3,
    /// The agent.
    Agent = 4,
}

/// Whether to log in to the key manager (`symphony_auth_config_set_key_manager_policy`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymphonyAuthKeyManagerPolicy {
    /// Unless the session token grants simplified key delivery (the default).
    Auto = 1,
    /// Always; its failure fails the login.
    Always = 2,
    /// Never.
    Never = 3,
}

/// The settings of an authenticator. Not thread-safe: use it from one thread at a time.
#[derive(Debug, Default)]
pub struct SymphonyAuthConfig {
    pod: Option<BaseUrl>,
    key_manager: Option<BaseUrl>,
    session_auth: Option<BaseUrl>,
    agent: Option<BaseUrl>,
    insecure_http: bool,
    username: Option<String>,
    method: Option<LoginMethod>,
    // Unset settings keep the core's defaults: none are repeated here.
    key_manager_policy: Option<KeyManagerPolicy>,
    parallel_login: Option<bool>,
    jwt_lifetime: Option<Duration>,
    retry: Option<RetryPolicy>,
    cool_down: Option<CoolDown>,
    error: LastError,
}

impl Handle for SymphonyAuthConfig {
    fn errors(&self) -> &LastError {
        &self.error
    }
    fn errors_mut(&mut self) -> &mut LastError {
        &mut self.error
    }
}

impl SymphonyAuthConfig {
    /// Takes what a BDK configuration says: URLs (with their `allowInsecureHttp` consent), username, credentials
    /// (the key read and parsed, or the certificate checked) and retry policy. Files it names are read with std,
    /// relative to the working directory; `${NAME}` is expanded from the environment.
    fn load_bdk(&mut self, text: &str) -> Result<(), Failure> {
        let settings = parse_bdk_config(text, &|name| std::env::var(name).ok())
            .map_err(|e| Failure::config(ConfigFileError::from(e)))?;
        let loaded = settings
            .load_with_signer(Some(signer_backend()), &mut |path| std::fs::read(path))
            .map_err(Failure::config)?;
        let config = &loaded.config;
        let endpoints = config.endpoints();
        self.pod = Some(endpoints.pod.clone());
        self.key_manager = Some(endpoints.key_manager.clone());
        self.session_auth = Some(endpoints.session_auth.clone());
        self.agent = Some(endpoints.agent.clone());
        self.username = Some(config.username().as_str().to_owned());
        self.method = Some(config.method().clone());
        self.retry = Some(config.retry().clone());
        Ok(())
    }

    /// The core's configuration for these settings; the core checks them.
    pub(crate) fn to_config(&self) -> Result<Config, Failure> {
        let pod = self.pod.clone().ok_or_else(|| {
            Failure::config("no pod URL: call symphony_auth_config_set_url with the pod's URL, or load a BDK file")
        })?;
        let or_pod = |url: &Option<BaseUrl>| url.clone().unwrap_or_else(|| pod.clone());
        let mut endpoints = Endpoints {
            key_manager: or_pod(&self.key_manager),
            session_auth: or_pod(&self.session_auth),
            agent: or_pod(&self.agent),
            pod: pod.clone(),
        };
        if self.insecure_http {
            endpoints = endpoints.allow_insecure_http();
        }
        let username = self.username.as_deref().ok_or_else(|| {
            Failure::config("no username: call symphony_auth_config_set_username, or load a BDK file")
        })?;
        let method = self.method.clone().ok_or_else(|| {
            Failure::config(
                "no credentials: call symphony_auth_config_set_rsa_key_pem or \
                 symphony_auth_config_set_certificate_login, or load a BDK file",
            )
        })?;
        let mut config = Config::new(endpoints, username, method)?;
        if let Some(lifetime) = self.jwt_lifetime {
            config = config.with_jwt_lifetime(lifetime)?;
        }
        if let Some(policy) = self.key_manager_policy {
            config = config.with_key_manager(policy);
        }
        if let Some(parallel) = self.parallel_login {
            config = config.with_parallel_login(parallel);
        }
        if let Some(retry) = &self.retry {
            config = config.with_retry(retry.clone());
        }
        if let Some(cool_down) = self.cool_down {
            config = config.with_cool_down(cool_down);
        }
        Ok(config)
    }
}

/// A new, empty configuration, or NULL if it cannot be allocated. Free it with `symphony_auth_config_free`.
#[unsafe(no_mangle)]
pub extern "C" fn symphony_auth_config_new() -> *mut SymphonyAuthConfig {
    guard(std::ptr::null_mut(), || into_handle(SymphonyAuthConfig::default()))
}

/// Frees a configuration made by `symphony_auth_config_new`. NULL is ignored. Authenticators made from it are
/// independent of it.
///
/// # Safety
/// `config` is NULL or a configuration not freed yet; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_free(config: *mut SymphonyAuthConfig) {
    guard((), || {
        // SAFETY: `config` is NULL or a configuration from `symphony_auth_config_new`, not freed yet (the contract).
        unsafe { free_handle(config) }
    });
}

/// The message of the last failed call on `config` (NUL-terminated as well); empty after a successful call. Owned
/// by `config`, valid until the next call on it. Never holds a secret.
///
/// # Safety
/// `config` is NULL (giving an absent view) or a live configuration.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_last_error(config: *const SymphonyAuthConfig) -> SymphonyAuthBytes {
    // SAFETY: `config` is NULL or live, and nothing mutates it during the call (the contract above).
    unsafe { last_error(config) }
}

/// Loads a BDK configuration file (YAML or JSON, as the Java and Python SDKs read): URLs, username, RSA key or
/// client certificate, retry policy. The file and those it names (key, certificate) are read here, relative paths
/// from the working directory; `${NAME}` and `${NAME:-default}` are expanded from the environment. Settings made
/// afterwards override the file's. `Config` with a message naming the key at fault, never a value.
///
/// # Safety
/// `config` is NULL or live; `path` points at `path_len` bytes (on Unix any bytes, elsewhere UTF-8).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_load_bdk_file(
    config: *mut SymphonyAuthConfig,
    path: *const u8,
    path_len: usize,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        // SAFETY: `path` points at `path_len` readable bytes (the contract above).
        let path = unsafe { bytes(path, path_len, "path")? };
        #[cfg(unix)]
        let path = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path));
        #[cfg(not(unix))]
        let path = Path::new(std::str::from_utf8(path).map_err(|_| Failure::invalid("`path` is not UTF-8"))?);
        let unreadable =
            |reason: String| Failure::config(ConfigFileError::Unreadable { path: path.to_owned(), reason });
        let content = Zeroizing::new(std::fs::read(path).map_err(|e| unreadable(e.to_string()))?);
        let text = std::str::from_utf8(&content).map_err(|_| unreadable("not UTF-8 text".into()))?;
        config.load_bdk(text)
    })
}

/// Loads a BDK configuration from its text, as `symphony_auth_config_load_bdk_file` does (files it names are read
/// relative to the working directory). `bdk_text` is the caller's; it is not kept.
///
/// # Safety
/// `config` is NULL or live; `bdk_text` points at `bdk_text_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_load_bdk_text(
    config: *mut SymphonyAuthConfig,
    bdk_text: *const u8,
    bdk_text_len: usize,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        // SAFETY: `bdk_text` points at `bdk_text_len` readable bytes (the contract above).
        let bdk_text = unsafe { text(bdk_text, bdk_text_len, "bdk_text")? };
        config.load_bdk(bdk_text)
    })
}

/// Sets the base URL of `service` (a `SymphonyAuthService`): `https://host[:port][/context]`; a value without a
/// scheme is taken as https. Services left unset use the pod's URL. Plain `http` is accepted for loopback hosts
/// only, unless `symphony_auth_config_allow_insecure_http` is called.
///
/// # Safety
/// `config` is NULL or live; `url` points at `url_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_url(
    config: *mut SymphonyAuthConfig,
    service: u32,
    url: *const u8,
    url_len: usize,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        let service = code(service, "SymphonyAuthService", |value| match value {
            1 => Some(SymphonyAuthService::Pod),
            2 => Some(SymphonyAuthService::KeyManager),
            3 => Some(SymphonyAuthService::SessionAuth),
            4 => Some(SymphonyAuthService::Agent),
            _ => None,
        })?;
        // SAFETY: `url` points at `url_len` readable bytes (the contract above).
        let url = unsafe { text(url, url_len, "url")? };
        let (which, slot) = match service {
            SymphonyAuthService::Pod => ("pod", &mut config.pod),
            SymphonyAuthService::KeyManager => ("keyManager", &mut config.key_manager),
            SymphonyAuthService::SessionAuth => ("sessionAuth", &mut config.session_auth),
            SymphonyAuthService::Agent => ("agent", &mut config.agent),
        };
        *slot = Some(BaseUrl::parse(which, url)?);
        Ok(())
    })
}

/// Consents to plain `http` base URLs whose host is not loopback (a test pod on a trusted network): the login JWT
/// and the tokens then cross the network unencrypted.
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_allow_insecure_http(
    config: *mut SymphonyAuthConfig,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        config.insecure_http = true;
        Ok(())
    })
}

/// Sets the bot's username (the JWT subject, or the certificate's common name).
///
/// # Safety
/// `config` is NULL or live; `username` points at `username_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_username(
    config: *mut SymphonyAuthConfig,
    username: *const u8,
    username_len: usize,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        // SAFETY: `username` points at `username_len` readable bytes (the contract above).
        let username = unsafe { text(username, username_len, "username")? };
        config.username = Some(username.to_owned());
        Ok(())
    })
}

/// Logs in with an RSA key: `pem` is a PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) PEM of at least 2048
/// bits, unencrypted. It is parsed now (`Config` if unusable, the message naming the problem, never the key); the
/// caller's buffer is not kept and may be wiped at once.
///
/// # Safety
/// `config` is NULL or live; `pem` points at `pem_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_rsa_key_pem(
    config: *mut SymphonyAuthConfig,
    pem: *const u8,
    pem_len: usize,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        // SAFETY: `pem` points at `pem_len` readable bytes (the contract above).
        let pem = unsafe { bytes(pem, pem_len, "pem")? };
        let signer = signer_backend().load_pem(pem).map_err(Failure::config)?;
        config.method = Some(LoginMethod::Rsa(signer));
        Ok(())
    })
}

/// Logs in with a TLS client certificate: the login requests carry no body, and the caller sends those whose
/// `uses_client_certificate` is true through its mutual-TLS client.
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_certificate_login(
    config: *mut SymphonyAuthConfig,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        config.method = Some(LoginMethod::Certificate);
        Ok(())
    })
}

/// Sets whether to log in to the key manager: a `SymphonyAuthKeyManagerPolicy`.
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_key_manager_policy(
    config: *mut SymphonyAuthConfig,
    policy: u32,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        let policy = code(policy, "SymphonyAuthKeyManagerPolicy", |value| match value {
            1 => Some(KeyManagerPolicy::Auto),
            2 => Some(KeyManagerPolicy::Always),
            3 => Some(KeyManagerPolicy::Never),
            _ => None,
        })?;
        config.key_manager_policy = Some(policy);
        Ok(())
    })
}

/// Sets whether the session and key-manager logins are sent together (the default) or one after the other.
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_parallel_login(
    config: *mut SymphonyAuthConfig,
    parallel: bool,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        config.parallel_login = Some(parallel);
        Ok(())
    })
}

/// Sets the login JWT's lifetime, 1 to 300 seconds (default 240); checked when the authenticator is made.
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_jwt_lifetime_secs(
    config: *mut SymphonyAuthConfig,
    seconds: u64,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        config.jwt_lifetime = Some(Duration::from_secs(seconds));
        Ok(())
    })
}

/// Sets the retry policy of login attempts: `max_attempts` in all (1 to 100), a first wait of
/// `initial_interval_ms` (at least 10), growing by `multiplier` (at least 1) up to `max_interval_ms` (at most an
/// hour), each wait shortened by a random fraction of up to `jitter` (0 to 1). Defaults: 10, 500, 2, 300000, 0.2.
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_retry(
    config: *mut SymphonyAuthConfig,
    max_attempts: u32,
    initial_interval_ms: u64,
    multiplier: f64,
    max_interval_ms: u64,
    jitter: f64,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        let initial = Duration::from_millis(initial_interval_ms);
        let max = Duration::from_millis(max_interval_ms);
        config.retry = Some(RetryPolicy::new(max_attempts, initial, multiplier, max)?.with_jitter(jitter)?);
        Ok(())
    })
}

/// Sets how long a failed login answers with its error before a new login may begin: `first_ms` after the first
/// failure, doubling with each failure in a row up to `max_ms` (defaults 1000 and 60000).
///
/// # Safety
/// `config` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_config_set_cool_down(
    config: *mut SymphonyAuthConfig,
    first_ms: u64,
    max_ms: u64,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        config.cool_down = Some(CoolDown::new(Duration::from_millis(first_ms), Duration::from_millis(max_ms))?);
        Ok(())
    })
}

/// Makes an authenticator (the sans-IO machine, holding no tokens yet) from `config`, which the core checks now:
/// `Config` with the message on `config` when it cannot work. `seed` drives the retry jitter: pass a random
/// value (the same seed and inputs replay exactly). On success `*authenticator` is a new handle, to free with
/// `symphony_auth_authenticator_free` (or to hand to `symphony_auth_flight_new`); on failure it is NULL. `config`
/// stays the caller's and may be freed or reused at once.
///
/// # Safety
/// `config` is NULL or live; `authenticator` is NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_authenticator_new(
    config: *mut SymphonyAuthConfig,
    seed: u64,
    authenticator: *mut *mut SymphonyAuthAuthenticator,
) -> SymphonyAuthStatus {
    // SAFETY: `config` is NULL or a live configuration that nothing else uses during the call (the contract above).
    let config = unsafe { Live::new(config) };
    with_handle(config, |config| {
        // SAFETY: `authenticator` is NULL or valid for writing a pointer (the contract above).
        let out = unsafe { Out::handle(authenticator, "authenticator")? };
        let machine = Authenticator::new(config.to_config()?, seed);
        out.set(into_handle(SymphonyAuthAuthenticator::new(machine)));
        Ok(())
    })
}
