//! Connection admission: a bound on open connections and a deadline on a new connection's
//! first bytes.
//!
//! `axum-server` accepts every connection and hands it to hyper-util's protocol auto-detection,
//! which waits without a deadline for the bytes that tell HTTP/1.1 from HTTP/2. Hyper's own
//! `header_read_timeout` only starts once HTTP/1.1 is chosen. [`ConnectionGuard`] closes the
//! gap: it refuses connections beyond `http.connections_max` and fails a connection whose
//! first [`PROTOCOL_DETECTION_BYTES`] (after TLS, if any) do not arrive within the header read
//! timeout, so silent clients cannot hold connection slots forever.

use axum_server::accept::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Bytes hyper-util reads to detect the protocol: the length of the HTTP/2 connection preface.
pub const PROTOCOL_DETECTION_BYTES: usize = 24;

/// Gauge of connections currently open.
pub const CONNECTIONS_OPEN: &str = "mercato_http_connections_open";
/// Counter of connections closed at once because `http.connections_max` were open.
pub const CONNECTIONS_REFUSED_TOTAL: &str = "mercato_http_connections_refused_total";

/// An acceptor wrapping `inner` (plain or TLS) with connection admission.
#[derive(Clone)]
pub struct ConnectionGuard<A> {
    inner: A,
    permits: Arc<Semaphore>,
    first_bytes_timeout: Duration,
}

impl<A> ConnectionGuard<A> {
    pub fn new(inner: A, connections_max: u32, first_bytes_timeout: Duration) -> Self {
        let permits = usize::try_from(connections_max)
            .unwrap_or(Semaphore::MAX_PERMITS)
            .min(Semaphore::MAX_PERMITS);
        ConnectionGuard {
            inner,
            permits: Arc::new(Semaphore::new(permits)),
            first_bytes_timeout,
        }
    }
}

type AcceptFuture<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

impl<A, I, S> Accept<I, S> for ConnectionGuard<A>
where
    A: Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = GuardedStream<A::Stream>;
    type Service = A::Service;
    type Future = AcceptFuture<(Self::Stream, Self::Service)>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        // The permit is taken before the TLS handshake, so handshakes in progress count too.
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            metrics::counter!(CONNECTIONS_REFUSED_TOTAL).increment(1);
            tracing::debug!("connection refused: connection limit reached");
            return Box::pin(std::future::ready(Err(io::Error::other(
                "connection limit reached",
            ))));
        };
        let inner = self.inner.accept(stream, service);
        let first_bytes_timeout = self.first_bytes_timeout;
        Box::pin(async move {
            let (stream, service) = inner.await?;
            Ok((
                GuardedStream::new(stream, permit, first_bytes_timeout),
                service,
            ))
        })
    }
}

/// A connection holding an admission permit until it is dropped.
pub struct GuardedStream<T> {
    inner: T,
    _permit: OwnedSemaphorePermit,
    /// Armed until the first [`PROTOCOL_DETECTION_BYTES`] have been read.
    first_bytes_deadline: Option<Pin<Box<Sleep>>>,
    bytes_read: usize,
}

impl<T> GuardedStream<T> {
    fn new(inner: T, permit: OwnedSemaphorePermit, first_bytes_timeout: Duration) -> Self {
        metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
        GuardedStream {
            inner,
            _permit: permit,
            first_bytes_deadline: Some(Box::pin(tokio::time::sleep(first_bytes_timeout))),
            bytes_read: 0,
        }
    }
}

impl<T> Drop for GuardedStream<T> {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GuardedStream<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let filled_before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.first_bytes_deadline.is_some() {
                    this.bytes_read += buf.filled().len() - filled_before;
                    if this.bytes_read >= PROTOCOL_DETECTION_BYTES {
                        this.first_bytes_deadline = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let expired = this
                    .first_bytes_deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if !expired {
                    return Poll::Pending;
                }
                this.first_bytes_deadline = None;
                tracing::debug!("connection closed: no request within the header read timeout");
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header read timeout",
                )))
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GuardedStream<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
