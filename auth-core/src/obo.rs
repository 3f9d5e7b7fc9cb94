//! OBO (on-behalf-of): an app logs in as itself (O1 with a JWT whose `sub` is the app id, or O4 with the app's
//! certificate), then uses that app session to obtain a session for one of its users (O2/O3, O5/O6). The two steps
//! are one login of the [`Authenticator`](crate::Authenticator): the same retries, cool-down, single flight and
//! generations as a bot's, and a 401 on a call made with the user's session redoes both steps.

use std::fmt;
use std::sync::Arc;

use http::header::ACCEPT;
use http::{HeaderValue, Method, Request};

use crate::HttpRequest;
use crate::config::{Config, Endpoints, KeyManagerPolicy, LoginMethod};
use crate::endpoint::LoginEndpoint;
use crate::error::ConfigError;
use crate::request::USER_AGENT_VALUE;
use crate::signer::JwtSigner;
use crate::tokens::{SESSION_TOKEN_HEADER, SessionToken};

/// The user an app acts for: by user id or by username.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OboUser {
    /// The user's numeric id.
    Id(u64),
    /// The user's username.
    Username(String),
}

impl OboUser {
    /// The user with numeric id `id`.
    #[must_use]
    pub fn id(id: u64) -> Self {
        Self::Id(id)
    }

    /// The user named `name`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidOboUsername`] when `name` is empty or holds control characters.
    pub fn username(name: &str) -> Result<Self, ConfigError> {
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err(ConfigError::InvalidOboUsername(name.to_owned()));
        }
        Ok(Self::Username(name.to_owned()))
    }

    /// The endpoint of the user step for an app that logs in with `method`.
    #[must_use]
    pub fn endpoint(&self, method: &LoginMethod) -> LoginEndpoint {
        match (method, self) {
            (LoginMethod::Rsa(_), Self::Id(_)) => LoginEndpoint::RsaOboUserId,
            (LoginMethod::Rsa(_), Self::Username(_)) => LoginEndpoint::RsaOboUsername,
            (_, Self::Id(_)) => LoginEndpoint::CertificateOboUserId,
            (_, Self::Username(_)) => LoginEndpoint::CertificateOboUsername,
        }
    }

    /// The path segment naming the user: the id, or the username percent-encoded.
    fn segment(&self) -> String {
        match self {
            Self::Id(id) => id.to_string(),
            Self::Username(name) => percent_encode_segment(name),
        }
    }
}

impl fmt::Display for OboUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "user id {id}"),
            Self::Username(name) => write!(f, "username {name:?}"),
        }
    }
}

impl fmt::Debug for OboUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Every byte but RFC 3986's unreserved characters as `%XX`, so that a username cannot add a path segment, a
/// query or a fragment to the URL.
fn percent_encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Config {
    /// An app that logs in with its RSA key (O1, JWT `sub` = `app_id`), then obtains a session for `user` (O2 or
    /// O3). An OBO session has no key-manager token.
    ///
    /// # Errors
    /// As [`Config::new`]; [`ConfigError::InvalidUsername`] for an empty app id.
    pub fn obo_rsa(
        endpoints: Endpoints,
        app_id: &str,
        signer: Arc<dyn JwtSigner>,
        user: OboUser,
    ) -> Result<Self, ConfigError> {
        Self::obo(endpoints, app_id, LoginMethod::Rsa(signer), user)
    }

    /// An app that logs in with its client certificate (O4; the certificate is the driver's business), then
    /// obtains a session for `user` (O5 or O6). An OBO session has no key-manager token.
    ///
    /// # Errors
    /// As [`Config::obo_rsa`].
    pub fn obo_certificate(endpoints: Endpoints, app_id: &str, user: OboUser) -> Result<Self, ConfigError> {
        Self::obo(endpoints, app_id, LoginMethod::Certificate, user)
    }

    fn obo(endpoints: Endpoints, app_id: &str, method: LoginMethod, user: OboUser) -> Result<Self, ConfigError> {
        let mut config = Self::new(endpoints, app_id, method)?;
        config.key_manager = KeyManagerPolicy::Never;
        config.obo = Some(user);
        Ok(config)
    }

    /// The user an OBO configuration acts for; `None` for a bot.
    #[must_use]
    pub fn obo_user(&self) -> Option<&OboUser> {
        self.obo.as_ref()
    }
}

/// The user step of an OBO login: `POST` to O2/O3 on the pod or O5/O6 on the session-auth host, with the app's
/// session in the `sessionToken` header and no body (so no `Content-Type`).
#[must_use]
pub fn obo_user_login(
    endpoint: LoginEndpoint,
    endpoints: &Endpoints,
    user: &OboUser,
    app_session: &SessionToken,
) -> HttpRequest {
    let placeholder = if matches!(user, OboUser::Id(_)) { "{userId}" } else { "{username}" };
    let path = endpoint.path().replace(placeholder, &user.segment());
    let uri = endpoint.base(endpoints).join(&path);
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        .header(SESSION_TOKEN_HEADER, app_session.header_value())
        .body(Vec::new())
        // The URI joins a validated base URL and an encoded segment, and the header values are valid: the builder
        // cannot fail; the fallback keeps this total without a panic path.
        .unwrap_or_else(|_| Request::new(Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::SecretHeader;

    #[test]
    fn users_print_as_what_names_them() {
        assert_eq!(format!("{:?}", OboUser::username("j doe").unwrap()), "username \"j doe\"");
        assert_eq!(format!("{:?}", OboUser::Id(42)), "user id 42");
    }

    #[test]
    fn usernames_are_encoded_as_one_path_segment() {
        let endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        let app = SessionToken(SecretHeader::new("app-session").unwrap());
        let user = OboUser::username("j doe/../x?y").unwrap();
        let request = obo_user_login(LoginEndpoint::RsaOboUsername, &endpoints, &user, &app);
        assert_eq!(
            request.uri(),
            "https://acme.symphony.com/login/pubkey/app/username/j%20doe%2F..%2Fx%3Fy/authenticate"
        );
        assert_eq!(request.headers()["sessionToken"], "app-session");
        assert!(request.headers()["sessionToken"].is_sensitive());
        assert!(request.body().is_empty());
        assert!(request.headers().get(http::header::CONTENT_TYPE).is_none());
    }

    #[test]
    fn the_user_step_follows_the_method_and_the_user() {
        let cert = LoginMethod::Certificate;
        assert_eq!(OboUser::id(7).endpoint(&cert), LoginEndpoint::CertificateOboUserId);
        assert_eq!(OboUser::username("a").unwrap().endpoint(&cert), LoginEndpoint::CertificateOboUsername);
        assert!(matches!(OboUser::username(" "), Err(ConfigError::InvalidOboUsername(_))));
        assert!(OboUser::username("a\nb").is_err());
    }
}
