//! The agent's health checks, which need no token: G2 `GET /agent/v3/health` (`{"status": "UP"}`) and G3
//! `GET /agent/v3/health/extended`, whose per-service record (pod, key manager, datafeed, and the agent's own
//! service users) is what an operator reads first when agent calls fail.

use http::StatusCode;
use http::header::{ACCEPT, USER_AGENT};
use http::{HeaderValue, Method, Request};
use serde::Deserialize;

use crate::config::Endpoints;
use crate::request::USER_AGENT_VALUE;
use crate::response::MAX_RESPONSE_BODY;
use crate::{HttpRequest, HttpResponse};

/// The path of G2 under the agent's base URL.
pub const AGENT_HEALTH_PATH: &str = "/agent/v3/health";
/// The path of G3 under the agent's base URL.
pub const AGENT_HEALTH_EXTENDED_PATH: &str = "/agent/v3/health/extended";

/// A component's status.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "String")]
#[non_exhaustive]
pub enum HealthStatus {
    /// `UP`.
    Up,
    /// `DOWN`.
    Down,
    /// Any other word, as the agent wrote it.
    Other(String),
}

impl From<String> for HealthStatus {
    fn from(word: String) -> Self {
        match word.to_ascii_uppercase().as_str() {
            "UP" => Self::Up,
            "DOWN" => Self::Down,
            _ => Self::Other(word),
        }
    }
}

impl HealthStatus {
    /// Whether it is `UP`.
    #[must_use]
    pub fn is_up(&self) -> bool {
        *self == Self::Up
    }
}

/// One service the agent depends on, in G3's `services`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ServiceHealth {
    /// Its status.
    pub status: HealthStatus,
    /// Its version, when reported.
    #[serde(default)]
    pub version: Option<String>,
    /// Why it is down, when the agent says.
    #[serde(default)]
    pub message: Option<String>,
}

/// One of the agent's own service users, in G3's `users`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ServiceUserHealth {
    /// Its status.
    pub status: HealthStatus,
    /// How it authenticates (`RSA` or `CERT`), when reported.
    #[serde(default)]
    pub auth_type: Option<String>,
    /// Why it is down, when the agent says.
    #[serde(default)]
    pub message: Option<String>,
}

/// G3's `services`: what the agent reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AgentServices {
    /// The pod.
    #[serde(default)]
    pub pod: Option<ServiceHealth>,
    /// The key manager.
    #[serde(default)]
    pub key_manager: Option<ServiceHealth>,
    /// The datafeed.
    #[serde(default)]
    pub datafeed: Option<ServiceHealth>,
}

/// G3's `users`: the agent's own service accounts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AgentServiceUsers {
    /// The agent service user.
    #[serde(default)]
    pub agentservice: Option<ServiceUserHealth>,
    /// The content-export service user.
    #[serde(default)]
    pub ceservice: Option<ServiceUserHealth>,
}

/// The answer to G3 (`V3Health`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AgentHealth {
    /// The overall status. The agent may say `UP` here while a service is down: read [`down`](Self::down).
    pub status: HealthStatus,
    /// The agent's version.
    #[serde(default)]
    pub version: Option<String>,
    /// The services it depends on.
    #[serde(default)]
    pub services: AgentServices,
    /// Its service users.
    #[serde(default)]
    pub users: AgentServiceUsers,
}

impl AgentHealth {
    /// The names (as G3 spells them) of every service and service user reported but not `UP`.
    #[must_use]
    pub fn down(&self) -> Vec<&'static str> {
        let services = [
            ("pod", &self.services.pod),
            ("key_manager", &self.services.key_manager),
            ("datafeed", &self.services.datafeed),
        ];
        let users = [("agentservice", &self.users.agentservice), ("ceservice", &self.users.ceservice)];
        let services = services.into_iter().filter(|(_, s)| s.as_ref().is_some_and(|s| !s.status.is_up()));
        let users = users.into_iter().filter(|(_, u)| u.as_ref().is_some_and(|u| !u.status.is_up()));
        services.map(|(name, _)| name).chain(users.map(|(name, _)| name)).collect()
    }
}

/// Why a health answer could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HealthError {
    /// A status that carries no health record.
    #[error("{path} answered HTTP {status}")]
    Status {
        /// The endpoint's path.
        path: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// A body that is not a health record.
    #[error("{path} answered a body that is not a health record: {reason}")]
    Body {
        /// The endpoint's path.
        path: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn get(endpoints: &Endpoints, path: &str) -> HttpRequest {
    Request::builder()
        .method(Method::GET)
        .uri(endpoints.agent.join(path))
        .header(ACCEPT, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE))
        .body(Vec::new())
        // A validated base URL and static header values: the builder cannot fail.
        .unwrap_or_else(|_| Request::new(Vec::new()))
}

/// G2: `GET {agent}/agent/v3/health`. No token: send it as it is.
#[must_use]
pub fn agent_health(endpoints: &Endpoints) -> HttpRequest {
    get(endpoints, AGENT_HEALTH_PATH)
}

/// G3: `GET {agent}/agent/v3/health/extended`. No token: send it as it is.
#[must_use]
pub fn agent_health_extended(endpoints: &Endpoints) -> HttpRequest {
    get(endpoints, AGENT_HEALTH_EXTENDED_PATH)
}

fn read<T: for<'de> Deserialize<'de>>(
    response: &HttpResponse,
    path: &'static str,
    statuses: &[StatusCode],
) -> Result<T, HealthError> {
    if !statuses.contains(&response.status()) {
        return Err(HealthError::Status { path, status: response.status().as_u16() });
    }
    if response.body().len() > MAX_RESPONSE_BODY {
        return Err(HealthError::Body { path, reason: "larger than the size limit".into() });
    }
    serde_json::from_slice(response.body()).map_err(|e| HealthError::Body { path, reason: e.to_string() })
}

/// Reads the answer to [`agent_health`]: the agent's status.
///
/// # Errors
/// [`HealthError::Status`] for a status other than 200, [`HealthError::Body`] for a body without a `status`.
pub fn parse_agent_health(response: &HttpResponse) -> Result<HealthStatus, HealthError> {
    #[derive(Deserialize)]
    struct Health {
        status: HealthStatus,
    }
    read::<Health>(response, AGENT_HEALTH_PATH, &[StatusCode::OK]).map(|health| health.status)
}

/// Reads the answer to [`agent_health_extended`]: 200, or 503 when something is down (the body says what).
///
/// # Errors
/// [`HealthError::Status`] for other statuses, [`HealthError::Body`] for a body that is not a `V3Health`.
pub fn parse_agent_health_extended(response: &HttpResponse) -> Result<AgentHealth, HealthError> {
    read(response, AGENT_HEALTH_EXTENDED_PATH, &[StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> HttpResponse {
        http::Response::builder().status(status).body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn requests_go_to_the_agent_without_tokens() {
        let mut endpoints = Endpoints::single("https://acme.symphony.com").unwrap();
        endpoints.agent = crate::config::BaseUrl::parse("agent", "https://agent.acme:8443/ctx").unwrap();
        let g2 = agent_health(&endpoints);
        assert_eq!(
            (g2.method(), g2.uri().to_string().as_str()),
            (&Method::GET, "https://agent.acme:8443/ctx/agent/v3/health")
        );
        let g3 = agent_health_extended(&endpoints);
        assert_eq!(g3.uri(), "https://agent.acme:8443/ctx/agent/v3/health/extended");
        assert!(g3.headers().get("sessionToken").is_none() && g3.body().is_empty());
    }

    #[test]
    fn the_documented_extended_answer_is_a_typed_record() {
        let body = r#"{"status":"UP","version":"24.3.2-778","services":{"pod":{"status":"UP","version":"24.1.1-411-36efd5b"},"key_manager":{"status":"DOWN","version":"24.1.1-411-36efd5b","message":"unreachable"},"datafeed":{"status":"UP","version":"2.11.6"}},"users":{"agentservice":{"authType":"RSA","status":"UP"},"ceservice":{"authType":"CERT","status":"DOWN"}}}"#;
        let health = parse_agent_health_extended(&answer(503, body)).unwrap();
        assert_eq!(health.status, HealthStatus::Up);
        assert_eq!(health.version.as_deref(), Some("24.3.2-778"));
        let km = health.services.key_manager.as_ref().unwrap();
        assert_eq!((km.status.clone(), km.message.as_deref()), (HealthStatus::Down, Some("unreachable")));
        assert_eq!(health.users.agentservice.as_ref().unwrap().auth_type.as_deref(), Some("RSA"));
        assert_eq!(health.down(), ["key_manager", "ceservice"]);
        let up = parse_agent_health_extended(&answer(200, r#"{"status":"UP","services":{"pod":{"status":"UP"}}}"#));
        assert_eq!(up.unwrap().down(), Vec::<&str>::new());
    }

    #[test]
    fn the_simple_answer_and_bad_answers() {
        assert_eq!(parse_agent_health(&answer(200, r#"{"status":"UP"}"#)), Ok(HealthStatus::Up));
        assert_eq!(
            parse_agent_health(&answer(200, r#"{"status":"starting"}"#)),
            Ok(HealthStatus::Other("starting".into()))
        );
        assert_eq!(
            parse_agent_health(&answer(503, r#"{"status":"DOWN"}"#)),
            Err(HealthError::Status { path: AGENT_HEALTH_PATH, status: 503 })
        );
        assert!(matches!(parse_agent_health(&answer(200, "{}")), Err(HealthError::Body { .. })));
        assert!(matches!(
            parse_agent_health_extended(&answer(500, "{}")),
            Err(HealthError::Status { status: 500, .. })
        ));
        assert!(matches!(parse_agent_health_extended(&answer(200, "<html>")), Err(HealthError::Body { .. })));
    }

    #[test]
    fn answers_fill_the_body_bound_exactly_and_one_byte_more_is_refused() {
        let up = r#"{"status":"UP"}"#;
        let full = format!("{up}{}", " ".repeat(MAX_RESPONSE_BODY - up.len()));
        assert_eq!(parse_agent_health(&answer(200, &full)), Ok(HealthStatus::Up));
        assert_eq!(
            parse_agent_health(&answer(200, &format!("{full} "))),
            Err(HealthError::Body { path: AGENT_HEALTH_PATH, reason: "larger than the size limit".into() })
        );
    }
}
