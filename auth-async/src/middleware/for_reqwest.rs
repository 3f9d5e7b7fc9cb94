//! [`SymphonyAuth`]: the bot as a [`reqwest_middleware::Middleware`].

use http::Extensions;
use reqwest_middleware::{Middleware, Next};
use symphony_auth_core::{HttpResponse, TransportFailure};

use super::{Attempts, BodyNotReplayable, Failed};
use crate::Bot;
use crate::transport::classify;

/// Symphony authentication for a [`reqwest_middleware::ClientWithMiddleware`]:
/// `ClientBuilder::new(reqwest::Client::new()).with(SymphonyAuth::new(bot))`.
///
/// A request to one of the bot's services gets the tokens the core attaches for that service (`sessionToken`,
/// `keyManagerToken` on agent calls, the Common JWT where configured); concurrent requests share one login; a
/// 401 causes the one shared re-login and one replay with the new tokens, and a second 401 is
/// [`Error::Unauthorized`](crate::Error::Unauthorized) (inside [`reqwest_middleware::Error::Middleware`]). With an
/// API retry policy ([`Config::with_api_retry`](symphony_auth_core::Config::with_api_retry)), 5xx, 429 and
/// transport failures are retried as [`Bot::send`] retries them. A request to any other host passes untouched.
///
/// Logins go through the bot's own HTTP client; API calls through yours, with its TLS roots, timeouts and the
/// middlewares after this one.
///
/// **Streamed bodies** (`reqwest::Body::wrap_stream`, `reqwest::Body::wrap`) cannot be sent twice: such a request is sent once, and a
/// 401 (or a 5xx) on it is returned as it is. The next request hits the expired tokens again and logs in.
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

#[async_trait::async_trait]
impl Middleware for SymphonyAuth {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let Ok(uri) = request.url().as_str().parse::<http::Uri>() else { return next.run(request, extensions).await };
        let mut head = http::Request::new(());
        *head.method_mut() = request.method().clone();
        *head.uri_mut() = uri;
        *head.version_mut() = request.version();
        *head.headers_mut() = request.headers().clone();
        let replayable = request.body().is_none_or(|body| body.as_bytes().is_some());
        let call = super::api_call(&self.bot, head.into_parts().0, extensions, replayable)
            .map_err(reqwest_middleware::Error::middleware)?;
        let Some(call) = call else { return next.run(request, extensions).await };
        let attempts = ReqwestAttempts { request: Some(request), replayable, extensions, next };
        super::run(&self.bot, call, attempts).await.map_err(|failed| match failed {
            Failed::Client(error) => error,
            Failed::Bot(error) => reqwest_middleware::Error::middleware(error),
        })
    }
}

struct ReqwestAttempts<'a, 'e> {
    request: Option<reqwest::Request>,
    replayable: bool,
    extensions: &'e mut Extensions,
    next: Next<'a>,
}

impl Attempts for ReqwestAttempts<'_, '_> {
    type Response = reqwest::Response;
    type Error = reqwest_middleware::Error;

    async fn send(&mut self, head: http::Request<()>) -> reqwest_middleware::Result<reqwest::Response> {
        let request = if self.replayable {
            self.request.as_ref().and_then(reqwest::Request::try_clone)
        } else {
            self.request.take()
        };
        let Some(mut request) = request else { return Err(reqwest_middleware::Error::middleware(BodyNotReplayable)) };
        *request.headers_mut() = head.into_parts().0.headers;
        self.next.clone().run(request, self.extensions).await
    }

    fn head_of(response: &reqwest::Response) -> HttpResponse {
        let mut head = HttpResponse::new(Vec::new());
        *head.status_mut() = response.status();
        *head.headers_mut() = response.headers().clone();
        head
    }

    fn failure_of(error: &reqwest_middleware::Error) -> Option<TransportFailure> {
        match error {
            reqwest_middleware::Error::Reqwest(error) => Some(classify(error)),
            reqwest_middleware::Error::Middleware(_) => None,
        }
    }

    async fn discard(mut response: reqwest::Response) {
        // A refused call's answer is short; a longer one is dropped, and its connection with it.
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > 64 * 1024 {
                break;
            }
        }
    }
}
