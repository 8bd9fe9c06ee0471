//! The one S3 error type, its status table, its XML body, and every conversion from the
//! library crates' errors. The `source` of an error is logged, never sent to the client.

use std::fmt;

use coffre_crypto::chunked_body::{ChunkError, ChunkErrorCode};
use coffre_crypto::sigv4::{AuthError, AuthErrorCode, PostPolicyError};
use http::StatusCode;

use super::xml::XmlWriter;

macro_rules! s3_error_codes {
    ($($code:ident => $status:expr, $message:expr;)*) => {
        /// The S3 error codes Coffre returns, each with the HTTP status AWS gives it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum S3ErrorCode { $($code),* }

        impl S3ErrorCode {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$code => stringify!($code)),* }
            }

            pub fn status(self) -> StatusCode {
                match self { $(Self::$code => $status),* }
            }

            pub fn default_message(self) -> &'static str {
                match self { $(Self::$code => $message),* }
            }
        }
    };
}

s3_error_codes! {
    AccessDenied => StatusCode::FORBIDDEN, "Access Denied";
    AccessForbidden => StatusCode::FORBIDDEN, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
    AccessControlListNotSupported => StatusCode::BAD_REQUEST, "The bucket does not allow ACLs";
    AuthorizationHeaderMalformed => StatusCode::BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => StatusCode::BAD_REQUEST, "Error parsing the X-Amz-Credential parameter.";
    BadDigest => StatusCode::BAD_REQUEST, "The Content-MD5 you specified did not match what we received.";
    BadRequest => StatusCode::BAD_REQUEST, "Bad Request";
    BucketAlreadyOwnedByYou => StatusCode::CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => StatusCode::CONFLICT, "The bucket you tried to delete is not empty";
    EntityTooLarge => StatusCode::BAD_REQUEST, "Your proposed upload exceeds the maximum allowed object size.";
    EntityTooSmall => StatusCode::BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IllegalLocationConstraintException => StatusCode::BAD_REQUEST, "The specified location-constraint is not valid for this endpoint.";
    IncompleteBody => StatusCode::BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InternalError => StatusCode::INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => StatusCode::FORBIDDEN, "The AWS Access Key Id you provided does not exist in our records.";
    InvalidArgument => StatusCode::BAD_REQUEST, "Invalid Argument";
    InvalidBucketName => StatusCode::BAD_REQUEST, "The specified bucket is not valid.";
    InvalidDigest => StatusCode::BAD_REQUEST, "The Content-MD5 you specified is not valid.";
    InvalidEncryptionAlgorithmError => StatusCode::BAD_REQUEST, "The encryption request that you specified is not valid. The valid value is AES256.";
    InvalidPart => StatusCode::BAD_REQUEST, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.";
    InvalidPartNumber => StatusCode::RANGE_NOT_SATISFIABLE, "The requested partnumber is not satisfiable";
    InvalidPolicyDocument => StatusCode::BAD_REQUEST, "The content of the form does not meet the conditions specified in the policy document.";
    InvalidPartOrder => StatusCode::BAD_REQUEST, "The list of parts was not in ascending order. Parts must be ordered by part number.";
    InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable";
    InvalidRequest => StatusCode::BAD_REQUEST, "Invalid Request";
    InvalidTag => StatusCode::BAD_REQUEST, "The tag provided was not a valid tag. This error can occur if the tag did not pass input validation.";
    KeyTooLongError => StatusCode::BAD_REQUEST, "Your key is too long";
    MalformedPOSTRequest => StatusCode::BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    MalformedXML => StatusCode::BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MaxPostPreDataLengthExceeded => StatusCode::BAD_REQUEST, "Your POST request fields preceeding the upload file was too large.";
    MetadataTooLarge => StatusCode::BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    MissingContentLength => StatusCode::LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    MissingSecurityHeader => StatusCode::BAD_REQUEST, "Your request was missing a required header.";
    NoSuchBucket => StatusCode::NOT_FOUND, "The specified bucket does not exist";
    NoSuchBucketPolicy => StatusCode::NOT_FOUND, "The bucket policy does not exist";
    NoSuchCORSConfiguration => StatusCode::NOT_FOUND, "The CORS configuration does not exist";
    NoSuchLifecycleConfiguration => StatusCode::NOT_FOUND, "The lifecycle configuration does not exist";
    NoSuchTagSet => StatusCode::NOT_FOUND, "The TagSet does not exist";
    NoSuchWebsiteConfiguration => StatusCode::NOT_FOUND, "The specified bucket does not have a website configuration";
    ObjectLockConfigurationNotFoundError => StatusCode::NOT_FOUND, "Object Lock configuration does not exist for this bucket";
    ReplicationConfigurationNotFoundError => StatusCode::NOT_FOUND, "The replication configuration was not found";
    NoSuchKey => StatusCode::NOT_FOUND, "The specified key does not exist.";
    NoSuchUpload => StatusCode::NOT_FOUND, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.";
    NotImplemented => StatusCode::NOT_IMPLEMENTED, "A header or query you provided implies functionality that is not implemented.";
    NotModified => StatusCode::NOT_MODIFIED, "Not Modified";
    PreconditionFailed => StatusCode::PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold";
    QuotaExceeded => StatusCode::FORBIDDEN, "The request would exceed the account's storage quota.";
    RequestHeaderSectionTooLarge => StatusCode::BAD_REQUEST, "Your request header section exceeds the maximum allowed size.";
    RequestTimeout => StatusCode::BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period.";
    RequestTimeTooSkewed => StatusCode::FORBIDDEN, "The difference between the request time and the server's time is too large.";
    ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SlowDown => StatusCode::SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SignatureDoesNotMatch => StatusCode::FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    XAmzContentSHA256Mismatch => StatusCode::BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
}

/// An S3 error on its way to the client. Boxed so that `Result<T, S3Error>` stays small.
pub struct S3Error(Box<Inner>);

struct Inner {
    code: S3ErrorCode,
    message: Option<String>,
    resource: Option<String>,
    /// Extra elements AWS adds for some codes (`BucketName`, `Key`).
    details: Vec<(&'static str, String)>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode) -> Self {
        Self(Box::new(Inner {
            code,
            message: None,
            resource: None,
            details: Vec::new(),
            source: None,
        }))
    }

    pub fn with_message(code: S3ErrorCode, message: impl Into<String>) -> Self {
        Self::new(code).message(message)
    }

    /// An internal failure: the client sees InternalError, the log sees `source`.
    pub fn internal(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(S3ErrorCode::InternalError).source(source)
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.0.message = Some(message.into());
        self
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.0.resource = Some(resource.into());
        self
    }

    pub fn detail(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.0.details.push((element, value.into()));
        self
    }

    pub fn source(mut self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.0.source = Some(source.into());
        self
    }

    pub fn code(&self) -> S3ErrorCode {
        self.0.code
    }

    pub fn status(&self) -> StatusCode {
        self.0.code.status()
    }

    pub fn message_text(&self) -> &str {
        self.0
            .message
            .as_deref()
            .unwrap_or_else(|| self.0.code.default_message())
    }

    pub fn source_error(&self) -> Option<&(dyn std::error::Error + Send + Sync)> {
        self.0.source.as_deref()
    }

    /// The XML body AWS sends.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut w = XmlWriter::new();
        w.open("Error");
        w.element("Code", self.0.code.as_str());
        w.element("Message", self.message_text());
        if let Some(resource) = &self.0.resource {
            w.element("Resource", resource);
        }
        for (element, value) in &self.0.details {
            w.element(element, value);
        }
        w.element("RequestId", request_id);
        w.close("Error");
        w.finish()
    }
}

impl fmt::Debug for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("S3Error");
        d.field("code", &self.0.code)
            .field("message", &self.message_text());
        if let Some(source) = &self.0.source {
            d.field("source", &format_args!("{source}"));
        }
        d.finish()
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code.as_str(), self.message_text())?;
        if let Some(source) = &self.0.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl From<coffre_storage::Error> for S3Error {
    fn from(e: coffre_storage::Error) -> Self {
        use coffre_storage::Error as E;
        match e {
            E::NoSuchBucket => S3Error::new(S3ErrorCode::NoSuchBucket),
            E::BucketAlreadyOwnedByYou => S3Error::new(S3ErrorCode::BucketAlreadyOwnedByYou),
            E::BucketNotEmpty => S3Error::new(S3ErrorCode::BucketNotEmpty),
            E::NoSuchKey => S3Error::new(S3ErrorCode::NoSuchKey),
            E::NoSuchUpload => S3Error::new(S3ErrorCode::NoSuchUpload),
            // SSE-C on a read (GET, HEAD, attributes, a copy's source), as AWS answers it;
            // parts of an upload are answered by `server_side_encryption::upload_key_error`.
            E::CustomerKeyRequired => S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The object was stored using a form of Server Side Encryption. The correct \
                 parameters must be provided to retrieve the object.",
            ),
            E::CustomerKeyNotApplicable => S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The encryption parameters are not applicable to this object.",
            ),
            E::CustomerKeyMismatch => S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "Requests specifying Server Side Encryption with Customer provided keys must \
                 provide the correct secret key.",
            ),
            E::InvalidPart { part_number } => S3Error::with_message(
                S3ErrorCode::InvalidPart,
                format!(
                    "One or more of the specified parts could not be found. The part may not have \
                     been uploaded, or the specified entity tag may not match the part's entity \
                     tag. (part {part_number})"
                ),
            ),
            E::InvalidPartOrder => S3Error::new(S3ErrorCode::InvalidPartOrder),
            E::NoPartsChosen => S3Error::with_message(
                S3ErrorCode::MalformedXML,
                "The XML you provided was not well-formed or did not validate against our \
                 published schema: you must specify at least one part.",
            ),
            E::EntityTooSmall {
                part_number,
                size,
                min,
            } => S3Error::with_message(
                S3ErrorCode::EntityTooSmall,
                format!(
                    "Your proposed upload is smaller than the minimum allowed object size. Part \
                     {part_number} has {size} bytes; every part but the last must have at least \
                     {min}."
                ),
            ),
            E::BadDigest { algorithm } => S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!("The {algorithm} you specified did not match the calculated checksum."),
            ),
            E::QuotaExceeded {
                what: "uploads",
                limit,
            } => S3Error::with_message(
                S3ErrorCode::QuotaExceeded,
                format!(
                    "The account has {limit} multipart uploads in progress, its quota; \
                     complete or abort one first. Nothing was stored."
                ),
            ),
            E::QuotaExceeded { what, limit } => S3Error::with_message(
                S3ErrorCode::QuotaExceeded,
                format!(
                    "The request would exceed the account's storage quota ({limit} {what}); \
                     nothing was stored."
                ),
            ),
            // The tenant was deleted while this request, authenticated just before, ran.
            E::NoSuchTenant => S3Error::new(S3ErrorCode::AccessDenied),
            E::NoArrayAvailable => S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "No storage array has room for this object.",
            ),
            // Retryable: SDKs retry SlowDown with backoff. The cause goes to the log.
            conflict @ E::Conflict => {
                S3Error::with_message(S3ErrorCode::SlowDown, "Please reduce your request rate.")
                    .source(conflict)
            }
            unavailable @ E::Unavailable(_) => S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "The metadata store is unavailable; please retry.",
            )
            .source(unavailable),
            // Tampered, truncated or swapped stored bytes: a security signal. The client
            // learns nothing; the source (which names the object) is logged at error level
            // as every internal error is.
            integrity @ E::Integrity { .. } => S3Error::internal(IntegrityFailure(integrity)),
            other => S3Error::internal(other),
        }
    }
}

/// The source of an InternalError caused by stored bytes that failed authentication, so
/// that the log line says what happened before naming the object.
#[derive(Debug)]
struct IntegrityFailure(coffre_storage::Error);

impl fmt::Display for IntegrityFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INTEGRITY FAILURE, possible tampering: {}", self.0)
    }
}

impl std::error::Error for IntegrityFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> Self {
        let code = match e.code() {
            AuthErrorCode::AccessDenied => S3ErrorCode::AccessDenied,
            AuthErrorCode::AuthorizationHeaderMalformed => {
                S3ErrorCode::AuthorizationHeaderMalformed
            }
            AuthErrorCode::AuthorizationQueryParametersError => {
                S3ErrorCode::AuthorizationQueryParametersError
            }
            AuthErrorCode::SignatureDoesNotMatch => S3ErrorCode::SignatureDoesNotMatch,
            AuthErrorCode::RequestTimeTooSkewed => S3ErrorCode::RequestTimeTooSkewed,
            AuthErrorCode::InvalidRequest => S3ErrorCode::InvalidRequest,
            AuthErrorCode::InvalidArgument => S3ErrorCode::InvalidArgument,
            AuthErrorCode::InvalidAccessKeyId => S3ErrorCode::InvalidAccessKeyId,
            AuthErrorCode::MissingSecurityHeader => S3ErrorCode::MissingSecurityHeader,
        };
        let error = S3Error::with_message(code, e.message());
        match e.detail() {
            Some((element, text)) => error.detail(element, text),
            None => error,
        }
    }
}

impl From<ChunkError> for S3Error {
    fn from(e: ChunkError) -> Self {
        let code = match e.code() {
            ChunkErrorCode::SignatureDoesNotMatch => S3ErrorCode::SignatureDoesNotMatch,
            ChunkErrorCode::IncompleteBody => S3ErrorCode::IncompleteBody,
            ChunkErrorCode::InvalidRequest => S3ErrorCode::InvalidRequest,
        };
        S3Error::with_message(code, e.message())
    }
}

impl From<PostPolicyError> for S3Error {
    fn from(e: PostPolicyError) -> Self {
        let message = e.to_string();
        match e {
            PostPolicyError::Auth(e) => e.into(),
            PostPolicyError::InvalidPolicy(_) => {
                S3Error::with_message(S3ErrorCode::InvalidPolicyDocument, message)
            }
            PostPolicyError::Expired
            | PostPolicyError::ConditionFailed(_)
            | PostPolicyError::ExtraInputField(_) => {
                S3Error::with_message(S3ErrorCode::AccessDenied, message)
            }
            PostPolicyError::TooLarge { max } => {
                S3Error::with_message(S3ErrorCode::EntityTooLarge, message)
                    .detail("MaxSizeAllowed", max.to_string())
            }
            PostPolicyError::TooSmall { proposed, min } => {
                S3Error::with_message(S3ErrorCode::EntityTooSmall, message)
                    .detail("ProposedSize", proposed.to_string())
                    .detail("MinSizeAllowed", min.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integrity_failure_is_internal_and_named_in_the_log_only() {
        let error = S3Error::from(coffre_storage::Error::Integrity {
            object: "photos/cat.jpg".to_owned(),
            reason: "segment 3 does not authenticate".to_owned(),
        });
        assert_eq!(error.code(), S3ErrorCode::InternalError);
        let logged = error.to_string();
        assert!(logged.contains("INTEGRITY FAILURE"), "{logged}");
        assert!(logged.contains("photos/cat.jpg"), "{logged}");
        let sent = error.to_xml("req");
        assert!(!sent.contains("cat.jpg"), "{sent}");
    }
}
