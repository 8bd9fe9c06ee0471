//! Coffre's security core: identities and secrets, the `TenantScope` that is the only way to
//! reach tenant data, AWS Signature Version 4 verification (header, presigned query and
//! aws-chunked streaming bodies), the S3 transfer checksums, and encryption at rest: the
//! segmented AES-256-GCM data format, the key hierarchy (root key -> tenant KEK -> DEK ->
//! part keys), the root-key providers and the KEK cache.
//!
//! Nothing here performs I/O except the root-key providers (their key file, the HSM): the
//! gateway feeds requests in, storage consumes scopes.

pub mod aead;
pub mod checksum;
pub mod chunked_body;
pub mod encryption_error;
pub mod ids;
pub mod kek_cache;
pub mod key_hierarchy;
pub mod key_provider;
pub mod scope;
pub mod sigv4;

pub use aead::{
    sealed_len, segments_for_range, stored_offset, NoncePrefix, PartKey, SegmentDecryptor,
    SegmentEncryptor, SegmentSpan, SEALED_SEGMENT_LEN, SEGMENT_LEN,
};
pub use checksum::{
    combine_full_object_crc, composite_checksum, ChecksumAlgorithm, ChecksumHasher,
};
pub use chunked_body::{ChunkError, ChunkErrorCode, ChunkedDecoder};
pub use encryption_error::EncryptionError;
pub use ids::{AccessKeyId, BucketId, IdError, ObjectId, Role, SecretKey, TenantId};
pub use kek_cache::{KekCache, KekCacheStats};
pub use key_hierarchy::{
    CustomerKey, CustomerKeyCheck, CustomerKeyError, Dek, DekContext, Kek, KekVersion, KekWrapper,
    RootKeyVersion, ValueKey, WrappedDek, WrappedKek, SSE_C_ALGORITHM,
};
pub use key_provider::{KeyProvider, LocalFileKeyProvider, Pkcs11Config, Pkcs11KeyProvider};
pub use scope::{AdminScope, Credential, MaintenanceScope, TenantScope};
pub use sigv4::{
    parse_auth, verify, AuthError, AuthErrorCode, AuthRequest, ChunkSigner, PayloadMode,
    RequestParts, Verified,
};
