//! The routing tables: which bucket and object subresources map to which operation.

use http::Method;

use super::{parse_part_number, CopySource, Operation};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::query::Query;

impl Operation {
    pub(super) fn bucket_operation(
        method: &Method,
        bucket: String,
        query: &Query,
    ) -> Result<Self, S3Error> {
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

    pub(super) fn object_operation(
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
