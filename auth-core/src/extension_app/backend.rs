//! The app backend's whole job in one sans-IO object, so that every driver is the same loop: make an app token and
//! its E1/E2 request, keep the pair the pod answers with, check the pairs frontends hand back, fetch the pod
//! certificate once and verify user JWTs with it.

use super::{
    AppToken, AppTokenStore, ExtensionApp, ExtensionAppError, ExtensionAppTokens, PairCheckError, SymphonyToken,
};
use crate::error::SignError;
use crate::time::UnixTime;
use crate::{HttpRequest, HttpResponse};

/// The default number of appToken → symphonyToken pairs an [`AppBackend`] keeps.
pub const DEFAULT_APP_TOKEN_STORE_CAPACITY: usize = 10_000;

/// Why an [`AppBackend`] step failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppBackendError {
    /// The random bytes or a token handed in were unusable.
    #[error(transparent)]
    Identity(#[from] super::AppIdentityError),
    /// Signing the app's JWT failed.
    #[error(transparent)]
    Signing(#[from] SignError),
    /// The pod's answer was a refusal or unusable.
    #[error(transparent)]
    Answer(#[from] ExtensionAppError),
    /// A pair handed back by a frontend was refused.
    #[error("app token pair refused: {0}")]
    Pair(#[from] PairCheckError),
    /// A user JWT was refused.
    #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
    #[error(transparent)]
    UserJwt(#[from] crate::UserJwtError),
}

/// An extension app's backend: [`ExtensionApp`] plus its [`AppTokenStore`] and the pod certificate once fetched.
#[derive(Debug)]
pub struct AppBackend {
    app: ExtensionApp,
    store: AppTokenStore,
    #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
    certificate: Option<crate::PodCertificate>,
}

impl AppBackend {
    /// A backend for `app` keeping at most `capacity` pairs.
    #[must_use]
    pub fn new(app: ExtensionApp, capacity: usize) -> Self {
        Self {
            app,
            store: AppTokenStore::new(capacity),
            #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
            certificate: None,
        }
    }

    /// The app.
    #[must_use]
    pub fn app(&self) -> &ExtensionApp {
        &self.app
    }

    /// A fresh app token from `random` (the OS generator's bytes, at least
    /// [`MIN_APP_TOKEN_RANDOM_BYTES`](super::MIN_APP_TOKEN_RANDOM_BYTES)), and its E1/E2 request.
    ///
    /// # Errors
    /// Too few random bytes; the signer's error.
    pub fn authenticate_request(
        &self,
        random: &[u8],
        now: UnixTime,
    ) -> Result<(AppToken, HttpRequest), AppBackendError> {
        let app_token = AppToken::from_random_bytes(random)?;
        let request = self.app.authenticate_request(&app_token, now)?;
        Ok((app_token, request))
    }

    /// Reads the answer to the request for `app_token` and stores the pair (keyed on the token sent).
    ///
    /// # Errors
    /// [`ExtensionAppError`] for a refusal or an unusable answer.
    pub fn handle_authenticate(
        &mut self,
        app_token: &AppToken,
        response: &HttpResponse,
        now: UnixTime,
    ) -> Result<ExtensionAppTokens, AppBackendError> {
        let tokens = self.app.handle_authenticate(app_token, response)?;
        self.store.insert(app_token, &tokens, now);
        Ok(tokens)
    }

    /// Checks a pair a frontend handed back.
    ///
    /// # Errors
    /// [`PairCheckError`], and an unusable token text.
    pub fn check_pair(&mut self, app_token: &str, symphony_token: &str, now: UnixTime) -> Result<(), AppBackendError> {
        let app_token = AppToken::new(app_token)?;
        let symphony_token = SymphonyToken::new(symphony_token).ok_or(PairCheckError::Mismatch)?;
        Ok(self.store.check(&app_token, &symphony_token, now)?)
    }

    /// The request for the pod certificate, when it has not been fetched yet.
    #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
    #[must_use]
    pub fn pod_certificate_request(&self) -> Option<HttpRequest> {
        self.certificate.is_none().then(|| self.app.pod_certificate_request())
    }

    /// Reads and keeps the pod certificate.
    ///
    /// # Errors
    /// [`ExtensionAppError`].
    #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
    pub fn handle_pod_certificate(&mut self, response: &HttpResponse) -> Result<(), AppBackendError> {
        self.certificate = Some(super::parse_pod_certificate(response)?);
        Ok(())
    }

    /// Verifies a user JWT with the pod certificate, fetched first (see
    /// [`pod_certificate_request`](Self::pod_certificate_request)).
    ///
    /// # Errors
    /// [`ExtensionAppError::Certificate`] when no certificate was fetched; the [`UserJwtError`](crate::UserJwtError)
    /// of the check.
    #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
    pub fn verify_user_jwt(&self, jwt: &str, now: UnixTime) -> Result<crate::UserClaims, AppBackendError> {
        let certificate =
            self.certificate.as_ref().ok_or(ExtensionAppError::Certificate("the pod certificate was not fetched"))?;
        Ok(certificate.verify_user_jwt(jwt, self.app.app_id(), now)?)
    }
}
