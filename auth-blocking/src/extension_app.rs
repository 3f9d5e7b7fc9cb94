//! [`ExtensionAppClient`]: the core's [`AppBackend`] behind a mutex, and a ureq agent with the app's TLS settings
//! (its client certificate, for a certificate app). Every decision is the core's; this file moves bytes.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use symphony_auth_core::driver::ClientOptions;
use symphony_auth_core::{
    AppBackend, AppToken, DEFAULT_APP_TOKEN_STORE_CAPACITY, Endpoints, ExtensionApp, ExtensionAppTokens,
    TransportFailure, TransportKind, UserClaims,
};
use ureq::Agent;

use crate::Error;
use crate::bot::now;
use crate::gate::Gate;
use crate::transport;

/// An extension app's backend (Circle of Trust): authenticates the app (E1 or E2) with a fresh app token, keeps
/// the pairs the pod answers with, checks the pairs frontends hand back, and verifies user JWTs against the pod
/// certificate (E3 or E4, fetched once). `Send + Sync`.
pub struct ExtensionAppClient {
    backend: Mutex<AppBackend>,
    /// One per distinct proxy of [`ClientOptions::clients_needed`], as a bot has.
    agents: Vec<Agent>,
    /// Which agent carries a request: the options' proxies (the client certificate is left out: it is in the
    /// agents' TLS configuration already), over the app's hosts.
    routing: ClientOptions,
    endpoints: Endpoints,
    gate: Gate,
    max_body: usize,
}

impl fmt::Debug for ExtensionAppClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtensionAppClient").field("app_id", &self.lock().app().app_id()).finish_non_exhaustive()
    }
}

impl ExtensionAppClient {
    /// A client for `app`, with `options`' TLS roots, timeouts and proxies (each request through its service's
    /// proxy, as a bot's); a certificate app needs its client certificate in `options.identity`.
    ///
    /// # Errors
    /// [`Error::Config`] for a certificate app without a client identity; [`Error::Tls`].
    pub fn new(app: ExtensionApp, options: &ClientOptions) -> Result<Self, Error> {
        let tls = options.extension_app_tls_config(&app, rustls_native_certs::load_native_certs)?;
        let agents = options
            .clients_needed()
            .iter()
            .map(|proxy| transport::agent(Arc::clone(&tls), proxy.as_ref(), options))
            .collect::<Result<Vec<_>, _>>()?;
        let mut routing = options.clone();
        routing.identity = None;
        let endpoints = app.endpoints().clone();
        let backend = AppBackend::new(app, DEFAULT_APP_TOKEN_STORE_CAPACITY);
        let gate = Gate::new(&options.connections);
        Ok(Self { backend: Mutex::new(backend), agents, routing, endpoints, gate, max_body: options.max_response_body })
    }

    /// Authenticates the app with a fresh app token (64 random bytes, hex) and keeps the pair. Hand
    /// [`app_token`](ExtensionAppTokens::app_token) to the frontend.
    ///
    /// # Errors
    /// [`Error::ExtensionApp`] when the pod refuses the app or answers unusably; [`Error::Transport`].
    pub fn authenticate(&self) -> Result<ExtensionAppTokens, Error> {
        let mut random = zeroize::Zeroizing::new([0_u8; 64]);
        rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut random[..])
            .map_err(|_| TransportFailure::new(TransportKind::Other, "the OS random generator failed"))?;
        let (app_token, request): (AppToken, _) = self.lock().authenticate_request(&random[..], now())?;
        let response = transport::execute(self.agent_for(request.uri()), &self.gate, request, self.max_body, false)?;
        Ok(self.lock().handle_authenticate(&app_token, &response, now())?)
    }

    /// Checks a pair a frontend handed back against what the pod issued.
    ///
    /// # Errors
    /// [`Error::ExtensionApp`] naming why the pair was refused.
    pub fn check_tokens(&self, app_token: &str, symphony_token: &str) -> Result<(), Error> {
        Ok(self.lock().check_pair(app_token, symphony_token, now())?)
    }

    /// Fetches the pod certificate (E3 or E4) unless it already was.
    ///
    /// # Errors
    /// [`Error::ExtensionApp`] for a refusal or an unusable certificate; [`Error::Transport`].
    pub fn fetch_pod_certificate(&self) -> Result<(), Error> {
        let Some(request) = self.lock().pod_certificate_request() else { return Ok(()) };
        let response = transport::execute(self.agent_for(request.uri()), &self.gate, request, self.max_body, false)?;
        Ok(self.lock().handle_pod_certificate(&response)?)
    }

    /// Verifies a user JWT from the frontend (signature by the pod certificate, `exp`, `aud` = the app id, numeric
    /// `sub`), fetching the pod certificate first if needed.
    ///
    /// # Errors
    /// [`Error::ExtensionApp`] with the reason the JWT was refused; the errors of
    /// [`fetch_pod_certificate`](Self::fetch_pod_certificate).
    pub fn verify_jwt(&self, jwt: &str) -> Result<UserClaims, Error> {
        self.fetch_pod_certificate()?;
        Ok(self.lock().verify_user_jwt(jwt, now())?)
    }

    /// The agent of the service `uri` is on.
    fn agent_for(&self, uri: &http::Uri) -> &Agent {
        let index = self.routing.client_index(&self.endpoints, uri);
        // `client_index` is within `clients_needed`, from which the agents were built.
        &self.agents[index.min(self.agents.len() - 1)]
    }

    fn lock(&self) -> MutexGuard<'_, AppBackend> {
        self.backend.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
