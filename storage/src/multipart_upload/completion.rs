//! The rules of CompleteMultipartUpload, checked inside the completion's transaction against
//! the parts as stored: every chosen part exists with the ETag (and checksums) the client
//! names, in ascending order, every part but the last is large enough, the object's ETag and
//! checksum are derived from the chosen parts, and a whole-object checksum the client
//! declares must match the derived one.

use coffre_crypto::checksum::{combine_full_object_crc, composite_checksum, ChecksumAlgorithm};
use md5::{Digest, Md5};

use crate::error::{Error, Result};
use crate::records::{ObjectMeta, PartRecord, UploadRecord};

/// Every part but the last must be at least this large, as on S3.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// A part as the client lists it in CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenPart {
    pub part_number: u32,
    /// Without quotes.
    pub etag: String,
    /// Checksums the client names for the part; each must be the stored one.
    pub checksums: Vec<(ChecksumAlgorithm, String)>,
}

impl ChosenPart {
    /// A part named by number and ETag only.
    pub fn new(part_number: u32, etag: impl Into<String>) -> Self {
        Self {
            part_number,
            etag: etag.into(),
            checksums: Vec::new(),
        }
    }
}

/// What a CompleteMultipartUpload request asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    /// In the order the client listed them.
    pub parts: Vec<ChosenPart>,
    /// Whole-object checksums the client declared (`x-amz-checksum-*` of the request); the
    /// one of the upload's algorithm must match the object's.
    pub declared_checksums: Vec<(ChecksumAlgorithm, String)>,
}

impl Completion {
    /// Completes with `parts` and no declared checksum.
    pub fn of_parts(parts: Vec<ChosenPart>) -> Self {
        Self {
            parts,
            declared_checksums: Vec::new(),
        }
    }

    /// The stored parts the client chose, in its order, after checking every rule; then the
    /// object's metadata: the upload's, with the size, the multipart ETag and the combined
    /// checksum of those parts.
    pub(crate) fn resolve(
        &self,
        upload: &UploadRecord,
        stored: &[PartRecord],
        min_part_size: u64,
    ) -> Result<(Vec<PartRecord>, ObjectMeta)> {
        if self.parts.is_empty() {
            return Err(Error::NoPartsChosen);
        }
        if self
            .parts
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(Error::InvalidPartOrder);
        }
        let mut chosen = Vec::with_capacity(self.parts.len());
        for wanted in &self.parts {
            let invalid = || Error::InvalidPart {
                part_number: wanted.part_number,
            };
            let part = stored
                .iter()
                .find(|p| p.part_number == wanted.part_number)
                .ok_or_else(invalid)?;
            if part.etag != wanted.etag {
                return Err(invalid());
            }
            let checksums_match = wanted.checksums.iter().all(|(algorithm, value)| {
                part.checksums
                    .iter()
                    .any(|(n, v)| ChecksumAlgorithm::from_name(n) == Some(*algorithm) && v == value)
            });
            if !checksums_match {
                return Err(invalid());
            }
            chosen.push(part.clone());
        }
        if let Some(small) = chosen[..chosen.len() - 1]
            .iter()
            .find(|p| p.size < min_part_size)
        {
            return Err(Error::EntityTooSmall {
                part_number: small.part_number,
                size: small.size,
                min: min_part_size,
            });
        }

        let checksum = UploadChecksum::of_upload(upload);
        let combined = checksum.combine(&chosen);
        let declared = self
            .declared_checksums
            .iter()
            .find(|(algorithm, _)| *algorithm == checksum.algorithm);
        if let Some((algorithm, value)) = declared {
            if combined.as_deref() != Some(value.trim()) {
                return Err(Error::BadDigest {
                    algorithm: algorithm.name(),
                });
            }
        }
        let mut meta = upload.meta.clone();
        meta.size = chosen.iter().map(|p| p.size).sum();
        meta.etag = multipart_etag(&chosen)?;
        meta.checksums = combined
            .iter()
            .map(|v| (checksum.algorithm.name().to_owned(), v.clone()))
            .collect();
        meta.checksum_type = combined.as_ref().map(|_| checksum.type_name().to_owned());
        Ok((chosen, meta))
    }
}

/// Multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`.
fn multipart_etag(parts: &[PartRecord]) -> Result<String> {
    let mut md5 = Md5::new();
    for part in parts {
        let raw = hex::decode(&part.etag)
            .map_err(|_| Error::Corrupt(format!("part {} has a non-hex ETag", part.part_number)))?;
        md5.update(&raw);
    }
    Ok(format!("{}-{}", hex::encode(md5.finalize()), parts.len()))
}

/// The checksum an upload was created with. Kept in the upload's `ObjectMeta`: the
/// algorithm name with an empty value until completion, and the checksum type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadChecksum {
    pub algorithm: ChecksumAlgorithm,
    /// FULL_OBJECT (a CRC of the whole object) rather than COMPOSITE (a checksum of the
    /// parts' checksums).
    pub full_object: bool,
    /// Named by the client (echoed back) rather than our CRC64NVME default.
    pub requested: bool,
}

impl UploadChecksum {
    /// Records the checksum in the metadata an upload is created with.
    pub fn store_in(self, meta: &mut ObjectMeta) {
        meta.checksums = vec![(self.algorithm.name().to_owned(), String::new())];
        meta.checksum_type = Some(self.type_name().to_owned());
    }

    /// The checksum `upload` was created with, or the CRC64NVME default.
    pub fn of_upload(upload: &UploadRecord) -> Self {
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

    pub fn type_name(self) -> &'static str {
        if self.full_object {
            "FULL_OBJECT"
        } else {
            "COMPOSITE"
        }
    }

    /// The whole object's checksum from the parts', if every part has one.
    pub fn combine(self, parts: &[PartRecord]) -> Option<String> {
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
