//! S3 transfer checksums: CRC32, CRC32C, CRC64NVME, SHA-1 and SHA-256, plus the two ways S3
//! derives a multipart object's checksum from its parts (COMPOSITE and FULL_OBJECT).
//!
//! These detect transfer corruption; they are never used as security functions.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha1::Digest as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// Parses the values of `x-amz-checksum-algorithm` and `x-amz-sdk-checksum-algorithm`.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.name().eq_ignore_ascii_case(s))
    }

    /// Parses a header name such as `x-amz-checksum-crc32`.
    pub fn from_header_name(h: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.header_name().eq_ignore_ascii_case(h))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Length in bytes of the raw digest.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// Whether S3 allows the FULL_OBJECT checksum type (a linear CRC) for this algorithm.
    pub fn supports_full_object(self) -> bool {
        matches!(self, Self::Crc32 | Self::Crc32c | Self::Crc64Nvme)
    }

    pub fn hasher(self) -> ChecksumHasher {
        let state = match self {
            Self::Crc32 => HasherState::Crc32(crc32fast::Hasher::new()),
            Self::Crc32c => HasherState::Crc32c(0),
            Self::Crc64Nvme => HasherState::Crc64Nvme(crc64fast_nvme::Digest::new()),
            Self::Sha1 => HasherState::Sha1(sha1::Sha1::new()),
            Self::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
        };
        ChecksumHasher { state }
    }
}

/// An incremental checksum of one algorithm.
#[derive(Clone)]
pub struct ChecksumHasher {
    state: HasherState,
}

#[derive(Clone)]
enum HasherState {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl ChecksumHasher {
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HasherState::Crc32(h) => h.update(data),
            HasherState::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            HasherState::Crc64Nvme(h) => h.write(data),
            HasherState::Sha1(h) => h.update(data),
            HasherState::Sha256(h) => h.update(data),
        }
    }

    /// The raw digest; CRCs are big-endian, as S3 encodes them.
    pub fn finalize(self) -> Vec<u8> {
        match self.state {
            HasherState::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            HasherState::Crc32c(crc) => crc.to_be_bytes().to_vec(),
            HasherState::Crc64Nvme(h) => h.sum64().to_be_bytes().to_vec(),
            HasherState::Sha1(h) => h.finalize().to_vec(),
            HasherState::Sha256(h) => h.finalize().to_vec(),
        }
    }

    /// The digest as S3 sends it in `x-amz-checksum-*` headers.
    pub fn finalize_base64(self) -> String {
        BASE64.encode(self.finalize())
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            HasherState::Crc32(_) => ChecksumAlgorithm::Crc32,
            HasherState::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            HasherState::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            HasherState::Sha1(_) => ChecksumAlgorithm::Sha1,
            HasherState::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }
}

/// Decodes a base64 checksum value and checks it has the algorithm's digest length.
pub fn decode_checksum(alg: ChecksumAlgorithm, value_base64: &str) -> Option<Vec<u8>> {
    let raw = BASE64.decode(value_base64.trim()).ok()?;
    (raw.len() == alg.digest_len()).then_some(raw)
}

/// Multipart "COMPOSITE" checksum: the checksum of the concatenated raw part checksums,
/// base64-encoded, followed by `-N` (the part count). `None` if there are no parts or a part
/// checksum is not valid base64 of the right length.
pub fn composite_checksum(
    alg: ChecksumAlgorithm,
    part_checksums_base64: &[&str],
) -> Option<String> {
    if part_checksums_base64.is_empty() {
        return None;
    }
    let mut hasher = alg.hasher();
    for part in part_checksums_base64 {
        hasher.update(&decode_checksum(alg, part)?);
    }
    Some(format!(
        "{}-{}",
        hasher.finalize_base64(),
        part_checksums_base64.len()
    ))
}

/// Multipart "FULL_OBJECT" checksum: combines per-part CRCs and part lengths into the CRC of
/// the whole object, as if it had been computed over the concatenated parts. Only for the CRC
/// algorithms; `None` otherwise, for no parts, or for a malformed part checksum.
pub fn combine_full_object_crc(alg: ChecksumAlgorithm, parts: &[(&str, u64)]) -> Option<String> {
    let crc = ReflectedCrc::for_algorithm(alg)?;
    let (first, rest) = parts.split_first()?;
    let mut combined = crc.decode(alg, first.0)?;
    for (part_base64, len) in rest {
        combined = crc.combine(combined, crc.decode(alg, part_base64)?, *len);
    }
    let bytes = combined.to_be_bytes();
    Some(BASE64.encode(&bytes[8 - alg.digest_len()..]))
}

/// A reflected CRC whose initial value and final xor are all ones (CRC-32, CRC-32C,
/// CRC-64/NVME). For these, `crc(A || B)` is `crc(A) * x^(8 |B|) mod P` xor `crc(B)`: zlib's
/// `crc32_combine`, generalised to the width and polynomial.
struct ReflectedCrc {
    /// The polynomial in reflected form (bit `width - 1` is the coefficient of x^0).
    poly: u64,
    width: u32,
}

impl ReflectedCrc {
    fn for_algorithm(alg: ChecksumAlgorithm) -> Option<Self> {
        match alg {
            ChecksumAlgorithm::Crc32 => Some(Self {
                poly: 0xEDB8_8320,
                width: 32,
            }),
            ChecksumAlgorithm::Crc32c => Some(Self {
                poly: 0x82F6_3B78,
                width: 32,
            }),
            ChecksumAlgorithm::Crc64Nvme => Some(Self {
                poly: 0x9A6C_9329_AC4B_C9B5,
                width: 64,
            }),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    fn decode(&self, alg: ChecksumAlgorithm, value_base64: &str) -> Option<u64> {
        let raw = decode_checksum(alg, value_base64)?;
        Some(raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// `a * b mod P`, both in reflected form.
    fn multiply(&self, a: u64, mut b: u64) -> u64 {
        let mut m = 1u64 << (self.width - 1);
        let mut product = 0u64;
        while m != 0 {
            if a & m != 0 {
                product ^= b;
            }
            b = if b & 1 != 0 {
                (b >> 1) ^ self.poly
            } else {
                b >> 1
            };
            m >>= 1;
        }
        product
    }

    /// `x^(8 * len) mod P`.
    fn x_pow_8n(&self, mut len: u64) -> u64 {
        // x^1 in reflected form, squared three times: x^8.
        let mut power = 1u64 << (self.width - 2);
        for _ in 0..3 {
            power = self.multiply(power, power);
        }
        let mut result = 1u64 << (self.width - 1); // x^0
        while len != 0 {
            if len & 1 != 0 {
                result = self.multiply(power, result);
            }
            len >>= 1;
            if len != 0 {
                power = self.multiply(power, power);
            }
        }
        result
    }

    fn combine(&self, crc1: u64, crc2: u64, len2: u64) -> u64 {
        self.multiply(self.x_pow_8n(len2), crc1) ^ crc2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn checksum(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = alg.hasher();
        h.update(data);
        h.finalize()
    }

    #[test]
    fn known_check_values() {
        let check = b"123456789";
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32, check),
            0xCBF4_3926u32.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc32c, check),
            0xE306_9283u32.to_be_bytes()
        );
        assert_eq!(
            checksum(ChecksumAlgorithm::Crc64Nvme, check),
            0xAE8B_1486_0A79_9888u64.to_be_bytes()
        );
        assert_eq!(
            hex::encode(checksum(ChecksumAlgorithm::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(checksum(ChecksumAlgorithm::Sha256, b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut h = ChecksumAlgorithm::Crc32.hasher();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.algorithm(), ChecksumAlgorithm::Crc32);
        // CRC32("hello world") = 0x0d4a1185
        assert_eq!(h.finalize_base64(), "DUoRhQ==");
    }

    #[test]
    fn names_round_trip() {
        for alg in ChecksumAlgorithm::ALL {
            assert_eq!(ChecksumAlgorithm::from_name(alg.name()), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::from_name(&alg.name().to_lowercase()),
                Some(alg)
            );
            assert_eq!(
                ChecksumAlgorithm::from_header_name(&alg.header_name().to_uppercase()),
                Some(alg)
            );
            assert_eq!(checksum(alg, b"x").len(), alg.digest_len());
        }
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(ChecksumAlgorithm::from_header_name("x-amz-checksum-"), None);
    }

    #[test]
    fn composite_is_checksum_of_raw_part_checksums() {
        let alg = ChecksumAlgorithm::Sha256;
        let p1 = BASE64.encode(checksum(alg, b"part one"));
        let p2 = BASE64.encode(checksum(alg, b"part two"));
        let mut raw = checksum(alg, b"part one");
        raw.extend(checksum(alg, b"part two"));
        let expected = format!("{}-2", BASE64.encode(checksum(alg, &raw)));
        assert_eq!(composite_checksum(alg, &[&p1, &p2]), Some(expected));
        assert_eq!(composite_checksum(alg, &[]), None);
        assert_eq!(composite_checksum(alg, &["AAAA"]), None);
        assert_eq!(composite_checksum(alg, &["not base64!"]), None);
    }

    #[test]
    fn full_object_rejects_non_crc_and_bad_input() {
        let sha = BASE64.encode(checksum(ChecksumAlgorithm::Sha1, b"x"));
        assert_eq!(
            combine_full_object_crc(ChecksumAlgorithm::Sha1, &[(&sha, 1)]),
            None
        );
        assert_eq!(combine_full_object_crc(ChecksumAlgorithm::Crc32, &[]), None);
        assert_eq!(
            combine_full_object_crc(ChecksumAlgorithm::Crc32, &[("AAAAAAAA", 3)]),
            None
        );
    }

    #[test]
    fn crc32c_combine_matches_the_crate() {
        let crc = ReflectedCrc::for_algorithm(ChecksumAlgorithm::Crc32c);
        let Some(crc) = crc else {
            panic!("crc32c is a CRC");
        };
        let a = crc32c::crc32c(b"hello ");
        let b = crc32c::crc32c(b"world, and more");
        assert_eq!(
            crc.combine(u64::from(a), u64::from(b), 15),
            u64::from(crc32c::crc32c_combine(a, b, 15))
        );
    }

    proptest! {
        #[test]
        fn full_object_crc_equals_crc_of_concatenation(
            parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6),
            alg_index in 0usize..3,
        ) {
            let alg = ChecksumAlgorithm::ALL[alg_index];
            let encoded: Vec<String> = parts.iter().map(|p| BASE64.encode(checksum(alg, p))).collect();
            let with_len: Vec<(&str, u64)> = encoded
                .iter()
                .zip(&parts)
                .map(|(c, p)| (c.as_str(), p.len() as u64))
                .collect();
            let whole: Vec<u8> = parts.concat();
            prop_assert_eq!(
                combine_full_object_crc(alg, &with_len),
                Some(BASE64.encode(checksum(alg, &whole)))
            );
        }
    }
}
