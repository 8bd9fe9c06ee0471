//! Routing: a request's method, host, path and query keywords resolve to one typed
//! [`Operation`]. Handlers match on variants; nothing downstream looks at the raw path again.

use http::Method;
use percent_encoding::percent_decode_str;

use super::error::{S3Error, S3ErrorCode};
use super::query::Query;

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

    /// Whether the operation changes anything (read-only keys may not run it).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Self::CreateBucket { .. }
                | Self::DeleteBucket { .. }
                | Self::PutObject { .. }
                | Self::CopyObject { .. }
                | Self::DeleteObject { .. }
                | Self::DeleteObjects { .. }
                | Self::PostObject { .. }
                | Self::PutBucketAcl { .. }
                | Self::PutObjectAcl { .. }
                | Self::PutObjectTagging { .. }
                | Self::DeleteObjectTagging { .. }
                | Self::PutBucketCors { .. }
                | Self::DeleteBucketCors { .. }
                | Self::CreateMultipartUpload { .. }
                | Self::UploadPart { .. }
                | Self::UploadPartCopy { .. }
                | Self::CompleteMultipartUpload { .. }
                | Self::AbortMultipartUpload { .. }
        )
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
    /// `.<domain>`), `raw_path` is the path as received.
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

    fn bucket_operation(method: &Method, bucket: String, query: &Query) -> Result<Self, S3Error> {
        use S3ErrorCode as C;
        // Configurations Coffre never has: GET answers S3's "not configured" error.
        const ABSENT: &[(&str, &str, S3ErrorCode)] = &[
            ("policy", "GetBucketPolicy", C::NoSuchBucketPolicy),
            (
                "lifecycle",
                "GetBucketLifecycleConfiguration",
                C::NoSuchLifecycleConfiguration,
            ),
            ("tagging", "GetBucketTagging", C::NoSuchTagSet),
            ("website", "GetBucketWebsite", C::NoSuchWebsiteConfiguration),
            (
                "replication",
                "GetBucketReplication",
                C::ReplicationConfigurationNotFoundError,
            ),
            (
                "object-lock",
                "GetObjectLockConfiguration",
                C::ObjectLockConfigurationNotFoundError,
            ),
        ];
        const UNSUPPORTED_SUBRESOURCES: &[(&str, &str)] = &[
            ("policy", "BucketPolicy"),
            ("lifecycle", "BucketLifecycle"),
            ("tagging", "BucketTagging"),
            ("website", "BucketWebsite"),
            ("replication", "BucketReplication"),
            ("object-lock", "ObjectLockConfiguration"),
            ("encryption", "PutBucketEncryption"),
            ("policyStatus", "BucketPolicyStatus"),
            ("publicAccessBlock", "PutPublicAccessBlock"),
            ("ownershipControls", "PutBucketOwnershipControls"),
            ("logging", "BucketLogging"),
            ("notification", "BucketNotification"),
            ("requestPayment", "BucketRequestPayment"),
            ("accelerate", "BucketAccelerate"),
            ("analytics", "BucketAnalytics"),
            ("inventory", "BucketInventory"),
            ("metrics", "BucketMetrics"),
            ("intelligent-tiering", "BucketIntelligentTiering"),
            ("versioning", "PutBucketVersioning"),
        ];
        if query.has("cors") {
            return match *method {
                Method::GET => Ok(Self::GetBucketCors { bucket }),
                Method::PUT => Ok(Self::PutBucketCors { bucket }),
                Method::DELETE => Ok(Self::DeleteBucketCors { bucket }),
                _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
            };
        }
        if *method == Method::GET {
            if let Some((_, name, code)) = ABSENT.iter().find(|(k, _, _)| query.has(k)) {
                return Ok(Self::GetAbsentBucketConfig {
                    bucket,
                    name,
                    code: *code,
                });
            }
            let get = match () {
                () if query.has("acl") => Some(Self::GetBucketAcl {
                    bucket: bucket.clone(),
                }),
                () if query.has("encryption") => Some(Self::GetBucketEncryption {
                    bucket: bucket.clone(),
                }),
                () if query.has("policyStatus") => Some(Self::GetBucketPolicyStatus {
                    bucket: bucket.clone(),
                }),
                () if query.has("publicAccessBlock") => Some(Self::GetPublicAccessBlock {
                    bucket: bucket.clone(),
                }),
                () if query.has("ownershipControls") => Some(Self::GetBucketOwnershipControls {
                    bucket: bucket.clone(),
                }),
                () if query.has("versioning") => Some(Self::GetBucketVersioning {
                    bucket: bucket.clone(),
                }),
                () if query.has("location") => Some(Self::GetBucketLocation {
                    bucket: bucket.clone(),
                }),
                () if query.has("versions") => Some(Self::ListObjectVersions {
                    bucket: bucket.clone(),
                }),
                () => None,
            };
            if let Some(op) = get {
                return Ok(op);
            }
        }
        if *method == Method::PUT && query.has("acl") {
            return Ok(Self::PutBucketAcl { bucket });
        }
        if *method == Method::POST && query.has("delete") {
            return Ok(Self::DeleteObjects { bucket });
        }
        if let Some((_, name)) = UNSUPPORTED_SUBRESOURCES
            .iter()
            .find(|(keyword, _)| query.has(keyword))
        {
            return Ok(Self::Unsupported { name });
        }
        Ok(match *method {
            Method::PUT => Self::CreateBucket { bucket },
            Method::HEAD => Self::HeadBucket { bucket },
            Method::DELETE => Self::DeleteBucket { bucket },
            Method::GET if query.has("uploads") => Self::ListMultipartUploads { bucket },
            Method::GET if query.get("list-type") == Some("2") => Self::ListObjectsV2 { bucket },
            Method::GET if query.get("list-type").is_some() => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "Invalid List Type specified in Request",
                ))
            }
            Method::GET => Self::ListObjects { bucket },
            Method::POST => Self::PostObject { bucket },
            _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        })
    }

    fn object_operation(
        method: &Method,
        bucket: String,
        key: String,
        query: &Query,
        copy_source: Option<&str>,
    ) -> Result<Self, S3Error> {
        const UNSUPPORTED_SUBRESOURCES: &[(&str, &str)] = &[
            ("retention", "ObjectRetention"),
            ("legal-hold", "ObjectLegalHold"),
            ("restore", "RestoreObject"),
            ("select", "SelectObjectContent"),
            ("torrent", "GetObjectTorrent"),
        ];
        if let Some((_, name)) = UNSUPPORTED_SUBRESOURCES
            .iter()
            .find(|(keyword, _)| query.has(keyword))
        {
            return Ok(Self::Unsupported { name });
        }
        // Versioning is never enabled: the only version is "null".
        if let Some(version) = query.get("versionId") {
            if version != "null" {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "Invalid version id specified",
                ));
            }
        }
        if query.has("tagging") {
            return match *method {
                Method::GET => Ok(Self::GetObjectTagging { bucket, key }),
                Method::PUT => Ok(Self::PutObjectTagging { bucket, key }),
                Method::DELETE => Ok(Self::DeleteObjectTagging { bucket, key }),
                _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
            };
        }
        if query.has("acl") {
            return match *method {
                Method::GET => Ok(Self::GetObjectAcl { bucket, key }),
                Method::PUT => Ok(Self::PutObjectAcl { bucket, key }),
                _ => Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
            };
        }
        if query.has("attributes") && *method == Method::GET {
            return Ok(Self::GetObjectAttributes { bucket, key });
        }
        let part_number = query
            .get("partNumber")
            .map(|n| parse_part_number(Some(n)))
            .transpose()?;
        let source = copy_source.map(CopySource::parse).transpose()?;
        let upload_id = query.get("uploadId").map(str::to_owned);
        Ok(match (method.clone(), upload_id) {
            (Method::PUT, Some(upload_id)) => {
                let part_number = parse_part_number(query.get("partNumber"))?;
                match source {
                    Some(source) => Self::UploadPartCopy {
                        bucket,
                        key,
                        upload_id,
                        part_number,
                        source,
                    },
                    None => Self::UploadPart {
                        bucket,
                        key,
                        upload_id,
                        part_number,
                    },
                }
            }
            (Method::POST, Some(upload_id)) => Self::CompleteMultipartUpload {
                bucket,
                key,
                upload_id,
            },
            (Method::DELETE, Some(upload_id)) => Self::AbortMultipartUpload {
                bucket,
                key,
                upload_id,
            },
            (Method::GET, Some(upload_id)) => Self::ListParts {
                bucket,
                key,
                upload_id,
            },
            (Method::POST, None) if query.has("uploads") => {
                Self::CreateMultipartUpload { bucket, key }
            }
            (Method::PUT, None) => match source {
                Some(source) => Self::CopyObject {
                    bucket,
                    key,
                    source,
                },
                None => Self::PutObject { bucket, key },
            },
            (Method::GET, None) => Self::GetObject {
                bucket,
                key,
                part_number,
            },
            (Method::HEAD, None) => Self::HeadObject {
                bucket,
                key,
                part_number,
            },
            (Method::DELETE, None) => Self::DeleteObject { bucket, key },
            _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        })
    }
}

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, percent-encoded, optionally with
/// `?versionId=null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
}

impl CopySource {
    pub fn parse(header: &str) -> Result<Self, S3Error> {
        let invalid = || {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            )
        };
        let (path, version) = match header.split_once("?versionId=") {
            Some((path, version)) => (path, Some(version)),
            None => (header, None),
        };
        if version.is_some_and(|v| v != "null") {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Invalid version id specified",
            ));
        }
        let decoded = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| invalid())?;
        let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
        let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(invalid());
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
        }
        Ok(Self {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
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
mod tests {
    use super::*;

    fn op(
        method: Method,
        host: Option<&str>,
        path_and_query: &str,
    ) -> Result<Operation, S3ErrorCode> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        Operation::parse(
            &method,
            host,
            Some("s3.test"),
            path,
            &Query::parse(query),
            None,
        )
        .map_err(|e| e.code())
    }

    fn owned(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn path_style_routes() {
        assert_eq!(op(Method::GET, None, "/"), Ok(Operation::ListBuckets));
        assert_eq!(
            op(Method::PUT, None, "/b"),
            Ok(Operation::CreateBucket { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::GET, None, "/b/?list-type=2&prefix=x"),
            Ok(Operation::ListObjectsV2 { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::GET, None, "/b/dir/a%20b%2Bc"),
            Ok(Operation::GetObject {
                bucket: owned("b"),
                key: owned("dir/a b+c"),
                part_number: None
            })
        );
        assert_eq!(
            op(Method::PUT, None, "/b/k?partNumber=3&uploadId=u1"),
            Ok(Operation::UploadPart {
                bucket: owned("b"),
                key: owned("k"),
                upload_id: owned("u1"),
                part_number: 3
            })
        );
        assert_eq!(
            op(Method::PUT, None, "/b/k?partNumber=0&uploadId=u1"),
            Err(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            op(Method::POST, None, "/b/k?uploads"),
            Ok(Operation::CreateMultipartUpload {
                bucket: owned("b"),
                key: owned("k")
            })
        );
    }

    #[test]
    fn tagging_cors_and_preflights_route() {
        let object = |method| op(method, None, "/b/dir/k?tagging");
        assert_eq!(
            object(Method::GET),
            Ok(Operation::GetObjectTagging {
                bucket: owned("b"),
                key: owned("dir/k")
            })
        );
        assert_eq!(
            object(Method::PUT),
            Ok(Operation::PutObjectTagging {
                bucket: owned("b"),
                key: owned("dir/k")
            })
        );
        assert_eq!(
            object(Method::DELETE),
            Ok(Operation::DeleteObjectTagging {
                bucket: owned("b"),
                key: owned("dir/k")
            })
        );
        assert_eq!(object(Method::POST), Err(S3ErrorCode::MethodNotAllowed));
        assert_eq!(
            op(Method::GET, None, "/b?cors"),
            Ok(Operation::GetBucketCors { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::PUT, Some("b.s3.test"), "/?cors"),
            Ok(Operation::PutBucketCors { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::DELETE, None, "/b/?cors"),
            Ok(Operation::DeleteBucketCors { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::OPTIONS, Some("b.s3.test"), "/a/k.txt"),
            Ok(Operation::CorsPreflight {
                bucket: owned("b"),
                key: owned("a/k.txt")
            })
        );
        assert_eq!(
            op(Method::OPTIONS, None, "/b"),
            Ok(Operation::CorsPreflight {
                bucket: owned("b"),
                key: String::new()
            })
        );
        assert_eq!(
            op(Method::OPTIONS, None, "/"),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        assert!(Operation::PutObjectTagging {
            bucket: owned("b"),
            key: owned("k")
        }
        .is_write());
        assert!(!Operation::GetBucketCors { bucket: owned("b") }.is_write());
    }

    #[test]
    fn copy_sources() {
        let parsed = CopySource::parse("/src%20b/dir/a%2Bb.txt?versionId=null")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.bucket, "src%20b".replace("%20", " "));
        assert_eq!(parsed.key, "dir/a+b.txt");
        assert!(CopySource::parse("bucket-only").is_err());
        assert!(CopySource::parse("b/k?versionId=v1").is_err());
    }

    #[test]
    fn virtual_host_routes() {
        assert_eq!(
            op(Method::GET, Some("photos.s3.test:9000"), "/a/b.jpg"),
            Ok(Operation::GetObject {
                bucket: owned("photos"),
                key: owned("a/b.jpg"),
                part_number: None
            })
        );
        assert_eq!(
            op(Method::GET, Some("photos.s3.test"), "/?location"),
            Ok(Operation::GetBucketLocation {
                bucket: owned("photos")
            })
        );
        // The bare domain is path style.
        assert_eq!(
            op(Method::GET, Some("s3.test:9000"), "/photos"),
            Ok(Operation::ListObjects {
                bucket: owned("photos")
            })
        );
    }

    #[test]
    fn unknown_subresources_are_not_implemented_and_bad_methods_refused() {
        assert_eq!(
            op(Method::GET, None, "/b?tagging"),
            Ok(Operation::GetAbsentBucketConfig {
                bucket: owned("b"),
                name: "GetBucketTagging",
                code: S3ErrorCode::NoSuchTagSet
            })
        );
        assert_eq!(
            op(Method::PUT, None, "/b?tagging"),
            Ok(Operation::Unsupported {
                name: "BucketTagging"
            })
        );
        assert_eq!(
            op(Method::POST, None, "/b?delete"),
            Ok(Operation::DeleteObjects { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::POST, Some("b.s3.test"), "/"),
            Ok(Operation::PostObject { bucket: owned("b") })
        );
        assert_eq!(
            op(Method::POST, None, "/"),
            Err(S3ErrorCode::MethodNotAllowed)
        );
        let long = format!("/b/{}", "k".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(
            op(Method::GET, None, &long),
            Err(S3ErrorCode::KeyTooLongError)
        );
    }
}
