//! The audit trail of the real binary: every S3 request leaves a chained record with who,
//! what and the outcome (never a secret), and `coffre audit verify` finds tampering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use coffre_conformance::{audit_records, coffre_binary, TestServer};
use http::Method;
use serde_json::Value;

fn verify(dir: &Path) -> (bool, String) {
    let out = Command::new(coffre_binary())
        .args(["audit", "verify"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn every_request_is_recorded_and_tampering_is_found() {
    let mut server = TestServer::start();
    let s3 = server.s3_client();
    s3.create_bucket().bucket("audited").send().await.unwrap();
    s3.put_object()
        .bucket("audited")
        .key("report.pdf")
        .body(ByteStream::from(b"quarterly numbers".to_vec()))
        .send()
        .await
        .unwrap();
    s3.get_object()
        .bucket("audited")
        .key("report.pdf")
        .send()
        .await
        .unwrap();
    let missing = s3.get_object().bucket("audited").key("nope").send().await;
    assert!(missing.is_err());
    // A stop flushes what is queued; records are synced within a bounded delay anyway.
    server.stop();

    let dir = server.data_dir().join("audit");
    let all = audit_records(&dir);
    let find = |op: &str, status: u64| {
        all.iter()
            .find(|r| r["operation"] == op && r["status"] == status)
            .unwrap_or_else(|| panic!("no {op} {status} record in {all:#?}"))
    };
    let put = find("PutObject", 200);
    assert_eq!(put["bucket"], "audited");
    assert_eq!(put["key"], "report.pdf");
    assert_eq!(put["bytes_in"], 17);
    assert_eq!(put["access_key"], server.access_key.as_str());
    assert!(put["tenant"].as_str().is_some_and(|t| t.len() == 32));
    assert!(put["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(find("GetObject", 200)["bytes_out"], 17);
    assert_eq!(find("GetObject", 404)["error"], "NoSuchKey");
    let text = std::fs::read_to_string(dir.join("audit-00000001.jsonl")).unwrap();
    assert!(
        !text.contains(&server.secret_key),
        "a secret reached the audit trail"
    );
    assert!(
        !text.contains("quarterly numbers"),
        "object content reached the audit trail"
    );

    let (ok, report) = verify(&dir);
    assert!(ok, "{report}\n{text}");

    // Edit one record: verify fails and names its line.
    let file = dir.join("audit-00000001.jsonl");
    let edited = text.replacen("\"status\":404", "\"status\":200", 1);
    assert_ne!(edited, text);
    std::fs::write(&file, &edited).unwrap();
    let (ok, report) = verify(&dir);
    assert!(!ok);
    let line = text
        .lines()
        .position(|l| l.contains("\"status\":404"))
        .unwrap()
        + 1;
    assert!(report.contains(&format!(":{line}: ")), "{report}");
}

/// Whatever the record kept of the request's bucket and key is within bounds, and marked
/// when cut. (A name no bucket can have may be refused before it is recorded at all.)
fn assert_bounded(record: &Value, max_key: usize) {
    if let Some(bucket) = record["bucket"].as_str() {
        assert_eq!(bucket, "b".repeat(63), "{record}");
        assert_eq!(record["truncated"]["bucket"], 60 * 1024, "{record}");
    }
    if let Some(key) = record["key"].as_str() {
        assert_eq!(key.len(), 1000.min(max_key), "{record}");
        if max_key < 1000 {
            assert_eq!(record["truncated"]["key"], 1000, "{record}");
        }
    }
}

/// The raw line of the record with `request_id`, once the server has stopped.
fn record_line(dir: &Path, request_id: &str) -> String {
    let needle = format!("\"request_id\":\"{request_id}\"");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(
                text.lines()
                    .filter(|l| l.contains(&needle))
                    .map(str::to_owned),
            );
        }
    }
    assert_eq!(lines.len(), 1, "records of {request_id}: {lines:?}");
    lines.remove(0)
}

fn trail_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[tokio::test]
async fn r12_a_request_naming_a_huge_bucket_costs_the_trail_a_bounded_record() {
    let mut server = TestServer::start();
    // Within the 64 KiB a URI may have, and a key S3 accepts.
    let bucket = "b".repeat(60 * 1024);
    let key = "k".repeat(1000);
    let anonymous = server
        .request(Method::PUT, &format!("/{bucket}/{key}"))
        .anonymous()
        .body("x")
        .send()
        .await;
    let anonymous_id = anonymous.header("x-amz-request-id").unwrap().to_owned();
    let signed = server
        .request(Method::GET, &format!("/{bucket}/{key}"))
        .send()
        .await;
    let signed_id = signed.header("x-amz-request-id").unwrap().to_owned();
    server.stop();

    let dir = server.data_dir().join("audit");
    let line = record_line(&dir, &anonymous_id);
    assert!(
        line.len() <= 700,
        "an unauthenticated request added {} bytes: {line}",
        line.len()
    );
    let record: Value = serde_json::from_str(&line).unwrap();
    assert!(record["tenant"].is_null());
    assert_bounded(&record, 128);

    // Authenticated, the key is kept whole (S3 keys are at most 1024 bytes).
    let line = record_line(&dir, &signed_id);
    assert!(line.len() <= 2000, "{} bytes: {line}", line.len());
    let record: Value = serde_json::from_str(&line).unwrap();
    assert_bounded(&record, 1024);
    assert!(verify(&dir).0);
}

#[tokio::test]
async fn r12_a_flood_of_unauthenticated_requests_is_summarised_and_refuses_no_tenant() {
    let mut server = TestServer::start();
    let s3 = server.s3_client();
    s3.create_bucket().bucket("busy").send().await.unwrap();
    let flood = 2000;
    let bucket = "f".repeat(4096);
    let mut refused = 0;
    for batch in 0..flood / 50 {
        let requests = (0..50).map(|i| {
            server
                .request(Method::PUT, &format!("/{bucket}/k{batch}-{i}"))
                .anonymous()
                .body("x")
                .send()
        });
        for response in join_all(requests).await {
            refused += usize::from(response.status.is_client_error());
        }
    }
    assert_eq!(refused, flood, "every anonymous request is refused");
    // Meanwhile a tenant's write is served and recorded.
    s3.put_object()
        .bucket("busy")
        .key("still-served")
        .body(ByteStream::from_static(b"ok"))
        .send()
        .await
        .unwrap();
    server.stop();

    let dir = server.data_dir().join("audit");
    let all = audit_records(&dir);
    assert!(all.iter().any(|r| r["operation"] == "PutObject"
        && r["status"] == 200
        && r["key"] == "still-served"));
    let alone = all
        .iter()
        .filter(|r| r["kind"] == "s3" && r["tenant"].is_null())
        .count();
    let summarised: u64 = all
        .iter()
        .filter(|r| r["kind"] == "summary")
        .map(|r| r["change"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        alone as u64 + summarised,
        flood as u64,
        "each refusal is accounted for"
    );
    assert!(
        summarised > 0,
        "{alone} records one by one, none summarised"
    );
    // One by one at full length, each record of the flood would take over 4 KiB (its
    // bucket name): 8 MB. Bounded, a few hundred bytes each, and the rest in summaries.
    let bytes = trail_bytes(&dir);
    assert!(
        bytes < alone as u64 * 700 + 100_000,
        "the flood cost the trail {bytes} bytes ({alone} records one by one)"
    );
    assert!(verify(&dir).0);
}

#[tokio::test]
async fn r12_bytes_in_counts_what_arrived_not_what_was_declared() {
    let mut server = TestServer::start();
    server
        .s3_client()
        .create_bucket()
        .bucket("present")
        .send()
        .await
        .unwrap();
    // 1 MiB declared and sent, but refused before its body is read: nothing was received
    // for it (the body is drained in the background after the answer).
    let refused = server
        .request(Method::PUT, "/absent/object")
        .body(vec![7u8; 1 << 20])
        .send()
        .await;
    refused.assert_error(404, "NoSuchBucket");
    let stored = server
        .request(Method::PUT, "/present/object")
        .body(&b"0123456789"[..])
        .send()
        .await;
    stored.assert_status(200);

    let tenant = tenant_id(&server).await;
    let metrics = server
        .admin()
        .send_raw(Method::GET, "/metrics", "", Some(server.admin().token()))
        .await;
    let received = format!("coffre_tenant_received_bytes_total{{tenant=\"{tenant}\"}} ");
    let counted = metrics
        .text
        .lines()
        .find_map(|l| l.strip_prefix(&received))
        .unwrap_or_else(|| panic!("no `{received}` in\n{}", metrics.text));
    assert_eq!(counted, "10", "the tenant's bytes received");
    server.stop();

    let all = audit_records(&server.data_dir().join("audit"));
    let bytes_in = |status: u64| {
        all.iter()
            .find(|r| r["operation"] == "PutObject" && r["status"] == status)
            .unwrap_or_else(|| panic!("no PutObject {status} record in {all:#?}"))["bytes_in"]
            .clone()
    };
    assert_eq!(bytes_in(404), 0);
    assert_eq!(bytes_in(200), 10);
}

/// The default tenant's id, from its admin document.
async fn tenant_id(server: &TestServer) -> String {
    let doc = server
        .admin()
        .send(Method::GET, "/admin/v1/tenants/default", None)
        .await;
    doc.json["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn r12_admin_actions_record_their_source() {
    let mut server = TestServer::start();
    let admin = server.admin();
    admin
        .send(
            Method::POST,
            "/admin/v1/tenants",
            Some(serde_json::json!({"name": "sourced"})),
        )
        .await
        .assert_status(201);
    let refused = admin
        .send_raw(Method::GET, "/admin/v1/tenants", "", Some("wrong-token"))
        .await;
    refused.assert_status(401);
    server.stop();
    let all = audit_records(&server.data_dir().join("audit"));
    for (action, authenticated) in [("CreateTenant", true), ("Unauthenticated", false)] {
        let record = all
            .iter()
            .find(|r| r["kind"] == "admin" && r["operation"] == action)
            .unwrap_or_else(|| panic!("no {action} record in {all:#?}"));
        assert!(
            record["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("127.0.0.1:")),
            "{record}"
        );
        assert_eq!(record["change"]["authenticated"], authenticated);
    }
}

#[tokio::test]
async fn r12_verify_fails_when_head_is_missing() {
    let mut server = TestServer::start();
    server.s3_client().list_buckets().send().await.unwrap();
    server.stop();
    let dir = server.data_dir().join("audit");
    assert!(verify(&dir).0);
    std::fs::remove_file(dir.join("HEAD")).unwrap();
    let (ok, report) = verify(&dir);
    assert!(!ok, "{report}");
    assert!(report.contains("HEAD"), "{report}");
}

/// Runs every future on its own task and waits for all of them.
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
