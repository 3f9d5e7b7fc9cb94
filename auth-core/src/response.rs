//! Reading login answers. Lenient where real pods vary (unknown fields, a 401 without a content type, a `Bearer `
//! prefix); strict where safety needs it (a bounded body, a non-empty token that is a valid header value).

use std::time::Duration;

use http::StatusCode;
use http::header::{DATE, RETRY_AFTER};
use serde_json::Value;

use crate::HttpResponse;
use crate::error::ProtocolProblem;
use crate::retry::parse_retry_after;
use crate::time::UnixTime;
use crate::tokens::SecretHeader;

/// The largest response body the login parsers accept. Drivers should stop reading a body past this size (and
/// hand over what they read, so that the parser reports it as too large).
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// How many bytes of an error body are kept for diagnosis.
const BODY_PREFIX_LEN: usize = 200;

/// A token a login returned.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub(crate) token: SecretHeader,
    pub(crate) authorization: Option<SecretHeader>,
}

/// What a login answer means for the machine.
#[derive(Clone, Debug)]
pub(crate) enum LoginAnswer {
    /// 2xx with a usable token.
    Token(IssuedToken),
    /// A status worth retrying (5xx, 429, 408), with the server's `Retry-After` if any.
    Retry { status: u16, retry_after: Option<Duration> },
    /// The credentials were refused (400, 401, 403, 407).
    Rejected { status: u16, server_message: Option<String>, clock_offset_secs: Option<i64> },
    /// Something unusable.
    Unusable { status: u16, problem: ProtocolProblem, body_prefix: String },
}

/// Classifies a login response.
pub(crate) fn read_login_answer(response: &HttpResponse, now: UnixTime) -> LoginAnswer {
    let status = response.status();
    let body = response.body();
    let unusable = |problem, keep_body: bool| LoginAnswer::Unusable {
        status: status.as_u16(),
        problem,
        body_prefix: if keep_body { body_prefix(body) } else { String::new() },
    };
    if status.is_success() {
        // A successful body may hold credentials: never keep it in an error.
        if body.len() > MAX_RESPONSE_BODY {
            return unusable(ProtocolProblem::BodyTooLarge, false);
        }
        return match parse_token(body) {
            Ok(token) => LoginAnswer::Token(token),
            Err(problem) => unusable(problem, false),
        };
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => retry(response, now),
        s if s.is_server_error() => retry(response, now),
        StatusCode::BAD_REQUEST
        | StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::PROXY_AUTHENTICATION_REQUIRED => LoginAnswer::Rejected {
            status: status.as_u16(),
            server_message: server_message(body),
            clock_offset_secs: clock_offset(response, now),
        },
        _ => unusable(ProtocolProblem::UnexpectedStatus, true),
    }
}

fn retry(response: &HttpResponse, now: UnixTime) -> LoginAnswer {
    let retry_after = response.headers().get(RETRY_AFTER).and_then(|v| parse_retry_after(v, now));
    LoginAnswer::Retry { status: response.status().as_u16(), retry_after }
}

/// Whether an `/agent/v1/info` answer shows an agent that supports simplified key delivery: a 200 whose `version`
/// reads `Agent-MAJOR.MINOR.` with MAJOR.MINOR at least 24.12. Anything else (an error, no version, `unknown`)
/// means no, and the key manager is needed.
#[must_use]
pub fn agent_supports_simplified_key_delivery(response: &HttpResponse) -> bool {
    if response.status() != StatusCode::OK || response.body().len() > MAX_RESPONSE_BODY {
        return false;
    }
    let Ok(body) = serde_json::from_slice::<Value>(response.body()) else { return false };
    body.get("version").and_then(Value::as_str).and_then(agent_version).is_some_and(|version| version >= (24, 12))
}

/// `(major, minor)` from the first `Agent-MAJOR.MINOR.` in `text`.
fn agent_version(text: &str) -> Option<(u32, u32)> {
    text.match_indices("Agent-").find_map(|(at, _)| {
        let mut parts = text[at + "Agent-".len()..].splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        parts.next()?; // a third part must follow the minor, as in `Agent-24.12.0`
        Some((major, minor))
    })
}

/// `{"token": "...", "authorizationToken": "..."}`; `name` is ignored (header names are fixed, PROTOCOL §15.23).
fn parse_token(body: &[u8]) -> Result<IssuedToken, ProtocolProblem> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(ProtocolProblem::NotJson);
    };
    let Some(Value::String(token)) = object.get("token") else {
        return Err(ProtocolProblem::MissingToken);
    };
    let token = strip_bearer(token);
    if token.is_empty() {
        return Err(ProtocolProblem::EmptyToken);
    }
    let token = SecretHeader::new(token).ok_or(ProtocolProblem::TokenNotAHeaderValue)?;
    // The Common JWT is optional (Beta): a missing or unusable one is simply absent.
    let authorization = match object.get("authorizationToken") {
        Some(Value::String(value)) => SecretHeader::new(strip_bearer(value)),
        _ => None,
    };
    Ok(IssuedToken { token, authorization })
}

fn strip_bearer(value: &str) -> &str {
    let value = value.trim();
    match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

/// The `message` of a `{"code":..,"message":..}` error body, shortened.
fn server_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body.get(..MAX_RESPONSE_BODY).unwrap_or(body)).ok()?;
    let message = value.get("message")?.as_str()?.trim();
    (!message.is_empty()).then(|| shorten(message))
}

/// Server time minus `now`, in seconds, when the `Date` header shows more than 30 s of difference: enough to
/// explain a JWT refused for its `exp`.
fn clock_offset(response: &HttpResponse, now: UnixTime) -> Option<i64> {
    server_clock_offset(response, now).filter(|offset| offset.abs() > 30)
}

/// The server's clock minus `now`, in whole seconds, read from the answer's `Date` header; `None` without a valid
/// HTTP date. Login JWTs live 240 s by the bot's clock, so an offset of a minute or more can get them refused.
#[must_use]
pub fn server_clock_offset(response: &HttpResponse, now: UnixTime) -> Option<i64> {
    let date = response.headers().get(DATE)?.to_str().ok()?;
    let server = UnixTime::from_system_time(httpdate::parse_http_date(date).ok()?);
    Some(i64::try_from(server.as_secs()).ok()? - i64::try_from(now.as_secs()).ok()?)
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().filter(|c| !c.is_control()).take(BODY_PREFIX_LEN).collect();
    if text.chars().count() > BODY_PREFIX_LEN {
        out.push('…');
    }
    out
}

fn body_prefix(body: &[u8]) -> String {
    shorten(&String::from_utf8_lossy(&body[..body.len().min(BODY_PREFIX_LEN * 4)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
    }

    fn token_of(answer: LoginAnswer) -> (String, Option<String>) {
        match answer {
            LoginAnswer::Token(t) => (t.token.expose().to_owned(), t.authorization.map(|a| a.expose().to_owned())),
            _ => panic!("not a token"),
        }
    }

    const NOW: UnixTime = UnixTime::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT

    #[test]
    fn agent_versions_follow_the_bdk_vectors() {
        let info = |status: u16, body: &str| agent_supports_simplified_key_delivery(&response(status, body));
        for version in ["Agent-24.12.0", "Agent-24.13.0", "Agent-25.0.0", "Agent-24.12.1-815-Linux-4.14"] {
            assert!(info(200, &format!(r#"{{"version":"{version}","onPrem":false}}"#)), "{version}");
        }
        for version in [
            "Agent-24.11.0",
            "Agent-23.15.0",
            "Agent-2.55.0-SNAPSHOT-Linux-4.4.86+",
            "Agent-24.10.1-815-Linux-4.14",
            "unknown",
            "Agent-24.12",
        ] {
            assert!(!info(200, &format!(r#"{{"version":"{version}"}}"#)), "{version}");
        }
        assert!(!info(200, "{}"));
        assert!(!info(200, r#"{"version":null}"#));
        assert!(!info(500, "{}"));
        assert!(!info(404, r#"{"version":"Agent-25.0.0"}"#));
        assert_eq!(agent_version("Agent-24.10.1-815-Linux-4.14.314"), Some((24, 10)));
    }

    #[test]
    fn tokens_are_read_leniently() {
        let body = r#"{"name":"sessionToken","token":"abc","authorizationToken":"Bearer eyJ","extra":1}"#;
        assert_eq!(token_of(read_login_answer(&response(200, body), NOW)), ("abc".into(), Some("eyJ".into())));
        assert_eq!(token_of(read_login_answer(&response(200, r#"{"token":"bearer x"}"#), NOW)), ("x".into(), None));
        let odd_authz = r#"{"token":"t","authorizationToken":7}"#;
        assert_eq!(token_of(read_login_answer(&response(200, odd_authz), NOW)), ("t".into(), None));
    }

    #[test]
    fn unusable_successes_name_the_problem_and_keep_no_body() {
        for (body, problem) in [
            ("<html>", ProtocolProblem::NotJson),
            ("[1]", ProtocolProblem::NotJson),
            (r#"{"sessionToken":"hidden-secret"}"#, ProtocolProblem::MissingToken),
            (r#"{"token":5}"#, ProtocolProblem::MissingToken),
            (r#"{"token":""}"#, ProtocolProblem::EmptyToken),
            (r#"{"token":"a\nb"}"#, ProtocolProblem::TokenNotAHeaderValue),
        ] {
            match read_login_answer(&response(200, body), NOW) {
                LoginAnswer::Unusable { status: 200, problem: p, body_prefix } => {
                    assert_eq!(p, problem, "{body}");
                    assert!(body_prefix.is_empty());
                }
                _ => panic!("{body}"),
            }
        }
        let huge = format!(r#"{{"token":"{}"}}"#, "a".repeat(MAX_RESPONSE_BODY));
        assert!(matches!(
            read_login_answer(&response(200, &huge), NOW),
            LoginAnswer::Unusable { problem: ProtocolProblem::BodyTooLarge, .. }
        ));
    }

    #[test]
    fn statuses_are_classified() {
        let retry_after = http::Response::builder().status(503).header("retry-after", "3").body(Vec::new()).unwrap();
        assert!(matches!(
            read_login_answer(&retry_after, NOW),
            LoginAnswer::Retry { status: 503, retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        for status in [500, 502, 429, 408] {
            assert!(matches!(
                read_login_answer(&response(status, ""), NOW),
                LoginAnswer::Retry { retry_after: None, .. }
            ));
        }
        for status in [400, 401, 403, 407] {
            assert!(matches!(read_login_answer(&response(status, ""), NOW), LoginAnswer::Rejected { .. }), "{status}");
        }
        match read_login_answer(&response(404, "no such\npath"), NOW) {
            LoginAnswer::Unusable { status: 404, problem: ProtocolProblem::UnexpectedStatus, body_prefix } => {
                assert_eq!(body_prefix, "no suchpath");
            }
            _ => panic!(),
        }
        assert!(matches!(read_login_answer(&response(302, ""), NOW), LoginAnswer::Unusable { .. }));
    }

    #[test]
    fn rejections_keep_the_server_message_and_spot_clock_skew() {
        let skewed = http::Response::builder()
            .status(401)
            .header("date", "Wed, 21 Oct 2015 07:33:00 GMT")
            .body(br#"{"code":401,"message":"Invalid JWT"}"#.to_vec())
            .unwrap();
        match read_login_answer(&skewed, NOW) {
            LoginAnswer::Rejected { status: 401, server_message, clock_offset_secs } => {
                assert_eq!(server_message.as_deref(), Some("Invalid JWT"));
                assert_eq!(clock_offset_secs, Some(300));
            }
            _ => panic!(),
        }
        let close = http::Response::builder()
            .status(401)
            .header("date", "Wed, 21 Oct 2015 07:28:10 GMT")
            .body(b"not json".to_vec())
            .unwrap();
        assert!(matches!(
            read_login_answer(&close, NOW),
            LoginAnswer::Rejected { server_message: None, clock_offset_secs: None, .. }
        ));
    }
}
