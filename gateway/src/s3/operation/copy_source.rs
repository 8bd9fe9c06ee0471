//! The source of CopyObject and UploadPartCopy.

use percent_encoding::percent_decode_str;

use super::MAX_KEY_BYTES;
use crate::s3::error::{S3Error, S3ErrorCode};

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
