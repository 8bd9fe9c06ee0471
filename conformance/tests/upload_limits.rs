//! The per-tenant quota of multipart uploads in progress, through the S3 API and the admin
//! API: CreateMultipartUpload past it is `403 QuotaExceeded` with nothing recorded,
//! completions and aborts free places, concurrent creates never pass it, and the tenant's
//! usage shows the uploads in progress.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use coffre_conformance::{KeyPair, RawRequest, TestServer};
use http::Method;
use serde_json::json;

fn s3(server: &TestServer, keys: &KeyPair, method: Method, path: &str) -> RawRequest {
    server
        .request(method, path)
        .access_key(&keys.access_key)
        .secret_key(&keys.secret_key)
}

fn create(server: &TestServer, keys: &KeyPair, path: &str) -> RawRequest {
    s3(server, keys, Method::POST, path).query_flag("uploads")
}

async fn uploads_listed(server: &TestServer, keys: &KeyPair, bucket: &str) -> usize {
    let listed = s3(server, keys, Method::GET, bucket)
        .query_flag("uploads")
        .send()
        .await;
    listed.assert_status(200);
    listed.xml_values("UploadId").len()
}

#[tokio::test]
async fn create_multipart_upload_past_the_quota_is_refused_and_records_nothing() {
    let server = TestServer::start();
    let admin = server.admin();
    let created = admin
        .create_tenant(json!({"name": "uploader", "quotas": {"uploads": 2}}))
        .await;
    assert_eq!(
        created["quotas"],
        json!({"bytes": null, "objects": null, "uploads": 2})
    );
    assert_eq!(created["usage"]["uploads"], 0);
    let keys = admin.create_key("uploader", "read-write", None).await;
    s3(&server, &keys, Method::PUT, "/bkt")
        .send()
        .await
        .assert_status(200);

    let first = create(&server, &keys, "/bkt/one").send().await;
    first.assert_status(200);
    let first = first.xml_values("UploadId").remove(0);
    let second = create(&server, &keys, "/bkt/two").send().await;
    second.assert_status(200);
    let second = second.xml_values("UploadId").remove(0);

    let refused = create(&server, &keys, "/bkt/three").send().await;
    refused.assert_error(403, "QuotaExceeded");
    assert!(
        refused.text().contains("multipart uploads in progress"),
        "{}",
        refused.text()
    );
    assert_eq!(uploads_listed(&server, &keys, "/bkt").await, 2);
    let shown = admin.tenant("uploader").await;
    assert_eq!(shown.json["usage"]["uploads"], 2);

    // An abort frees a place.
    s3(&server, &keys, Method::DELETE, "/bkt/two")
        .query("uploadId", &second)
        .send()
        .await
        .assert_status(204);
    assert_eq!(admin.tenant("uploader").await.json["usage"]["uploads"], 1);
    let third = create(&server, &keys, "/bkt/three").send().await;
    third.assert_status(200);
    create(&server, &keys, "/bkt/four")
        .send()
        .await
        .assert_error(403, "QuotaExceeded");

    // So does a completion.
    let part = b"the only part";
    s3(&server, &keys, Method::PUT, "/bkt/one")
        .query("partNumber", "1")
        .query("uploadId", &first)
        .body(&part[..])
        .send()
        .await
        .assert_status(200);
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part>\
         </CompleteMultipartUpload>",
        coffre_conformance::md5_hex(part)
    );
    s3(&server, &keys, Method::POST, "/bkt/one")
        .query("uploadId", &first)
        .body(complete)
        .send()
        .await
        .assert_status(200);
    let shown = admin.tenant("uploader").await;
    assert_eq!(shown.json["usage"]["uploads"], 1);
    assert_eq!(shown.json["usage"]["objects"], 1);
    create(&server, &keys, "/bkt/four")
        .send()
        .await
        .assert_status(200);

    // The quota is set like the others: removed, it limits nothing.
    let updated = admin
        .send(
            Method::PATCH,
            "/admin/v1/tenants/uploader",
            Some(json!({"quotas": {"uploads": null}})),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.json["quotas"]["uploads"], serde_json::Value::Null);
    for i in 0..3 {
        create(&server, &keys, &format!("/bkt/more{i}"))
            .send()
            .await
            .assert_status(200);
    }
    assert_eq!(uploads_listed(&server, &keys, "/bkt").await, 5);
    assert_eq!(admin.tenant("uploader").await.json["usage"]["uploads"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_pass_the_upload_quota() {
    let server = TestServer::start();
    let admin = server.admin();
    admin
        .create_tenant(json!({"name": "racer", "quotas": {"uploads": 4}}))
        .await;
    let keys = admin.create_key("racer", "read-write", None).await;
    s3(&server, &keys, Method::PUT, "/race")
        .send()
        .await
        .assert_status(200);
    let attempts: Vec<_> = (0..20)
        .map(|i| tokio::spawn(create(&server, &keys, &format!("/race/k{i}")).send()))
        .collect();
    let mut created = 0;
    for attempt in attempts {
        let response = attempt.await.unwrap();
        if response.status == 200 {
            created += 1;
        } else {
            response.assert_error(403, "QuotaExceeded");
        }
    }
    assert_eq!(created, 4);
    assert_eq!(uploads_listed(&server, &keys, "/race").await, 4);
    assert_eq!(admin.tenant("racer").await.json["usage"]["uploads"], 4);
}
