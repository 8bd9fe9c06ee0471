//! Test payloads and independently computed S3 digests.

use base64::Engine as _;
use md5::{Digest, Md5};

/// `len` deterministic pseudo-random bytes (xorshift64*), different for each `seed`.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Lowercase hex MD5.
pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Base64 MD5 (the `Content-MD5` form).
pub fn md5_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// The quoted ETag of a single PUT: `"<md5 hex>"`.
pub fn simple_etag(data: &[u8]) -> String {
    format!("\"{}\"", md5_hex(data))
}

/// The quoted ETag of a multipart object: MD5 of the concatenated binary part MD5s, `-N`.
pub fn multipart_etag<P: AsRef<[u8]>>(parts: &[P]) -> String {
    let mut concatenated = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        concatenated.extend_from_slice(&Md5::digest(part.as_ref()));
    }
    format!("\"{}-{}\"", md5_hex(&concatenated), parts.len())
}

/// Base64 of the big-endian CRC32 of `data`.
pub fn crc32_base64(data: &[u8]) -> String {
    crate::chunked_body::crc32_base64(data)
}

/// Base64 of the big-endian CRC32C of `data`.
pub fn crc32c_base64(data: &[u8]) -> String {
    b64(&crc32c::crc32c(data).to_be_bytes())
}

/// Base64 of the big-endian CRC64/NVME of `data`.
pub fn crc64nvme_base64(data: &[u8]) -> String {
    let mut digest = crc64fast_nvme::Digest::new();
    digest.write(data);
    b64(&digest.sum64().to_be_bytes())
}

/// Base64 of the SHA-1 of `data`.
pub fn sha1_base64(data: &[u8]) -> String {
    b64(&sha1::Sha1::digest(data))
}

/// Base64 of the SHA-256 of `data`.
pub fn sha256_base64(data: &[u8]) -> String {
    b64(&sha2::Sha256::digest(data))
}

/// The composite checksum S3 gives a multipart object: the checksum of the concatenated
/// binary part checksums, base64, `-N`. `part_checksums` are base64 values.
pub fn composite_crc32<S: AsRef<str>>(part_checksums: &[S]) -> String {
    let mut concatenated = Vec::new();
    for checksum in part_checksums {
        concatenated.extend(
            base64::engine::general_purpose::STANDARD
                .decode(checksum.as_ref())
                .expect("base64 checksum"),
        );
    }
    format!("{}-{}", crc32_base64(&concatenated), part_checksums.len())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_known_values() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_base64(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        // CRC32 of "123456789" is 0xCBF43926.
        assert_eq!(crc32_base64(b"123456789"), "y/Q5Jg==");
        // CRC32C of "123456789" is 0xE3069283, CRC64/NVME is 0xAE8B14860A799888.
        assert_eq!(crc32c_base64(b"123456789"), "4waSgw==");
        assert_eq!(crc64nvme_base64(b"123456789"), "rosUhgp5mIg=");
        assert_eq!(
            sha256_base64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(sha1_base64(b""), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        let single = multipart_etag(&[b"abc"]);
        assert!(single.ends_with("-1\""));
        assert_ne!(pseudo_random_bytes(64, 1), pseudo_random_bytes(64, 2));
        assert_eq!(pseudo_random_bytes(13, 7).len(), 13);
    }
}
