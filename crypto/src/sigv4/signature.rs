//! The signing half of SigV4: request timestamps, the credential scope, the signing key, the
//! string to sign and constant-time signature comparison. Also the [`ChunkSigner`] that carries
//! a verified request's key into the aws-chunked body decoder.

use std::fmt;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use zeroize::Zeroizing;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const SERVICE: &str = "s3";
pub(crate) const TERMINAL: &str = "aws4_request";

const AMZ_DATE: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const HTTP_DATE: &[BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);
const SCOPE_DATE: &[BorrowedFormatItem<'static>] = format_description!("[year][month][day]");

/// Parses `x-amz-date` / `X-Amz-Date`: `20130524T000000Z`.
pub(crate) fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s.trim(), AMZ_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Parses an RFC 1123 `Date` header: `Fri, 24 May 2013 00:00:00 GMT`.
pub(crate) fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    PrimitiveDateTime::parse(s.trim(), HTTP_DATE)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The ISO 8601 basic form used in the string to sign, whichever header carried the date.
pub(crate) fn format_amz_date(t: OffsetDateTime) -> String {
    t.format(AMZ_DATE).unwrap_or_default()
}

pub(crate) fn format_scope_date(t: OffsetDateTime) -> String {
    t.format(SCOPE_DATE).unwrap_or_default()
}

/// `YYYYMMDD/region/s3/aws4_request` as parsed from a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CredentialScope {
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminal: String,
}

impl CredentialScope {
    pub fn to_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminal
        )
    }
}

/// HMAC-SHA256 signing key, derived with aws-sigv4 and zeroized on drop.
#[derive(Clone)]
pub(crate) struct SigningKey(Zeroizing<[u8; 32]>);

impl SigningKey {
    /// `time` only contributes its UTC date.
    pub fn derive(secret: &str, time: OffsetDateTime, region: &str) -> Option<Self> {
        let derived = aws_sigv4::sign::v4::generate_signing_key(
            secret,
            SystemTime::from(time),
            region,
            SERVICE,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        let bytes = derived.as_ref();
        if bytes.len() != key.len() {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    /// Lowercase hex HMAC of `string_to_sign`.
    pub fn sign(&self, string_to_sign: &[u8]) -> String {
        aws_sigv4::sign::v4::calculate_signature(self.0.as_slice(), string_to_sign)
    }
}

/// The string to sign for a request whose canonical request is `canonical_request`.
pub(crate) fn request_string_to_sign(
    amz_date: &str,
    scope: &str,
    canonical_request: &[u8],
) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

/// Constant-time comparison of a computed hex signature with the one the client sent.
pub(crate) fn signature_matches(computed_hex: &str, provided: &[u8; 32]) -> bool {
    let provided_hex = hex::encode(provided);
    computed_hex.len() == provided_hex.len()
        && bool::from(computed_hex.as_bytes().ct_eq(provided_hex.as_bytes()))
}

/// Parses a 64-character hex signature.
pub(crate) fn parse_signature(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What the aws-chunked decoder needs to verify the chain of chunk signatures of a request
/// whose seed signature has been verified: the signing key (zeroized on drop), the credential
/// scope, the request timestamp and the seed signature.
#[derive(Clone)]
pub struct ChunkSigner {
    key: SigningKey,
    scope: String,
    amz_date: String,
    seed_signature: String,
}

impl ChunkSigner {
    pub(crate) fn new(
        key: SigningKey,
        scope: String,
        amz_date: String,
        seed_signature: String,
    ) -> Self {
        Self {
            key,
            scope,
            amz_date,
            seed_signature,
        }
    }

    /// The signature of the request itself, which the first chunk's signature chains from.
    pub fn seed_signature(&self) -> &str {
        &self.seed_signature
    }

    /// Signature of one chunk (the final, empty chunk included), chained to `previous`.
    pub(crate) fn chunk_signature(&self, previous: &str, data: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256_HEX}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(Sha256::digest(data))
        );
        self.key.sign(string_to_sign.as_bytes())
    }

    /// Signature of the trailer chunk, chained to the final chunk's signature. `canonical` is
    /// the trailers sorted by name, each as `name:value\n`.
    pub(crate) fn trailer_signature(&self, previous: &str, canonical: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(Sha256::digest(canonical))
        );
        self.key.sign(string_to_sign.as_bytes())
    }

    /// A signer for tests that build signed bodies without going through `verify`.
    #[cfg(test)]
    pub(crate) fn for_tests(secret: &str, amz_date: &str, region: &str, seed: &str) -> Self {
        let time = parse_amz_date(amz_date).unwrap();
        let key = SigningKey::derive(secret, time, region).unwrap();
        let scope = format!("{}/{region}/{SERVICE}/{TERMINAL}", format_scope_date(time));
        Self::new(key, scope, amz_date.to_owned(), seed.to_owned())
    }
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("key", &"<redacted>")
            .field("scope", &self.scope)
            .field("amz_date", &self.amz_date)
            .field("seed_signature", &self.seed_signature)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_both_forms() {
        let a = parse_amz_date("20130524T000000Z").unwrap();
        let b = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_amz_date(b), "20130524T000000Z");
        assert_eq!(format_scope_date(b), "20130524");
        assert!(parse_amz_date("2013-05-24T00:00:00Z").is_none());
        assert!(parse_http_date("24 May 2013").is_none());
    }

    #[test]
    fn signatures_compare_exactly() {
        let sig = parse_signature(&"ab".repeat(32)).unwrap();
        assert!(signature_matches(&"ab".repeat(32), &sig));
        assert!(!signature_matches(&"ab".repeat(31), &sig));
        assert!(!signature_matches(&format!("{}ac", "ab".repeat(31)), &sig));
        assert!(parse_signature("abc").is_none());
    }

    #[test]
    fn debug_redacts_the_key() {
        let signer = ChunkSigner::for_tests("secret", "20130524T000000Z", "us-east-1", "seed");
        assert!(format!("{signer:?}").contains("<redacted>"));
    }
}
