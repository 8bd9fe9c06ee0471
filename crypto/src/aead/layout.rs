//! Sizes and offsets of the segmented format, and the nonce of each segment.

use std::fmt;
use std::ops::Range;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::EncryptionError;

/// Plaintext bytes per segment; only a part's last segment may be shorter.
pub const SEGMENT_LEN: usize = 64 * 1024;
/// AES-GCM tag bytes appended to each segment.
pub const TAG_LEN: usize = 16;
/// Stored bytes of a full segment.
pub const SEALED_SEGMENT_LEN: usize = SEGMENT_LEN + TAG_LEN;
/// Random bytes at the start of every nonce of a part.
pub const NONCE_PREFIX_LEN: usize = 7;

const SEGMENT_LEN_U64: u64 = SEGMENT_LEN as u64;
const MAX_SEGMENTS: u64 = 1 << 32;

/// The random per-part nonce prefix, stored in the part header. Not secret.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncePrefix([u8; NONCE_PREFIX_LEN]);

impl NoncePrefix {
    /// A fresh prefix from the OS CSPRNG: a part re-uploaded under the same DEK and part
    /// number gets a different one, so no nonce repeats under a part key.
    pub fn random() -> Self {
        let mut bytes = [0u8; NONCE_PREFIX_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub const fn from_bytes(bytes: [u8; NONCE_PREFIX_LEN]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; NONCE_PREFIX_LEN] {
        &self.0
    }

    /// The nonce of segment `index`.
    pub(crate) fn nonce(&self, index: u32, last: bool) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..NONCE_PREFIX_LEN].copy_from_slice(&self.0);
        nonce[NONCE_PREFIX_LEN..11].copy_from_slice(&index.to_be_bytes());
        nonce[11] = u8::from(last);
        nonce
    }
}

impl fmt::Debug for NoncePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoncePrefix({})", hex::encode(self.0))
    }
}

/// Segments in a part of `plain_len` bytes: at least one (an empty part is one empty last
/// segment).
pub const fn segment_count(plain_len: u64) -> u64 {
    if plain_len == 0 {
        1
    } else {
        plain_len.div_ceil(SEGMENT_LEN_U64)
    }
}

/// Stored bytes of a part of `plain_len` plaintext bytes (segments and tags, no header).
pub const fn sealed_len(plain_len: u64) -> u64 {
    plain_len + segment_count(plain_len) * TAG_LEN as u64
}

/// Where segment `index` starts in the stored part (after any header the storage layer adds).
pub const fn stored_offset(index: u32) -> u64 {
    index as u64 * SEALED_SEGMENT_LEN as u64
}

/// Stored length of segment `index` of a part of `plain_len` bytes, if it exists.
pub fn sealed_segment_len(plain_len: u64, index: u32) -> Option<usize> {
    let count = segment_count(plain_len);
    let index = u64::from(index);
    if index + 1 < count {
        Some(SEALED_SEGMENT_LEN)
    } else if index + 1 == count {
        let rest = plain_len - index * SEGMENT_LEN_U64;
        // rest <= SEGMENT_LEN, so it fits in usize.
        usize::try_from(rest).ok().map(|rest| rest + TAG_LEN)
    } else {
        None
    }
}

/// Refuses parts whose segment index would not fit in the nonce's 32 bits.
pub(crate) fn check_part_len(plain_len: u64) -> Result<(), EncryptionError> {
    if segment_count(plain_len) > MAX_SEGMENTS {
        Err(EncryptionError::PartTooLong)
    } else {
        Ok(())
    }
}

/// The segments to read for a plaintext byte range of one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpan {
    /// First segment to read and open.
    pub first: u32,
    /// Last segment to read and open (inclusive).
    pub last: u32,
    /// Plaintext bytes to drop from the start of the first opened segment.
    pub skip: usize,
    /// Plaintext bytes to return after skipping.
    pub len: u64,
    /// Stored bytes to read, relative to the start of the part's segments.
    pub stored: Range<u64>,
}

/// Maps the plaintext range `range` (half-open; an HTTP `bytes=a-b` is `a..b+1`) of a part of
/// `plain_len` bytes to the segments that hold it. `None` for an empty range or one that
/// does not lie within the part.
pub fn segments_for_range(plain_len: u64, range: Range<u64>) -> Option<SegmentSpan> {
    if range.start >= range.end || range.end > plain_len {
        return None;
    }
    let first = range.start / SEGMENT_LEN_U64;
    let last = (range.end - 1) / SEGMENT_LEN_U64;
    let first_u32 = u32::try_from(first).ok()?;
    let last_u32 = u32::try_from(last).ok()?;
    let skip = usize::try_from(range.start % SEGMENT_LEN_U64).ok()?;
    let stored_end = stored_offset(last_u32) + sealed_segment_len(plain_len, last_u32)? as u64;
    Some(SegmentSpan {
        first: first_u32,
        last: last_u32,
        skip,
        len: range.end - range.start,
        stored: stored_offset(first_u32)..stored_end,
    })
}
