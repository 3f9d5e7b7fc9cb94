//! Building requests: the four login calls, and the two calls that check tokens (session info, echo). Pure
//! functions from configuration (and a JWT) to an `http::Request`.

use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request};

use crate::HttpRequest;
use crate::config::Endpoints;
use crate::endpoint::LoginEndpoint;
use crate::jwt::Jwt;

/// The `User-Agent` the login requests carry.
pub const USER_AGENT_VALUE: &str = concat!("symphony-auth/", env!("CARGO_PKG_VERSION"));

fn base_request(method: Method, uri: http::Uri) -> http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
}

fn finish(builder: http::request::Builder, body: Vec<u8>) -> HttpRequest {
    // Every part was validated on the way in (URIs come from a `BaseUrl`, header values are static), so the
    // builder cannot fail; the fallback keeps this total without a panic path.
    builder.body(body).unwrap_or_else(|_| Request::new(Vec::new()))
}

/// `POST {pod}/login/pubkey/authenticate` or `POST {keyManager}/relay/pubkey/authenticate` with body
/// `{"token": jwt}`.
#[must_use]
pub fn rsa_login(endpoint: LoginEndpoint, endpoints: &Endpoints, jwt: &Jwt) -> HttpRequest {
    let uri = endpoint.base(endpoints).join(endpoint.path());
    // Written in one exact-size buffer rather than through a JSON tree, so that no stray copy of the JWT is left:
    // a JWT is base64url and dots, which JSON strings carry unescaped.
    let (open, close) = (&br#"{"token":""#[..], &br#""}"#[..]);
    let jwt = jwt.expose_secret().as_bytes();
    let mut body = Vec::with_capacity(open.len() + jwt.len() + close.len());
    body.extend_from_slice(open);
    body.extend_from_slice(jwt);
    body.extend_from_slice(close);
    let builder = base_request(Method::POST, uri).header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    finish(builder, body)
}

/// `POST {sessionAuth}/sessionauth/v1/authenticate` or `POST {keyManager}/keyauth/v1/authenticate`: no body and no
/// `Content-Type` (pods refuse either since March 2025); the TLS client certificate is the credential.
#[must_use]
pub fn certificate_login(endpoint: LoginEndpoint, endpoints: &Endpoints) -> HttpRequest {
    let uri = endpoint.base(endpoints).join(endpoint.path());
    finish(base_request(Method::POST, uri), Vec::new())
}

/// `GET {pod}/pod/v2/sessioninfo`: the bot's own user record. Authorize it with
/// [`Tokens::authorize`](crate::Tokens::authorize) before sending.
#[must_use]
pub fn session_info(endpoints: &Endpoints) -> HttpRequest {
    finish(base_request(Method::GET, endpoints.pod.join("/pod/v2/sessioninfo")), Vec::new())
}

/// `GET {agent}/agent/v1/info`: the agent's version. No tokens needed.
#[must_use]
pub fn agent_info(endpoints: &Endpoints) -> HttpRequest {
    finish(base_request(Method::GET, endpoints.agent.join(LoginEndpoint::AgentVersion.path())), Vec::new())
}

/// `POST {agent}/agent/v1/util/echo` with body `{"message": message}`: proves both tokens work. Authorize it with
/// [`Tokens::authorize`](crate::Tokens::authorize) before sending.
#[must_use]
pub fn echo(endpoints: &Endpoints, message: &str) -> HttpRequest {
    let body = serde_json::json!({ "message": message }).to_string().into_bytes();
    let builder = base_request(Method::POST, endpoints.agent.join("/agent/v1/util/echo"))
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    finish(builder, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BaseUrl;
    use crate::error::SignError;
    use crate::signer::JwtSigner;
    use crate::time::UnixTime;
    use std::time::Duration;

    #[derive(Debug)]
    struct Zero;
    impl JwtSigner for Zero {
        fn sign_rs512(&self, _: &[u8]) -> Result<Vec<u8>, SignError> {
            Ok(vec![0; 4])
        }
    }

    fn endpoints() -> Endpoints {
        let mut e = Endpoints::single("https://acme.symphony.com").unwrap();
        e.key_manager = BaseUrl::parse("keyManager", "https://km.acme:8444/ctx").unwrap();
        e.session_auth = BaseUrl::parse("sessionAuth", "https://acme-api.symphony.com").unwrap();
        e
    }

    #[test]
    fn rsa_logins_post_the_jwt_as_json() {
        let jwt = crate::jwt::login_jwt("bot", UnixTime::from_secs(10), Duration::from_secs(240), &Zero).unwrap();
        let request = rsa_login(LoginEndpoint::RsaSession, &endpoints(), &jwt);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "https://acme.symphony.com/login/pubkey/authenticate");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(request.headers()[ACCEPT], "application/json");
        let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
        assert_eq!(body, serde_json::json!({ "token": jwt.expose_secret() }));
        let km = rsa_login(LoginEndpoint::RsaKeyManager, &endpoints(), &jwt);
        assert_eq!(km.uri(), "https://km.acme:8444/ctx/relay/pubkey/authenticate");
    }

    #[test]
    fn certificate_logins_send_no_body_and_no_content_type() {
        let request = certificate_login(LoginEndpoint::CertificateSession, &endpoints());
        assert_eq!(request.uri(), "https://acme-api.symphony.com/sessionauth/v1/authenticate");
        assert!(request.body().is_empty());
        assert!(request.headers().get(CONTENT_TYPE).is_none());
        let km = certificate_login(LoginEndpoint::CertificateKeyManager, &endpoints());
        assert_eq!(km.uri(), "https://km.acme:8444/ctx/keyauth/v1/authenticate");
    }

    #[test]
    fn check_calls_go_to_pod_and_agent() {
        assert_eq!(session_info(&endpoints()).uri(), "https://acme.symphony.com/pod/v2/sessioninfo");
        let echo = echo(&endpoints(), "hi");
        assert_eq!(echo.uri(), "https://acme.symphony.com/agent/v1/util/echo");
        assert_eq!(echo.body(), br#"{"message":"hi"}"#);
    }
}
