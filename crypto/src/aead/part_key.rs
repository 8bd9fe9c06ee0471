//! The AES-256-GCM key of one part.

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, Tag};

use crate::EncryptionError;

/// The key of one part, derived from the object's DEK and the part number
/// ([`crate::Dek::part_key`]). Never leaves memory; aws-lc clears it when dropped.
pub struct PartKey {
    key: LessSafeKey,
}

impl PartKey {
    pub(crate) fn new(key: LessSafeKey) -> Self {
        Self { key }
    }

    pub(crate) fn seal_in_place(
        &self,
        nonce: [u8; 12],
        in_out: &mut [u8],
    ) -> Result<Tag, EncryptionError> {
        self.key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), in_out)
            .map_err(|_| EncryptionError::Seal)
    }

    /// Seals `plaintext` into `ciphertext` (same length) and `tag` (16 bytes) in one pass:
    /// no copy of the plaintext first.
    pub(crate) fn seal_out_of_place(
        &self,
        nonce: [u8; 12],
        plaintext: &[u8],
        ciphertext: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), EncryptionError> {
        self.key
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                plaintext,
                ciphertext,
                &[],
                tag,
            )
            .map_err(|_| EncryptionError::Seal)
    }

    /// Opens `ciphertext || tag` in place; returns the plaintext prefix.
    pub(crate) fn open_in_place<'b>(
        &self,
        nonce: [u8; 12],
        in_out: &'b mut [u8],
    ) -> Result<&'b mut [u8], EncryptionError> {
        self.key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), in_out)
            .map_err(|_| EncryptionError::Integrity("segment tag mismatch"))
    }
}

impl fmt::Debug for PartKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartKey(<redacted>)")
    }
}
