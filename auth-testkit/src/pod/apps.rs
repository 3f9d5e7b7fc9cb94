//! Apps and their users: the OBO logins (O1–O6) with the pod's rules, logout (S2), and the agent's extended
//! health (G3). An app logs in with a JWT whose `sub` is its app id, checked against the app's registered key
//! (O1), or with a client certificate whose CN is its app id (O4); with that app session it gets a session for a
//! user who installed the app (O2/O3, O5/O6). Logout ends a bot's, an app's or a user's session.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{Request, Response, StatusCode};
use serde_json::Value;

use super::{FakePod, epoch_secs, error, json, unauthorized};
use crate::endpoint::Endpoint;
use crate::error::TestkitError;
use crate::jwt::{BotKey, parse_login_jwt, sign_hs512};
use crate::peer::Peer;
use crate::pod::MAX_JWT_LIFETIME;

/// A registered app.
struct App {
    rsa_key: Option<BotKey>,
    cert: bool,
}

/// A user apps may act for.
struct User {
    username: String,
    installed: bool,
}

/// A session of an app, or of a user through an app.
#[derive(Debug)]
struct AppGrant {
    app_id: String,
    /// `None` for the app's own session.
    user_id: Option<u64>,
    expires_at: SystemTime,
}

/// The apps, users and their sessions.
#[derive(Default)]
pub(super) struct Apps {
    apps: BTreeMap<String, App>,
    users: BTreeMap<u64, User>,
    sessions: HashMap<String, AppGrant>,
}

impl Apps {
    pub(super) fn expire_sessions(&mut self) {
        self.sessions.clear();
    }

    pub(super) fn app_ids(&self) -> Vec<&String> {
        self.apps.keys().collect()
    }
}

impl FakePod {
    // ---- apps and users ---------------------------------------------------------------------

    /// Registers (or re-keys) an app that logs in with an RSA key: a JWT whose `sub` is `app_id`, verified with
    /// this SPKI PEM public key.
    ///
    /// # Errors
    /// [`TestkitError::InvalidBotName`] or [`TestkitError::InvalidPublicKey`].
    pub fn add_rsa_app(&mut self, app_id: &str, public_key_pem: &str) -> Result<(), TestkitError> {
        super::check_bot_name(app_id)?;
        let key = BotKey::from_spki_pem(public_key_pem)
            .map_err(|reason| TestkitError::InvalidPublicKey { username: app_id.to_owned(), reason })?;
        self.apps.apps.entry(app_id.to_owned()).or_insert(App { rsa_key: None, cert: false }).rsa_key = Some(key);
        Ok(())
    }

    /// Registers an app that logs in with a client certificate whose CN is `app_id`.
    ///
    /// # Errors
    /// [`TestkitError::InvalidBotName`].
    pub fn add_cert_app(&mut self, app_id: &str) -> Result<(), TestkitError> {
        super::check_bot_name(app_id)?;
        self.apps.apps.entry(app_id.to_owned()).or_insert(App { rsa_key: None, cert: false }).cert = true;
        Ok(())
    }

    /// Names of the apps that may log in with a certificate, in name order.
    #[must_use]
    pub fn cert_apps(&self) -> Vec<String> {
        self.apps.apps.iter().filter(|(_, a)| a.cert).map(|(n, _)| n.clone()).collect()
    }

    /// Registers (or replaces) a user that apps may act for: `installed` says whether the user installed the apps
    /// (every registered app); OBO for a user who did not is refused with 403.
    ///
    /// # Errors
    /// [`TestkitError::InvalidBotName`] for a username the fake does not accept.
    pub fn add_user(&mut self, user_id: u64, username: &str, installed: bool) -> Result<(), TestkitError> {
        super::check_bot_name(username)?;
        self.apps.users.insert(user_id, User { username: username.to_owned(), installed });
        Ok(())
    }

    /// Whether user `user_id` has installed the apps. Returns false for an unknown user.
    pub fn set_installed(&mut self, user_id: u64, installed: bool) -> bool {
        self.apps.users.get_mut(&user_id).map(|u| u.installed = installed).is_some()
    }

    /// OBO sessions (of users, through an app) alive at the caller's `now`.
    #[must_use]
    pub fn live_obo_sessions(&self, now: SystemTime) -> usize {
        let now = self.pod_time(now);
        self.apps.sessions.values().filter(|g| g.user_id.is_some() && now < g.expires_at).count()
    }

    // ---- handlers ---------------------------------------------------------------------------

    /// O1 and O4: the app's own session.
    pub(super) fn app_login(
        &mut self,
        now: SystemTime,
        request: &Request<Vec<u8>>,
        peer: &Peer,
        endpoint: Endpoint,
    ) -> Response<Vec<u8>> {
        let app_id = if endpoint == Endpoint::CertAppLogin {
            if request.headers().contains_key(http::header::CONTENT_TYPE) || !request.body().is_empty() {
                return error(StatusCode::BAD_REQUEST, "Certificate authentication takes no body and no Content-Type");
            }
            let Some(cn) = &peer.client_cn else {
                return error(StatusCode::BAD_REQUEST, "No client certificate presented");
            };
            match self.apps.apps.get(cn) {
                Some(app) if app.cert => cn.clone(),
                Some(_) => {
                    return error(StatusCode::FORBIDDEN, "Certificate authentication is not allowed for this app");
                }
                None => return unauthorized("Invalid certificate: unknown app"),
            }
        } else {
            match self.app_jwt(now, request) {
                Ok(app_id) => app_id,
                Err((status, message)) => return error(status, message),
            }
        };
        let token = self.issue_app_session(now, &app_id, None);
        json(StatusCode::OK, &json!({"name": "sessionToken", "token": token}))
    }

    /// O1's body: `{"token": JWT}` with `sub` = a registered app, signed by its key, `exp` within five minutes.
    /// A refusal is its status and message.
    fn app_jwt(&self, now: SystemTime, request: &Request<Vec<u8>>) -> Result<String, (StatusCode, &'static str)> {
        let refused = |message| (StatusCode::UNAUTHORIZED, message);
        let body = serde_json::from_slice::<Value>(request.body()).ok();
        let Some(Value::String(token)) = body.as_ref().and_then(|b| b.get("token")) else {
            return Err((StatusCode::BAD_REQUEST, "Invalid request body: expected JSON {\"token\": ...}"));
        };
        let jwt = parse_login_jwt(token).map_err(refused)?;
        let Some(key) = self.apps.apps.get(&jwt.sub).and_then(|app| app.rsa_key.as_ref()) else {
            return Err(refused("Invalid app: no public key registered for this app id"));
        };
        if !jwt.signed_by(key) {
            return Err(refused("Invalid JWT signature"));
        }
        let now_secs = epoch_secs(now);
        if jwt.exp <= now_secs || jwt.exp > now_secs + MAX_JWT_LIFETIME.as_secs_f64() {
            return Err(refused("JWT expired or more than 5 minutes ahead"));
        }
        Ok(jwt.sub)
    }

    /// O2/O3 and O5/O6: a session for a user who installed the app, asked with the app's session.
    pub(super) fn obo_login(
        &mut self,
        now: SystemTime,
        request: &Request<Vec<u8>>,
        peer: &Peer,
        endpoint: Endpoint,
    ) -> Response<Vec<u8>> {
        let cert = matches!(endpoint, Endpoint::CertOboUserLogin | Endpoint::CertOboUsernameLogin);
        let app_session = request.headers().get("sessionToken").and_then(|v| v.to_str().ok());
        let Some(app_id) = app_session
            .and_then(|token| self.apps.sessions.get(token))
            .filter(|g| g.user_id.is_none() && now < g.expires_at)
            .map(|g| g.app_id.clone())
        else {
            return unauthorized("Invalid app session");
        };
        if cert && peer.client_cn.as_deref() != Some(app_id.as_str()) {
            return error(StatusCode::FORBIDDEN, "The client certificate is not the app's");
        }
        // The user segment is the one before `/authenticate`.
        let segment = request.uri().path().rsplit('/').nth(1).map(percent_decode).unwrap_or_default();
        let by_id = matches!(endpoint, Endpoint::OboUserLogin | Endpoint::CertOboUserLogin);
        let found = if by_id {
            segment.parse::<u64>().ok().and_then(|id| self.apps.users.get(&id).map(|u| (id, u)))
        } else {
            self.apps.users.iter().find(|(_, u)| u.username == segment).map(|(id, u)| (*id, u))
        };
        let Some((user_id, user)) = found else {
            return if cert { error(StatusCode::NOT_FOUND, "User not found") } else { unauthorized("Invalid user") };
        };
        if !user.installed {
            return error(StatusCode::FORBIDDEN, "The user has not installed the app");
        }
        let token = self.issue_app_session(now, &app_id, Some(user_id));
        let body = if cert { json!({"sessionToken": token}) } else { json!({"name": "sessionToken", "token": token}) };
        json(StatusCode::OK, &body)
    }

    fn issue_app_session(&mut self, now: SystemTime, app_id: &str, user_id: Option<u64>) -> String {
        let expires_at = now.checked_add(self.session_ttl).unwrap_or(now);
        let mut claims = json!({
            "sub": user_id.map_or_else(|| app_id.to_owned(), |id| id.to_string()),
            "iss": "symphony",
            "appId": app_id,
            "sessionId": self.random_hex(16),
            "exp": expires_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        });
        if let Some(id) = user_id {
            claims["userId"] = json!(id);
        }
        let token = sign_hs512(&self.session_mac, &claims);
        self.apps.sessions.insert(token.clone(), AppGrant { app_id: app_id.to_owned(), user_id, expires_at });
        token
    }

    /// The user record of a live OBO session, for `/pod/v2/sessioninfo`.
    pub(super) fn obo_session_info(&self, now: SystemTime, request: &Request<Vec<u8>>) -> Option<Value> {
        let token = request.headers().get("sessionToken")?.to_str().ok()?;
        let grant = self.apps.sessions.get(token).filter(|g| now < g.expires_at)?;
        let id = grant.user_id?;
        let user = self.apps.users.get(&id)?;
        Some(json!({
            "id": id,
            "username": user.username,
            "displayName": user.username,
            "emailAddress": format!("{}@users.fake-pod.test", user.username),
            "roles": ["INDIVIDUAL"],
        }))
    }

    /// S2: ends the session in `sessionToken` (a bot's, an app's or an OBO user's): later calls with it get 401.
    pub(super) fn logout(&mut self, now: SystemTime, request: &Request<Vec<u8>>, peer: &Peer) -> Response<Vec<u8>> {
        if peer.role.is_some() && peer.client_cn.is_none() {
            return error(StatusCode::BAD_REQUEST, "No client certificate presented");
        }
        let Some(token) = request.headers().get("sessionToken").and_then(|v| v.to_str().ok()) else {
            return error(StatusCode::BAD_REQUEST, "No sessionToken header");
        };
        let bot = self.sessions.get(token).is_some_and(|g| self.is_live(g, now));
        let app = self.apps.sessions.get(token).is_some_and(|g| now < g.expires_at);
        if !(bot || app) {
            return unauthorized("Invalid session");
        }
        self.sessions.remove(token);
        self.apps.sessions.remove(token);
        json(StatusCode::OK, &json!({"message": "Logout successful"}))
    }

    /// G3: what the agent reaches; 503 when something is down (the key manager, when set down).
    pub(super) fn health_extended(&self) -> Response<Vec<u8>> {
        let km = if self.key_manager_down { "DOWN" } else { "UP" };
        let body = json!({
            "status": "UP",
            "version": self.agent_version,
            "services": {
                "pod": {"status": "UP", "version": "fake-pod"},
                "key_manager": {"status": km, "version": "fake-pod"},
                "datafeed": {"status": "UP", "version": "fake-pod"},
            },
            "users": {
                "agentservice": {"status": "UP", "authType": "RSA"},
                "ceservice": {"status": "UP", "authType": "RSA"},
            },
        });
        let status = if self.key_manager_down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
        json(status, &body)
    }
}

/// `%XX` sequences as bytes; anything malformed is kept as it is.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("j%20doe%2Fx"), "j doe/x");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
