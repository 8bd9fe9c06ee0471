//! What a PUT or UploadPart computes over the plaintext while it streams: the MD5 for the
//! ETag and Content-MD5, and the one flexible checksum the client asked for (header or
//! trailer), or CRC64NVME when it asked for none, as S3 does since 2025.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use coffre_crypto::checksum::{ChecksumAlgorithm, ChecksumHasher};
use http::HeaderMap;
use md5::{Digest, Md5};

use super::error::{S3Error, S3ErrorCode};

/// Where the expected checksum value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Header(String),
    Trailer,
    /// The client asked for nothing: compute, store, return; nothing to compare with.
    None,
}

pub struct PayloadDigest {
    md5: Md5,
    content_md5: Option<[u8; 16]>,
    checksum: ChecksumHasher,
    expected: Expected,
    /// The client named an algorithm or sent a value (rather than the CRC64NVME default).
    requested: bool,
}

/// The digests of a received payload, verified against what the client declared.
#[derive(Debug, Clone)]
pub struct Digests {
    pub md5_hex: String,
    pub checksum: (ChecksumAlgorithm, String),
    /// Whether the client named the algorithm (and so expects it echoed back).
    pub requested: bool,
}

impl Digests {
    /// The ETag of the data received: its MD5, or with a customer key (SSE-C) a random one,
    /// as AWS's SSE-C ETags are not the MD5 of the data.
    pub fn etag(&self, sse_c: bool) -> String {
        if sse_c {
            super::server_side_encryption::sse_c_etag()
        } else {
            self.md5_hex.clone()
        }
    }
}

impl PayloadDigest {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, S3Error> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let content_md5 = match header("content-md5") {
            None => None,
            Some(value) => Some(
                BASE64
                    .decode(value.trim())
                    .ok()
                    .and_then(|raw| <[u8; 16]>::try_from(raw).ok())
                    .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidDigest))?,
            ),
        };

        let mut in_headers = ChecksumAlgorithm::ALL
            .into_iter()
            .filter_map(|alg| header(alg.header_name()).map(|v| (alg, v.trim().to_owned())));
        let from_header = in_headers.next();
        if in_headers.next().is_some() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let from_trailer = match header("x-amz-trailer") {
            None => None,
            Some(names) => {
                let alg = names
                    .split(',')
                    .map(str::trim)
                    .find_map(ChecksumAlgorithm::from_header_name);
                Some(alg.ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        format!("The value specified in the x-amz-trailer header is not supported: {names}"),
                    )
                })?)
            }
        };
        let named = header("x-amz-sdk-checksum-algorithm")
            .or_else(|| header("x-amz-checksum-algorithm"))
            .map(|name| {
                ChecksumAlgorithm::from_name(name).ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidRequest,
                        format!("Checksum algorithm provided is unsupported: {name}"),
                    )
                })
            })
            .transpose()?;

        let (algorithm, expected) = match (from_header, from_trailer) {
            (Some(_), Some(_)) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ))
            }
            (Some((alg, value)), None) => (alg, Expected::Header(value)),
            (None, Some(alg)) => (alg, Expected::Trailer),
            (None, None) => (named.unwrap_or(ChecksumAlgorithm::Crc64Nvme), Expected::None),
        };
        if named.is_some_and(|n| n != algorithm) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The checksum algorithm named does not match the checksum sent.",
            ));
        }
        Ok(Self {
            md5: Md5::new(),
            content_md5,
            checksum: algorithm.hasher(),
            requested: named.is_some() || expected != Expected::None,
            expected,
        })
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.checksum.algorithm()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        self.checksum.update(bytes);
    }

    /// Final values, after comparing them with what the client declared in headers or in
    /// the trailer of an aws-chunked body.
    pub fn finish(self, trailers: &[(String, String)]) -> Result<Digests, S3Error> {
        let md5: [u8; 16] = self.md5.finalize().into();
        if let Some(declared) = self.content_md5 {
            if declared != md5 {
                return Err(S3Error::new(S3ErrorCode::BadDigest));
            }
        }
        let algorithm = self.checksum.algorithm();
        let actual = self.checksum.finalize_base64();
        let declared = match self.expected {
            Expected::Header(v) => Some(v),
            Expected::Trailer => Some(
                trailers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(algorithm.header_name()))
                    .map(|(_, v)| v.trim().to_owned())
                    .ok_or_else(|| {
                        S3Error::with_message(
                            S3ErrorCode::InvalidRequest,
                            format!(
                                "The {} trailer was announced but not sent.",
                                algorithm.header_name()
                            ),
                        )
                    })?,
            ),
            Expected::None => None,
        };
        if let Some(declared) = declared {
            let well_formed = BASE64
                .decode(&declared)
                .is_ok_and(|raw| raw.len() == algorithm.hasher().finalize().len());
            if !well_formed {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", algorithm.header_name()),
                ));
            }
            if declared != actual {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        algorithm.name()
                    ),
                ));
            }
        }
        Ok(Digests {
            md5_hex: hex::encode(md5),
            checksum: (algorithm, actual),
            requested: self.requested,
        })
    }
}
