//! AWS Signature Version 4 verification for S3: the `Authorization` header, presigned URLs
//! and the seed of aws-chunked streaming bodies.
//!
//! The gateway calls [`parse_auth`] on the raw request, looks up the access key, then calls
//! [`verify`], which is the only producer of a [`TenantScope`].

mod authorization;
mod canonical_request;
pub mod post_policy;
mod presigned_url;
mod query_string;
pub(crate) mod signature;
#[cfg(test)]
mod tests;

use http::HeaderMap;
use time::{Duration, OffsetDateTime};

use crate::ids::AccessKeyId;
use crate::scope::{Credential, TenantScope};

use authorization::{invalid_access_key, parse_authorization, AuthVia};
use canonical_request::{canonical_headers, canonical_request, canonical_uris};
use presigned_url::{parse_query_auth, AuthParams, X_AMZ_SIGNATURE};
use signature::{
    format_amz_date, format_scope_date, parse_amz_date, parse_http_date, request_string_to_sign,
    signature_matches, CredentialScope, SigningKey,
};

pub use post_policy::{
    parse_post_auth, verify_post, FormFields, PostAuth, PostPolicy, PostPolicyError, VerifiedPost,
};
pub use query_string::{QueryString, QueryStringError};
pub use signature::ChunkSigner;

/// How far a request's date may be from the server clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// The parts of a request that SigV4 covers, as received.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Percent-encoded as received, without the query.
    pub raw_path: &'a str,
    /// The request's query string, decoded once for routing and signature alike.
    pub query: &'a QueryString,
    /// Must contain `host` (for HTTP/2, the gateway copies the `:authority` into it).
    pub headers: &'a HeaderMap,
}

/// What `x-amz-content-sha256` says about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// The SHA-256 the client declared; the gateway must check the body against it.
    Signed([u8; 32]),
    Unsigned,
    /// aws-chunked with chunk signatures.
    StreamingSigned,
    /// aws-chunked with chunk signatures and signed trailers.
    StreamingSignedTrailer,
    /// aws-chunked without signatures, with trailers.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    fn parse(value: &str) -> Option<Self> {
        match value {
            UNSIGNED_PAYLOAD => Some(Self::Unsigned),
            STREAMING_SIGNED => Some(Self::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Some(Self::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Some(Self::StreamingUnsignedTrailer),
            hash => {
                let mut out = [0u8; 32];
                hex::decode_to_slice(hash, &mut out).ok()?;
                Some(Self::Signed(out))
            }
        }
    }

    /// Whether the body is aws-chunked.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Self::StreamingSigned | Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }

    /// Whether the aws-chunked body ends with trailers.
    pub fn has_trailer(&self) -> bool {
        matches!(
            self,
            Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }
}

/// A parsed, not yet verified, SigV4 authentication.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub access_key: AccessKeyId,
    pub payload: PayloadMode,
    pub presigned: bool,
    scope: CredentialScope,
    request_time: OffsetDateTime,
    /// Presigned only.
    expires_secs: Option<u32>,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    /// The last line of the canonical request, as the client sent it.
    payload_hash: String,
}

impl AuthRequest {
    /// The region of the credential scope.
    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// The request time (`x-amz-date`, `Date` or `X-Amz-Date`).
    pub fn request_time(&self) -> OffsetDateTime {
        self.request_time
    }

    /// Presigned URLs: when the URL stops being valid (`None` for header auth, or past the
    /// representable dates).
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_secs.and_then(|secs| {
            self.request_time
                .checked_add(Duration::seconds(i64::from(secs)))
        })
    }

    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }
}

/// The outcome of a successful verification.
#[derive(Debug)]
pub struct Verified {
    pub scope: TenantScope,
    /// Some for `StreamingSigned` and `StreamingSignedTrailer`: feeds the chunk decoder.
    pub chunk_signer: Option<ChunkSigner>,
}

/// The S3 error codes authentication can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    SignatureDoesNotMatch,
    RequestTimeTooSkewed,
    InvalidRequest,
    InvalidArgument,
    InvalidAccessKeyId,
    MissingSecurityHeader,
}

impl AuthErrorCode {
    /// The code as S3 spells it in error responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessDenied => "AccessDenied",
            Self::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            Self::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            Self::InvalidRequest => "InvalidRequest",
            Self::InvalidArgument => "InvalidArgument",
            Self::InvalidAccessKeyId => "InvalidAccessKeyId",
            Self::MissingSecurityHeader => "MissingSecurityHeader",
        }
    }
}

/// Why a request failed authentication, in S3's terms. The message is safe to send to the
/// client: it never contains secrets or computed signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct AuthError {
    code: AuthErrorCode,
    message: String,
    /// An extra element of S3's error document (`HeadersNotSigned`).
    detail: Option<(&'static str, String)>,
}

impl AuthError {
    pub(crate) fn new(code: AuthErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// The extra element S3 adds to this error's document, as (element, text).
    pub fn detail(&self) -> Option<(&'static str, &str)> {
        self.detail
            .as_ref()
            .map(|(element, text)| (*element, text.as_str()))
    }

    pub fn code(&self) -> AuthErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

const ONE_MECHANISM: &str = "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified";
const UNSUPPORTED: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";

/// Parses the SigV4 authentication of a request. `Ok(None)`: the request carries none
/// (anonymous). `Err`: it carries a malformed or unsupported one.
pub fn parse_auth(parts: &RequestParts) -> Result<Option<AuthRequest>, AuthError> {
    let mut auth_headers = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    let auth_header = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(AuthVia::Header.malformed("the Authorization header appears more than once."));
    }
    let params = AuthParams::new(parts.query);

    match (auth_header, params.has_sigv4()) {
        (Some(_), true) => Err(AuthError::new(
            AuthErrorCode::InvalidArgument,
            ONE_MECHANISM,
        )),
        (Some(value), false) => {
            let value = value
                .to_str()
                .map_err(|_| AuthVia::Header.malformed("it contains non-ASCII characters."))?;
            parse_header_auth(parts, value).map(Some)
        }
        (None, true) => parse_presigned(parts, &params).map(Some),
        (None, false) if params.has_sigv2() => {
            Err(AuthError::new(AuthErrorCode::InvalidRequest, UNSUPPORTED))
        }
        (None, false) => Ok(None),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_header_auth(parts: &RequestParts, value: &str) -> Result<AuthRequest, AuthError> {
    let auth = parse_authorization(value)?;

    let payload_hash = header_str(parts.headers, X_AMZ_CONTENT_SHA256).ok_or_else(|| {
        AuthError::new(
            AuthErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        )
    })?;
    let payload = parse_payload_mode(payload_hash)?;

    let request_time = match parts.headers.get("x-amz-date") {
        Some(v) => v.to_str().ok().and_then(parse_amz_date),
        None => header_str(parts.headers, "date").and_then(parse_http_date),
    }
    .ok_or_else(|| {
        AuthError::new(
            AuthErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    })?;
    check_scope_date(&auth.scope, request_time, AuthVia::Header)?;
    check_signed_headers(parts.headers, &auth.signed_headers, false)?;

    Ok(AuthRequest {
        access_key: auth.access_key,
        payload,
        presigned: false,
        scope: auth.scope,
        request_time,
        expires_secs: None,
        signed_headers: auth.signed_headers,
        signature: auth.signature,
        payload_hash: payload_hash.to_owned(),
    })
}

fn parse_presigned(
    parts: &RequestParts,
    params: &AuthParams<'_>,
) -> Result<AuthRequest, AuthError> {
    let auth = parse_query_auth(params)?;
    let (payload, payload_hash) = match header_str(parts.headers, X_AMZ_CONTENT_SHA256) {
        Some(value) => (parse_payload_mode(value)?, value.to_owned()),
        None => (PayloadMode::Unsigned, UNSIGNED_PAYLOAD.to_owned()),
    };
    check_scope_date(&auth.scope, auth.date, AuthVia::Query)?;
    check_signed_headers(parts.headers, &auth.signed_headers, true)?;
    Ok(AuthRequest {
        access_key: auth.access_key,
        payload,
        presigned: true,
        scope: auth.scope,
        request_time: auth.date,
        expires_secs: Some(auth.expires_secs),
        signed_headers: auth.signed_headers,
        signature: auth.signature,
        payload_hash,
    })
}

fn parse_payload_mode(value: &str) -> Result<PayloadMode, AuthError> {
    PayloadMode::parse(value).ok_or_else(|| {
        AuthError::new(
            AuthErrorCode::InvalidArgument,
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
        )
    })
}

fn check_scope_date(
    scope: &CredentialScope,
    request_time: OffsetDateTime,
    via: AuthVia,
) -> Result<(), AuthError> {
    let request_date = format_scope_date(request_time);
    if scope.date == request_date {
        Ok(())
    } else {
        Err(via.malformed(&format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{request_date}\".",
            scope.date
        )))
    }
}

/// `host` must be signed, and so must every `x-amz-*` header the request carries, as S3
/// requires (its `HeadersNotSigned`), so that nobody can add instructions to a signed request
/// or a captured presigned URL. The exceptions are in [`unsigned_allowed`].
fn check_signed_headers(
    headers: &HeaderMap,
    signed: &[String],
    presigned: bool,
) -> Result<(), AuthError> {
    let is_signed = |name: &str| signed.iter().any(|s| s == name);
    let mut not_signed: Vec<&str> = Vec::new();
    if !is_signed("host") {
        not_signed.push("host");
    }
    for name in headers.keys().map(http::HeaderName::as_str) {
        if name.starts_with("x-amz-")
            && !unsigned_allowed(name, presigned)
            && !is_signed(name)
            && !not_signed.contains(&name)
        {
            not_signed.push(name);
        }
    }
    if not_signed.is_empty() {
        return Ok(());
    }
    let mut error = AuthError::new(
        AuthErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    );
    error.detail = Some(("HeadersNotSigned", not_signed.join(", ")));
    Err(error)
}

/// The `x-amz-*` headers a request may carry unsigned:
/// - `x-amz-content-sha256`, whose value is the last line of the canonical request anyway;
/// - in presigned URLs, those the SDK presigners leave out of the signature (aws-sigv4 skips
///   `x-amz-user-agent` and `x-amz-checksum-mode`), and the SSE-C key and its MD5: AWS has
///   the URL sign the customer key algorithm, while the key itself is sent, as a header, by
///   whoever uses the URL (a URL must not carry the key).
fn unsigned_allowed(name: &str, presigned: bool) -> bool {
    match name {
        X_AMZ_CONTENT_SHA256 => true,
        "x-amz-user-agent"
        | "x-amz-checksum-mode"
        | "x-amz-server-side-encryption-customer-key"
        | "x-amz-server-side-encryption-customer-key-md5"
        | "x-amz-copy-source-server-side-encryption-customer-key"
        | "x-amz-copy-source-server-side-encryption-customer-key-md5" => presigned,
        _ => false,
    }
}

/// Verifies `auth` against the secret of `credential` (the one stored for
/// `auth.access_key`) at time `now`. `expected_region`: the server's region, or `None` to
/// accept whatever region the client signed for.
pub fn verify(
    parts: &RequestParts,
    auth: &AuthRequest,
    credential: &Credential,
    now: OffsetDateTime,
    expected_region: Option<&str>,
) -> Result<Verified, AuthError> {
    if credential.access_key != auth.access_key {
        return Err(invalid_access_key());
    }
    let via = if auth.presigned {
        AuthVia::Query
    } else {
        AuthVia::Header
    };
    if let Some(expected) = expected_region {
        if auth.scope.region != expected {
            return Err(via.malformed(&format!(
                "the region '{}' is wrong; expecting '{expected}'",
                auth.scope.region
            )));
        }
    }
    check_time(auth, now)?;

    let key = SigningKey::derive(
        credential.secret.expose(),
        auth.request_time,
        &auth.scope.region,
    )
    .ok_or_else(|| AuthError::new(AuthErrorCode::AccessDenied, "Access Denied"))?;
    let amz_date = format_amz_date(auth.request_time);
    let scope = auth.scope.to_scope_string();
    let query = parts
        .query
        .canonical(auth.presigned.then_some(X_AMZ_SIGNATURE));
    let headers = canonical_headers(parts.headers, &auth.signed_headers);

    // Every candidate URI is tried so that the time taken does not reveal which one matched.
    let mut matched = false;
    for uri in canonical_uris(parts.raw_path) {
        let creq = canonical_request(
            parts.method,
            &uri,
            &query,
            &headers,
            &auth.signed_headers,
            &auth.payload_hash,
        );
        let computed = key.sign(request_string_to_sign(&amz_date, &scope, &creq).as_bytes());
        matched |= signature_matches(&computed, &auth.signature);
    }
    if !matched {
        return Err(AuthError::new(
            AuthErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }

    let chunk_signer = matches!(
        auth.payload,
        PayloadMode::StreamingSigned | PayloadMode::StreamingSignedTrailer
    )
    .then(|| ChunkSigner::new(key, scope, amz_date, hex::encode(auth.signature)));
    Ok(Verified {
        scope: TenantScope::from_verified(credential),
        chunk_signer,
    })
}

fn check_time(auth: &AuthRequest, now: OffsetDateTime) -> Result<(), AuthError> {
    let too_skewed = || {
        AuthError::new(
            AuthErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )
    };
    let skew = auth.request_time - now;
    if auth.presigned {
        // A presigned URL may be used until it expires, but not before it was issued.
        if skew > MAX_CLOCK_SKEW {
            return Err(too_skewed());
        }
        if auth.expires_at().is_none_or(|expires_at| now > expires_at) {
            return Err(AuthError::new(
                AuthErrorCode::AccessDenied,
                "Request has expired",
            ));
        }
    } else if skew.abs() > MAX_CLOCK_SKEW {
        return Err(too_skewed());
    }
    Ok(())
}
