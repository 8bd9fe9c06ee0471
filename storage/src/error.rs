//! What can go wrong in storage, in terms the S3 layer can map to its error codes.

/// Every failure of a storage call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already owned by you")]
    BucketAlreadyOwnedByYou,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("invalid part {part_number}: missing or etag mismatch")]
    InvalidPart { part_number: u32 },
    /// A completion listed its parts out of ascending order (or one twice).
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    /// A completion named no part.
    #[error("a completion must name at least one part")]
    NoPartsChosen,
    /// A part other than the last of a completion is smaller than the minimum part size.
    #[error("part {part_number} has {size} bytes; every part but the last needs {min}")]
    EntityTooSmall {
        part_number: u32,
        size: u64,
        min: u64,
    },
    /// The whole-object checksum a completion declared is not the one of its parts.
    #[error("the declared {algorithm} checksum does not match the parts'")]
    BadDigest { algorithm: &'static str },
    #[error("a tenant with this name exists")]
    TenantExists,
    #[error("no such tenant")]
    NoSuchTenant,
    /// Deleting a tenant that still has buckets, without `force`.
    #[error("the tenant still has buckets")]
    TenantNotEmpty,
    #[error("no such access key")]
    NoSuchAccessKey,
    /// A placement entry names neither a configured array nor a site label.
    #[error("invalid placement: {0}")]
    InvalidPlacement(String),
    /// The write would take the tenant past one of its quotas; nothing was stored.
    #[error("the tenant's quota of {limit} {what} would be exceeded")]
    QuotaExceeded { what: &'static str, limit: u64 },
    /// The array ran out of space while a data file was being written.
    #[error("array {array} is full")]
    ArrayFull { array: String },
    /// No configured array has free space for a new data file.
    #[error("no array available for new data")]
    NoArrayAvailable,
    /// Data written under one tenant's scope was handed to a call made with another's.
    #[error("written data belongs to another tenant")]
    ScopeMismatch,
    /// Data written for one target (an object, a part of an upload) handed to a call that
    /// stores another: it is sealed under another key, so it would be unreadable there.
    #[error("written data was sealed for another object or part")]
    TargetMismatch,
    /// The object (or upload) was stored with SSE-C and the request gave no customer key.
    #[error("the object is encrypted with a customer key, and none was given")]
    CustomerKeyRequired,
    /// A customer key was given for an object (or upload) stored without SSE-C.
    #[error("a customer key was given for an object stored without one")]
    CustomerKeyNotApplicable,
    /// The customer key given is not the one the object (or upload) was stored with.
    #[error("the customer key is not the one the object was stored with")]
    CustomerKeyMismatch,
    /// The store's configuration cannot be used (duplicate array names, no arrays, ...).
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata store: {0}")]
    Meta(String),
    /// Another transaction changed what this one read; it was run again until its retries
    /// ran out. Retryable by the client.
    #[error("too many concurrent changes to the same records")]
    Conflict,
    /// A background job's lease was taken over by another node (or expired) while it ran:
    /// what it was about to commit is left to the new holder.
    #[error("the lease of {0} is no longer held by this node")]
    LeaseLost(String),
    /// The metadata store cannot be reached (database down, pool exhausted). Retryable.
    #[error("metadata store unavailable: {0}")]
    Unavailable(String),
    /// A metadata record or data file that cannot be trusted: unknown format version,
    /// undecodable record, bad header, or a data file shorter than its recorded size.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// Stored bytes that do not authenticate under the tenant's keys: a data file or sealed
    /// value tampered with, truncated, swapped with another object's, or whose keys are
    /// gone. Nothing of it was returned. `object` names it for the log.
    #[error("integrity check failed for {object}: {reason}")]
    Integrity { object: String, reason: String },
    /// Sealing or key management failed (the root key provider, the HSM).
    #[error("encryption: {0}")]
    Encryption(#[from] coffre_crypto::EncryptionError),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A failure to open `object`'s data or sealed values: an integrity failure names the
    /// object; anything else (a key provider failure) stays an encryption error.
    pub(crate) fn integrity(object: &str, err: coffre_crypto::EncryptionError) -> Self {
        if err.is_integrity_failure() {
            Error::Integrity {
                object: object.to_owned(),
                reason: err.to_string(),
            }
        } else {
            Error::Encryption(err)
        }
    }
}
