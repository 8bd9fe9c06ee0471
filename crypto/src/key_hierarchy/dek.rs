//! The data-encryption key of one object version, and its wrapped form.

use std::fmt;

use aws_lc_rs::aead::{Aad, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::kdf::{derive_aes_key, PART_KEY_LABEL, VALUE_KEY_LABEL};
use super::{random_key, random_nonce, Kek, KekVersion, ValueKey, WRAP_NONCE_LEN};
use crate::aead::{PartKey, TAG_LEN};
use crate::ids::{BucketId, ObjectId, TenantId};
use crate::EncryptionError;

const DEK_WRAP_LABEL: &[u8] = b"coffre/v1/dek-wrap";

/// A random 256-bit key per object version (or multipart upload). Zeroized on drop.
pub struct Dek(Zeroizing<[u8; 32]>);

impl Dek {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(random_key())
    }

    /// The key of part `part_number` (0 for a single PUT): HKDF-SHA-256(DEK,
    /// "coffre/v1/part-key" | part_number as u32 big-endian).
    pub fn part_key(&self, part_number: u32) -> Result<PartKey, EncryptionError> {
        let part = part_number.to_be_bytes();
        derive_aes_key(&self.0, &[PART_KEY_LABEL, &part]).map(PartKey::new)
    }

    /// The key that seals this object's short values (ETag, checksums, user metadata).
    pub fn value_key(&self) -> Result<ValueKey, EncryptionError> {
        derive_aes_key(&self.0, &[VALUE_KEY_LABEL]).map(ValueKey::new)
    }

    pub(crate) fn from_bytes(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self(bytes)
    }

    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(<redacted>)")
    }
}

/// Everything a wrapped DEK is bound to. Unwrapping under any other context fails, so a
/// record handed to the wrong tenant, bucket, key or version cannot be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DekContext<'a> {
    pub tenant: TenantId,
    pub bucket: BucketId,
    /// The object key (or the upload's key for a multipart upload).
    pub key: &'a str,
    /// The object version, or the multipart upload id.
    pub object: ObjectId,
    /// A version number the storage layer assigns (0 when it has none).
    pub version: u64,
}

impl DekContext<'_> {
    /// Label | tenant | bucket | object | version | KEK version | key length | key: fixed
    /// widths and a length prefix, so no two contexts encode alike.
    fn associated_data(&self, kek_version: KekVersion) -> Vec<u8> {
        let mut ad = Vec::with_capacity(DEK_WRAP_LABEL.len() + 64 + self.key.len());
        ad.extend_from_slice(DEK_WRAP_LABEL);
        ad.extend_from_slice(self.tenant.as_bytes());
        ad.extend_from_slice(self.bucket.as_bytes());
        ad.extend_from_slice(self.object.as_bytes());
        ad.extend_from_slice(&self.version.to_be_bytes());
        ad.extend_from_slice(&kek_version.get().to_be_bytes());
        ad.extend_from_slice(&(self.key.len() as u64).to_be_bytes());
        ad.extend_from_slice(self.key.as_bytes());
        ad
    }
}

/// A DEK sealed under a tenant KEK with AES-256-GCM: what the object record stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedDek {
    pub kek_version: KekVersion,
    pub nonce: [u8; WRAP_NONCE_LEN],
    /// The DEK's ciphertext and tag (48 bytes).
    pub ciphertext: Vec<u8>,
}

impl Kek {
    /// Seals `dek` for `context` under this KEK with a random nonce. (A KEK version should
    /// wrap fewer than 2^32 DEKs; rotation starts a new version long before.)
    pub fn wrap_dek(
        &self,
        dek: &Dek,
        context: &DekContext<'_>,
    ) -> Result<WrappedDek, EncryptionError> {
        let nonce = random_nonce();
        let ad = context.associated_data(self.version());
        let mut ciphertext = Vec::with_capacity(32 + TAG_LEN);
        ciphertext.extend_from_slice(dek.secret_bytes());
        let tag = self
            .aead()
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(ad.as_slice()),
                &mut ciphertext,
            )
            .map_err(|_| EncryptionError::Seal)?;
        ciphertext.extend_from_slice(tag.as_ref());
        Ok(WrappedDek {
            kek_version: self.version(),
            nonce,
            ciphertext,
        })
    }

    /// Opens a wrapped DEK; fails unless this is the KEK version it names and `context` is
    /// exactly the one it was wrapped for.
    pub fn unwrap_dek(
        &self,
        wrapped: &WrappedDek,
        context: &DekContext<'_>,
    ) -> Result<Dek, EncryptionError> {
        if wrapped.kek_version != self.version() {
            return Err(EncryptionError::KeyVersion {
                kind: "KEK",
                found: wrapped.kek_version.get(),
                expected: self.version().get().to_string(),
            });
        }
        if wrapped.ciphertext.len() != 32 + TAG_LEN {
            return Err(EncryptionError::Integrity(
                "wrapped DEK has the wrong length",
            ));
        }
        let ad = context.associated_data(self.version());
        let mut in_out = Zeroizing::new(wrapped.ciphertext.clone());
        let plain = self
            .aead()
            .open_in_place(
                Nonce::assume_unique_for_key(wrapped.nonce),
                Aad::from(ad.as_slice()),
                &mut in_out,
            )
            .map_err(|_| EncryptionError::Integrity("wrapped DEK does not open"))?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(plain);
        Ok(Dek::from_bytes(bytes))
    }
}
