//! The body of a GET: the object's bytes read from storage one step at a time, each step a
//! short call on the blocking pool (read and decrypt about a MiB), started only when the
//! client has taken what came before, plus one step read ahead. Nothing waits on the client
//! while holding a thread: a client that stops reading leaves only this body parked in its
//! connection, with at most two steps in memory, until the response write deadline cuts it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use coffre_storage::ObjectReader;
use http_body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// Plaintext bytes read and decrypted per step.
const STEP_BYTES: u64 = 1 << 20;

type Step = (ObjectReader, Result<Vec<Bytes>, coffre_storage::Error>);

pub struct ObjectStream {
    state: State,
    /// The next byte to read from storage, and the end of the range.
    next: u64,
    end: u64,
    /// Read, not yet taken by the client.
    ready: VecDeque<Bytes>,
    ready_bytes: u64,
    /// Still to be sent to the client.
    remaining: u64,
    /// The object key, to name it in logs.
    key: String,
}

enum State {
    Idle(ObjectReader),
    Reading(JoinHandle<Step>),
    /// The reader failed or is gone: the response is cut.
    Failed,
}

impl ObjectStream {
    /// Bytes `start..end` of the object behind `reader`.
    pub fn new(reader: ObjectReader, start: u64, end: u64, key: String) -> Self {
        Self {
            state: State::Idle(reader),
            next: start,
            end,
            ready: VecDeque::new(),
            ready_bytes: 0,
            remaining: end.saturating_sub(start),
            key,
        }
    }

    /// Starts reading the next step on the blocking pool, if there is one and what is ready
    /// is less than a step (one step read ahead at most).
    fn read_ahead(&mut self) {
        if self.next >= self.end || self.ready_bytes >= STEP_BYTES {
            return;
        }
        if !matches!(self.state, State::Idle(_)) {
            return;
        }
        let State::Idle(mut reader) = std::mem::replace(&mut self.state, State::Failed) else {
            return;
        };
        let (from, to) = (
            self.next,
            self.end.min(self.next.saturating_add(STEP_BYTES)),
        );
        self.next = to;
        self.state = State::Reading(tokio::task::spawn_blocking(move || {
            let mut chunks = Vec::new();
            let read = reader.read_range(from, to, usize::MAX, &mut |chunk| {
                chunks.push(chunk);
                true
            });
            (reader, read.map(|()| chunks))
        }));
    }

    fn fail(&mut self, e: impl std::fmt::Display) -> std::io::Error {
        self.state = State::Failed;
        std::io::Error::other(e.to_string())
    }
}

impl http_body::Body for ObjectStream {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        loop {
            this.read_ahead();
            if let Some(chunk) = this.ready.pop_front() {
                let len = chunk.len() as u64;
                this.ready_bytes -= len;
                this.remaining = this.remaining.saturating_sub(len);
                // The next step is read while this one is being sent.
                this.read_ahead();
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            let State::Reading(task) = &mut this.state else {
                if this.remaining == 0 {
                    return Poll::Ready(None);
                }
                // Failed, or the reader produced fewer bytes than the range.
                let e = this.fail("object reader stopped early");
                return Poll::Ready(Some(Err(e)));
            };
            let (reader, read) = match Pin::new(task).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(step)) => step,
                Poll::Ready(Err(e)) => {
                    tracing::error!(key = %this.key, error = %e, "object read task failed");
                    let e = this.fail(e);
                    return Poll::Ready(Some(Err(e)));
                }
            };
            match read {
                Ok(chunks) => {
                    this.state = State::Idle(reader);
                    for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
                        this.ready_bytes += chunk.len() as u64;
                        this.ready.push_back(chunk);
                    }
                    if this.ready.is_empty() && this.next >= this.end && this.remaining > 0 {
                        let e = this.fail("object reader stopped early");
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Err(e) => {
                    if matches!(e, coffre_storage::Error::Integrity { .. }) {
                        // A tampered, truncated or swapped data file: a security signal.
                        tracing::error!(key = %this.key, error = %e, "integrity failure mid-stream; connection aborted");
                    } else {
                        tracing::error!(key = %this.key, error = %e, "object read failed mid-stream");
                    }
                    let e = this.fail(e);
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
