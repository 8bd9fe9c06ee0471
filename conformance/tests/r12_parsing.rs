//! Issue 12, on the wire: client-supplied numbers and names that used to reach arithmetic or
//! the records unchecked (the empty part of a multipart object read by `partNumber`, bucket
//! names, content headers), SSE-C parameters in a query string, and readiness probes that
//! run at the same time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffre_conformance::raw_bucket::{assert_absent, server_with_bucket};
use coffre_conformance::{audit_records, TestServer};
use http::Method;

/// An object made of one empty part: `partNumber=1` is answered, with no body.
#[tokio::test]
async fn r12_reading_the_empty_part_of_a_multipart_object() {
    let server = server_with_bucket().await;
    let created = server
        .request(Method::POST, "/auth/empty")
        .query_flag("uploads")
        .send()
        .await;
    created.assert_status(200);
    let upload_id = created.xml_values("UploadId").remove(0);
    let part = server
        .request(Method::PUT, "/auth/empty")
        .query("partNumber", "1")
        .query("uploadId", &upload_id)
        .send()
        .await;
    part.assert_status(200);
    let etag = part.header("etag").unwrap().to_owned();
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part>\
         </CompleteMultipartUpload>"
    );
    server
        .request(Method::POST, "/auth/empty")
        .query("uploadId", &upload_id)
        .body(complete)
        .send()
        .await
        .assert_status(200);

    for method in [Method::GET, Method::HEAD] {
        let response = server
            .request(method.clone(), "/auth/empty")
            .query("partNumber", "1")
            .send()
            .await;
        assert!(
            response.status.is_success(),
            "{method}: {} {}",
            response.status,
            response.text()
        );
        assert!(response.body.is_empty());
        assert_eq!(response.header("content-length"), Some("0"));
        assert_eq!(response.header("x-amz-mp-parts-count"), Some("1"));
        if let Some(range) = response.header("content-range") {
            assert_eq!(range, "bytes */0", "{method}");
        }
    }
    server
        .request(Method::GET, "/auth/empty")
        .query("partNumber", "2")
        .send()
        .await
        .assert_error(416, "InvalidPartNumber");
    // Still serving.
    server
        .request(Method::GET, "/auth/empty")
        .send()
        .await
        .assert_status(200);
}

/// Content headers are stored and sent back with the object: bounded as S3 bounds a PUT's
/// header section (8 KB), user metadata at 2 KB, with S3's errors and nothing stored.
#[tokio::test]
async fn r12_content_headers_and_metadata_are_bounded() {
    let server = server_with_bucket().await;
    for name in [
        "content-type",
        "content-disposition",
        "cache-control",
        "content-encoding",
        "content-language",
        "expires",
    ] {
        let response = server
            .request(Method::PUT, "/auth/big-headers")
            .header(name, &"a".repeat(9000))
            .body("x")
            .send()
            .await;
        response.assert_error(400, "RequestHeaderSectionTooLarge");
        assert_eq!(response.xml_values("MaxSizeAllowed"), vec!["8192"]);
        assert_absent(&server, "big-headers").await;

        let created = server
            .request(Method::POST, "/auth/big-headers")
            .query_flag("uploads")
            .header(name, &"a".repeat(9000))
            .send()
            .await;
        created.assert_error(400, "RequestHeaderSectionTooLarge");
    }
    server
        .request(Method::PUT, "/auth/big-headers")
        .header("x-amz-meta-note", &"m".repeat(2100))
        .body("x")
        .send()
        .await
        .assert_error(400, "MetadataTooLarge");
    assert_absent(&server, "big-headers").await;
    server
        .request(Method::PUT, "/auth/big-headers")
        .header("content-disposition", &"a".repeat(4000))
        .header("x-amz-meta-note", &"m".repeat(2000))
        .body("x")
        .send()
        .await
        .assert_status(200);
}

/// A name no bucket can have is refused when the request is routed: it is never looked up,
/// and the audit trail records the refusal without the name.
#[tokio::test]
async fn r12_invalid_bucket_names_are_refused_before_they_are_recorded() {
    let mut server = TestServer::start();
    let bad = "Not_A_Bucket";
    for (method, path) in [
        (Method::GET, format!("/{bad}")),
        (Method::PUT, format!("/{bad}/key")),
        (Method::GET, format!("/{bad}/key")),
        (Method::PUT, format!("/{bad}")),
        (Method::OPTIONS, format!("/{bad}/key")),
    ] {
        let response = server.request(method.clone(), &path).send().await;
        response.assert_error(400, "InvalidBucketName");
    }
    let long = "b".repeat(5000);
    let response = server
        .request(Method::GET, &format!("/{long}/key"))
        .send()
        .await;
    response.assert_error(400, "InvalidBucketName");
    assert!(!response.text().contains(&long));
    server.stop();

    let all = audit_records(&server.data_dir().join("audit"));
    let refused: Vec<_> = all
        .iter()
        .filter(|r| r["error"] == "InvalidBucketName")
        .collect();
    assert_eq!(refused.len(), 6, "{all:#?}");
    for record in refused {
        assert!(record["bucket"].is_null(), "{record}");
    }
    assert!(!all
        .iter()
        .any(|r| r.to_string().contains(bad) || r.to_string().contains(&long)));
}

/// SSE-C keys never travel in a URL, presigned or not.
#[tokio::test]
async fn r12_sse_c_parameters_in_the_query_are_refused() {
    let server = server_with_bucket().await;
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let response = server
        .request(Method::PUT, "/auth/k")
        .query("x-amz-server-side-encryption-customer-algorithm", "AES256")
        .query("x-amz-server-side-encryption-customer-key", key)
        .body("data")
        .send()
        .await;
    response.assert_error(400, "InvalidArgument");
    assert!(response.text().contains("never in the query string"));
    let response = server
        .request(Method::GET, "/auth/k")
        .query("X-Amz-Server-Side-Encryption-Customer-Key", key)
        .presigned(std::time::Duration::from_secs(60))
        .send()
        .await;
    response.assert_error(400, "InvalidArgument");
    assert_absent(&server, "k").await;
}

/// Probes that run at the same time all find the server ready.
#[tokio::test]
async fn r12_concurrent_readiness_probes_agree() {
    let server = TestServer::start();
    for _ in 0..5 {
        let probes: Vec<_> = (0..32)
            .map(|_| {
                let admin = server.admin();
                tokio::spawn(async move { admin.send_raw(Method::GET, "/ready", "", None).await })
            })
            .collect();
        for probe in probes {
            probe.await.unwrap().assert_status(200);
        }
    }
}
