//! The S3 error contract: XML body with Code, Message, Resource and RequestId, the right
//! status, `x-amz-request-id` on every response, NotImplemented (never 500) for operations
//! Coffre does not support, and the size limits that protect the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffre_conformance::{s3_xml, RawResponse, TestServer};
use http::Method;

fn assert_request_id(response: &RawResponse, what: &str) -> String {
    let id = response
        .header("x-amz-request-id")
        .unwrap_or_else(|| panic!("{what}: no x-amz-request-id in {:?}", response.headers));
    assert!(!id.is_empty(), "{what}: empty x-amz-request-id");
    id.to_string()
}

#[tokio::test]
async fn error_body_has_code_message_resource_and_request_id() {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/errs")
        .send()
        .await
        .assert_status(200);

    let response = server
        .request(Method::GET, "/errs/missing/key")
        .send()
        .await;
    response.assert_error(404, "NoSuchKey");
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/xml"),
        "Content-Type {content_type:?}"
    );
    let text = response.text();
    assert!(text.starts_with("<?xml"), "an XML declaration: {text}");
    assert!(text.contains("<Error>"), "{text}");
    let message = s3_xml::first(&text, "Message").expect("a Message");
    assert!(!message.is_empty());
    let resource = s3_xml::first(&text, "Resource").expect("a Resource");
    assert!(
        resource.contains("missing/key"),
        "Resource names the key: {resource}"
    );
    let body_id = s3_xml::first(&text, "RequestId").expect("a RequestId");
    assert_eq!(
        body_id,
        assert_request_id(&response, "NoSuchKey"),
        "same id in body and header"
    );

    let response = server.request(Method::GET, "/nobucket").send().await;
    response.assert_error(404, "NoSuchBucket");
    assert_eq!(response.xml_values("BucketName"), ["nobucket"]);
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let server = TestServer::start();
    let cases = [
        server.request(Method::PUT, "/ids").send().await,
        server.request(Method::GET, "/").send().await,
        server.request(Method::PUT, "/ids/k").body("v").send().await,
        server.request(Method::GET, "/ids/k").send().await,
        server.request(Method::HEAD, "/ids/k").send().await,
        server.request(Method::HEAD, "/ids/none").send().await,
        server
            .request(Method::GET, "/ids")
            .query("list-type", "2")
            .send()
            .await,
        server
            .request(Method::GET, "/ids/k")
            .header("range", "bytes=100-")
            .send()
            .await,
        server.request(Method::GET, "/ids").anonymous().send().await,
        server
            .request(Method::GET, "/ids")
            .corrupt_signature()
            .send()
            .await,
        server.request(Method::DELETE, "/ids/k").send().await,
    ];
    let mut ids = std::collections::HashSet::new();
    for (i, response) in cases.iter().enumerate() {
        let id = assert_request_id(response, &format!("case {i} ({})", response.status));
        assert!(ids.insert(id), "request ids are unique");
    }
}

#[tokio::test]
async fn unsupported_operations_are_not_implemented() {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/ops")
        .send()
        .await
        .assert_status(200);
    server
        .request(Method::PUT, "/ops/k")
        .body("v")
        .send()
        .await
        .assert_status(200);
    let cases = [
        (Method::GET, "/ops/k", "torrent"),
        (Method::GET, "/ops", "analytics"),
        (Method::GET, "/ops", "inventory"),
        (Method::GET, "/ops", "metrics"),
        (Method::PUT, "/ops", "replication"),
        (Method::GET, "/ops", "intelligent-tiering"),
    ];
    for (method, path, flag) in cases {
        let response = server
            .request(method.clone(), path)
            .query_flag(flag)
            .send()
            .await;
        assert_eq!(
            (response.status.as_u16(), response.error_code().as_deref()),
            (501, Some("NotImplemented")),
            "{method} {path}?{flag}: {}",
            response.text()
        );
        assert_request_id(&response, flag);
    }
    // An HTTP method S3 does not know: an error, with a request id, never a 500.
    let response = server
        .request(Method::PATCH, "/ops/k")
        .body("x")
        .send()
        .await;
    assert!(
        response.status.is_client_error() || response.status.as_u16() == 501,
        "PATCH: {} {}",
        response.status,
        response.text()
    );
    assert!(
        response.error_code().is_some(),
        "PATCH has an S3 error body"
    );
    assert_request_id(&response, "PATCH");
}

#[tokio::test]
async fn limits_are_enforced_with_s3_errors() {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/limits")
        .send()
        .await
        .assert_status(200);

    let long_key = "k".repeat(1025);
    let response = server
        .request(Method::PUT, &format!("/limits/{long_key}"))
        .body("x")
        .send()
        .await;
    response.assert_error(400, "KeyTooLongError");
    let max_key = "k".repeat(1024);
    server
        .request(Method::PUT, &format!("/limits/{max_key}"))
        .body("x")
        .send()
        .await
        .assert_status(200);

    // User metadata is limited to 2 KB.
    let response = server
        .request(Method::PUT, "/limits/meta")
        .header("x-amz-meta-big", &"v".repeat(2100))
        .body("x")
        .send()
        .await;
    response.assert_error(400, "MetadataTooLarge");

    // A single PUT is limited to 5 GiB: refused from the headers, before any body byte.
    let (_keep_open, receiver) = tokio::sync::mpsc::channel::<bytes::Bytes>(1);
    let request = server
        .request(Method::PUT, "/limits/huge")
        .payload(coffre_conformance::Payload::Unsigned)
        .header("content-length", "5368709121")
        .body_channel(receiver);
    let response = tokio::time::timeout(std::time::Duration::from_secs(20), request.send())
        .await
        .expect("the server answers an oversized Content-Length without waiting for a body");
    response.assert_error(400, "EntityTooLarge");
}

#[tokio::test]
async fn malformed_requests_get_s3_errors() {
    let server = TestServer::start();
    server
        .request(Method::PUT, "/bad")
        .send()
        .await
        .assert_status(200);

    // A malformed Authorization header.
    let mut request = server.request(Method::GET, "/bad").build();
    request.headers_mut().insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=garbage".parse().unwrap(),
    );
    let response = coffre_conformance::send_request(request).await;
    assert!(
        matches!(
            response.error_code().as_deref(),
            Some("AuthorizationHeaderMalformed" | "InvalidArgument" | "AccessDenied")
        ) && response.status.is_client_error(),
        "malformed Authorization: {} {}",
        response.status,
        response.text()
    );
    assert_request_id(&response, "malformed authorization");

    // Legacy signature version 2 is not accepted.
    let mut request = server.request(Method::GET, "/bad").build();
    request.headers_mut().insert(
        "authorization",
        "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="
            .parse()
            .unwrap(),
    );
    let response = coffre_conformance::send_request(request).await;
    assert!(
        response.status.is_client_error(),
        "SigV2: {} {}",
        response.status,
        response.text()
    );
    assert!(response.error_code().is_some());
}

/// A PUT refused before its body is read (here: a signature from an unknown key) must not
/// cut the client off mid-send: the server drains the rest of the body (up to a bound)
/// while it answers, so a client that writes its whole body before reading gets the 403
/// instead of a broken pipe. Raw TCP, so that the timing is the test's: headers and the
/// first 64 KiB, then (once the server's answer has arrived) the rest of a 4 MiB body.
#[tokio::test]
async fn a_refused_upload_body_is_drained_so_the_client_reads_the_refusal() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start();
    if server.is_https() {
        eprintln!("skipped over HTTPS: this test speaks raw HTTP/1.1 over TCP");
        return;
    }
    let mut stream = tokio::net::TcpStream::connect(server.authority())
        .await
        .unwrap();
    let length = 4 << 20;
    let head = format!(
        "PUT /drained/key HTTP/1.1\r\nHost: {}\r\nContent-Length: {length}\r\n\
         x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: 20261128T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 \
         Credential=AKIANOSUCHKEY0000000/20261128/us-east-1/s3/aws4_request, \
         SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}\r\n\r\n",
        server.authority(),
        "0".repeat(64)
    );
    let piece = vec![b'x'; 64 * 1024];
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&piece).await.unwrap();
    // The server answers before it has the body: wait for its answer to arrive (unread), so
    // that the rest is sent to a server that has already refused the request.
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.readable())
        .await
        .expect("the server did not answer before the body was sent")
        .unwrap();
    for _ in 1..length / piece.len() {
        stream
            .write_all(&piece)
            .await
            .expect("the server hung up while the body was being sent");
    }
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(
        answer.starts_with("HTTP/1.1 403"),
        "expected the 403, got: {answer}"
    );
    assert!(answer.contains("InvalidAccessKeyId"), "{answer}");
}
