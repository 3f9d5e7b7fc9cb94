//! `Config`: the machine's configuration from values or from a BDK file, with what a bot's HTTP client needs
//! (client certificate, extra roots, proxy, timeouts). Every check is the core's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use symphony_auth_core::driver::{BotBuilder, Driver};
use symphony_auth_core::{
    BaseUrl, ClientIdentity, CommonJwtSettings, Config, CoolDown, Endpoints, KeyManagerPolicy, LoadedSettings,
    LoginMethod, OboUser, RetryPolicy, RsaSigner,
};
use zeroize::Zeroizing;

use crate::errors::{ConfigurationError, bot_error, config_error};

/// A bot's configuration: where the services are, who the bot is, how it logs in, and the retry, cool-down and
/// key-manager policies. Made from values or read from a BDK YAML/JSON file (`Config.from_file`).
#[pyclass(frozen, name = "Config", module = "symphony_auth")]
pub(crate) struct PyConfig {
    pub(crate) config: Config,
    pub(crate) identity: Option<ClientIdentity>,
    pub(crate) extra_roots_pem: Option<Vec<u8>>,
    /// The proxy URL, which may hold a password: wiped on drop.
    pub(crate) proxy: Option<Zeroizing<String>>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) timeout: Option<Duration>,
}

fn read(path: &PathBuf, what: &str) -> PyResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| ConfigurationError::new_err(format!("cannot read {what} {}: {e}", path.display())))
}

fn millis(dict: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<Duration>> {
    Ok(dict.get_item(key)?.map(|v| v.extract::<u64>()).transpose()?.map(Duration::from_millis))
}

fn required<T>(value: Option<T>, dict: &str, key: &str) -> PyResult<T> {
    value.ok_or_else(|| ConfigurationError::new_err(format!("{dict} needs the key {key:?}")))
}

/// A retry policy from `{"max_attempts", "initial_interval_ms", "multiplier", "max_interval_ms", "jitter"}`.
fn retry_policy(dict: &Bound<'_, PyDict>) -> PyResult<RetryPolicy> {
    let attempts: u32 = required(dict.get_item("max_attempts")?, "retry", "max_attempts")?.extract()?;
    let initial = required(millis(dict, "initial_interval_ms")?, "retry", "initial_interval_ms")?;
    let multiplier: f64 = required(dict.get_item("multiplier")?, "retry", "multiplier")?.extract()?;
    let max = required(millis(dict, "max_interval_ms")?, "retry", "max_interval_ms")?;
    let mut policy = RetryPolicy::new(attempts, initial, multiplier, max).map_err(|e| config_error(&e))?;
    if let Some(jitter) = dict.get_item("jitter")? {
        policy = policy.with_jitter(jitter.extract()?).map_err(|e| config_error(&e))?;
    }
    Ok(policy)
}

impl PyConfig {
    /// The builder of a bot of driver `D` with these settings.
    pub(crate) fn builder<D: Driver>(&self, py: Python<'_>) -> PyResult<BotBuilder<D>> {
        let mut builder = BotBuilder::<D>::new(self.config.clone());
        if let Some(identity) = &self.identity {
            builder = builder.client_identity(identity.clone());
        }
        if let Some(pem) = &self.extra_roots_pem {
            builder = builder.extra_root_certificates_pem(pem).map_err(|e| bot_error(py, &e))?;
        }
        if let Some(proxy) = &self.proxy {
            builder = builder.proxy(proxy).map_err(|e| bot_error(py, &e))?;
        }
        if let Some(timeout) = self.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        Ok(builder)
    }

    fn from_loaded(loaded: LoadedSettings) -> Self {
        Self {
            config: loaded.config,
            identity: loaded.identity,
            extra_roots_pem: loaded.extra_roots_pem,
            proxy: loaded.proxy.map(|p| p.url_with_credentials()),
            connect_timeout: loaded.connect_timeout,
            timeout: loaded.read_timeout,
        }
    }
}

#[pymethods]
impl PyConfig {
    /// A configuration from values. RSA login with `private_key_pem` (bytes) or `private_key_path`; certificate
    /// login with `client_certificate_path` / `client_certificate_pem` (certificate and key in one PEM), or with
    /// `certificate=True` when the HTTP client presents the certificate itself. Each service URL defaults to
    /// `pod_url`. `retry` is a dict (`max_attempts`, `initial_interval_ms`, `multiplier`, `max_interval_ms`,
    /// `jitter`), `cool_down` a dict (`first_ms`, `max_ms`), `key_manager` one of `auto`, `always`, `never`.
    #[new]
    #[pyo3(signature = (pod_url, username, *, private_key_pem=None, private_key_path=None, certificate=false,
        client_certificate_pem=None, client_certificate_path=None, key_manager_url=None, session_auth_url=None,
        agent_url=None, allow_insecure_http=false, trust_pem=None, trust_path=None, key_manager=None,
        parallel_login=None, jwt_lifetime_secs=None, retry=None, cool_down=None, connect_timeout_secs=None,
        timeout_secs=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        pod_url: &str,
        username: &str,
        private_key_pem: Option<Vec<u8>>,
        private_key_path: Option<PathBuf>,
        certificate: bool,
        client_certificate_pem: Option<Vec<u8>>,
        client_certificate_path: Option<PathBuf>,
        key_manager_url: Option<&str>,
        session_auth_url: Option<&str>,
        agent_url: Option<&str>,
        allow_insecure_http: bool,
        trust_pem: Option<Vec<u8>>,
        trust_path: Option<PathBuf>,
        key_manager: Option<&str>,
        parallel_login: Option<bool>,
        jwt_lifetime_secs: Option<u64>,
        retry: Option<Bound<'_, PyDict>>,
        cool_down: Option<Bound<'_, PyDict>>,
        connect_timeout_secs: Option<f64>,
        timeout_secs: Option<f64>,
    ) -> PyResult<Self> {
        let url = |which: &'static str, url: Option<&str>| -> PyResult<BaseUrl> {
            BaseUrl::parse(which, url.unwrap_or(pod_url)).map_err(|e| config_error(&e))
        };
        let mut endpoints = Endpoints {
            pod: url("pod", None)?,
            key_manager: url("keyManager", key_manager_url)?,
            session_auth: url("sessionAuth", session_auth_url)?,
            agent: url("agent", agent_url)?,
        };
        if allow_insecure_http {
            endpoints = endpoints.allow_insecure_http();
        }
        let key = match (private_key_pem, &private_key_path) {
            (Some(pem), None) => Some(pem),
            (None, Some(path)) => Some(read(path, "the private key")?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(ConfigurationError::new_err("pass private_key_pem or private_key_path, not both"));
            }
        };
        let identity_pem = match (client_certificate_pem, &client_certificate_path) {
            (Some(pem), None) => Some(pem),
            (None, Some(path)) => Some(read(path, "the client certificate")?),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(ConfigurationError::new_err(
                    "pass client_certificate_pem or client_certificate_path, not both",
                ));
            }
        };
        let identity = identity_pem
            .map(|pem| ClientIdentity::from_pem(&pem))
            .transpose()
            .map_err(|e| ConfigurationError::new_err(e.to_string()))?;
        let method = match key {
            Some(pem) => {
                if certificate || identity.is_some() {
                    return Err(ConfigurationError::new_err(
                        "a private key (RSA login) and a client certificate (certificate login) are exclusive",
                    ));
                }
                let signer = RsaSigner::from_pem(&pem).map_err(|e| ConfigurationError::new_err(e.to_string()))?;
                LoginMethod::Rsa(Arc::new(signer))
            }
            None if certificate || identity.is_some() => LoginMethod::Certificate,
            None => {
                return Err(ConfigurationError::new_err(
                    "no credentials: pass private_key_pem or private_key_path (RSA login), or \
                     client_certificate_path, client_certificate_pem or certificate=True (certificate login)",
                ));
            }
        };
        let mut config = Config::new(endpoints, username, method).map_err(|e| config_error(&e))?;
        if let Some(secs) = jwt_lifetime_secs {
            config = config.with_jwt_lifetime(Duration::from_secs(secs)).map_err(|e| config_error(&e))?;
        }
        if let Some(policy) = key_manager {
            config = config.with_key_manager(match policy {
                "auto" => KeyManagerPolicy::Auto,
                "always" => KeyManagerPolicy::Always,
                "never" => KeyManagerPolicy::Never,
                other => {
                    return Err(ConfigurationError::new_err(format!(
                        "key_manager {other:?}: expected \"auto\", \"always\" or \"never\""
                    )));
                }
            });
        }
        if let Some(parallel) = parallel_login {
            config = config.with_parallel_login(parallel);
        }
        if let Some(retry) = &retry {
            config = config.with_retry(retry_policy(retry)?);
        }
        if let Some(cool) = &cool_down {
            let first = required(millis(cool, "first_ms")?, "cool_down", "first_ms")?;
            let max = required(millis(cool, "max_ms")?, "cool_down", "max_ms")?;
            config = config.with_cool_down(CoolDown::new(first, max).map_err(|e| config_error(&e))?);
        }
        let extra_roots_pem = match (trust_pem, &trust_path) {
            (Some(pem), None) => Some(pem),
            (None, Some(path)) => Some(read(path, "the trust store")?),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(ConfigurationError::new_err("pass trust_pem or trust_path, not both")),
        };
        let seconds = |secs: Option<f64>, what: &str| -> PyResult<Option<Duration>> {
            secs.map(|s| {
                Duration::try_from_secs_f64(s).map_err(|_| {
                    ConfigurationError::new_err(format!("{what} must be a non-negative number of seconds"))
                })
            })
            .transpose()
        };
        Ok(Self {
            config,
            identity,
            extra_roots_pem,
            proxy: None,
            connect_timeout: seconds(connect_timeout_secs, "connect_timeout_secs")?,
            timeout: seconds(timeout_secs, "timeout_secs")?,
        })
    }

    /// Reads a BDK configuration file (the YAML or JSON of the Java and Python SDKs), and the key, certificate and
    /// trust store it names; `${ENV}` is expanded from the environment.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let loaded = py
            .detach(|| {
                let read = &mut |file: &std::path::Path| std::fs::read(file);
                symphony_auth_core::driver::load_bdk_file(&path, read, &|name| std::env::var(name).ok())
            })
            .map_err(|e| bot_error(py, &e))?;
        Ok(Self::from_loaded(loaded))
    }

    /// Reads a BDK configuration file for the app of its `app` section acting on behalf of one user (OBO), named
    /// by `user_id` or `username`: the app's key or certificate, no key manager; the file needs no `bot` section.
    /// A `Bot` made of it logs the app in, then the user, and logs both in again on a 401.
    #[staticmethod]
    #[pyo3(signature = (path, *, user_id = None, username = None))]
    fn obo_from_file(py: Python<'_>, path: PathBuf, user_id: Option<u64>, username: Option<&str>) -> PyResult<Self> {
        let user = match (user_id, username) {
            (Some(id), None) => OboUser::id(id),
            (None, Some(name)) => OboUser::username(name).map_err(|e| config_error(&e))?,
            _ => return Err(ConfigurationError::new_err("name the OBO user by user_id or username, once")),
        };
        let loaded = py
            .detach(|| {
                let read = &mut |file: &std::path::Path| std::fs::read(file);
                let settings =
                    symphony_auth_core::driver::read_bdk_file(&path, read, &|name| std::env::var(name).ok())?;
                settings.load_obo(user, read).map_err(symphony_auth_core::driver::BotError::from)
            })
            .map_err(|e| bot_error(py, &e))?;
        Ok(Self::from_loaded(loaded))
    }

    /// The bot's username.
    #[getter]
    fn username(&self) -> &str {
        self.config.username().as_str()
    }

    /// The pod's base URL.
    #[getter]
    fn pod_url(&self) -> String {
        self.config.endpoints().pod.to_string()
    }

    /// `"rsa"` or `"certificate"`.
    #[getter]
    fn method(&self) -> &'static str {
        match self.config.method() {
            LoginMethod::Certificate => "certificate",
            _ => "rsa",
        }
    }

    /// This configuration with the Common JWT (an A5 access token as `Authorization: Bearer`): on every pod call
    /// instead of `sessionToken` (`on_pod_calls`, as BDK-Java's `commonJwt.enabled`), or only on calls that ask;
    /// A5's `scope`; refreshed `leeway_ms` before it expires (default 30 s).
    #[pyo3(signature = (*, on_pod_calls = true, scope = "", leeway_ms = None))]
    fn with_common_jwt(&self, on_pod_calls: bool, scope: &str, leeway_ms: Option<u64>) -> Self {
        let settings = if on_pod_calls { CommonJwtSettings::on_pod_calls() } else { CommonJwtSettings::per_call() }
            .with_scope(scope);
        let settings = match leeway_ms {
            Some(ms) => settings.with_leeway(Duration::from_millis(ms)),
            None => settings,
        };
        Self {
            config: self.config.clone().with_common_jwt(settings),
            identity: self.identity.clone(),
            extra_roots_pem: self.extra_roots_pem.clone(),
            proxy: self.proxy.clone(),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
        }
    }

    fn __repr__(&self) -> String {
        format!("Config(username={:?}, pod_url={:?}, method={:?})", self.username(), self.pod_url(), self.method())
    }
}
