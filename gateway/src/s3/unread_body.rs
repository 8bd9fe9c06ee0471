//! A "lingering close" for request bodies the server stops reading: when a request is
//! answered before its body was read (a refused signature, a missing bucket, a body that
//! failed a check halfway), the rest of the body is read and dropped in the background, up to
//! a bound. Closing a socket with unread data makes the kernel send a reset, which can destroy
//! the error response before the client has read it: over TLS the client then sees a broken
//! pipe instead of S3's answer.

use std::time::Duration;

use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::received_bytes::CountedIncoming;

/// At most this much of a refused body is read before the connection is given up.
const LINGER_BYTES: u64 = 8 << 20;
/// And for at most this long.
const LINGER_TIME: Duration = Duration::from_secs(10);

/// A request body that is drained in the background if it is dropped before its end.
/// Its bytes count as received by the request being handled (see `received_bytes`).
pub struct UnreadBody(Option<CountedIncoming>);

impl UnreadBody {
    pub fn new(incoming: Incoming) -> Self {
        Self(Some(CountedIncoming::new(incoming)))
    }

    /// The body, until it is dropped.
    pub fn get_mut(&mut self) -> Option<&mut CountedIncoming> {
        self.0.as_mut()
    }
}

impl Drop for UnreadBody {
    fn drop(&mut self) {
        let Some(incoming) = self.0.take() else {
            return;
        };
        if incoming.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(drain(incoming.into_inner()));
        }
    }
}

/// Reads and drops what is left of `incoming`, within the bounds; dropping it then lets hyper
/// close the connection (or keep it, when the body ended).
async fn drain(mut incoming: Incoming) {
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut drained = 0u64;
    while drained <= LINGER_BYTES {
        match tokio::time::timeout_at(deadline, incoming.frame()).await {
            Ok(Some(Ok(frame))) => {
                drained += frame.data_ref().map_or(0, |data| data.len() as u64);
            }
            // The end, an error or the deadline.
            _ => return,
        }
    }
}
