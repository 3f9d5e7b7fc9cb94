//! [`SymphonyAuth`]: the bot as a ureq 3 [`Middleware`]. The loop is [`Bot::send`]'s, with the caller's agent
//! for the first attempt; every decision (which tokens, what a 401 means, whether to retry or replay) is the
//! core's.

use std::io::Read;

use symphony_auth_core::{
    ApiError, ApiStep, BearerAuth, HttpRequest, HttpResponse, Idempotent, TransportFailure, TransportKind, UsageError,
    Want,
};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::{Body, SendBody};

use crate::bot::{Bot, now, sleep_until};
use crate::transport::{self, classify};

/// Symphony authentication for a ureq 3 [`Agent`](ureq::Agent):
/// `Agent::new_with_config(Agent::config_builder().middleware(SymphonyAuth::new(bot)).build())`.
///
/// A request to one of the bot's services gets the tokens the core attaches for that service (`sessionToken`,
/// `keyManagerToken` on agent calls, the Common JWT where configured); concurrent requests share one login; a
/// 401 causes the one shared re-login and one replay with the new tokens, and a second 401 is
/// [`Error::Unauthorized`](crate::Error::Unauthorized) (as [`ureq::Error::Other`]). With an API retry policy,
/// 5xx, 429 and transport failures are retried as [`Bot::send`] retries them. A request to any other host passes
/// untouched. A 401 is recognised both as a response and as `ureq::Error::StatusCode(401)` (ureq's default
/// `http_status_as_error`).
///
/// ureq runs the rest of a middleware chain once per request, so:
/// - the body of a request to the bot's services is read into memory first, to be sent again (set its
///   `Content-Type` yourself: a body read that way loses the one `SendBody::from_json` carries);
/// - a replay or retry goes through **the bot's own agent** (its TLS roots, proxy, client certificate and
///   timeouts; middlewares after this one are skipped), and its statuses come back as responses, never as
///   `ureq::Error::StatusCode`.
///
/// Logins go through the bot's own agent. While ureq-proto's TRACE dump would be logged (it writes headers, so
/// tokens), requests to the bot's services are refused, as [`Bot::send`] refuses them.
#[derive(Clone, Debug)]
pub struct SymphonyAuth {
    bot: Bot,
}

impl SymphonyAuth {
    /// The middleware of `bot` (cheap: bots are shared handles).
    #[must_use]
    pub fn new(bot: Bot) -> Self {
        Self { bot }
    }

    /// The bot.
    #[must_use]
    pub fn bot(&self) -> &Bot {
        &self.bot
    }
}

impl Middleware for SymphonyAuth {
    fn handle(
        &self,
        request: http::Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<http::Response<Body>, ureq::Error> {
        let (parts, body) = request.into_parts();
        let mut head = HttpRequest::new(Vec::new());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = parts.uri.clone();
        *head.version_mut() = parts.version;
        *head.headers_mut() = parts.headers.clone();
        // The markers the core reads from a request: whether a POST may be retried, and whether to add the Common JWT.
        if parts.extensions.get::<Idempotent>().is_some() {
            head.extensions_mut().insert(Idempotent);
        }
        if parts.extensions.get::<BearerAuth>().is_some() {
            head.extensions_mut().insert(BearerAuth);
        }
        let call = self.bot.lock().api_call(head);
        let mut call = match call {
            Ok(call) => call,
            Err(UsageError::ForeignUri(_)) => return next.handle(http::Request::from_parts(parts, body)),
            Err(refused) => return Err(bot_error(refused.into())),
        };
        if transport::dump_would_be_logged() {
            let refused = TransportFailure::new(TransportKind::Refused, transport::DUMP_REFUSAL);
            return Err(bot_error(refused.into()));
        }
        let mut buffered = Vec::new();
        body.into_reader().read_to_end(&mut buffered)?;
        let extensions = parts.extensions;
        let mut tokens = self.bot.tokens().map_err(bot_error)?;
        let mut next = Some(next);
        loop {
            let bearer = self.bot.bearer(&mut call, &mut tokens).map_err(bot_error)?;
            let (head, ()) = call.request_head(&tokens, bearer.as_ref()).into_parts();
            let result = match next.take() {
                Some(next) => {
                    let mut request = http::Request::from_parts(
                        head,
                        SendBody::from_owned_reader(std::io::Cursor::new(buffered.clone())),
                    );
                    *request.extensions_mut() = extensions.clone();
                    next.handle(request)
                }
                None => self.bot.agent_for(&head.uri).run(http::Request::from_parts(head, &buffered[..])),
            };
            let outcome = match &result {
                Ok(response) => Ok(head_of(response)),
                Err(ureq::Error::StatusCode(status)) => Ok(status_only(*status)),
                Err(error) => Err(classify(error)),
            };
            let step = self.bot.lock().handle_api(&mut call, outcome, now());
            match step {
                ApiStep::Return(_) => return result,
                ApiStep::Relogin(generation) => {
                    discard(result);
                    tokens = self.bot.obtain(Want::Newer(generation)).map_err(bot_error)?;
                }
                ApiStep::RetryAt(at) => {
                    discard(result);
                    sleep_until(at);
                }
                // A failure below HTTP is ureq's own error, which its caller knows how to read.
                ApiStep::Fail(error @ ApiError::Transport { .. }) => {
                    return Err(match result {
                        Err(error) => error,
                        Ok(_) => bot_error(error.into()),
                    });
                }
                ApiStep::Fail(error) => return Err(bot_error(error.into())),
            }
        }
    }
}

fn bot_error(error: crate::Error) -> ureq::Error {
    ureq::Error::Other(Box::new(error))
}

fn head_of(response: &http::Response<Body>) -> HttpResponse {
    let mut head = HttpResponse::new(Vec::new());
    *head.status_mut() = response.status();
    *head.headers_mut() = response.headers().clone();
    head
}

fn status_only(status: u16) -> HttpResponse {
    let mut head = HttpResponse::new(Vec::new());
    *head.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    head
}

/// Reads and drops an answer the caller will not see (before a replay), so that its connection is reused; a
/// long one is dropped, and its connection with it.
fn discard(result: Result<http::Response<Body>, ureq::Error>) {
    if let Ok(response) = result {
        let _ = std::io::copy(&mut response.into_body().into_reader().take(64 * 1024), &mut std::io::sink());
    }
}
