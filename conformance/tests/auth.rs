//! SigV4 authentication with raw requests where an SDK will not send the bad input:
//! anonymous requests, unknown keys, wrong signatures, clock skew, presigned URLs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use coffre_conformance::raw_bucket::{assert_absent, assert_content, server_with_bucket};
use coffre_conformance::{pseudo_random_bytes, send_request};
use http::Method;

#[tokio::test]
async fn anonymous_requests_are_access_denied() {
    let server = server_with_bucket().await;
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/auth"),
        (Method::PUT, "/auth/k"),
        (Method::GET, "/auth/k"),
        (Method::PUT, "/anon-bucket"),
    ] {
        let response = server
            .request(method.clone(), path)
            .anonymous()
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (403, Some("AccessDenied")),
            "anonymous {method} {path}: {}",
            response.text()
        );
    }
    let head = server
        .request(Method::HEAD, "/auth")
        .anonymous()
        .send()
        .await;
    assert_eq!(head.status.as_u16(), 403);
}

#[tokio::test]
async fn unknown_access_key_is_invalid_access_key_id() {
    let server = server_with_bucket().await;
    let response = server
        .request(Method::GET, "/auth")
        .access_key("AKIANOTAREALKEY00000")
        .send()
        .await;
    response.assert_error(403, "InvalidAccessKeyId");
    let s3 = server.s3_client_with("AKIANOTAREALKEY00000", &server.secret_key);
    let err = s3.list_buckets().send().await.unwrap_err();
    assert_eq!(
        coffre_conformance::sdk_error(&err),
        (403, "InvalidAccessKeyId".to_string())
    );
}

#[tokio::test]
async fn wrong_signatures_are_signature_does_not_match() {
    let server = server_with_bucket().await;
    let response = server
        .request(Method::PUT, "/auth/k")
        .body("data")
        .secret_key("wrong-secret-wrong-secret-wrong-secret00")
        .send()
        .await;
    response.assert_error(403, "SignatureDoesNotMatch");
    let response = server
        .request(Method::PUT, "/auth/k")
        .body("data")
        .corrupt_signature()
        .send()
        .await;
    response.assert_error(403, "SignatureDoesNotMatch");
    assert_absent(&server, "k").await;

    // A signed header changed after signing.
    let mut request = server
        .request(Method::PUT, "/auth/k")
        .header("x-amz-meta-signed", "original")
        .body("data")
        .build();
    request
        .headers_mut()
        .insert("x-amz-meta-signed", "tampered".parse().unwrap());
    send_request(request)
        .await
        .assert_error(403, "SignatureDoesNotMatch");

    // A query parameter added after signing.
    let mut request = server
        .request(Method::GET, "/auth")
        .query("prefix", "a")
        .build();
    let uri = format!("{}&max-keys=1", request.uri());
    *request.uri_mut() = uri.parse().unwrap();
    send_request(request)
        .await
        .assert_error(403, "SignatureDoesNotMatch");
    assert_absent(&server, "k").await;
}

#[tokio::test]
async fn clock_skew_over_15_minutes_is_request_time_too_skewed() {
    let server = server_with_bucket().await;
    for skew in [-20 * 60i64, 20 * 60] {
        let time = if skew < 0 {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(skew as u64)
        };
        let response = server
            .request(Method::GET, "/auth")
            .signing_time(time)
            .send()
            .await;
        response.assert_error(403, "RequestTimeTooSkewed");
    }
    // Within the window is fine.
    for skew in [-10 * 60i64, 10 * 60] {
        let time = if skew < 0 {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(skew as u64)
        };
        server
            .request(Method::GET, "/auth")
            .signing_time(time)
            .send()
            .await
            .assert_status(200);
    }
}

#[tokio::test]
async fn presigned_get_and_put() {
    let server = server_with_bucket().await;
    let data = pseudo_random_bytes(100_000, 5);
    let put = server
        .request(Method::PUT, "/auth/presigned object")
        .presigned(Duration::from_secs(300))
        .body(data.clone())
        .build();
    assert!(put.uri().query().unwrap().contains("X-Amz-Signature="));
    assert!(put.headers().get("authorization").is_none());
    send_request(put).await.assert_status(200);

    let get = server
        .request(Method::GET, "/auth/presigned object")
        .presigned(Duration::from_secs(300))
        .send()
        .await;
    get.assert_status(200);
    assert!(get.body[..] == data[..]);

    // The SDK's own presigner.
    let s3 = server.s3_client();
    let presigned = s3
        .get_object()
        .bucket("auth")
        .key("presigned object")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let mut request = http::Request::builder().method("GET").uri(presigned.uri());
    for (name, value) in presigned.headers() {
        request = request.header(name, value);
    }
    let request = request
        .body(http_body_util::BodyExt::boxed_unsync(
            http_body_util::Full::new(bytes::Bytes::new()),
        ))
        .unwrap();
    let response = send_request(request).await;
    response.assert_status(200);
    assert!(response.body[..] == data[..]);

    let presigned_put = s3
        .put_object()
        .bucket("auth")
        .key("sdk-presigned-put")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let mut request = http::Request::builder()
        .method("PUT")
        .uri(presigned_put.uri());
    for (name, value) in presigned_put.headers() {
        request = request.header(name, value);
    }
    let request = request
        .body(http_body_util::BodyExt::boxed_unsync(
            http_body_util::Full::new(bytes::Bytes::from_static(b"via sdk presign")),
        ))
        .unwrap();
    send_request(request).await.assert_status(200);
    assert_content(&server, "sdk-presigned-put", b"via sdk presign").await;
}

#[tokio::test]
async fn presigned_failures() {
    let server = server_with_bucket().await;
    server
        .request(Method::PUT, "/auth/k")
        .body("x")
        .send()
        .await
        .assert_status(200);

    // Expired: signed two hours ago for one hour.
    let response = server
        .request(Method::GET, "/auth/k")
        .presigned(Duration::from_secs(3600))
        .signing_time(SystemTime::now() - Duration::from_secs(7200))
        .send()
        .await;
    response.assert_error(403, "AccessDenied");

    // Longer than seven days.
    let response = server
        .request(Method::GET, "/auth/k")
        .presigned(Duration::from_secs(604_801))
        .send()
        .await;
    response.assert_error(400, "AuthorizationQueryParametersError");
    server
        .request(Method::GET, "/auth/k")
        .presigned(Duration::from_secs(604_800))
        .send()
        .await
        .assert_status(200);

    let response = server
        .request(Method::GET, "/auth/k")
        .presigned(Duration::from_secs(300))
        .corrupt_signature()
        .send()
        .await;
    response.assert_error(403, "SignatureDoesNotMatch");

    let response = server
        .request(Method::GET, "/auth/k")
        .presigned(Duration::from_secs(300))
        .access_key("AKIANOTAREALKEY00000")
        .send()
        .await;
    response.assert_error(403, "InvalidAccessKeyId");

    // A presigned PUT whose URL was signed for another key name.
    let mut request = server
        .request(Method::PUT, "/auth/signed-name")
        .presigned(Duration::from_secs(300))
        .body("x")
        .build();
    let uri = request
        .uri()
        .to_string()
        .replace("signed-name", "other-name");
    *request.uri_mut() = uri.parse().unwrap();
    send_request(request)
        .await
        .assert_error(403, "SignatureDoesNotMatch");
    assert_absent(&server, "other-name").await;
}

/// Issue 12: every `x-amz-*` header a request carries is signed, or the request is refused
/// as S3 refuses it, naming the header; nothing is written.
#[tokio::test]
async fn r12_unsigned_x_amz_headers_are_access_denied() {
    let server = server_with_bucket().await;
    let mut request = server
        .request(Method::PUT, "/auth/k")
        .header("x-amz-meta-signed", "yes")
        .body("data")
        .build();
    request
        .headers_mut()
        .insert("x-amz-meta-added", "after signing".parse().unwrap());
    let response = send_request(request).await;
    response.assert_error(403, "AccessDenied");
    assert!(
        response
            .text()
            .contains("There were headers present in the request which were not signed"),
        "{}",
        response.text()
    );
    assert_eq!(
        response.xml_values("HeadersNotSigned"),
        vec!["x-amz-meta-added".to_string()]
    );
    assert_absent(&server, "k").await;

    // A captured presigned URL cannot be replayed with instructions of its own.
    let mut request = server
        .request(Method::PUT, "/auth/k")
        .presigned(Duration::from_secs(300))
        .body("data")
        .build();
    request
        .headers_mut()
        .insert("x-amz-tagging", "owner=someone-else".parse().unwrap());
    send_request(request)
        .await
        .assert_error(403, "AccessDenied");
    assert_absent(&server, "k").await;

    // What SDK presigners leave unsigned is still accepted.
    let mut request = server
        .request(Method::PUT, "/auth/k")
        .presigned(Duration::from_secs(300))
        .body("data")
        .build();
    request
        .headers_mut()
        .insert("x-amz-user-agent", "aws-sdk-rust".parse().unwrap());
    send_request(request).await.assert_status(200);
    assert_content(&server, "k", b"data").await;
}

/// Issue 12: `+`, `%2B` and `%20` in the query mean the same to routing and to the
/// signature check: `+` and `%20` are a space, `%2B` a plus.
#[tokio::test]
async fn r12_plus_and_encoded_plus_in_the_query() {
    let server = server_with_bucket().await;
    for key in ["a b/1", "a+b/2"] {
        server
            .request(Method::PUT, &format!("/auth/{key}"))
            .body("x")
            .send()
            .await
            .assert_status(200);
    }
    let list = |prefix_as_sent: &'static str| {
        let mut request = server
            .request(Method::GET, "/auth")
            .query("list-type", "2")
            .query("prefix", "a b")
            .build();
        // Signed with `%20`; sent as the test says.
        let uri = request
            .uri()
            .to_string()
            .replace("prefix=a%20b", prefix_as_sent);
        *request.uri_mut() = uri.parse().unwrap();
        send_request(request)
    };
    let response = list("prefix=a+b").await;
    response.assert_status(200);
    assert_eq!(response.xml_values("Key"), vec!["a b/1".to_string()]);
    let response = list("prefix=a%20b").await;
    assert_eq!(response.xml_values("Key"), vec!["a b/1".to_string()]);
    // `%2B` is another prefix than the one signed.
    list("prefix=a%2Bb")
        .await
        .assert_error(403, "SignatureDoesNotMatch");
    let response = server
        .request(Method::GET, "/auth")
        .query("list-type", "2")
        .query("prefix", "a+b")
        .send()
        .await;
    assert_eq!(response.xml_values("Key"), vec!["a+b/2".to_string()]);
    // A query that does not decode to UTF-8 is refused before anything else.
    let mut request = server.request(Method::GET, "/auth").build();
    let uri = format!("{}?prefix=%FF", request.uri());
    *request.uri_mut() = uri.parse().unwrap();
    send_request(request)
        .await
        .assert_error(400, "InvalidArgument");
}
