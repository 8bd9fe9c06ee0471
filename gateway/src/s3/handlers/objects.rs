//! PutObject, GetObject, HeadObject, DeleteObject.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use coffre_crypto::{CustomerKey, TenantScope};
use coffre_storage::{BucketRecord, DataLocation, ObjectRecord, Store, WriteTarget};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;

use super::bucket_config::check_acl_headers;
use super::{empty_response, quoted_etag};
use crate::s3::body::{self, Body};
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::object_headers::{meta_from_request, write_response_headers};
use crate::s3::object_stream::ObjectStream;
use crate::s3::payload_digest::PayloadDigest;
use crate::s3::payload_writer::receive_payload_and;
use crate::s3::range::{parse_range, ByteRange};
use crate::s3::server_side_encryption::{self, mark_stored, RequestKey};
use crate::s3::timestamp::http_date;
use crate::s3::{blocking, conditional, RequestContext};

/// The largest single PUT (and part) S3 accepts.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

pub async fn bucket_record(ctx: &RequestContext, bucket: &str) -> Result<BucketRecord, S3Error> {
    let (store, scope, name) = (ctx.store.clone(), ctx.scope.clone(), bucket.to_owned());
    blocking(move || store.bucket(&scope, &name))
        .await
        .map_err(|e| with_bucket(e, bucket))
}

/// Names the bucket in an error, as AWS does (`Resource`, and `BucketName` for bucket errors).
pub fn with_bucket(e: S3Error, bucket: &str) -> S3Error {
    let e = e.resource(format!("/{bucket}"));
    match e.code() {
        S3ErrorCode::NoSuchBucket
        | S3ErrorCode::BucketNotEmpty
        | S3ErrorCode::BucketAlreadyOwnedByYou => e.detail("BucketName", bucket),
        _ => e,
    }
}

/// Below this size a body arrives as fast as an early check would answer: only larger
/// uploads are checked against the byte quota before their body is read.
const EARLY_QUOTA_CHECK_BYTES: u64 = 1 << 20;

/// The bucket, and a writer for a PUT's data, in one hand-off to the blocking pool. A PUT
/// that cannot fit the tenant's byte quota is refused there from its `declared` length,
/// before gigabytes are received for nothing (storage's rule: an overwrite counts only its
/// growth; the commit checks again, exactly).
async fn bucket_and_writer(
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    declared: Option<u64>,
    customer_key: Option<RequestKey>,
) -> Result<(Arc<BucketRecord>, coffre_storage::DataWriter), S3Error> {
    let name = key.to_owned();
    after_bucket_lookup(ctx, bucket, key, move |store, scope, record| {
        if let Some(declared) = declared.filter(|d| *d >= EARLY_QUOTA_CHECK_BYTES) {
            store
                .check_room_for_object(scope, &record, &name, declared)
                .map_err(Missing::Then)?;
        }
        let writer = store
            .data_writer(scope, &record, WriteTarget::Object, customer_key.as_deref())
            .map_err(Missing::Then)?;
        Ok((Arc::new(record), writer))
    })
    .await
}

/// The bucket's lookup, then `then` (given the store, the scope and the bucket) in the same
/// hand-off to the blocking pool; errors name the bucket or `key` as S3 does.
async fn after_bucket_lookup<T: Send + 'static>(
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    then: impl FnOnce(&Store, &TenantScope, BucketRecord) -> Result<T, Missing> + Send + 'static,
) -> Result<T, S3Error> {
    let (store, scope, bucket_name) = (ctx.store.clone(), ctx.scope.clone(), bucket.to_owned());
    tokio::task::spawn_blocking(move || {
        let record = store
            .bucket(&scope, &bucket_name)
            .map_err(Missing::Bucket)?;
        then(&store, &scope, record)
    })
    .await
    .unwrap_or_else(|e| Err(Missing::Task(S3Error::internal(e))))
    .map_err(|missing| missing.error(bucket, key))
}

pub async fn put_object(
    mut ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    // The request's own checks; a missing bucket is answered first, as before them.
    let checked = (|| {
        check_acl_headers(&ctx.headers)?;
        let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
        server_side_encryption::check_requested(&ctx.headers)?;
        let meta = meta_from_request(&ctx.headers)?;
        let digest = PayloadDigest::from_headers(&ctx.headers)?;
        Ok::<_, S3Error>((customer_key, meta, digest))
    })();
    let (customer_key, mut meta, digest) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            bucket_record(&ctx, &bucket).await?;
            return Err(e);
        }
    };
    let declared = ctx.body.declared_length();
    let (record, writer) =
        bucket_and_writer(&ctx, &bucket, &key, declared, customer_key.clone()).await?;
    let sse_c = customer_key.is_some();
    let (store, scope) = (ctx.store.clone(), ctx.scope.clone());
    // The last write, the data's finish and the commit in one hand-off.
    let (etag, digests) =
        receive_payload_and(&mut ctx.body, writer, digest, move |data, digests| {
            let etag = digests.etag(sse_c);
            meta.size = data.size();
            meta.etag = etag.clone();
            let (algorithm, value) = &digests.checksum;
            meta.checksums = vec![(algorithm.name().to_owned(), value.clone())];
            meta.checksum_type = Some("FULL_OBJECT".to_owned());
            store.put_object(&scope, &record, &key, meta, data)?;
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
        headers.insert(
            "x-amz-checksum-type",
            HeaderValue::from_static("FULL_OBJECT"),
        );
    }
    Ok(response)
}

pub async fn object_record(
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
) -> Result<(BucketRecord, ObjectRecord), S3Error> {
    object_lookup(ctx, bucket, key, |_, _, _| Ok(()))
        .await
        .map(|(bucket, object, ())| (bucket, object))
}

/// The bucket and the object, then `then` (given the store, the scope and the object) in
/// the same hand-off to the blocking pool: this is every object request's first step.
async fn object_lookup<T: Send + 'static>(
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    then: impl FnOnce(
            &coffre_storage::Store,
            &coffre_crypto::TenantScope,
            &ObjectRecord,
        ) -> coffre_storage::Result<T>
        + Send
        + 'static,
) -> Result<(BucketRecord, ObjectRecord, T), S3Error> {
    let name = key.to_owned();
    after_bucket_lookup(ctx, bucket, key, move |store, scope, record| {
        let object = store
            .object(scope, &record, &name)
            .map_err(Missing::Object)?;
        let more = then(store, scope, &object).map_err(Missing::Then)?;
        Ok((record, object, more))
    })
    .await
}

/// Which step of a hand-off that starts with the bucket's lookup failed, to name the right
/// resource in the error.
enum Missing {
    Bucket(coffre_storage::Error),
    Object(coffre_storage::Error),
    /// A step after the lookups.
    Then(coffre_storage::Error),
    Task(S3Error),
}

impl Missing {
    fn error(self, bucket: &str, key: &str) -> S3Error {
        match self {
            Missing::Bucket(e) => with_bucket(S3Error::from(e), bucket),
            Missing::Object(e) => match S3Error::from(e) {
                e if e.code() == S3ErrorCode::NoSuchKey => {
                    e.resource(format!("/{bucket}/{key}")).detail("Key", key)
                }
                e => e,
            },
            Missing::Then(e) => S3Error::from(e),
            Missing::Task(e) => e,
        }
    }
}

/// The object, once `customer_key` is checked against it: an SSE-C object needs its key,
/// any other refuses one (the errors AWS gives a GET, HEAD or GetObjectAttributes).
pub async fn readable_object(
    ctx: &RequestContext,
    bucket: &str,
    key: &str,
    customer_key: Option<RequestKey>,
) -> Result<ObjectRecord, S3Error> {
    let (_, object) = object_record(ctx, bucket, key).await?;
    if customer_key.is_none() && !object.is_sse_c() {
        // Nothing to check, and no key material to unwrap: no hand-off.
        return Ok(object);
    }
    let (store, scope, checked) = (ctx.store.clone(), ctx.scope.clone(), object.clone());
    blocking(move || store.check_customer_key(&scope, &checked, customer_key.as_deref())).await?;
    Ok(object)
}

/// Headers shared by GET and HEAD; `customer_key` is the SSE-C object's (checked) key.
fn object_headers(
    ctx: &RequestContext,
    object: &ObjectRecord,
    customer_key: Option<&CustomerKey>,
    out: &mut HeaderMap,
) {
    out.insert(http::header::ETAG, quoted_etag(&object.meta.etag));
    if let Ok(v) = HeaderValue::from_str(&http_date(object.last_modified)) {
        out.insert(http::header::LAST_MODIFIED, v);
    }
    out.insert(
        http::header::ACCEPT_RANGES,
        HeaderValue::from_static("bytes"),
    );
    mark_stored(out, customer_key);
    write_response_headers(&object.meta, &ctx.query, out);
}

/// The byte range a GET or HEAD asks for: the `Range` header or a `partNumber` (never
/// both). `partNumber=1` of an object uploaded in one piece is the whole object.
fn requested_range(
    ctx: &RequestContext,
    object: &ObjectRecord,
    part_number: Option<u32>,
) -> Result<Option<ByteRange>, S3Error> {
    let size = object.meta.size;
    let range_header = header(&ctx.headers, "range");
    let Some(n) = part_number else {
        return parse_range(range_header, size);
    };
    if range_header.is_some() {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter",
        ));
    }
    let index = n as usize - 1;
    if !object.is_multipart() {
        return match index {
            0 if size > 0 => Ok(Some(ByteRange {
                start: 0,
                end: size,
            })),
            0 => Ok(None),
            _ => Err(S3Error::new(S3ErrorCode::InvalidPartNumber)),
        };
    }
    let part = object
        .parts
        .get(index)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidPartNumber))?;
    let start: u64 = object.parts[..index].iter().map(|p| p.size).sum();
    Ok(Some(ByteRange {
        start,
        end: start + part.size,
    }))
}

fn parts_count_header(object: &ObjectRecord, part_number: Option<u32>, out: &mut HeaderMap) {
    if part_number.is_some() && object.is_multipart() {
        out.insert(
            "x-amz-mp-parts-count",
            HeaderValue::from(object.parts.len()),
        );
    }
}

/// Checksums are returned only when asked for, and only for the whole object.
fn checksum_headers(ctx: &RequestContext, object: &ObjectRecord, out: &mut HeaderMap) {
    let enabled = ctx
        .headers
        .get("x-amz-checksum-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"ENABLED"));
    if !enabled {
        return;
    }
    for (name, value) in &object.meta.checksums {
        let header = coffre_crypto::checksum::ChecksumAlgorithm::from_name(name);
        if let (Some(alg), Ok(value)) = (header, HeaderValue::from_str(value)) {
            out.insert(alg.header_name(), value);
        }
    }
    if let Some(kind) = object
        .meta
        .checksum_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        out.insert("x-amz-checksum-type", kind);
    }
}

/// `Some(304)` when the object is not modified (the response still names the ETag and
/// Last-Modified, as RFC 9110 asks); `Err(412)` when a precondition fails.
fn check_conditions(
    ctx: &RequestContext,
    object: &ObjectRecord,
) -> Result<Option<Response<Body>>, S3Error> {
    match conditional::check(&ctx.headers, &object.meta.etag, object.last_modified) {
        Ok(()) => Ok(None),
        Err(e) if e.code() == S3ErrorCode::NotModified => {
            let mut response = empty_response(StatusCode::NOT_MODIFIED);
            let headers = response.headers_mut();
            headers.insert(http::header::ETAG, quoted_etag(&object.meta.etag));
            if let Ok(v) = HeaderValue::from_str(&http_date(object.last_modified)) {
                headers.insert(http::header::LAST_MODIFIED, v);
            }
            Ok(Some(response))
        }
        Err(e) => Err(e),
    }
}

pub async fn head_object(
    ctx: RequestContext,
    bucket: String,
    key: String,
    part_number: Option<u32>,
) -> Result<Response<Body>, S3Error> {
    let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    let object = readable_object(&ctx, &bucket, &key, customer_key.clone()).await?;
    if let Some(response) = check_conditions(&ctx, &object)? {
        return Ok(response);
    }
    let size = object.meta.size;
    let range = requested_range(&ctx, &object, part_number)?;
    let mut response = empty_response(StatusCode::OK);
    let headers = response.headers_mut();
    object_headers(&ctx, &object, customer_key.as_deref(), headers);
    parts_count_header(&object, part_number, headers);
    let length = match range {
        Some(range) => {
            set_range_headers(headers, range, size);
            range.len()
        }
        None => {
            checksum_headers(&ctx, &object, headers);
            size
        }
    };
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
    if range.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(response)
}

pub async fn get_object(
    ctx: RequestContext,
    bucket: String,
    key: String,
    part_number: Option<u32>,
) -> Result<Response<Body>, S3Error> {
    let customer_key = server_side_encryption::customer_key(&ctx.headers, &ctx.query)?;
    // Without a customer key in play, an inline object (at most 64 KiB) is decrypted whole
    // in the lookup's own hand-off: one trip to the blocking pool for a small GET.
    let (object, early) = if customer_key.is_none() {
        let (_, object, inline) = object_lookup(&ctx, &bucket, &key, |store, scope, object| {
            let inline = object
                .parts
                .iter()
                .all(|p| matches!(p.location, DataLocation::Inline(_)));
            if object.is_sse_c() || !inline {
                return Ok(None);
            }
            let reader = store.object_reader(scope, object, None)?;
            Ok(match read_data(reader, 0, object.meta.size)? {
                Data::Inline(whole) => Some(whole),
                Data::Stream(_) => None,
            })
        })
        .await?;
        if object.is_sse_c() {
            // Refused as `readable_object` refuses it.
            readable_object(&ctx, &bucket, &key, None).await?;
        }
        (object, inline)
    } else {
        let object = readable_object(&ctx, &bucket, &key, customer_key.clone()).await?;
        (object, None)
    };
    if let Some(response) = check_conditions(&ctx, &object)? {
        return Ok(response);
    }
    let size = object.meta.size;
    let range = requested_range(&ctx, &object, part_number)?;
    let ByteRange { start, end } = range.unwrap_or(ByteRange {
        start: 0,
        end: size,
    });

    let data = match early {
        Some(whole) => Data::Inline(whole.slice(to_usize(start)..to_usize(end))),
        None => {
            let (store, scope, object) = (ctx.store.clone(), ctx.scope.clone(), object.clone());
            let key = customer_key.clone();
            blocking(move || {
                let reader = store.object_reader(&scope, &object, key.as_deref())?;
                read_data(reader, start, end)
            })
            .await?
        }
    };
    let body = match data {
        _ if start == end => body::empty(),
        Data::Inline(plain) => body::full(plain),
        Data::Stream(reader) => ObjectStream::new(reader, start, end, object.key.clone()).boxed(),
    };

    let mut response = Response::new(body);
    let headers = response.headers_mut();
    object_headers(&ctx, &object, customer_key.as_deref(), headers);
    parts_count_header(&object, part_number, headers);
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(end - start));
    match range {
        Some(range) => {
            set_range_headers(headers, range, size);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        None => checksum_headers(&ctx, &object, headers),
    }
    Ok(response)
}

/// Bytes `start..end` of the object: decrypted now when it is held inline (at most 64 KiB:
/// a damaged value is then an error response rather than a cut connection), else the
/// reader to stream them from.
fn read_data(
    mut reader: coffre_storage::ObjectReader,
    start: u64,
    end: u64,
) -> coffre_storage::Result<Data> {
    if !reader.in_memory() {
        return Ok(Data::Stream(reader));
    }
    let mut plain = BytesMut::with_capacity(to_usize(end - start));
    reader.read_range(start, end, usize::MAX, &mut |chunk| {
        plain.extend_from_slice(&chunk);
        true
    })?;
    Ok(Data::Inline(plain.freeze()))
}

/// A length within an object held in memory.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// An object's bytes for a GET: already decrypted when they were held inline.
enum Data {
    Inline(Bytes),
    Stream(coffre_storage::ObjectReader),
}

fn set_range_headers(headers: &mut HeaderMap, range: ByteRange, size: u64) {
    if let Ok(v) = HeaderValue::from_str(&range.content_range(size)) {
        headers.insert(http::header::CONTENT_RANGE, v);
    }
}

pub async fn delete_object(
    ctx: RequestContext,
    bucket: String,
    key: String,
) -> Result<Response<Body>, S3Error> {
    let name = key.clone();
    // The bucket's lookup and the deletion in one hand-off.
    after_bucket_lookup(&ctx, &bucket, &key, move |store, scope, record| {
        store
            .delete_object(scope, &record, &name)
            .map_err(Missing::Then)
    })
    .await?;
    Ok(empty_response(StatusCode::NO_CONTENT))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
