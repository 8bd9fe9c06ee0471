//! Objects, their parts and multipart uploads as storage hands them out, in plaintext (see
//! `sealed_records` for their form at rest).

use std::time::SystemTime;

use coffre_crypto::{BucketId, CustomerKeyCheck, NoncePrefix, ObjectId, WrappedDek};
use serde::{Deserialize, Serialize};

/// What the gateway knows about an object's content, in plaintext: set by the gateway and
/// handed back by storage. At rest the ETag, the checksum values, the user metadata
/// values and the tags are sealed under the object's DEK (see `sealed_records`); the size, the content
/// headers (Content-Type and the like), the user metadata names and the checksum
/// algorithms stay plaintext.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub user_metadata: Vec<(String, String)>,
    /// The object's tag set, (key, value) sorted by key, keys unique. Sealed at rest, keys
    /// and values alike.
    pub tags: Vec<(String, String)>,
    /// (algorithm such as "CRC32", base64 value).
    pub checksums: Vec<(String, String)>,
    /// "FULL_OBJECT" or "COMPOSITE".
    pub checksum_type: Option<String>,
}

/// Where a part's sealed bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataLocation {
    /// Small data kept in the record itself, sealed like a file body.
    Inline(Vec<u8>),
    /// A data file `<array>/<tenant>/<ab>/<cd>/<file>` on the array named `array`.
    File { array: String, file: ObjectId },
}

/// One part of an object's data, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLayout {
    /// 0 for a single PUT, the S3 part number for a completed multipart upload; the part
    /// key is derived from it.
    pub part_number: u32,
    /// Plaintext bytes in this part: the source of truth for offsets, never the file size.
    pub size: u64,
    pub location: DataLocation,
    /// The part's own checksums (algorithm name, base64), for GetObjectAttributes.
    pub checksums: Vec<(String, String)>,
    /// The nonce prefix its segments were sealed with (authoritative; the file header
    /// repeats it).
    pub(crate) nonce: NoncePrefix,
}

/// An object as storage hands it out: plaintext metadata, and the wrapped DEK its data
/// and sealed values are bound to. Only storage creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: String,
    /// This version's identity, for binding keys to it.
    pub id: ObjectId,
    pub meta: ObjectMeta,
    pub last_modified: SystemTime,
    pub parts: Vec<PartLayout>,
    /// The bucket incarnation it was read from: part of the DEK's context.
    pub(crate) bucket: BucketId,
    pub(crate) dek: WrappedDek,
    /// Set for an SSE-C object: its data needs the customer key this recognises.
    pub(crate) customer_key_check: Option<CustomerKeyCheck>,
    /// Made by CompleteMultipartUpload (its parts are the upload's), rather than by a
    /// single PUT or a copy (one part to clients, whatever its layout).
    pub(crate) multipart: bool,
}

impl ObjectRecord {
    /// Whether the object was made by CompleteMultipartUpload: only then do clients see its
    /// parts (`partNumber` reads, `x-amz-mp-parts-count`, GetObjectAttributes' parts).
    pub fn is_multipart(&self) -> bool {
        self.multipart
    }

    /// Whether the object was stored with a customer key (SSE-C): reading its data, or
    /// anything beyond what a listing shows, takes that key.
    pub fn is_sse_c(&self) -> bool {
        self.customer_key_check.is_some()
    }
}

/// What the gateway knows about an uploaded part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartInfo {
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    pub checksums: Vec<(String, String)>,
}

/// An uploaded part, plaintext (its ETag and checksums are sealed at rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified: SystemTime,
    pub checksums: Vec<(String, String)>,
    pub location: DataLocation,
    pub(crate) nonce: NoncePrefix,
}

/// A multipart upload, plaintext. Its DEK, created with it, becomes the object's DEK: the
/// upload id is the object's id, so the wrapped DEK's context is already the object's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    /// The upload id is its lowercase hex (URL-safe).
    pub(crate) id: ObjectId,
    pub key: String,
    pub initiated: SystemTime,
    /// Content headers and metadata given at creation; size and etag are empty.
    pub meta: ObjectMeta,
    pub(crate) dek: WrappedDek,
    /// Set for an upload created with a customer key (SSE-C): every part needs that key.
    pub(crate) customer_key_check: Option<CustomerKeyCheck>,
}

impl UploadRecord {
    /// The upload id clients name it by.
    pub fn upload_id(&self) -> String {
        self.id.to_hex()
    }

    /// Whether the upload was created with a customer key (SSE-C).
    pub fn is_sse_c(&self) -> bool {
        self.customer_key_check.is_some()
    }
}
