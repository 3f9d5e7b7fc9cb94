// The crate documentation is the README, so that the two cannot drift apart; its example is compiled as a doctest.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use http;

mod api;
#[cfg(feature = "bdk-config")]
mod bdk;
mod common_jwt;
mod config;
#[cfg(feature = "driver")]
pub mod driver;
mod endpoint;
mod error;
mod extension_app;
mod flight;
mod health;
mod identity;
mod jwt;
mod key;
mod logout;
mod machine;
mod obo;
mod pem;
mod request;
mod response;
mod retry;
mod session_info;
mod signer;
mod signer_backend;
mod time;
mod tokens;
#[cfg(feature = "tracing")]
mod trace;
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
mod user_jwt;

/// A request, as the machine builds it and a driver sends it.
pub type HttpRequest = http::Request<Vec<u8>>;
/// A response, as a driver reads it and the machine parses it.
pub type HttpResponse = http::Response<Vec<u8>>;

pub use api::{ApiCall, ApiError, ApiRetry, ApiStep, Idempotent};
#[cfg(feature = "bdk-config")]
pub use bdk::{
    AppSettings, BdkConfigError, BotSettings, ConfigFileError, CredentialSource, LoadedSettings, ProxySettings,
    ServiceProxies, Source, parse_bdk_config,
};
pub use common_jwt::{
    ACCESS_TOKEN_KEYS_PATH, ACCESS_TOKEN_PATH, AccessToken, AccessTokenError, Bearer, BearerAuth, BearerStep,
    CommonJwtSettings, DEFAULT_COMMON_JWT_LEEWAY, access_token_keys_request, access_token_request, parse_access_token,
};
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
pub use common_jwt::{AccessTokenKeys, parse_access_token_keys};
pub use config::{
    BaseUrl, Config, DEFAULT_JWT_LIFETIME, DefaultHeaders, Endpoints, KeyManagerPolicy, LoginMethod, MAX_JWT_LIFETIME,
    Service, Username,
};
pub use endpoint::{LoginEndpoint, Purpose};
pub use error::{
    AuthError, ConfigError, FailureCause, KeyError, ProtocolProblem, SignError, TransportFailure, TransportKind,
    UsageError,
};
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
pub use extension_app::parse_pod_certificate;
pub use extension_app::{
    APP_POD_CERTIFICATE_PATH, AppBackend, AppBackendError, AppCredential, AppId, AppIdentityError, AppToken,
    AppTokenStore, DEFAULT_APP_TOKEN_STORE_CAPACITY, EXTENSION_APP_CERTIFICATE_PATH, EXTENSION_APP_RSA_PATH,
    ExtensionApp, ExtensionAppError, ExtensionAppTokens, MIN_APP_TOKEN_RANDOM_BYTES, POD_CERTIFICATE_PATH,
    PairCheckError, SymphonyToken, parse_extension_app_tokens,
};
pub use flight::{BearerLease, Caller, Flight, FlightLock, Report, Step, Ticket, Want};
pub use health::{
    AGENT_HEALTH_EXTENDED_PATH, AGENT_HEALTH_PATH, AgentHealth, AgentServiceUsers, AgentServices, HealthError,
    HealthStatus, ServiceHealth, ServiceUserHealth, agent_health, agent_health_extended, parse_agent_health,
    parse_agent_health_extended,
};
pub use identity::{ClientIdentity, IdentityError, IdentityKeyFormat};
pub use jwt::{Jwt, SKD_CLAIM, SignedJwt, UnsignedJwt, decode_claims, grants_simplified_key_delivery, login_jwt};
#[cfg(feature = "aws-lc-signer")]
pub use key::AwsLcSigner;
#[cfg(feature = "ring-signer")]
pub use key::RingSigner;
#[cfg(feature = "rsa-signer")]
pub use key::RsaSigner;
pub use key::{KeyFormat, MIN_RSA_BITS};
pub use logout::{LOGOUT_PATH, LogoutError, logout, parse_logout};
pub use machine::{
    Authenticator, Event, KeyManagerOutcome, LoginRequest, Output, RequestId, State, UnauthorizedOutcome,
};
pub use obo::{OboUser, obo_user_login};
pub use request::{USER_AGENT_VALUE, agent_info, certificate_login, echo, rsa_login, session_info};
pub use response::{MAX_RESPONSE_BODY, agent_supports_simplified_key_delivery, server_clock_offset};
pub use retry::{CoolDown, RetryPolicy, parse_retry_after};
pub use session_info::{SessionInfo, SessionInfoError, parse_session_info};
pub use signer::JwtSigner;
pub use signer_backend::SignerBackend;
pub use time::UnixTime;
pub use tokens::{
    AuthorizationToken, Generation, KEY_MANAGER_TOKEN_HEADER, KeyManagerToken, SESSION_TOKEN_HEADER, SessionToken,
    Target, Tokens,
};
#[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
pub use user_jwt::{PodCertificate, SymphonyUser, UserClaims, UserJwtError};

#[cfg(test)]
mod tests;
