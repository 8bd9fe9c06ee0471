//! Sealing the short values stored in metadata (ETag, checksums, user metadata values).

use std::fmt;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};

use super::{random_nonce, WRAP_NONCE_LEN};
use crate::aead::TAG_LEN;
use crate::EncryptionError;

const VALUE_AD_LABEL: &[u8] = b"coffre/v1/value|";

/// Seals short values under a key derived from the object's DEK
/// ([`crate::Dek::value_key`]). Each value is bound to a `field` name chosen by the caller
/// (`b"etag"`, `b"checksum-crc32"`, `b"meta:color"`), so values cannot be swapped between
/// fields or objects. Sealed form: nonce (12) | ciphertext | tag (16).
pub struct ValueKey {
    key: LessSafeKey,
}

impl ValueKey {
    pub(crate) fn new(key: LessSafeKey) -> Self {
        Self { key }
    }

    pub fn seal(&self, field: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        let nonce = random_nonce();
        let mut sealed = Vec::with_capacity(WRAP_NONCE_LEN + plaintext.len() + TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(associated_data(field)),
                &mut sealed[WRAP_NONCE_LEN..],
            )
            .map_err(|_| EncryptionError::Seal)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(sealed)
    }

    pub fn open(&self, field: &[u8], sealed: &[u8]) -> Result<Vec<u8>, EncryptionError> {
        if sealed.len() < WRAP_NONCE_LEN + TAG_LEN {
            return Err(EncryptionError::Integrity("sealed value too short"));
        }
        let (nonce, body) = sealed.split_at(WRAP_NONCE_LEN);
        let mut nonce_bytes = [0u8; WRAP_NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let mut in_out = body.to_vec();
        let plain_len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(associated_data(field)),
                &mut in_out,
            )
            .map_err(|_| EncryptionError::Integrity("sealed value does not open"))?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

fn associated_data(field: &[u8]) -> Vec<u8> {
    [VALUE_AD_LABEL, field].concat()
}

impl fmt::Debug for ValueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValueKey(<redacted>)")
    }
}
