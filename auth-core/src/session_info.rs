//! The bot's own user record, from `GET /pod/v2/sessioninfo`.

use http::StatusCode;
use serde::Deserialize;

use crate::HttpResponse;
use crate::response::MAX_RESPONSE_BODY;

/// The bot's own user record, from `GET /pod/v2/sessioninfo` (`UserV2`). Fields the pod adds are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SessionInfo {
    /// The user id.
    pub id: u64,
    /// The username (the service account name).
    pub username: String,
    /// The display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The e-mail address.
    #[serde(default)]
    pub email_address: Option<String>,
    /// The roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Why a session-info answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionInfoError {
    /// A status other than 200.
    #[error("GET /pod/v2/sessioninfo answered HTTP {0}")]
    Status(u16),
    /// A 200 whose body is not a user record.
    #[error("GET /pod/v2/sessioninfo answered a body that is not a user record: {0}")]
    Body(String),
}

/// Reads the answer to [`session_info`](crate::session_info).
pub fn parse_session_info(response: &HttpResponse) -> Result<SessionInfo, SessionInfoError> {
    if response.status() != StatusCode::OK {
        return Err(SessionInfoError::Status(response.status().as_u16()));
    }
    if response.body().len() > MAX_RESPONSE_BODY {
        return Err(SessionInfoError::Body("larger than the size limit".into()));
    }
    serde_json::from_slice(response.body()).map_err(|e| SessionInfoError::Body(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reads_the_documented_user_record() {
        let body = r#"{"id":7696581394433,"emailAddress":"admin@symphony.com","firstName":"Symphony","lastName":"Admin","displayName":"Symphony Admin","title":"Administrator","company":"Acme","username":"admin@symphony.com","location":"California","avatars":[{"size":"original","url":"../avatars/static/150/default.png"}],"roles":["CONTENT_MANAGEMENT","INDIVIDUAL"]}"#;
        let response = http::Response::new(body.as_bytes().to_vec());
        let info = parse_session_info(&response).unwrap();
        assert_eq!(info.id, 7_696_581_394_433);
        assert_eq!(info.username, "admin@symphony.com");
        assert_eq!(info.display_name.as_deref(), Some("Symphony Admin"));
        assert_eq!(info.roles.len(), 2);
    }

    #[test]
    fn bad_answers_are_errors() {
        let mut response = http::Response::new(br#"{"code":401,"message":"Invalid session"}"#.to_vec());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        assert_eq!(parse_session_info(&response), Err(SessionInfoError::Status(401)));
        assert!(matches!(parse_session_info(&http::Response::new(b"{}".to_vec())), Err(SessionInfoError::Body(_))));
    }
}
