//! What the middlewares share: a request of the caller's own client made into the core's [`ApiCall`], and the
//! loop that sends its attempts through that client. The loop is [`Bot::send`]'s, with the client's own body and
//! answer in place of the driver's; every decision (which tokens, what a 401 means, whether to retry or replay)
//! is the core's.

use std::fmt;
use std::future::Future;

use symphony_auth_core::{
    ApiCall, ApiError, ApiStep, BearerAuth, HttpRequest, HttpResponse, Idempotent, TransportFailure, UsageError, Want,
};

use crate::Error;
use crate::bot::{Bot, now, sleep_until};

#[cfg(feature = "reqwest-middleware")]
pub(crate) mod for_reqwest;
#[cfg(feature = "tower")]
pub(crate) mod for_tower;

/// The core's call for a request with this head, or `None` when its URI is outside the bot's services (the
/// request then goes out untouched). The call is made without the body, which stays with the caller's client:
/// `replayable` says whether that body can be sent again.
///
/// # Errors
/// [`Error::Usage`] for a URI the core refuses to send tokens to although it is on a service's host (a
/// key-manager path, `.` segments, user information).
pub(crate) fn api_call(
    bot: &Bot,
    head: http::request::Parts,
    extensions: &http::Extensions,
    replayable: bool,
) -> Result<Option<ApiCall>, Error> {
    let mut request = HttpRequest::new(Vec::new());
    *request.method_mut() = head.method;
    *request.uri_mut() = head.uri;
    *request.version_mut() = head.version;
    *request.headers_mut() = head.headers;
    // The markers the core reads from a request: whether a POST may be retried, and whether to add the Common JWT.
    for source in [&head.extensions, extensions] {
        if source.get::<Idempotent>().is_some() {
            request.extensions_mut().insert(Idempotent);
        }
        if source.get::<BearerAuth>().is_some() {
            request.extensions_mut().insert(BearerAuth);
        }
    }
    let call = bot.flight().api_call(request);
    match call {
        Ok(call) if replayable => Ok(Some(call)),
        Ok(call) => Ok(Some(call.without_replay())),
        Err(UsageError::ForeignUri(_)) => Ok(None),
        Err(refused) => Err(refused.into()),
    }
}

/// The attempts of one API call, as a middleware sends them through its caller's client.
pub(crate) trait Attempts: Send {
    /// The client's answer.
    type Response: Send;
    /// The client's error.
    type Error: Send;

    /// Sends an attempt: the caller's body (a copy when the call is replayable) under `head`, which has the
    /// caller's method and URI and the call's headers, tokens included.
    fn send(&mut self, head: http::Request<()>) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;

    /// The status and headers of an answer, for the core.
    fn head_of(response: &Self::Response) -> HttpResponse;

    /// The core's view of a client error, when it is a failure below HTTP; `None` returns it as it is.
    fn failure_of(error: &Self::Error) -> Option<TransportFailure>;

    /// Reads and drops an answer the caller will not see (before a replay), so that its connection is reused.
    fn discard(response: Self::Response) -> impl Future<Output = ()> + Send;
}

/// Why a middleware's call ended without an answer for its caller.
pub(crate) enum Failed<E> {
    /// The client's own error, returned as it is.
    Client(E),
    /// The bot's: a failed login, a second 401.
    Bot(Error),
}

/// Runs `call` through `attempts`: tokens attached, the one shared re-login on a 401 and one replay, and the
/// API retry policy's retries, all as the core's steps say.
pub(crate) async fn run<A: Attempts>(
    bot: &Bot,
    mut call: ApiCall,
    mut attempts: A,
) -> Result<A::Response, Failed<A::Error>> {
    let mut tokens = bot.tokens().await.map_err(Failed::Bot)?;
    loop {
        let bearer = bot.bearer(&mut call, &mut tokens).await.map_err(Failed::Bot)?;
        let head = call.request_head(&tokens, bearer.as_ref());
        let result = attempts.send(head).await;
        let outcome = match &result {
            Ok(response) => Ok(A::head_of(response)),
            Err(error) => match A::failure_of(error) {
                Some(failure) => Err(failure),
                None => return result.map_err(Failed::Client),
            },
        };
        let step = bot.flight().handle_api(&mut call, outcome, now());
        match step {
            ApiStep::Return(_) => return result.map_err(Failed::Client),
            ApiStep::Relogin(generation) => {
                if let Ok(response) = result {
                    A::discard(response).await;
                }
                tokens = bot.obtain(Want::Newer(generation)).await.map_err(Failed::Bot)?;
            }
            ApiStep::RetryAt(at) => {
                if let Ok(response) = result {
                    A::discard(response).await;
                }
                sleep_until(at).await;
            }
            // A failure below HTTP is the client's own error, which its caller knows how to read.
            ApiStep::Fail(error @ ApiError::Transport { .. }) => {
                return Err(match result {
                    Err(client) => Failed::Client(client),
                    Ok(_) => Failed::Bot(error.into()),
                });
            }
            ApiStep::Fail(error) => return Err(Failed::Bot(error.into())),
        }
    }
}

/// A call whose body could not be sent again was asked for a second attempt: the core never asks that of a call
/// made [without replay](ApiCall::without_replay), so this is a defect, reported rather than panicked on.
#[derive(Debug)]
pub(crate) struct BodyNotReplayable;

impl fmt::Display for BodyNotReplayable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the request's body cannot be sent a second time")
    }
}

impl std::error::Error for BodyNotReplayable {}
