//! A connection whose writes must keep a minimum rate: a client that does not read its
//! response (or reads it a trickle at a time) is cut once a window of waiting on it moved
//! too little. The timer lives in the write path itself: while a write waits on the client,
//! the deadline is registered with the same waker, so the connection task wakes up to fail
//! the write even if the client never reads again. Reads are left alone (request headers
//! have hyper's header timeout, request bodies their own minimum rate).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics::Metrics;
use crate::min_rate::{MinRate, RateWindow};

pub struct PacedWrites<S> {
    inner: S,
    window: RateWindow,
    /// When the current wait on the client began (a write found the socket full).
    waiting_since: Option<Instant>,
    deadline: Pin<Box<Sleep>>,
    metrics: Arc<Metrics>,
}

impl<S> PacedWrites<S> {
    pub fn new(inner: S, rate: MinRate, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            window: RateWindow::new(rate),
            waiting_since: None,
            deadline: Box::pin(tokio::time::sleep(rate.window())),
            metrics,
        }
    }

    fn too_slow(&self) -> io::Error {
        self.metrics.reject("timeout");
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read the response more slowly than the minimum rate",
        )
    }

    /// A write moved `n` bytes, after the wait in progress if any.
    fn progress(&mut self, n: usize) -> io::Result<usize> {
        let waited = self
            .waiting_since
            .take()
            .map_or(std::time::Duration::ZERO, |since| since.elapsed());
        match self.window.record(waited, n as u64) {
            Ok(()) => Ok(n),
            Err(_) => Err(self.too_slow()),
        }
    }

    /// A write found the socket full: wait on the client, within the window's deadline.
    fn wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.waiting_since.is_none() {
            let now = Instant::now();
            self.waiting_since = Some(now);
            self.deadline.as_mut().reset(now + self.window.remaining());
        }
        while self.deadline.as_mut().poll(cx).is_ready() {
            // A whole window passed while waiting: judge it, then wait on in a new one.
            let now = Instant::now();
            let since = self.waiting_since.replace(now).unwrap_or(now);
            if self.window.record(now - since, 0).is_err() {
                return Poll::Ready(Err(self.too_slow()));
            }
            self.deadline.as_mut().reset(now + self.window.remaining());
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PacedWrites<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PacedWrites<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => Poll::Ready(this.progress(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.wait(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => Poll::Ready(this.progress(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.wait(cx),
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn paced(
        inner: tokio::io::DuplexStream,
        bytes_per_sec: u64,
    ) -> PacedWrites<tokio::io::DuplexStream> {
        let rate = MinRate::new(bytes_per_sec, Duration::from_secs(1));
        PacedWrites::new(inner, rate, Arc::new(Metrics::default()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_that_never_reads_fails_the_write_after_one_window() {
        let (server, _client) = tokio::io::duplex(1024);
        // The 1024 bytes the pipe takes at once are far from 10 000 in the first window.
        let mut paced = paced(server, 10_000);
        let started = Instant::now();
        let error = paced.write_all(&[0u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_at_the_rate_is_served_to_the_end() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut paced = paced(server, 100);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut piece = [0u8; 512];
            loop {
                match client.read(&mut piece).await.unwrap() {
                    0 => return got.len(),
                    n => got.extend_from_slice(&piece[..n]),
                }
                // 512 bytes every 100 ms: well above 100 bytes a second.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        paced.write_all(&[7u8; 16 * 1024]).await.unwrap();
        paced.shutdown().await.unwrap();
        drop(paced);
        assert_eq!(reader.await.unwrap(), 16 * 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_reader_is_cut() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut paced = paced(server, 10_000);
        tokio::spawn(async move {
            let mut byte = [0u8; 1];
            // One byte every 50 ms: 20 bytes a second, far below 10 000.
            while client.read(&mut byte).await.unwrap_or(0) > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let error = paced.write_all(&[0u8; 64 * 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
