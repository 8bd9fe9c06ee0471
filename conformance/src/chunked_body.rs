//! Hand-built `aws-chunked` bodies: the framing of STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
//! STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER and STREAMING-UNSIGNED-PAYLOAD-TRAILER, with
//! chunk and trailer signatures computed here, and ways to tamper with each piece.

use std::time::SystemTime;

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::REGION;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Which aws-chunked payload mode to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk signed, no trailer.
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and a signed trailer.
    SignedWithTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: plain chunks and an unsigned trailer.
    UnsignedWithTrailer,
}

impl ChunkedMode {
    /// The `x-amz-content-sha256` value announcing this mode.
    pub fn content_sha256(self) -> &'static str {
        match self {
            ChunkedMode::Signed => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            ChunkedMode::SignedWithTrailer => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ChunkedMode::UnsignedWithTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        }
    }

    fn signed(self) -> bool {
        !matches!(self, ChunkedMode::UnsignedWithTrailer)
    }

    fn has_trailer(self) -> bool {
        !matches!(self, ChunkedMode::Signed)
    }
}

/// A deliberate defect in the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Well-formed body.
    None,
    /// Flip a character of the signature of chunk `n` (0-based; the final empty chunk is
    /// number `chunk count`).
    ChunkSignature(usize),
    /// Flip a byte of the data of chunk `n` after it was signed.
    ChunkData(usize),
    /// Flip a character of the trailer signature.
    TrailerSignature,
}

/// How to frame the body of a request.
#[derive(Clone, Debug)]
pub struct AwsChunked {
    /// Payload mode.
    pub mode: ChunkedMode,
    /// Size of every chunk but the last data chunk.
    pub chunk_size: usize,
    /// Trailer header name and value; `None` in trailer modes means a correct CRC32 trailer.
    pub trailer: Option<(String, String)>,
    /// Defect to introduce.
    pub tamper: Tamper,
}

impl AwsChunked {
    /// Signed chunks, no trailer.
    pub fn signed(chunk_size: usize) -> Self {
        Self::new(ChunkedMode::Signed, chunk_size)
    }

    /// Signed chunks and a signed trailer carrying the body's CRC32.
    pub fn signed_with_crc32_trailer(chunk_size: usize) -> Self {
        Self::new(ChunkedMode::SignedWithTrailer, chunk_size)
    }

    /// Unsigned chunks and an unsigned trailer carrying the body's CRC32.
    pub fn unsigned_with_crc32_trailer(chunk_size: usize) -> Self {
        Self::new(ChunkedMode::UnsignedWithTrailer, chunk_size)
    }

    fn new(mode: ChunkedMode, chunk_size: usize) -> Self {
        assert!(chunk_size > 0, "chunk size must be positive");
        AwsChunked {
            mode,
            chunk_size,
            trailer: None,
            tamper: Tamper::None,
        }
    }

    /// Sends `name: value` as the trailer instead of the correct CRC32.
    pub fn with_trailer(mut self, name: &str, value: &str) -> Self {
        self.trailer = Some((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// Introduces a defect.
    pub fn tamper(mut self, tamper: Tamper) -> Self {
        self.tamper = tamper;
        self
    }

    /// The trailer header name and value that will be sent, if any.
    pub fn trailer_for(&self, data: &[u8]) -> Option<(String, String)> {
        if !self.mode.has_trailer() {
            return None;
        }
        Some(
            self.trailer
                .clone()
                .unwrap_or_else(|| ("x-amz-checksum-crc32".to_string(), crc32_base64(data))),
        )
    }

    /// Length of the encoded body (needed in `Content-Length` before signing).
    pub fn encoded_len(&self, data: &[u8]) -> usize {
        // Signatures have a fixed length, so encoding with a dummy seed gives the length.
        let dummy = ChunkSigner {
            signing_key: vec![0; 32],
            amz_date: "19700101T000000Z".to_string(),
            scope: String::new(),
        };
        self.encode(data, &"0".repeat(64), &dummy).len()
    }

    /// Encodes `data`, chaining chunk signatures from the request's `seed_signature`.
    pub fn encode(&self, data: &[u8], seed_signature: &str, signer: &ChunkSigner) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 256);
        let mut previous = seed_signature.to_string();
        let mut chunks: Vec<&[u8]> = data.chunks(self.chunk_size).collect();
        chunks.push(&[]);
        for (index, chunk) in chunks.iter().enumerate() {
            out.extend_from_slice(format!("{:x}", chunk.len()).as_bytes());
            if self.mode.signed() {
                let signature = signer.chunk_signature(&previous, chunk);
                previous = signature.clone();
                let sent = if self.tamper == Tamper::ChunkSignature(index) {
                    flip_hex(&signature)
                } else {
                    signature
                };
                out.extend_from_slice(b";chunk-signature=");
                out.extend_from_slice(sent.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            if chunk.is_empty() {
                break;
            }
            let start = out.len();
            out.extend_from_slice(chunk);
            if self.tamper == Tamper::ChunkData(index) {
                out[start] ^= 0x01;
            }
            out.extend_from_slice(b"\r\n");
        }
        if let Some((name, value)) = self.trailer_for(data) {
            out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            if self.mode.signed() {
                let signature = signer.trailer_signature(&previous, &name, &value);
                let sent = if self.tamper == Tamper::TrailerSignature {
                    flip_hex(&signature)
                } else {
                    signature
                };
                out.extend_from_slice(format!("x-amz-trailer-signature:{sent}\r\n").as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Computes chunk and trailer signatures for one request (same key, date and scope as the
/// seed signature).
pub struct ChunkSigner {
    signing_key: Vec<u8>,
    amz_date: String,
    scope: String,
}

impl ChunkSigner {
    /// A signer for requests signed with `secret` at `time` in region us-east-1, service s3.
    pub fn new(secret: &str, time: SystemTime) -> Self {
        let signing_key = generate_signing_key(secret, time, REGION, "s3")
            .as_ref()
            .to_vec();
        let amz_date = crate::signed_request::amz_date(time);
        let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
        ChunkSigner {
            signing_key,
            amz_date,
            scope,
        }
    }

    fn chunk_signature(&self, previous: &str, chunk: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            sha256_hex(chunk)
        );
        calculate_signature(&self.signing_key, string_to_sign.as_bytes())
    }

    fn trailer_signature(&self, previous: &str, name: &str, value: &str) -> String {
        let canonical = format!("{name}:{}\n", value.trim());
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
            self.amz_date,
            self.scope,
            sha256_hex(canonical.as_bytes())
        );
        calculate_signature(&self.signing_key, string_to_sign.as_bytes())
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Base64 of the big-endian CRC32 (the `x-amz-checksum-crc32` form).
pub fn crc32_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(data).to_be_bytes())
}

/// Changes one hex digit so the value stays well-formed but wrong.
pub(crate) fn flip_hex(signature: &str) -> String {
    let mut chars: Vec<char> = signature.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_trailer_framing() {
        let body = AwsChunked::unsigned_with_crc32_trailer(4).encode(
            b"hello world",
            "",
            &ChunkSigner::new("secret", SystemTime::UNIX_EPOCH),
        );
        let expected = format!(
            "4\r\nhell\r\n4\r\no wo\r\n3\r\nrld\r\n0\r\nx-amz-checksum-crc32:{}\r\n\r\n",
            crc32_base64(b"hello world")
        );
        assert_eq!(String::from_utf8(body).unwrap(), expected);
    }

    /// The example of the S3 documentation ("Signature calculation when using the
    /// Authorization header and transferring payload in multiple chunks"): 65 KiB of 'a' in
    /// 64 KiB chunks, seed signature 4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9.
    #[test]
    fn matches_the_documented_chunk_signatures() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600); // 2013-05-24
        let signer = ChunkSigner::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", time);
        let data = vec![b'a'; 66_560];
        let body = AwsChunked::signed(65_536).encode(
            &data,
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            &signer,
        );
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(
            "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
        ));
        assert!(text.contains(
            "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
        ));
        assert!(text.ends_with(
            "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n"
        ));
    }
}
