//! The data format: segmented streaming AES-256-GCM (the STREAM construction).
//!
//! Each part has its own key (HKDF-SHA-256 of the object's DEK and the part number, see
//! [`crate::Dek::part_key`]) and a random 7-byte [`NoncePrefix`] kept in the part header.
//! Plaintext is cut into 64 KiB segments; segment `i` is sealed with the nonce
//! `prefix (7) | i as u32 big-endian (4) | last (1)` and stored as `ciphertext || tag`, so
//! segment `i` starts at `i * (65536 + 16)`. Only the last segment may be short, an empty part
//! is one empty last segment, and the last flag makes truncation at a segment boundary fail.
//!
//! The data path uses aws-lc-rs (about 3x the `aes-gcm` crate on the reference machine); the
//! tests check every result against `aes-gcm`, so the format never depends on one library.

mod layout;
mod part_key;
mod segment_decryptor;
mod segment_encryptor;

pub use layout::{
    sealed_len, sealed_segment_len, segment_count, segments_for_range, stored_offset, NoncePrefix,
    SegmentSpan, NONCE_PREFIX_LEN, SEALED_SEGMENT_LEN, SEGMENT_LEN, TAG_LEN,
};
#[cfg(feature = "bench-plaintext")]
pub use part_key::bench_plaintext;
pub use part_key::PartKey;
pub use segment_decryptor::SegmentDecryptor;
pub use segment_encryptor::SegmentEncryptor;

#[cfg(test)]
mod tests;
