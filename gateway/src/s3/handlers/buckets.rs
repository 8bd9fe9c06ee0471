//! ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use http::{HeaderValue, Response, StatusCode};

use super::objects::{bucket_record, with_bucket};
use super::{empty_response, xml_response};
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
pub use crate::s3::operation::validate_bucket_name;
use crate::s3::timestamp::iso8601;
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{blocking, RequestContext};

pub async fn list_buckets(ctx: RequestContext) -> Result<Response<Body>, S3Error> {
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    let buckets = blocking(move || store.list_buckets(&scope)).await?;
    let owner = ctx.scope.tenant_id().to_hex();
    let mut w = XmlWriter::new();
    w.open_root("ListAllMyBucketsResult");
    w.open("Owner");
    w.element("ID", &owner);
    w.element("DisplayName", &owner);
    w.close("Owner");
    w.open("Buckets");
    for bucket in buckets
        .iter()
        .filter(|b| ctx.scope.may_access_bucket(&b.name))
    {
        w.open("Bucket");
        w.element("Name", &bucket.name);
        w.element("CreationDate", &iso8601(bucket.created));
        w.element("BucketRegion", &bucket.region);
        w.close("Bucket");
    }
    w.close("Buckets");
    w.close("ListAllMyBucketsResult");
    Ok(xml_response(w.finish()))
}

pub async fn create_bucket(
    mut ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    validate_bucket_name(&bucket)?;
    let body = ctx.body.collect(64 * 1024).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let config = xml::parse(&body)?;
        if config.name != "CreateBucketConfiguration" {
            return Err(S3Error::new(S3ErrorCode::MalformedXML));
        }
        if let Some(constraint) = config.child_text("LocationConstraint").map(str::trim) {
            if !constraint.is_empty() && constraint != &*ctx.region {
                return Err(S3Error::with_message(
                    S3ErrorCode::IllegalLocationConstraintException,
                    format!(
                        "The {constraint} location constraint is incompatible for the region \
                         specific endpoint this request was sent to."
                    ),
                ));
            }
        }
    }
    let (store, scope, region) = (ctx.store.clone(), ctx.scope.clone(), ctx.region.clone());
    let name = bucket.clone();
    blocking(move || store.create_bucket(&scope, &name, &region))
        .await
        .map_err(|e| with_bucket(e, &bucket))?;
    let mut response = empty_response(StatusCode::OK);
    if let Ok(location) = HeaderValue::from_str(&format!("/{bucket}")) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    Ok(response)
}

pub async fn head_bucket(ctx: RequestContext, bucket: String) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    let mut response = empty_response(StatusCode::OK);
    if let Ok(region) = HeaderValue::from_str(&record.region) {
        response.headers_mut().insert("x-amz-bucket-region", region);
    }
    Ok(response)
}

pub async fn delete_bucket(ctx: RequestContext, bucket: String) -> Result<Response<Body>, S3Error> {
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    let name = bucket.clone();
    blocking(move || store.delete_bucket(&scope, &name))
        .await
        .map_err(|e| with_bucket(e, &bucket))?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

pub async fn get_bucket_location(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    let mut w = XmlWriter::new();
    w.open_root("LocationConstraint");
    // AWS answers an empty constraint for us-east-1.
    if record.region != "us-east-1" {
        w.text(&record.region);
    }
    w.close("LocationConstraint");
    Ok(xml_response(w.finish()))
}

pub async fn get_bucket_versioning(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    // Versioning has never been enabled: the document is empty.
    let mut w = XmlWriter::new();
    w.open_root("VersioningConfiguration");
    w.close("VersioningConfiguration");
    Ok(xml_response(w.finish()))
}
