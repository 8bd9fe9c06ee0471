//! Coffre's security core: identities and secrets, the `TenantScope` that is the only way to
//! reach tenant data, AWS Signature Version 4 verification (header, presigned query and
//! aws-chunked streaming bodies) and the S3 transfer checksums.
//!
//! Nothing here performs I/O: the gateway feeds requests in, storage consumes scopes.

pub mod checksum;
pub mod chunked_body;
pub mod ids;
pub mod scope;
pub mod sigv4;

pub use checksum::{
    combine_full_object_crc, composite_checksum, ChecksumAlgorithm, ChecksumHasher,
};
pub use chunked_body::{ChunkError, ChunkErrorCode, ChunkedDecoder};
pub use ids::{AccessKeyId, BucketId, IdError, ObjectId, Role, SecretKey, TenantId};
pub use scope::{AdminScope, Credential, MaintenanceScope, TenantScope};
pub use sigv4::{
    parse_auth, verify, AuthError, AuthErrorCode, AuthRequest, ChunkSigner, PayloadMode,
    RequestParts, Verified,
};
