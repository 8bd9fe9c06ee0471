//! PutObjectTagging, GetObjectTagging, DeleteObjectTagging: an object's tag set, replaced as
//! a whole without touching its data.

use http::{Response, StatusCode};

use super::objects::{bucket_record, object_record};
use super::{empty_response, xml_response};
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::payload_digest::PayloadDigest;
use crate::s3::tagging::{self, TagSet};
use crate::s3::{blocking, xml, RequestContext};

/// A `Tagging` document of ten tags at their longest is well under this.
const MAX_TAGGING_BODY: usize = 64 * 1024;

pub async fn get_object_tagging(
    ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    let (_, object) = object_record(&ctx, &bucket, &key).await?;
    Ok(xml_response(tagging::document(&object.meta.tags)))
}

pub async fn put_object_tagging(
    mut ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    let mut digest = PayloadDigest::from_headers(&ctx.headers)?;
    let body = ctx.body.collect(MAX_TAGGING_BODY).await?;
    digest.update(&body);
    digest.finish(ctx.body.trailers())?;
    let tags = tagging::parse_document(&xml::parse(&body)?)?;
    replace_tags(&ctx, &bucket, &key, tags).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn delete_object_tagging(
    ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    replace_tags(&ctx, &bucket, &key, Vec::new()).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

async fn replace_tags(
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    tags: TagSet,
) -> Result<(), S3Error> {
    let record = bucket_record(ctx, bucket).await?;
    let (store, scope, name) = (ctx.store.clone(), ctx.scope.clone(), key.to_owned());
    blocking(move || store.put_object_tags(&scope, &record, &name, &tags))
        .await
        .map_err(|e| match e.code() {
            S3ErrorCode::NoSuchKey => e.resource(format!("/{bucket}/{key}")).detail("Key", key),
            _ => e,
        })
}
