//! The audit trail of the real binary: every S3 request leaves a chained record with who,
//! what and the outcome (never a secret), and `coffre audit verify` finds tampering.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use coffre_conformance::{audit_records, coffre_binary, TestServer};

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
