//! Coffre's security core: identities and secrets, the `TenantScope` that is the only way to
//! reach tenant data, AWS Signature Version 4 verification (header, presigned query and
//! aws-chunked streaming bodies) and the S3 transfer checksums.
//!
//! Nothing here performs I/O: the gateway feeds requests in, storage consumes scopes.

pub mod ids;
pub mod scope;

pub use ids::{AccessKeyId, BucketId, IdError, ObjectId, Role, SecretKey, TenantId};
pub use scope::{AdminScope, Credential, MaintenanceScope, TenantScope};
