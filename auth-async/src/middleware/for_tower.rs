//! [`SymphonyAuthLayer`] and [`SymphonyAuthService`]: the bot as a tower layer over `http::Request<B>`.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Extensions;
use symphony_auth_core::{HttpResponse, TransportFailure};
use tower_layer::Layer;
use tower_service::Service;

use super::{Attempts, BodyNotReplayable, Failed};
use crate::Bot;

/// The error of a [`SymphonyAuthService`]: the inner service's error, or the bot's
/// [`Error`](crate::Error) (a failed login, a second 401), boxed as tower's `BoxError` is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body that a [`SymphonyAuthService`] can send a second time (after a 401, or for a retry).
///
/// Implemented for the buffered bodies: `()`, `String`, `Vec<u8>`, `bytes::Bytes`, and `http_body_util`'s `Full`
/// and `Empty`. A body type whose [`try_clone`](Self::try_clone) gives `None` (a stream: implement the trait
/// for it that way) is sent once, and a 401 on it is returned as it is.
pub trait ReplayBody: Sized {
    /// A copy of the body to send again, or `None` when it cannot be sent twice.
    fn try_clone(&self) -> Option<Self>;
}

macro_rules! replay_by_clone {
    ($($ty:ty),*) => {$(
        impl ReplayBody for $ty {
            fn try_clone(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

replay_by_clone!((), String, Vec<u8>, bytes::Bytes);

impl<D: Clone> ReplayBody for http_body_util::Full<D> {
    fn try_clone(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayBody for http_body_util::Empty<D> {
    fn try_clone(&self) -> Option<Self> {
        Some(http_body_util::Empty::new())
    }
}

/// A [`tower_layer::Layer`] that wraps an HTTP client service (hyper-util's legacy client, a tonic channel, any
/// `Service<http::Request<B>>`) in [`SymphonyAuthService`].
#[derive(Clone, Debug)]
pub struct SymphonyAuthLayer {
    bot: Bot,
}

impl SymphonyAuthLayer {
    /// The layer of `bot` (cheap: bots are shared handles).
    #[must_use]
    pub fn new(bot: Bot) -> Self {
        Self { bot }
    }
}

impl<S> Layer<S> for SymphonyAuthLayer {
    type Service = SymphonyAuthService<S>;

    fn layer(&self, inner: S) -> SymphonyAuthService<S> {
        SymphonyAuthService { bot: self.bot.clone(), inner }
    }
}

/// Symphony authentication around an HTTP client service: requests to the bot's services get the tokens the
/// core attaches for them; concurrent requests share one login; a 401 causes the one shared re-login and one
/// replay, and a second 401 is [`Error::Unauthorized`](crate::Error::Unauthorized); 5xx and 429 are retried
/// under an API retry policy. A request to any other host goes to the inner service untouched.
///
/// A replay or retry is sent through a clone of the inner service (made ready first) with a copy of the body
/// ([`ReplayBody`]) and the request's extensions. The inner service's errors are returned as they are, boxed:
/// failures below HTTP are not retried here (tower's own retry layer can). An answer that is not handed back (a
/// 401 before the replay) is dropped unread.
#[derive(Clone, Debug)]
pub struct SymphonyAuthService<S> {
    bot: Bot,
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for SymphonyAuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayBody + Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<R>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The service polled ready is the one to call first; the clone left in its place is readied when used.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let bot = self.bot.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut head = http::Request::new(());
            *head.method_mut() = parts.method.clone();
            *head.uri_mut() = parts.uri.clone();
            *head.version_mut() = parts.version;
            *head.headers_mut() = parts.headers.clone();
            let spare = body.try_clone();
            let replayable = spare.is_some();
            let call = super::api_call(&bot, head.into_parts().0, &parts.extensions, replayable)?;
            let Some(call) = call else {
                return ready.call(http::Request::from_parts(parts, body)).await.map_err(Into::into);
            };
            let service = ready.clone();
            let attempts = TowerAttempts {
                ready: Some(ready),
                service,
                body: Some(body),
                replayable,
                extensions: parts.extensions,
            };
            drop(spare);
            super::run(&bot, call, attempts).await.map_err(|failed| match failed {
                Failed::Client(error) => error,
                Failed::Bot(error) => Box::new(error) as BoxError,
            })
        })
    }
}

struct TowerAttempts<S, B> {
    /// The service polled ready by the caller, for the first attempt.
    ready: Option<S>,
    service: S,
    body: Option<B>,
    replayable: bool,
    extensions: Extensions,
}

impl<S, B, R> Attempts for TowerAttempts<S, B>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: ReplayBody + Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<R>;
    type Error = BoxError;

    async fn send(&mut self, head: http::Request<()>) -> Result<http::Response<R>, BoxError> {
        let body = if self.replayable { self.body.as_ref().and_then(ReplayBody::try_clone) } else { self.body.take() };
        let Some(body) = body else { return Err(Box::new(BodyNotReplayable)) };
        let mut request = head.map(|()| body);
        *request.extensions_mut() = self.extensions.clone();
        let mut service = match self.ready.take() {
            Some(ready) => ready,
            None => {
                let mut service = self.service.clone();
                poll_fn(|cx| service.poll_ready(cx)).await.map_err(Into::into)?;
                service
            }
        };
        service.call(request).await.map_err(Into::into)
    }

    fn head_of(response: &http::Response<R>) -> HttpResponse {
        let mut head = HttpResponse::new(Vec::new());
        *head.status_mut() = response.status();
        *head.headers_mut() = response.headers().clone();
        head
    }

    fn failure_of(_: &BoxError) -> Option<TransportFailure> {
        None
    }

    async fn discard(_: http::Response<R>) {}
}
