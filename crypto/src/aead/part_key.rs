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
        #[cfg(feature = "bench-plaintext")]
        if bench_plaintext::enabled() {
            return Ok(bench_plaintext::tag());
        }
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
        #[cfg(feature = "bench-plaintext")]
        if bench_plaintext::enabled() {
            ciphertext.copy_from_slice(plaintext);
            tag.fill(0);
            return Ok(());
        }
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
        #[cfg(feature = "bench-plaintext")]
        if bench_plaintext::enabled() {
            let plain = in_out.len().saturating_sub(super::TAG_LEN);
            return Ok(&mut in_out[..plain]);
        }
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

/// The benchmark-only switch that stores object data unencrypted, to measure what encryption
/// costs end to end with everything else unchanged (framing, file layout, MD5, I/O). It
/// exists only in builds with the `bench-plaintext` feature, which benches/run-load.sh
/// enables for its own build; no production build can turn it on.
#[cfg(feature = "bench-plaintext")]
pub mod bench_plaintext {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;

    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, AES_256_GCM};

    static ENABLED: AtomicBool = AtomicBool::new(false);

    /// From now on segments are written and read as plaintext with a constant tag that is
    /// never checked. Call once at
    /// startup, before any data is written.
    pub fn enable() {
        ENABLED.store(true, Ordering::Relaxed);
    }

    pub(super) fn enabled() -> bool {
        ENABLED.load(Ordering::Relaxed)
    }

    /// A tag value for segments written unencrypted (aws-lc-rs only makes tags by sealing):
    /// the empty seal of one constant key, made once, so the switch adds no key schedule per
    /// segment to the figures it is there to measure.
    pub(super) fn tag() -> Tag {
        static KEY: OnceLock<LessSafeKey> = OnceLock::new();
        #[allow(clippy::expect_used)] // A constant key and nonce: cannot fail.
        let key = KEY.get_or_init(|| {
            LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0; 32]).expect("AES key"))
        });
        #[allow(clippy::expect_used)]
        key.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut [])
            .expect("empty seal")
    }
}
