//! The checksum a multipart upload was created with, and how the parts' checksums combine
//! into the object's (COMPOSITE, or FULL_OBJECT for the CRCs).

use coffre_crypto::checksum::{combine_full_object_crc, composite_checksum, ChecksumAlgorithm};
use coffre_storage::{ObjectMeta, PartRecord, UploadRecord};

use crate::s3::error::{S3Error, S3ErrorCode};

/// The checksum an upload was created with. Kept in the upload's `ObjectMeta`: the
/// algorithm name with an empty value until completion, and the checksum type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct UploadChecksum {
    pub(super) algorithm: ChecksumAlgorithm,
    pub(super) full_object: bool,
    /// Named by the client (echoed back) rather than our CRC64NVME default.
    pub(super) requested: bool,
}

impl UploadChecksum {
    pub(super) fn from_create_headers(headers: &http::HeaderMap) -> Result<Option<Self>, S3Error> {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let Some(name) = header("x-amz-checksum-algorithm") else {
            return Ok(None);
        };
        let algorithm = ChecksumAlgorithm::from_name(name).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("Checksum algorithm provided is unsupported: {name}"),
            )
        })?;
        let crc = matches!(
            algorithm,
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
        );
        let full_object = match header("x-amz-checksum-type") {
            None => algorithm == ChecksumAlgorithm::Crc64Nvme,
            Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") && crc => true,
            Some(t)
                if t.eq_ignore_ascii_case("COMPOSITE")
                    && algorithm != ChecksumAlgorithm::Crc64Nvme =>
            {
                false
            }
            Some(t) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!(
                        "The {t} checksum type cannot be used with the {name} checksum algorithm."
                    ),
                ))
            }
        };
        Ok(Some(Self {
            algorithm,
            full_object,
            requested: true,
        }))
    }

    pub(super) fn store_in(self, meta: &mut ObjectMeta) {
        meta.checksums = vec![(self.algorithm.name().to_owned(), String::new())];
        meta.checksum_type = Some(self.type_name().to_owned());
    }

    pub(super) fn of_upload(upload: &UploadRecord) -> Self {
        let named = upload
            .meta
            .checksums
            .first()
            .and_then(|(name, _)| ChecksumAlgorithm::from_name(name));
        match named {
            Some(algorithm) => Self {
                algorithm,
                full_object: upload.meta.checksum_type.as_deref() == Some("FULL_OBJECT"),
                requested: true,
            },
            None => Self {
                algorithm: ChecksumAlgorithm::Crc64Nvme,
                full_object: true,
                requested: false,
            },
        }
    }

    pub(super) fn type_name(self) -> &'static str {
        if self.full_object {
            "FULL_OBJECT"
        } else {
            "COMPOSITE"
        }
    }

    /// The whole object's checksum from the parts', if every part has one.
    pub(super) fn combine(self, parts: &[PartRecord]) -> Option<String> {
        let values: Option<Vec<(&str, u64)>> = parts
            .iter()
            .map(|p| {
                p.checksums
                    .iter()
                    .find(|(n, _)| ChecksumAlgorithm::from_name(n) == Some(self.algorithm))
                    .map(|(_, v)| (v.as_str(), p.size))
            })
            .collect();
        let values = values?;
        if self.full_object {
            combine_full_object_crc(self.algorithm, &values)
        } else {
            let only: Vec<&str> = values.iter().map(|(v, _)| *v).collect();
            composite_checksum(self.algorithm, &only)
        }
    }
}
