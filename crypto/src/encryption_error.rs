//! What can go wrong while sealing, opening, wrapping and unwrapping.

use std::path::PathBuf;

/// One error type for the encryption half of the crate: the data format, the key hierarchy,
/// the root-key providers and the KEK cache.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// A tag did not verify: the bytes were tampered with, truncated, reordered, spliced from
    /// another object or tenant, or opened with the wrong key or associated data. The reason
    /// is for logs; callers treat every integrity failure the same way.
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    /// A sealed segment whose length does not match the part's plaintext length.
    #[error("segment {index} is {actual} bytes sealed, expected {expected}")]
    SegmentLength {
        index: u32,
        actual: usize,
        expected: usize,
    },
    /// A segment index past the end of the part.
    #[error("segment {index} is outside a part of {segments} segments")]
    SegmentOutOfRange { index: u32, segments: u64 },
    /// More than 2^32 segments (256 TiB) in one part: the nonce has no room for the index.
    #[error("part exceeds the maximum encrypted length")]
    PartTooLong,
    /// `update` or `finish` after `finish`.
    #[error("the encryptor was already finished")]
    Finished,
    /// A wrapped key names a KEK or root key version that is not the one given or known.
    #[error("wrapped with {kind} version {found}, not available here (have {expected})")]
    KeyVersion {
        kind: &'static str,
        found: u32,
        expected: String,
    },
    /// The root key file exists but is unusable or unsafe.
    #[error("root key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("root key file {path}: {source}")]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The PKCS#11 module, token or key could not be used.
    #[error("pkcs11: {context}: {source}")]
    Pkcs11 {
        context: String,
        #[source]
        source: cryptoki::error::Error,
    },
    /// A PKCS#11 configuration or token state problem that is not a module error.
    #[error("pkcs11: {0}")]
    Pkcs11Setup(String),
    /// The refused operation (such as destroying the current root key).
    #[error("{0}")]
    Refused(&'static str),
    /// The underlying AEAD refused to seal (it never does for valid lengths).
    #[error("AES-256-GCM seal failed")]
    Seal,
}

impl EncryptionError {
    /// True when the stored bytes (or the key or context given) do not authenticate: the
    /// error to log with the object and count, never to retry.
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            Self::Integrity(_) | Self::SegmentLength { .. } | Self::KeyVersion { .. }
        )
    }
}
