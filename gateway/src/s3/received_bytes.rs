//! The bytes of a request body actually received, for `bytes_in` in metrics and the audit
//! trail: what the client declared (Content-Length) may be far from what it sent.
//!
//! The pipeline runs each request inside [`ReceivedBytes::counting`]; the request body
//! ([`CountedIncoming`], inside `UnreadBody`) adds every data frame it hands on to the
//! counter of the request it was made for, whichever file reads it. What is drained in the
//! background after the answer (see `unread_body`) is not counted: the request did not use
//! it, and its record is written by then.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

tokio::task_local! {
    static CURRENT: ReceivedBytes;
}

/// Body bytes received for one request, as framed on the wire (aws-chunked framing included).
#[derive(Clone, Default, Debug)]
pub struct ReceivedBytes(Arc<AtomicU64>);

impl ReceivedBytes {
    /// Runs `future` with this counter as the one request bodies made inside it count into.
    pub async fn counting<F: std::future::Future>(&self, future: F) -> F::Output {
        CURRENT.scope(self.clone(), future).await
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A request body that counts the data it yields.
#[derive(Debug)]
pub struct CountedIncoming {
    inner: Incoming,
    /// `None` outside [`ReceivedBytes::counting`] (nothing to count for).
    counter: Option<ReceivedBytes>,
}

impl CountedIncoming {
    /// Counts into the counter of the request being handled, if any.
    pub fn new(inner: Incoming) -> Self {
        Self {
            inner,
            counter: CURRENT.try_with(Clone::clone).ok(),
        }
    }
}

impl CountedIncoming {
    /// The body without its counter: bytes read from it no longer count (a body drained in
    /// the background after the answer was not received *for* the request).
    pub fn into_inner(self) -> Incoming {
        self.inner
    }
}

impl Body for CountedIncoming {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(counter)) = (&polled, &self.counter) {
            if let Some(data) = frame.data_ref() {
                counter.add(data.len());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
