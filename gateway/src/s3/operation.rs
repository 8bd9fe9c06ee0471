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
    PutObject {
        bucket: String,
        key: String,
    },
    GetObject {
        bucket: String,
        key: String,
    },
    HeadObject {
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
            Self::PutObject { .. } => "PutObject",
            Self::GetObject { .. } => "GetObject",
            Self::HeadObject { .. } => "HeadObject",
            Self::DeleteObject { .. } => "DeleteObject",
            Self::CreateMultipartUpload { .. } => "CreateMultipartUpload",
            Self::UploadPart { .. } => "UploadPart",
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
            | Self::PutObject { bucket, .. }
            | Self::GetObject { bucket, .. }
            | Self::HeadObject { bucket, .. }
            | Self::DeleteObject { bucket, .. }
            | Self::CreateMultipartUpload { bucket, .. }
            | Self::UploadPart { bucket, .. }
            | Self::CompleteMultipartUpload { bucket, .. }
            | Self::AbortMultipartUpload { bucket, .. }
            | Self::ListParts { bucket, .. } => Some(bucket),
        }
    }

    pub fn key(&self) -> Option<&str> {
        match self {
            Self::PutObject { key, .. }
            | Self::GetObject { key, .. }
            | Self::HeadObject { key, .. }
            | Self::DeleteObject { key, .. }
            | Self::CreateMultipartUpload { key, .. }
            | Self::UploadPart { key, .. }
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
                | Self::DeleteObject { .. }
                | Self::CreateMultipartUpload { .. }
                | Self::UploadPart { .. }
                | Self::CompleteMultipartUpload { .. }
                | Self::AbortMultipartUpload { .. }
        )
    }

    /// Resolves a request. `host` is the Host header (virtual-host style when it ends in
    /// `.<domain>`), `raw_path` is the path as received.
    pub fn parse(
        method: &Method,
        host: Option<&str>,
        domain: Option<&str>,
        raw_path: &str,
        query: &Query,
        has_copy_source: bool,
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
        if key.is_empty() {
            return Self::bucket_operation(method, bucket, query);
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
        }
        Self::object_operation(method, bucket, key, query, has_copy_source)
    }

    fn bucket_operation(method: &Method, bucket: String, query: &Query) -> Result<Self, S3Error> {
        const UNSUPPORTED_SUBRESOURCES: &[(&str, &str)] = &[
            ("acl", "BucketAcl"),
            ("cors", "BucketCors"),
            ("policy", "BucketPolicy"),
            ("policyStatus", "BucketPolicyStatus"),
            ("lifecycle", "BucketLifecycle"),
            ("tagging", "BucketTagging"),
            ("encryption", "BucketEncryption"),
            ("website", "BucketWebsite"),
            ("logging", "BucketLogging"),
            ("notification", "BucketNotification"),
            ("replication", "BucketReplication"),
            ("requestPayment", "BucketRequestPayment"),
            ("object-lock", "ObjectLockConfiguration"),
            ("publicAccessBlock", "PublicAccessBlock"),
            ("ownershipControls", "BucketOwnershipControls"),
            ("accelerate", "BucketAccelerate"),
            ("analytics", "BucketAnalytics"),
            ("inventory", "BucketInventory"),
            ("metrics", "BucketMetrics"),
            ("intelligent-tiering", "BucketIntelligentTiering"),
            ("versions", "ListObjectVersions"),
            ("delete", "DeleteObjects"),
        ];
        if let Some((_, name)) = UNSUPPORTED_SUBRESOURCES
            .iter()
            .find(|(keyword, _)| query.has(keyword))
        {
            return Ok(Self::Unsupported { name });
        }
        Ok(match *method {
            Method::PUT if query.has("versioning") => Self::Unsupported {
                name: "PutBucketVersioning",
            },
            Method::PUT => Self::CreateBucket { bucket },
            Method::HEAD => Self::HeadBucket { bucket },
            Method::DELETE => Self::DeleteBucket { bucket },
            Method::GET if query.has("location") => Self::GetBucketLocation { bucket },
            Method::GET if query.has("versioning") => Self::GetBucketVersioning { bucket },
            Method::GET if query.has("uploads") => Self::ListMultipartUploads { bucket },
            Method::GET if query.get("list-type") == Some("2") => Self::ListObjectsV2 { bucket },
            Method::GET if query.get("list-type").is_some() => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "Invalid List Type specified in Request",
                ))
            }
            Method::GET => Self::ListObjects { bucket },
            Method::POST => Self::Unsupported { name: "PostObject" },
            _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
        })
    }

    fn object_operation(
        method: &Method,
        bucket: String,
        key: String,
        query: &Query,
        has_copy_source: bool,
    ) -> Result<Self, S3Error> {
        const UNSUPPORTED_SUBRESOURCES: &[(&str, &str)] = &[
            ("tagging", "ObjectTagging"),
            ("acl", "ObjectAcl"),
            ("retention", "ObjectRetention"),
            ("legal-hold", "ObjectLegalHold"),
            ("attributes", "GetObjectAttributes"),
            ("restore", "RestoreObject"),
            ("select", "SelectObjectContent"),
            ("torrent", "GetObjectTorrent"),
            ("versionId", "ObjectVersions"),
        ];
        if let Some((_, name)) = UNSUPPORTED_SUBRESOURCES
            .iter()
            .find(|(keyword, _)| query.has(keyword))
        {
            return Ok(Self::Unsupported { name });
        }
        let upload_id = query.get("uploadId").map(str::to_owned);
        Ok(match (method.clone(), upload_id) {
            (Method::PUT, Some(upload_id)) => {
                if has_copy_source {
                    return Ok(Self::Unsupported {
                        name: "UploadPartCopy",
                    });
                }
                let part_number = parse_part_number(query.get("partNumber"))?;
                Self::UploadPart {
                    bucket,
                    key,
                    upload_id,
                    part_number,
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
            (Method::PUT, None) if has_copy_source => Self::Unsupported { name: "CopyObject" },
            (Method::PUT, None) => Self::PutObject { bucket, key },
            (Method::GET, None) if query.has("partNumber") => Self::Unsupported {
                name: "GetObjectPart",
            },
            (Method::HEAD, None) if query.has("partNumber") => Self::Unsupported {
                name: "HeadObjectPart",
            },
            (Method::GET, None) => Self::GetObject { bucket, key },
            (Method::HEAD, None) => Self::HeadObject { bucket, key },
            (Method::DELETE, None) => Self::DeleteObject { bucket, key },
            _ => return Err(S3Error::new(S3ErrorCode::MethodNotAllowed)),
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
            false,
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
                key: owned("dir/a b+c")
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
    fn virtual_host_routes() {
        assert_eq!(
            op(Method::GET, Some("photos.s3.test:9000"), "/a/b.jpg"),
            Ok(Operation::GetObject {
                bucket: owned("photos"),
                key: owned("a/b.jpg")
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
            op(Method::GET, None, "/b?cors"),
            Ok(Operation::Unsupported { name: "BucketCors" })
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
