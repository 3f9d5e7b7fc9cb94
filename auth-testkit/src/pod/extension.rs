//! Extension apps (E1–E4) and Common JWT (A5, A6) on the fake pod: apps registered with a key or as certificate
//! apps, extension-app tokens with `expireAt`, the pod certificate that signs user JWTs, and access tokens of a
//! configurable lifetime (so that a client's refresh before expiry is exercised) that pod calls accept as
//! `Authorization: Bearer`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::json as reply;

use super::{FakePod, Grant, error, is_json_media_type, unauthorized};
use crate::error::TestkitError;
use crate::jwt::{BotKey, parse_login_jwt};
use crate::peer::Peer;
use crate::user_jwt::PodCertificate;

/// The default lifetime of A5 access tokens.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(600);

/// A registered extension app.
#[derive(Debug, Default)]
struct App {
    rsa_key: Option<BotKey>,
    cert: bool,
}

/// The extension-app and Common JWT state of a fake pod.
#[derive(Debug)]
pub(super) struct Extension {
    apps: BTreeMap<String, App>,
    certificate: Option<PodCertificate>,
    access_tokens: HashMap<String, Grant>,
    access_token_ttl: Duration,
}

impl Default for Extension {
    fn default() -> Self {
        Self {
            apps: BTreeMap::new(),
            certificate: None,
            access_tokens: HashMap::new(),
            access_token_ttl: DEFAULT_ACCESS_TOKEN_TTL,
        }
    }
}

impl FakePod {
    /// Registers (or re-keys) an RSA extension app with its SPKI PEM public key: E1 JWTs whose `sub` is `app_id`
    /// must be signed by it.
    ///
    /// # Errors
    /// [`TestkitError::InvalidPublicKey`].
    pub fn add_extension_app(&mut self, app_id: &str, public_key_pem: &str) -> Result<(), TestkitError> {
        let key = BotKey::from_spki_pem(public_key_pem)
            .map_err(|reason| TestkitError::InvalidPublicKey { username: app_id.to_owned(), reason })?;
        self.extension.apps.entry(app_id.to_owned()).or_default().rsa_key = Some(key);
        Ok(())
    }

    /// Registers a certificate extension app: a client certificate whose CN is `app_id` may use E2 and E4.
    pub fn add_cert_extension_app(&mut self, app_id: &str) {
        self.extension.apps.entry(app_id.to_owned()).or_default().cert = true;
    }

    /// The pod certificate (made on first use), to mint user JWTs with.
    ///
    /// # Errors
    /// [`TestkitError::Certificate`] should rcgen refuse the fixed key (it does not).
    pub fn pod_certificate(&mut self) -> Result<&PodCertificate, TestkitError> {
        if self.extension.certificate.is_none() {
            self.extension.certificate = Some(PodCertificate::new()?);
        }
        self.extension.certificate.as_ref().ok_or(TestkitError::Certificate(rcgen::Error::RingUnspecified))
    }

    /// Sets the lifetime of A5 access tokens (600 s by default).
    pub fn set_access_token_ttl(&mut self, ttl: Duration) {
        self.extension.access_token_ttl = ttl;
    }

    /// Ends every access token, as [`expire_all`](Self::expire_all) ends sessions.
    pub fn expire_access_tokens(&mut self) {
        self.extension.access_tokens.clear();
    }

    /// How many A5 access tokens are live at `now`.
    #[must_use]
    pub fn live_access_tokens(&self, now: SystemTime) -> usize {
        self.extension.access_tokens.values().filter(|g| self.is_live(g, now)).count()
    }

    /// The grant of a live `Authorization: Bearer` access token on `request`.
    pub(super) fn bearer_grant(&self, request: &Request<Vec<u8>>, now: SystemTime) -> Option<&Grant> {
        let value = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let token = value.strip_prefix("Bearer ")?;
        self.extension.access_tokens.get(token).filter(|g| self.is_live(g, now))
    }

    /// E1: `{"appToken", "authToken": <RS512 JWT, sub = appId>}`.
    pub(super) fn extension_app_login(&mut self, now: SystemTime, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        if !is_json_media_type(request.headers().get(http::header::CONTENT_TYPE)) {
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type: send application/json");
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body()) else {
            return error(StatusCode::BAD_REQUEST, "Invalid request body");
        };
        let (Some(Value::String(app_token)), Some(Value::String(auth_token))) =
            (body.get("appToken"), body.get("authToken"))
        else {
            return error(StatusCode::BAD_REQUEST, "appToken and authToken are required");
        };
        let jwt = match parse_login_jwt(auth_token) {
            Ok(jwt) => jwt,
            Err(message) => return unauthorized(message),
        };
        let Some(key) = self.extension.apps.get(&jwt.sub).and_then(|app| app.rsa_key.as_ref()) else {
            return unauthorized("Invalid app");
        };
        if !jwt.signed_by(key) {
            return unauthorized("Invalid JWT signature");
        }
        let now_secs = super::epoch_secs(now);
        if jwt.exp <= now_secs || jwt.exp > now_secs + super::MAX_JWT_LIFETIME.as_secs_f64() {
            return unauthorized("JWT expired or too far ahead");
        }
        let (app_id, app_token) = (jwt.sub.clone(), app_token.clone());
        self.extension_app_tokens(now, &app_id, &app_token)
    }

    /// E2: `{"appToken"}` over mutual TLS with the app's certificate.
    pub(super) fn cert_extension_app_login(
        &mut self,
        now: SystemTime,
        request: &Request<Vec<u8>>,
        peer: &Peer,
    ) -> Response<Vec<u8>> {
        let Some(cn) = peer.client_cn.clone() else {
            return error(StatusCode::BAD_REQUEST, "No client certificate presented");
        };
        if !self.extension.apps.get(&cn).is_some_and(|app| app.cert) {
            return unauthorized("Invalid certificate: unknown app");
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body()) else {
            return error(StatusCode::BAD_REQUEST, "Invalid request body");
        };
        let Some(Value::String(app_token)) = body.get("appToken") else {
            return error(StatusCode::BAD_REQUEST, "appToken is required");
        };
        let app_token = app_token.clone();
        self.extension_app_tokens(now, &cn, &app_token)
    }

    fn extension_app_tokens(&mut self, now: SystemTime, app_id: &str, app_token: &str) -> Response<Vec<u8>> {
        let expire_at = now.checked_add(self.session_ttl).unwrap_or(now);
        let expire_at_ms = expire_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        reply(
            StatusCode::OK,
            &json!({
                "appId": app_id,
                "appToken": app_token,
                "symphonyToken": self.random_hex(32),
                "expireAt": u64::try_from(expire_at_ms).unwrap_or(u64::MAX),
            }),
        )
    }

    /// E3, and E4 for a registered certificate app.
    pub(super) fn pod_certificate_answer(&mut self, peer: &Peer, mutual: bool) -> Response<Vec<u8>> {
        if mutual && !peer.client_cn.as_ref().is_some_and(|cn| self.extension.apps.get(cn).is_some_and(|a| a.cert)) {
            return unauthorized("Invalid certificate: unknown app");
        }
        match self.pod_certificate() {
            Ok(certificate) => reply(StatusCode::OK, &json!({ "certificate": certificate.pem() })),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "No pod certificate"),
        }
    }

    /// A5: an access token for a live session, signed RS256 by the pod key.
    pub(super) fn access_token(&mut self, now: SystemTime, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
        let Some(grant) = self.live_grant(&self.sessions, request, "sessionToken", now) else {
            return unauthorized("Invalid session");
        };
        let grant = grant.clone();
        let ttl = self.extension.access_token_ttl;
        let expires_at = now.checked_add(ttl).unwrap_or(now);
        let claims = json!({
            "exp": expires_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "sub": self.user_id(&grant.username).unwrap_or_default().to_string(),
            "ext_pod_id": 1,
            "policy_id": "app",
            "entitlements": "",
            "jti": self.random_hex(8),
        });
        let Ok(certificate) = self.pod_certificate() else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "No pod key");
        };
        let token = certificate.sign_rs256(&claims);
        self.extension.access_tokens.insert(token.clone(), Grant { expires_at, ..grant });
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.extension
            .access_tokens
            .retain(|_, g| g.expires_at.duration_since(UNIX_EPOCH).is_ok_and(|d| d.as_secs() + 60 > now_secs));
        reply(StatusCode::OK, &json!({"token_type": "Bearer", "expires_in": ttl.as_secs(), "access_token": token}))
    }

    /// A6.
    pub(super) fn access_token_keys(&mut self) -> Response<Vec<u8>> {
        match self.pod_certificate() {
            Ok(certificate) => reply(StatusCode::OK, &certificate.jwks()),
            Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "No pod key"),
        }
    }
}

#[cfg(test)]
mod tests;
