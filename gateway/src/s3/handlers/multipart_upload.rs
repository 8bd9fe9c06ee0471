//! CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload,
//! ListParts, ListMultipartUploads.

use std::sync::Arc;

use coffre_crypto::checksum::ChecksumAlgorithm;
use coffre_storage::{
    ChosenPart, Completion, PartInfo, UploadAddress, UploadChecksum, UploadListQuery, WriteTarget,
};
use http::{HeaderValue, Response, StatusCode};

use super::bucket_config::check_acl_headers;
use super::complete_keepalive::{keepalive_response, COMPLETE_FAST_PATH, XML_DECLARATION};
use super::copy_object::checksum_element;
use super::objects::bucket_record;
use super::upload_checksum::checksum_from_create_headers;
use super::{empty_response, quoted_etag, xml_response};
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::object_headers::meta_from_request;
use crate::s3::operation::MAX_PART_NUMBER;
use crate::s3::payload_digest::PayloadDigest;
use crate::s3::payload_writer::receive_payload_and;
use crate::s3::server_side_encryption::{self, mark_customer_key, mark_stored, upload_key_error};
use crate::s3::timestamp::iso8601;
use crate::s3::xml::{self, XmlWriter};
use crate::s3::{blocking, RequestContext};

const MAX_COMPLETE_BODY: usize = 2 * 1024 * 1024;

pub async fn create_multipart_upload(
    ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    check_acl_headers(&ctx.headers)?;
    let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    server_side_encryption::check_requested(&ctx.headers)?;
    let mut meta = meta_from_request(&ctx.headers)?;
    let checksum = checksum_from_create_headers(&ctx.headers)?;
    if let Some(checksum) = checksum {
        checksum.store_in(&mut meta);
    }
    let (store, scope, name) = (ctx.store.clone(), ctx.scope.clone(), key.clone());
    let sse_c = customer_key.clone();
    let upload =
        blocking(move || store.create_upload(&scope, &record, &name, meta, sse_c.as_deref()))
            .await?;

    let mut w = XmlWriter::new();
    w.open_root("InitiateMultipartUploadResult");
    w.element("Bucket", &bucket);
    w.element("Key", &key);
    w.element("UploadId", &upload.upload_id());
    w.close("InitiateMultipartUploadResult");
    let mut response = xml_response(w.finish());
    mark_stored(response.headers_mut(), customer_key.as_deref());
    if let Some(checksum) = checksum {
        let headers = response.headers_mut();
        headers.insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(checksum.algorithm.name()),
        );
        headers.insert(
            "x-amz-checksum-type",
            HeaderValue::from_static(checksum.type_name()),
        );
    }
    Ok(response)
}

pub async fn upload_part(
    mut ctx: RequestContext,
    bucket: String,
    key: String,
    upload_id: String,
    part_number: u32,
) -> Result<Response<Body>, S3Error> {
    let record = Arc::new(bucket_record(&ctx, &bucket).await?);
    let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    let upload = Arc::new(UploadAddress::new(key, &upload_id)?);
    let digest = PayloadDigest::from_headers(&ctx.headers)?;
    // The part must come with its upload's customer key (or none if it has none), and the
    // upload must be one of this key.
    let writer = {
        let (store, scope, record) = (ctx.store.clone(), ctx.scope.clone(), record.clone());
        let target = WriteTarget::Part {
            upload: UploadAddress::clone(&upload),
            part_number,
        };
        let key = customer_key.clone();
        blocking(move || Ok(store.data_writer(&scope, &record, target, key.as_deref())))
            .await?
            .map_err(upload_key_error)?
    };
    let sse_c = customer_key.is_some();
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    // The last write, the data's finish and the part's commit in one hand-off.
    let (etag, digests) =
        receive_payload_and(&mut ctx.body, writer, digest, move |data, digests| {
            let etag = digests.etag(sse_c);
            let (algorithm, value) = &digests.checksum;
            let part = PartInfo {
                etag: etag.clone(),
                size: data.size(),
                checksums: vec![(algorithm.name().to_owned(), value.clone())],
            };
            store.put_part(&scope, &record, &upload, part_number, part, data)?;
            Ok(etag)
        })
        .await?;
    let (algorithm, value) = digests.checksum.clone();

    let mut response = empty_response(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(http::header::ETAG, quoted_etag(&etag));
    mark_stored(headers, customer_key.as_deref());
    if digests.requested {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(algorithm.header_name(), v);
        }
    }
    Ok(response)
}

fn parse_complete_body(body: &[u8]) -> Result<Vec<ChosenPart>, S3Error> {
    let root = xml::parse(body)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::new(S3ErrorCode::MalformedXML));
    }
    let mut parts = Vec::new();
    for part in root.children_named("Part") {
        let number = part
            .child_text("PartNumber")
            .and_then(|n| n.trim().parse::<u32>().ok())
            .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
            .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
        let etag = part
            .child_text("ETag")
            .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?
            .trim()
            .trim_matches('"')
            .to_owned();
        let checksums = ChecksumAlgorithm::ALL
            .into_iter()
            .filter_map(|alg| {
                let element = format!("Checksum{}", alg.name());
                part.child_text(&element)
                    .map(|v| (alg, v.trim().to_owned()))
            })
            .collect();
        parts.push(ChosenPart {
            part_number: number,
            etag,
            checksums,
        });
    }
    Ok(parts)
}

/// CompleteMultipartUpload. When the completion takes long, S3 answers 200 at once and
/// sends whitespace until the result (or an error document) is ready; so does Coffre.
pub async fn complete_multipart_upload(
    mut ctx: RequestContext,
    bucket: String,
    key: String,
    upload_id: String,
) -> Result<Response<Body>, S3Error> {
    let body = ctx.body.collect(MAX_COMPLETE_BODY).await?;
    let completion = Completion {
        parts: parse_complete_body(&body)?,
        declared_checksums: declared_checksums(&ctx.headers),
    };
    let address = UploadAddress::new(key, &upload_id)?;
    // The customer key is optional here (AWS needs it only for checksummed uploads); a key
    // given must be the upload's. The response says how the object is encrypted before the
    // completion runs, since a slow one answers 200 at once.
    let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    let record = Arc::new(bucket_record(&ctx, &bucket).await?);
    let (sse_c, checksum) = {
        let (store, scope, record) = (ctx.store.clone(), ctx.scope.clone(), record.clone());
        let (address, given) = (address.clone(), customer_key.clone());
        blocking(move || {
            let upload = store.upload(&scope, &record, &address)?;
            let checked = match given {
                Some(given) => {
                    store.check_upload_customer_key(&scope, &record, &address, Some(&given))
                }
                None => Ok(()),
            };
            Ok(checked.map(|()| (upload.is_sse_c(), UploadChecksum::of_upload(&upload))))
        })
        .await?
        .map_err(upload_key_error)?
    };
    let request_id = ctx.request_id.clone();
    let work = complete(ctx, record, bucket, address, completion, checksum);
    let mut work = tokio::spawn(work);
    let mut response = match tokio::time::timeout(COMPLETE_FAST_PATH, &mut work).await {
        Ok(joined) => {
            let document = joined.map_err(S3Error::internal)??;
            xml_response(format!("{XML_DECLARATION}{document}"))
        }
        Err(_) => keepalive_response(work, request_id),
    };
    // Without the key, an SSE-C completion names no encryption (as AWS answers).
    let headers = response.headers_mut();
    match (&customer_key, sse_c) {
        (Some(key), _) => mark_customer_key(headers, key),
        (None, true) => {}
        (None, false) => mark_stored(headers, None),
    }
    Ok(response)
}

/// The whole-object checksums a completion request declares in `x-amz-checksum-*` headers.
fn declared_checksums(headers: &http::HeaderMap) -> Vec<(ChecksumAlgorithm, String)> {
    ChecksumAlgorithm::ALL
        .into_iter()
        .filter_map(|algorithm| {
            let value = headers.get(algorithm.header_name())?.to_str().ok()?;
            Some((algorithm, value.trim().to_owned()))
        })
        .collect()
}

/// The completion proper (storage checks the parts and derives the ETag and checksum);
/// returns the result document without its XML declaration.
async fn complete(
    ctx: RequestContext,
    record: Arc<coffre_storage::BucketRecord>,
    bucket: String,
    address: UploadAddress,
    completion: Completion,
    checksum: UploadChecksum,
) -> Result<String, S3Error> {
    let (store, scope, upload) = (ctx.store.clone(), ctx.scope.clone(), address.clone());
    let object =
        blocking(move || store.complete_upload(&scope, &record, &upload, &completion)).await?;

    let key = address.key();
    let mut w = XmlWriter::without_declaration();
    w.open_root("CompleteMultipartUploadResult");
    w.element("Location", &format!("/{bucket}/{key}"));
    w.element("Bucket", &bucket);
    w.element("Key", key);
    w.element("ETag", &format!("\"{}\"", object.meta.etag));
    let combined = object
        .meta
        .checksums
        .iter()
        .find(|(name, _)| ChecksumAlgorithm::from_name(name) == Some(checksum.algorithm));
    if let (Some((_, value)), true) = (combined, checksum.requested) {
        w.element(checksum_element(checksum.algorithm), value);
        w.element("ChecksumType", checksum.type_name());
    }
    w.close("CompleteMultipartUploadResult");
    Ok(w.finish())
}

pub async fn abort_multipart_upload(
    ctx: RequestContext,
    bucket: String,
    key: String,
    upload_id: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    let address = UploadAddress::new(key, &upload_id)?;
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    blocking(move || store.abort_upload(&scope, &record, &address)).await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

fn number_param(
    ctx: &RequestContext,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, S3Error> {
    match ctx.query.get(name) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map(|n| n.min(max)).map_err(|_| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Provided {name} not an integer or within integer range"),
            )
        }),
    }
}

pub async fn list_parts(
    ctx: RequestContext,
    bucket: String,
    key: String,
    upload_id: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    let max_parts = number_param(&ctx, "max-parts", 1000, 1000)?;
    let marker = number_param(&ctx, "part-number-marker", 0, MAX_PART_NUMBER as usize)? as u32;
    let address = UploadAddress::new(key.clone(), &upload_id)?;
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    let (upload, (parts, truncated)) = blocking(move || {
        let upload = store.upload(&scope, &record, &address)?;
        let parts = store.list_parts(&scope, &record, &address, marker, max_parts)?;
        Ok((upload, parts))
    })
    .await?;
    let checksum = UploadChecksum::of_upload(&upload);
    let owner = ctx.scope.tenant_id().to_hex();

    let mut w = XmlWriter::new();
    w.open_root("ListPartsResult");
    w.element("Bucket", &bucket);
    w.element("Key", &key);
    w.element("UploadId", &upload_id);
    write_principal(&mut w, "Initiator", &owner);
    write_principal(&mut w, "Owner", &owner);
    w.element("StorageClass", "STANDARD");
    w.element_display("PartNumberMarker", marker);
    if let Some(last) = parts.last() {
        w.element_display("NextPartNumberMarker", last.part_number);
    }
    w.element_display("MaxParts", max_parts);
    w.element_display("IsTruncated", truncated);
    if checksum.requested {
        w.element("ChecksumAlgorithm", checksum.algorithm.name());
        w.element("ChecksumType", checksum.type_name());
    }
    for part in &parts {
        w.open("Part");
        w.element_display("PartNumber", part.part_number);
        w.element("LastModified", &iso8601(part.last_modified));
        w.element("ETag", &format!("\"{}\"", part.etag));
        w.element_display("Size", part.size);
        if checksum.requested {
            for (name, value) in &part.checksums {
                if ChecksumAlgorithm::from_name(name) == Some(checksum.algorithm) {
                    w.element(checksum_element(checksum.algorithm), value);
                }
            }
        }
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(xml_response(w.finish()))
}

fn write_principal(w: &mut XmlWriter, tag: &'static str, id: &str) {
    w.open(tag);
    w.element("ID", id);
    w.element("DisplayName", id);
    w.close(tag);
}

pub async fn list_multipart_uploads(
    ctx: RequestContext,
    bucket: String,
) -> Result<Response<Body>, S3Error> {
    let record = bucket_record(&ctx, &bucket).await?;
    let query = UploadListQuery {
        prefix: ctx.query.get("prefix").unwrap_or_default().to_owned(),
        delimiter: ctx
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        key_marker: ctx
            .query
            .get("key-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        upload_id_marker: ctx
            .query
            .get("upload-id-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        max_uploads: number_param(&ctx, "max-uploads", 1000, 1000)?,
    };
    let encode_url = match ctx.query.get("encoding-type") {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("url") => true,
        Some(_) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            ))
        }
    };
    let enc = |s: &str| {
        if encode_url {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        } else {
            s.to_owned()
        }
    };
    let (store, scope, q) = (ctx.store.clone(), ctx.scope.clone(), query.clone());
    let page = blocking(move || store.list_uploads(&scope, &record, &q)).await?;
    let owner = ctx.scope.tenant_id().to_hex();

    let mut w = XmlWriter::new();
    w.open_root("ListMultipartUploadsResult");
    w.element("Bucket", &bucket);
    w.element(
        "KeyMarker",
        &enc(query.key_marker.as_deref().unwrap_or_default()),
    );
    w.element(
        "UploadIdMarker",
        query.upload_id_marker.as_deref().unwrap_or_default(),
    );
    if let Some(next) = &page.next_key_marker {
        w.element("NextKeyMarker", &enc(next));
    }
    if let Some(next) = &page.next_upload_id_marker {
        w.element("NextUploadIdMarker", next);
    }
    w.element("Prefix", &enc(&query.prefix));
    if let Some(d) = &query.delimiter {
        w.element("Delimiter", &enc(d));
    }
    w.element_display("MaxUploads", query.max_uploads);
    w.element_display("IsTruncated", page.is_truncated);
    if encode_url {
        w.element("EncodingType", "url");
    }
    for upload in &page.uploads {
        w.open("Upload");
        w.element("Key", &enc(&upload.key));
        w.element("UploadId", &upload.upload_id());
        write_principal(&mut w, "Initiator", &owner);
        write_principal(&mut w, "Owner", &owner);
        w.element("StorageClass", "STANDARD");
        w.element("Initiated", &iso8601(upload.initiated));
        w.close("Upload");
    }
    for prefix in &page.common_prefixes {
        w.open("CommonPrefixes");
        w.element("Prefix", &enc(prefix));
        w.close("CommonPrefixes");
    }
    w.close("ListMultipartUploadsResult");
    Ok(xml_response(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_body_rules() {
        let body =
            |parts: &str| format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>");
        let part =
            |n: u32| format!("<Part><PartNumber>{n}</PartNumber><ETag>\"e{n}\"</ETag></Part>");
        let ok = parse_complete_body(body(&(part(1) + &part(3))).as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].etag, "e3");
        let code = |b: String| parse_complete_body(b.as_bytes()).err().map(|e| e.code());
        // The order of the parts (and that there is one) is storage's rule, checked with
        // the stored parts: the body parses.
        assert_eq!(code(body(&(part(2) + &part(1)))), None);
        assert_eq!(code(body("")), None);
        assert_eq!(code(body(&part(0))), Some(S3ErrorCode::MalformedXML));
        assert_eq!(code("<Other/>".into()), Some(S3ErrorCode::MalformedXML));
    }
}
