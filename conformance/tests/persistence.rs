//! Durability: a restart keeps every object; a crash (SIGKILL) in the middle of an overwrite
//! leaves the old object whole, and a crash in the middle of a new upload leaves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;
use coffre_conformance::{
    create_upload, get_object, multipart_etag, multipart_object, pseudo_random_bytes, put_bytes,
    read_body, simple_etag, Payload, TestServer,
};
use http::Method;
use tokio::sync::mpsc;

const MIB: usize = 1024 * 1024;

async fn get(s3: &Client, bucket: &str, key: &str) -> (Vec<u8>, String) {
    let out = get_object(s3, bucket, key).await;
    let etag = out.e_tag().unwrap().to_string();
    (read_body(out.body).await, etag)
}

#[tokio::test]
async fn restart_keeps_buckets_and_objects() {
    let (mut server, s3) = TestServer::start_with_buckets(&["durable", "second"]).await;
    let credentials = (server.access_key.clone(), server.secret_key.clone());
    let small = b"tiny inline object".to_vec();
    let medium = pseudo_random_bytes(300_000, 1);
    s3.put_object()
        .bucket("durable")
        .key("small")
        .content_type("text/plain")
        .metadata("kept", "yes")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    put_bytes(&s3, "durable", "dir/medium", &medium).await;
    let parts = [
        pseudo_random_bytes(5 * MIB, 2),
        pseudo_random_bytes(1000, 3),
    ];
    multipart_object(&s3, "durable", "multi", &parts, None).await;
    // An upload left open survives too.
    let pending_id = create_upload(&s3, "durable", "pending").await;

    server.restart();
    assert_eq!(
        (server.access_key.clone(), server.secret_key.clone()),
        credentials,
        "credentials are not regenerated on restart"
    );
    let s3 = server.s3_client();

    let buckets = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["durable", "second"]);
    let (body, etag) = get(&s3, "durable", "small").await;
    assert_eq!(body, small);
    assert_eq!(etag, simple_etag(&small));
    let head = s3
        .head_object()
        .bucket("durable")
        .key("small")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(
        head.metadata().unwrap().get("kept").map(String::as_str),
        Some("yes")
    );
    let (body, etag) = get(&s3, "durable", "dir/medium").await;
    assert!(body == medium);
    assert_eq!(etag, simple_etag(&medium));
    let (body, etag) = get(&s3, "durable", "multi").await;
    assert!(body == parts.concat());
    assert_eq!(etag, multipart_etag(&parts));
    let listed = s3.list_objects_v2().bucket("durable").send().await.unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/medium", "multi", "small"]);
    let uploads = s3
        .list_multipart_uploads()
        .bucket("durable")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids, [pending_id.as_str()]);

    // A crash right after acknowledged writes loses nothing either.
    put_bytes(&s3, "second", "acked", b"acknowledged").await;
    s3.delete_object()
        .bucket("durable")
        .key("small")
        .send()
        .await
        .unwrap();
    server.kill();
    server.start_again();
    let s3 = server.s3_client();
    assert_eq!(get(&s3, "second", "acked").await.0, b"acknowledged");
    let err = s3
        .head_object()
        .bucket("durable")
        .key("small")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        coffre_conformance::sdk_error(&err).0,
        404,
        "an acknowledged delete stays deleted"
    );
}

/// Starts an upload of `total` bytes to `path` and feeds it `sent` bytes, then leaves it
/// hanging. Returns the sender (keep it alive) and the in-flight task.
async fn start_partial_upload(
    server: &TestServer,
    path: &str,
    total: usize,
    sent: usize,
) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let request = server
        .request(Method::PUT, path)
        .payload(Payload::Unsigned)
        .header("content-length", &total.to_string())
        .body_channel(rx);
    let task = tokio::spawn(async move {
        // The connection dies with the server; the outcome does not matter.
        let _ = tokio::time::timeout(Duration::from_secs(60), async move {
            let _ = coffre_conformance::raw_client()
                .request(request.build())
                .await;
        })
        .await;
    });
    let chunk = pseudo_random_bytes(MIB, 99);
    let mut pushed = 0;
    while pushed < sent {
        let n = MIB.min(sent - pushed);
        tx.send(Bytes::copy_from_slice(&chunk[..n])).await.unwrap();
        pushed += n;
    }
    (tx, task)
}

/// The data files being written (`<array>/<tenant>/tmp/*.tmp`) and their sizes.
fn temp_files(server: &TestServer) -> Vec<(std::path::PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![server.data_dir().join("arrays")];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue; // renamed or removed meanwhile
            };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if entry.path().extension().is_some_and(|e| e == "tmp") {
                found.push((entry.path(), meta.len()));
            }
        }
    }
    found
}

/// Waits (polling, under a deadline) until `count` temporary data files hold at least
/// `bytes` each.
async fn wait_for_temp_files(server: &TestServer, count: usize, bytes: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let files = temp_files(server);
        if files.iter().filter(|(_, len)| *len >= bytes).count() >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{count} temporary files of {bytes} bytes were never written: {files:#?}"
        );
        // The poll interval of the wait for the files, under the deadline above.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_upload_keeps_the_old_object() {
    let (mut server, s3) = TestServer::start_with_buckets(&["crash"]).await;
    let old = pseudo_random_bytes(6 * MIB + 5, 7);
    put_bytes(&s3, "crash", "precious", &old).await;

    let (overwrite_tx, overwrite) =
        start_partial_upload(&server, "/crash/precious", 32 * MIB, 20 * MIB).await;
    let (new_tx, new_upload) =
        start_partial_upload(&server, "/crash/newcomer", 16 * MIB, 9 * MIB).await;
    // Kill once the server has written part of both bodies to their temporary files.
    wait_for_temp_files(&server, 2, MIB as u64).await;
    server.kill();
    drop((overwrite_tx, new_tx));
    let _ = overwrite.await;
    let _ = new_upload.await;

    server.start_again();
    let s3 = server.s3_client();
    let (body, etag) = get(&s3, "crash", "precious").await;
    assert_eq!(body.len(), old.len(), "the old object is complete");
    assert!(body == old, "the old object is intact");
    assert_eq!(etag, simple_etag(&old));
    let err = s3
        .head_object()
        .bucket("crash")
        .key("newcomer")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        coffre_conformance::sdk_error(&err).0,
        404,
        "no partial object becomes visible"
    );
    let listed = s3.list_objects_v2().bucket("crash").send().await.unwrap();
    let keys: Vec<_> = listed
        .contents()
        .iter()
        .map(|o| (o.key().unwrap(), o.size().unwrap()))
        .collect();
    assert_eq!(keys, [("precious", old.len() as i64)]);

    // The server still works normally after the crash.
    put_bytes(&s3, "crash", "precious", b"new").await;
    assert_eq!(get(&s3, "crash", "precious").await.0, b"new");
}
