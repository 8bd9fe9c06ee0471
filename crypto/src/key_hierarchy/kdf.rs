//! HKDF-SHA-256 derivations from a DEK. Each use has its own label, so no two derived keys
//! coincide.

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use zeroize::Zeroizing;

use crate::EncryptionError;

/// `info` = label | part number (u32 big-endian).
pub(crate) const PART_KEY_LABEL: &[u8] = b"coffre/v1/part-key";
/// `info` = label: the key of the short values (ETag, checksums, user metadata) of an object.
pub(crate) const VALUE_KEY_LABEL: &[u8] = b"coffre/v1/value-key";

/// HKDF-SHA-256 with an empty salt (the DEK is already uniformly random) expanded to an
/// AES-256-GCM key.
pub(crate) fn derive_aes_key(
    ikm: &[u8; 32],
    info: &[&[u8]],
) -> Result<LessSafeKey, EncryptionError> {
    let prk = Salt::new(HKDF_SHA256, &[]).extract(ikm);
    let okm = prk
        .expand(info, &AES_256_GCM)
        .map_err(|_| EncryptionError::Refused("HKDF expand"))?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    okm.fill(bytes.as_mut())
        .map_err(|_| EncryptionError::Refused("HKDF expand"))?;
    aes_key(&bytes)
}

/// An aws-lc AES-256-GCM key from raw bytes.
pub(crate) fn aes_key(bytes: &[u8; 32]) -> Result<LessSafeKey, EncryptionError> {
    let unbound = UnboundKey::new(&AES_256_GCM, bytes)
        .map_err(|_| EncryptionError::Refused("AES-256 key setup"))?;
    Ok(LessSafeKey::new(unbound))
}
