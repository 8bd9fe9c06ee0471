//! CopyObject and UploadPartCopy within a tenant: same and other bucket, metadata directives,
//! copy onto itself, `x-amz-copy-source-if-*`, missing sources, multipart sources, encoded
//! source keys, `x-amz-copy-source-range`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::operation::copy_object::builders::CopyObjectFluentBuilder;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::MetadataDirective;
use aws_sdk_s3::Client;
use coffre_conformance::{
    completed_parts, create_upload, get_bytes, http_date, md5_hex, multipart_etag,
    multipart_object, pseudo_random_bytes, put_bytes, s3_xml, sdk_error, simple_etag, uri_encode,
    TestServer,
};
use http::Method;

const MIB: usize = 1024 * 1024;
const SRC: &str = "copy-src";
const DST: &str = "copy-dst";

/// The `x-amz-copy-source` value for `bucket/key`, URL-encoded as AWS requires.
fn source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{}", uri_encode(key, true))
}

fn copy(
    s3: &Client,
    src_bucket: &str,
    src_key: &str,
    bucket: &str,
    key: &str,
) -> CopyObjectFluentBuilder {
    s3.copy_object()
        .copy_source(source(src_bucket, src_key))
        .bucket(bucket)
        .key(key)
}

#[tokio::test]
async fn copy_within_and_across_buckets() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    // Around the inline threshold and across several data segments.
    for (i, size) in [0usize, 1, 65_536, 65_537, 3 * MIB + 5]
        .into_iter()
        .enumerate()
    {
        let data = pseudo_random_bytes(size, 100 + i as u64);
        let key = format!("src-{size}");
        put_bytes(&s3, SRC, &key, &data).await;

        for (bucket, dst_key) in [
            (SRC, format!("same-bucket-{size}")),
            (DST, format!("other-{size}")),
        ] {
            let out = copy(&s3, SRC, &key, bucket, &dst_key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("copy {key} -> {bucket}/{dst_key}: {e:?}"));
            let result = out.copy_object_result().expect("CopyObjectResult");
            assert_eq!(
                result.e_tag(),
                Some(simple_etag(&data).as_str()),
                "the copy's ETag is the MD5 of its bytes ({size} bytes)"
            );
            assert!(result.last_modified().is_some());
            assert!(
                get_bytes(&s3, bucket, &dst_key).await == data,
                "copy of {size} bytes"
            );
            let head = s3
                .head_object()
                .bucket(bucket)
                .key(&dst_key)
                .send()
                .await
                .unwrap();
            assert_eq!(head.content_length(), Some(size as i64));
            assert_eq!(head.e_tag(), Some(simple_etag(&data).as_str()));
        }
    }

    // The raw response: 200 with a CopyObjectResult body, ETag quoted.
    let data = b"raw copy".to_vec();
    put_bytes(&s3, SRC, "raw", &data).await;
    let response = server
        .request(Method::PUT, &format!("/{DST}/raw-copy"))
        .header("x-amz-copy-source", &format!("/{SRC}/raw"))
        .send()
        .await;
    response.assert_status(200);
    let body = response.text();
    assert_eq!(
        s3_xml::sections(&body, "CopyObjectResult").len(),
        1,
        "{body}"
    );
    assert_eq!(
        s3_xml::first(&body, "ETag"),
        Some(format!("\"{}\"", md5_hex(&data))),
        "{body}"
    );
    assert!(
        s3_xml::first(&body, "LastModified").is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    assert_eq!(get_bytes(&s3, DST, "raw-copy").await, data);

    // The source is untouched and independent of the copy.
    put_bytes(&s3, SRC, "raw", b"changed").await;
    assert_eq!(get_bytes(&s3, DST, "raw-copy").await, data);
}

#[tokio::test]
async fn copy_overwrites_an_existing_destination() {
    let (_server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    put_bytes(&s3, DST, "target", &pseudo_random_bytes(200_000, 1)).await;
    let data = pseudo_random_bytes(1234, 2);
    put_bytes(&s3, SRC, "k", &data).await;
    copy(&s3, SRC, "k", DST, "target").send().await.unwrap();
    assert_eq!(get_bytes(&s3, DST, "target").await, data);
    let listed = s3.list_objects_v2().bucket(DST).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
    assert_eq!(listed.contents()[0].size(), Some(1234));
}

async fn put_with_headers(s3: &Client, key: &str) {
    s3.put_object()
        .bucket(SRC)
        .key(key)
        .body(ByteStream::from_static(b"<p>doc</p>"))
        .content_type("text/html")
        .content_encoding("identity")
        .content_disposition("attachment; filename=\"doc.html\"")
        .content_language("fr-FR")
        .cache_control("max-age=60")
        .expires(DateTime::from_secs(4_102_444_800))
        .metadata("color", "blue")
        .metadata("shape", "round")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn metadata_directive_copy_keeps_the_source_headers() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    put_with_headers(&s3, "doc").await;

    // Default (no directive), explicit COPY, and COPY with new values in the request, which
    // S3 ignores.
    copy(&s3, SRC, "doc", DST, "default").send().await.unwrap();
    copy(&s3, SRC, "doc", DST, "explicit")
        .metadata_directive(MetadataDirective::Copy)
        .send()
        .await
        .unwrap();
    copy(&s3, SRC, "doc", DST, "ignored")
        .metadata_directive(MetadataDirective::Copy)
        .content_type("application/json")
        .cache_control("no-store")
        .metadata("color", "red")
        .send()
        .await
        .unwrap();

    for key in ["default", "explicit", "ignored"] {
        let head = server
            .request(Method::HEAD, &format!("/{DST}/{key}"))
            .send()
            .await;
        head.assert_status(200);
        assert_eq!(head.header("content-type"), Some("text/html"), "{key}");
        assert_eq!(head.header("content-encoding"), Some("identity"), "{key}");
        assert_eq!(
            head.header("content-disposition"),
            Some("attachment; filename=\"doc.html\""),
            "{key}"
        );
        assert_eq!(head.header("content-language"), Some("fr-FR"), "{key}");
        assert_eq!(head.header("cache-control"), Some("max-age=60"), "{key}");
        assert_eq!(
            head.header("expires"),
            Some("Fri, 01 Jan 2100 00:00:00 GMT"),
            "{key}"
        );
        assert_eq!(head.header("x-amz-meta-color"), Some("blue"), "{key}");
        assert_eq!(head.header("x-amz-meta-shape"), Some("round"), "{key}");
        assert_eq!(
            head.header("etag"),
            Some(simple_etag(b"<p>doc</p>").as_str())
        );
    }
}

#[tokio::test]
async fn metadata_directive_replace_sets_new_headers() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    put_with_headers(&s3, "doc").await;
    copy(&s3, SRC, "doc", DST, "replaced")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/json")
        .cache_control("no-store")
        .metadata("color", "red")
        .send()
        .await
        .unwrap();

    let head = s3
        .head_object()
        .bucket(DST)
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(head.cache_control(), Some("no-store"));
    assert_eq!(
        head.content_encoding(),
        None,
        "REPLACE drops the old headers"
    );
    assert_eq!(head.content_disposition(), None);
    assert_eq!(head.content_language(), None);
    assert_eq!(head.expires_string(), None);
    let metadata = head.metadata().cloned().unwrap_or_default();
    assert_eq!(metadata.len(), 1, "only the new metadata: {metadata:?}");
    assert_eq!(metadata.get("color").map(String::as_str), Some("red"));
    assert_eq!(get_bytes(&s3, DST, "replaced").await, b"<p>doc</p>");

    // The source keeps its own.
    let source = s3
        .head_object()
        .bucket(SRC)
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(source.content_type(), Some("text/html"));
    assert_eq!(source.metadata().map(|m| m.len()), Some(2));

    let response = server
        .request(Method::PUT, &format!("/{DST}/bad-directive"))
        .header("x-amz-copy-source", &format!("{SRC}/doc"))
        .header("x-amz-metadata-directive", "MERGE")
        .send()
        .await;
    response.assert_error(400, "InvalidArgument");
}

#[tokio::test]
async fn copy_onto_itself_needs_replace() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    put_with_headers(&s3, "self").await;

    for directive in [None, Some(MetadataDirective::Copy)] {
        let err = copy(&s3, SRC, "self", SRC, "self")
            .set_metadata_directive(directive.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            sdk_error(&err),
            (400, "InvalidRequest".to_string()),
            "self-copy with directive {directive:?}"
        );
    }
    let response = server
        .request(Method::PUT, &format!("/{SRC}/self"))
        .header("x-amz-copy-source", &format!("{SRC}/self"))
        .send()
        .await;
    response.assert_error(400, "InvalidRequest");

    let before = s3
        .head_object()
        .bucket(SRC)
        .key("self")
        .send()
        .await
        .unwrap();
    let out = copy(&s3, SRC, "self", SRC, "self")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .metadata("state", "replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.copy_object_result().and_then(|r| r.e_tag()),
        Some(simple_etag(b"<p>doc</p>").as_str())
    );
    let after = s3
        .head_object()
        .bucket(SRC)
        .key("self")
        .send()
        .await
        .unwrap();
    assert_eq!(after.content_type(), Some("text/plain"));
    let metadata = after.metadata().cloned().unwrap_or_default();
    assert_eq!(metadata.len(), 1, "{metadata:?}");
    assert_eq!(metadata.get("state").map(String::as_str), Some("replaced"));
    assert_eq!(after.e_tag(), before.e_tag());
    assert_eq!(get_bytes(&s3, SRC, "self").await, b"<p>doc</p>");
}

#[tokio::test]
async fn copy_source_conditions() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    let etag = put_bytes(&s3, SRC, "c", b"conditional").await;
    let modified = s3
        .head_object()
        .bucket(SRC)
        .key("c")
        .send()
        .await
        .unwrap()
        .last_modified()
        .unwrap()
        .secs();
    let before = http_date(modified - 3600);
    let at = http_date(modified);
    let other = "\"00000000000000000000000000000000\"";

    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("x-amz-copy-source-if-match", etag.as_str())], 200),
        (vec![("x-amz-copy-source-if-match", other)], 412),
        (
            vec![("x-amz-copy-source-if-none-match", etag.as_str())],
            412,
        ),
        (vec![("x-amz-copy-source-if-none-match", other)], 200),
        (vec![("x-amz-copy-source-if-modified-since", &before)], 200),
        (vec![("x-amz-copy-source-if-modified-since", &at)], 412),
        (
            vec![("x-amz-copy-source-if-unmodified-since", &before)],
            412,
        ),
        (vec![("x-amz-copy-source-if-unmodified-since", &at)], 200),
        // AWS: if-match true and if-unmodified-since false -> the copy is made.
        (
            vec![
                ("x-amz-copy-source-if-match", etag.as_str()),
                ("x-amz-copy-source-if-unmodified-since", &before),
            ],
            200,
        ),
        // AWS: if-none-match false and if-modified-since true -> 412.
        (
            vec![
                ("x-amz-copy-source-if-none-match", etag.as_str()),
                ("x-amz-copy-source-if-modified-since", &before),
            ],
            412,
        ),
    ];
    for (i, (headers, expected)) in cases.iter().enumerate() {
        let dst = format!("dst-{i}");
        let mut request = server
            .request(Method::PUT, &format!("/{DST}/{dst}"))
            .header("x-amz-copy-source", &format!("{SRC}/c"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await;
        if *expected == 200 {
            response.assert_status(200);
            assert_eq!(
                get_bytes(&s3, DST, &dst).await,
                b"conditional",
                "{headers:?}"
            );
        } else {
            response.assert_error(412, "PreconditionFailed");
            let err = s3
                .head_object()
                .bucket(DST)
                .key(&dst)
                .send()
                .await
                .unwrap_err();
            assert_eq!(
                sdk_error(&err).0,
                404,
                "a failed condition copies nothing: {headers:?}"
            );
        }
    }

    // The same through the SDK.
    let err = copy(&s3, SRC, "c", DST, "sdk")
        .copy_source_if_match(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (412, "PreconditionFailed".to_string()));
    let err = copy(&s3, SRC, "c", DST, "sdk")
        .copy_source_if_unmodified_since(DateTime::from_secs(modified - 3600))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (412, "PreconditionFailed".to_string()));
    copy(&s3, SRC, "c", DST, "sdk")
        .copy_source_if_none_match(other)
        .copy_source_if_modified_since(DateTime::from_secs(modified - 3600))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_sources_and_destinations() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    put_bytes(&s3, SRC, "present", b"x").await;

    let err = copy(&s3, SRC, "absent", DST, "d").send().await.unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
    let err = copy(&s3, "no-such-bucket", "present", DST, "d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
    let err = copy(&s3, SRC, "present", "no-such-bucket", "d")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));

    let response = server
        .request(Method::PUT, &format!("/{DST}/d"))
        .header("x-amz-copy-source", &format!("{SRC}/absent"))
        .send()
        .await;
    response.assert_error(404, "NoSuchKey");

    let listed = s3.list_objects_v2().bucket(DST).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0), "failed copies create nothing");
}

#[tokio::test]
async fn copy_source_keys_are_url_decoded() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    let keys = [
        "with space",
        "unicode/éèà/日本語/🎉",
        "plus+sign",
        "percent%20literal",
        "query?and=amp&hash#frag",
    ];
    for (i, key) in keys.iter().enumerate() {
        let data = format!("body of {key}");
        put_bytes(&s3, SRC, key, data.as_bytes()).await;
        let dst = format!("copy-{i}");
        copy(&s3, SRC, key, DST, &dst)
            .send()
            .await
            .unwrap_or_else(|e| panic!("copy {key:?}: {e:?}"));
        assert_eq!(get_bytes(&s3, DST, &dst).await, data.as_bytes(), "{key:?}");
    }

    // A leading slash is allowed, and a destination key with the same characters works.
    let response = server
        .request(Method::PUT, &format!("/{DST}/dest é 1"))
        .header(
            "x-amz-copy-source",
            &format!("/{SRC}/{}", uri_encode("with space", true)),
        )
        .send()
        .await;
    response.assert_status(200);
    assert_eq!(get_bytes(&s3, DST, "dest é 1").await, b"body of with space");
}

#[tokio::test]
async fn copy_of_a_multipart_object_has_identical_bytes() {
    let (_server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    let parts = vec![
        pseudo_random_bytes(5 * MIB, 7),
        pseudo_random_bytes(333_333, 8),
    ];
    let done = multipart_object(&s3, SRC, "mpu", &parts, None).await;
    assert_eq!(done.e_tag(), Some(multipart_etag(&parts).as_str()));

    let out = copy(&s3, SRC, "mpu", DST, "mpu-copy").send().await.unwrap();
    let copy_etag = out
        .copy_object_result()
        .and_then(|r| r.e_tag())
        .expect("CopyObjectResult ETag")
        .to_string();
    let whole = parts.concat();
    assert!(
        get_bytes(&s3, DST, "mpu-copy").await == whole,
        "the copy has the source's bytes"
    );
    let head = s3
        .head_object()
        .bucket(DST)
        .key("mpu-copy")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(whole.len() as i64));
    assert_eq!(
        head.e_tag(),
        Some(copy_etag.as_str()),
        "HEAD shows the ETag CopyObject returned"
    );
}

#[tokio::test]
async fn upload_part_copy_with_and_without_ranges() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    let big = pseudo_random_bytes(6 * MIB + 17, 31);
    // Every part but the last must be at least 5 MiB, copied or not.
    let small = pseudo_random_bytes(5 * MIB + 3, 32);
    put_bytes(&s3, SRC, "big", &big).await;
    put_bytes(&s3, SRC, "second key é", &small).await;

    let upload_id = create_upload(&s3, DST, "assembled").await;
    // Part 1: the first 5 MiB of `big`.
    let part1 = s3
        .upload_part_copy()
        .bucket(DST)
        .key("assembled")
        .upload_id(&upload_id)
        .part_number(1)
        .copy_source(source(SRC, "big"))
        .copy_source_range(format!("bytes=0-{}", 5 * MIB - 1))
        .send()
        .await
        .unwrap();
    let result1 = part1.copy_part_result().expect("CopyPartResult");
    let expected1 = &big[..5 * MIB];
    assert_eq!(result1.e_tag(), Some(simple_etag(expected1).as_str()));
    assert!(result1.last_modified().is_some());

    // Part 2: the whole of another object (no range), through an encoded key.
    let part2 = s3
        .upload_part_copy()
        .bucket(DST)
        .key("assembled")
        .upload_id(&upload_id)
        .part_number(2)
        .copy_source(source(SRC, "second key é"))
        .send()
        .await
        .unwrap();
    let etag2 = part2
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_string();
    assert_eq!(etag2, simple_etag(&small));

    // Part 3: a middle range of `big`, by a raw request (the response body is CopyPartResult).
    let (first, last) = (1_000_000usize, 1_000_999usize);
    let response = server
        .request(Method::PUT, &format!("/{DST}/assembled"))
        .query("partNumber", "3")
        .query("uploadId", &upload_id)
        .header("x-amz-copy-source", &format!("{SRC}/big"))
        .header("x-amz-copy-source-range", &format!("bytes={first}-{last}"))
        .send()
        .await;
    response.assert_status(200);
    let body = response.text();
    assert_eq!(s3_xml::sections(&body, "CopyPartResult").len(), 1, "{body}");
    let expected3 = &big[first..=last];
    assert_eq!(
        s3_xml::first(&body, "ETag"),
        Some(simple_etag(expected3)),
        "{body}"
    );

    let parts = s3
        .list_parts()
        .bucket(DST)
        .key("assembled")
        .upload_id(&upload_id)
        .send()
        .await
        .unwrap();
    let sizes: Vec<_> = parts.parts().iter().map(|p| p.size()).collect();
    assert_eq!(
        sizes,
        [Some(5 * MIB as i64), Some(small.len() as i64), Some(1000)]
    );

    let done = s3
        .complete_multipart_upload()
        .bucket(DST)
        .key("assembled")
        .upload_id(&upload_id)
        .multipart_upload(completed_parts(&[
            (1, result1.e_tag().unwrap()),
            (2, &etag2),
            (3, &simple_etag(expected3)),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[expected1, &small[..], expected3]).as_str())
    );
    let whole = [expected1, &small[..], expected3].concat();
    assert!(
        get_bytes(&s3, DST, "assembled").await == whole,
        "the parts concatenated"
    );
}

#[tokio::test]
async fn upload_part_copy_errors() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    let data = pseudo_random_bytes(1000, 41);
    let etag = put_bytes(&s3, SRC, "src", &data).await;
    let upload_id = create_upload(&s3, DST, "k").await;

    let part_copy = |range: Option<&str>| {
        let mut request = server
            .request(Method::PUT, &format!("/{DST}/k"))
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .header("x-amz-copy-source", &format!("{SRC}/src"));
        if let Some(range) = range {
            request = request.header("x-amz-copy-source-range", range);
        }
        request
    };

    // Ranges past the end, reversed, suffix or open-ended, or not byte ranges at all.
    for range in [
        "bytes=0-1000",
        "bytes=1000-1000",
        "bytes=500-100",
        "bytes=-100",
        "bytes=100-",
        "bytes=abc",
        "lines=0-1",
    ] {
        let response = part_copy(Some(range)).send().await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (400, Some("InvalidArgument")),
            "x-amz-copy-source-range: {range}: {}",
            response.text()
        );
    }
    // The last valid byte is fine.
    let response = part_copy(Some("bytes=999-999")).send().await;
    response.assert_status(200);
    assert_eq!(
        s3_xml::first(&response.text(), "ETag"),
        Some(simple_etag(&data[999..]))
    );

    // Source conditions apply to UploadPartCopy too.
    let response = part_copy(None)
        .header(
            "x-amz-copy-source-if-match",
            "\"00000000000000000000000000000000\"",
        )
        .send()
        .await;
    response.assert_error(412, "PreconditionFailed");
    let response = part_copy(None)
        .header("x-amz-copy-source-if-none-match", &etag)
        .send()
        .await;
    response.assert_error(412, "PreconditionFailed");

    // Missing source, missing upload.
    let err = s3
        .upload_part_copy()
        .bucket(DST)
        .key("k")
        .upload_id(&upload_id)
        .part_number(1)
        .copy_source(source(SRC, "absent"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
    let err = s3
        .upload_part_copy()
        .bucket(DST)
        .key("k")
        .upload_id("bm90LWFuLXVwbG9hZA")
        .part_number(1)
        .copy_source(source(SRC, "src"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchUpload".to_string()));
}

#[tokio::test]
async fn a_copy_source_without_a_key_is_invalid_argument() {
    let (server, s3) = TestServer::start_with_buckets(&[SRC, DST]).await;
    put_bytes(&s3, SRC, "k", b"x").await;
    for value in [SRC.to_string(), format!("{SRC}/"), format!("/{SRC}")] {
        let response = server
            .request(Method::PUT, &format!("/{DST}/d"))
            .header("x-amz-copy-source", &value)
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (400, Some("InvalidArgument")),
            "x-amz-copy-source: {value}: {}",
            response.text()
        );
    }
}

// Issue 5: a whole-object copy that keeps its data key shares its source's data files
// instead of re-encrypting them; a shared file goes with the last object that uses it.

/// Every data file under the server's arrays, with its size (temp files included).
fn data_files(server: &TestServer) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![server.data_dir().join("arrays")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                found.push((entry.path(), meta.len()));
            }
        }
    }
    found.sort();
    found
}

/// A server that collects garbage every second.
async fn start_collecting() -> (TestServer, Client) {
    let server = TestServer::start_with_config("gc_interval_secs = 1\n", &[]);
    let s3 = server.s3_client();
    coffre_conformance::create_buckets(&s3, &[SRC, DST]).await;
    (server, s3)
}

/// Waits (a bounded time, polling) until the data files are `expected`.
async fn await_data_files(server: &TestServer, expected: &[(std::path::PathBuf, u64)]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let files = data_files(server);
        if files == expected {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "data files {files:#?}, expected {expected:#?}"
        );
        // The poll interval of the wait for the files, under the deadline above.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Garbage-collection passes completed so far (`/metrics`), ok and failed.
async fn gc_passes(server: &TestServer) -> (f64, f64) {
    let response = server.admin().send(Method::GET, "/metrics", None).await;
    response.assert_status(200);
    let value = |result: &str| {
        let series = format!("coffre_gc_passes_total{{result=\"{result}\"}}");
        response
            .text
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{}", response.text))
    };
    (value("ok"), value("failed"))
}

/// Waits (polling, under a deadline) until two more collection passes have completed: the
/// second began after this call, so it saw every release committed before it.
async fn let_collections_run(server: &TestServer) {
    let (ok, failed) = gc_passes(server).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = gc_passes(server).await;
        assert_eq!(now.1, failed, "a collection pass failed");
        if now.0 >= ok + 2.0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "two collection passes did not complete in time: {now:?}, from {ok}"
        );
        // The poll interval of the wait for the passes, under the deadline above.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn r5_a_copy_shares_its_source_data_until_both_are_deleted() {
    let (mut server, s3) = start_collecting().await;
    let data = pseudo_random_bytes(6 * MIB + 123, 55);
    put_bytes(&s3, SRC, "big", &data).await;
    let files = data_files(&server);
    assert_eq!(files.len(), 1, "one data file: {files:#?}");

    let out = copy(&s3, SRC, "big", DST, "big-copy").send().await.unwrap();
    let result = out.copy_object_result().unwrap();
    assert_eq!(result.e_tag(), Some(simple_etag(&data).as_str()));
    assert_eq!(
        result.checksum_type(),
        Some(&aws_sdk_s3::types::ChecksumType::FullObject)
    );
    copy(&s3, SRC, "big", SRC, "big-copy-2")
        .send()
        .await
        .unwrap();
    assert_eq!(data_files(&server), files, "the copies wrote no data");
    assert!(get_bytes(&s3, DST, "big-copy").await == data);

    server.restart();
    let s3 = server.s3_client();
    s3.delete_object()
        .bucket(SRC)
        .key("big")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(SRC)
        .key("big-copy-2")
        .send()
        .await
        .unwrap();
    let_collections_run(&server).await;
    assert_eq!(data_files(&server), files, "the copy still uses the file");
    assert!(get_bytes(&s3, DST, "big-copy").await == data);

    server.restart();
    let s3 = server.s3_client();
    assert!(get_bytes(&s3, DST, "big-copy").await == data);
    s3.delete_object()
        .bucket(DST)
        .key("big-copy")
        .send()
        .await
        .unwrap();
    await_data_files(&server, &[]).await;
}

#[tokio::test]
async fn r5_overwriting_a_copy_or_its_source_keeps_the_other() {
    let (server, s3) = start_collecting().await;
    let data = pseudo_random_bytes(3 * MIB, 56);
    put_bytes(&s3, SRC, "a", &data).await;
    copy(&s3, SRC, "a", DST, "b").send().await.unwrap();
    // Onto itself (a new version sharing its own data) and onto a key sharing the file.
    copy(&s3, SRC, "a", SRC, "a")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/plain")
        .send()
        .await
        .unwrap();
    copy(&s3, DST, "b", DST, "b")
        .metadata_directive(MetadataDirective::Replace)
        .send()
        .await
        .unwrap();
    let files = data_files(&server);
    assert_eq!(files.len(), 1);
    put_bytes(&s3, SRC, "a", b"replaced").await;
    let_collections_run(&server).await;
    assert_eq!(data_files(&server), files);
    assert!(get_bytes(&s3, DST, "b").await == data);
    let replacement = pseudo_random_bytes(2 * MIB, 57);
    put_bytes(&s3, DST, "b", &replacement).await;
    let_collections_run(&server).await;
    let left = data_files(&server);
    assert_eq!(left.len(), 1);
    assert_ne!(left, files, "the shared file went with its last object");
    assert!(get_bytes(&s3, DST, "b").await == replacement);
}

#[tokio::test]
async fn r5_a_copy_of_a_multipart_object_shares_its_parts_and_is_a_single_part_object() {
    let (server, s3) = start_collecting().await;
    let parts = vec![
        pseudo_random_bytes(5 * MIB, 60),
        pseudo_random_bytes(5 * MIB, 61),
        pseudo_random_bytes(1234, 62),
    ];
    multipart_object(&s3, SRC, "mpu", &parts, None).await;
    // The last part is small enough to stay inline in the metadata.
    let files = data_files(&server);
    assert_eq!(files.len(), 2);
    let whole = parts.concat();

    let out = copy(&s3, SRC, "mpu", DST, "copy").send().await.unwrap();
    // As on AWS: the copy of a multipart object is a single-part object whose ETag is the
    // MD5 of its bytes, with a full-object checksum.
    let result = out.copy_object_result().unwrap();
    assert_eq!(result.e_tag(), Some(simple_etag(&whole).as_str()));
    assert_eq!(
        result.checksum_type(),
        Some(&aws_sdk_s3::types::ChecksumType::FullObject)
    );
    assert_eq!(data_files(&server), files, "the copy wrote no data");
    assert!(get_bytes(&s3, DST, "copy").await == whole);

    let part = s3
        .get_object()
        .bucket(DST)
        .key("copy")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(part.parts_count(), None);
    assert_eq!(part.content_length(), Some(whole.len() as i64));
    let attributes = s3
        .get_object_attributes()
        .bucket(DST)
        .key("copy")
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::ObjectParts)
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::Etag)
        .send()
        .await
        .unwrap();
    assert!(attributes.object_parts().is_none());
    assert_eq!(
        attributes.e_tag().map(|e| format!("\"{e}\"")),
        Some(simple_etag(&whole))
    );

    s3.delete_object()
        .bucket(SRC)
        .key("mpu")
        .send()
        .await
        .unwrap();
    let_collections_run(&server).await;
    assert_eq!(data_files(&server), files);
    assert!(get_bytes(&s3, DST, "copy").await == whole);
    s3.delete_object()
        .bucket(DST)
        .key("copy")
        .send()
        .await
        .unwrap();
    await_data_files(&server, &[]).await;
}
