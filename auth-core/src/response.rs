//! Reading login answers. Lenient where real pods vary (unknown fields, a 401 without a content type, a `Bearer `
//! prefix); strict where safety needs it (a bounded body, a non-empty token that is a valid header value).
//!
//! What an error keeps of a body: nothing of a successful one (it may hold tokens), and of an error body only what
//! the server says in words — the JSON `message` (or an HTML page's `<title>`), with control characters dropped,
//! every run of 16 or more non-blank characters masked (a JWT, a token or a key echoed back by a pod or a proxy is
//! such a run) and at most 200 characters. Never raw bytes of the body.
//!
//! The token fields are read without a JSON tree: a token without escapes is borrowed from the body, one with
//! escapes is decoded into a buffer wiped on drop, and the only lasting copy is the token's own wiping buffer.

use std::time::Duration;

use std::fmt;

use http::StatusCode;
use http::header::{DATE, RETRY_AFTER};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::HttpResponse;
use crate::error::ProtocolProblem;
use crate::retry::parse_retry_after;
use crate::time::UnixTime;
use crate::tokens::SecretHeader;

/// The largest response body the login parsers accept. Drivers should stop reading a body past this size (and
/// hand over what they read, so that the parser reports it as too large).
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The most characters of a server's words kept for diagnosis.
const SERVER_WORDS_LEN: usize = 200;

/// Runs of this many non-blank characters are masked in what a server says: no token, JWT or key is shorter.
const MASKED_RUN: usize = 16;

/// What replaces a masked run.
const MASK: &str = "<redacted>";

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
    /// Something unusable. `body_prefix` holds the server's words, masked (see the module docs), never raw body
    /// bytes.
    Unusable { status: u16, problem: ProtocolProblem, body_prefix: String },
}

/// Classifies a login response.
#[cfg(test)]
pub(crate) fn read_login_answer(response: &HttpResponse, now: UnixTime) -> LoginAnswer {
    read_login_answer_with(response, now, "token")
}

/// Classifies a login response whose token is in the JSON field `token_field` (`token` in a `Token`,
/// `sessionToken` in the certificate OBO answer).
pub(crate) fn read_login_answer_with(response: &HttpResponse, now: UnixTime, token_field: &str) -> LoginAnswer {
    let status = response.status();
    let body = response.body();
    let unusable = |problem, keep_words: bool| LoginAnswer::Unusable {
        status: status.as_u16(),
        problem,
        body_prefix: if keep_words { server_words(body).unwrap_or_default() } else { String::new() },
    };
    if status.is_success() {
        // A successful body may hold credentials: never keep it in an error.
        if body.len() > MAX_RESPONSE_BODY {
            return unusable(ProtocolProblem::BodyTooLarge, false);
        }
        return match parse_token(body, token_field) {
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
            server_message: server_words(body),
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

/// `{"token": "...", "authorizationToken": "..."}` (or the token under another field name); `name` is ignored
/// (header names are fixed, PROTOCOL §15.23).
fn parse_token(body: &[u8], token_field: &str) -> Result<IssuedToken, ProtocolProblem> {
    let [token, authorization] =
        json_fields(body, [token_field, "authorizationToken"]).ok_or(ProtocolProblem::NotJson)?;
    let Field::Text(token) = token else {
        return Err(ProtocolProblem::MissingToken);
    };
    let token = strip_bearer(token.as_str());
    if token.is_empty() {
        return Err(ProtocolProblem::EmptyToken);
    }
    let token = SecretHeader::new(token).ok_or(ProtocolProblem::TokenNotAHeaderValue)?;
    // The Common JWT is optional (Beta): a missing or unusable one is simply absent.
    let authorization = match authorization {
        Field::Text(value) => SecretHeader::new(strip_bearer(value.as_str())),
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

/// What an error body says in words, masked and shortened: the `message` of a `{"code":..,"message":..}` body, or
/// the `<title>` of an HTML page (proxies answer with those).
pub(crate) fn server_words(body: &[u8]) -> Option<String> {
    let body = body.get(..MAX_RESPONSE_BODY).unwrap_or(body);
    let words = match json_fields(body, ["message"]) {
        Some([Field::Text(message)]) => mask(message.as_str()),
        Some(_) => return None,
        None => mask(html_title(body)?),
    };
    (!words.is_empty()).then_some(words)
}

/// The text of the first `<title>` of an HTML page, looked for in its first 4 KiB.
fn html_title(body: &[u8]) -> Option<&str> {
    let head = body.get(..4096).unwrap_or(body);
    let find = |from: usize, tag: &[u8]| head[from..].windows(tag.len()).position(|w| w.eq_ignore_ascii_case(tag));
    let start = find(0, b"<title>")? + b"<title>".len();
    let len = find(start, b"</title>")?;
    std::str::from_utf8(&head[start..start + len]).ok()
}

/// `text` with control characters dropped, runs of [`MASKED_RUN`] or more non-blank characters replaced by
/// [`MASK`], blanks collapsed, and at most [`SERVER_WORDS_LEN`] characters.
fn mask(text: &str) -> String {
    let mut out = String::new();
    let mut truncated = false;
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()) {
        let word = if word.chars().count() >= MASKED_RUN { MASK } else { word };
        let needed = word.chars().count() + usize::from(!out.is_empty());
        if out.chars().count() + needed > SERVER_WORDS_LEN {
            truncated = true;
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if truncated {
        out.push('…');
    }
    out
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

/// A string field of a JSON object: borrowed from the body when it has no escapes, otherwise decoded into a
/// buffer wiped on drop.
enum JsonText<'a> {
    Borrowed(&'a str),
    Owned(Zeroizing<String>),
}

impl JsonText<'_> {
    fn as_str(&self) -> &str {
        match self {
            Self::Borrowed(text) => text,
            Self::Owned(text) => text,
        }
    }
}

/// One field looked for in a JSON object.
enum Field<'a> {
    Absent,
    Text(JsonText<'a>),
    /// Present, but not a string.
    Other,
}

/// The fields `names` of the JSON object `body` (the last one wins when a name repeats), every other field
/// skipped without being copied; `None` when `body` is not one JSON object.
fn json_fields<'a, const N: usize>(body: &'a [u8], names: [&str; N]) -> Option<[Field<'a>; N]> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let fields = ObjectFields { names }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(fields)
}

struct ObjectFields<'n, const N: usize> {
    names: [&'n str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for ObjectFields<'_, N> {
    type Value = [Field<'de>; N];

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for ObjectFields<'_, N> {
    type Value = [Field<'de>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = std::array::from_fn(|_| Field::Absent);
        while let Some(index) = map.next_key_seed(KeyIndex(&self.names))? {
            match index {
                Some(i) => fields[i] = map.next_value_seed(FieldValue)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// Which of the names a key is, compared in place rather than copied.
struct KeyIndex<'a, 'n>(&'a [&'n str]);

impl<'de> DeserializeSeed<'de> for KeyIndex<'_, '_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIndex<'_, '_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| *name == key))
    }
}

/// A field's value: its text when it is a string, [`Field::Other`] (read and dropped) otherwise.
struct FieldValue;

impl<'de> DeserializeSeed<'de> for FieldValue {
    type Value = Field<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldValue {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Text(JsonText::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        let mut owned = Zeroizing::new(String::with_capacity(text.len()));
        owned.push_str(text);
        Ok(Field::Text(JsonText::Owned(owned)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
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
        match read_login_answer(&response(404, r#"{"code":404,"message":"no such\npath"}"#), NOW) {
            LoginAnswer::Unusable { status: 404, problem: ProtocolProblem::UnexpectedStatus, body_prefix } => {
                assert_eq!(body_prefix, "no such path");
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

    const JWT: &str = "eyJhbGciOiJSUzUxMiJ9.eyJzdWIiOiJib3QiLCJleHAiOjE3MDAwMDAyNDB9.c2lnbmF0dXJlLWJ5dGVz";

    fn words_of(answer: LoginAnswer) -> String {
        match answer {
            LoginAnswer::Unusable { body_prefix, .. } => body_prefix,
            LoginAnswer::Rejected { server_message, .. } => server_message.unwrap_or_default(),
            _ => panic!("not an error answer"),
        }
    }

    #[test]
    fn error_bodies_keep_only_masked_server_words() {
        // A proxy or a pod that echoes the request puts the JWT in its page or its message.
        let echoed_json = format!(r#"{{"code":418,"message":"bad request body {{\"token\":\"{JWT}\"}} refused"}}"#);
        let echoed_html = format!("<html><head><TITLE>502 Bad Gateway</TITLE></head><body>{JWT}</body></html>");
        let echoed_text = format!("token={JWT}");
        for (status, body, expected) in [
            (418, echoed_json.as_str(), "bad request body <redacted> refused"),
            (401, echoed_json.as_str(), "bad request body <redacted> refused"),
            (404, echoed_html.as_str(), "502 Bad Gateway"),
            (302, echoed_text.as_str(), ""),
            (418, r#"{"message":"key 0123456789abcdef0123 unknown"}"#, "key <redacted> unknown"),
        ] {
            let words = words_of(read_login_answer(&response(status, body), NOW));
            assert_eq!(words, expected, "{status} {body}");
            for window in JWT.as_bytes().windows(MASKED_RUN) {
                assert!(!words.contains(std::str::from_utf8(window).unwrap()), "{words}");
            }
        }
    }

    #[test]
    fn server_words_are_bounded_and_free_of_control_characters() {
        let long = format!(r#"{{"message":"{}"}}"#, "word ".repeat(100));
        let words = words_of(read_login_answer(&response(404, &long), NOW));
        assert!(words.chars().count() <= SERVER_WORDS_LEN + 1, "{words}");
        assert!(words.ends_with('…'));
        let words = words_of(read_login_answer(&response(404, "{\"message\":\"a\\u0007b\\tc\"}"), NOW));
        assert_eq!(words, "a b c");
        assert_eq!(words_of(read_login_answer(&response(404, r#"{"message":7}"#), NOW)), "");
    }

    #[test]
    fn server_words_fill_their_bound_exactly_and_no_further() {
        let words =
            |text: &str| words_of(read_login_answer(&response(404, &format!(r#"{{"message":"{text}"}}"#)), NOW));
        // 5 + 39 × 5 = 200 characters: kept whole; one word more is cut, with an ellipsis.
        let fits = format!("fives{}", " word".repeat(39));
        assert_eq!(fits.chars().count(), SERVER_WORDS_LEN);
        assert_eq!(words(&fits), fits);
        assert_eq!(words(&format!("{fits} word")), format!("{fits}…"));
        // 6 + 38 × 5 = 196: the next word with its blank would make 201.
        let almost = format!("sixsix{}", " word".repeat(38));
        assert_eq!(words(&format!("{almost} word")), format!("{almost}…"));
    }

    #[test]
    fn escaped_and_duplicated_token_fields_are_read() {
        let escaped = r#"{"token":"a\/b\u0041","token2":{"x":[1,"y"]}}"#;
        assert_eq!(token_of(read_login_answer(&response(200, escaped), NOW)), ("a/bA".into(), None));
        let twice = r#"{"token":"first","token":"second"}"#;
        assert_eq!(token_of(read_login_answer(&response(200, twice), NOW)).0, "second");
        assert!(matches!(
            read_login_answer(&response(200, r#"{"token":"x"} trailing"#), NOW),
            LoginAnswer::Unusable { problem: ProtocolProblem::NotJson, .. }
        ));
    }
}
