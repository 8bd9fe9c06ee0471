//! Bucket and object subresources that clients probe, answered truthfully for a store where
//! the bucket owner owns everything, nothing is ever public and everything is encrypted:
//! ACLs (owner FULL_CONTROL only), encryption, policy status, public access block,
//! ownership controls, and S3's "not configured" errors for what Coffre never has.

use http::{HeaderMap, Response, StatusCode};

use super::objects::{bucket_record, object_record};
use super::{empty_response, xml_response};
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::xml::{self, XmlWriter};
use crate::s3::RequestContext;

const MAX_ACL_BODY: usize = 64 * 1024;

fn owner_id(ctx: &RequestContext) -> String {
    ctx.scope.tenant_id().to_hex()
}

fn access_control_policy(owner: &str) -> String {
    let mut w = XmlWriter::new();
    w.open_root("AccessControlPolicy");
    w.open("Owner");
    w.element("ID", owner);
    w.element("DisplayName", owner);
    w.close("Owner");
    w.open("AccessControlList");
    w.open("Grant");
    w.raw(
        "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:type=\"CanonicalUser\">",
    );
    w.element("ID", owner);
    w.element("DisplayName", owner);
    w.close("Grantee");
    w.element("Permission", "FULL_CONTROL");
    w.close("Grant");
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    w.finish()
}

/// Canned ACLs that only say "the owner has everything" are accepted; anything that would
/// grant access to someone else is refused, as on a bucket with ACLs disabled.
pub fn check_acl_headers(headers: &HeaderMap) -> Result<(), S3Error> {
    if let Some(acl) = headers.get("x-amz-acl") {
        let acl = acl.to_str().unwrap_or_default();
        if !matches!(acl, "private" | "bucket-owner-full-control") {
            return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
        }
    }
    if headers
        .keys()
        .any(|k| k.as_str().starts_with("x-amz-grant-"))
    {
        return Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported));
    }
    Ok(())
}

/// A PutBucketAcl/PutObjectAcl body is accepted only when it grants FULL_CONTROL to the
/// owner and nothing else.
async fn check_acl_body(ctx: &mut RequestContext) -> Result<(), S3Error> {
    let body = ctx.body.collect(MAX_ACL_BODY).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let policy = xml::parse(&body)?;
    let owner = owner_id(ctx);
    let grants: Vec<_> = policy
        .child("AccessControlList")
        .map(|list| list.children_named("Grant").collect())
        .unwrap_or_default();
    let owner_only = grants.iter().all(|grant| {
        grant.child_text("Permission").map(str::trim) == Some("FULL_CONTROL")
            && grant
                .child("Grantee")
                .and_then(|g| g.child_text("ID"))
                .map(str::trim)
                == Some(owner.as_str())
    });
    if owner_only {
        Ok(())
    } else {
        Err(S3Error::new(S3ErrorCode::AccessControlListNotSupported))
    }
}

pub async fn get_bucket_acl(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    Ok(xml_response(access_control_policy(&owner_id(&ctx))))
}

pub async fn put_bucket_acl(
    mut ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    check_acl_headers(&ctx.headers)?;
    check_acl_body(&mut ctx).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_object_acl(
    ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    object_record(&ctx, &bucket, &key).await?;
    Ok(xml_response(access_control_policy(&owner_id(&ctx))))
}

pub async fn put_object_acl(
    mut ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    object_record(&ctx, &bucket, &key).await?;
    check_acl_headers(&ctx.headers)?;
    check_acl_body(&mut ctx).await?;
    Ok(empty_response(StatusCode::OK))
}

pub async fn get_bucket_encryption(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    let mut w = XmlWriter::new();
    w.open_root("ServerSideEncryptionConfiguration");
    w.open("Rule");
    w.open("ApplyServerSideEncryptionByDefault");
    w.element("SSEAlgorithm", "AES256");
    w.close("ApplyServerSideEncryptionByDefault");
    w.element("BucketKeyEnabled", "false");
    w.close("Rule");
    w.close("ServerSideEncryptionConfiguration");
    Ok(xml_response(w.finish()))
}

pub async fn get_bucket_policy_status(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    let mut w = XmlWriter::new();
    w.open_root("PolicyStatus");
    w.element("IsPublic", "false");
    w.close("PolicyStatus");
    Ok(xml_response(w.finish()))
}

pub async fn get_public_access_block(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    let mut w = XmlWriter::new();
    w.open_root("PublicAccessBlockConfiguration");
    for setting in [
        "BlockPublicAcls",
        "IgnorePublicAcls",
        "BlockPublicPolicy",
        "RestrictPublicBuckets",
    ] {
        w.element(setting, "true");
    }
    w.close("PublicAccessBlockConfiguration");
    Ok(xml_response(w.finish()))
}

pub async fn get_bucket_ownership_controls(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    let mut w = XmlWriter::new();
    w.open_root("OwnershipControls");
    w.open("Rule");
    w.element("ObjectOwnership", "BucketOwnerEnforced");
    w.close("Rule");
    w.close("OwnershipControls");
    Ok(xml_response(w.finish()))
}

/// The bucket exists, the configuration never does.
pub async fn get_absent_config(
    ctx: RequestContext,
    bucket: String,
    code: S3ErrorCode,
) -> Result<Response<Body>, S3Error> {
    bucket_record(&ctx, &bucket).await?;
    Err(S3Error::new(code)
        .resource(format!("/{bucket}"))
        .detail("BucketName", bucket))
}
