//! GetObjectAttributes: ETag, checksum, parts, storage class and size without the body.

use http::{HeaderValue, Response};

use super::copy_object::checksum_element;
use super::objects::readable_object;
use super::xml_response;
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::server_side_encryption;
use crate::s3::timestamp::http_date;
use crate::s3::xml::XmlWriter;
use crate::s3::RequestContext;

const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

pub async fn get_object_attributes(
    ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    let requested: Vec<String> = ctx
        .headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    if requested.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is \
             either missing or empty",
        ));
    }
    if let Some(unknown) = requested.iter().find(|a| !ATTRIBUTES.contains(&a.as_str())) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Invalid attribute name specified: {unknown}"),
        ));
    }
    let wants = |name: &str| requested.iter().any(|a| a == name);
    // An SSE-C object's attributes need its key, as its metadata does on HEAD.
    let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    let object = readable_object(&ctx, &bucket, &key, customer_key).await?;
    let max_parts = ctx
        .headers
        .get("x-amz-max-parts")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(1000)
        .min(1000);
    let marker = ctx
        .headers
        .get("x-amz-part-number-marker")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0);

    let mut w = XmlWriter::new();
    w.open_root("GetObjectAttributesResponse");
    if wants("ETag") {
        w.element("ETag", &object.meta.etag);
    }
    if wants("Checksum") && !object.meta.checksums.is_empty() {
        w.open("Checksum");
        for (name, value) in &object.meta.checksums {
            if let Some(alg) = coffre_crypto::checksum::ChecksumAlgorithm::from_name(name) {
                w.element(checksum_element(alg), value);
            }
        }
        if let Some(kind) = &object.meta.checksum_type {
            w.element("ChecksumType", kind);
        }
        w.close("Checksum");
    }
    if wants("ObjectParts") && object.is_multipart() {
        let parts: Vec<_> = object
            .parts
            .iter()
            .enumerate()
            .skip(marker)
            .take(max_parts)
            .collect();
        let truncated = marker + parts.len() < object.parts.len();
        w.open("ObjectParts");
        w.element_display("PartsCount", object.parts.len());
        w.element_display("PartNumberMarker", marker);
        if let Some((index, _)) = parts.last() {
            w.element_display("NextPartNumberMarker", index + 1);
        }
        w.element_display("MaxParts", max_parts);
        w.element_display("IsTruncated", truncated);
        for (index, part) in &parts {
            w.open("Part");
            w.element_display("PartNumber", index + 1);
            w.element_display("Size", part.size);
            for (name, value) in &part.checksums {
                if let Some(alg) = coffre_crypto::checksum::ChecksumAlgorithm::from_name(name) {
                    w.element(checksum_element(alg), value);
                }
            }
            w.close("Part");
        }
        w.close("ObjectParts");
    }
    if wants("StorageClass") {
        w.element("StorageClass", "STANDARD");
    }
    if wants("ObjectSize") {
        w.element_display("ObjectSize", object.meta.size);
    }
    w.close("GetObjectAttributesResponse");
    let mut response = xml_response(w.finish());
    if let Ok(v) = HeaderValue::from_str(&http_date(object.last_modified)) {
        response
            .headers_mut()
            .insert(http::header::LAST_MODIFIED, v);
    }
    Ok(response)
}
