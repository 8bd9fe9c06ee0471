//! The naming rules of general purpose buckets, checked when a request is routed: a name
//! that no bucket can have is refused before anything looks it up, counts it or records it.

use std::net::Ipv4Addr;

use crate::s3::error::{S3Error, S3ErrorCode};

/// An invalid name is named in the error's `Resource` up to this length.
const MAX_ECHOED_NAME_BYTES: usize = 255;

/// The naming rules of general purpose buckets.
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    let bytes = name.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let valid = (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|s| name.ends_with(s));
    if valid {
        Ok(())
    } else if name.len() <= MAX_ECHOED_NAME_BYTES {
        Err(S3Error::new(S3ErrorCode::InvalidBucketName).resource(format!("/{name}")))
    } else {
        // Whatever a client sends is not echoed back at any length.
        Err(S3Error::new(S3ErrorCode::InvalidBucketName))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_naming_rules() {
        for ok in ["abc", "my-bucket.2024", "a1b", &"a".repeat(63)] {
            assert!(validate_bucket_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Upper",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "x-s3alias",
            "a.-b",
            "spa ce",
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
