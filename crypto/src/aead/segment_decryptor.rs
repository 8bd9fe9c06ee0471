//! Opening the segments of a part, in any order (range reads start anywhere).

use bytes::{Bytes, BytesMut};

use crate::aead::layout::{
    check_part_len, sealed_segment_len, segment_count, NoncePrefix, TAG_LEN,
};
use crate::aead::PartKey;
use crate::EncryptionError;

/// Opens the segments of one part whose plaintext length comes from metadata (never from
/// the file size). Shared by reference, so read-ahead can open segments concurrently.
#[derive(Debug)]
pub struct SegmentDecryptor {
    key: PartKey,
    prefix: NoncePrefix,
    plain_len: u64,
    segments: u64,
}

impl SegmentDecryptor {
    pub fn new(key: PartKey, prefix: NoncePrefix, plain_len: u64) -> Result<Self, EncryptionError> {
        check_part_len(plain_len)?;
        Ok(Self {
            key,
            prefix,
            plain_len,
            segments: segment_count(plain_len),
        })
    }

    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    pub fn segment_count(&self) -> u64 {
        self.segments
    }

    /// Opens segment `index` (`ciphertext || tag`) in place and returns its plaintext. Fails
    /// unless it is exactly that segment of this part: a wrong length, a tampered byte, a
    /// segment from another position, part, object or tenant, or a non-last segment where
    /// the last one belongs.
    pub fn open_in_place<'b>(
        &self,
        index: u32,
        sealed: &'b mut [u8],
    ) -> Result<&'b mut [u8], EncryptionError> {
        let expected = sealed_segment_len(self.plain_len, index).ok_or(
            EncryptionError::SegmentOutOfRange {
                index,
                segments: self.segments,
            },
        )?;
        if sealed.len() != expected {
            return Err(EncryptionError::SegmentLength {
                index,
                actual: sealed.len(),
                expected,
            });
        }
        let last = u64::from(index) + 1 == self.segments;
        self.key
            .open_in_place(self.prefix.nonce(index, last), sealed)
    }

    /// [`open_in_place`](Self::open_in_place) on an owned buffer: the plaintext is the same
    /// allocation, released only after its tag verified.
    pub fn open(&self, index: u32, mut sealed: BytesMut) -> Result<Bytes, EncryptionError> {
        let plain = self.open_in_place(index, &mut sealed)?.len();
        debug_assert_eq!(plain + TAG_LEN, sealed.len());
        sealed.truncate(plain);
        Ok(sealed.freeze())
    }
}
