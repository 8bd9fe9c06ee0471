//! The server-side encryption headers. Every object is encrypted at rest under its tenant's
//! keys (SSE-S3 in AWS terms), so responses that describe an object's storage say so, as
//! AWS does with default bucket encryption.
//!
//! SSE-C: a client may also send a key of its own with every request on an object
//! (`x-amz-server-side-encryption-customer-{algorithm,key,key-MD5}`, and the
//! `x-amz-copy-source-` trio for a copy's source). The object's data is then sealed under
//! both the tenant's keys and that key (see `coffre_crypto::CustomerKey`); the key is never
//! stored. Its headers are accepted only over TLS or from behind a trusted TLS terminator,
//! and they are validated, and refused, with the errors AWS returns. The key travels in
//! headers only: a query string ends up in logs, browser histories and proxies, so SSE-C
//! parameters in it are refused, presigned URL or not (AWS has a presigned URL sign the
//! algorithm, and whoever uses the URL send all three headers).

use std::sync::Arc;

use coffre_crypto::{CustomerKey, CustomerKeyError, SSE_C_ALGORITHM};
use http::{HeaderMap, HeaderValue};

use super::error::{S3Error, S3ErrorCode};
use super::query::Query;

/// The response header AWS sends for SSE-S3.
pub const SSE_HEADER: &str = "x-amz-server-side-encryption";
/// The only algorithm Coffre stores with.
pub const SSE_ALGORITHM: &str = "AES256";

/// The SSE-C response headers: the algorithm, and the MD5 of the key the request gave.
pub const CUSTOMER_ALGORITHM_HEADER: &str = "x-amz-server-side-encryption-customer-algorithm";
pub const CUSTOMER_KEY_MD5_HEADER: &str = "x-amz-server-side-encryption-customer-key-md5";

/// A customer key for the length of one request, shared with the blocking tasks that use
/// it; zeroized when the last of them drops it.
pub type RequestKey = Arc<CustomerKey>;

/// Which trio of SSE-C headers: the object the request writes or reads, or a copy's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomerKeyFor {
    Object,
    CopySource,
}

impl CustomerKeyFor {
    /// The algorithm, key and key-MD5 header names (lowercase, as `HeaderMap` keeps them).
    fn names(self) -> [&'static str; 3] {
        match self {
            Self::Object => [
                CUSTOMER_ALGORITHM_HEADER,
                "x-amz-server-side-encryption-customer-key",
                CUSTOMER_KEY_MD5_HEADER,
            ],
            Self::CopySource => [
                "x-amz-copy-source-server-side-encryption-customer-algorithm",
                "x-amz-copy-source-server-side-encryption-customer-key",
                "x-amz-copy-source-server-side-encryption-customer-key-md5",
            ],
        }
    }
}

/// A header's value. A header that is not visible ASCII reads as an empty, and so invalid,
/// value.
fn value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or_default())
}

/// Whether the request carries any SSE-C header (either trio).
pub fn requests_customer_key(headers: &HeaderMap) -> bool {
    [CustomerKeyFor::Object, CustomerKeyFor::CopySource]
        .iter()
        .flat_map(|trio| trio.names())
        .any(|name| value(headers, name).is_some())
}

/// Refuses SSE-C parameters in the query string (in any letter case, as SDKs that hoist
/// headers into presigned URLs spell them): the key must never be part of a URL.
fn refuse_in_query(query: &Query) -> Result<(), S3Error> {
    let in_query = query.pairs().map(|(name, _)| name).find(|name| {
        [CustomerKeyFor::Object, CustomerKeyFor::CopySource]
            .iter()
            .flat_map(|trio| trio.names())
            .any(|sse_c| name.eq_ignore_ascii_case(sse_c))
    });
    match in_query {
        None => Ok(()),
        Some(name) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Server Side Encryption with Customer provided keys must be given in request \
             headers, never in the query string.",
        )
        .detail("ArgumentName", name)),
    }
}

/// Refuses SSE-C parameters in the query string, and SSE-C on a connection that is not
/// known to be encrypted: the S3 listener serves plain HTTP and is not configured as behind a
/// trusted TLS terminator. (The key has already crossed the network in the clear by then;
/// AWS advises treating it as compromised.)
pub fn check_transport(
    headers: &HeaderMap,
    query: &Query,
    secure_transport: bool,
) -> Result<(), S3Error> {
    refuse_in_query(query)?;
    if secure_transport || !requests_customer_key(headers) {
        return Ok(());
    }
    Err(S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        "Requests specifying Server Side Encryption with Customer provided keys must be made \
         over a secure connection.",
    ))
}

/// The customer key of the object the request writes or reads, `None` without SSE-C
/// headers. SSE-C parameters in `query` are refused; SSE-C and
/// `x-amz-server-side-encryption` together are refused next, as AWS does.
pub fn customer_key(headers: &HeaderMap, query: &Query) -> Result<Option<RequestKey>, S3Error> {
    refuse_in_query(query)?;
    let names = CustomerKeyFor::Object.names();
    let sse_c = names.iter().any(|n| value(headers, n).is_some());
    if let (true, Some(sse)) = (sse_c, headers.get(SSE_HEADER)) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Server Side Encryption with Customer provided key is incompatible with the \
             encryption method specified",
        )
        .detail("ArgumentName", SSE_HEADER)
        .detail("ArgumentValue", sse.to_str().unwrap_or_default()));
    }
    parse(CustomerKeyFor::Object, headers)
}

/// The customer key of a copy's source (`x-amz-copy-source-server-side-encryption-customer-*`),
/// `None` without those headers; SSE-C parameters in `query` are refused.
pub fn copy_source_customer_key(
    headers: &HeaderMap,
    query: &Query,
) -> Result<Option<RequestKey>, S3Error> {
    refuse_in_query(query)?;
    parse(CustomerKeyFor::CopySource, headers)
}

fn parse(trio: CustomerKeyFor, headers: &HeaderMap) -> Result<Option<RequestKey>, S3Error> {
    let [algorithm, key, key_md5] = trio.names().map(|name| value(headers, name));
    CustomerKey::from_headers(algorithm, key, key_md5)
        .map(|key| key.map(Arc::new))
        .map_err(|e| customer_key_error(e, algorithm))
}

/// AWS's answer to each malformed SSE-C trio. Every one names `x-amz-server-side-encryption`
/// as the argument, for either trio, as AWS does.
fn customer_key_error(e: CustomerKeyError, algorithm: Option<&str>) -> S3Error {
    use CustomerKeyError as E;
    let (code, message) = match e {
        E::MissingAlgorithm => (
            S3ErrorCode::InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide \
             a valid encryption algorithm.",
        ),
        E::UnsupportedAlgorithm => (
            S3ErrorCode::InvalidEncryptionAlgorithmError,
            "The Encryption request you specified is not valid. Supported value: AES256.",
        ),
        E::MissingKey => (
            S3ErrorCode::InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide \
             an appropriate secret key.",
        ),
        E::MissingKeyMd5 => (
            S3ErrorCode::InvalidArgument,
            "Requests specifying Server Side Encryption with Customer provided keys must provide \
             the client calculated MD5 of the secret key.",
        ),
        E::KeyMd5Mismatch => (
            S3ErrorCode::InvalidArgument,
            "The calculated MD5 hash of the key did not match the hash that was provided.",
        ),
        E::InvalidKey => (
            S3ErrorCode::InvalidArgument,
            "The secret key was invalid for the specified algorithm.",
        ),
    };
    let argument_value = match e {
        E::UnsupportedAlgorithm => algorithm.unwrap_or_default(),
        _ => "null",
    };
    S3Error::with_message(code, message)
        .detail("ArgumentName", SSE_HEADER)
        .detail("ArgumentValue", argument_value)
}

/// The answer to a part (UploadPart, UploadPartCopy) or a completion whose customer key does
/// not fit its multipart upload: given to an upload created without one or missing for one
/// created with one, or not the upload's key. Other errors keep their usual answer.
pub fn upload_key_error(e: coffre_storage::Error) -> S3Error {
    use coffre_storage::Error as E;
    match e {
        E::CustomerKeyRequired | E::CustomerKeyNotApplicable => S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The multipart upload initiate requested encryption. Subsequent part requests must \
             include the appropriate encryption parameters.",
        ),
        E::CustomerKeyMismatch => S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The provided encryption parameters did not match the ones used originally.",
        ),
        other => other.into(),
    }
}

/// Marks a response as describing data encrypted at rest.
pub fn mark_encrypted(headers: &mut HeaderMap) {
    headers.insert(SSE_HEADER, HeaderValue::from_static(SSE_ALGORITHM));
}

/// Marks a response about data sealed under `customer_key` (SSE-C): the algorithm and the
/// key's MD5, and not `x-amz-server-side-encryption`, as AWS answers.
pub fn mark_customer_key(headers: &mut HeaderMap, customer_key: &CustomerKey) {
    headers.insert(
        CUSTOMER_ALGORITHM_HEADER,
        HeaderValue::from_static(SSE_C_ALGORITHM),
    );
    if let Ok(md5) = HeaderValue::from_str(&customer_key.key_md5_base64()) {
        headers.insert(CUSTOMER_KEY_MD5_HEADER, md5);
    }
}

/// Marks a response about stored data: SSE-C with its key, or the tenant's keys alone.
pub fn mark_stored(headers: &mut HeaderMap, customer_key: Option<&CustomerKey>) {
    match customer_key {
        Some(key) => mark_customer_key(headers, key),
        None => mark_encrypted(headers),
    }
}

/// An ETag for SSE-C data: random, as AWS's are not the MD5 of the object (nor stable for
/// the same content), so that nobody holding only the listing can confirm a guess of the
/// content from its MD5.
pub fn sse_c_etag() -> String {
    hex::encode(rand::random::<[u8; 16]>())
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
mod tests;
