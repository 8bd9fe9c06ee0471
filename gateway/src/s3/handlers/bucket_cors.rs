//! PutBucketCors, GetBucketCors, DeleteBucketCors; the browser preflight (`OPTIONS`) they
//! govern; and the CORS headers of actual responses.
//!
//! A preflight carries no credentials, and bucket names are per tenant, so it cannot say
//! whose bucket it means. It is answered from the rules any active tenant published for
//! buckets of that name (their union), and a name without published rules answers exactly
//! like a name no tenant uses: an unauthenticated caller learns nothing about buckets that
//! have no CORS rules. See `coffre_storage`'s `bucket_cors` for why the union is safe: the
//! actual request is signed, and its response carries CORS headers only from the signing
//! tenant's own bucket.

use std::sync::Arc;

use coffre_crypto::TenantScope;
use coffre_storage::{CorsRule, Store};
use http::{HeaderMap, Method, Response, StatusCode};

use super::objects::bucket_record;
use super::{empty_response, xml_response};
use crate::s3::body::Body;
use crate::s3::cors::{self, CorsRequest};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload_digest::PayloadDigest;
use crate::s3::{blocking, xml, RequestContext};

pub async fn get_bucket_cors(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    if record.cors.is_empty() {
        return Err(S3Error::new(S3ErrorCode::NoSuchCORSConfiguration)
            .resource(format!("/{bucket}"))
            .detail("BucketName", bucket));
    }
    Ok(xml_response(cors::configuration_document(&record.cors)))
}

pub async fn put_bucket_cors(
    mut ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    let mut digest = PayloadDigest::from_headers(&ctx.headers)?;
    let body = ctx.body.collect(cors::MAX_DOCUMENT_BYTES).await?;
    digest.update(&body);
    digest.finish(ctx.body.trailers())?;
    let rules = cors::parse_configuration(&xml::parse(&body)?)?;
    set_rules(&ctx, bucket, rules).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn delete_bucket_cors(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    set_rules(&ctx, bucket, Vec::new()).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

async fn set_rules(
    ctx: &RequestContext,
    bucket: String,
    rules: Vec<CorsRule>,
) -> Result<(), S3Error> {
    let (store, scope, name) = (ctx.store.clone(), ctx.scope.clone(), bucket.clone());
    blocking(move || store.set_bucket_cors(&scope, &name, rules))
        .await
        .map(drop)
        .map_err(|e| super::objects::with_bucket(e, &bucket))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `OPTIONS /bucket/key`: 200 with the matching rule's headers, or 403 AccessForbidden
/// whether the bucket has no matching rule, no rules, or does not exist at all.
pub async fn preflight(
    store: Arc<Store>,
    bucket: String,
    key: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, S3Error> {
    let origin = header(headers, "origin").ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        )
    })?;
    let method = header(headers, "access-control-request-method");
    let method = match method {
        Some(m) if ["GET", "PUT", "HEAD", "POST", "DELETE"].contains(&m) => m,
        other => {
            return Err(S3Error::with_message(
                S3ErrorCode::BadRequest,
                format!(
                    "Invalid Access-Control-Request-Method: {}",
                    other.unwrap_or("null")
                ),
            ))
        }
    };
    let request = CorsRequest {
        origin,
        method,
        headers: cors::requested_headers(header(headers, "access-control-request-headers")),
    };
    let rules = blocking(move || store.preflight_cors_rules(&bucket)).await?;
    let Some((rule, any_origin)) = cors::preflight_rule(&rules, &request) else {
        let resource = if key.is_empty() { "BUCKET" } else { "OBJECT" };
        return Err(S3Error::new(S3ErrorCode::AccessForbidden)
            .detail("Method", method)
            .detail("ResourceType", resource));
    };
    let mut response = empty_response(StatusCode::OK);
    cors::write_preflight_headers(rule, any_origin, &request, response.headers_mut());
    Ok(response)
}

/// What an actual request needs to get CORS headers on its response: a browser's `Origin`
/// and the bucket it went to, read before the handler consumes the request.
pub struct ActualRequest {
    origin: String,
    method: Method,
    bucket: String,
    store: Arc<Store>,
    scope: Arc<TenantScope>,
}

impl ActualRequest {
    pub fn of(ctx: &RequestContext, bucket: Option<&str>, method: Option<Method>) -> Option<Self> {
        Some(Self {
            origin: header(&ctx.headers, "origin")?.to_owned(),
            method: method?,
            bucket: bucket?.to_owned(),
            store: ctx.store.clone(),
            scope: ctx.scope.clone(),
        })
    }

    /// Adds the headers of the first rule of the caller's own bucket that allows the
    /// request; nothing when none does or the bucket is gone.
    pub async fn add_headers(self, response: &mut Response<Body>) {
        let (store, scope, name) = (self.store, self.scope, self.bucket);
        let Ok(bucket) = blocking(move || store.bucket(&scope, &name)).await else {
            return;
        };
        let request = CorsRequest {
            origin: &self.origin,
            method: self.method.as_str(),
            headers: Vec::new(),
        };
        if let Some((rule, any_origin)) = cors::matching_rule(&bucket.cors, &request) {
            cors::write_response_headers(rule, any_origin, &self.origin, response.headers_mut());
        }
    }
}
