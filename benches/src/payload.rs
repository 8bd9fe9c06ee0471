//! Request bodies. One pseudo-random buffer is generated per run; every object body is made of
//! zero-copy `Bytes` slices of it at offsets chosen by the object's index, so objects differ from
//! one another, no request allocates its body, and objects larger than the buffer (a 5 GiB PUT)
//! are streamed as a sequence of slices.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// Largest slice of the buffer; bigger objects are several slices.
const MAX_PIECE: u64 = 64 << 20;
/// Offsets vary over at most this many bytes past the piece size.
const MAX_SPREAD: u64 = 1 << 20;
/// A prime stride, so consecutive indices land on unrelated offsets.
const OFFSET_STRIDE: u64 = 7_919;

pub struct Payload {
    buffer: Bytes,
    object_size: u64,
    piece: u64,
    offsets: u64,
}

impl Payload {
    pub fn new(object_size: u64, seed: u64) -> Self {
        let piece = object_size.min(MAX_PIECE);
        let spread = piece.clamp(4096, MAX_SPREAD);
        let mut buffer = vec![0u8; (piece + spread) as usize];
        SmallRng::seed_from_u64(seed).fill_bytes(&mut buffer);
        Self {
            buffer: Bytes::from(buffer),
            object_size,
            piece,
            offsets: spread + 1,
        }
    }

    pub fn object_size(&self) -> u64 {
        self.object_size
    }

    pub fn body(&self, index: u64) -> PayloadBody {
        PayloadBody {
            pieces: self.pieces(index).collect(),
            remaining: self.object_size,
        }
    }

    /// CRC32 of `body(index)`, to check what a GET returned.
    pub fn expected_crc32(&self, index: u64) -> u32 {
        let mut hasher = crc32fast::Hasher::new();
        for piece in self.pieces(index) {
            hasher.update(&piece);
        }
        hasher.finalize()
    }

    fn pieces(&self, index: u64) -> impl Iterator<Item = Bytes> + '_ {
        let mut remaining = self.object_size;
        let mut nth = 0u64;
        std::iter::from_fn(move || {
            if remaining == 0 {
                return None;
            }
            let len = remaining.min(self.piece);
            let seed = index.wrapping_add(nth.wrapping_mul(OFFSET_STRIDE));
            let offset = seed.wrapping_mul(OFFSET_STRIDE) % self.offsets;
            remaining -= len;
            nth += 1;
            Some(self.buffer.slice(offset as usize..(offset + len) as usize))
        })
    }
}

/// A request body: a queue of `Bytes` sent as one frame each.
#[derive(Debug, Default)]
pub struct PayloadBody {
    pieces: VecDeque<Bytes>,
    remaining: u64,
}

impl From<Bytes> for PayloadBody {
    fn from(bytes: Bytes) -> Self {
        Self {
            remaining: bytes.len() as u64,
            pieces: VecDeque::from([bytes]),
        }
    }
}

impl PayloadBody {
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl Body for PayloadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let piece = this.pieces.pop_front();
        if let Some(piece) = &piece {
            this.remaining -= piece.len() as u64;
        }
        Poll::Ready(piece.map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(body: PayloadBody) -> Vec<u8> {
        let Ok(collected) = body.collect().await;
        collected.to_bytes().to_vec()
    }

    #[tokio::test]
    async fn bodies_have_the_object_size_and_differ() {
        let payload = Payload::new(4096, 7);
        let (a, b) = (
            collect(payload.body(0)).await,
            collect(payload.body(1)).await,
        );
        assert_eq!(a.len(), 4096);
        assert_eq!(b.len(), 4096);
        assert_ne!(a, b);
        assert_eq!(collect(payload.body(1)).await, b);
        assert_eq!(payload.expected_crc32(1), crc32fast::hash(&b));
    }

    #[tokio::test]
    async fn objects_larger_than_the_buffer_are_streamed_in_pieces() {
        let size = MAX_PIECE * 2 + 5;
        let payload = Payload::new(size, 3);
        let body = payload.body(9);
        assert_eq!(body.pieces.len(), 3);
        assert_eq!(body.size_hint().exact(), Some(size));
        let bytes = collect(body).await;
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(payload.expected_crc32(9), crc32fast::hash(&bytes));
        assert_eq!(payload.buffer.len() as u64, MAX_PIECE + MAX_SPREAD);
    }

    #[test]
    fn empty_objects_are_allowed() {
        let body = Payload::new(0, 1).body(12345);
        assert!(body.is_empty());
        assert!(body.is_end_stream());
    }
}
