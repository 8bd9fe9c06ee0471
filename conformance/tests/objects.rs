//! Object operations: PutObject, GetObject, HeadObject, DeleteObject; content headers and
//! user metadata; response-content-* overrides; ranges; conditional requests; odd keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use coffre_conformance::{
    get_bytes, http_date, list_keys, md5_hex, pseudo_random_bytes, put_bytes, read_body, sdk_error,
    simple_etag, RawResponse, TestServer,
};
use http::Method;

const BUCKET: &str = "objects";

#[tokio::test]
async fn put_get_head_delete_round_trip() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    // Around the inline threshold (64 KiB), the 64 KiB segment size, and a few MiB.
    for (i, size) in [
        1,
        1000,
        65_535,
        65_536,
        65_537,
        131_073,
        3 * 1024 * 1024 + 7,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("size-{size}");
        let data = pseudo_random_bytes(size, i as u64);
        let etag = put_bytes(&s3, BUCKET, &key, &data).await;
        assert_eq!(
            etag,
            simple_etag(&data),
            "ETag of a single PUT is the MD5 ({size} bytes)"
        );

        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.content_length(), Some(size as i64));
        assert_eq!(got.e_tag(), Some(etag.as_str()));
        assert!(got.last_modified().is_some());
        let body = read_body(got.body).await;
        assert!(
            body[..] == data[..],
            "GET returns the bytes of PUT ({size} bytes)"
        );

        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(size as i64));
        assert_eq!(head.e_tag(), Some(etag.as_str()));
    }
    drop(server);
}

#[tokio::test]
async fn delete_is_idempotent_and_missing_keys_are_no_such_key() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "doomed", b"bye").await;
    s3.delete_object()
        .bucket(BUCKET)
        .key("doomed")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(BUCKET)
        .key("doomed")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket(BUCKET)
        .key("never-existed")
        .send()
        .await
        .unwrap();

    let raw = server
        .request(Method::DELETE, "/objects/doomed")
        .send()
        .await;
    raw.assert_status(204);

    let err = s3
        .get_object()
        .bucket(BUCKET)
        .key("doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchKey".to_string()));
    let err = s3
        .head_object()
        .bucket(BUCKET)
        .key("doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err).0, 404);
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
}

#[tokio::test]
async fn overwrite_replaces_the_object() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "k", &pseudo_random_bytes(200_000, 1)).await;
    let second = pseudo_random_bytes(1234, 2);
    let etag = put_bytes(&s3, BUCKET, "k", &second).await;
    assert_eq!(get_bytes(&s3, BUCKET, "k").await, second);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_length(), Some(1234));
}

#[tokio::test]
async fn empty_object() {
    let (_server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let etag = put_bytes(&s3, BUCKET, "empty", b"").await;
    assert_eq!(etag, "\"d41d8cd98f00b204e9800998ecf8427e\"");
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(0));
    assert!(read_body(got.body).await.is_empty());
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(0));
}

#[tokio::test]
async fn content_headers_and_user_metadata_are_stored_and_returned() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let expires = DateTime::from_secs(4_102_444_800); // 2100-01-01T00:00:00Z
    s3.put_object()
        .bucket(BUCKET)
        .key("doc.html")
        .body(ByteStream::from_static(b"<p>hi</p>"))
        .content_type("text/html; charset=utf-8")
        .content_encoding("identity")
        .content_disposition("attachment; filename=\"doc.html\"")
        .content_language("fr-FR")
        .cache_control("max-age=3600, must-revalidate")
        .expires(expires)
        .metadata("color", "blue")
        .metadata("Mixed-Case", "Value With Spaces")
        .send()
        .await
        .unwrap();

    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("doc.html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/html; charset=utf-8"));
    assert_eq!(head.content_encoding(), Some("identity"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"doc.html\"")
    );
    assert_eq!(head.content_language(), Some("fr-FR"));
    assert_eq!(head.cache_control(), Some("max-age=3600, must-revalidate"));
    assert_eq!(head.expires_string(), Some("Fri, 01 Jan 2100 00:00:00 GMT"));
    let metadata = head.metadata().expect("user metadata");
    assert_eq!(metadata.get("color").map(String::as_str), Some("blue"));
    assert_eq!(
        metadata.get("mixed-case").map(String::as_str),
        Some("Value With Spaces"),
        "metadata names come back lower-cased: {metadata:?}"
    );
    assert_eq!(metadata.len(), 2, "{metadata:?}");

    let raw = server
        .request(Method::GET, "/objects/doc.html")
        .send()
        .await;
    raw.assert_status(200);
    assert_eq!(raw.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(raw.header("content-encoding"), Some("identity"));
    assert_eq!(raw.header("content-language"), Some("fr-FR"));
    assert_eq!(
        raw.header("cache-control"),
        Some("max-age=3600, must-revalidate")
    );
    assert_eq!(raw.header("expires"), Some("Fri, 01 Jan 2100 00:00:00 GMT"));
    assert_eq!(raw.header("x-amz-meta-color"), Some("blue"));
    assert_eq!(
        raw.header("x-amz-meta-mixed-case"),
        Some("Value With Spaces")
    );
    assert!(raw
        .header("last-modified")
        .is_some_and(|v| v.ends_with(" GMT")));
    assert_eq!(raw.header("etag"), Some(simple_etag(b"<p>hi</p>").as_str()));
    assert_eq!(&raw.body[..], b"<p>hi</p>");
}

#[tokio::test]
async fn default_content_type_is_binary() {
    let (server, _s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    server
        .request(Method::PUT, "/objects/untyped")
        .body("x")
        .send()
        .await
        .assert_status(200);
    let head = server
        .request(Method::HEAD, "/objects/untyped")
        .send()
        .await;
    head.assert_status(200);
    assert_eq!(head.header("content-type"), Some("binary/octet-stream"));
}

#[tokio::test]
async fn response_content_overrides() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    s3.put_object()
        .bucket(BUCKET)
        .key("o")
        .body(ByteStream::from_static(b"data"))
        .content_type("text/plain")
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("o")
        .response_content_type("application/json")
        .response_content_disposition("inline; filename=\"x.json\"")
        .response_content_encoding("identity")
        .response_content_language("de")
        .response_cache_control("no-cache")
        .response_expires(DateTime::from_secs(0))
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(
        got.content_disposition(),
        Some("inline; filename=\"x.json\"")
    );
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(got.content_language(), Some("de"));
    assert_eq!(got.cache_control(), Some("no-cache"));
    assert_eq!(got.expires_string(), Some("Thu, 01 Jan 1970 00:00:00 GMT"));
    assert_eq!(&read_body(got.body).await[..], b"data");

    // The overrides apply to one response only.
    let head = server.request(Method::HEAD, "/objects/o").send().await;
    assert_eq!(head.header("content-type"), Some("text/plain"));
}

async fn range(server: &TestServer, path: &str, range: &str) -> RawResponse {
    server
        .request(Method::GET, path)
        .header("range", range)
        .send()
        .await
}

#[tokio::test]
async fn single_range_reads() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let data = pseudo_random_bytes(200_000, 9);
    put_bytes(&s3, BUCKET, "r", &data).await;
    let cases: [(&str, usize, usize); 7] = [
        ("bytes=0-99", 0, 99),
        ("bytes=100-100", 100, 100),
        ("bytes=65530-65545", 65_530, 65_545),
        ("bytes=199000-", 199_000, 199_999),
        ("bytes=-1000", 199_000, 199_999),
        ("bytes=199990-300000", 199_990, 199_999),
        ("bytes=-500000", 0, 199_999),
    ];
    for (header, first, last) in cases {
        let response = range(&server, "/objects/r", header).await;
        assert_eq!(
            response.status.as_u16(),
            206,
            "{header}: {}",
            response.text()
        );
        assert_eq!(
            response.header("content-range"),
            Some(format!("bytes {first}-{last}/200000").as_str()),
            "{header}"
        );
        let len = last - first + 1;
        assert_eq!(
            response.header("content-length"),
            Some(len.to_string().as_str())
        );
        assert!(
            response.body[..] == data[first..=last],
            "{header}: wrong bytes"
        );
    }

    let head = server
        .request(Method::HEAD, "/objects/r")
        .header("range", "bytes=10-19")
        .send()
        .await;
    assert_eq!(head.status.as_u16(), 206);
    assert_eq!(head.header("content-range"), Some("bytes 10-19/200000"));
    assert_eq!(head.header("content-length"), Some("10"));

    let sdk = s3
        .get_object()
        .bucket(BUCKET)
        .key("r")
        .range("bytes=1-3")
        .send()
        .await
        .unwrap();
    assert_eq!(sdk.content_range(), Some("bytes 1-3/200000"));
    assert_eq!(&read_body(sdk.body).await[..], &data[1..4]);
}

#[tokio::test]
async fn unsatisfiable_range_is_invalid_range() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "r", &[7u8; 1000]).await;
    for header in ["bytes=1000-", "bytes=1000-2000", "bytes=5000-6000"] {
        let response = range(&server, "/objects/r", header).await;
        response.assert_error(416, "InvalidRange");
    }
    let err = s3
        .get_object()
        .bucket(BUCKET)
        .key("r")
        .range("bytes=2000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (416, "InvalidRange".to_string()));
}

#[tokio::test]
async fn malformed_range_is_ignored() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    put_bytes(&s3, BUCKET, "r", b"0123456789").await;
    // RFC 9110: a Range header that does not parse is ignored (S3 does the same).
    for header in ["bytes=abc", "lines=0-1", "bytes=5-2"] {
        let response = range(&server, "/objects/r", header).await;
        assert_eq!(
            response.status.as_u16(),
            200,
            "{header}: {}",
            response.text()
        );
        assert_eq!(&response.body[..], b"0123456789", "{header}");
    }
}

#[tokio::test]
async fn conditional_get_and_head() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let etag = put_bytes(&s3, BUCKET, "c", b"conditional").await;
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("c")
        .send()
        .await
        .unwrap();
    let modified = head.last_modified().unwrap().secs();
    let before = http_date(modified - 3600);
    let at = http_date(modified);
    let after = http_date(modified + 3600);
    let other = "\"00000000000000000000000000000000\"";

    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![("if-match", etag.as_str())], 200),
        (vec![("if-match", "*")], 200),
        (vec![("if-match", other)], 412),
        (vec![("if-none-match", etag.as_str())], 304),
        (vec![("if-none-match", "*")], 304),
        (vec![("if-none-match", other)], 200),
        (vec![("if-modified-since", &before)], 200),
        (vec![("if-modified-since", &at)], 304),
        (vec![("if-modified-since", &after)], 304),
        (vec![("if-unmodified-since", &before)], 412),
        (vec![("if-unmodified-since", &at)], 200),
        (vec![("if-unmodified-since", &after)], 200),
        // S3: If-Match true and If-Unmodified-Since false -> 200.
        (
            vec![
                ("if-match", etag.as_str()),
                ("if-unmodified-since", &before),
            ],
            200,
        ),
        // S3: If-None-Match false and If-Modified-Since true -> 304.
        (
            vec![
                ("if-none-match", etag.as_str()),
                ("if-modified-since", &before),
            ],
            304,
        ),
    ];
    for method in [Method::GET, Method::HEAD] {
        for (headers, expected) in &cases {
            let mut request = server.request(method.clone(), "/objects/c");
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = request.send().await;
            assert_eq!(
                response.status.as_u16(),
                *expected,
                "{method} with {headers:?}: {}",
                response.text()
            );
            match *expected {
                200 if method == Method::GET => assert_eq!(&response.body[..], b"conditional"),
                304 => {
                    assert!(response.body.is_empty(), "304 has no body");
                    assert_eq!(
                        response.header("etag"),
                        Some(etag.as_str()),
                        "304 carries the ETag"
                    );
                }
                412 if method == Method::GET => {
                    assert_eq!(response.error_code().as_deref(), Some("PreconditionFailed"));
                }
                _ => {}
            }
        }
    }

    let err = s3
        .get_object()
        .bucket(BUCKET)
        .key("c")
        .if_match(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (412, "PreconditionFailed".to_string()));
}

#[tokio::test]
async fn keys_with_unusual_characters() {
    let (server, s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let keys = [
        "plain",
        "with space",
        "  leading and trailing  ",
        "plus+sign",
        "percent%20literal",
        "percent%",
        "dir/sub dir/file name.txt",
        "unicode/éèà/日本語/🎉",
        "tilde~star*quote'paren()",
        "query?and=amp&hash#frag",
        "semi;colon:comma,at@dollar$",
        "brackets[]{}<>|^`\\",
        "trailing/",
        "double//slash",
        "dot/./segment/../x",
    ];
    for key in keys {
        let data = format!("body of {key}");
        put_bytes(&s3, BUCKET, key, data.as_bytes()).await;
        assert_eq!(
            get_bytes(&s3, BUCKET, key).await,
            data.as_bytes(),
            "key {key:?}"
        );
    }
    // Raw requests with the canonical S3 encoding reach the same objects.
    for key in keys {
        let response = server
            .request(Method::GET, &format!("/objects/{key}"))
            .send()
            .await;
        response.assert_status(200);
        assert_eq!(
            response.body,
            format!("body of {key}").as_bytes(),
            "raw GET {key:?}"
        );
    }
    let mut expected: Vec<_> = keys.to_vec();
    expected.sort();
    assert_eq!(
        list_keys(&s3, BUCKET).await,
        expected,
        "listing returns every key exactly, in UTF-8 byte order"
    );
}

#[tokio::test]
async fn content_md5_is_accepted_when_correct() {
    let (server, _s3) = TestServer::start_with_buckets(&[BUCKET]).await;
    let data = b"checked".to_vec();
    server
        .request(Method::PUT, "/objects/md5")
        .header("content-md5", &coffre_conformance::md5_base64(&data))
        .body(data.clone())
        .send()
        .await
        .assert_status(200);
    let response = server.request(Method::GET, "/objects/md5").send().await;
    assert_eq!(
        response.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
}

#[tokio::test]
async fn get_of_missing_bucket_is_no_such_bucket() {
    let server = TestServer::start();
    let s3 = server.s3_client();
    let err = s3
        .get_object()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_error(&err), (404, "NoSuchBucket".to_string()));
}

#[tokio::test]
async fn objects_are_isolated_between_buckets() {
    let (_server, s3) = TestServer::start_with_buckets(&["one", "two"]).await;
    put_bytes(&s3, "one", "shared-name", b"in one").await;
    put_bytes(&s3, "two", "shared-name", b"in two").await;
    assert_eq!(get_bytes(&s3, "one", "shared-name").await, b"in one");
    assert_eq!(get_bytes(&s3, "two", "shared-name").await, b"in two");
    s3.delete_object()
        .bucket("one")
        .key("shared-name")
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "two", "shared-name").await, b"in two");
}
