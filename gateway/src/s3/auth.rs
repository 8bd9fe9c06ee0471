//! Authentication: the request's SigV4 credentials are looked up, the signature verified,
//! and the caller's `TenantScope` comes out. This is the only place a scope is made.

use std::sync::Arc;

use coffre_crypto::sigv4::{self, ChunkSigner, PayloadMode, RequestParts};
use coffre_crypto::TenantScope;
use coffre_storage::{KeyLookup, Store};
use time::OffsetDateTime;

use super::blocking;
use super::error::{S3Error, S3ErrorCode};
use super::operation::Operation;
use super::query::Query;

pub struct Authenticated {
    pub scope: TenantScope,
    pub payload: PayloadMode,
    pub chunk_signer: Option<ChunkSigner>,
}

pub async fn authenticate(
    store: &Arc<Store>,
    parts: &http::request::Parts,
    query: &Query,
    region: &str,
) -> Result<Authenticated, S3Error> {
    let request = RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        query: query.decoded(),
        headers: &parts.headers,
    };
    // No anonymous access, ever: an unsigned request is denied before anything is looked up.
    let auth =
        sigv4::parse_auth(&request)?.ok_or_else(|| S3Error::new(S3ErrorCode::AccessDenied))?;
    let store = store.clone();
    let key = auth.access_key.clone();
    let (credential, suspended) = match blocking(move || store.credential(&key)).await? {
        KeyLookup::Active(credential) => (credential, false),
        KeyLookup::Suspended(credential) => (credential, true),
        KeyLookup::Unknown => return Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId)),
    };
    let verified = sigv4::verify(
        &request,
        &auth,
        &credential,
        OffsetDateTime::now_utc(),
        Some(region),
    )?;
    // Only a correctly signed request learns that its tenant is suspended.
    if suspended {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Access Denied: this account is suspended.",
        ));
    }
    Ok(Authenticated {
        scope: verified.scope,
        payload: auth.payload,
        chunk_signer: verified.chunk_signer,
    })
}

/// Role and bucket limits of the key. A bucket the key may not touch is denied like any
/// other forbidden action.
pub fn authorize(scope: &TenantScope, operation: &Operation) -> Result<(), S3Error> {
    if operation.is_write() && !scope.may_write() {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    }
    let buckets = operation
        .bucket()
        .into_iter()
        .chain(operation.copy_source().map(|s| s.bucket.as_str()));
    for bucket in buckets {
        if !scope.may_access_bucket(bucket) {
            return Err(S3Error::new(S3ErrorCode::AccessDenied));
        }
    }
    Ok(())
}
