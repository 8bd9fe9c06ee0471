//! Routing: a request's method, host, path and query keywords resolve to one typed
//! [`Operation`]. Handlers match on variants; nothing downstream looks at the raw path again.

use http::Method;
use percent_encoding::percent_decode_str;

mod bucket_name;
mod copy_source;
mod routing;

use super::error::{S3Error, S3ErrorCode};
use super::query::Query;

pub use bucket_name::validate_bucket_name;
pub use copy_source::CopySource;

/// Longest key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket {
        bucket: String,
    },
    HeadBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    GetBucketLocation {
        bucket: String,
    },
    GetBucketVersioning {
        bucket: String,
    },
    ListObjects {
        bucket: String,
    },
    ListObjectsV2 {
        bucket: String,
    },
    ListMultipartUploads {
        bucket: String,
    },
    ListObjectVersions {
        bucket: String,
    },
    DeleteObjects {
        bucket: String,
    },
    /// A browser-form upload: authenticated by its form fields, not by a signed request.
    PostObject {
        bucket: String,
    },
    GetBucketAcl {
        bucket: String,
    },
    PutBucketAcl {
        bucket: String,
    },
    GetBucketEncryption {
        bucket: String,
    },
    GetBucketPolicyStatus {
        bucket: String,
    },
    GetPublicAccessBlock {
        bucket: String,
    },
    GetBucketOwnershipControls {
        bucket: String,
    },
    GetBucketCors {
        bucket: String,
    },
    PutBucketCors {
        bucket: String,
    },
    DeleteBucketCors {
        bucket: String,
    },
    /// A browser's CORS preflight (`OPTIONS`): unauthenticated, since browsers send no
    /// credentials with it, and answered from published CORS rules only.
    CorsPreflight {
        bucket: String,
        key: String,
    },
    /// A bucket configuration Coffre never has (policy, lifecycle, website...): S3's
    /// "not configured" error once the bucket is known to exist.
    GetAbsentBucketConfig {
        bucket: String,
        name: &'static str,
        code: S3ErrorCode,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    CopyObject {
        bucket: String,
        key: String,
        source: CopySource,
    },
    GetObject {
        bucket: String,
        key: String,
        part_number: Option<u32>,
    },
    HeadObject {
        bucket: String,
        key: String,
        part_number: Option<u32>,
    },
    GetObjectAttributes {
        bucket: String,
        key: String,
    },
    GetObjectAcl {
        bucket: String,
        key: String,
    },
    GetObjectTagging {
        bucket: String,
        key: String,
    },
    PutObjectTagging {
        bucket: String,
        key: String,
    },
    DeleteObjectTagging {
        bucket: String,
        key: String,
    },
    PutObjectAcl {
        bucket: String,
        key: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    CreateMultipartUpload {
        bucket: String,
        key: String,
    },
    UploadPart {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
    },
    UploadPartCopy {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u32,
        source: CopySource,
    },
    CompleteMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    AbortMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    ListParts {
        bucket: String,
        key: String,
        upload_id: String,
    },
    /// Well-formed S3 that Coffre does not do (yet): answered with NotImplemented.
    Unsupported {
        name: &'static str,
    },
}

impl Operation {
    /// Name used in logs and metrics labels (a bounded set).
    pub fn name(&self) -> &'static str {
        match self {
            Self::ListBuckets => "ListBuckets",
            Self::CreateBucket { .. } => "CreateBucket",
            Self::HeadBucket { .. } => "HeadBucket",
            Self::DeleteBucket { .. } => "DeleteBucket",
            Self::GetBucketLocation { .. } => "GetBucketLocation",
            Self::GetBucketVersioning { .. } => "GetBucketVersioning",
            Self::ListObjects { .. } => "ListObjects",
            Self::ListObjectsV2 { .. } => "ListObjectsV2",
            Self::ListMultipartUploads { .. } => "ListMultipartUploads",
            Self::ListObjectVersions { .. } => "ListObjectVersions",
            Self::DeleteObjects { .. } => "DeleteObjects",
            Self::PostObject { .. } => "PostObject",
            Self::GetBucketAcl { .. } => "GetBucketAcl",
            Self::PutBucketAcl { .. } => "PutBucketAcl",
            Self::GetBucketEncryption { .. } => "GetBucketEncryption",
            Self::GetBucketPolicyStatus { .. } => "GetBucketPolicyStatus",
            Self::GetPublicAccessBlock { .. } => "GetPublicAccessBlock",
            Self::GetBucketOwnershipControls { .. } => "GetBucketOwnershipControls",
            Self::GetBucketCors { .. } => "GetBucketCors",
            Self::PutBucketCors { .. } => "PutBucketCors",
            Self::DeleteBucketCors { .. } => "DeleteBucketCors",
            Self::CorsPreflight { .. } => "CorsPreflight",
            Self::GetAbsentBucketConfig { name, .. } => name,
            Self::PutObject { .. } => "PutObject",
            Self::CopyObject { .. } => "CopyObject",
            Self::GetObject { .. } => "GetObject",
            Self::HeadObject { .. } => "HeadObject",
            Self::GetObjectAttributes { .. } => "GetObjectAttributes",
            Self::GetObjectAcl { .. } => "GetObjectAcl",
            Self::GetObjectTagging { .. } => "GetObjectTagging",
            Self::PutObjectTagging { .. } => "PutObjectTagging",
            Self::DeleteObjectTagging { .. } => "DeleteObjectTagging",
            Self::PutObjectAcl { .. } => "PutObjectAcl",
            Self::DeleteObject { .. } => "DeleteObject",
            Self::CreateMultipartUpload { .. } => "CreateMultipartUpload",
            Self::UploadPart { .. } => "UploadPart",
            Self::UploadPartCopy { .. } => "UploadPartCopy",
            Self::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Self::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Self::ListParts { .. } => "ListParts",
            Self::Unsupported { name } => name,
        }
    }

    pub fn bucket(&self) -> Option<&str> {
        match self {
            Self::ListBuckets | Self::Unsupported { .. } => None,
            Self::CreateBucket { bucket }
            | Self::HeadBucket { bucket }
            | Self::DeleteBucket { bucket }
            | Self::GetBucketLocation { bucket }
            | Self::GetBucketVersioning { bucket }
            | Self::ListObjects { bucket }
            | Self::ListObjectsV2 { bucket }
            | Self::ListMultipartUploads { bucket }
            | Self::ListObjectVersions { bucket }
            | Self::DeleteObjects { bucket }
            | Self::PostObject { bucket }
            | Self::GetBucketAcl { bucket }
            | Self::PutBucketAcl { bucket }
            | Self::GetBucketEncryption { bucket }
            | Self::GetBucketPolicyStatus { bucket }
            | Self::GetPublicAccessBlock { bucket }
            | Self::GetBucketOwnershipControls { bucket }
            | Self::GetBucketCors { bucket }
            | Self::PutBucketCors { bucket }
            | Self::DeleteBucketCors { bucket }
            | Self::CorsPreflight { bucket, .. }
            | Self::GetAbsentBucketConfig { bucket, .. }
            | Self::PutObject { bucket, .. }
            | Self::CopyObject { bucket, .. }
            | Self::GetObject { bucket, .. }
            | Self::HeadObject { bucket, .. }
            | Self::GetObjectAttributes { bucket, .. }
            | Self::GetObjectAcl { bucket, .. }
            | Self::PutObjectAcl { bucket, .. }
            | Self::GetObjectTagging { bucket, .. }
            | Self::PutObjectTagging { bucket, .. }
            | Self::DeleteObjectTagging { bucket, .. }
            | Self::DeleteObject { bucket, .. }
            | Self::CreateMultipartUpload { bucket, .. }
            | Self::UploadPart { bucket, .. }
            | Self::UploadPartCopy { bucket, .. }
            | Self::CompleteMultipartUpload { bucket, .. }
            | Self::AbortMultipartUpload { bucket, .. }
            | Self::ListParts { bucket, .. } => Some(bucket),
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Self::PutObject { key, .. }
            | Self::CopyObject { key, .. }
            | Self::GetObject { key, .. }
            | Self::HeadObject { key, .. }
            | Self::GetObjectAttributes { key, .. }
            | Self::GetObjectAcl { key, .. }
            | Self::PutObjectAcl { key, .. }
            | Self::GetObjectTagging { key, .. }
            | Self::PutObjectTagging { key, .. }
            | Self::DeleteObjectTagging { key, .. }
            | Self::DeleteObject { key, .. }
            | Self::CreateMultipartUpload { key, .. }
            | Self::UploadPart { key, .. }
            | Self::UploadPartCopy { key, .. }
            | Self::CompleteMultipartUpload { key, .. }
            | Self::AbortMultipartUpload { key, .. }
            | Self::ListParts { key, .. } => Some(key),
            _ => None,
        }
    }

    /// What the operation is, without its arguments.
    pub fn kind(&self) -> OperationKind {
        use OperationKind as K;
        match self {
            Self::ListBuckets => K::ListBuckets,
            Self::CreateBucket { .. } => K::CreateBucket,
            Self::HeadBucket { .. } => K::HeadBucket,
            Self::DeleteBucket { .. } => K::DeleteBucket,
            Self::GetBucketLocation { .. } => K::GetBucketLocation,
            Self::GetBucketVersioning { .. } => K::GetBucketVersioning,
            Self::ListObjects { .. } => K::ListObjects,
            Self::ListObjectsV2 { .. } => K::ListObjectsV2,
            Self::ListMultipartUploads { .. } => K::ListMultipartUploads,
            Self::ListObjectVersions { .. } => K::ListObjectVersions,
            Self::DeleteObjects { .. } => K::DeleteObjects,
            Self::PostObject { .. } => K::PostObject,
            Self::GetBucketAcl { .. } => K::GetBucketAcl,
            Self::PutBucketAcl { .. } => K::PutBucketAcl,
            Self::GetBucketEncryption { .. } => K::GetBucketEncryption,
            Self::GetBucketPolicyStatus { .. } => K::GetBucketPolicyStatus,
            Self::GetPublicAccessBlock { .. } => K::GetPublicAccessBlock,
            Self::GetBucketOwnershipControls { .. } => K::GetBucketOwnershipControls,
            Self::GetBucketCors { .. } => K::GetBucketCors,
            Self::PutBucketCors { .. } => K::PutBucketCors,
            Self::DeleteBucketCors { .. } => K::DeleteBucketCors,
            Self::CorsPreflight { .. } => K::CorsPreflight,
            Self::GetAbsentBucketConfig { .. } => K::GetAbsentBucketConfig,
            Self::PutObject { .. } => K::PutObject,
            Self::CopyObject { .. } => K::CopyObject,
            Self::GetObject { .. } => K::GetObject,
            Self::HeadObject { .. } => K::HeadObject,
            Self::GetObjectAttributes { .. } => K::GetObjectAttributes,
            Self::GetObjectAcl { .. } => K::GetObjectAcl,
            Self::GetObjectTagging { .. } => K::GetObjectTagging,
            Self::PutObjectTagging { .. } => K::PutObjectTagging,
            Self::DeleteObjectTagging { .. } => K::DeleteObjectTagging,
            Self::PutObjectAcl { .. } => K::PutObjectAcl,
            Self::DeleteObject { .. } => K::DeleteObject,
            Self::CreateMultipartUpload { .. } => K::CreateMultipartUpload,
            Self::UploadPart { .. } => K::UploadPart,
            Self::UploadPartCopy { .. } => K::UploadPartCopy,
            Self::CompleteMultipartUpload { .. } => K::CompleteMultipartUpload,
            Self::AbortMultipartUpload { .. } => K::AbortMultipartUpload,
            Self::ListParts { .. } => K::ListParts,
            Self::Unsupported { .. } => K::Unsupported,
        }
    }

    /// Whether the operation changes anything (read-only keys may not run it).
    pub fn is_write(&self) -> bool {
        self.kind().is_write()
    }

    /// The HTTP method the operation is routed from; `None` for `Unsupported`, which any
    /// method may reach.
    pub fn http_method(&self) -> Option<Method> {
        Some(match self {
            Self::ListBuckets
            | Self::GetBucketLocation { .. }
            | Self::GetBucketVersioning { .. }
            | Self::ListObjects { .. }
            | Self::ListObjectsV2 { .. }
            | Self::ListMultipartUploads { .. }
            | Self::ListObjectVersions { .. }
            | Self::GetBucketAcl { .. }
            | Self::GetBucketEncryption { .. }
            | Self::GetBucketPolicyStatus { .. }
            | Self::GetPublicAccessBlock { .. }
            | Self::GetBucketOwnershipControls { .. }
            | Self::GetBucketCors { .. }
            | Self::GetAbsentBucketConfig { .. }
            | Self::GetObject { .. }
            | Self::GetObjectAttributes { .. }
            | Self::GetObjectAcl { .. }
            | Self::GetObjectTagging { .. }
            | Self::ListParts { .. } => Method::GET,
            Self::HeadBucket { .. } | Self::HeadObject { .. } => Method::HEAD,
            Self::CreateBucket { .. }
            | Self::PutBucketAcl { .. }
            | Self::PutBucketCors { .. }
            | Self::PutObject { .. }
            | Self::CopyObject { .. }
            | Self::PutObjectAcl { .. }
            | Self::PutObjectTagging { .. }
            | Self::UploadPart { .. }
            | Self::UploadPartCopy { .. } => Method::PUT,
            Self::DeleteBucket { .. }
            | Self::DeleteBucketCors { .. }
            | Self::DeleteObject { .. }
            | Self::DeleteObjectTagging { .. }
            | Self::AbortMultipartUpload { .. } => Method::DELETE,
            Self::DeleteObjects { .. }
            | Self::PostObject { .. }
            | Self::CreateMultipartUpload { .. }
            | Self::CompleteMultipartUpload { .. } => Method::POST,
            Self::CorsPreflight { .. } => Method::OPTIONS,
            Self::Unsupported { .. } => return None,
        })
    }

    /// The source a copy reads from (it must be readable by the caller too).
    pub fn copy_source(&self) -> Option<&CopySource> {
        match self {
            Self::CopyObject { source, .. } | Self::UploadPartCopy { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Resolves a request. `host` is the Host header (virtual-host style when it ends in
    /// `.<domain>`), `raw_path` is the path as received. A bucket name no bucket can have is
    /// `InvalidBucketName` here, before the request is looked at any further.
    pub fn parse(
        method: &Method,
        host: Option<&str>,
        domain: Option<&str>,
        raw_path: &str,
        query: &Query,
        copy_source: Option<&str>,
    ) -> Result<Self, S3Error> {
        let path = percent_decode_str(raw_path).decode_utf8().map_err(|_| {
            S3Error::with_message(S3ErrorCode::InvalidRequest, "The path is not valid UTF-8.")
        })?;
        let path = path.strip_prefix('/').unwrap_or(&path);

        let (bucket, key) = match virtual_host_bucket(host, domain) {
            Some(bucket) => (Some(bucket.to_owned()), path.to_owned()),
            None => match path.split_once('/') {
                Some((bucket, key)) => (Some(bucket.to_owned()), key.to_owned()),
                None if path.is_empty() => (None, String::new()),
                None => (Some(path.to_owned()), String::new()),
            },
        };

        let Some(bucket) = bucket else {
            return match *method {
                Method::GET => Ok(Self::ListBuckets),
                _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
            };
        };
        validate_bucket_name(&bucket)?;
        if *method == Method::OPTIONS {
            return Ok(Self::CorsPreflight { bucket, key });
        }
        if key.is_empty() {
            return Self::bucket_operation(method, bucket, query);
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
        }
        Self::object_operation(method, bucket, key, query, copy_source)
    }
}

/// Declares [`OperationKind`] and its list [`OperationKind::ALL`] from one list of names, so
/// that no kind can be declared without being listed.
macro_rules! operation_kinds {
    ($($kind:ident),* $(,)?) => {
        /// An [`Operation`] without its arguments: one kind per variant ([`Operation::kind`]).
        /// The conformance suite drives every kind of [`OperationKind::ALL`] (see
        /// `conformance/tests/tenant_isolation.rs`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OperationKind {
            $($kind),*
        }

        impl OperationKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [OperationKind] = &[$(OperationKind::$kind),*];

            /// The variant's name: [`Operation::name`] for every kind but
            /// `GetAbsentBucketConfig` and `Unsupported`, whose operations carry their own.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$kind => stringify!($kind)),*
                }
            }
        }
    };
}

operation_kinds![
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjects,
    ListObjectsV2,
    ListMultipartUploads,
    ListObjectVersions,
    DeleteObjects,
    PostObject,
    GetBucketAcl,
    PutBucketAcl,
    GetBucketEncryption,
    GetBucketPolicyStatus,
    GetPublicAccessBlock,
    GetBucketOwnershipControls,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    CorsPreflight,
    GetAbsentBucketConfig,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    GetObjectAttributes,
    GetObjectAcl,
    GetObjectTagging,
    PutObjectTagging,
    DeleteObjectTagging,
    PutObjectAcl,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    Unsupported,
];

impl OperationKind {
    /// Whether operations of this kind change anything: read-only keys may not run them
    /// ([`super::auth::authorize`]). Every kind is classified here, none by default.
    pub fn is_write(self) -> bool {
        match self {
            Self::CreateBucket
            | Self::DeleteBucket
            | Self::PutObject
            | Self::CopyObject
            | Self::DeleteObject
            | Self::DeleteObjects
            | Self::PostObject
            | Self::PutBucketAcl
            | Self::PutObjectAcl
            | Self::PutObjectTagging
            | Self::DeleteObjectTagging
            | Self::PutBucketCors
            | Self::DeleteBucketCors
            | Self::CreateMultipartUpload
            | Self::UploadPart
            | Self::UploadPartCopy
            | Self::CompleteMultipartUpload
            | Self::AbortMultipartUpload => true,
            Self::ListBuckets
            | Self::HeadBucket
            | Self::GetBucketLocation
            | Self::GetBucketVersioning
            | Self::ListObjects
            | Self::ListObjectsV2
            | Self::ListMultipartUploads
            | Self::ListObjectVersions
            | Self::GetBucketAcl
            | Self::GetBucketEncryption
            | Self::GetBucketPolicyStatus
            | Self::GetPublicAccessBlock
            | Self::GetBucketOwnershipControls
            | Self::GetBucketCors
            | Self::CorsPreflight
            | Self::GetAbsentBucketConfig
            | Self::GetObject
            | Self::HeadObject
            | Self::GetObjectAttributes
            | Self::GetObjectAcl
            | Self::GetObjectTagging
            | Self::ListParts
            // Answered NotImplemented whatever the key.
            | Self::Unsupported => false,
        }
    }
}

/// `bucket` when `host` is `bucket.<domain>` (port ignored).
fn virtual_host_bucket<'a>(host: Option<&'a str>, domain: Option<&str>) -> Option<&'a str> {
    let (host, domain) = (host?, domain?);
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let bucket = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

pub const MAX_PART_NUMBER: u32 = 10_000;

fn parse_part_number(value: Option<&str>) -> Result<u32, S3Error> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )
    };
    let n: u32 = value.ok_or_else(invalid)?.parse().map_err(|_| invalid())?;
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(n)
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests;
