//! A connection wrapper that lets a request handler take the socket away from hyper, so that
//! `Reply::Close` and `Reply::Garbage` can close a connection unanswered or write non-HTTP bytes.
//!
//! hyper owns the connection while it serves it; once a handler arms the [`Hijack`], every byte
//! hyper writes (the placeholder response) is swallowed, the armed bytes go out instead, and the
//! placeholder's `Connection: close` makes hyper shut the connection down right after.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Per-connection switch shared between the handler and the connection's I/O.
#[derive(Debug, Default)]
pub(crate) struct Hijack {
    armed: bool,
    pending: Vec<u8>,
}

impl Hijack {
    /// From now on, write `bytes` (possibly none) in place of whatever hyper writes.
    pub(crate) fn arm(&mut self, bytes: Vec<u8>) {
        self.armed = true;
        self.pending = bytes;
    }
}

pub(crate) type SharedHijack = Arc<Mutex<Hijack>>;

/// The connection as hyper sees it.
#[derive(Debug)]
pub(crate) struct HijackIo<S> {
    inner: S,
    hijack: SharedHijack,
}

impl<S> HijackIo<S> {
    pub(crate) fn new(inner: S, hijack: SharedHijack) -> Self {
        HijackIo { inner, hijack }
    }
}

impl<S: AsyncWrite + Unpin> HijackIo<S> {
    /// Writes the armed bytes; `Ready(Ok(true))` when armed and drained, `Ok(false)` when not armed.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut hijack = self.hijack.lock().unwrap_or_else(PoisonError::into_inner);
        if !hijack.armed {
            return Poll::Ready(Ok(false));
        }
        while !hijack.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &hijack.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            hijack.pending.drain(..n);
        }
        Poll::Ready(Ok(true))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HijackIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HijackIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if ready!(this.poll_drain(cx))? {
            // Swallowed: hyper believes its placeholder response went out.
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
