//! CopyObject and UploadPartCopy within a tenant. A whole-object copy that keeps its data
//! key (no customer key on either side, or the same one) shares the source's data: nothing
//! is re-encrypted or written but the copy's record, and the data is only read when the
//! copy needs a digest the source does not have (see [`carried_digests`]). Any other copy,
//! and every UploadPartCopy, streams the source from its data files into a new data file on
//! the blocking pool, hashing on the way; nothing is held in memory beyond one read chunk. An SSE-C source is read with the
//! `x-amz-copy-source-server-side-encryption-customer-*` key, and the copy is sealed under the
//! `x-amz-server-side-encryption-customer-*` key if one is given (else under the tenant's
//! keys alone), so a copy can add, change or drop a customer key.

use std::sync::Arc;

use coffre_crypto::checksum::{ChecksumAlgorithm, ChecksumHasher};
use coffre_crypto::TenantScope;
use coffre_storage::{
    BucketRecord, ObjectMeta, ObjectRecord, PartInfo, Store, UploadAddress, WriteTarget,
    WrittenData,
};
use http::{HeaderMap, HeaderValue, Response};
use md5::{Digest, Md5};

use super::bucket_config::check_acl_headers;
use super::objects::{bucket_record, readable_object};
use super::xml_response;
use crate::s3::body::Body;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::object_headers::meta_from_request;
use crate::s3::operation::CopySource;
use crate::s3::range::ByteRange;
use crate::s3::server_side_encryption::{
    self, mark_stored, sse_c_etag, upload_key_error, RequestKey, SSE_HEADER,
};
use crate::s3::tagging;
use crate::s3::timestamp::{iso8601, parse_http_date};
use crate::s3::xml::XmlWriter;
use crate::s3::{blocking, conditional, RequestContext};

/// Bytes read from the source per step.
const COPY_CHUNK: usize = 1 << 20;
/// CopyObject copies at most 5 GiB in one request, as on S3.
const MAX_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// `x-amz-copy-source-if-*`: every failed condition is a 412.
fn check_source_conditions(headers: &HeaderMap, source: &ObjectRecord) -> Result<(), S3Error> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let failed =
        |what: &str| Err(S3Error::new(S3ErrorCode::PreconditionFailed).resource(what.to_owned()));
    let etag = &source.meta.etag;
    let modified = source.last_modified;
    let if_match = header("x-amz-copy-source-if-match");
    if let Some(list) = if_match {
        if !conditional::etag_list_matches(list, etag) {
            return failed("x-amz-copy-source-if-match");
        }
    }
    if let Some(date) = header("x-amz-copy-source-if-unmodified-since").and_then(parse_http_date) {
        if if_match.is_none() && whole_seconds(modified) > date {
            return failed("x-amz-copy-source-if-unmodified-since");
        }
    }
    let if_none_match = header("x-amz-copy-source-if-none-match");
    if let Some(list) = if_none_match {
        if conditional::etag_list_matches(list, etag) {
            return failed("x-amz-copy-source-if-none-match");
        }
    }
    if let Some(date) = header("x-amz-copy-source-if-modified-since").and_then(parse_http_date) {
        if if_none_match.is_none() && whole_seconds(modified) <= date {
            return failed("x-amz-copy-source-if-modified-since");
        }
    }
    Ok(())
}

fn whole_seconds(t: std::time::SystemTime) -> std::time::SystemTime {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

/// What a copy produced: the new data and its digests.
struct Copied {
    data: WrittenData,
    md5_hex: String,
    checksum: (ChecksumAlgorithm, String),
}

/// Where a copy reads from and writes to, with the customer keys of each (SSE-C).
struct CopyJob {
    source: ObjectRecord,
    source_key: Option<RequestKey>,
    range: ByteRange,
    target: BucketRecord,
    write_target: WriteTarget,
    target_key: Option<RequestKey>,
    algorithm: ChecksumAlgorithm,
}

/// Streams `job.range` of its source into a new data file of the target's tenant. A part
/// whose customer key does not fit its upload gets the error AWS gives UploadPartCopy.
async fn copy_data(
    store: Arc<Store>,
    scope: Arc<TenantScope>,
    job: CopyJob,
) -> Result<Copied, S3Error> {
    let CopyJob {
        source,
        source_key,
        range,
        target,
        write_target,
        target_key,
        algorithm,
    } = job;
    let mut reader = {
        let (store, scope) = (store.clone(), scope.clone());
        blocking(move || store.object_reader(&scope, &source, source_key.as_deref())).await?
    };
    let mut writer = {
        let (store, scope) = (store.clone(), scope.clone());
        blocking(move || {
            Ok(store.data_writer(&scope, &target, write_target, target_key.as_deref()))
        })
        .await?
        .map_err(upload_key_error)?
    };
    blocking(move || {
        let mut md5 = Md5::new();
        let mut hasher: ChecksumHasher = algorithm.hasher();
        let mut failure = None;
        reader.read_range(range.start, range.end, COPY_CHUNK, &mut |chunk| {
            md5.update(&chunk);
            hasher.update(&chunk);
            match writer.write(&chunk) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        let data = writer.finish()?;
        Ok(Copied {
            data,
            md5_hex: hex::encode(md5.finalize()),
            checksum: (algorithm, hasher.finalize_base64()),
        })
    })
    .await
}

/// The source object, checked against its customer key (an SSE-C source needs its key, any
/// other refuses one) and the copy-source conditions.
async fn source_object(
    ctx: &RequestContext,
    source: &CopySource,
    source_key: Option<RequestKey>,
) -> Result<ObjectRecord, S3Error> {
    let object = readable_object(ctx, &source.bucket, &source.key, source_key).await?;
    check_source_conditions(&ctx.headers, &object)?;
    Ok(object)
}

/// The checksum algorithm of the copy: the one asked for, else the source's full-object
/// one, else CRC64NVME.
fn copy_algorithm(
    headers: &HeaderMap,
    source: &ObjectRecord,
) -> Result<ChecksumAlgorithm, S3Error> {
    if let Some(name) = headers
        .get("x-amz-checksum-algorithm")
        .and_then(|v| v.to_str().ok())
    {
        return ChecksumAlgorithm::from_name(name).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                format!("Checksum algorithm provided is unsupported: {name}"),
            )
        });
    }
    let full_object = source.meta.checksum_type.as_deref() == Some("FULL_OBJECT");
    Ok(source
        .meta
        .checksums
        .first()
        .filter(|_| full_object)
        .and_then(|(name, _)| ChecksumAlgorithm::from_name(name))
        .unwrap_or(ChecksumAlgorithm::Crc64Nvme))
}

pub async fn copy_object(
    ctx: RequestContext,
    bucket: String,
    key: String,
    source: CopySource,
) -> Result<Response<Body>, S3Error> {
    check_acl_headers(&ctx.headers)?;
    let target_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    let source_key = server_side_encryption::copy_source_customer_key(&ctx.headers, &ctx.query)?;
    server_side_encryption::check_requested(&ctx.headers)?;
    let replace = match ctx
        .headers
        .get("x-amz-metadata-directive")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Unknown metadata directive: {other}"),
            ))
        }
    };
    // Naming an encryption (even the same one) changes the object's encryption attributes.
    let encryption_named =
        target_key.is_some() || source_key.is_some() || ctx.headers.contains_key(SSE_HEADER);
    if !replace && !encryption_named && source.bucket == bucket && source.key == key {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata, storage class, website redirect location \
             or encryption attributes.",
        ));
    }
    // A source overwritten between being read and the copy's commit is read again.
    for _ in 0..SHARE_ATTEMPTS {
        let source_object = source_object(&ctx, &source, source_key.clone()).await?;
        if source_object.meta.size > MAX_COPY_BYTES {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "The specified copy source is larger than the maximum allowable size for a \
                 copy source: 5368709120",
            ));
        }
        let target = bucket_record(&ctx, &bucket).await?;
        let mut meta: ObjectMeta = if replace {
            meta_from_request(&ctx.headers)?
        } else {
            source_object.meta.clone()
        };
        meta.tags = tagging::for_copy(&ctx.headers, &source_object.meta.tags)?;
        let algorithm = copy_algorithm(&ctx.headers, &source_object)?;
        let keeps_data_key = {
            let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
            let (checked, key) = (source_object.clone(), target_key.clone());
            blocking(move || store.copy_keeps_data_key(&scope, &checked, key.as_deref())).await?
        };
        if !keeps_data_key {
            let copy = Reencrypted {
                source: source_object,
                source_key,
                target,
                key,
                target_key,
                meta,
                algorithm,
            };
            return reencrypt_copy(&ctx, copy).await;
        }
        let digests = match carried_digests(&source_object, algorithm, target_key.is_some()) {
            Some(digests) => digests,
            None => {
                let source = source_object.clone();
                hash_source(&ctx, source, source_key.clone(), algorithm).await?
            }
        };
        // An SSE-C copy's ETag is not the MD5 of its data, as on AWS.
        let etag = match &target_key {
            Some(_) => sse_c_etag(),
            None => digests.md5_hex.clone(),
        };
        meta.etag = etag;
        meta.checksums = vec![(algorithm.name().to_owned(), digests.checksum.clone())];
        meta.checksum_type = Some("FULL_OBJECT".to_owned());
        let (store, scope, object_key) = (ctx.store.clone(), ctx.scope.clone(), key.clone());
        let customer_key = target_key.clone();
        let copied = blocking(move || {
            store.copy_object(
                &scope,
                &source_object,
                &target,
                &object_key,
                meta,
                customer_key.as_deref(),
            )
        })
        .await?;
        if let Some(object) = copied {
            return Ok(copy_result(&object, algorithm, target_key.as_deref()));
        }
    }
    Err(S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "The copy source kept changing during the copy; please try again.",
    ))
}

/// Copies that share their source's data retry at most this many times when the source
/// changes under them.
const SHARE_ATTEMPTS: usize = 3;

/// The MD5 (for the ETag) and the checksum of a copy's data.
struct Digests {
    /// Empty when the copy's ETag does not need it (SSE-C).
    md5_hex: String,
    checksum: String,
}

/// The digests a copy that shares its source's data can take over without reading it: the
/// source's full-object checksum in `algorithm`, and unless the copy is SSE-C, the source's
/// ETag when it is the MD5 of its data. A multipart source's ETag is not: AWS gives the copy
/// (a single-part object, whose parts are not listed) the MD5 of its data.
fn carried_digests(
    source: &ObjectRecord,
    algorithm: ChecksumAlgorithm,
    sse_c: bool,
) -> Option<Digests> {
    let full_object = source.meta.checksum_type.as_deref() == Some("FULL_OBJECT");
    let checksum = source
        .meta
        .checksums
        .iter()
        .find(|(name, _)| full_object && name == algorithm.name())?
        .1
        .clone();
    let md5_hex = if sse_c {
        String::new()
    } else if source.is_sse_c() || source.is_multipart() {
        return None;
    } else {
        source.meta.etag.clone()
    };
    Some(Digests { md5_hex, checksum })
}

/// Reads (decrypts) the source to compute the digests the copy cannot take over; nothing is
/// written.
async fn hash_source(
    ctx: &RequestContext,
    source: ObjectRecord,
    source_key: Option<RequestKey>,
    algorithm: ChecksumAlgorithm,
) -> Result<Digests, S3Error> {
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    blocking(move || {
        let mut reader = store.object_reader(&scope, &source, source_key.as_deref())?;
        let mut md5 = Md5::new();
        let mut hasher: ChecksumHasher = algorithm.hasher();
        reader.read_range(0, source.meta.size, COPY_CHUNK, &mut |chunk| {
            md5.update(&chunk);
            hasher.update(&chunk);
            true
        })?;
        Ok(Digests {
            md5_hex: hex::encode(md5.finalize()),
            checksum: hasher.finalize_base64(),
        })
    })
    .await
}

/// A copy that changes its data key: its data is read and sealed anew.
struct Reencrypted {
    source: ObjectRecord,
    source_key: Option<RequestKey>,
    target: BucketRecord,
    key: String,
    target_key: Option<RequestKey>,
    meta: ObjectMeta,
    algorithm: ChecksumAlgorithm,
}

async fn reencrypt_copy(
    ctx: &RequestContext,
    copy: Reencrypted,
) -> Result<Response<Body>, S3Error> {
    let Reencrypted {
        source,
        source_key,
        target,
        key,
        target_key,
        mut meta,
        algorithm,
    } = copy;
    let range = ByteRange {
        start: 0,
        end: source.meta.size,
    };
    let job = CopyJob {
        source,
        source_key,
        range,
        target: target.clone(),
        write_target: WriteTarget::Object,
        target_key: target_key.clone(),
        algorithm,
    };
    let copied = copy_data(ctx.store.clone(), ctx.scope.clone(), job).await?;
    // An SSE-C copy's ETag is not the MD5 of its data, as on AWS.
    let etag = match &target_key {
        Some(_) => sse_c_etag(),
        None => copied.md5_hex.clone(),
    };
    meta.size = copied.data.size();
    meta.etag = etag;
    meta.checksums = vec![(algorithm.name().to_owned(), copied.checksum.1.clone())];
    meta.checksum_type = Some("FULL_OBJECT".to_owned());
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    let data = copied.data;
    let object = blocking(move || store.put_object(&scope, &target, &key, meta, data)).await?;
    Ok(copy_result(&object, algorithm, target_key.as_deref()))
}

/// The CopyObject response for the stored copy.
fn copy_result(
    object: &ObjectRecord,
    algorithm: ChecksumAlgorithm,
    target_key: Option<&coffre_crypto::CustomerKey>,
) -> Response<Body> {
    let checksum = object
        .meta
        .checksums
        .first()
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let mut w = XmlWriter::new();
    w.open_root("CopyObjectResult");
    w.element("LastModified", &iso8601(object.last_modified));
    w.element("ETag", &format!("\"{}\"", object.meta.etag));
    w.element(checksum_element(algorithm), checksum);
    w.element("ChecksumType", "FULL_OBJECT");
    w.close("CopyObjectResult");
    let mut response = xml_response(w.finish());
    mark_stored(response.headers_mut(), target_key);
    response
}

/// `x-amz-copy-source-range: bytes=a-b`, which must lie inside the source.
fn copy_range(headers: &HeaderMap, size: u64) -> Result<ByteRange, S3Error> {
    let Some(value) = headers.get("x-amz-copy-source-range") else {
        return Ok(ByteRange {
            start: 0,
            end: size,
        });
    };
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("Range specified is not valid for source object of size: {size}"),
        )
    };
    let spec = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .ok_or_else(invalid)?;
    let (first, last) = spec.split_once('-').ok_or_else(invalid)?;
    let first: u64 = first.trim().parse().map_err(|_| invalid())?;
    let last: u64 = last.trim().parse().map_err(|_| invalid())?;
    if first > last || last >= size {
        return Err(invalid());
    }
    Ok(ByteRange {
        start: first,
        end: last + 1,
    })
}

pub async fn upload_part_copy(
    ctx: RequestContext,
    bucket: String,
    key: String,
    upload_id: String,
    part_number: u32,
    source: CopySource,
) -> Result<Response<Body>, S3Error> {
    let target_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    let source_key = server_side_encryption::copy_source_customer_key(&ctx.headers, &ctx.query)?;
    let source_object = source_object(&ctx, &source, source_key.clone()).await?;
    let range = copy_range(&ctx.headers, source_object.meta.size)?;
    if range.len() > MAX_COPY_BYTES {
        return Err(S3Error::new(S3ErrorCode::EntityTooLarge));
    }
    let target = bucket_record(&ctx, &bucket).await?;
    let upload = UploadAddress::new(key, &upload_id)?;
    {
        // Before any source byte is read.
        let (store, scope, record) = (ctx.store.clone(), ctx.scope.clone(), target.clone());
        let upload = upload.clone();
        blocking(move || store.upload(&scope, &record, &upload)).await?;
    }
    let algorithm = ChecksumAlgorithm::Crc64Nvme;
    let job = CopyJob {
        source: source_object,
        source_key,
        range,
        target: target.clone(),
        write_target: WriteTarget::Part {
            upload: upload.clone(),
            part_number,
        },
        target_key: target_key.clone(),
        algorithm,
    };
    let copied = copy_data(ctx.store.clone(), ctx.scope.clone(), job).await?;
    // The part is sealed under the upload's customer key if it has one (the writer checked
    // it): its ETag is then not the MD5 of its data, as on AWS.
    let etag = match &target_key {
        Some(_) => sse_c_etag(),
        None => copied.md5_hex.clone(),
    };
    let part = PartInfo {
        etag: etag.clone(),
        size: copied.data.size(),
        checksums: vec![(algorithm.name().to_owned(), copied.checksum.1.clone())],
    };
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    let data = copied.data;
    blocking(move || store.put_part(&scope, &target, &upload, part_number, part, data)).await?;

    let mut w = XmlWriter::new();
    w.open_root("CopyPartResult");
    w.element("LastModified", &iso8601(std::time::SystemTime::now()));
    w.element("ETag", &format!("\"{etag}\""));
    w.close("CopyPartResult");
    let mut response = xml_response(w.finish());
    if let Ok(v) = HeaderValue::from_str(&format!("\"{etag}\"")) {
        response.headers_mut().insert(http::header::ETAG, v);
    }
    mark_stored(response.headers_mut(), target_key.as_deref());
    Ok(response)
}

pub fn checksum_element(alg: ChecksumAlgorithm) -> &'static str {
    match alg {
        ChecksumAlgorithm::Crc32 => "ChecksumCRC32",
        ChecksumAlgorithm::Crc32c => "ChecksumCRC32C",
        ChecksumAlgorithm::Crc64Nvme => "ChecksumCRC64NVME",
        ChecksumAlgorithm::Sha1 => "ChecksumSHA1",
        ChecksumAlgorithm::Sha256 => "ChecksumSHA256",
    }
}
