//! GetObjectAttributes (ETag, ObjectSize, StorageClass, Checksum, ObjectParts) and
//! GetObject/HeadObject with `partNumber`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ObjectAttributes, StorageClass};
use aws_sdk_s3::Client;
use coffre_conformance::{
    crc32_base64, md5_hex, multipart_etag, multipart_object, pseudo_random_bytes, read_body,
    s3_xml, sdk_error, sha256_base64, simple_etag, RawResponse, TestServer,
};
use http::Method;

const MIB: usize = 1024 * 1024;
const BUCKET: &str = "attrs";

/// A multipart object uploaded with CRC32 part checksums.
async fn crc32_multipart_object(s3: &Client, key: &str, parts: &[Vec<u8>]) {
    multipart_object(s3, BUCKET, key, parts, Some(ChecksumAlgorithm::Crc32)).await;
}

fn all_attributes() -> Vec<ObjectAttributes> {
    vec![
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ]
}

#[tokio::test]
async fn attributes_of_a_single_put_object() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let data = pseudo_random_bytes(100_001, 1);
    s3.put_object()
        .bucket(BUCKET)
        .key("single")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();

    let out = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("single")
        .set_object_attributes(Some(all_attributes()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.e_tag(),
        Some(md5_hex(&data).as_str()),
        "ETag without quotes"
    );
    assert_eq!(out.object_size(), Some(data.len() as i64));
    assert_eq!(out.storage_class(), Some(&StorageClass::Standard));
    let checksum = out.checksum().expect("Checksum");
    assert_eq!(
        checksum.checksum_crc32(),
        Some(crc32_base64(&data).as_str())
    );
    assert_eq!(checksum.checksum_sha256(), None);
    if let Some(kind) = checksum.checksum_type() {
        assert_eq!(kind.as_str(), "FULL_OBJECT");
    }
    assert!(
        out.object_parts().is_none(),
        "a single PUT has no ObjectParts"
    );
    assert!(out.last_modified().is_some());

    // Only what was asked for.
    let out = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("single")
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap();
    assert_eq!(out.object_size(), Some(data.len() as i64));
    assert_eq!(out.e_tag(), None);
    assert!(out.checksum().is_none());
    assert_eq!(out.storage_class(), None);

    // On the wire: GET ?attributes, x-amz-object-attributes, a GetObjectAttributesResponse.
    let response = server
        .request(Method::GET, &format!("/{BUCKET}/single"))
        .query_flag("attributes")
        .header("x-amz-object-attributes", "ETag,ObjectSize,StorageClass")
        .send()
        .await;
    response.assert_status(200);
    let body = response.text();
    assert_eq!(
        s3_xml::sections(&body, "GetObjectAttributesResponse").len(),
        1,
        "{body}"
    );
    assert_eq!(s3_xml::first(&body, "ETag"), Some(md5_hex(&data)), "{body}");
    assert_eq!(
        s3_xml::first(&body, "ObjectSize"),
        Some(data.len().to_string())
    );
    assert_eq!(
        s3_xml::first(&body, "StorageClass").as_deref(),
        Some("STANDARD")
    );
    assert!(response
        .header("last-modified")
        .is_some_and(|v| v.ends_with(" GMT")));
}

#[tokio::test]
async fn sha256_checksum_is_reported() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let data = pseudo_random_bytes(5000, 2);
    s3.put_object()
        .bucket(BUCKET)
        .key("sha")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let out = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("sha")
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    let checksum = out.checksum().expect("Checksum");
    assert_eq!(
        checksum.checksum_sha256(),
        Some(sha256_base64(&data).as_str())
    );
    assert_eq!(checksum.checksum_crc32(), None);
}

#[tokio::test]
async fn attributes_of_a_multipart_object() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let parts = vec![
        pseudo_random_bytes(5 * MIB + 1, 10),
        pseudo_random_bytes(5 * MIB, 11),
        pseudo_random_bytes(1234, 12),
    ];
    crc32_multipart_object(&s3, "mpu", &parts).await;
    let part_checksums: Vec<_> = parts.iter().map(|p| crc32_base64(p)).collect();
    let whole: usize = parts.iter().map(Vec::len).sum();

    let out = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("mpu")
        .set_object_attributes(Some(all_attributes()))
        .send()
        .await
        .unwrap();
    let expected_etag = multipart_etag(&parts);
    assert_eq!(
        out.e_tag(),
        Some(expected_etag.trim_matches('"')),
        "ETag without quotes"
    );
    assert_eq!(out.object_size(), Some(whole as i64));
    assert_eq!(out.storage_class(), Some(&StorageClass::Standard));

    // The whole-object checksum is the composite of the part checksums (S3 writes it with or
    // without the `-N` suffix depending on the API; both name the same value).
    let composite = coffre_conformance::composite_crc32(&part_checksums);
    let checksum = out.checksum().expect("Checksum");
    let got = checksum.checksum_crc32().expect("ChecksumCRC32");
    assert!(
        got == composite || Some(got) == composite.split('-').next(),
        "composite checksum {got:?}, expected {composite:?}"
    );
    if let Some(kind) = checksum.checksum_type() {
        assert_eq!(kind.as_str(), "COMPOSITE");
    }

    let object_parts = out
        .object_parts()
        .expect("ObjectParts for a multipart object");
    assert_eq!(object_parts.is_truncated(), Some(false));
    let got: Vec<_> = object_parts
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(1), Some(parts[0].len() as i64)),
            (Some(2), Some(parts[1].len() as i64)),
            (Some(3), Some(parts[2].len() as i64)),
        ]
    );
    let got_checksums: Vec<_> = object_parts
        .parts()
        .iter()
        .map(|p| p.checksum_crc32().map(str::to_string))
        .collect();
    let expected_checksums: Vec<_> = parts.iter().map(|p| Some(crc32_base64(p))).collect();
    assert_eq!(got_checksums, expected_checksums, "each part's CRC32");
    // The wire element is <PartsCount> (the SDK's `total_parts_count`).
    assert_eq!(object_parts.total_parts_count(), Some(3), "PartsCount");
}

#[tokio::test]
async fn object_parts_paginate() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let parts = vec![
        pseudo_random_bytes(5 * MIB, 20),
        pseudo_random_bytes(5 * MIB, 21),
        pseudo_random_bytes(77, 22),
    ];
    crc32_multipart_object(&s3, "paged", &parts).await;

    let first = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("paged")
        .object_attributes(ObjectAttributes::ObjectParts)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    let page = first.object_parts().expect("ObjectParts");
    assert_eq!(page.max_parts(), Some(2));
    assert_eq!(page.is_truncated(), Some(true));
    assert_eq!(page.next_part_number_marker(), Some("2"));
    let numbers: Vec<_> = page.parts().iter().map(|p| p.part_number()).collect();
    assert_eq!(numbers, [Some(1), Some(2)]);
    assert_eq!(page.total_parts_count(), Some(3), "PartsCount");

    let second = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("paged")
        .object_attributes(ObjectAttributes::ObjectParts)
        .max_parts(2)
        .part_number_marker("2")
        .send()
        .await
        .unwrap();
    let page = second.object_parts().expect("ObjectParts");
    assert_eq!(page.part_number_marker(), Some("2"));
    assert_eq!(page.is_truncated(), Some(false));
    let got: Vec<_> = page
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size()))
        .collect();
    assert_eq!(got, [(Some(3), Some(77))]);
}

#[tokio::test]
async fn attribute_errors() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    s3.put_object()
        .bucket(BUCKET)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let response = server
        .request(Method::GET, &format!("/{BUCKET}/k"))
        .query_flag("attributes")
        .header("x-amz-object-attributes", "ETag,Colour")
        .send()
        .await;
    response.assert_error(400, "InvalidArgument");

    let err = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("absent")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
    let err = s3
        .get_object_attributes()
        .bucket("nobucket")
        .key("k")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
}

async fn part_read(server: &TestServer, method: Method, key: &str, part: &str) -> RawResponse {
    server
        .request(method, &format!("/{BUCKET}/{key}"))
        .query("partNumber", part)
        .send()
        .await
}

#[tokio::test]
async fn get_and_head_by_part_number() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let parts = vec![
        pseudo_random_bytes(5 * MIB + 3, 30),
        pseudo_random_bytes(5 * MIB, 31),
        pseudo_random_bytes(4321, 32),
    ];
    crc32_multipart_object(&s3, "mpu", &parts).await;
    let total: usize = parts.iter().map(Vec::len).sum();
    let etag = multipart_etag(&parts);

    let mut start = 0;
    for (i, part) in parts.iter().enumerate() {
        let number = (i + 1).to_string();
        let end = start + part.len() - 1;
        let content_range = format!("bytes {start}-{end}/{total}");
        for method in [Method::GET, Method::HEAD] {
            let response = part_read(&server, method.clone(), "mpu", &number).await;
            assert_eq!(
                response.status.as_u16(),
                206,
                "{method} partNumber={number}: {}",
                response.text()
            );
            assert_eq!(
                response.header("content-range"),
                Some(content_range.as_str())
            );
            assert_eq!(
                response.header("content-length"),
                Some(part.len().to_string().as_str()),
                "{method} partNumber={number}"
            );
            assert_eq!(response.header("x-amz-mp-parts-count"), Some("3"));
            assert_eq!(response.header("etag"), Some(etag.as_str()));
            if method == Method::GET {
                assert!(response.body[..] == part[..], "bytes of part {number}");
            } else {
                assert!(response.body.is_empty());
            }
        }
        start = end + 1;
    }

    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("mpu")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(got.parts_count(), Some(3));
    assert_eq!(got.content_length(), Some(parts[1].len() as i64));
    assert!(read_body(got.body).await == parts[1]);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("mpu")
        .part_number(3)
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), Some(3));
    assert_eq!(head.content_length(), Some(4321));

    // Past the last part.
    let response = part_read(&server, Method::GET, "mpu", "4").await;
    response.assert_error(416, "InvalidPartNumber");
    let response = part_read(&server, Method::HEAD, "mpu", "4").await;
    assert_eq!(response.status.as_u16(), 416);
    let err = s3
        .get_object()
        .bucket(BUCKET)
        .key("mpu")
        .part_number(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (416, "InvalidPartNumber".to_string()));
}

#[tokio::test]
async fn part_number_one_of_a_single_put_object_is_the_whole_object() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let data = pseudo_random_bytes(70_000, 40);
    s3.put_object()
        .bucket(BUCKET)
        .key("single")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    for method in [Method::GET, Method::HEAD] {
        let response = part_read(&server, method.clone(), "single", "1").await;
        assert_eq!(
            response.status.as_u16(),
            206,
            "{method}: {}",
            response.text()
        );
        assert_eq!(
            response.header("content-range"),
            Some("bytes 0-69999/70000")
        );
        assert_eq!(response.header("content-length"), Some("70000"));
        assert_eq!(response.header("etag"), Some(simple_etag(&data).as_str()));
        assert_eq!(response.header("x-amz-mp-parts-count"), None, "{method}");
        if method == Method::GET {
            assert!(response.body[..] == data[..]);
        }
    }
    let response = part_read(&server, Method::GET, "single", "2").await;
    response.assert_error(416, "InvalidPartNumber");
}

#[tokio::test]
async fn bad_part_number_requests() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let parts = vec![
        pseudo_random_bytes(5 * MIB, 50),
        pseudo_random_bytes(10, 51),
    ];
    crc32_multipart_object(&s3, "mpu", &parts).await;

    // Range and partNumber together.
    for method in [Method::GET, Method::HEAD] {
        let response = server
            .request(method.clone(), &format!("/{BUCKET}/mpu"))
            .query("partNumber", "1")
            .header("range", "bytes=0-9")
            .send()
            .await;
        assert_eq!(
            response.status.as_u16(),
            400,
            "{method}: {}",
            response.text()
        );
        if method == Method::GET {
            response.assert_error(400, "InvalidRequest");
        }
    }

    // Out of 1..=10000, or not a number.
    for part in ["0", "10001", "-1", "one"] {
        let response = part_read(&server, Method::GET, "mpu", part).await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (400, Some("InvalidArgument")),
            "partNumber={part}: {}",
            response.text()
        );
    }
}
