//! The server-side encryption headers. Every object is encrypted at rest under its tenant's
//! keys (SSE-S3 in AWS terms), so responses that describe an object's storage say so, as
//! AWS does with default bucket encryption.

use http::{HeaderMap, HeaderValue};

use super::error::{S3Error, S3ErrorCode};

/// The response header AWS sends for SSE-S3.
pub const SSE_HEADER: &str = "x-amz-server-side-encryption";
/// The only algorithm Coffre stores with.
pub const SSE_ALGORITHM: &str = "AES256";

/// Marks a response as describing data encrypted at rest.
pub fn mark_encrypted(headers: &mut HeaderMap) {
    headers.insert(SSE_HEADER, HeaderValue::from_static(SSE_ALGORITHM));
}

/// Refuses a request for an encryption Coffre does not do (SSE-KMS, an unknown algorithm);
/// asking for AES256 is what happens anyway.
pub fn check_requested(headers: &HeaderMap) -> Result<(), S3Error> {
    let Some(value) = headers.get(SSE_HEADER) else {
        return Ok(());
    };
    match value.to_str() {
        Ok(SSE_ALGORITHM) => Ok(()),
        Ok(v) if v.starts_with("aws:kms") => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Server-side encryption with KMS keys is not supported; objects are encrypted \
             with AES256.",
        )),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The encryption method specified is not supported",
        )
        .detail("ArgumentName", SSE_HEADER)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requesting(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SSE_HEADER, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn aes256_or_nothing_is_accepted() {
        assert!(check_requested(&HeaderMap::new()).is_ok());
        assert!(check_requested(&requesting("AES256")).is_ok());
    }

    #[test]
    fn other_algorithms_are_refused() {
        let code = |v| check_requested(&requesting(v)).err().map(|e| e.code());
        assert_eq!(code("aws:kms"), Some(S3ErrorCode::NotImplemented));
        assert_eq!(code("DES"), Some(S3ErrorCode::InvalidArgument));
    }
}
