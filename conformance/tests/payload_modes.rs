//! Payload modes and integrity: signed and UNSIGNED-PAYLOAD bodies, lying
//! x-amz-content-sha256, aws-chunked bodies (chunk signatures, checksum trailers), Content-MD5
//! and x-amz-checksum-* headers, and the SDK's default checksums.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use coffre_conformance::raw_bucket::{assert_absent, assert_content, server_with_bucket};
use coffre_conformance::{
    crc32_base64, crc32c_base64, crc64nvme_base64, md5_base64, pseudo_random_bytes, read_body,
    sha1_base64, sha256_base64, sha256_hex, simple_etag, AwsChunked, Payload, Tamper,
};
use http::Method;

#[tokio::test]
async fn unsigned_payload_is_accepted() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(300_000, 8);
    let response = server
        .request(Method::PUT, "/auth/unsigned")
        .payload(Payload::Unsigned)
        .body(data.clone())
        .send()
        .await;
    response.assert_status(200);
    assert_eq!(response.header("etag"), Some(simple_etag(&data).as_str()));
    assert_content(&server, "unsigned", &data).await;
}

#[tokio::test]
async fn wrong_content_sha256_is_mismatch() {
    let server = server_with_bucket().await;
    for size in [10, 200_000] {
        let data = pseudo_random_bytes(size, 1);
        let response = server
            .request(Method::PUT, "/auth/lying")
            .payload(Payload::Claimed(sha256_hex(b"something else")))
            .body(data)
            .send()
            .await;
        response.assert_error(400, "XAmzContentSHA256Mismatch");
        assert_absent(&server, "lying").await;
    }
    // Not a hash at all.
    let response = server
        .request(Method::PUT, "/auth/lying")
        .payload(Payload::Claimed("not-a-sha256".to_string()))
        .body("data")
        .send()
        .await;
    assert_eq!(response.status.as_u16(), 400, "{}", response.text());
    assert_absent(&server, "lying").await;
}

#[tokio::test]
async fn content_md5_mismatch_is_bad_digest() {
    let server = server_with_bucket().await;
    let response = server
        .request(Method::PUT, "/auth/md5")
        .header("content-md5", &md5_base64(b"other bytes"))
        .body("the bytes")
        .send()
        .await;
    response.assert_error(400, "BadDigest");
    assert_absent(&server, "md5").await;
    let response = server
        .request(Method::PUT, "/auth/md5")
        .header("content-md5", "not base64 of 16 bytes")
        .body("the bytes")
        .send()
        .await;
    response.assert_error(400, "InvalidDigest");
    assert_absent(&server, "md5").await;
}

#[tokio::test]
async fn checksum_headers_are_verified_stored_and_returned() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(150_000, 3);
    let algorithms: [(&str, String); 5] = [
        ("crc32", crc32_base64(&data)),
        ("crc32c", crc32c_base64(&data)),
        ("crc64nvme", crc64nvme_base64(&data)),
        ("sha1", sha1_base64(&data)),
        ("sha256", sha256_base64(&data)),
    ];
    for (algorithm, value) in &algorithms {
        let header = format!("x-amz-checksum-{algorithm}");
        let key = format!("/auth/header-{algorithm}");
        let response = server
            .request(Method::PUT, &key)
            .header(&header, value)
            .body(data.clone())
            .send()
            .await;
        response.assert_status(200);
        assert_eq!(
            response.header(&header),
            Some(value.as_str()),
            "PUT echoes {header}"
        );

        let head = server
            .request(Method::HEAD, &key)
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        head.assert_status(200);
        assert_eq!(
            head.header(&header),
            Some(value.as_str()),
            "HEAD returns {header}"
        );
        let plain = server.request(Method::HEAD, &key).send().await;
        assert!(
            plain.header(&header).is_none(),
            "checksums only with x-amz-checksum-mode"
        );

        // The same header with another object's checksum.
        let response = server
            .request(Method::PUT, &format!("/auth/bad-{algorithm}"))
            .header(&header, value)
            .body(b"different bytes".to_vec())
            .send()
            .await;
        response.assert_error(400, "BadDigest");
        assert_absent(&server, &format!("bad-{algorithm}")).await;
    }
}

#[tokio::test]
async fn sdk_default_checksums_round_trip() {
    let server = server_with_bucket().await;
    let s3 = server.s3_client();
    for (key, size) in [("small", 1000), ("large", 3 * 1024 * 1024 + 11)] {
        let data = pseudo_random_bytes(size, 77);
        let put = s3
            .put_object()
            .bucket("auth")
            .key(key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(put.e_tag(), Some(simple_etag(&data).as_str()));
        assert_eq!(
            put.checksum_crc32(),
            Some(crc32_base64(&data).as_str()),
            "the SDK sends CRC32 by default and the server echoes it"
        );
        let got = s3
            .get_object()
            .bucket("auth")
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(got.checksum_crc32(), Some(crc32_base64(&data).as_str()));
        // The SDK validates the returned checksum while reading the body.
        assert!(read_body(got.body).await == data);
        let head = s3
            .head_object()
            .bucket("auth")
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(head.checksum_crc32(), Some(crc32_base64(&data).as_str()));
    }
}

#[tokio::test]
async fn streaming_signed_payload() {
    let server = server_with_bucket().await;
    for (size, chunk) in [
        (0usize, 8192usize),
        (1, 8192),
        (200_000, 65_536),
        (65_536, 65_536),
        (100_003, 8192),
    ] {
        let data = pseudo_random_bytes(size, size as u64);
        let key = format!("signed-{size}-{chunk}");
        let response = server
            .request(Method::PUT, &format!("/auth/{key}"))
            .aws_chunked(AwsChunked::signed(chunk))
            .body(data.clone())
            .send()
            .await;
        response.assert_status(200);
        assert_eq!(
            response.header("etag"),
            Some(simple_etag(&data).as_str()),
            "{key}"
        );
        assert_content(&server, &key, &data).await;
    }
}

#[tokio::test]
async fn streaming_signed_payload_with_trailer() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(150_000, 4);
    let response = server
        .request(Method::PUT, "/auth/signed-trailer")
        .aws_chunked(AwsChunked::signed_with_crc32_trailer(65_536))
        .body(data.clone())
        .send()
        .await;
    response.assert_status(200);
    assert_content(&server, "signed-trailer", &data).await;
    let head = server
        .request(Method::HEAD, "/auth/signed-trailer")
        .header("x-amz-checksum-mode", "ENABLED")
        .send()
        .await;
    assert_eq!(
        head.header("x-amz-checksum-crc32"),
        Some(crc32_base64(&data).as_str())
    );
}

#[tokio::test]
async fn streaming_unsigned_payload_with_every_trailer_algorithm() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(100_000, 6);
    let trailers = [
        ("x-amz-checksum-crc32", crc32_base64(&data)),
        ("x-amz-checksum-crc32c", crc32c_base64(&data)),
        ("x-amz-checksum-crc64nvme", crc64nvme_base64(&data)),
        ("x-amz-checksum-sha1", sha1_base64(&data)),
        ("x-amz-checksum-sha256", sha256_base64(&data)),
    ];
    for (name, value) in &trailers {
        let key = format!("unsigned-{name}");
        let response = server
            .request(Method::PUT, &format!("/auth/{key}"))
            .aws_chunked(AwsChunked::unsigned_with_crc32_trailer(16_384).with_trailer(name, value))
            .body(data.clone())
            .send()
            .await;
        response.assert_status(200);
        assert_eq!(response.header("etag"), Some(simple_etag(&data).as_str()));
        assert_content(&server, &key, &data).await;
        let head = server
            .request(Method::HEAD, &format!("/auth/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .send()
            .await;
        assert_eq!(
            head.header(name),
            Some(value.as_str()),
            "HEAD returns the trailer {name}"
        );
    }
    let s3 = server.s3_client();
    let head = s3
        .head_object()
        .bucket("auth")
        .key("unsigned-x-amz-checksum-sha256")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_sha256(), Some(sha256_base64(&data).as_str()));
}

#[tokio::test]
async fn streaming_tampering_is_rejected() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(200_000, 12);
    let cases: Vec<(&str, AwsChunked, u16, &str)> = vec![
        (
            "sig-first",
            AwsChunked::signed(65_536).tamper(Tamper::ChunkSignature(0)),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "sig-middle",
            AwsChunked::signed(65_536).tamper(Tamper::ChunkSignature(2)),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "sig-final",
            AwsChunked::signed(65_536).tamper(Tamper::ChunkSignature(4)),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "data",
            AwsChunked::signed(65_536).tamper(Tamper::ChunkData(1)),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "trailer-sig",
            AwsChunked::signed_with_crc32_trailer(65_536).tamper(Tamper::TrailerSignature),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "signed-bad-crc",
            AwsChunked::signed_with_crc32_trailer(65_536)
                .with_trailer("x-amz-checksum-crc32", &crc32_base64(b"other")),
            400,
            "BadDigest",
        ),
        (
            "unsigned-bad-crc",
            AwsChunked::unsigned_with_crc32_trailer(65_536)
                .with_trailer("x-amz-checksum-crc32", &crc32_base64(b"other")),
            400,
            "BadDigest",
        ),
        (
            "unsigned-bad-sha256",
            AwsChunked::unsigned_with_crc32_trailer(65_536)
                .with_trailer("x-amz-checksum-sha256", &sha256_base64(b"other")),
            400,
            "BadDigest",
        ),
    ];
    for (name, chunked, status, code) in cases {
        let key = format!("tampered-{name}");
        let response = server
            .request(Method::PUT, &format!("/auth/{key}"))
            .aws_chunked(chunked)
            .body(data.clone())
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (status, Some(code)),
            "{name}: {}",
            response.text()
        );
        assert_absent(&server, &key).await;
    }
}

#[tokio::test]
async fn streaming_decoded_length_mismatch_is_rejected() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(10_000, 2);
    let response = server
        .request(Method::PUT, "/auth/short")
        .header("x-amz-decoded-content-length", "20000")
        .aws_chunked(AwsChunked::unsigned_with_crc32_trailer(4096))
        .body(data)
        .send()
        .await;
    assert!(
        response.status.is_client_error(),
        "a body shorter than x-amz-decoded-content-length must fail with a 4xx: {} {}",
        response.status,
        response.text()
    );
    assert_absent(&server, "short").await;
}

#[tokio::test]
async fn sdk_streaming_body_with_default_checksums() {
    let server = server_with_bucket().await;
    let s3 = server.s3_client();
    let data = pseudo_random_bytes(2 * 1024 * 1024 + 3, 31);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload.bin");
    std::fs::write(&path, &data).unwrap();
    // A body of unknown content in advance: the SDK streams it (aws-chunked, checksum trailer).
    let body = ByteStream::from_path(&path).await.unwrap();
    let put = s3
        .put_object()
        .bucket("auth")
        .key("streamed")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(simple_etag(&data).as_str()));
    assert_content(&server, "streamed", &data).await;
    let head = s3
        .head_object()
        .bucket("auth")
        .key("streamed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), Some(crc32_base64(&data).as_str()));
}
