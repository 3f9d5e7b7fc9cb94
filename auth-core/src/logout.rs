//! Logout (S2): `POST {sessionAuth}/sessionauth/v1/logout` with the session token to end, for a bot's session or
//! an OBO user's. The machine forgets the tokens a successful logout ended, so that the next caller logs in again;
//! nothing logs out on its own (dropping a bot leaves its session to expire, as the official SDKs do).

use http::StatusCode;
use http::header::ACCEPT;
use http::{HeaderValue, Method, Request};

use crate::config::Endpoints;
use crate::machine::Authenticator;
use crate::request::USER_AGENT_VALUE;
use crate::response::{MAX_RESPONSE_BODY, server_words};
use crate::tokens::{SESSION_TOKEN_HEADER, Tokens};
use crate::{HttpRequest, HttpResponse};

/// The path of S2 under the session-auth base URL.
pub const LOGOUT_PATH: &str = "/sessionauth/v1/logout";

/// Why a logout did not end the session.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// The server answered a status other than 2xx.
    #[error("POST /sessionauth/v1/logout answered HTTP {status}{}",
        server_message.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Status {
        /// The HTTP status.
        status: u16,
        /// What the server says (its JSON `message`, masked and shortened like a login refusal's).
        server_message: Option<String>,
    },
}

/// S2 for the session of `tokens`: the session token in `sessionToken` (marked sensitive), no body. Send it through
/// the client that holds the bot's or app's certificate: the session-auth host asks for one.
#[must_use]
pub fn logout(endpoints: &Endpoints, tokens: &Tokens) -> HttpRequest {
    Request::builder()
        .method(Method::POST)
        .uri(endpoints.session_auth.join(LOGOUT_PATH))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(http::header::USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        .header(SESSION_TOKEN_HEADER, tokens.session().header_value())
        .body(Vec::new())
        // A validated base URL and valid header values: the builder cannot fail.
        .unwrap_or_else(|_| Request::new(Vec::new()))
}

/// Reads the answer to [`logout`]: any 2xx ended the session (its body, `{"message": ...}`, is not needed).
///
/// # Errors
/// [`LogoutError::Status`] for any other status.
pub fn parse_logout(response: &HttpResponse) -> Result<(), LogoutError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.body();
    let body = body.get(..MAX_RESPONSE_BODY).unwrap_or(body);
    Err(LogoutError::Status { status: status.as_u16(), server_message: server_words(body) })
}

impl Authenticator {
    /// The answer to a [`logout`] of the tokens of `generation`. When it ended the session (2xx), or the session
    /// was already over (401), those tokens are forgotten if they are still the current ones: the next caller logs
    /// in again. Otherwise the tokens stay.
    ///
    /// # Errors
    /// As [`parse_logout`].
    pub fn handle_logout(
        &mut self,
        generation: crate::tokens::Generation,
        response: &HttpResponse,
    ) -> Result<(), LogoutError> {
        let outcome = parse_logout(response);
        let ended = outcome.is_ok() || response.status() == StatusCode::UNAUTHORIZED;
        if ended {
            self.forget_tokens(generation);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, KeyManagerPolicy};
    use crate::machine::{Event, Output, State};
    use crate::time::UnixTime;
    use crate::tokens::Generation;

    fn answer(status: u16, body: &str) -> HttpResponse {
        http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
    }

    /// A machine that logged in once (certificate, no key manager): its tokens are generation 1.
    fn logged_in() -> (Authenticator, std::sync::Arc<Tokens>) {
        let endpoints = Endpoints::single("https://pod.example").unwrap();
        let config = Config::certificate(endpoints, "bot").unwrap().with_key_manager(KeyManagerPolicy::Never);
        let mut machine = Authenticator::new(config, 1);
        let now = UnixTime::from_secs(1_700_000_000);
        let Output::Send(batch) = machine.poll_output(now) else { panic!("a login to send") };
        machine.handle_response(batch[0].id, &answer(200, r#"{"token":"the-session"}"#), now).unwrap();
        let Output::Done(Ok(tokens)) = machine.poll_output(now) else { panic!("logged in") };
        while machine.poll_event().is_some() {}
        (machine, tokens)
    }

    #[test]
    fn the_request_carries_the_session_token_to_the_session_auth_host() {
        let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        endpoints.session_auth =
            crate::config::BaseUrl::parse("sessionAuth", "https://acme-api.symphony.com:8444").unwrap();
        let (_, tokens) = logged_in();
        let request = logout(&endpoints, &tokens);
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "https://acme-api.symphony.com:8444/sessionauth/v1/logout");
        assert_eq!(request.headers()["sessionToken"], "the-session");
        assert!(request.headers()["sessionToken"].is_sensitive());
        assert!(request.body().is_empty());
        assert!(request.headers().get(http::header::CONTENT_TYPE).is_none());
    }

    #[test]
    fn answers_are_read() {
        assert_eq!(parse_logout(&answer(200, r#"{"message":"Logout successful"}"#)), Ok(()));
        assert_eq!(parse_logout(&answer(204, "")), Ok(()));
        assert_eq!(
            parse_logout(&answer(403, r#"{"code":403,"message":"Certificate required"}"#)),
            Err(LogoutError::Status { status: 403, server_message: Some("Certificate required".into()) })
        );
        let secret = "eyJhbGciOiJSUzUxMiJ9.c2VjcmV0LXNlc3Npb24";
        let error = parse_logout(&answer(400, &format!(r#"{{"message":"bad token {secret}"}}"#))).unwrap_err();
        assert!(!error.to_string().contains(secret), "{error}");
    }

    #[test]
    fn a_logout_forgets_the_tokens_it_ended_and_only_those() {
        let (mut machine, _) = logged_in();
        assert!(machine.handle_logout(Generation(1), &answer(500, "")).is_err());
        assert!(machine.tokens().is_some(), "a failed logout keeps the tokens");
        assert_eq!(machine.handle_logout(Generation(2), &answer(200, "{}")), Ok(()));
        assert!(machine.tokens().is_some(), "another generation's logout leaves the current tokens");
        assert!(machine.poll_event().is_none());
        assert!(machine.handle_logout(Generation(1), &answer(401, "")).is_err());
        assert!(machine.tokens().is_none(), "a session already over is forgotten");
        assert_eq!(machine.poll_event(), Some(Event::LoggedOut { generation: Generation(1) }));
        assert_eq!(machine.state(), State::NeedsSession { logging_in: false });
        assert!(matches!(machine.poll_output(UnixTime::from_secs(1_700_000_001)), Output::Send(_)), "logs in again");
    }
}
