//! The checksum a multipart upload is created with, as its request names it. How the parts'
//! checksums combine into the object's is storage's rule ([`UploadChecksum`]).

use coffre_crypto::checksum::ChecksumAlgorithm;
use coffre_storage::UploadChecksum;

use crate::s3::error::{S3Error, S3ErrorCode};

/// The checksum a CreateMultipartUpload asks for (`x-amz-checksum-algorithm` and
/// `x-amz-checksum-type`); `None` when it names none.
pub(super) fn checksum_from_create_headers(
    headers: &http::HeaderMap,
) -> Result<Option<UploadChecksum>, S3Error> {
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
            if t.eq_ignore_ascii_case("COMPOSITE") && algorithm != ChecksumAlgorithm::Crc64Nvme =>
        {
            false
        }
        Some(t) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("The {t} checksum type cannot be used with the {name} checksum algorithm."),
            ))
        }
    };
    Ok(Some(UploadChecksum {
        algorithm,
        full_object,
        requested: true,
    }))
}
