//! Sealing a part as it streams in.

use crate::aead::layout::{check_part_len, NoncePrefix, SEALED_SEGMENT_LEN, SEGMENT_LEN};
use crate::aead::PartKey;
use crate::EncryptionError;

/// What the segment buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Buffer {
    /// This many plaintext bytes of the next segment.
    Filling(usize),
    /// A full segment sealed as not-last, held back until more input proves it is not the
    /// last one (then it goes to the sink) or `finish` reseals it as the last.
    Sealed,
}

/// Seals one part. Plaintext comes in pieces of any size and sealed segments
/// (`ciphertext || tag`) go to a sink, from one reusable buffer:
///
/// - a piece holding a whole segment is sealed straight from the caller's bytes into the
///   buffer (one pass: no copy before encryption);
/// - smaller pieces are copied into the buffer, which is sealed in place once full.
///
/// A full segment may be the last one, whose nonce differs, and only the next input or
/// `finish` tells. It is sealed as not-last right away and held back; if `finish` comes
/// first, that one segment is opened and resealed as the last (once per part).
///
/// ```
/// # use coffre_crypto::{Dek, NoncePrefix, SegmentEncryptor, EncryptionError};
/// # fn main() -> Result<(), EncryptionError> {
/// # let pieces: Vec<&[u8]> = vec![b"hello", b" world"];
/// let dek = Dek::generate();
/// let mut encryptor = SegmentEncryptor::new(dek.part_key(0)?, NoncePrefix::random());
/// let mut stored = Vec::new();
/// for piece in pieces {
///     encryptor.update(piece, |sealed| {
///         stored.extend_from_slice(sealed);
///         Ok::<_, EncryptionError>(())
///     })?;
/// }
/// stored.extend_from_slice(encryptor.finish()?);
/// # Ok(()) }
/// ```
pub struct SegmentEncryptor {
    key: PartKey,
    prefix: NoncePrefix,
    /// Index of the next segment to seal.
    next_index: u64,
    /// Always `SEALED_SEGMENT_LEN` bytes long: zeroed once, never resized.
    buf: Vec<u8>,
    state: Buffer,
    /// After `finish`, or after a failed sink (the part is then unusable).
    finished: bool,
    plain_len: u64,
}

impl SegmentEncryptor {
    pub fn new(key: PartKey, prefix: NoncePrefix) -> Self {
        Self {
            key,
            prefix,
            next_index: 0,
            buf: vec![0u8; SEALED_SEGMENT_LEN],
            state: Buffer::Filling(0),
            finished: false,
            plain_len: 0,
        }
    }

    /// The prefix to store in the part header.
    pub fn nonce_prefix(&self) -> NoncePrefix {
        self.prefix
    }

    /// Plaintext bytes taken so far: the part size to record in metadata.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    /// Takes all of `input`, handing each completed non-last segment to `sink` (a
    /// `SEALED_SEGMENT_LEN`-byte slice, valid during the call). After an error, from the
    /// sink or from sealing, the encryptor refuses further calls.
    pub fn update<E>(
        &mut self,
        mut input: &[u8],
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<EncryptionError>,
    {
        if self.finished {
            return Err(EncryptionError::Finished.into());
        }
        while !input.is_empty() {
            let step = match self.state {
                Buffer::Sealed => {
                    // More input: the held-back segment was not the last.
                    self.state = Buffer::Filling(0);
                    sink(&self.buf)
                }
                Buffer::Filling(0) if input.len() >= SEGMENT_LEN => {
                    let (segment, rest) = input.split_at(SEGMENT_LEN);
                    input = rest;
                    self.seal_full_from(segment).map_err(E::from)
                }
                Buffer::Filling(filled) => {
                    let take = (SEGMENT_LEN - filled).min(input.len());
                    let (head, rest) = input.split_at(take);
                    input = rest;
                    self.buf[filled..filled + take].copy_from_slice(head);
                    self.plain_len += take as u64;
                    self.state = Buffer::Filling(filled + take);
                    if filled + take == SEGMENT_LEN {
                        self.seal_full_in_place().map_err(E::from)
                    } else {
                        Ok(())
                    }
                }
            };
            if step.is_err() {
                self.finished = true;
                return step;
            }
        }
        Ok(())
    }

    /// Seals the last segment (short, full or, for an empty part, empty) and returns it.
    /// Later calls to `update` or `finish` fail.
    pub fn finish(&mut self) -> Result<&[u8], EncryptionError> {
        if self.finished {
            return Err(EncryptionError::Finished);
        }
        self.finished = true;
        check_part_len(self.plain_len)?;
        match self.state {
            Buffer::Filling(filled) => {
                let index = self.take_index()?;
                let (plain, rest) = self.buf.split_at_mut(filled);
                let tag = self
                    .key
                    .seal_in_place(self.prefix.nonce(index, true), plain)?;
                rest[..tag.as_ref().len()].copy_from_slice(tag.as_ref());
                Ok(&self.buf[..filled + tag.as_ref().len()])
            }
            Buffer::Sealed => {
                // The held-back segment is the last: reseal it with the last flag.
                let index =
                    u32::try_from(self.next_index - 1).map_err(|_| EncryptionError::PartTooLong)?;
                self.key
                    .open_in_place(self.prefix.nonce(index, false), &mut self.buf)
                    .map_err(|_| EncryptionError::Seal)?;
                let (plain, tag_out) = self.buf.split_at_mut(SEGMENT_LEN);
                let tag = self
                    .key
                    .seal_in_place(self.prefix.nonce(index, true), plain)?;
                tag_out.copy_from_slice(tag.as_ref());
                Ok(&self.buf)
            }
        }
    }

    /// Seals a whole segment of the caller's bytes into the buffer, as not-last.
    fn seal_full_from(&mut self, segment: &[u8]) -> Result<(), EncryptionError> {
        let index = self.take_index()?;
        let (ciphertext, tag) = self.buf.split_at_mut(SEGMENT_LEN);
        self.key
            .seal_out_of_place(self.prefix.nonce(index, false), segment, ciphertext, tag)?;
        self.plain_len += SEGMENT_LEN as u64;
        self.state = Buffer::Sealed;
        Ok(())
    }

    /// Seals the full buffer in place, as not-last.
    fn seal_full_in_place(&mut self) -> Result<(), EncryptionError> {
        let index = self.take_index()?;
        let (plain, tag_out) = self.buf.split_at_mut(SEGMENT_LEN);
        let tag = self
            .key
            .seal_in_place(self.prefix.nonce(index, false), plain)?;
        tag_out.copy_from_slice(tag.as_ref());
        self.state = Buffer::Sealed;
        Ok(())
    }

    /// The index of the segment about to be sealed; fails past 2^32 segments.
    fn take_index(&mut self) -> Result<u32, EncryptionError> {
        let index = u32::try_from(self.next_index).map_err(|_| EncryptionError::PartTooLong)?;
        self.next_index += 1;
        Ok(index)
    }
}

impl std::fmt::Debug for SegmentEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentEncryptor")
            .field("prefix", &self.prefix)
            .field("next_index", &self.next_index)
            .field("plain_len", &self.plain_len)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
